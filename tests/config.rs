//! Primer 8.3 on real files: the agent config dirs the real Claude Code CLI wrote
//! (tests/fixtures/claude-config), and hostile ones built here.

mod common;

use common::servers::{self, Bind};
use common::{free_port, run_json, Run, Tree};

/// One agent `qa` from `fixture`, no servers running; only the config checks run.
async fn diagnose(fixture: &str) -> Run {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", fixture);
    t.config("");
    run_json(t.root(), &["--only", "config.*"]).await
}

async fn diagnose_tree(t: &Tree) -> Run {
    run_json(t.root(), &["--only", "config.*"]).await
}

#[tokio::test]
async fn healthy_config_passes_every_config_check() {
    let r = diagnose("healthy").await;
    for id in [
        "config.isolation",
        "config.claude_json[qa]",
        "config.mcp_json",
    ] {
        r.expect(id, "ok", "ok");
    }
    for server in ["qms", "git"] {
        r.expect(&format!("config.marker[qa,{server}]"), "ok", "ok");
        r.expect(&format!("config.server_entry[qa,{server}]"), "ok", "ok");
        r.expect(&format!("config.scope_conflict[qa,{server}]"), "ok", "ok");
    }
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[tokio::test]
async fn stale_marker_after_failed_mcp_add() {
    let r = diagnose("marker-without-config").await;
    let c = r.expect("config.marker[qa,qms]", "fail", "stale-marker");
    assert_eq!(c["fix"]["available"], true);
    r.expect("config.marker[qa,git]", "fail", "stale-marker");
    r.expect("config.server_entry[qa,qms]", "fail", "missing");
    assert_eq!(r.code, 1);
}

#[tokio::test]
async fn git_marker_without_git_registration() {
    let r = diagnose("git-marker-only").await;
    r.expect("config.marker[qa,qms]", "ok", "ok");
    r.expect("config.marker[qa,git]", "fail", "stale-marker");
}

#[tokio::test]
async fn registration_without_marker_is_harmless() {
    let r = diagnose("config-without-marker").await;
    r.expect("config.marker[qa,qms]", "warn", "missing-marker");
    r.expect("config.server_entry[qa,qms]", "ok", "ok");
}

#[tokio::test]
async fn neither_marker_nor_registration_waits_for_the_entrypoint() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(".claude/users/qa/container/.claude.json", "{}");
    for m in [".mcp-configured", ".git-mcp-configured"] {
        std::fs::remove_file(t.path(&format!(".claude/users/qa/container/{m}"))).unwrap();
    }
    let r = diagnose_tree(&t).await;
    r.expect("config.marker[qa,qms]", "ok", "none");
    r.expect("config.server_entry[qa,qms]", "warn", "missing");
}

#[tokio::test]
async fn localhost_url_in_a_container_config() {
    let r = diagnose("localhost-urls").await;
    let c = r.expect("config.server_entry[qa,qms]", "fail", "localhost-url");
    assert_eq!(c["fix"]["available"], true);
    r.expect("config.server_entry[qa,git]", "fail", "localhost-url");
}

#[tokio::test]
async fn x_api_key_without_authorization() {
    let r = diagnose("missing-auth-header").await;
    let c = r.expect("config.server_entry[qa,qms]", "fail", "missing-auth-header");
    assert!(
        c["message"].as_str().unwrap().contains("Authorization"),
        "{c}"
    );
    assert!(c["evidence"].to_string().contains("OAuth"), "{c}");
    r.expect("config.server_entry[qa,git]", "ok", "ok");
}

#[tokio::test]
async fn ports_swapped_between_servers() {
    // Each entry names the other server's port: Claude Code connects, to the other
    // server, and says "✔ Connected" (seen with Claude Code 2.1.327); pd-doctor names it.
    let r = diagnose("wrong-port").await;
    r.expect_saying(
        "config.server_entry[qa,qms]",
        "fail",
        "wrong-server",
        &["is git's", "Connected"],
    );
    // git's entry lands on qms, which wants headers git's entry does not send: Claude
    // Code fails there with a 401.
    r.expect_saying(
        "config.server_entry[qa,git]",
        "fail",
        "wrong-port",
        &["is qms's", "401"],
    );
    assert_eq!(r.client("qa", "git")["expected"], "failed");
    let verdict = r.client("qa", "qms");
    assert_eq!(verdict["expected"], "connected", "{verdict}");
    assert_eq!(
        verdict["because"], "config.server_entry[qa,qms]",
        "{verdict}"
    );
}

#[tokio::test]
async fn a_port_no_server_has_is_a_wrong_port() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let path = ".claude/users/qa/container/.claude.json";
    let cj = std::fs::read_to_string(t.path(path)).unwrap();
    t.write(path, &cj.replacen(&format!(":{}/", t.qms), ":1/", 1));
    let r = diagnose_tree(&t).await;
    r.expect("config.server_entry[qa,qms]", "fail", "wrong-port");
}

#[tokio::test]
async fn sse_transport_for_a_streamable_http_server() {
    let r = diagnose("sse-transport").await;
    r.expect("config.server_entry[qa,qms]", "fail", "wrong-transport");
}

#[tokio::test]
async fn wrong_path_and_bad_url() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let cj = std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap();
    let cj = cj.replacen("/mcp\"", "/sse\"", 1).replacen(
        &format!("http://host.docker.internal:{}/mcp", t.git),
        "not a url",
        1,
    );
    t.write(".claude/users/qa/container/.claude.json", &cj);
    let r = diagnose_tree(&t).await;
    r.expect("config.server_entry[qa,qms]", "fail", "wrong-path");
    r.expect("config.server_entry[qa,git]", "fail", "bad-url");
}

#[tokio::test]
async fn local_scope_shadows_user_scope_with_localhost() {
    let r = diagnose("local-scope-shadow").await;
    let c = r.expect("config.scope_conflict[qa,qms]", "fail", "conflict");
    assert!(
        c["message"].as_str().unwrap().contains("local scope"),
        "{c}"
    );
    r.expect("config.scope_conflict[qa,git]", "ok", "ok");
}

#[tokio::test]
async fn project_scope_key_differs_from_user_scope() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(
        "docker/.mcp.json",
        &t.ported(&common::fixture_text("project-scope/.mcp.json")),
    );
    // Claude Code uses the project copy only once it is approved, in a trusted folder.
    t.approve();
    t.trust("qa");
    let r = diagnose_tree(&t).await;
    // Project scope wins over user scope and is what docker/.mcp.json says: a warning.
    r.expect("config.scope_conflict[qa,qms]", "warn", "conflict");
}

/// In a folder whose trust dialog was never accepted, Claude Code 2.1.327 takes the
/// user-scope copy over the approved project one (its `mcp list` shows the user URL).
#[tokio::test]
async fn an_untrusted_folder_keeps_the_user_scope_copy_in_use() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "localhost-urls");
    t.config("");
    t.approve();
    let r = diagnose_tree(&t).await;
    let entry = r.expect("config.server_entry[qa,qms]", "fail", "localhost-url");
    assert_eq!(entry["scope"], "user", "{entry}");
    // Nothing waits on the trust: every server has its user copy.
    r.expect_saying("config.trust[qa]", "ok", "ok", &["user scope"]);
    t.trust("qa");
    let r = diagnose_tree(&t).await;
    let entry = r.expect("config.server_entry[qa,qms]", "ok", "ok");
    assert_eq!(entry["scope"], "project", "{entry}");
    r.expect("config.trust[qa]", "ok", "ok");
}

/// A project-scope server with no other copy waits on the trust dialog: "⏸ Pending
/// approval" in Claude Code, however it is approved; `--fix` records the answer.
#[tokio::test]
async fn an_untrusted_folder_holds_back_the_project_servers() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "config-without-marker");
    let path = t.path(".claude/users/qa/container/.claude.json");
    t.write(
        ".claude/users/qa/container/.claude.json",
        "{\"hasCompletedOnboarding\": true}\n",
    );
    t.config("");
    t.approve();
    let r = diagnose_tree(&t).await;
    let c = r.expect_saying(
        "config.trust[qa]",
        "fail",
        "not-accepted",
        &["qms, git", "pending approval"],
    );
    assert_eq!(c["fix"]["available"], true, "{c}");
    for server in ["qms", "git"] {
        let v = r.client("qa", server);
        assert_eq!(v["expected"], "pending-approval", "{v}");
        assert_eq!(v["because"], "config.trust[qa]", "{v}");
        assert_eq!(v["scope"], "project", "{v}");
    }
    let fixed = common::run_json(t.root(), &["--only", "config.*", "--fix", "--yes"]).await;
    fixed.expect("config.trust[qa]", "fixed", "ok");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        doc["projects"]["/pipe-dream"]["hasTrustDialogAccepted"],
        true
    );
    assert_eq!(
        doc["hasCompletedOnboarding"], true,
        "other keys kept: {doc}"
    );
    let again = diagnose_tree(&t).await;
    again.expect("config.trust[qa]", "ok", "ok");
    // Held back no more; whether it connects, checks this run left out would say.
    assert_eq!(again.client("qa", "qms")["expected"], "unknown");
}

#[tokio::test]
async fn truncated_claude_json_is_corrupt_and_restorable() {
    let r = diagnose("corrupted-with-backup").await;
    let c = r.expect("config.claude_json[qa]", "fail", "corrupt");
    assert!(
        c["fix"]["plan"][0]
            .as_str()
            .unwrap()
            .contains("backups/.claude.json.backup."),
        "{c}"
    );
    r.expect("config.marker[qa,qms]", "skip", "precondition");
    r.expect("config.server_entry[qa,qms]", "skip", "precondition");
}

#[tokio::test]
async fn empty_claude_json_is_empty() {
    let r = diagnose("empty-file").await;
    r.expect("config.claude_json[qa]", "fail", "empty");
}

async fn with_claude_json(bytes: &[u8]) -> Run {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write_bytes(".claude/users/qa/container/.claude.json", bytes);
    diagnose_tree(&t).await
}

#[tokio::test]
async fn wrong_types_are_wrong_shape() {
    for doc in [
        &br#"{"mcpServers": []}"#[..],
        br#"[1, 2]"#,
        br#"{"mcpServers": {"qms": "http://x"}}"#,
        br#"{"projects": 3}"#,
        b"null",
    ] {
        let r = with_claude_json(doc).await;
        r.expect("config.claude_json[qa]", "fail", "wrong-shape");
    }
}

#[tokio::test]
async fn bom_and_crlf_still_parse() {
    let healthy = common::fixture_text("healthy/.claude.json");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(healthy.as_bytes());
    with_claude_json(&bom)
        .await
        .expect("config.claude_json[qa]", "ok", "ok");
    with_claude_json(healthy.replace('\n', "\r\n").as_bytes())
        .await
        .expect("config.claude_json[qa]", "ok", "ok");
}

#[tokio::test]
async fn fifty_megabytes_of_json_is_read_and_of_garbage_is_corrupt() {
    let pad = "x".repeat(50 * 1024 * 1024);
    let big = format!("{{\"pad\": \"{pad}\", \"mcpServers\": {{}}}}");
    with_claude_json(big.as_bytes())
        .await
        .expect("config.claude_json[qa]", "ok", "ok");
    with_claude_json(pad.as_bytes())
        .await
        .expect("config.claude_json[qa]", "fail", "corrupt");
}

#[tokio::test]
async fn claude_json_that_is_a_directory_fifo_or_dangling_link_is_unreadable() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.agent("tu_ui", "healthy");
    t.agent("bu", "healthy");
    t.config("");
    let cj = |a: &str| t.path(&format!(".claude/users/{a}/container/.claude.json"));
    std::fs::remove_file(cj("qa")).unwrap();
    std::fs::create_dir(cj("qa")).unwrap();
    std::fs::remove_file(cj("tu_ui")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(cj("tu_ui"))
        .status()
        .unwrap()
        .success());
    std::fs::remove_file(cj("bu")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/.claude.json", cj("bu")).unwrap();
    let r = diagnose_tree(&t).await;
    for agent in ["qa", "tu_ui", "bu"] {
        r.expect(
            &format!("config.claude_json[{agent}]"),
            "fail",
            "unreadable",
        );
    }
}

#[tokio::test]
async fn config_dir_that_is_a_file_is_unreadable_not_a_panic() {
    let t = Tree::new(free_port(), free_port());
    t.config("[[agent]]\nname = \"qa\"\nconfig_dir = \"not-a-dir\"\n");
    t.write("not-a-dir", "plain file");
    let r = diagnose_tree(&t).await;
    r.expect("config.claude_json[qa]", "fail", "unreadable");
}

#[tokio::test]
async fn missing_claude_json_is_a_warning_until_markers_claim_otherwise() {
    let t = Tree::new(free_port(), free_port());
    std::fs::create_dir_all(t.path(".claude/users/fresh/container")).unwrap();
    t.agent("qa", "healthy");
    t.config("");
    std::fs::remove_file(t.path(".claude/users/qa/container/.claude.json")).unwrap();
    let r = diagnose_tree(&t).await;
    r.expect("config.claude_json[fresh]", "warn", "missing");
    r.expect("config.claude_json[qa]", "fail", "missing");
    r.expect("config.marker[qa,qms]", "fail", "stale-marker");
}

#[tokio::test]
async fn one_config_dir_shared_through_a_symlink() {
    let t = Tree::new(free_port(), free_port());
    t.agent("claude", "healthy");
    t.config("");
    std::fs::create_dir_all(t.path(".claude/users/qa")).unwrap();
    std::os::unix::fs::symlink(
        t.path(".claude/users/claude/container"),
        t.path(".claude/users/qa/container"),
    )
    .unwrap();
    let r = diagnose_tree(&t).await;
    let c = r.expect("config.isolation", "fail", "shared");
    assert!(
        c["message"].as_str().unwrap().contains("claude and qa"),
        "{c}"
    );
}

#[tokio::test]
async fn mcp_json_problems() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON)
            .replace("host.docker.internal", "localhost"),
    );
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "localhost-url");
    t.write("docker/.mcp.json", "{\"mcpServers\": {");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "corrupt");
    t.write("docker/.mcp.json", "{\"mcpServers\": {}}");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "missing-server");
    t.write("docker/.mcp.json", "");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "empty");
    t.write("docker/.mcp.json", "{\"servers\": {}}");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "wrong-shape");
    // A transport Claude Code in the containers cannot use. (A stdio entry is no longer
    // wrong-transport: the stdio proxy is how today's Pipe Dream reaches its servers, and
    // container.stdio runs it.)
    t.write("docker/.mcp.json", "{\"mcpServers\": {\"qms\": {\"type\": \"sse\", \"url\": \"http://host.docker.internal:1/mcp\"}, \"git\": {\"url\": \"http://host.docker.internal:2/mcp\"}}}");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "wrong-transport");
    t.write("docker/.mcp.json", "{\"mcpServers\": {\"qms\": {\"command\": \"python3\", \"args\": [\"/proxy/mcp_proxy.py\", \"http://localhost:1/mcp\"]}, \"git\": {\"url\": \"http://host.docker.internal:2/mcp\"}}}");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "localhost-url");
    // X-API-Key without Authorization: in an http entry, and in a proxy's upstream.
    let key_alone = t.ported(common::MCP_JSON).replace(
        ",\n        \"Authorization\": \"Bearer internal-trusted\"",
        "",
    );
    assert!(!key_alone.contains("Authorization"), "{key_alone}");
    let proxy_key_alone = "{\"mcpServers\": {\"qms\": {\"url\": \"http://host.docker.internal:1/mcp\", \"headers\": {\"Authorization\": \"Bearer x\"}}, \"git\": {\"command\": \"python3\", \"args\": [\"/proxy/mcp_proxy.py\", \"http://host.docker.internal:2/mcp\", \"--header\", \"X-API-Key=git-internal\"]}}}";
    for (file, says) in [
        (
            key_alone.as_str(),
            "qms sends X-API-Key without Authorization",
        ),
        (
            proxy_key_alone,
            "git sends X-API-Key without Authorization to the proxy's upstream",
        ),
    ] {
        t.write("docker/.mcp.json", file);
        let c = diagnose_tree(&t)
            .await
            .expect("config.mcp_json", "warn", "missing-auth-header");
        assert!(c["message"].as_str().unwrap().contains(says), "{c}");
        assert!(
            !c.to_string().contains("-internal"),
            "a key value was printed: {c}"
        );
    }
    // Behind a failure it is evidence, not the cause.
    t.write(
        "docker/.mcp.json",
        &key_alone.replace("host.docker.internal", "localhost"),
    );
    let c = diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "localhost-url");
    assert!(
        c["evidence"].to_string().contains("without Authorization"),
        "{c}"
    );
    t.write("docker/.mcp.json", "{\"mcpServers\": {\"qms\": {\"url\": \"not a url\"}, \"git\": {\"url\": \"http://host.docker.internal:2/mcp\"}}}");
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "bad-url");
    std::fs::remove_file(t.path("docker/.mcp.json")).unwrap();
    std::fs::create_dir(t.path("docker/.mcp.json")).unwrap();
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "unreadable");
    std::fs::remove_dir(t.path("docker/.mcp.json")).unwrap();
    diagnose_tree(&t)
        .await
        .expect("config.mcp_json", "fail", "missing");
}

/// An overlay that allows one of qms's tools and denies one of git's: the rest prompt.
const SOME_TOOLS_ALLOWED: &str = r#"{
  "permissions": {
    "allow": [
      "Bash(ls:*)",
      "mcp__qms__qms_inbox"
    ],
    "deny": [
      "mcp__git__git_exec"
    ]
  },
  "enabledMcpjsonServers": [
    "qms",
    "git"
  ]
}
"#;

/// Two real MCP servers (rmcp, tools qms_inbox and git_exec each), an overlay that leaves
/// some of their tools to a prompt: named per agent and server, added by `--fix`.
#[tokio::test(flavor = "multi_thread")]
async fn tools_left_to_a_prompt_are_named_and_added_to_the_overlay() {
    let (qms, git) = servers::pair(Bind::Loopback).await;
    let t = Tree::new(qms, git);
    t.agent("qa", "healthy");
    t.config("");
    t.write("docker/.claude-settings.json", SOME_TOOLS_ALLOWED);
    t.write(".claude/settings.local.json", "{}\n");
    let only = ["--only", "config.permissions*"];
    let r = run_json(t.root(), &only).await;
    let c = r.expect("config.permissions[qa,qms]", "warn", "prompts");
    assert_eq!(
        c["message"], "qa is asked before 1 of qms's tools: git_exec",
        "{c}"
    );
    assert_eq!(c["fix"]["available"], true, "{c}");
    // git_exec is denied on purpose: only qms_inbox is left.
    let c = r.expect("config.permissions[qa,git]", "warn", "prompts");
    assert_eq!(
        c["message"], "qa is asked before 1 of git's tools: qms_inbox",
        "{c}"
    );
    assert!(!r.stdout.contains("qms-internal"), "a key was printed");

    let fixed = run_json(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    fixed.expect("config.permissions[qa,qms]", "fixed", "ok");
    fixed.expect("config.permissions[qa,git]", "fixed", "ok");
    let after = std::fs::read_to_string(t.path("docker/.claude-settings.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&after).unwrap();
    assert_eq!(
        doc["permissions"]["allow"],
        serde_json::json!([
            "Bash(ls:*)",
            "mcp__qms__qms_inbox",
            "mcp__qms__git_exec",
            "mcp__git__qms_inbox"
        ]),
        "{after}"
    );
    assert_eq!(
        doc["permissions"]["deny"],
        serde_json::json!(["mcp__git__git_exec"])
    );
    // Key order kept: permissions, then the approval list.
    assert!(
        after.find("\"permissions\"") < after.find("\"enabledMcpjsonServers\""),
        "{after}"
    );
    let backups: Vec<String> = std::fs::read_dir(t.path("docker"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".claude-settings.json.pd-doctor."))
        .collect();
    // Each repair backed the file up first; the first backup is the file as it was.
    assert!(
        backups.iter().any(
            |b| std::fs::read_to_string(t.path("docker").join(b)).unwrap() == SOME_TOOLS_ALLOWED
        ),
        "{backups:?}"
    );
    let again = common::run(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);

    // "mcp__git" allows all of git's tools.
    t.write(
        "docker/.claude-settings.json",
        &SOME_TOOLS_ALLOWED.replace("\"mcp__qms__qms_inbox\"", "\"mcp__qms__*\", \"mcp__git\""),
    );
    let r = run_json(t.root(), &only).await;
    r.expect("config.permissions[qa,qms]", "ok", "ok");
    r.expect("config.permissions[qa,git]", "ok", "ok");

    // Not approved: no tools to ask about.
    t.write("docker/.claude-settings.json", "{}\n");
    std::fs::write(t.path(".claude/users/qa/container/.claude.json"), "{}").unwrap();
    let r = run_json(t.root(), &only).await;
    r.expect("config.permissions[qa,qms]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_does_not_answer_leaves_permissions_unjudged() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.approve();
    let r = run_json(t.root(), &["--only", "config.permissions*"]).await;
    let c = r.expect("config.permissions[qa,qms]", "skip", "precondition");
    // server.mcp was skipped itself: its reason is the one passed on.
    assert_eq!(c["message"], "server qms is not listening", "{c}");
}

/// `config.auth`: a login in the config dir (`.credentials.json`, never opened; or
/// `oauthAccount` in `.claude.json`), else `not-logged-in` with the command to log in.
#[tokio::test]
async fn an_agent_that_never_logged_in_is_named() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let only = ["--only", "config.auth*"];
    // As every test agent: the /login's .credentials.json.
    let c = run_json(t.root(), &only)
        .await
        .expect("config.auth[qa]", "ok", "ok");
    assert!(
        c["message"].as_str().unwrap().contains(".credentials.json"),
        "{c}"
    );
    // The real CLI's fixture as it is: never logged in.
    let creds = t.path(".claude/users/qa/container/.credentials.json");
    std::fs::remove_file(&creds).unwrap();
    let r = run_json(t.root(), &only).await;
    let c = r.expect("config.auth[qa]", "warn", "not-logged-in");
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("docker exec -it agent-qa claude, then /login"),
        "{c}"
    );
    assert!(
        c["evidence"].to_string().contains("no .credentials.json"),
        "{c}"
    );
    // A FIFO in its place is not a login, and is never opened (the run would hang).
    let made = std::process::Command::new("mkfifo")
        .arg(&creds)
        .status()
        .unwrap();
    assert!(made.success());
    run_json(t.root(), &only)
        .await
        .expect("config.auth[qa]", "warn", "not-logged-in");
    std::fs::remove_file(&creds).unwrap();
    // What the login also writes into .claude.json.
    let cj = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cj).unwrap()).unwrap();
    doc["oauthAccount"] =
        serde_json::json!({"emailAddress": "qa@example.com", "accountUuid": "a-b-c"});
    std::fs::write(&cj, doc.to_string()).unwrap();
    let r = run_json(t.root(), &only).await;
    let c = r.expect("config.auth[qa]", "ok", "ok");
    assert!(
        c["message"].as_str().unwrap().contains("oauthAccount"),
        "{c}"
    );
    assert!(!r.stdout.contains("qa@example.com"), "a value was printed");
    // A logged-in .credentials.json's content is never printed.
    common::logged_in(&t.path(".claude/users/qa/container"));
    let r = common::run(t.root(), &["-v", "--only", "config.auth*"]).await;
    assert!(
        !r.stdout.contains(common::CREDENTIALS_TOKEN),
        "{}",
        r.stdout
    );
}

/// A restart waits the identity lock out, so an absurd one is refused up front (exit 2),
/// not slept through.
#[tokio::test]
async fn an_identity_lock_past_ten_minutes_is_a_usage_error() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("[hub]\nidentity_lock = 18446744073709551615\n");
    let r = common::run(t.root(), &["--only", "config.*"]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("identity_lock"), "{}", r.stderr);
}

/// Direct HTTP from the containers (the primer's `type: http` entries) is said once per
/// run, as a note with Pipe Dream's figures and the stdio proxy as the way out; the hub
/// layout's stdio proxy entries say nothing of it.
#[tokio::test]
async fn direct_http_from_the_containers_is_a_note_once_per_run() {
    let t = Tree::new(free_port(), free_port());
    for agent in ["qa", "bu"] {
        t.agent(agent, "healthy");
    }
    t.config("");
    let r = run_json(t.root(), &["--only", "config.*"]).await;
    let doc = r.json();
    let notes = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cause"] == "direct-http")
        .count();
    assert_eq!(notes, 1, "{}", r.stdout);
    let c = r.expect_saying(
        "config.transport",
        "ok",
        "direct-http",
        &["qms, git", "27 of 30", "40 of 40", "1 start in 10"],
    );
    assert!(c["hint"].to_string().contains("mcp_proxy.py"), "{c}");
    assert_eq!(r.code, 0, "{}", r.stdout);

    let (qms, git) = (free_port(), free_port());
    let hub = common::hub::hub_tree(qms, git, &["qa"]);
    let r = run_json(hub.root(), &["--only", "config.*"]).await;
    assert_eq!(r.json()["layout"]["name"], "hub", "{}", r.stdout);
    assert!(!r.stdout.contains("config.transport"), "{}", r.stdout);
    assert!(!r.stdout.contains("direct-http"), "{}", r.stdout);
}
