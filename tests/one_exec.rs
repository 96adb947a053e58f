//! The container checks learn what they need from inside a container through one
//! `docker exec` of a fixed `sh` script, or, in an image without `sh`, through execs of
//! their own (one per question). Both paths must give every check the same status and
//! cause. The same containers are diagnosed twice: as usual, and with
//! PD_DOCTOR_NO_INSIDE_SCRIPT=1, which sends every container down the per-client path; a
//! real image without `sh` checks that the switch stands for the real thing.

mod common;

use std::collections::BTreeMap;

use common::lab::{self, docker, docker_or_skip, Lab, GATEWAY};
use common::servers::{self, Bind, Fault, McpOptions};
use common::{free_port, Run, Tree};

/// One diagnosis, through the one-exec script or (`per_client`) without it. The per-client
/// path makes some eighty execs here, five of them one after another to find bash in
/// an image without curl; an idle engine runs 20 to 25 a second, a busy machine far
/// fewer. The timeout leaves them room: this test compares verdicts, not speed.
async fn diagnose(t: &Tree, per_client: bool) -> Run {
    let mut cmd = common::command(t.root(), &["--json", "--timeout", "8s"]);
    if per_client {
        cmd.env("PD_DOCTOR_NO_INSIDE_SCRIPT", "1");
    }
    common::output(&mut cmd).await
}

/// Status and cause of every container check instance.
fn verdicts(r: &Run) -> BTreeMap<String, (String, String)> {
    r.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"].as_str().unwrap().starts_with("container."))
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["cause"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn same_verdicts(one: &Run, per_client: &Run) -> BTreeMap<String, (String, String)> {
    let (a, b) = (verdicts(one), verdicts(per_client));
    assert_eq!(a.len(), b.len());
    for (id, verdict) in &a {
        assert_eq!(
            Some(verdict),
            b.get(id),
            "{id}: one exec {}\nper client {}",
            serde_json::to_string_pretty(&one.check(id)).unwrap(),
            serde_json::to_string_pretty(&per_client.check(id)).unwrap()
        );
    }
    a
}

#[tokio::test(flavor = "multi_thread")]
async fn every_container_check_says_the_same_through_one_exec_and_per_client_execs() {
    if !docker_or_skip("every_container_check_says_the_same_through_one_exec_and_per_client_execs")
    {
        return;
    }
    let [curl, wget, bash_only, no_sh, bare] =
        ["curl", "wget", "bash-only", "no-sh", "bare"].map(lab::image);
    let lab = Lab::new("oneexec");
    let (qms, git) = servers::reachable_pair().await;
    let hung = servers::fault_server_on(Fault::Hang, Bind::Reachable).await;
    let broken = servers::fault_server_on(
        Fault::Status(500, "text/plain", "boom".into()),
        Bind::Reachable,
    )
    .await;
    let strict = servers::mcp_server(McpOptions {
        allow_docker_host: false,
        bind: Bind::Reachable,
        ..Default::default()
    })
    .await;
    let loopback = servers::mcp_server(McpOptions::default()).await;
    let agents = [
        "ok", "wget", "bashsh", "nosh", "nogw", "v6", "waiting", "bypass", "stopped", "bare",
    ];
    let t = Tree::new(qms, git);
    for a in agents {
        t.agent(a, "healthy");
    }
    let extra: String = [
        ("hung", hung.port),
        ("broken", broken.port),
        ("strict", strict.port),
        ("local", loopback.port),
    ]
    .iter()
    .map(|(name, port)| format!("[[server]]\nname = \"{name}\"\nport = {port}\n"))
    .collect();
    lab.configure(&t, &extra);

    let args = |agent: &str, more: &[&str]| {
        let mut args = Lab::standard_args(&t, agent);
        args.extend(more.iter().map(|s| s.to_string()));
        args
    };
    let wait_for = format!("PD_WAIT_FOR=host.docker.internal:{}", free_port());
    lab.launch(
        &lab.name("waiting"),
        true,
        &args(
            "waiting",
            &[GATEWAY, "-e", &wait_for, "-e", "PD_WAIT_SECONDS=300"],
        ),
        &[&curl],
    );
    lab.start_agent(&t, "ok", &curl, &[]);
    lab.start_agent(&t, "wget", &wget, &[]);
    lab.start_agent(&t, "bashsh", &bash_only, &[]);
    lab.start_agent(&t, "nosh", &no_sh, &[]);
    lab.start(
        &lab.name("nogw"),
        true,
        &args("nogw", &["--dns", "127.0.0.1"]),
        &[&curl],
    );
    lab.start(
        &lab.name("v6"),
        true,
        &args(
            "v6",
            &[&format!(
                "--add-host=host.docker.internal:{}",
                lab::host_ipv6()
            )],
        ),
        &[&curl],
    );
    lab.start(
        &lab.name("bypass"),
        true,
        &args("bypass", &[GATEWAY, "--entrypoint", "/bin/bash"]),
        &[&curl, "-c", "sleep infinity"],
    );
    lab.start(
        &lab.name("stopped"),
        false,
        &args("stopped", &[GATEWAY]),
        &[&curl],
    );
    lab.start(
        &lab.name("bare"),
        true,
        &args("bare", &[GATEWAY, "--entrypoint", "/bin/sleep"]),
        &[&bare, "infinity"],
    );
    let waiting = lab.name("waiting");
    for _ in 0..50 {
        let pid1 = docker(&["exec", &waiting, "cat", "/proc/1/cmdline"]);
        if pid1.contains("entrypoint.sh") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The host's entrypoint as built into the images, then edited after the build.
    for edited in [false, true] {
        if edited {
            t.write(
                "docker/entrypoint.sh",
                &format!("{}\n# edited on the host\n", lab::ENTRYPOINT),
            );
        }
        let one = diagnose(&t, false).await;
        let per_client = diagnose(&t, true).await;
        let v = same_verdicts(&one, &per_client);
        let is = |id: &str, status: &str, cause: &str| {
            assert_eq!(
                v.get(id).map(|(s, c)| (s.as_str(), c.as_str())),
                Some((status, cause)),
                "{id} in {}",
                serde_json::to_string_pretty(&one.check(id)).unwrap()
            )
        };
        // What the comparison covers: every cause a container check draws from inside.
        for agent in ["ok", "wget", "bashsh", "nosh"] {
            is(&format!("container.host_gateway[{agent}]"), "ok", "ok");
            is(&format!("container.reach[{agent},qms]"), "ok", "ok");
            is(&format!("container.reach[{agent},git]"), "ok", "ok");
            is(&format!("container.reach[{agent},hung]"), "fail", "timeout");
            is(
                &format!("container.reach[{agent},broken]"),
                "fail",
                "server-error",
            );
            is(
                &format!("container.reach[{agent},local]"),
                "fail",
                "refused",
            );
        }
        // (wget keeps the body of a 403 to itself, and rmcp's 403 to bash's HTTP/1.0
        // request does not name the Host header: both see a plain answer.)
        is("container.reach[ok,strict]", "fail", "host-rejected");
        is("container.state[ok]", "ok", "ok");
        is("container.state[waiting]", "warn", "configuring");
        is("container.state[stopped]", "fail", "stopped");
        is("container.entrypoint[bypass]", "fail", "bypassed");
        is("container.host_gateway[nogw]", "fail", "missing");
        is("container.reach[nogw,qms]", "fail", "dns");
        is("container.host_gateway[v6]", "warn", "ipv6-first");
        is("container.reach[bare,qms]", "warn", "no-client");
        is("container.reach[stopped,qms]", "skip", "precondition");
        let image = if edited {
            ("fail", "entrypoint-differs")
        } else {
            ("ok", "ok")
        };
        for agent in ["ok", "wget", "bashsh", "nosh", "bypass", "bare", "stopped"] {
            is(&format!("container.image[{agent}]"), image.0, image.1);
        }
        // bash's /dev/tcp run by the script, and by an exec of its own in an image
        // without sh, say the same.
        for (id, verdict) in &v {
            if let Some(rest) = id.strip_prefix("container.reach[bashsh,") {
                assert_eq!(
                    Some(verdict),
                    v.get(&format!("container.reach[nosh,{rest}")),
                    "{id}"
                );
            }
        }
        // And the paths were the ones meant.
        let evidence = |r: &Run, id: &str| r.check(id)["evidence"].to_string();
        assert!(evidence(&one, "container.reach[ok,qms]").contains("one exec"));
        assert!(evidence(&one, "container.reach[bashsh,qms]").contains(" bash "));
        assert!(!evidence(&per_client, "container.reach[ok,qms]").contains("one exec"));
        let nosh = evidence(&one, "container.reach[nosh,qms]");
        assert!(
            nosh.contains(" bash ") && !nosh.contains("one exec"),
            "{nosh}"
        );
    }
}
