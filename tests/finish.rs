//! From a failed start to a working one, end to end on real parts: a git server that
//! died (its PID file left behind; its start script in the tree starts the real rmcp
//! server), agent qa with stale markers in a running container, agent tu_ui whose
//! `.claude.json` points at localhost. `--fix --yes --force` starts the server, clears
//! the markers, rewrites the entries, restarts both containers and ends at exit 0; a
//! second `--fix` does nothing; without `--force` the containers keep running and the
//! run says how to finish.

mod common;

use common::lab::{docker, lab_or_skip, Lab, GATEWAY};
use common::servers::{self, Bind, McpOptions};
use common::{free_port, run, StopsServer, Tree};

/// PID 1 after the entrypoint: a shell that ends on SIGTERM (as Claude Code does), so a
/// restart does not wait out the engine's grace period.
const AGENT: &str = "trap 'exit 0' TERM; sleep infinity & wait";

/// Fields drop in this order: the server first, while its PID file is still there.
struct Broken {
    _git: StopsServer,
    lab: Lab,
    t: Tree,
}

impl Broken {
    fn started_at(&self, agent: &str) -> String {
        docker(&[
            "inspect",
            "-f",
            "{{.State.StartedAt}}",
            &self.lab.name(agent),
        ])
    }

    fn running(&self, agent: &str) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", &self.lab.name(agent)]) == "true"
    }
}

async fn broken(test: &str) -> Option<Broken> {
    let (lab, image) = lab_or_skip(test, test, "curl")?;
    let qms = servers::mcp_server(McpOptions {
        key: Some("qms-internal".into()),
        bind: Bind::Reachable,
        ..Default::default()
    })
    .await;
    let t = Tree::new(qms.port, free_port());
    t.agent("qa", "marker-without-config")
        .agent("tu_ui", "localhost-urls");
    lab.configure(&t, "");
    let git = common::git_died(&t);
    for agent in ["qa", "tu_ui"] {
        let mut args = Lab::standard_args(&t, agent);
        args.push(GATEWAY.into());
        lab.start(
            &lab.name(agent),
            true,
            &args,
            &[&image, "bash", "-c", AGENT],
        );
    }
    Some(Broken { _git: git, lab, t })
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_with_force_takes_a_failed_start_to_a_working_one() {
    let Some(b) = broken("finishforce").await else {
        return;
    };
    let t = &b.t;
    let before = run(t.root(), &["--json"]).await;
    assert_eq!(before.code, 1);
    before.expect("server.pidfile[git]", "fail", "dead");
    let listen = before.expect("server.listen[git]", "fail", "not-listening");
    assert_eq!(listen["explained_by"], "server.pidfile[git]");
    before.expect("config.marker[qa,qms]", "fail", "stale-marker");
    let missing = before.expect("config.server_entry[qa,qms]", "fail", "missing");
    assert_eq!(missing["explained_by"], "config.marker[qa,qms]");
    before.expect("config.server_entry[tu_ui,qms]", "fail", "localhost-url");
    let reach = before.expect("container.reach[tu_ui,qms]", "fail", "refused");
    assert_eq!(reach["explained_by"], "config.server_entry[tu_ui,qms]");
    let started = (b.started_at("qa"), b.started_at("tu_ui"));

    let r = run(t.root(), &["--json", "--fix", "--yes", "--force"]).await;
    common::validate_schema(&r.json());
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, r.stdout);
    for id in [
        "server.pidfile[git]",
        "server.listen[git]",
        "config.marker[qa,qms]",
        "config.marker[qa,git]",
        "config.server_entry[qa,qms]",
        "config.server_entry[qa,git]",
        "config.server_entry[tu_ui,qms]",
        "config.server_entry[tu_ui,git]",
        "container.reach[tu_ui,qms]",
    ] {
        let c = r.check(id);
        assert_eq!(c["status"], "fixed", "{id}: {c:#}\n{}", r.stderr);
    }
    r.expect("server.mcp[git]", "ok", "ok");
    r.expect("container.reach[qa,git]", "ok", "ok");
    assert_eq!(r.json()["summary"]["fail"], 0);
    // The lab has no settings overlay, so the project-scope copies wait for approval
    // (a warning while the user-scope registrations serve) and no tool is allowed without
    // a prompt: not this lab's subject.
    assert!(r.root_causes().iter().all(|id| !id.starts_with("config.")
        || id.starts_with("config.approval")
        || id.starts_with("config.permissions")));
    for needle in [
        "started git (docker/scripts/start-git-mcp.sh --background)",
        &format!("restarted {}", b.lab.name("qa")),
        &format!("restarted {}", b.lab.name("tu_ui")),
    ] {
        assert!(
            r.stderr.contains(needle),
            "{needle:?} not in:\n{}",
            r.stderr
        );
    }
    assert_ne!(b.started_at("qa"), started.0, "qa was not restarted");
    assert_ne!(b.started_at("tu_ui"), started.1, "tu_ui was not restarted");
    // The entrypoint registered the servers again, as the project has them.
    let qa: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        qa["mcpServers"]["git"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.git)
    );

    let again = run(t.root(), &["--json", "--fix", "--yes", "--force"]).await;
    assert!(
        again.stderr.contains("Nothing to fix automatically"),
        "{}",
        again.stderr
    );
    assert_eq!(again.code, 0);
    assert_eq!(
        b.started_at("qa"),
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &b.lab.name("qa")])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_force_the_containers_keep_running_and_the_run_says_how_to_finish() {
    let Some(b) = broken("finishmanual").await else {
        return;
    };
    let t = &b.t;
    let started = (b.started_at("qa"), b.started_at("tu_ui"));
    let (qa, tu_ui) = (b.lab.name("qa"), b.lab.name("tu_ui"));
    let r = run(t.root(), &["--fix", "--yes", "--color", "never"]).await;
    for needle in [
        format!("restart {qa} to apply (by hand: docker restart {qa};"),
        format!("not done: {qa} is running; restart it to apply: docker restart {qa}"),
        format!("To finish, restart {qa} and {tu_ui} so the entrypoint applies the repairs: docker restart {qa} {tu_ui}"),
    ] {
        assert!(r.stdout.contains(&needle), "{needle:?} not in:\n{}", r.stdout);
    }
    assert!(b.running("qa") && b.running("tu_ui"));
    assert_eq!((b.started_at("qa"), b.started_at("tu_ui")), started);
    // What could be done was: the server runs, the markers are gone, the entries point
    // at the host. qa's registration waits for the restart, and the report says so.
    let after = run(t.root(), &["--json"]).await;
    after.expect("server.mcp[git]", "ok", "ok");
    after.expect("config.marker[qa,qms]", "ok", "none");
    after.expect("config.server_entry[tu_ui,qms]", "ok", "ok");
    let waiting = after.expect("config.server_entry[qa,qms]", "warn", "missing");
    assert!(
        waiting["fix"]["plan"]
            .to_string()
            .contains(&format!("docker restart {qa}")),
        "{waiting}"
    );
    // Until the restart registers them, qa has no server from any scope it may use:
    // config.approval says so (pending, nothing else registers them), and only that fails.
    let failing: Vec<String> = after.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        failing
            .iter()
            .all(|id| id.starts_with("config.approval[qa,")),
        "{failing:?}\n{}",
        after.stdout
    );
}
