//! pd-doctor on the layout Pipe Dream runs today: an Agent Hub tree (no `docker/` at the
//! root), containers started as the Hub starts them, stdio proxy entries and real MCP
//! servers that require the proxy's headers. A healthy lab is healthy, and each way it
//! breaks is named with its cause.

mod common;

use std::time::Duration;

use common::hub::{hub_api, hub_api_saying, hub_image, hub_servers, hub_tree};
use common::lab::{docker, docker_or_skip, Lab};
use common::{free_port, measured, run_json, Tree, PEAK_KIB};

/// The longest a run at `--timeout 1s` with stdio servers may take: the run's second,
/// the stdio servers' second, four more while a process still works (a cold Python
/// start, or a flood, uses CPU, so it is waited for; `Facts::stdio_grace`), and the
/// engine's own time on a busy two-core machine.
const WALL_AT_1S: Duration = Duration::from_secs(12);

/// A hub tree with `agents`, this lab's names, and the Hub's address (`hub`).
async fn hub_lab(test: &str, agents: &[&str]) -> Option<(Lab, Tree, String)> {
    if !docker_or_skip(test) {
        return None;
    }
    let (qms, git) = hub_servers().await;
    let t = hub_tree(qms, git, agents);
    common::hub::age(&t);
    let lab = Lab::new(test);
    let image = hub_image();
    Some((lab, t, image))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_hub_lab_is_healthy_and_fix_changes_nothing() {
    let Some((lab, t, image)) = hub_lab("hub_healthy", &["claude", "qa"]).await else {
        return;
    };
    let hub = hub_api(&["claude", "qa"]).await;
    lab.configure_hub(&t, &image, hub);
    for agent in ["claude", "qa"] {
        lab.start_hub_agent(&t, agent, &image, &[]);
    }
    let run = run_json(t.root(), &[]).await;
    let doc = run.json();
    assert_eq!(doc["layout"]["name"], "hub", "{doc}");
    let problems: Vec<String> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail" || c["status"] == "warn")
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["id"], c["status"], c["cause"], c["message"]
            )
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(run.code, 0, "{doc}");
    for agent in ["claude", "qa"] {
        for server in ["qms", "git"] {
            let c = run.expect(&format!("container.stdio[{agent},{server}]"), "ok", "ok");
            assert!(c["message"].as_str().unwrap().contains("tools/list"), "{c}");
        }
        run.expect(&format!("container.session[{agent}]"), "ok", "ok");
        run.expect(&format!("container.identity[{agent}]"), "ok", "ok");
    }
    run.expect("config.mcp_json", "ok", "ok");
    run.expect("hub.service", "ok", "ok");
    run.expect("server.pidfile[qms]", "ok", "absent");
    // No PID file: server.listen names the port's owner, this test process (rmcp).
    let listen = run.expect("server.listen[qms]", "ok", "ok");
    let owner = format!("is served by pid {} (", std::process::id());
    assert!(listen["evidence"].to_string().contains(&owner), "{listen}");
    run.expect("config.host_mcp_json", "ok", "ok");
    for agent in ["claude", "qa"] {
        run.expect(&format!("config.auth[{agent}]"), "ok", "ok");
        for server in ["qms", "git"] {
            run.expect(&format!("config.permissions[{agent},{server}]"), "ok", "ok");
        }
    }
    // Nothing left running in the containers but PID 1 and the tmux session's.
    for agent in ["claude", "qa"] {
        let top = docker(&["top", &lab.name(agent)]);
        assert!(!top.contains("mcp_proxy"), "{top}");
    }
    // The key values never appear in any output.
    assert!(!run.stdout.contains("qms-internal"));
    assert!(!run.stdout.contains("internal-trusted"));
    let fixed = run_json(t.root(), &["--fix", "--yes"]).await;
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert_eq!(fixed.json()["summary"]["fixed"], 0, "{}", fixed.stdout);
    // The first screen a user sees (the README shows it; `--nocapture` prints it).
    let screen = common::run(t.root(), &[]).await;
    eprintln!("{}", screen.stdout);
    assert!(screen.stdout.contains("layout: hub"), "{}", screen.stdout);
    assert!(!screen.stdout.contains("Problems"), "{}", screen.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_way_a_hub_agent_breaks_is_named() {
    let Some((lab, t, image)) = hub_lab("hub_broken", &["qa", "bu", "tu_ui"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    // bu runs as somebody else; tu_ui's Claude Code was quit.
    lab.start_hub_agent(&t, "qa", &image, &[]);
    lab.start_hub_agent(&t, "bu", &image, &["-e", "QMS_USER=qa"]);
    lab.start_hub_agent(&t, "tu_ui", &image, &[]);
    docker(&["exec", &lab.name("tu_ui"), "tmux", "kill-server"]);
    // git's entry names a proxy that is not in the image; qms's a module that is not.
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    doc["mcpServers"]["git"]["args"][0] = "/proxy/gone.py".into();
    doc["mcpServers"]["qms"]["args"] = serde_json::json!([
        "-c",
        "import no_such_module_httpx",
        "http://host.docker.internal:1/mcp"
    ]);
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    let run = run_json(t.root(), &[]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    run.expect("hub.service", "warn", "not-listening");
    run.expect("container.identity[bu]", "fail", "wrong-identity");
    run.expect("container.identity[qa]", "ok", "ok");
    run.expect("container.session[tu_ui]", "warn", "no-session");
    run.expect("container.session[qa]", "ok", "ok");
    run.expect_saying(
        "container.stdio[qa,git]",
        "fail",
        "command-not-found",
        &["/proxy/gone.py"],
    );
    run.expect_saying(
        "container.stdio[qa,qms]",
        "fail",
        "exited",
        &["ModuleNotFoundError"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_whose_upstream_refuses_its_key_is_traced_to_the_401() {
    let Some((lab, t, image)) = hub_lab("hub_401", &["qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    t.write(
        "agent-hub/docker/.mcp.json",
        &mcp.replace("X-API-Key=qms-internal", "X-API-Key=wrong-key"),
    );
    lab.start_hub_agent(&t, "qa", &image, &[]);
    // The default timeout: a proxy's cold start is waited for (a given --timeout is kept
    // to the letter, slow start or not).
    let run = run_json(t.root(), &[]).await;
    // The host probes the proxy's upstream with the proxy's own headers.
    let mcp = run.expect("server.mcp[qms]", "fail", "unauthorized");
    assert!(
        mcp["message"].as_str().unwrap().contains("X-API-Key"),
        "{mcp}"
    );
    let stdio = run.check("container.stdio[qa,qms]");
    assert_eq!(stdio["status"], "fail", "{stdio}");
    assert_eq!(stdio["explained_by"], "server.mcp[qms]", "{stdio}");
    assert!(run.root_causes().contains(&"server.mcp[qms]".to_string()));
    run.expect("container.stdio[qa,git]", "ok", "ok");
    run.expect("config.mcp_json", "ok", "ok");
    assert!(!run.stdout.contains("wrong-key"), "a key value was printed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_stdio_server_is_ended_at_the_deadline() {
    let Some((lab, t, image)) = hub_lab("hub_hung", &["qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    // git's entry is a program that never answers and never ends.
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    doc["mcpServers"]["git"] = serde_json::json!({"command": "sleep", "args": ["4242"]});
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    lab.start_hub_agent(&t, "qa", &image, &[]);
    // The default timeout (2 s), which waits for qms's proxy's cold start, not for git's
    // program, which sleeps.
    let run = run_json(t.root(), &[]).await;
    run.expect("container.stdio[qa,git]", "fail", "timeout");
    run.expect("container.stdio[qa,qms]", "ok", "ok");
    assert!(run.elapsed < WALL_AT_1S, "{:?}", run.elapsed);
    let top = docker(&["top", &lab.name("qa")]);
    assert!(!top.contains("4242"), "left running: {top}");
}

/// The proxy retries a refused upstream with its back-off (1 + 2 + 4 s), and Claude
/// Code waits for it (26 s measured); pd-doctor ends it at the run's deadline, since the
/// proxy sleeps rather than works, and says what it was doing.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_retrying_a_refused_upstream_is_ended_at_the_deadline() {
    if !common::lab::docker_or_skip("a_proxy_retrying_a_refused_upstream") {
        return;
    }
    let (qms, _) = hub_servers().await;
    let t = hub_tree(qms, free_port(), &["qa"]);
    common::hub::age(&t);
    let lab = Lab::new("hub_refused");
    let image = hub_image();
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &[]);
    // A first run warms the container (Python's files in the page cache): a given
    // --timeout is kept to the letter, and a cold start on a busy machine may not fit.
    let _ = run_json(t.root(), &[]).await;
    let run = run_json(t.root(), &["--timeout", "4s"]).await;
    run.expect("server.listen[git]", "fail", "not-listening");
    let stdio = run.expect_saying(
        "container.stdio[qa,git]",
        "fail",
        "timeout",
        &["retrying a failing upstream", "Connection refused"],
    );
    assert_eq!(stdio["explained_by"], "server.listen[git]", "{stdio}");
    run.expect("container.stdio[qa,qms]", "ok", "ok");
    // The deadline, not the proxy's back-off: a run at --timeout 4s used to take twice
    // that (the benchmark holds the real figure: cargo bench -- hub-failing).
    assert!(run.elapsed < Duration::from_secs(6), "{:?}", run.elapsed);
    let verdict = run.client("qa", "git");
    assert_eq!(verdict["expected"], "failed", "{verdict}");
    assert_eq!(verdict["because"], "server.listen[git]", "{verdict}");
}

/// The QMS server keeps an agent's identity locked for a while after its container
/// stops: a container started again inside that window is warned of, and `--fix
/// --force` restarting one waits the window out between the stop and the start.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_started_inside_its_identity_lock_is_named_and_fix_waits_it_out() {
    let Some((lab, t, image)) = hub_lab("hub_lock", &["qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    let toml = std::fs::read_to_string(t.path("pd-doctor.toml")).unwrap();
    t.write(
        "pd-doctor.toml",
        &format!("{toml}\n[hub]\nidentity_lock = 4\n"),
    );
    lab.start_hub_agent(&t, "qa", &image, &[]);
    let only = [
        "--only",
        "container.identity*",
        "--only",
        "config.claude_json*",
    ];
    common::run_json(t.root(), &only)
        .await
        .expect("container.identity[qa]", "ok", "ok");
    docker(&["restart", "-t", "1", &lab.name("qa")]);
    let r = run_json(t.root(), &only).await;
    r.expect_saying(
        "container.identity[qa]",
        "warn",
        "lock-window",
        &["started again", "IDENTITY LOCKED"],
    );
    // A repair that needs a restart: the restart waits out the lock.
    t.write(".claude/users/qa/container/.claude.json", "{\"projects\": ");
    let fixed = run_json(
        t.root(),
        &[&["--fix", "--yes", "--force"][..], &only].concat(),
    )
    .await;
    assert!(
        fixed.stderr.contains("identity lock to end")
            || fixed.stdout.contains("identity lock to end"),
        "{}\n{}",
        fixed.stderr,
        fixed.stdout
    );
    fixed.expect("config.claude_json[qa]", "fixed", "ok");
    let identity = fixed.check("container.identity[qa]");
    assert_eq!(
        identity["cause"], "ok",
        "started outside the lock: {identity}"
    );
}

/// The agent is root in its container and can replace any program the one exec runs.
/// Here `curl` floods both streams with 20 MB of escapes, claims 200 and sleeps, and git's stdio
/// command floods stdout and sleeps. The run still ends on time, small, with no escape
/// printed, says what it ended, and leaves nothing running in the container.
#[tokio::test(flavor = "multi_thread")]
async fn programs_that_flood_and_hang_are_ended_and_leave_nothing_behind() {
    let Some((lab, t, image)) = hub_lab("hub_flood", &["qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    let flood = |stream: &str, sleep: u32| {
        format!(
            "b=$'\\e]0;owned\\a\\e[31mflood\\e[2J\\n'; for i in {{1..16}}; do b=$b$b; done; \
             for i in {{1..20}}; do printf '%s' \"$b\" {stream}; done; printf '\\n__pd_status__200'; sleep {sleep}"
        )
    };
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap(),
    )
    .unwrap();
    doc["mcpServers"]["git"] =
        serde_json::json!({"command": "bash", "args": ["-c", flood("", 4244)]});
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    let name = lab.start_hub_agent(&t, "qa", &image, &[]);
    t.write(
        "fake-curl",
        &format!("#!/bin/bash\n{}\n{}\n", flood(">&2", 0), flood("", 4243)),
    );
    std::fs::set_permissions(
        t.path("fake-curl"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    docker(&[
        "cp",
        t.path("fake-curl").to_str().unwrap(),
        &format!("{name}:/usr/local/bin/curl"),
    ]);

    let root = t.root().to_path_buf();
    let (run, peak) = tokio::task::spawn_blocking(move || measured(&root, &["--json"], |_| {}))
        .await
        .unwrap();
    eprintln!("{:?}, peak RSS {peak} KiB", run.elapsed);
    for id in ["container.reach[qa,qms]", "container.reach[qa,git]"] {
        let check = run.expect(id, "fail", "timeout");
        assert!(
            check.to_string().contains("ended at the deadline in"),
            "{check}"
        );
    }
    let git = run.expect("container.stdio[qa,git]", "fail", "not-mcp");
    assert!(
        git.to_string().contains("ended at the deadline in"),
        "{git}"
    );
    assert!(run.elapsed < WALL_AT_1S, "{:?}", run.elapsed);
    assert!(peak < PEAK_KIB, "peak RSS {peak} KiB");
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
    }
    let top = docker(&["top", &name, "-o", "pid,args"]);
    for left in ["4243", "4244", "curl", "flood"] {
        assert!(!top.contains(left), "left running: {top}");
    }
}

/// The proxy edited on the host after the image was built: `container.image` names the
/// file and the rebuild command, for each container of the image, from one digest taken
/// in one of them; the run still costs one exec per container and no archive read.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_edited_after_the_build_is_a_stale_file_compared_once_per_image() {
    let Some((lab, t, image)) = hub_lab("hub_stale", &["claude", "qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    for agent in ["claude", "qa"] {
        lab.start_hub_agent(&t, agent, &image, &[]);
    }
    let healthy = common::output(
        common::command(t.root(), &["--json", "--only", "container.*"])
            .env("PD_DOCTOR_LOG", "debug"),
    )
    .await;
    healthy.expect("container.image[qa]", "ok", "ok");
    let execs = healthy
        .stderr
        .lines()
        .filter(|l| l.contains("POST /containers/") && l.contains("/exec: sent"))
        .count();
    assert_eq!(execs, 2, "one exec per container:\n{}", healthy.stderr);
    assert!(!healthy.stderr.contains("/archive"), "{}", healthy.stderr);

    let proxy = t.path("agent-hub/docker/scripts/mcp_proxy.py");
    let mut text = std::fs::read_to_string(&proxy).unwrap();
    text.push_str("\n# retries now back off longer\n");
    std::fs::write(&proxy, text).unwrap();
    let run = run_json(t.root(), &["--only", "container.image*"]).await;
    let mut once = 0;
    for agent in ["claude", "qa"] {
        let check = run.expect(&format!("container.image[{agent}]"), "fail", "stale-file");
        let text = check.to_string();
        assert!(
            check["message"]
                .as_str()
                .unwrap()
                .contains("agent-hub/docker/scripts/mcp_proxy.py"),
            "{text}"
        );
        assert!(
            text.contains("/proxy/mcp_proxy.py in the image differs"),
            "{text}"
        );
        assert!(
            check["hint"]
                .as_str()
                .unwrap()
                .contains("docker compose -f agent-hub/docker/docker-compose.yml build"),
            "{text}"
        );
        once += usize::from(text.contains("compared once for image"));
    }
    assert_eq!(once, 1, "one container reads for both:\n{}", run.stdout);
}

/// The hub's entrypoint wipes the user scope at every start, so `--fix` never writes
/// one there: a stale user-scope copy of qms (pointing at localhost) is named, with the
/// restart that clears it, and the file is left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn fix_never_writes_a_user_scope_entry_in_the_hub_layout() {
    let Some((lab, t, image)) = hub_lab("hub_user_scope", &["qa"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &[]);
    let path = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["mcpServers"] = serde_json::json!({
        "qms": {"type": "http", "url": format!("http://localhost:{}/mcp", t.qms)}
    });
    let before = doc.to_string();
    std::fs::write(&path, &before).unwrap();
    let fixed = run_json(t.root(), &["--fix", "--yes", "--only", "config.*"]).await;
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "{}",
        fixed.stdout
    );
    let doc = fixed.json();
    for check in doc["checks"].as_array().unwrap() {
        if check["subject"]["agent"] == "qa" && check["status"] != "ok" && check["status"] != "skip"
        {
            assert_ne!(check["fix"]["available"], true, "{check}");
        }
    }
    assert_eq!(doc["summary"]["fixed"], 0, "{}", fixed.stdout);
}

/// The host's own `.mcp.json` (the root's) that still runs qms as a stdio program
/// starts a second QMS server on every host session: `config.host_mcp_json`, hub only.
#[tokio::test(flavor = "multi_thread")]
async fn a_host_mcp_json_that_runs_qms_itself_is_a_second_server() {
    let t = hub_tree(free_port(), free_port(), &["qa"]);
    t.config("");
    let only = ["--only", "config.host_mcp_json"];
    // The tree's own: qms over HTTP at localhost.
    run_json(t.root(), &only)
        .await
        .expect("config.host_mcp_json", "ok", "ok");
    t.write(
        ".mcp.json",
        r#"{"mcpServers": {"qms": {"command": "C:\\Python312\\python.exe", "args": ["C:\\pipe-dream\\qms-mcp\\server.py", "--token", "host-secret-token"]}}}"#,
    );
    let run = run_json(t.root(), &only).await;
    let c = run.expect("config.host_mcp_json", "warn", "second-server");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("runs qms as a stdio program"),
        "{c}"
    );
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("http://localhost:{}/mcp", t.qms)),
        "{c}"
    );
    assert!(
        !run.stdout.contains("host-secret-token"),
        "an argument was printed"
    );
    // A stdio proxy to the HTTP server is a client, not a second server.
    t.write(
        ".mcp.json",
        &format!(r#"{{"mcpServers": {{"qms": {{"command": "python3", "args": ["proxy.py", "http://localhost:{}/mcp"]}}}}}}"#, t.qms),
    );
    run_json(t.root(), &only)
        .await
        .expect("config.host_mcp_json", "ok", "ok");
    // The primer's layout does not have the check at all.
    let primer = common::Tree::new(free_port(), free_port());
    let run = run_json(primer.root(), &["--only", "config.*"]).await;
    assert!(
        !run.ids().contains(&"config.host_mcp_json".to_string()),
        "{:?}",
        run.ids()
    );
}

/// The Hub believes claude stopped while its container runs, qa running while its Claude
/// Code was quit (no tmux session), bu running with no container at all; tu_ui's belief
/// (running) is right. `hub.service` names the three.
#[tokio::test(flavor = "multi_thread")]
async fn a_hub_whose_states_disagree_with_the_engine_is_out_of_sync() {
    let Some((lab, t, image)) = hub_lab("hub_sync", &["claude", "qa", "bu", "tu_ui"]).await else {
        return;
    };
    let hub = hub_api_saying(&[
        ("claude", "stopped"),
        ("qa", "running"),
        ("bu", "running"),
        ("tu_ui", "running"),
        ("tu_sim", "stopped"),
        ("tu_sketch", "starting"),
    ])
    .await;
    lab.configure_hub(&t, &image, hub);
    for agent in ["claude", "qa", "tu_ui"] {
        lab.start_hub_agent(&t, agent, &image, &[]);
    }
    docker(&["exec", &lab.name("qa"), "tmux", "kill-server"]);
    let run = run_json(t.root(), &[]).await;
    let c = run.expect("hub.service", "warn", "out-of-sync");
    assert_eq!(
        c["message"], "the Agent Hub's view of claude, qa, bu disagrees with the Docker engine's",
        "{c}"
    );
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains(&format!(
            "claude: the Hub says stopped, but {} is running",
            lab.name("claude")
        )),
        "{c}"
    );
    assert!(
        evidence.contains(&format!(
            "qa: the Hub says running, but {} has no tmux session agent",
            lab.name("qa")
        )),
        "{c}"
    );
    assert!(
        evidence.contains("bu: the Hub says running, but no container serves it"),
        "{c}"
    );
    assert!(!evidence.contains("tu_ui:"), "{c}");
    run.expect("container.session[qa]", "warn", "no-session");
}

/// A key in the container's environment is a login; its value is never printed.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_key_in_the_containers_environment_is_a_login() {
    let Some((lab, t, image)) = hub_lab("hub_apikey", &["qa", "bu"]).await else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    for agent in ["qa", "bu"] {
        std::fs::remove_file(t.path(&format!(
            ".claude/users/{agent}/container/.credentials.json"
        )))
        .unwrap();
    }
    lab.start_hub_agent(
        &t,
        "qa",
        &image,
        &["-e", "ANTHROPIC_API_KEY=sk-ant-api03-lab-secret"],
    );
    lab.start_hub_agent(&t, "bu", &image, &[]);
    let run = run_json(t.root(), &["--only", "config.auth*"]).await;
    let c = run.expect("config.auth[qa]", "ok", "ok");
    assert!(
        c["message"].as_str().unwrap().contains("ANTHROPIC_API_KEY"),
        "{c}"
    );
    let c = run.expect("config.auth[bu]", "warn", "not-logged-in");
    assert!(
        c["hint"].as_str().unwrap().contains(&format!(
            "docker exec -it {} tmux attach -t agent, then /login",
            lab.name("bu")
        )),
        "{c}"
    );
    assert!(
        !run.stdout.contains("lab-secret"),
        "a key value was printed"
    );
}

/// `container.config`, each way a container is started wrong: qa starts in `/` (its
/// Claude Code never finds /pipe-dream/.mcp.json), bu's MCP_TIMEOUT is shorter than the
/// proxy's own retries, and tu_ui runs a second Claude Code.
#[tokio::test(flavor = "multi_thread")]
async fn each_way_a_container_is_started_wrong_is_named() {
    let Some((lab, t, image)) = hub_lab("hub_started", &["qa", "bu", "tu_ui", "claude"]).await
    else {
        return;
    };
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &["-w", "/"]);
    lab.start_hub_agent(&t, "bu", &image, &["-e", "MCP_TIMEOUT=5000"]);
    lab.start_hub_agent(&t, "tu_ui", &image, &[]);
    lab.start_hub_agent(&t, "claude", &image, &[]);
    docker(&["exec", "-d", &lab.name("tu_ui"), "claude"]);
    let run = run_json(t.root(), &["--only", "container.config*"]).await;
    run.expect_saying(
        "container.config[qa]",
        "fail",
        "wrong-workdir",
        &["starts in /,"],
    );
    run.expect_saying(
        "container.config[bu]",
        "warn",
        "mcp-timeout-short",
        &["MCP_TIMEOUT=5000", "47 s"],
    );
    run.expect_saying(
        "container.config[tu_ui]",
        "warn",
        "two-clients",
        &["2 Claude Code processes"],
    );
    run.expect("container.config[claude]", "ok", "ok");
}

/// The Hub starts Claude Code's session at 120x30; one started again by hand without
/// `-x 120 -y 30` renders it at tmux's 80x24.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_started_without_the_hubs_size_is_a_pane_too_small() {
    let Some((lab, t, image)) = hub_lab("hub_pane", &["qa", "bu"]).await else {
        return;
    };
    let hub = hub_api(&["qa", "bu"]).await;
    lab.configure_hub(&t, &image, hub);
    lab.start_hub_agent(&t, "qa", &image, &[]);
    lab.start_hub_agent(&t, "bu", &image, &[]);
    let name = lab.name("qa");
    docker(&["exec", &name, "tmux", "kill-server"]);
    docker(&[
        "exec",
        &name,
        "tmux",
        "new-session",
        "-d",
        "-s",
        "agent",
        "claude",
    ]);
    let run = run_json(t.root(), &[]).await;
    assert_eq!(run.code, 0, "a warning: {}", run.stdout);
    let c = run.expect_saying(
        "container.session[qa]",
        "warn",
        "pane-too-small",
        &["80x24", "120x30"],
    );
    assert!(c["hint"].to_string().contains("resize-window"), "{c}");
    run.expect("container.session[bu]", "ok", "ok");
}
