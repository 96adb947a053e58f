//! Primer 8.1: the server checks against real MCP servers (rmcp), fault servers, and
//! real processes for the PID-file checks.

mod common;

use std::time::{Duration, SystemTime};

use common::servers::{self, Bind, Fault, McpOptions};
use common::{free_port, run_json, Tree};

const KEY: &str = "qms-internal";

fn keyed() -> McpOptions {
    McpOptions {
        key: Some(KEY.into()),
        ..Default::default()
    }
}

/// A tree whose qms is `qms` and whose git nobody serves.
fn tree_for(qms: u16) -> Tree {
    let t = Tree::new(qms, free_port());
    t.agent("claude", "healthy");
    t.config("");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_stateless_server_with_key_passes_every_server_check() {
    // Reachable means bound to the Docker bridge too: no engine, no bridge.
    if !common::lab::docker_or_skip("healthy_stateless_server_with_key_passes_every_server_check") {
        return;
    }
    let s = servers::mcp_server(McpOptions {
        bind: Bind::Reachable,
        ..keyed()
    })
    .await;
    let t = tree_for(s.port);
    let r = run_json(t.root(), &["--only", "server.*[qms]"]).await;
    r.expect("server.listen[qms]", "ok", "ok");
    let mcp = r.expect("server.mcp[qms]", "ok", "ok");
    assert!(
        mcp["message"].as_str().unwrap().contains("2 tools"),
        "{mcp}"
    );
    r.expect("server.session[qms]", "ok", "ok");
    r.expect("server.oauth[qms]", "ok", "ok");
    r.expect("server.pidfile[qms]", "ok", "absent");
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_bound_to_loopback_only_fails_listen_but_still_handshakes() {
    let s = servers::mcp_server(keyed()).await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.*[qms]"]).await;
    r.expect("server.listen[qms]", "fail", "loopback-only");
    r.expect("server.mcp[qms]", "ok", "ok");
    assert_eq!(r.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_fails_listen_and_skips_the_handshake() {
    let t = tree_for(free_port());
    let r = run_json(t.root(), &["--only", "server.*[qms]"]).await;
    r.expect("server.listen[qms]", "fail", "not-listening");
    let mcp = r.expect("server.mcp[qms]", "skip", "precondition");
    assert_eq!(mcp["message"], "server qms is not listening");
    r.expect("server.session[qms]", "skip", "precondition");
    r.expect("server.oauth[qms]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_key_is_unauthorized_and_names_headers_not_values() {
    let s = servers::mcp_server(McpOptions {
        key: Some("the-servers-own-key".into()),
        ..Default::default()
    })
    .await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "fail", "unauthorized");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("401") && msg.contains("X-API-Key, Authorization"),
        "{msg}"
    );
    assert!(!r.stdout.contains(KEY) && !r.stdout.contains("internal-trusted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rmcp_default_allowed_hosts_refuse_host_docker_internal() {
    let s = servers::mcp_server(McpOptions {
        allow_docker_host: false,
        ..keyed()
    })
    .await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "fail", "host-rejected");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("host.docker.internal"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stateful_server_is_a_warning_with_the_stale_session_story() {
    let s = servers::mcp_server(McpOptions {
        stateful: true,
        ..keyed()
    })
    .await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.*[qms]"]).await;
    r.expect("server.mcp[qms]", "ok", "ok");
    let c = r.expect("server.session[qms]", "warn", "stateful");
    assert!(c["evidence"].to_string().contains("404"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stateful_server_that_accepts_unknown_sessions_is_unrecoverable() {
    // Answers every POST alike, issuing a session id: a 200 to an unknown session too.
    let init = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"sticky","version":"1"}}}"#;
    let s = servers::session_echo_server(init).await;
    let r = run_json(
        tree_for(s.port).root(),
        &["--only", "server.session[qms]", "--only", "server.mcp[qms]"],
    )
    .await;
    r.expect("server.session[qms]", "fail", "unrecoverable");
}

#[tokio::test(flavor = "multi_thread")]
async fn expected_tools_missing_is_missing_tools() {
    let s = servers::mcp_server(keyed()).await;
    let t = Tree::new(s.port, free_port());
    t.write(
        "pd-doctor.toml",
        &format!(
            "[[server]]\nname = \"qms\"\nport = {}\ntools = [\"qms_inbox\", \"qms_route\"]\n",
            s.port
        ),
    );
    let r = run_json(t.root(), &["--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "fail", "missing-tools");
    assert!(c["message"].as_str().unwrap().contains("qms_route"));
}

async fn fault_cause(fault: Fault) -> serde_json::Value {
    let s = servers::fault_server(fault).await;
    let r = run_json(
        tree_for(s.port).root(),
        &["--only", "server.mcp[qms]", "--timeout", "1s"],
    )
    .await;
    r.check("server.mcp[qms]")
}

fn assert_cause(c: &serde_json::Value, status: &str, cause: &str) {
    assert_eq!(
        (c["status"].as_str().unwrap(), c["cause"].as_str().unwrap()),
        (status, cause),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_server_is_a_timeout() {
    assert_cause(&fault_cause(Fault::Hang).await, "fail", "timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_answer_is_not_mcp() {
    let c = fault_cause(servers::ok_json("<html>hello</html>")).await;
    assert_cause(&c, "fail", "not-mcp");
    let c = fault_cause(servers::ok_json(r#"{"hello": "world"}"#)).await;
    assert_cause(&c, "fail", "not-mcp");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_statuses_have_their_causes() {
    for (code, cause) in [
        (401, "unauthorized"),
        (404, "not-found"),
        (406, "not-acceptable"),
        (500, "server-error"),
        (421, "host-rejected"),
    ] {
        let c = fault_cause(Fault::Status(code, "text/plain", "no".into())).await;
        assert_cause(&c, "fail", cause);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonrpc_error_to_initialize_is_protocol_error() {
    let c = fault_cause(servers::ok_json(
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad version"}}"#,
    ))
    .await;
    assert_cause(&c, "fail", "protocol-error");
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_body_is_capped_not_read() {
    let c = fault_cause(Fault::Huge(50 * 1024 * 1024)).await;
    assert_cause(&c, "fail", "not-mcp");
    assert!(
        c["message"].as_str().unwrap().contains("larger than"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_drip_is_a_timeout() {
    assert_cause(&fault_cause(Fault::Drip).await, "fail", "timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hung_servers_cost_one_timeout() {
    let mut ports = Vec::new();
    for _ in 0..5 {
        ports.push(servers::fault_server(Fault::Hang).await.port);
    }
    let t = Tree::new(ports[0], ports[1]);
    let toml: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("[[server]]\nname = \"s{i}\"\nport = {p}\n"))
        .collect();
    t.write("pd-doctor.toml", &toml);
    let r = run_json(t.root(), &["--only", "server.*", "--timeout", "1s"]).await;
    for i in 0..5 {
        r.expect(&format!("server.mcp[s{i}]"), "fail", "timeout");
    }
    assert!(r.elapsed < Duration::from_secs(3), "took {:?}", r.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_paths_answering_html_or_redirects_warn() {
    let s =
        servers::fault_server(Fault::Status(200, "text/html", "<html>login</html>".into())).await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.oauth[qms]"]).await;
    r.expect("server.oauth[qms]", "warn", "junk-metadata");
    let s = servers::fault_server(Fault::Status(302, "text/plain", String::new())).await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.oauth[qms]"]).await;
    r.expect("server.oauth[qms]", "warn", "redirect");
    let s = servers::fault_server(servers::ok_json(
        r#"{"resource":"http://x/mcp","issuer":"http://x","authorization_servers":[]}"#,
    ))
    .await;
    let r = run_json(tree_for(s.port).root(), &["--only", "server.oauth[qms]"]).await;
    r.expect("server.oauth[qms]", "ok", "advertised");
}

// --- PID files -------------------------------------------------------------------------

fn set_mtime(path: &std::path::Path, when: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pid_file_of_a_dead_server_is_dead() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let t = tree_for(free_port());
    t.write(".qms-mcp-server.pid", &format!("{pid}\n"));
    let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
    let c = r.expect("server.pidfile[qms]", "fail", "dead");
    assert_eq!(c["fix"]["available"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn pid_reused_by_a_younger_process_is_reused() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let t = tree_for(free_port());
    t.write(".qms-mcp-server.pid", &child.id().to_string());
    set_mtime(
        &t.path(".qms-mcp-server.pid"),
        SystemTime::now() - Duration::from_secs(3600),
    );
    let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    r.expect("server.pidfile[qms]", "fail", "reused");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_empty_pid_files_are_garbage() {
    for content in ["not a pid", "", "-4", "12 34", "\u{0}\u{1}"] {
        let t = tree_for(free_port());
        t.write(".qms-mcp-server.pid", content);
        let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
        r.expect("server.pidfile[qms]", "fail", "garbage");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pid_file_that_is_a_directory_is_unreadable() {
    let t = tree_for(free_port());
    std::fs::create_dir_all(t.path(".qms-mcp-server.pid")).unwrap();
    let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
    r.expect("server.pidfile[qms]", "fail", "unreadable");
}

#[tokio::test(flavor = "multi_thread")]
async fn pid_file_naming_the_server_itself_is_ok() {
    let s = servers::mcp_server(keyed()).await;
    let t = tree_for(s.port);
    // This test process serves the port, so its own PID is the server's.
    t.write(".qms-mcp-server.pid", &std::process::id().to_string());
    set_mtime(&t.path(".qms-mcp-server.pid"), SystemTime::now());
    let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
    r.expect("server.pidfile[qms]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_process_that_does_not_own_the_port_is_a_mismatch() {
    let s = servers::mcp_server(keyed()).await;
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = tree_for(s.port);
    t.write(".qms-mcp-server.pid", &child.id().to_string());
    let r = run_json(t.root(), &["--only", "server.pidfile*"]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    r.expect("server.pidfile[qms]", "warn", "port-owner-mismatch");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_that_answers_get_406_but_is_not_ready_for_the_handshake() {
    // `curl http://localhost:8000/mcp` "works" (406), yet Claude Code's POST fails.
    let c = fault_cause(Fault::NotReady).await;
    assert_cause(&c, "fail", "server-error");
    assert!(c["message"].as_str().unwrap().contains("503"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_path_on_a_real_server_is_not_found() {
    let s = servers::mcp_server(keyed()).await;
    let t = tree_for(s.port);
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON)
            .replace(&format!("{}/mcp", s.port), &format!("{}/sse", s.port)),
    );
    let r = run_json(t.root(), &["--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "fail", "not-found");
    assert!(c["message"].as_str().unwrap().contains("/sse"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_and_ports_come_from_docker_mcp_json_without_any_toml() {
    let s = servers::mcp_server(keyed()).await;
    let t = Tree::new(s.port, free_port());
    t.agent("qa", "healthy");
    let r = run_json(t.root(), &["--only", "server.mcp*"]).await;
    r.expect("server.mcp[qms]", "ok", "ok");
    r.expect("server.mcp[git]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn unparsable_url_in_mcp_json_is_bad_url() {
    let s = servers::mcp_server(keyed()).await;
    let t = tree_for(s.port);
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON).replace(
            &format!("http://host.docker.internal:{}/mcp", s.port),
            "http://[::1",
        ),
    );
    let r = run_json(t.root(), &["--only", "server.mcp[qms]"]).await;
    r.expect("server.mcp[qms]", "fail", "bad-url");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_urls_are_said_to_be_unprobed_not_failed() {
    let s = servers::mcp_server(keyed()).await;
    let t = tree_for(s.port);
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON).replace(
            "http://host.docker.internal",
            "https://host.docker.internal",
        ),
    );
    let r = run_json(t.root(), &["--only", "server.*[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "skip", "precondition");
    assert!(
        c["message"].as_str().unwrap().contains("plain http only"),
        "{c}"
    );
    r.expect("server.oauth[qms]", "skip", "precondition");
}
