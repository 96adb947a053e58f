//! Every way a container is networked, on the real engine: the default bridge, a
//! user-defined network the test creates, `none`, `host`, `container:<other>`, a
//! loopback mapping and a mapping to an address of a created network where nothing
//! listens. Traffic stays on loopback and on the networks the tests create.

mod common;

use common::lab::{docker, lab_or_skip, Lab, GATEWAY, LABEL};
use common::servers::{self, Bind};
use common::{run_json, Run, Tree};

/// A network of the test's own, removed (with whatever is still attached) at the end.
struct Network(String);

impl Network {
    fn new(lab: &Lab) -> Network {
        let name = format!("{}net", lab.name(""));
        docker(&["network", "create", "--label", &format!("{LABEL}=1"), &name]);
        Network(name)
    }

    fn gateway(&self) -> String {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
            &self.0,
        ])
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let attached = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &format!("network={}", self.0)])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for id in attached.split_whitespace() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", id])
                .output();
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

async fn tree(lab: &Lab, fixture: &str) -> Tree {
    let (qms, git) = servers::reachable_pair().await;
    let t = Tree::new(qms, git);
    t.agent("qa", fixture);
    lab.configure(&t, "");
    t
}

async fn diagnose(t: &Tree) -> Run {
    run_json(t.root(), &["--timeout", "3s"]).await
}

fn start(lab: &Lab, t: &Tree, image: &str, extra: &[&str]) {
    let mut args = Lab::standard_args(t, "qa");
    args.extend(extra.iter().map(|s| s.to_string()));
    lab.start(&lab.name("qa"), true, &args, &[image]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_defined_network_with_host_gateway_reaches_the_host() {
    let Some((lab, curl)) = lab_or_skip("a_user_defined_network", "usernet", "curl") else {
        return;
    };
    let net = Network::new(&lab);
    let t = tree(&lab, "healthy").await;
    start(&lab, &t, &curl, &["--network", &net.0, GATEWAY]);
    let r = diagnose(&t).await;
    r.expect("container.host_gateway[qa]", "ok", "ok");
    r.expect("container.reach[qa,git]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_without_a_network_is_named_as_such() {
    let Some((lab, curl)) = lab_or_skip("a_container_without_a_network", "nonet", "curl") else {
        return;
    };
    let t = tree(&lab, "healthy").await;
    start(&lab, &t, &curl, &["--network", "none"]);
    let r = diagnose(&t).await;
    let c = r.expect("container.host_gateway[qa]", "fail", "no-network");
    assert!(
        c["hint"].as_str().unwrap().contains("--network none"),
        "{c}"
    );
    r.expect("container.reach[qa,qms]", "fail", "no-network");
}

/// `--network host` with localhost URLs: right for this agent, and reached as configured.
#[tokio::test(flavor = "multi_thread")]
async fn the_host_network_makes_localhost_right() {
    let Some((lab, curl)) = lab_or_skip("the_host_network", "hostnet", "curl") else {
        return;
    };
    let (qms, git) = servers::pair(Bind::Loopback).await;
    let t = Tree::new(qms, git);
    t.agent("qa", "localhost-urls");
    lab.configure(&t, "");
    start(&lab, &t, &curl, &["--network", "host"]);
    let r = diagnose(&t).await;
    r.expect("container.host_gateway[qa]", "ok", "ok");
    let c = r.expect("config.server_entry[qa,qms]", "ok", "ok");
    assert!(
        c["message"].as_str().unwrap().contains("host's network"),
        "{c}"
    );
    r.expect("container.reach[qa,qms]", "ok", "ok");
}

/// `--network container:<other>`: the other container's network decides, and is named.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_network_namespace_is_judged_by_its_owner() {
    let Some((lab, curl)) = lab_or_skip("a_shared_network_namespace", "peernet", "curl") else {
        return;
    };
    let t = tree(&lab, "healthy").await;
    let peer = format!("{}peer-sidecar", lab.name("").trim_end_matches("agent-"));
    lab.start(&peer, true, &["--network".into(), "none".into()], &[&curl]);
    start(
        &lab,
        &t,
        &curl,
        &["--network", &format!("container:{peer}")],
    );
    let r = diagnose(&t).await;
    let c = r.expect("container.host_gateway[qa]", "fail", "no-network");
    assert!(c["message"].as_str().unwrap().contains(&peer), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loopback_mapping_is_the_container_itself() {
    let Some((lab, curl)) = lab_or_skip("a_loopback_mapping", "loopmap", "curl") else {
        return;
    };
    let t = tree(&lab, "healthy").await;
    start(
        &lab,
        &t,
        &curl,
        &["--add-host=host.docker.internal:127.0.0.1"],
    );
    let r = diagnose(&t).await;
    let c = r.expect("container.host_gateway[qa]", "fail", "loopback");
    assert!(c["hint"].as_str().unwrap().contains("host-gateway"), "{c}");
}

/// A mapping into a network the test created, at an address where nothing listens.
#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_to_another_address_is_named_with_the_right_one() {
    let Some((lab, curl)) = lab_or_skip("a_mapping_to_another", "wrongaddr", "curl") else {
        return;
    };
    let net = Network::new(&lab);
    let gateway = net.gateway();
    let (prefix, _) = gateway.rsplit_once('.').unwrap();
    let nobody = format!("{prefix}.200");
    let t = tree(&lab, "healthy").await;
    start(
        &lab,
        &t,
        &curl,
        &[
            "--network",
            &net.0,
            &format!("--add-host=host.docker.internal:{nobody}"),
        ],
    );
    let r = diagnose(&t).await;
    let c = r.expect("container.host_gateway[qa]", "fail", "wrong-address");
    let text = c.to_string();
    assert!(text.contains(&nobody) && text.contains(&gateway), "{c}");
}
