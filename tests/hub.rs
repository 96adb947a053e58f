//! pd-doctor on the layout Pipe Dream runs today: an Agent Hub tree (no `docker/` at the
//! root), containers started as the Hub starts them, stdio proxy entries and real MCP
//! servers that require the proxy's headers. A healthy lab is healthy, and each way it
//! breaks is named with its cause.

mod common;

use std::time::Duration;

use common::hub::{hub_image, hub_servers, hub_tree};
use common::lab::{docker, docker_or_skip, Lab};
use common::{free_port, run_json, Tree};

/// Pins the tree's container files to an old time, as a tree checked out before the
/// image was built has them.
fn age(t: &Tree) {
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for f in ["Dockerfile", "entrypoint.sh", "scripts/mcp_proxy.py"] {
        std::fs::File::options()
            .write(true)
            .open(t.path(&format!("agent-hub/docker/{f}")))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

/// A hub tree with `agents`, this lab's names, and the Hub's address (`hub`).
async fn hub_lab(test: &str, agents: &[&str]) -> Option<(Lab, Tree, String)> {
    if !docker_or_skip(test) {
        return None;
    }
    let (qms, git) = hub_servers().await;
    let t = hub_tree(qms, git, agents);
    age(&t);
    let lab = Lab::new(test);
    let image = hub_image();
    Some((lab, t, image))
}

fn configure(lab: &Lab, t: &Tree, image: &str, hub: u16) {
    t.config(&format!(
        "[layout]\ncontainer_prefix = \"{}\"\ncompose_project = \"pdt-{}\"\nimage = \"{}\"\nhub = \"http://127.0.0.1:{hub}\"",
        lab.prefix,
        lab.id,
        image.split(':').next().unwrap_or(image),
    ));
}

/// The Agent Hub's API as far as pd-doctor reads it: `/api/health` and `/api/status`.
/// A stand-in, since the real Hub (FastAPI) is not installed here.
async fn hub_api(agents: &[&str]) -> u16 {
    let status = serde_json::json!({
        "agents": agents.iter().map(|a| serde_json::json!({
            "id": a, "state": "running", "inbox_count": 0, "launch_policy": "manual"
        })).collect::<Vec<_>>(),
        "uptime_seconds": 1.0
    });
    let app = axum::Router::new()
        .route(
            "/api/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/api/status",
            axum::routing::get(move || {
                let status = status.clone();
                async move { axum::Json(status) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_hub_lab_is_healthy_and_fix_changes_nothing() {
    let Some((lab, t, image)) = hub_lab("hub_healthy", &["claude", "qa"]).await else {
        return;
    };
    let hub = hub_api(&["claude", "qa"]).await;
    configure(&lab, &t, &image, hub);
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
}

#[tokio::test(flavor = "multi_thread")]
async fn each_way_a_hub_agent_breaks_is_named() {
    let Some((lab, t, image)) = hub_lab("hub_broken", &["qa", "bu", "tu_ui"]).await else {
        return;
    };
    configure(&lab, &t, &image, free_port());
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
    let gone = run.expect("container.stdio[qa,git]", "fail", "command-not-found");
    assert!(
        gone["message"].as_str().unwrap().contains("/proxy/gone.py"),
        "{gone}"
    );
    let module = run.expect("container.stdio[qa,qms]", "fail", "exited");
    assert!(
        module["message"]
            .as_str()
            .unwrap()
            .contains("ModuleNotFoundError"),
        "{module}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_whose_upstream_refuses_its_key_is_traced_to_the_401() {
    let Some((lab, t, image)) = hub_lab("hub_401", &["qa"]).await else {
        return;
    };
    configure(&lab, &t, &image, free_port());
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    t.write(
        "agent-hub/docker/.mcp.json",
        &mcp.replace("X-API-Key=qms-internal", "X-API-Key=wrong-key"),
    );
    lab.start_hub_agent(&t, "qa", &image, &[]);
    let run = run_json(t.root(), &["--timeout", "2s"]).await;
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
    configure(&lab, &t, &image, free_port());
    // git's entry is a program that never answers and never ends.
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    doc["mcpServers"]["git"] = serde_json::json!({"command": "sleep", "args": ["4242"]});
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    lab.start_hub_agent(&t, "qa", &image, &[]);
    let run = run_json(t.root(), &["--timeout", "1s"]).await;
    run.expect("container.stdio[qa,git]", "fail", "timeout");
    run.expect("container.stdio[qa,qms]", "ok", "ok");
    assert!(run.elapsed < Duration::from_secs(6), "{:?}", run.elapsed);
    let top = docker(&["top", &lab.name("qa")]);
    assert!(!top.contains("4242"), "left running: {top}");
}
