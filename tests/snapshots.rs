//! Snapshot tests of the human report (insta): a healthy project, each section of the
//! checklist failing, a `--fix` plan and its outcome, the `reset` plan, `explain` and
//! `list`, each as a reader sees it (command, exit code, stdout, stderr) in
//! tests/snapshots/. A change to the output is then a diff to review (README, Testing).
//!
//! What varies between runs is replaced before comparing: the tree's path, the ports the
//! test picked, durations, PIDs, timestamps in backup and log names, the lab's container
//! names, the Docker bridge's address, pd-doctor's version. A scenario without a lab runs
//! without a Docker engine (`DOCKER_HOST` names a socket that does not exist), so it
//! reads the same on a machine with Docker and without, and `--only` keeps it to the
//! sections it is about.

mod common;

use common::lab::{lab_or_skip, Lab};
use common::servers::{self, McpOptions};
use common::{dead_pid, free_port, Tree};

const NO_ENGINE: &str = "unix:///nonexistent/docker.sock";

/// Runs `pd-doctor ARGS` on `t`, colour off, and compares what it printed with the
/// snapshot `name`. Without a `lab` the run has no Docker engine.
async fn snapshot(name: &str, t: &Tree, lab: Option<&Lab>, args: &[&str]) {
    let mut cmd = common::command(t.root(), args);
    cmd.env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
    if lab.is_none() {
        cmd.env("DOCKER_HOST", NO_ENGINE);
    }
    let r = common::output(&mut cmd).await;
    let command = [&["pd-doctor"], args].concat().join(" ");
    let transcript = format!(
        "$ {command}\nexit code {}\n--- stdout\n{}--- stderr\n{}",
        r.code, r.stdout, r.stderr
    );
    let filters = filters(t, lab);
    insta::with_settings!({
        filters => filters.iter().map(|(re, with)| (re.as_str(), *with)),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, transcript);
    });
}

/// Pattern and placeholder for everything that differs from one run to the next; the
/// literal ones first, so that no pattern below eats part of them.
fn filters(t: &Tree, lab: Option<&Lab>) -> Vec<(String, &'static str)> {
    let literal = |text: String, with| (regex::escape(&text), with);
    let mut f = vec![literal(t.root().display().to_string(), "[ROOT]")];
    if let Some(lab) = lab {
        f.push(literal(format!("pdt-{}", lab.id), "[LAB]"));
        f.push((r"pd-doctor-lab:\d+-".into(), "pd-doctor-lab:[PID]-"));
    }
    if let Some(bridge) = servers::bridge_ip() {
        f.push((
            format!(r"\b{}\b", regex::escape(&bridge.to_string())),
            "[BRIDGE]",
        ));
    }
    f.extend([
        literal(
            format!("pd-doctor {}", env!("CARGO_PKG_VERSION")),
            "pd-doctor [VERSION]",
        ),
        (r"\bpid \d+".into(), "pid [PID]"),
        (r"\.\d{10,}\b".into(), ".[TIMESTAMP]"),
        (r"\b\d+(\.\d+)? (ms|s)\b".into(), "[DURATION]"),
        (format!(r"\b{}\b", t.qms), "[QMS_PORT]"),
        (format!(r"\b{}\b", t.git), "[GIT_PORT]"),
    ]);
    f
}

/// The lab for one test: qms and git up as the primer runs them (reachable from
/// containers, qms keyed), each agent's config dir a copy of its fixture, the
/// project-scope servers approved.
async fn lab_tree(test: &str, agents: &[(&str, &str)]) -> Option<(Lab, String, Tree)> {
    let (lab, image) = lab_or_skip(test, test, "curl")?;
    let (qms, git) = servers::reachable_pair().await;
    let t = Tree::new(qms, git);
    for (agent, fixture) in agents {
        t.agent(agent, fixture);
    }
    lab.configure(&t, "");
    t.approve();
    Some((lab, image, t))
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_project() {
    let Some((lab, image, t)) =
        lab_tree("snaphealthy", &[("claude", "healthy"), ("qa", "healthy")]).await
    else {
        return;
    };
    lab.start_agent(&t, "claude", &image, &[]);
    lab.start_agent(&t, "qa", &image, &[]);
    snapshot("healthy_project", &t, Some(&lab), &[]).await;
}

/// 8.1: qms listens on loopback only and refuses the key the agents send; git died and
/// left its PID file behind.
#[tokio::test(flavor = "multi_thread")]
async fn servers_failing() {
    let qms = servers::mcp_server(McpOptions {
        key: Some("another-key".into()),
        ..Default::default()
    })
    .await;
    let t = Tree::new(qms.port, free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(".git-mcp-server.pid", &format!("{}\n", dead_pid()));
    snapshot("servers_failing", &t, None, &["--only", "server.*"]).await;
}

/// 8.2: qa's container was started without the host gateway, so host.docker.internal
/// does not resolve in it; claude's is fine.
#[tokio::test(flavor = "multi_thread")]
async fn containers_failing() {
    let Some((lab, image, t)) = lab_tree(
        "snapcontainers",
        &[("claude", "healthy"), ("qa", "healthy")],
    )
    .await
    else {
        return;
    };
    lab.start_agent(&t, "claude", &image, &[]);
    let mut no_gateway = Lab::standard_args(&t, "qa");
    no_gateway.extend(["--dns".into(), "127.0.0.1".into()]);
    lab.start(&lab.name("qa"), true, &no_gateway, &[&image]);
    snapshot("containers_failing", &t, Some(&lab), &[]).await;
}

/// A tree whose configuration fails in four ways: claude registered without markers,
/// qa's markers stale, tu_ui's local-scope qms at localhost, bu's `.claude.json` corrupt
/// (with a backup that parses).
fn broken_config() -> Tree {
    let t = Tree::new(free_port(), free_port());
    t.agent("claude", "config-without-marker")
        .agent("qa", "marker-without-config")
        .agent("tu_ui", "local-scope-shadow")
        .agent("bu", "corrupted-with-backup");
    t.config("");
    t.approve();
    t
}

/// 8.3, on the host.
#[tokio::test(flavor = "multi_thread")]
async fn config_failing() {
    let t = broken_config();
    snapshot("config_failing", &t, None, &["--only", "config.*"]).await;
}

/// 8.4: bu's container was created and never started, next to qa's running one; then
/// what `reset` would do there, with a PID file of git's that names a dead process.
#[tokio::test(flavor = "multi_thread")]
async fn stale_container_and_reset_plan() {
    let Some((lab, image, t)) =
        lab_tree("snapstale", &[("qa", "healthy"), ("bu", "healthy")]).await
    else {
        return;
    };
    lab.start_agent(&t, "qa", &image, &[]);
    lab.start(
        &lab.name("bu"),
        false,
        &Lab::standard_args(&t, "bu"),
        &[&image],
    );
    snapshot("stale_container", &t, Some(&lab), &[]).await;
    t.write(".git-mcp-server.pid", &format!("{}\n", dead_pid()));
    snapshot(
        "reset_plan",
        &t,
        Some(&lab),
        &["reset", "--dry-run", "--stop-servers"],
    )
    .await;
}

/// The broken configuration, plus git's PID file naming a dead process: the plan, the
/// refusal to act unasked without a terminal, and what `--fix --yes` did.
#[tokio::test(flavor = "multi_thread")]
async fn fix_plan_and_outcome() {
    let t = broken_config();
    t.write(".git-mcp-server.pid", &format!("{}\n", dead_pid()));
    let host = ["--only", "server.*", "--only", "config.*", "--fix"];
    snapshot("fix_plan", &t, None, &[&host[..], &["--dry-run"]].concat()).await;
    snapshot("fix_without_a_terminal", &t, None, &host).await;
    snapshot("fix_outcome", &t, None, &[&host[..], &["--yes"]].concat()).await;
}

/// In the lab, qa's markers are stale in its running container: `--fix` removes them,
/// and without `--force` leaves the restart to the user and says how to finish.
#[tokio::test(flavor = "multi_thread")]
async fn fix_outcome_with_a_running_container() {
    let Some((lab, image, t)) = lab_tree(
        "snapfix",
        &[("claude", "healthy"), ("qa", "marker-without-config")],
    )
    .await
    else {
        return;
    };
    lab.start_agent(&t, "claude", &image, &[]);
    lab.start_agent(&t, "qa", &image, &[]);
    snapshot(
        "fix_outcome_with_a_running_container",
        &t,
        Some(&lab),
        &["--fix", "--yes"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_one_check() {
    let t = Tree::new(free_port(), free_port());
    snapshot("explain", &t, None, &["explain", "config.marker[qa,qms]"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_the_catalogue() {
    let t = Tree::new(free_port(), free_port());
    snapshot("list", &t, None, &["list"]).await;
}
