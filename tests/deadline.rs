//! `--timeout` is a promise: given, the run ends by then, whatever the servers, proxies
//! and containers do. A stdio server still at work at the deadline is ended on time and
//! said to be slow (a warning, not a failure); one sleeping is ended and judged.

mod common;

use std::time::Duration;

use common::hub::{hub_image, hub_servers, hub_tree};
use common::lab::{docker_or_skip, Lab};
use common::{free_port, run_json};

/// Over the deadline by at most this, on a busy two-core machine (the benchmark holds
/// the real figure: `cargo bench -- hub-failing`).
const LATE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_busy_at_the_deadline_is_ended_on_time_and_called_slow() {
    if !docker_or_skip("a_stdio_server_busy_at_the_deadline") {
        return;
    }
    let (qms, git) = hub_servers().await;
    let t = hub_tree(qms, git, &["qa"]);
    common::hub::age(&t);
    // git's entry: a Python process that computes and never answers.
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    doc["mcpServers"]["git"]["args"] = serde_json::json!(["-c", "while True: pass"]);
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    let lab = Lab::new("deadline_busy");
    let image = hub_image();
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &[]);

    let run = run_json(t.root(), &["--timeout", "5s"]).await;
    let c = run.expect_saying(
        "container.stdio[qa,git]",
        "warn",
        "slow-start",
        &["still starting at the deadline", "not a hung one"],
    );
    assert!(c["hint"].as_str().unwrap().contains("--timeout"), "{c}");
    run.expect("container.stdio[qa,qms]", "ok", "ok");
    assert!(
        run.elapsed < Duration::from_secs(5) + LATE,
        "--timeout 5s took {:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_waiting_at_the_deadline_is_ended_and_said_to_be_cut_off() {
    if !docker_or_skip("a_stdio_server_waiting_at_the_deadline") {
        return;
    }
    let (qms, git) = hub_servers().await;
    let t = hub_tree(qms, git, &["qa"]);
    common::hub::age(&t);
    // git's entry: a program that waits and never answers (no CPU, no retries).
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    doc["mcpServers"]["git"] = serde_json::json!({"command": "sleep", "args": ["4243"]});
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    let lab = Lab::new("deadline_waiting");
    let image = hub_image();
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &[]);

    let run = run_json(t.root(), &["--timeout", "5s"]).await;
    let c = run.expect("container.stdio[qa,git]", "fail", "timeout");
    assert!(
        c["evidence"]
            .to_string()
            .contains("cut off at the --timeout given; Claude Code waits 60 s"),
        "{c}"
    );
    assert!(
        run.elapsed < Duration::from_secs(5) + LATE,
        "{:?}",
        run.elapsed
    );
    // Without --timeout the same check says nothing of a cut.
    let run = run_json(t.root(), &[]).await;
    let c = run.expect("container.stdio[qa,git]", "fail", "timeout");
    assert!(!c["evidence"].to_string().contains("cut off"), "{c}");
}
