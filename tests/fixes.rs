//! `--fix` and `reset` on real files, real processes and real containers: every row of
//! the contract's fix table repaired and reported `fixed`, backed up byte for byte, and
//! idempotent; plus the safety rules (dry run, consent, symlinks, fences, --force).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::lab::{lab_or_skip, Lab};
use common::{dead_pid, free_port, on_a_terminal, run, script, Run, Tree};

/// Every path under `root` with its content (or link target): the whole state on disk.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let key = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    key,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()).into_bytes(),
                );
            } else if meta.is_dir() {
                out.insert(key + "/", Vec::new());
                stack.push(p);
            } else {
                out.insert(key, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

async fn fix(t: &Tree, extra: &[&str]) -> Run {
    let mut args = vec!["--json", "--fix", "--yes"];
    args.extend_from_slice(extra);
    run(t.root(), &args).await
}

/// `--fix --yes` repairs it, the check says `fixed`, and a second `--fix` changes nothing.
async fn fixed_then_idempotent(t: &Tree, id: &str, only: &[&str]) -> Run {
    let mut extra = Vec::new();
    for o in only {
        extra.extend(["--only", o]);
    }
    let first = fix(t, &extra).await;
    common::validate_schema(&first.json());
    let c = first.check(id);
    assert_eq!(
        c["status"],
        "fixed",
        "{}\n{}",
        serde_json::to_string_pretty(&c).unwrap(),
        first.stderr
    );
    assert_eq!(c["fix"]["applied"], true);
    assert!(first.json()["summary"]["fixed"].as_u64().unwrap() >= 1);
    let before = snapshot(t.root());
    let second = fix(t, &extra).await;
    assert!(
        second.stderr.contains("Nothing to fix"),
        "{}",
        second.stderr
    );
    assert_eq!(
        snapshot(t.root()),
        before,
        "a second --fix changed something"
    );
    first
}

fn backups_of(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.pd-doctor."))
        })
        .collect();
    found.sort();
    found
}

fn qa_tree(fixture: &str) -> Tree {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", fixture);
    t.config("");
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_pid_file_is_removed_with_a_backup() {
    let t = qa_tree("healthy");
    let pid = dead_pid();
    t.write(".qms-mcp-server.pid", &format!("{pid}\n"));
    fixed_then_idempotent(&t, "server.pidfile[qms]", &["server.pidfile*"]).await;
    assert!(!t.path(".qms-mcp-server.pid").exists());
    let b = backups_of(t.root(), ".qms-mcp-server.pid");
    assert_eq!(std::fs::read_to_string(&b[0]).unwrap(), format!("{pid}\n"));
}

/// The approved project copy wins, so a localhost URL left in user scope is only a
/// conflict (a warning); --fix rewrites that copy from docker/.mcp.json, and the scopes
/// agree.
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_user_scope_copy_under_an_approved_project_copy_is_rewritten() {
    let t = qa_tree("localhost-urls");
    // The project copy is in use: approved, in a folder qa trusts.
    t.approve();
    t.trust("qa");
    let before = common::run_json(t.root(), &["--only", "config.*"]).await;
    before.expect("config.server_entry[qa,qms]", "ok", "ok");
    let c = before.expect("config.scope_conflict[qa,qms]", "warn", "conflict");
    assert_eq!(c["fix"]["available"], true, "{c:#}");
    fixed_then_idempotent(&t, "config.scope_conflict[qa,qms]", &["config.*"]).await;
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc["mcpServers"]["qms"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.qms)
    );
    assert!(!backups_of(
        &t.path(".claude/users/qa/container/backups"),
        ".claude.json"
    )
    .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_pid_file_is_removed() {
    let t = qa_tree("healthy");
    t.write(".git-mcp-server.pid", "not a pid");
    fixed_then_idempotent(&t, "server.pidfile[git]", &["server.pidfile*"]).await;
    assert!(!t.path(".git-mcp-server.pid").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_pid_file_is_removed_and_the_process_never_signalled() {
    let t = qa_tree("healthy");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    t.write(".qms-mcp-server.pid", &sleeper.id().to_string());
    let old = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(t.path(".qms-mcp-server.pid"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    fixed_then_idempotent(&t, "server.pidfile[qms]", &["server.pidfile*"]).await;
    // reset --stop-servers must not signal it either: a file naming it, older than the
    // process, is removed as stale and the process left alone.
    t.write(".qms-mcp-server.pid", &sleeper.id().to_string());
    std::fs::File::options()
        .write(true)
        .open(t.path(".qms-mcp-server.pid"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let r = run(t.root(), &["reset", "--yes", "--stop-servers"]).await;
    assert!(
        r.stdout.contains("reused by another process") && !r.stdout.contains("stop server"),
        "{}",
        r.stdout
    );
    assert!(!t.path(".qms-mcp-server.pid").exists(), "{}", r.stdout);
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the unrelated process was signalled"
    );
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_marker_is_removed_so_the_entrypoint_configures_again() {
    let t = qa_tree("marker-without-config");
    fixed_then_idempotent(&t, "config.marker[qa,qms]", &["config.*"]).await;
    let dir = t.path(".claude/users/qa/container");
    assert!(!dir.join(".mcp-configured").exists() && !dir.join(".git-mcp-configured").exists());
    assert_eq!(backups_of(&dir.join("backups"), ".mcp-configured").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_marker_that_is_a_symlink_goes_and_its_target_stays() {
    let t = qa_tree("marker-without-config");
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let marker = t.path(".claude/users/qa/container/.mcp-configured");
    std::fs::remove_file(&marker).unwrap();
    std::os::unix::fs::symlink(&precious, &marker).unwrap();
    let r = fix(&t, &["--only", "config.marker*"]).await;
    assert_eq!(r.check("config.marker[qa,qms]")["status"], "fixed");
    assert!(std::fs::symlink_metadata(&marker).is_err());
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_claude_json_is_kept_aside_and_restored_from_the_newest_parsable_backup() {
    let t = qa_tree("corrupted-with-backup");
    let dir = t.path(".claude/users/qa/container");
    let corrupt = std::fs::read(dir.join(".claude.json")).unwrap();
    // A newer backup that does not parse must be passed over.
    std::fs::write(
        dir.join("backups/.claude.json.backup.1895610104322"),
        "{ truncated",
    )
    .unwrap();
    let r = fixed_then_idempotent(&t, "config.claude_json[qa]", &["config.*"]).await;
    let restored = std::fs::read_to_string(dir.join(".claude.json")).unwrap();
    assert!(restored.contains("firstStartTime"), "{restored}");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".claude.json.corrupt."))
        .collect();
    assert_eq!(
        std::fs::read(&kept[0]).unwrap(),
        corrupt,
        "the broken file is kept byte for byte"
    );
    let outcome = r.check("config.claude_json[qa]")["fix"]["outcome"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(outcome.contains("registers no MCP server"), "{outcome}");
    // The restored copy registers nothing, so the markers it hid were stale: round two.
    assert_eq!(r.check("config.marker[qa,qms]")["status"], "ok");
    assert!(!dir.join(".mcp-configured").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_claude_json_without_a_parsable_backup_becomes_empty_object() {
    let t = qa_tree("empty-file");
    let dir = t.path(".claude/users/qa/container");
    std::fs::write(dir.join("backups/.claude.json.backup.1795610104713"), "").unwrap();
    fixed_then_idempotent(&t, "config.claude_json[qa]", &["config.*"]).await;
    assert_eq!(
        std::fs::read_to_string(dir.join(".claude.json"))
            .unwrap()
            .trim(),
        "{}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn localhost_urls_are_rewritten_keeping_unknown_fields_and_order() {
    let t = qa_tree("localhost-urls");
    let path = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["mcpServers"]["qms"]["timeout"] = 30000.into();
    doc["zzz_unknown"] = serde_json::json!({"b": 1, "a": 2});
    let original = serde_json::to_string_pretty(&doc).unwrap();
    std::fs::write(&path, &original).unwrap();
    let keys_before: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
    fixed_then_idempotent(&t, "config.server_entry[qa,qms]", &["config.*"]).await;
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        after["mcpServers"]["qms"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.qms)
    );
    assert_eq!(
        after["mcpServers"]["git"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.git)
    );
    assert_eq!(after["mcpServers"]["qms"]["timeout"], 30000);
    assert_eq!(
        after
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        keys_before
    );
    assert_eq!(
        after["zzz_unknown"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
    let backups = backups_of(
        &t.path(".claude/users/qa/container/backups"),
        ".claude.json",
    );
    assert_eq!(
        std::fs::read_to_string(&backups[0]).unwrap(),
        original,
        "backup is byte-identical"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_authorization_header_is_added_from_the_mcp_json() {
    let t = qa_tree("missing-auth-header");
    fixed_then_idempotent(&t, "config.server_entry[qa,qms]", &["config.*"]).await;
    let after: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        after["mcpServers"]["qms"]["headers"]["Authorization"],
        "Bearer internal-trusted"
    );
    let keys: Vec<_> = after["mcpServers"]["qms"]["headers"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["X-API-Key", "Authorization"]);
}

fn entries(t: &Tree) -> serde_json::Value {
    let text = std::fs::read_to_string(t.path(".claude/users/qa/container/.claude.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["mcpServers"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_ports_are_rewritten_from_the_mcp_json() {
    let t = qa_tree("wrong-port");
    fixed_then_idempotent(&t, "config.server_entry[qa,qms]", &["config.*"]).await;
    let after = entries(&t);
    assert_eq!(
        after["qms"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.qms)
    );
    assert_eq!(
        after["git"]["url"],
        format!("http://host.docker.internal:{}/mcp", t.git)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_path_is_rewritten() {
    let t = qa_tree("healthy");
    let path = t.path(".claude/users/qa/container/.claude.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("/mcp\"", "/sse\"", 1);
    std::fs::write(&path, text).unwrap();
    let r = fixed_then_idempotent(&t, "config.server_entry[qa,qms]", &["config.*"]).await;
    assert!(r.check("config.server_entry[qa,qms]")["fix"]["outcome"]
        .as_str()
        .unwrap()
        .contains("rewrote qms"));
    assert!(entries(&t)["qms"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/mcp"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_transport_becomes_http_and_a_stdio_entry_loses_its_command() {
    let t = qa_tree("sse-transport");
    let path = t.path(".claude/users/qa/container/.claude.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["mcpServers"]["git"] = serde_json::json!({
        "command": "C:/python.exe", "args": ["-m", "git_mcp"], "env": {"GIT_TOKEN": "x"}
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    fixed_then_idempotent(&t, "config.server_entry[qa,qms]", &["config.*"]).await;
    let after = entries(&t);
    assert_eq!(after["qms"]["type"], "http");
    // Third round: a stdio entry is never rewritten into an http one (the stdio proxy
    // is how today's Pipe Dream reaches its servers); it is left as it was.
    assert_eq!(
        after["git"],
        serde_json::json!({"command": "C:/python.exe", "args": ["-m", "git_mcp"], "env": {"GIT_TOKEN": "x"}})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let t = qa_tree("marker-without-config");
    t.write(".qms-mcp-server.pid", "garbage");
    let before = snapshot(t.root());
    let r = run(t.root(), &["--fix", "--dry-run"]).await;
    assert!(
        r.stdout.contains("pd-doctor --fix will:")
            && r.stdout.contains("--dry-run: nothing was changed"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, 1);
    assert_eq!(snapshot(t.root()), before);
    let j = run(t.root(), &["--json", "--fix", "--dry-run"]).await;
    let c = j.check("config.marker[qa,qms]");
    assert_eq!(
        (c["status"].as_str(), c["fix"]["applied"].as_bool()),
        (Some("fail"), Some(false))
    );
    assert_eq!(snapshot(t.root()), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_and_without_yes_fix_refuses() {
    let t = qa_tree("marker-without-config");
    let before = snapshot(t.root());
    let r = run(t.root(), &["--fix"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(snapshot(t.root()), before);
    let r = run(t.root(), &["reset"]).await;
    assert_eq!(r.code, 2);
    assert_eq!(snapshot(t.root()), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_fix_asks_once_for_the_whole_plan() {
    let t = qa_tree("marker-without-config");
    let before = snapshot(t.root());
    let said_no = on_a_terminal(t.root(), "--fix --only 'config.*'", &[], Some("n\n"), || {});
    assert!(
        said_no.contains("Apply these 2 repairs? [y/N]"),
        "{said_no}"
    );
    assert_eq!(snapshot(t.root()), before);
    let said_yes = on_a_terminal(t.root(), "--fix --only 'config.*'", &[], Some("y\n"), || {});
    assert_eq!(said_yes.matches("[y/N]").count(), 1, "{said_yes}");
    assert!(
        !t.path(".claude/users/qa/container/.mcp-configured")
            .exists(),
        "{said_yes}"
    );
}

/// `chattr +i`: read-only even for root, which these tests run as.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn new(dir: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(dir.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_config_dir_is_a_clear_failure_not_a_partial_write() {
    let t = qa_tree("localhost-urls");
    let dir = t.path(".claude/users/qa/container");
    let original = std::fs::read(dir.join(".claude.json")).unwrap();
    let Some(_lock) = Immutable::new(&dir) else {
        assert!(
            std::env::var("PD_REQUIRE_DOCKER").is_err(),
            "chattr +i is needed for this test in CI"
        );
        eprintln!("skipped: chattr +i is not available on this file system");
        return;
    };
    let r = fix(&t, &["--only", "config.*"]).await;
    let c = r.check("config.server_entry[qa,qms]");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["fix"]["applied"], false);
    assert!(
        c["fix"]["outcome"]
            .as_str()
            .unwrap()
            .contains("failed: writing"),
        "{c}"
    );
    assert_eq!(std::fs::read(dir.join(".claude.json")).unwrap(), original);
    let strays: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("tmp"))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_outside_the_root_is_touched() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    let outside = tempfile::tempdir().unwrap();
    let pid = outside.path().join("server.pid");
    std::fs::write(&pid, "garbage").unwrap();
    t.config(&format!(
        "[[server]]\nname = \"extra\"\nport = {}\npid_file = \"{}\"\n",
        free_port(),
        pid.display()
    ));
    let r = fix(&t, &["--only", "server.pidfile*"]).await;
    let c = r.check("server.pidfile[extra]");
    assert_eq!(c["status"], "fail");
    // Outside the fence a repair is not even planned; the hint says why and what to do.
    assert_eq!(c["fix"]["available"], false, "{c}");
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("outside the project root"),
        "{c}"
    );
    assert_eq!(std::fs::read_to_string(&pid).unwrap(), "garbage");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_stops_a_verified_server_and_clears_markers() {
    let t = qa_tree("healthy");
    let port = free_port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    t.config(&format!("[[server]]\nname = \"web\"\nport = {port}\n"));
    t.write(".web-mcp-server.pid", &server.id().to_string());
    let dry = run(t.root(), &["reset", "--dry-run", "--stop-servers"]).await;
    assert!(dry.stdout.contains("stop server web"), "{}", dry.stdout);
    assert!(server.try_wait().unwrap().is_none());
    let r = run(t.root(), &["reset", "--yes", "--stop-servers"]).await;
    assert!(r.stdout.contains("stopped web"), "{}", r.stdout);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let status = server.wait().unwrap();
    assert!(!status.success(), "stopped by SIGTERM");
    assert!(!t.path(".web-mcp-server.pid").exists());
    assert!(!t
        .path(".claude/users/qa/container/.mcp-configured")
        .exists());
}

// --- containers --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stale_and_duplicate_containers_are_removed_and_a_running_one_survives() {
    let Some((lab, image)) = lab_or_skip(
        "stale_and_duplicate_containers_are_removed_and_a_running_one_survives",
        "fixcontainers",
        "curl",
    ) else {
        return;
    };
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy").agent("bu", "healthy");
    lab.configure(&t, "");
    lab.start_agent(&t, "qa", &image, &[]);
    // An older, stopped container for qa: found by its config mount.
    let extra = format!("pdt-{}-old-qa", lab.id);
    lab.start(&extra, false, &Lab::standard_args(&t, "qa"), &[&image]);
    let bu_args = Lab::standard_args(&t, "bu");
    lab.start(&lab.name("bu"), false, &bu_args, &[&image]);
    let r = fix(&t, &["--only", "containers.*"]).await;
    assert_eq!(
        r.check("containers.stale")["status"],
        "fixed",
        "{}",
        r.stdout
    );
    assert_eq!(r.check("containers.duplicate[qa]")["status"], "fixed");
    assert_eq!(
        lab.containers("{{.Names}}"),
        [lab.name("qa")],
        "only the running container is left"
    );
    let second = fix(&t, &["--only", "containers.*"]).await;
    assert!(
        second.stderr.contains("Nothing to fix"),
        "{}",
        second.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_removes_stopped_containers_and_running_ones_only_with_force() {
    let Some((lab, image)) = lab_or_skip(
        "reset_removes_stopped_containers_and_running_ones_only_with_force",
        "resetcontainers",
        "curl",
    ) else {
        return;
    };
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy").agent("bu", "healthy");
    lab.configure(&t, "");
    lab.start_agent(&t, "qa", &image, &[]);
    lab.start(
        &lab.name("bu"),
        false,
        &Lab::standard_args(&t, "bu"),
        &[&image],
    );
    let names = || lab.containers("{{.Names}}");
    let r = run(t.root(), &["reset", "--yes"]).await;
    assert!(r.stdout.contains("only with --force"), "{}", r.stdout);
    assert_eq!(names(), [lab.name("qa")]);
    let r = run(t.root(), &["reset", "--yes", "--force"]).await;
    assert!(
        r.stdout.contains("removed running container"),
        "{}",
        r.stdout
    );
    assert!(names().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn state_that_changes_between_plan_and_action_is_left_alone() {
    let t = qa_tree("marker-without-config");
    // While pd-doctor waits for the answer, the entrypoint registers the servers after all.
    let register = || {
        let healthy = t.ported(&common::fixture_text("healthy/.claude.json"));
        std::fs::write(t.path(".claude/users/qa/container/.claude.json"), healthy).unwrap();
    };
    let out = on_a_terminal(
        t.root(),
        "--fix --only 'config.*'",
        &[],
        Some("y\n"),
        register,
    );
    assert!(
        out.contains("the state changed since the plan was made"),
        "{out}"
    );
    assert!(
        t.path(".claude/users/qa/container/.mcp-configured")
            .exists(),
        "a marker that is no longer stale was removed"
    );
}

// --- starting servers ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_died_is_started_by_its_start_script_and_answers() {
    // Reachable means bound to the Docker bridge too: no engine, no bridge.
    if !common::lab::docker_or_skip("a_server_that_died_is_started_by_its_start_script") {
        return;
    }
    let t = qa_tree("healthy");
    let _stop = common::git_died(&t);
    let r = fixed_then_idempotent(&t, "server.listen[git]", &["server.*[git]"]).await;
    r.expect("server.pidfile[git]", "fixed", "ok");
    r.expect("server.mcp[git]", "ok", "ok");
    let outcome = r.check("server.listen[git]")["fix"]["outcome"].to_string();
    assert!(
        outcome.contains("started git (docker/scripts/start-git-mcp.sh --background)")
            && outcome.contains("answered the MCP handshake"),
        "{outcome}"
    );
    let logs: Vec<_> = std::fs::read_dir(t.path(".pd-doctor/logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1);
    assert!(std::fs::read_to_string(&logs[0])
        .unwrap()
        .contains("started on"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_script_that_fails_is_a_failed_repair_with_its_log() {
    let t = qa_tree("healthy");
    script(
        &t,
        "docker/scripts/start-git-mcp.sh",
        "echo \"OSError: [Errno 98] Address already in use\" >&2\nprintf 'evil \\033]0;owned\\007\\n'\nexit 3",
    );
    let r = fix(&t, &["--only", "server.listen*"]).await;
    common::validate_schema(&r.json());
    let c = r.expect("server.listen[git]", "fail", "not-listening");
    assert_eq!(c["fix"]["applied"], false);
    let outcome = c["fix"]["outcome"].as_str().unwrap();
    assert!(outcome.contains("exited with exit status: 3"), "{outcome}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("log: OSError: [Errno 98] Address already in use"),
        "{evidence}"
    );
    assert!(evidence.contains("evil \\\\x1b]0;owned"), "{evidence}");
    assert_eq!(r.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_fails_after_its_start_timeout() {
    let t = qa_tree("healthy");
    t.config(&format!(
        "[[server]]\nname = \"web\"\nport = {}\nstart = \"docker/scripts/web.sh --background\"\nstart_timeout = \"1s\"\n",
        free_port()
    ));
    script(
        &t,
        "docker/scripts/web.sh",
        "echo \"waiting for the database\"\nexec sleep 3",
    );
    let started = std::time::Instant::now();
    let r = fix(&t, &["--only", "server.listen[web]"]).await;
    let c = r.expect("server.listen[web]", "fail", "not-listening");
    let outcome = c["fix"]["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("did not answer an MCP handshake within 1s"),
        "{outcome}"
    );
    assert!(c["evidence"]
        .to_string()
        .contains("log: waiting for the database"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_outside_the_project_is_ever_started() {
    let t = qa_tree("healthy");
    let outside = tempfile::tempdir().unwrap();
    let ran = outside.path().join("ran");
    let evil = outside.path().join("evil.sh");
    std::fs::write(&evil, format!("#!/bin/bash\ntouch {}\n", ran.display())).unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(t.path("docker/scripts")).unwrap();
    // A link that leads out, and a command that names a program outside.
    std::os::unix::fs::symlink(&evil, t.path("docker/scripts/start-git-mcp.sh")).unwrap();
    t.write(
        "pd-doctor.toml",
        &format!(
        "[[server]]\nname = \"qms\"\nport = {}\nstart = \"{} --background\"\n[[server]]\nname = \"git\"\nport = {}\n",
        t.qms,
        evil.display(),
        t.git
    ),
    );
    let r = fix(&t, &["--only", "server.listen*"]).await;
    for id in ["server.listen[qms]", "server.listen[git]"] {
        let c = r.expect(id, "fail", "not-listening");
        assert_eq!(c["fix"]["available"], false, "{c}");
        assert!(
            c["hint"]
                .as_str()
                .unwrap()
                .contains("leads outside the project root"),
            "{c}"
        );
    }
    assert!(!ran.exists(), "a program outside the project ran");
}
