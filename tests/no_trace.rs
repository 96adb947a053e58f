//! Leave no trace: across a healthy run of pd-doctor on either layout, the servers' access
//! logs hold no 4xx. Every request pd-doctor makes, from the host or from inside a
//! container, is one a real MCP client makes (POST initialize with the MCP headers and the
//! entry's own, a session ended with DELETE) or a plain TCP connect. And `--compat`, the
//! one probe that knowingly leaves a 406 in a strict server's log, is asked for, or not made.

mod common;

use std::sync::{Arc, Mutex};

use common::hub::{hub_api, hub_image, hub_servers_logged, hub_tree};
use common::lab::{docker_or_skip, lab_or_skip, Lab};
use common::servers::{self, AccessLog, Bind, Logged, McpOptions};
use common::{free_port, run_json, Tree};

fn access_log() -> AccessLog {
    Arc::new(Mutex::new(Vec::new()))
}

fn lines(log: &AccessLog) -> Vec<Logged> {
    log.lock().unwrap().clone()
}

/// The 4xx lines of the log, shown one a line.
fn client_errors(log: &[Logged]) -> Vec<String> {
    log.iter()
        .filter(|l| (400..500).contains(&l.status))
        .map(ToString::to_string)
        .collect()
}

/// Nothing warns or fails, and the run exits 0.
fn all_ok(r: &common::Run) {
    let doc = r.json();
    let not_ok: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !matches!(c["status"].as_str(), Some("ok" | "skip")))
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_primer_run_leaves_no_4xx_in_the_servers_logs() {
    let Some((lab, curl)) = lab_or_skip(
        "a_healthy_primer_run_leaves_no_4xx_in_the_servers_logs",
        "notrace",
        "curl",
    ) else {
        return;
    };
    let log = access_log();
    let (qms, git) = servers::pair_logged(Bind::Reachable, Some(log.clone())).await;
    let t = Tree::new(qms, git);
    for a in ["claude", "qa"] {
        t.agent(a, "healthy");
    }
    lab.configure(&t, "");
    t.approve();
    lab.start_agent(&t, "claude", &curl, &[]);
    lab.start_agent(&t, "qa", &curl, &[]);
    // Generous: a healthy run on a busy machine must not time out into a failure.
    let r = run_json(t.root(), &["--timeout", "10s"]).await;
    all_ok(&r);
    r.expect("container.reach[qa,qms]", "ok", "ok");
    let seen = lines(&log);
    assert_eq!(client_errors(&seen), Vec::<String>::new(), "{seen:#?}");
    // The containers' reach came in as a real client's POST, the key included (qms is
    // keyed: a request without it would be a 401), and so did the host's handshake.
    let posts = |ua: &str| {
        seen.iter()
            .filter(|l| l.method == "POST" && l.path == "/mcp" && l.user_agent.starts_with(ua))
            .count()
    };
    assert!(posts("curl/") >= 4, "two agents, two servers: {seen:#?}");
    assert!(posts("pd-doctor/") >= 2, "{seen:#?}");
    assert!(seen.iter().all(|l| l.method != "GET"), "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_hub_run_leaves_no_4xx_in_the_servers_logs() {
    let test = "a_healthy_hub_run_leaves_no_4xx_in_the_servers_logs";
    if !docker_or_skip(test) {
        return;
    }
    let log = access_log();
    let (qms, git) = hub_servers_logged(Some(log.clone())).await;
    let t = hub_tree(qms, git, &["claude", "qa"]);
    common::hub::age(&t);
    let lab = Lab::new("hub_notrace");
    let image = hub_image();
    let hub = hub_api(&["claude", "qa"]).await;
    lab.configure_hub(&t, &image, hub);
    for agent in ["claude", "qa"] {
        lab.start_hub_agent(&t, agent, &image, &[]);
    }
    // What the agents' own proxies did before pd-doctor ran is theirs, not pd-doctor's.
    let before = lines(&log).len();
    let r = run_json(t.root(), &["--timeout", "10s"]).await;
    all_ok(&r);
    let during: Vec<Logged> = lines(&log)[before..].to_vec();
    // pd-doctor's own requests (from the host, and its clients from inside), and the
    // stdio proxies it starts in the containers as Claude Code would (real clients:
    // their 4xx would be theirs, and this test would name them).
    let ours: Vec<Logged> = during
        .iter()
        .filter(|l| !l.user_agent.starts_with("python-httpx"))
        .cloned()
        .collect();
    let proxies: Vec<Logged> = during
        .iter()
        .filter(|l| l.user_agent.starts_with("python-httpx"))
        .cloned()
        .collect();
    assert_eq!(client_errors(&ours), Vec::<String>::new(), "{during:#?}");
    assert_eq!(
        client_errors(&proxies),
        Vec::<String>::new(),
        "the stdio proxy's own requests: {proxies:#?}"
    );
    assert!(!during.is_empty(), "nothing reached the servers");
    assert!(during.iter().all(|l| l.method != "GET"), "{during:#?}");
}

/// A tree whose qms is `qms` and whose git nobody serves.
fn tree_for(qms: u16) -> Tree {
    let t = Tree::new(qms, free_port());
    t.agent("claude", "healthy");
    t.config("");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn compat_names_a_strict_server_and_leaves_nothing_unasked() {
    // rmcp is strict: 406 to a POST that does not accept both JSON and SSE.
    let log = access_log();
    let s = servers::logged_mcp_server(McpOptions::default(), Some(log.clone())).await;
    let t = tree_for(s.port);
    // Without --compat: no such probe, and not one 4xx from every server check.
    let r = run_json(t.root(), &["--only", "server.*[qms]"]).await;
    r.expect("server.mcp[qms]", "ok", "ok");
    r.expect("server.oauth[qms]", "ok", "ok");
    r.expect("server.session[qms]", "ok", "ok");
    assert_eq!(
        client_errors(&lines(&log)),
        Vec::<String>::new(),
        "{:#?}",
        lines(&log)
    );
    // With it: a note, exit 0, and the one 406 it said it would leave.
    let before = lines(&log).len();
    let r = run_json(t.root(), &["--compat", "--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "ok", "strict-accept");
    assert!(c["message"].as_str().unwrap().contains("406"), "{c}");
    assert!(c["evidence"].to_string().contains("Accept: */*"), "{c}");
    assert_eq!(r.code, 0);
    let after = lines(&log)[before..].to_vec();
    assert_eq!(client_errors(&after).len(), 1, "{after:#?}");
    // The human report shows the note, where it hides passing checks, with its advice.
    let human = common::run(t.root(), &["--compat", "--only", "server.mcp[qms]"]).await;
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert!(human.stdout.contains("(strict-accept)"), "{}", human.stdout);
    assert!(
        human.stdout.contains("→ nothing to do for Claude Code"),
        "{}",
        human.stdout
    );
    // A lenient server (hand-written: any POST is served) gets no note.
    let init = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"lenient","version":"1"}}}"#;
    let lenient = servers::session_echo_server(init).await;
    let r = run_json(
        tree_for(lenient.port).root(),
        &["--compat", "--only", "server.mcp[qms]"],
    )
    .await;
    let c = r.expect("server.mcp[qms]", "ok", "ok");
    assert!(c["evidence"].to_string().contains("Accept: */*"), "{c}");
    assert_eq!(r.code, 0);
}

/// A stateful server: pd-doctor ends every session it opens (its handshake's, and the
/// one a container's reach opened, from the host), and the one 4xx left is the 404 the
/// stale-session check asks for, by design.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_opened_from_inside_are_ended() {
    let Some((lab, curl)) = lab_or_skip(
        "sessions_opened_from_inside_are_ended",
        "notrace_sessions",
        "curl",
    ) else {
        return;
    };
    let log = access_log();
    let qms = servers::logged_mcp_server(
        McpOptions {
            stateful: true,
            bind: Bind::Reachable,
            ..Default::default()
        },
        Some(log.clone()),
    )
    .await;
    let git = servers::logged_mcp_server(
        McpOptions {
            bind: Bind::Reachable,
            ..Default::default()
        },
        Some(log.clone()),
    )
    .await;
    let t = Tree::new(qms.port, git.port);
    t.agent("qa", "healthy");
    lab.configure(&t, "");
    lab.start_agent(&t, "qa", &curl, &[]);
    // Generous: a healthy run on a busy machine must not time out into a failure.
    let r = run_json(t.root(), &["--timeout", "10s"]).await;
    let c = r.expect("container.reach[qa,qms]", "ok", "ok");
    assert!(
        c["evidence"]
            .to_string()
            .contains("ended the session it opened: DELETE -> 2"),
        "{c}"
    );
    r.expect("server.session[qms]", "warn", "stateful");
    let seen = lines(&log);
    let opened = seen
        .iter()
        .filter(|l| l.method == "POST" && l.path == "/mcp" && l.status == 200)
        .count();
    let deleted = seen
        .iter()
        .filter(|l| l.method == "DELETE" && (200..300).contains(&l.status))
        .count();
    // git is stateless: its initializes open nothing. qms: the handshake and the reach.
    assert!(deleted >= 2, "{seen:#?}");
    assert!(opened >= deleted, "{seen:#?}");
    let errors = client_errors(&seen);
    assert_eq!(errors.len(), 1, "{seen:#?}");
    assert!(errors[0].starts_with("POST /mcp -> 404"), "{errors:?}");
}
