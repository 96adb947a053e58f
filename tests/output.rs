//! What users and CI read: the healthy host side end to end, every output format, the
//! JSON schema, the exit codes, project checks, and secrets that never leak.

mod common;

use common::servers::{self, Fault};
use common::{free_port, on_a_terminal, run, run_json, Tree};

/// Both servers up as the primer runs them (reachable, stateless, qms keyed) and two agents
/// configured as the entrypoint leaves them.
async fn healthy_host() -> Tree {
    let (qms, git) = servers::reachable_pair().await;
    let t = Tree::new(qms, git);
    t.agent("claude", "healthy").agent("qa", "healthy");
    t.config("");
    // Healthy as Pipe Dream is: the project-scope servers approved.
    t.approve();
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_host_side_reports_every_host_check_ok_and_exits_0() {
    // Reachable means bound to the Docker bridge too: no engine, no bridge.
    if !common::lab::docker_or_skip("healthy_host_side_reports_every_host_check_ok_and_exits_0") {
        return;
    }
    let t = healthy_host().await;
    let r = run_json(t.root(), &[]).await;
    let doc = r.json();
    common::validate_schema(&doc);
    for c in doc["checks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        if id.starts_with("server.") || id.starts_with("config.") {
            assert_eq!(
                c["status"],
                "ok",
                "{}",
                serde_json::to_string_pretty(c).unwrap()
            );
        }
    }
    assert_eq!(doc["summary"]["fail"], 0);
    assert_eq!(r.code, 0, "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_is_alone_on_stdout_in_checklist_order_and_valid() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = run_json(t.root(), &[]).await;
    let doc = r.json();
    common::validate_schema(&doc);
    assert_eq!(doc["schema"], "pd-doctor/1");
    let sections: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["section"].as_str().unwrap())
        .collect();
    let mut sorted = sections.clone();
    sorted.sort_unstable();
    assert_eq!(sections, sorted, "checks leave checklist order");
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    assert!(pos("server.pidfile[qms]") < pos("server.listen[qms]"));
    assert!(pos("container.reach[qa,qms]") < pos("container.reach[qa,git]"));
    assert_eq!(r.code, 1);
    assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn human_output_has_sections_marks_hints_and_a_summary() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = run(t.root(), &[]).await;
    for needle in [
        "8.1 Are the MCP servers running?",
        "8.3 Is MCP configured?",
        "✗ config.marker[qa,qms]",
        "(stale-marker)",
        "→ rm .claude/users/qa/container/.mcp-configured",
        "fix: remove .claude/users/qa/container/.mcp-configured",
        "- server.mcp[qms]",
        "total",
    ] {
        assert!(
            r.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains('\x1b'), "colour on a pipe");
    let coloured = run(t.root(), &["--color", "always"]).await;
    assert!(coloured.stdout.contains('\x1b'));
    // Evidence of passing checks only with -v.
    assert!(!r.stdout.contains("│ POST"));
}

/// A run whose every check was skipped looked at nothing: it says so, rather than "no
/// problems found".
#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_could_check_nothing_does_not_call_it_healthy() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let mut cmd = common::command(t.root(), &["--only", "container.*"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent.sock");
    let r = common::output(&mut cmd).await;
    assert!(
        r.stdout.contains("! nothing could be checked: ")
            && !r.stdout.contains("no problems found"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_has_one_suite_per_section_and_failures_with_causes() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = run(t.root(), &["--format", "junit"]).await;
    assert!(r.stdout.starts_with("<?xml"));
    assert_eq!(r.stdout.matches("<testsuite ").count(), 4, "{}", r.stdout);
    // Attributes by name, not by their order in the tag (XML gives the order no meaning).
    let doc = quick_junit::Report::deserialize_from_str(&r.stdout).expect("well-formed JUnit");
    let marker = doc
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .find(|c| c.name.as_str() == "config.marker[qa,qms]")
        .unwrap_or_else(|| panic!("no config.marker[qa,qms] testcase in:\n{}", r.stdout));
    assert_eq!(marker.classname.as_deref(), Some("config.marker"));
    assert!(
        matches!(&marker.status, quick_junit::TestCaseStatus::NonSuccess { kind: quick_junit::NonSuccessKind::Failure, ty: Some(ty), .. } if ty.as_str() == "stale-marker"),
        "{:?}",
        marker.status
    );
    assert!(r.stdout.contains("<skipped message="));
    // One testcase per check, and the counts agree with the JSON report of the same run.
    let summary = run_json(t.root(), &[]).await.json()["summary"].clone();
    let total: u64 = ["ok", "warn", "fail", "skip", "fixed"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(r.stdout.matches("<testcase ").count() as u64, total);
    assert_eq!(
        r.stdout.matches("<failure ").count() as u64,
        summary["fail"].as_u64().unwrap()
    );
    assert_eq!(
        r.stdout.matches("<skipped ").count() as u64,
        summary["skip"].as_u64().unwrap()
    );
    assert_eq!(
        (doc.failures as u64, doc.skipped as u64),
        (
            summary["fail"].as_u64().unwrap(),
            summary["skip"].as_u64().unwrap()
        )
    );
    assert_eq!(r.code, 1);
}

/// Agent qa, healthy, and a qms that echoes the `key` it was sent in a Host-rejection body.
async fn echoing_host(key: &str) -> (servers::Served, Tree) {
    let echo = servers::fault_server(Fault::Status(
        403,
        "text/plain",
        format!("Host not allowed (key {key})"),
    ))
    .await;
    let t = Tree::new(echo.port, free_port());
    t.agent("qa", "healthy");
    t.config("");
    (echo, t)
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_planted_everywhere_never_show() {
    let secrets = [
        "sk-planted-docker-key-1",
        "sk-planted-user-key-2",
        "tok-planted-local-3",
        "sk-planted-bearer-4",
    ];
    let (_echo, t) = echoing_host(secrets[0]).await;
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON)
            .replace("qms-internal", secrets[0])
            .replace("internal-trusted", secrets[3]),
    );
    let cj = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cj).unwrap()).unwrap();
    doc["mcpServers"]["qms"]["headers"]["X-API-Key"] = secrets[1].into();
    doc["mcpServers"]["qms"]["url"] =
        format!("http://user:{}@localhost:{}/mcp", secrets[2], t.qms).into();
    doc["projects"] = serde_json::json!({"/pipe-dream": {"mcpServers": {"qms": {"type": "http", "url": "http://localhost:1/mcp", "headers": {"Authorization": format!("Bearer {}", secrets[2])}}}}});
    std::fs::write(&cj, serde_json::to_string(&doc).unwrap()).unwrap();
    for args in [
        vec!["-v"],
        vec!["--json", "-v"],
        vec!["--format", "junit", "-v"],
    ] {
        let r = run(t.root(), &args).await;
        assert!(r.stdout.contains("server.mcp[qms]"), "{}", r.stdout);
        for s in secrets {
            assert!(
                !r.stdout.contains(s) && !r.stderr.contains(s),
                "{s} leaked with {args:?}:\n{}",
                r.stdout
            );
        }
    }
    // The echoed key reached a message, and was scrubbed there.
    let r = run_json(t.root(), &["--only", "server.mcp[qms]"]).await;
    let c = r.expect("server.mcp[qms]", "fail", "host-rejected");
    assert!(c["message"].as_str().unwrap().contains("[redacted]"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_code_2_for_usage_and_unreadable_config() {
    let t = Tree::new(free_port(), free_port());
    t.write("pd-doctor.toml", "[[server]\nname=");
    let r = run(t.root(), &[]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("pd-doctor.toml"), "{}", r.stderr);
    let r = run(t.root(), &["--no-such-flag"]).await;
    assert_eq!(r.code, 2);
    let r = run(t.root(), &["--timeout", "soon"]).await;
    assert_eq!(r.code, 2);
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pd-doctor"))
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Pipe Dream project"));
}

#[tokio::test(flavor = "multi_thread")]
async fn root_is_found_by_walking_up() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    let deep = t.path(".claude/users/qa/workspace");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pd-doctor"))
        .args(["--json", "--only", "config.isolation"])
        .current_dir(&deep)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["root"],
        std::fs::canonicalize(t.root())
            .unwrap()
            .display()
            .to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_explain_and_completions() {
    let t = Tree::new(free_port(), free_port());
    let r = run(t.root(), &["list"]).await;
    for id in [
        "server.pidfile",
        "container.reach",
        "config.scope_conflict",
        "containers.duplicate",
    ] {
        assert!(r.stdout.contains(id), "{id} not listed");
    }
    let r = run(t.root(), &["explain", "container.reach[qa,git]"]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("docker exec") || r.stdout.contains("inside the agent's container"),
        "{}",
        r.stdout
    );
    assert!(run(t.root(), &["explain", "nope.nothing"]).await.code == 2);
    let r = run(t.root(), &["completions", "bash"]).await;
    assert!(r.stdout.contains("pd-doctor") && r.code == 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn project_checks_run_without_recompiling() {
    let s = servers::fault_server(Fault::Status(204, "text/plain", String::new())).await;
    let t = Tree::new(s.port, free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(
        ".pd-doctor/checks/site.toml",
        r#"
[[check]]
id = "site.settings"
title = "Container settings enable the servers"
section = "8.3"
per = "agent"
explain = "Our settings file must exist."
[check.probe]
kind = "file"
path = "{config_dir}/.claude.json"
pointer = "/mcpServers/qms/type"
equals = "http"

[[check]]
id = "site.health"
title = "The qms health endpoint answers"
section = "8.1"
per = "server"
[check.probe]
kind = "http"
url = "http://127.0.0.1:{port}/health"
status = [204]

[[check]]
id = "site.no_lockfile"
title = "No stale lock"
section = "8.4"
per = "none"
severity = "warn"
[check.probe]
kind = "file"
path = "docker/.lock"
state = "absent"
"#,
    );
    t.write("docker/.lock", "");
    let r = run_json(t.root(), &["--only", "site.*"]).await;
    r.expect("site.settings[qa]", "ok", "ok");
    r.expect("site.health[qms]", "ok", "ok");
    r.expect("site.health[git]", "fail", "refused");
    r.expect("site.no_lockfile", "warn", "present");
    let ids: Vec<String> = r.ids();
    assert_eq!(
        ids[0], "site.health[qms]",
        "project checks sit in their section: {ids:?}"
    );
    let listed = run(t.root(), &["list"]).await;
    assert!(listed.stdout.contains("site.settings"));
    t.write(".pd-doctor/checks/broken.toml", "[[check]]\nid = 3\n");
    assert_eq!(run(t.root(), &[]).await.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn colour_on_a_terminal_unless_no_color() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let plain = on_a_terminal(
        t.root(),
        "--only 'config.*'",
        &[("NO_COLOR", "1")],
        None,
        || {},
    );
    assert!(plain.contains("config.marker[qa,qms]"), "{plain}");
    assert!(
        !plain.contains("\x1b[3"),
        "colour despite NO_COLOR:\n{plain}"
    );
    let coloured = on_a_terminal(t.root(), "--only 'config.*'", &[], None, || {});
    assert!(
        coloured.contains("\x1b[3"),
        "no colour on a terminal:\n{coloured}"
    );
    let never = on_a_terminal(
        t.root(),
        "--only 'config.*' --color never",
        &[],
        None,
        || {},
    );
    assert!(!never.contains("\x1b[3"));
}

/// Every problem is a root cause or names one as `explained_by`; every root cause is a
/// problem and lists exactly the problems that name it.
fn assert_causes_partition_the_problems(doc: &serde_json::Value) {
    let roots = doc["root_causes"].as_array().expect("root_causes");
    for c in doc["checks"].as_array().unwrap() {
        let problem = c["status"] == "fail" || c["status"] == "warn";
        let id = c["id"].as_str().unwrap();
        let is_root = roots.iter().any(|r| r["id"] == id);
        match c.get("explained_by").and_then(|e| e.as_str()) {
            Some(root) => {
                assert!(problem && !is_root, "{id} is explained but {c}");
                let entry = roots.iter().find(|r| r["id"] == root).unwrap();
                assert!(entry["explains"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == id));
            }
            None => assert_eq!(problem, is_root, "{id}: {c}"),
        }
    }
}

/// `--json` with `args`, valid against the schema, its problems partitioned by cause.
async fn related(root: &std::path::Path, args: &[&str]) -> common::Run {
    let r = run_json(root, args).await;
    common::validate_schema(&r.json());
    assert_causes_partition_the_problems(&r.json());
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_marker_is_the_root_cause_of_the_missing_registration() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = related(t.root(), &["--skip", "container.*", "--skip", "docker.*"]).await;
    let doc = r.json();
    let roots = doc["root_causes"].as_array().unwrap();
    let marker = roots
        .iter()
        .find(|rc| rc["id"] == "config.marker[qa,qms]")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(marker["cause"], "stale-marker");
    assert_eq!(
        marker["explains"],
        serde_json::json!(["config.server_entry[qa,qms]"])
    );
    assert_eq!(marker["fix"]["available"], true);
    assert_eq!(
        r.check("config.server_entry[qa,qms]")["explained_by"],
        "config.marker[qa,qms]"
    );
    // Checks that explain nothing and are explained by nothing carry no field.
    assert!(r
        .check("config.marker[qa,qms]")
        .get("explained_by")
        .is_none());
    assert!(roots.iter().any(|rc| rc["id"] == "server.listen[git]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_server_is_one_problem_not_one_per_check() {
    let hang = servers::fault_server(Fault::Hang).await;
    let t = Tree::new(free_port(), hang.port);
    t.agent("qa", "healthy");
    t.config("");
    let r = related(t.root(), &["--timeout", "500ms", "--only", "server.*[git]"]).await;
    r.expect("server.mcp[git]", "fail", "timeout");
    let oauth = r.expect("server.oauth[git]", "warn", "timeout");
    assert_eq!(oauth["explained_by"], "server.mcp[git]");
    // The fault server listens on loopback only: a problem of its own.
    assert_eq!(r.root_causes(), ["server.listen[git]", "server.mcp[git]"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_project_check_declares_what_explains_it() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    t.write(
        ".pd-doctor/checks/site.toml",
        r#"
[[check]]
id = "site.health"
title = "The health endpoint answers"
section = "8.1"
per = "server"
[check.probe]
kind = "http"
url = "http://127.0.0.1:{port}/health"
[[check.explained_by]]
check = "server.listen"
when = ["not-listening"]
"#,
    );
    let r = related(t.root(), &["--only", "server.listen*", "--only", "site.*"]).await;
    r.expect("site.health[git]", "fail", "refused");
    assert_eq!(
        r.check("site.health[git]")["explained_by"],
        "server.listen[git]"
    );
    // A relation to a check no catalogue defines is a usage error, like a broken file.
    t.write(
        ".pd-doctor/checks/site.toml",
        "[[check]]\nid = \"site.x\"\ntitle = \"x\"\nper = \"none\"\n[check.probe]\nkind = \"file\"\npath = \"x\"\n[[check.explained_by]]\ncheck = \"no.such\"\n",
    );
    let bad = run(t.root(), &[]).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("no.such"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_report_leads_with_problems_and_folds_what_is_well() {
    let t = Tree::new(free_port(), free_port());
    t.agent("claude", "healthy")
        .agent("qa", "marker-without-config");
    t.config("");
    let only = [
        "--only", "server.*", "--only", "config.*", "--color", "never",
    ];
    let r = run(t.root(), &only).await;
    let at = |needle: &str| {
        r.stdout
            .find(needle)
            .unwrap_or_else(|| panic!("missing {needle:?} in:\n{}", r.stdout))
    };
    assert!(at("Problems: ") < at("8.1 Are the MCP servers running?"));
    // One entry per root cause, with what it explains, its evidence and its repair.
    at("✗ config.marker[qa,qms]");
    at("and 1 more: config.server_entry[qa,qms]");
    at("│ while the marker exists, the entrypoint never tries again");
    at("fix: remove .claude/users/qa/container/.mcp-configured (stale marker)");
    // The symptom is one line in the checklist, pointing at its cause.
    at("(missing; explained by config.marker[qa,qms])");
    // Passing checks are counted, not listed; skipped ones are one line per reason.
    assert!(
        !r.stdout.contains("✓ config.marker[claude,qms]"),
        "{}",
        r.stdout
    );
    at("other checks ok");
    at("- server.mcp[qms], server.session[qms], server.oauth[qms]  skipped: server qms is not listening");
    assert_eq!(r.code, 1);

    // A section where everything is well is one line.
    let healthy = Tree::new(free_port(), free_port());
    healthy.agent("claude", "healthy").agent("qa", "healthy");
    healthy.config("");
    healthy.approve();
    // (config.permissions needs servers that answer: none runs here.)
    let r = run(
        healthy.root(),
        &[
            "--only",
            "config.*",
            "--skip",
            "config.permissions*",
            "--color",
            "never",
        ],
    )
    .await;
    assert!(
        r.stdout.contains("✓ 8.3 Is MCP configured? 24 checks"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Problems"), "{}", r.stdout);
    assert!(r.stdout.lines().count() < 25, "{}", r.stdout);
    // -v lists every check with its evidence, as before.
    let v = run(
        healthy.root(),
        &["--only", "config.*", "--color", "never", "-v"],
    )
    .await;
    assert!(v.stdout.contains("✓ config.marker[qa,qms]"), "{}", v.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn colour_follows_clicolor_clicolor_force_and_term_dumb() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let args = "--only 'config.*'";
    for (env, coloured) in [
        (vec![("CLICOLOR", "0")], false),
        (vec![("TERM", "dumb")], false),
        (vec![("CLICOLOR", "1"), ("TERM", "xterm-256color")], true),
        // NO_COLOR wins over CLICOLOR_FORCE; CLICOLOR_FORCE=0 forces nothing.
        (vec![("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")], false),
        (vec![("CLICOLOR_FORCE", "0"), ("CLICOLOR", "0")], false),
    ] {
        let screen = on_a_terminal(t.root(), args, &env, None, || {});
        assert!(screen.contains("config.marker[qa,qms]"), "{screen}");
        assert_eq!(screen.contains("\x1b[3"), coloured, "{env:?}:\n{screen}");
    }
    // CLICOLOR_FORCE colours a pipe; --color never still wins over it.
    let mut cmd = common::command(t.root(), &["--only", "config.*"]);
    let forced = cmd.env("CLICOLOR_FORCE", "1").output().await.unwrap();
    assert!(String::from_utf8_lossy(&forced.stdout).contains("\x1b[3"));
    let mut cmd = common::command(t.root(), &["--only", "config.*", "--color", "never"]);
    let never = cmd.env("CLICOLOR_FORCE", "1").output().await.unwrap();
    assert!(!String::from_utf8_lossy(&never.stdout).contains('\x1b'));
}

#[tokio::test(flavor = "multi_thread")]
async fn github_format_annotates_each_problem_and_sums_up() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "marker-without-config");
    t.config("");
    let r = run(t.root(), &["--format", "github"]).await;
    assert_eq!(r.code, 1);
    let summary = run_json(t.root(), &[]).await.json()["summary"].clone();
    let count = |prefix: &str| r.stdout.lines().filter(|l| l.starts_with(prefix)).count() as u64;
    assert_eq!(count("::error title="), summary["fail"].as_u64().unwrap());
    assert_eq!(count("::warning title="), summary["warn"].as_u64().unwrap());
    assert_eq!(count("::notice title=pd-doctor::"), 1);
    assert_eq!(
        r.stdout.lines().count() as u64,
        summary["fail"].as_u64().unwrap() + summary["warn"].as_u64().unwrap() + 1,
        "one line per problem plus the summary:\n{}",
        r.stdout
    );
    // The comma of an instance id is escaped in the title; the message names the cause.
    let marker = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error title=config.marker[qa%2Cqms]::"))
        .unwrap_or_else(|| panic!("no marker annotation:\n{}", r.stdout));
    assert!(marker.contains("(stale-marker)"), "{marker}");
    // Every command is one line: no raw CR or LF inside.
    assert!(!r.stdout.contains('\r'));
    assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn man_page_comes_from_the_same_definitions_as_help() {
    let t = Tree::new(free_port(), free_port());
    let r = run(t.root(), &["man"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH pd-doctor 1"),
        "{}",
        r.stdout
    );
    // Every long option of --help is in the page (roff escapes its dashes).
    let help = run(t.root(), &["--help"]).await.stdout;
    for word in help.split_whitespace().filter(|w| w.starts_with("--")) {
        let flag = word
            .trim_end_matches([',', '.'])
            .split(['=', ' '])
            .next()
            .unwrap();
        let roff = flag.replace('-', "\\-");
        assert!(r.stdout.contains(&roff), "{flag} missing from the man page");
    }
    for sub in ["list", "explain", "reset", "completions", "man"] {
        assert!(r.stdout.contains(sub), "{sub} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(t.root(), &["man", "--output", dir.path().to_str().unwrap()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pd-doctor.1")).unwrap(),
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_debug_trace_shows_probes_and_exchanges_never_secrets_or_escapes() {
    let secrets = [
        "sk-planted-docker-key-1",
        "sk-planted-user-key-2",
        "tok-planted-local-3",
    ];
    let query_secret = "q-secret-5f2b81c0";
    let (_echo, t) = echoing_host(secrets[0]).await;
    // An agent whose name would drive the terminal, were it written raw.
    t.agent("evil\x1b]0;owned\x07", "healthy");
    let port = format!(":{}/mcp", t.qms);
    t.write(
        "docker/.mcp.json",
        &t.ported(common::MCP_JSON)
            .replace("qms-internal", secrets[0])
            .replace(&port, &format!("{port}?api_key={query_secret}")),
    );
    let cj = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cj).unwrap()).unwrap();
    doc["mcpServers"]["qms"]["headers"]["X-API-Key"] = secrets[1].into();
    doc["mcpServers"]["qms"]["url"] = format!(
        "http://user:{}@localhost:{}/mcp?token={query_secret}",
        secrets[2], t.qms
    )
    .into();
    std::fs::write(&cj, serde_json::to_string(&doc).unwrap()).unwrap();
    // Without the variable or -vv, no trace.
    let quiet = run_json(t.root(), &[]).await;
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    let engine = quiet.check("docker.engine")["status"] == "ok";
    let mut traced = Vec::new();
    for (args, env) in [
        (vec!["--json"], Some("debug")),
        (vec!["-vv", "--color", "never"], None),
    ] {
        let mut cmd = common::command(t.root(), &args);
        match env {
            Some(level) => cmd.env("PD_DOCTOR_LOG", level),
            None => cmd.env_remove("PD_DOCTOR_LOG"),
        };
        let out = cmd.output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for s in secrets.iter().chain([&query_secret]) {
            assert!(!stderr.contains(s), "{s} leaked into the trace:\n{stderr}");
        }
        assert!(
            !stderr.contains('\x1b') && !stderr.contains('\x07'),
            "{stderr}"
        );
        assert!(stderr.contains("evil\\x1b]0;owned\\x07"), "{stderr}");
        for needle in [
            "DEBUG probe server.mcp[qms]: start",
            "DEBUG probe server.mcp[qms]: end fail (host-rejected) in ",
            "DEBUG http POST http://",
            "/mcp?api_key=[redacted]: 403 in ",
            ": 403 in ",
        ] {
            assert!(stderr.contains(needle), "no {needle:?} in:\n{stderr}");
        }
        // Engine calls: method, path, status and time (when there is an engine to ask).
        if engine {
            assert!(stderr.contains("DEBUG docker GET /"), "{stderr}");
            assert!(
                stderr.contains("/containers/json?all=[redacted]"),
                "{stderr}"
            );
            assert!(stderr.contains(": 200 in "), "{stderr}");
        }
        traced.push(out.stdout);
    }
    // The trace stays on stderr: --json's stdout is the report alone.
    serde_json::from_slice::<serde_json::Value>(&traced[0]).expect("JSON alone on stdout");
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_shows_what_is_awaited_on_a_terminal_and_is_gone_before_the_report() {
    let hung = servers::fault_server(Fault::Hang).await;
    let t = Tree::new(hung.port, free_port());
    t.config("");
    let args = "--only 'server.*[qms]' --timeout 1s --color never";
    let root = t.root().to_path_buf();
    let screen = tokio::task::spawn_blocking(move || on_a_terminal(&root, args, &[], None, || {}))
        .await
        .unwrap();
    let waiting = format!(" checks · waiting for qms :{}, ", hung.port);
    let last = screen
        .rfind(&waiting)
        .unwrap_or_else(|| panic!("no progress line on the terminal:\n{screen:?}"));
    let header = screen
        .find(&format!("pd-doctor {}", env!("CARGO_PKG_VERSION")))
        .expect("the report");
    assert!(last < header, "progress after the report:\n{screen:?}");
    assert!(
        screen[last..header].contains("\x1b[2K"),
        "the line is not cleared before the report:\n{screen:?}"
    );
    assert!(screen[header..].contains("server.mcp[qms]"));
    // Not on a pipe, and not onto a terminal that shows --json's stdout.
    let piped = run(t.root(), &["--only", "server.*[qms]", "--timeout", "1s"]).await;
    assert!(piped.stderr.is_empty(), "{}", piped.stderr);
    let root = t.root().to_path_buf();
    let json = tokio::task::spawn_blocking(move || {
        on_a_terminal(
            &root,
            "--json --only 'server.*[qms]' --timeout 1s",
            &[],
            None,
            || {},
        )
    })
    .await
    .unwrap();
    assert!(!json.contains("waiting for"), "{json:?}");
}
