//! The trust boundary (SECURITY.md): everything an agent container can write, and every
//! byte a server or container sends, is hostile. One test per attack, each built for
//! real: links planted where pd-doctor writes or restores from, FIFOs and sparse
//! multi-GB files where it reads, names and answers that carry terminal escapes, secrets
//! in query strings, servers that redirect or never stop talking, an engine that never
//! answers. The run must end, say what it found, print no control character and no
//! secret, and touch nothing outside the project.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::lab::{docker, lab_or_skip, Lab, GATEWAY};
use common::servers::{self, Fault, McpOptions};
use common::{free_port, run, run_json, Run, Tree};

/// A hang shows as this, not as a test that never ends.
const HANG: Duration = Duration::from_secs(60);

fn qa_tree(fixture: &str) -> Tree {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", fixture);
    t.config("");
    t
}

async fn bounded(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = common::command(root, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(HANG, common::output(&mut cmd))
        .await
        .unwrap_or_else(|_| panic!("pd-doctor {args:?} hung"))
}

fn assert_no_control_characters(r: &Run) {
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| {
                (c.is_control() && *c != '\n' && *c != '\t')
                    || ('\u{202a}'..='\u{202e}').contains(c)
            })
            .collect();
        assert!(bad.is_empty(), "{name} carries {bad:?}:\n{text}");
    }
}

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn sparse(path: &Path, bytes: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    std::fs::File::create(path).unwrap().set_len(bytes).unwrap();
}

const PLANTED: &str = "planted-host-secret-6d1f9a";

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_backup_is_never_restored() {
    let t = qa_tree("corrupted-with-backup");
    let outside = tempfile::tempdir().unwrap();
    let host_file = outside.path().join("host.json");
    std::fs::write(&host_file, format!("{{\"token\": \"{PLANTED}\"}}")).unwrap();
    let dir = t.path(".claude/users/qa/container");
    symlink(
        &host_file,
        dir.join("backups/.claude.json.backup.9995610104322"),
    )
    .unwrap();
    let plan = run_json(t.root(), &["--only", "config.claude_json*"]).await;
    let c = plan.expect("config.claude_json[qa]", "fail", "corrupt");
    assert!(
        c["evidence"]
            .to_string()
            .contains("is a symlink: passed over"),
        "{c}"
    );
    let r = run_json(t.root(), &["--fix", "--yes", "--only", "config.*"]).await;
    r.expect("config.claude_json[qa]", "fixed", "ok");
    let restored = std::fs::read_to_string(dir.join(".claude.json")).unwrap();
    assert!(!restored.contains(PLANTED), "{restored}");
    assert!(
        restored.contains("firstStartTime"),
        "restored from the real backup"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_backups_folder_is_never_used() {
    let t = qa_tree("corrupted-with-backup");
    let dir = t.path(".claude/users/qa/container");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join(".claude.json.backup.9995610104322"),
        format!("{{\"token\": \"{PLANTED}\"}}"),
    )
    .unwrap();
    std::fs::remove_dir_all(dir.join("backups")).unwrap();
    symlink(outside.path(), dir.join("backups")).unwrap();
    let before: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    let r = run_json(
        t.root(),
        &["--fix", "--yes", "--only", "config.claude_json*"],
    )
    .await;
    let c = r.expect("config.claude_json[qa]", "fixed", "ok");
    assert!(c["fix"]["outcome"].to_string().contains("from {}"), "{c}");
    let restored = std::fs::read_to_string(dir.join(".claude.json")).unwrap();
    assert!(!restored.contains(PLANTED));
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        before.len(),
        "nothing was written through the linked backups/"
    );
}

/// Links at every name a backup or a kept-aside copy could take in the next seconds:
/// each is stepped over (O_EXCL never follows a link) and its target stays untouched.
#[tokio::test(flavor = "multi_thread")]
async fn planted_links_at_every_backup_and_kept_aside_name_are_stepped_over() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for (fixture, prefix) in [
        ("corrupted-with-backup", ".claude.json.corrupt."),
        ("localhost-urls", "backups/.claude.json.pd-doctor."),
    ] {
        let t = qa_tree(fixture);
        let dir = t.path(".claude/users/qa/container");
        for ms in now..now + 8000 {
            symlink(&victim, dir.join(format!("{prefix}{ms}"))).unwrap();
        }
        let r = run_json(t.root(), &["--fix", "--yes", "--only", "config.*"]).await;
        let id = if fixture == "localhost-urls" {
            "config.server_entry[qa,qms]"
        } else {
            "config.claude_json[qa]"
        };
        r.expect(id, "fixed", "ok");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_at_every_file_pd_doctor_reads_never_hangs() {
    // Before the engine starts: a clear usage error.
    for rel in ["pd-doctor.toml", ".pd-doctor/checks/mine.toml"] {
        let t = qa_tree("healthy");
        let _ = std::fs::remove_file(t.path(rel));
        mkfifo(&t.path(rel));
        let r = bounded(t.root(), &["--json"], &[]).await;
        assert_eq!(r.code, 2, "{rel}: {}", r.stderr);
        assert!(
            r.stderr.contains("a FIFO, not a regular file"),
            "{rel}: {}",
            r.stderr
        );
    }
    // In the checked tree: findings.
    let t = qa_tree("healthy");
    let cfg = ".claude/users/qa/container";
    for rel in [
        format!("{cfg}/.claude.json"),
        format!("{cfg}/.mcp-configured"),
        format!("{cfg}/backups/.claude.json.backup.9995610104322"),
        "docker/.mcp.json".into(),
        ".qms-mcp-server.pid".into(),
        "docker/entrypoint.sh".into(),
        "docker/Dockerfile".into(),
    ] {
        let _ = std::fs::remove_file(t.path(&rel));
        mkfifo(&t.path(&rel));
    }
    let r = bounded(t.root(), &["--json", "--timeout", "1s"], &[]).await;
    let c = r.expect("config.claude_json[qa]", "fail", "unreadable");
    assert!(c["message"].as_str().unwrap().contains("a FIFO"), "{c}");
    r.expect("config.mcp_json", "fail", "unreadable");
    r.expect("server.pidfile[qms]", "fail", "unreadable");
    let fixed = bounded(t.root(), &["--json", "--fix", "--yes"], &[]).await;
    assert!(fixed.code == 0 || fixed.code == 1, "{}", fixed.stderr);
    let reset = bounded(
        t.root(),
        &["reset", "--yes", "--dry-run", "--stop-servers"],
        &[],
    )
    .await;
    assert_eq!(reset.code, 0, "{}", reset.stderr);
}

/// 20 GiB sparse files everywhere pd-doctor reads, under a 1 GiB address-space limit:
/// one whole read would abort the process.
#[tokio::test(flavor = "multi_thread")]
async fn sparse_files_of_20_gib_are_findings_not_allocations() {
    let t = qa_tree("healthy");
    let cfg = ".claude/users/qa/container";
    for rel in [
        format!("{cfg}/.claude.json"),
        format!("{cfg}/.git-mcp-configured"),
        format!("{cfg}/backups/.claude.json.backup.9995610104322"),
        "docker/.mcp.json".into(),
        ".qms-mcp-server.pid".into(),
        "docker/entrypoint.sh".into(),
    ] {
        sparse(&t.path(&rel), 20 << 30);
    }
    // A 1 GiB address space, set by util-linux prlimit (as the pty tests use script):
    // the crate forbids unsafe code, and a pre_exec hook would need it.
    let limited = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("prlimit");
        cmd.arg(format!("--as={0}:{0}", 1u64 << 30))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_pd-doctor"))
            .arg("--root")
            .arg(t.root())
            .args(args)
            .env_remove("NO_COLOR")
            .env("MALLOC_ARENA_MAX", "2")
            .kill_on_drop(true);
        cmd
    };
    for args in [
        &["--json", "--timeout", "1s"][..],
        &["--json", "--fix", "--yes", "--timeout", "1s"],
        &["reset", "--yes", "--stop-servers"],
    ] {
        let out = tokio::time::timeout(HANG, limited(args).output())
            .await
            .expect("no hang")
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] == "--json" && args.len() == 3 {
            let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            let find = |id: &str| {
                r["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["id"] == id)
                    .cloned()
                    .unwrap()
            };
            let c = find("config.claude_json[qa]");
            assert_eq!(
                (c["status"].as_str(), c["cause"].as_str()),
                (Some("fail"), Some("unreadable"))
            );
            assert!(
                c["message"].as_str().unwrap().contains("21474836480 bytes"),
                "{c}"
            );
            let c = find("server.pidfile[qms]");
            assert_eq!(
                (c["status"].as_str(), c["cause"].as_str()),
                (Some("fail"), Some("unreadable"))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_agent_folder_names_are_data_not_commands() {
    use std::os::unix::ffi::OsStrExt;
    let t = Tree::new(free_port(), free_port());
    t.config("");
    let names: [&[u8]; 5] = [
        b"$(touch pwned)",
        b"a;touch pwned2",
        b"with space",
        b"esc\x1b]0;title\x07\x1b[2J",
        b"not-utf8-\xff\xfe",
    ];
    for name in names {
        let dir = t
            .path(".claude/users")
            .join(std::ffi::OsStr::from_bytes(name))
            .join("container");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".mcp-configured"), "").unwrap();
        std::fs::write(dir.join(".claude.json"), "{}").unwrap();
    }
    let json = run_json(t.root(), &["--timeout", "1s"]).await;
    json.expect("config.marker[with space,qms]", "fail", "stale-marker");
    json.expect("config.marker[$(touch pwned),qms]", "fail", "stale-marker");
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["--color", "never", "--timeout", "1s"][..],
        &["--json", "--timeout", "1s"],
        &["--fix", "--yes", "--timeout", "1s"],
        &["reset", "--yes"],
    ] {
        let mut cmd = common::command(t.root(), args);
        cmd.current_dir(cwd.path());
        let r = tokio::time::timeout(HANG, common::output(&mut cmd))
            .await
            .unwrap();
        assert!(matches!(r.code, 0 | 1), "{args:?}: {}", r.stderr);
        assert_no_control_characters(&r);
    }
    for stray in ["pwned", "pwned2"] {
        assert!(!cwd.path().join(stray).exists());
        assert!(!t.path(stray).exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_nested_100000_deep_is_corrupt_not_a_crash() {
    let t = qa_tree("healthy");
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    t.write(".claude/users/qa/container/.claude.json", &deep);
    t.write("docker/.mcp.json", &format!("{{\"mcpServers\": {deep}}}"));
    let r = bounded(t.root(), &["--json", "--timeout", "1s"], &[]).await;
    r.expect("config.claude_json[qa]", "fail", "corrupt");
    r.expect("config.mcp_json", "fail", "corrupt");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_name_and_version_with_escapes_reach_no_terminal() {
    let s = servers::mcp_server(McpOptions {
        identity: Some((
            "qms\x1b]0;owned\x07\x1b[2J".into(),
            "1.0\r\u{202e}\u{9b}31m".into(),
        )),
        ..Default::default()
    })
    .await;
    let t = Tree::new(s.port, free_port());
    t.config("");
    let r = run(
        t.root(),
        &["--only", "server.mcp[qms]", "--color", "never", "-v"],
    )
    .await;
    assert_no_control_characters(&r);
    assert!(r.stdout.contains("qms\\x1b]0;owned\\x07"), "{}", r.stdout);
    let j = run_json(t.root(), &["--only", "server.mcp[qms]"]).await;
    j.expect("server.mcp[qms]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_in_url_query_strings_never_show() {
    let s = servers::mcp_server(McpOptions::default()).await;
    let t = Tree::new(s.port, free_port());
    t.agent("qa", "healthy");
    t.config("");
    let secret = "q-secret-5f2b81c0";
    for rel in [
        "docker/.mcp.json",
        ".claude/users/qa/container/.claude.json",
    ] {
        let text = std::fs::read_to_string(t.path(rel)).unwrap();
        let port = format!(":{}/mcp", s.port);
        t.write(
            rel,
            &text.replace(&port, &format!("{port}?api_key={secret}")),
        );
    }
    for args in [
        &["--color", "never", "-v"][..],
        &["--json"],
        &["--format", "junit"],
    ] {
        let r = run(t.root(), args).await;
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{args:?}:\n{}",
            r.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_never_followed() {
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = format!(
        "http://127.0.0.1:{}/mcp",
        elsewhere.local_addr().unwrap().port()
    );
    let s = servers::fault_server(Fault::Redirect(to)).await;
    let t = Tree::new(s.port, free_port());
    t.config("");
    let r = run_json(t.root(), &["--only", "server.*[qms]", "--timeout", "1s"]).await;
    r.expect("server.mcp[qms]", "fail", "not-mcp");
    let followed = tokio::time::timeout(Duration::from_millis(200), elsewhere.accept()).await;
    assert!(followed.is_err(), "pd-doctor followed the redirect");
}

/// Cut off at its cap, not at the deadline: the timeout leaves a busy debug build the
/// time to read the cap.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_event_stream_is_cut_off() {
    let s = servers::fault_server(Fault::Flood).await;
    let t = Tree::new(s.port, free_port());
    t.config("");
    let r = bounded(
        t.root(),
        &["--json", "--only", "server.mcp[qms]", "--timeout", "3s"],
        &[],
    )
    .await;
    r.expect("server.mcp[qms]", "fail", "not-mcp");
    assert!(r.elapsed < HANG);
}

/// An engine socket that accepts and never answers: the check, `--fix` and `reset` all
/// end, each after about one timeout.
#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_never_answers_cannot_hang_fix_or_reset() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let host = format!("unix://{}", socket.display());
    let t = qa_tree("marker-without-config");
    let env = [("DOCKER_HOST", host.as_str())];
    let r = bounded(t.root(), &["--json", "--timeout", "1s"], &env).await;
    r.expect("docker.engine", "fail", "unreachable");
    let r = bounded(
        t.root(),
        &["--json", "--fix", "--yes", "--timeout", "1s"],
        &env,
    )
    .await;
    r.expect("config.marker[qa,qms]", "fixed", "none");
    let r = bounded(t.root(), &["reset", "--yes", "--timeout", "1s"], &env).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_out_of_range_is_a_usage_error() {
    let t = qa_tree("healthy");
    for bad in ["1e20", "-1", "0", "10ms", "11m", "NaN", "inf"] {
        let r = run(t.root(), &["--timeout", bad]).await;
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{bad}: {}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_log_with_escapes_reaches_no_terminal() {
    let Some((lab, curl)) = lab_or_skip("a_container_log_with_escapes", "escapes", "curl") else {
        return;
    };
    let t = qa_tree("healthy");
    lab.configure(&t, "");
    let mut args = Lab::standard_args(&t, "qa");
    args.push(GATEWAY.into());
    let script = r"printf '\033]0;owned\007\033[2J\033[1A\rall checks passed\233\n' >&2; exit 3";
    lab.launch(&lab.name("qa"), true, &args, &[&curl, "bash", "-c", script]);
    for _ in 0..50 {
        if docker(&["inspect", "-f", "{{.State.Status}}", &lab.name("qa")]) == "exited" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let only = ["--only", "container.state*", "--timeout", "3s"];
    let r = run(t.root(), &[&only[..], &["--color", "never", "-v"]].concat()).await;
    assert_no_control_characters(&r);
    assert!(r.stdout.contains("]0;owned"), "{}", r.stdout);
    let j = run_json(t.root(), &only).await;
    j.expect("container.state[qa]", "fail", "stopped");
}

/// A container named like an agent that mounts a folder outside the project as its
/// config dir: diagnosed as usual, never repaired.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_dir_mounted_from_outside_the_project_is_never_repaired() {
    let Some((lab, curl)) = lab_or_skip("a_config_dir_outside", "outside", "curl") else {
        return;
    };
    let t = qa_tree("healthy");
    lab.configure(&t, "");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join(".mcp-configured"), "").unwrap();
    std::fs::write(outside.path().join(".claude.json"), "{}").unwrap();
    let args = vec![
        "-v".to_string(),
        format!("{}:/claude-config:rw", outside.path().display()),
        GATEWAY.into(),
    ];
    lab.start(&lab.name("evil"), false, &args, &[&curl]);
    // A container check asks the engine, which makes the agent known.
    let only = [
        "--only",
        "config.marker*",
        "--only",
        "container.state*",
        "--timeout",
        "3s",
    ];
    let r = run_json(t.root(), &only).await;
    let c = r.expect("config.marker[evil,qms]", "fail", "stale-marker");
    assert_eq!(c["fix"]["available"], false, "{c}");
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("not repaired automatically"),
        "{c}"
    );
    let fixed = run_json(t.root(), &[&["--fix", "--yes"][..], &only].concat()).await;
    fixed.expect("config.marker[evil,qms]", "fail", "stale-marker");
    assert!(outside.path().join(".mcp-configured").exists());
}
