//! `--timeout` is a promise: given, the run ends by then, whatever the servers, proxies
//! and containers do. A stdio server still at work at the deadline is ended on time and
//! said to be slow (a warning, not a failure); one sleeping is ended and judged.

mod common;

use std::time::Duration;

use common::hub::{hub_image, hub_servers, hub_tree};
use common::lab::{docker_or_skip, Lab};
use common::{free_port, run_json, Tree};

/// Over the deadline by at most this, on a busy two-core machine (the benchmark holds
/// the real figure: `cargo bench -- hub-failing`).
const LATE: Duration = Duration::from_secs(2);

/// A hub lab whose agent qa runs, its git entry changed by `git` (or skip).
async fn hub_with_git(test: &str, git: impl FnOnce(&mut serde_json::Value)) -> Option<(Lab, Tree)> {
    if !docker_or_skip(test) {
        return None;
    }
    let (qms, git_port) = hub_servers().await;
    let t = hub_tree(qms, git_port, &["qa"]);
    common::hub::age(&t);
    let mcp = std::fs::read_to_string(t.path("agent-hub/docker/.mcp.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&mcp).unwrap();
    git(&mut doc["mcpServers"]["git"]);
    t.write("agent-hub/docker/.mcp.json", &doc.to_string());
    let lab = Lab::new(test);
    let image = hub_image();
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(&t, "qa", &image, &[]);
    Some((lab, t))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_busy_at_the_deadline_is_ended_on_time_and_called_slow() {
    // git's entry: a Python process that computes and never answers.
    let busy =
        |git: &mut serde_json::Value| git["args"] = serde_json::json!(["-c", "while True: pass"]);
    let Some((_lab, t)) = hub_with_git("deadline_busy", busy).await else {
        return;
    };
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
    // git's entry: a program that waits and never answers (no CPU, no retries).
    let waiting = |git: &mut serde_json::Value| {
        *git = serde_json::json!({"command": "sleep", "args": ["4243"]})
    };
    let Some((_lab, t)) = hub_with_git("deadline_waiting", waiting).await else {
        return;
    };
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
