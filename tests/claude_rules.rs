//! Claude Code's own rules for MCP configuration, as pd-doctor models them: `${VAR}`
//! expansion in the environment Claude Code runs in, project-scope approval (pending,
//! declined, denied) and which scope's copy is used. Config dirs in the CLI's shape,
//! real MCP servers, real containers started with and without the variable and the
//! settings overlay.

mod common;

use common::lab::lab_or_skip;
use common::servers::{self, McpOptions};
use common::{free_port, run, run_json, Run, Tree};

const KEY: &str = "qms-key-from-env-7c1e9b";

/// docker/.mcp.json with qms's key moved into `${PDT_QMS_KEY}`.
fn mcp_json_with_reference(t: &Tree) {
    let text = std::fs::read_to_string(t.path("docker/.mcp.json")).unwrap();
    t.write(
        "docker/.mcp.json",
        &text
            .replace("\"qms-internal\"", "\"${PDT_QMS_KEY}\"")
            .replace("\"Bearer internal-trusted\"", "\"Bearer ${PDT_QMS_KEY}\""),
    );
}

async fn with_env(t: &Tree, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = common::command(t.root(), &[&["--json"][..], args].concat());
    cmd.env_remove("PDT_QMS_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    common::output(&mut cmd).await
}

/// A real server that demands the key: with the variable set where Claude Code runs the
/// handshake succeeds; without it the header is the literal `${PDT_QMS_KEY}` and the
/// finding says the variable is unset, never "wrong key".
#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_a_variable_works_where_it_is_set_and_is_named_where_it_is_not() {
    let s = servers::mcp_server(McpOptions {
        key: Some(KEY.into()),
        ..Default::default()
    })
    .await;
    let t = Tree::new(s.port, free_port());
    t.config("");
    mcp_json_with_reference(&t);
    let only = ["--only", "server.mcp[qms]", "--only", "config.mcp_json"];
    let set = with_env(&t, &only, &[("PDT_QMS_KEY", KEY)]).await;
    set.expect("server.mcp[qms]", "ok", "ok");
    set.expect("config.mcp_json", "ok", "ok");
    let unset = with_env(&t, &only, &[("DOCKER_HOST", "unix:///nonexistent.sock")]).await;
    let c = unset.expect("server.mcp[qms]", "fail", "unauthorized");
    assert!(c["hint"].as_str().unwrap().contains("literal"), "{c}");
    let c = unset.expect("config.mcp_json", "fail", "unset-variable");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains("${PDT_QMS_KEY}") && message.contains("host"),
        "{c}"
    );
    let human = run(t.root(), &["-v", "--color", "never"]).await;
    for out in [&set.stdout, &human.stdout, &human.stderr] {
        assert!(!out.contains(KEY), "the expanded key leaked:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_entry_with_an_unset_variable_is_named_not_called_a_wrong_key() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "env-reference");
    t.config("");
    mcp_json_with_reference(&t);
    let only = ["--only", "config.*"];
    // No container: the host's environment stands in, so the verdict is a warning.
    let r = with_env(&t, &only, &[("DOCKER_HOST", "unix:///nonexistent.sock")]).await;
    let c = r.expect("config.server_entry[qa,qms]", "warn", "unset-variable");
    assert!(
        c["message"].as_str().unwrap().contains("${PDT_QMS_KEY}"),
        "{c}"
    );
    let r = with_env(
        &t,
        &only,
        &[
            ("DOCKER_HOST", "unix:///nonexistent.sock"),
            ("PDT_QMS_KEY", KEY),
        ],
    )
    .await;
    r.expect("config.server_entry[qa,qms]", "ok", "ok");
    r.expect("config.scope_conflict[qa,qms]", "ok", "ok");
    assert!(!r.stdout.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn project_servers_wait_for_approval() {
    // No registration anywhere else: the agent has no tools from it.
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    let c = r.expect("config.approval[qa,qms]", "fail", "pending");
    assert!(
        c["message"].as_str().unwrap().contains("pending approval"),
        "{c}"
    );
    // A user-scope registration is used meanwhile: a warning.
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    r.expect("config.approval[qa,git]", "warn", "pending");
    // Approved by the project's settings overlay.
    t.approve();
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    let c = r.expect("config.approval[qa,git]", "ok", "ok");
    assert!(c["message"].as_str().unwrap().contains("settings"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_server_is_added_to_the_projects_own_overlay() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(
        "docker/.claude-settings.json",
        "{\n  \"enabledMcpjsonServers\": [\n    \"qms\"\n  ]\n}\n",
    );
    let only = ["--only", "config.approval*"];
    let plan = run_json(t.root(), &only).await;
    let c = plan.expect("config.approval[qa,git]", "warn", "pending");
    let line = c["fix"]["plan"][0].as_str().unwrap();
    assert!(line.contains(r#"["qms"] -> ["qms", "git"]"#), "{line}");
    plan.expect("config.approval[qa,qms]", "ok", "ok");
    let fixed = run_json(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    fixed.expect("config.approval[qa,git]", "fixed", "ok");
    let settings = std::fs::read_to_string(t.path("docker/.claude-settings.json")).unwrap();
    assert!(settings.contains("\"git\""), "{settings}");
    assert!(std::fs::read_dir(t.path("docker")).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".pd-doctor.")));
    let again = run(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);
}

/// Claude Code 2.1.327 moves the answers an agent gave at the approval prompt from
/// `.claude.json` into /pipe-dream/.claude/settings.local.json and reads them there;
/// behind Pipe Dream's read-only overlay (in a read-only project) they stay in
/// `.claude.json`, unused: both servers stay pending (measured with the real CLI).
#[tokio::test(flavor = "multi_thread")]
async fn answers_kept_in_claude_json_are_unused_behind_the_read_only_overlay() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "declined-git");
    t.config("");
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    // The user-scope copies serve meanwhile: a warning.
    for (server, answer) in [("qms", "a \"yes\""), ("git", "a \"no\"")] {
        let c = r.expect(&format!("config.approval[qa,{server}]"), "warn", "pending");
        let evidence: Vec<&str> = c["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        let evidence = evidence.join("\n");
        assert!(
            evidence.contains(answer) && evidence.contains("does not use it"),
            "{c}"
        );
    }
}

/// Where the container can write the local project settings (here: the whole project
/// mounted read-write), the "no" kept in `.claude.json` counts, and `--fix` takes the
/// server off that list.
#[tokio::test(flavor = "multi_thread")]
async fn a_declined_server_is_taken_off_the_list() {
    let Some((lab, image)) = lab_or_skip(
        "a_declined_server_is_taken_off_the_list",
        "declined",
        "curl",
    ) else {
        return;
    };
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "declined-git");
    lab.configure(&t, "");
    let args: Vec<String> = common::lab::Lab::standard_args(&t, "qa")
        .into_iter()
        .map(|a| a.replace(":/pipe-dream:ro", ":/pipe-dream:rw"))
        .collect();
    lab.start(&lab.name("qa"), true, &args, &[&image]);
    let only = ["--only", "config.approval*"];
    let r = run_json(t.root(), &only).await;
    let c = r.expect("config.approval[qa,git]", "fail", "declined");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("disabledMcpjsonServers"),
        "{c}"
    );
    r.expect("config.approval[qa,qms]", "ok", "ok");
    let fixed = run_json(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    // Off the "no" list it is pending again (the user-scope copy serves meanwhile).
    fixed.expect("config.approval[qa,git]", "fixed", "pending");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["projects"]["/pipe-dream"]["disabledMcpjsonServers"],
        serde_json::json!([])
    );
    assert_eq!(
        doc["projects"]["/pipe-dream"]["hasTrustDialogAccepted"],
        true
    );
    let again = run(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_can_deny_a_server() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.approve();
    t.write(
        ".claude/users/qa/container/settings.json",
        r#"{"deniedMcpServers": [{"serverName": "git"}]}"#,
    );
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    let c = r.expect("config.approval[qa,git]", "fail", "denied");
    assert_eq!(c["fix"]["available"], false);
    r.expect("config.approval[qa,qms]", "ok", "ok");
    t.write(
        ".claude/users/qa/container/settings.json",
        r#"{"allowedMcpServers": [{"serverName": "qms"}]}"#,
    );
    let r = run_json(t.root(), &["--only", "config.approval*"]).await;
    r.expect("config.approval[qa,git]", "fail", "denied");
    r.expect("config.approval[qa,qms]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_local_scope_copy_is_the_one_judged() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "local-scope-shadow");
    t.config("");
    let r = run_json(t.root(), &["--only", "config.*"]).await;
    let c = r.expect("config.server_entry[qa,qms]", "fail", "localhost-url");
    assert!(
        c["message"].as_str().unwrap().contains("local-scope"),
        "{c}"
    );
    // The rewrite acts on user scope, so a local copy gets the manual command instead.
    assert_eq!(c["fix"]["available"], false);
    assert!(c["hint"].as_str().unwrap().contains("-s local"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registration_in_local_scope_counts_for_the_marker() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "local-scope-shadow");
    t.config("");
    let path = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["mcpServers"].as_object_mut().unwrap().remove("qms");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    std::fs::write(t.path(".claude/users/qa/container/.mcp-configured"), "").unwrap();
    let r = run_json(t.root(), &["--only", "config.marker*"]).await;
    r.expect("config.marker[qa,qms]", "ok", "ok");
}

/// Real containers: the one started with `-e PDT_QMS_KEY=...` expands the agent's entry,
/// the one started without it is named; the settings overlay mounted approves, a
/// container without it leaves the servers pending.
#[tokio::test(flavor = "multi_thread")]
async fn containers_with_and_without_the_variable_and_the_overlay() {
    let Some((lab, curl)) = lab_or_skip("containers_with_and_without", "rules", "curl") else {
        return;
    };
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "env-reference")
        .agent("tu_ui", "env-reference");
    lab.configure(&t, "");
    mcp_json_with_reference(&t);
    t.approve();
    let env = format!("PDT_QMS_KEY={KEY}");
    lab.start_agent(&t, "qa", &curl, &["-e", &env]);
    // tu_ui: no variable, and started without the settings overlay.
    let overlay = t.path("docker/.claude-settings.json");
    let saved = std::fs::read(&overlay).unwrap();
    std::fs::remove_file(&overlay).unwrap();
    lab.start_agent(&t, "tu_ui", &curl, &[]);
    std::fs::write(&overlay, saved).unwrap();
    let r = run_json(t.root(), &["--only", "config.*", "--timeout", "3s"]).await;
    r.expect("config.approval[qa,qms]", "ok", "ok");
    r.expect("config.approval[tu_ui,qms]", "warn", "pending");
    r.expect("config.server_entry[tu_ui,qms]", "fail", "unset-variable");
    let c = r.expect("config.mcp_json", "fail", "unset-variable");
    assert!(
        c["message"].as_str().unwrap().contains(&lab.name("tu_ui")),
        "{c}"
    );
    // qa's project copy is approved and in use; its own user entry expands in its env.
    r.expect("config.server_entry[qa,qms]", "ok", "ok");
    r.expect("config.scope_conflict[qa,qms]", "ok", "ok");
    assert!(!r.stdout.contains(KEY), "the expanded key leaked");
}
