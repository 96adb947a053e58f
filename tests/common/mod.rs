//! Shared test harness: a Pipe Dream tree in a temp dir, real MCP servers (rmcp), fault
//! servers for what real servers do not do on purpose, and a runner for the real binary.
#![allow(dead_code)]

pub mod claude;
pub mod hub;
pub mod lab;
pub mod servers;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-config");

/// `docker/.mcp.json` as the project has it: qms with both headers, git with none.
pub const MCP_JSON: &str = r#"{
  "mcpServers": {
    "qms": {
      "type": "http",
      "url": "http://host.docker.internal:8000/mcp",
      "headers": {
        "X-API-Key": "qms-internal",
        "Authorization": "Bearer internal-trusted"
      }
    },
    "git": {
      "type": "http",
      "url": "http://host.docker.internal:8001/mcp"
    }
  }
}
"#;

/// A Pipe Dream tree: `docker/.mcp.json` naming qms and git on the given ports, and the
/// agents the test adds.
pub struct Tree {
    pub dir: tempfile::TempDir,
    pub qms: u16,
    pub git: u16,
}

impl Tree {
    pub fn new(qms: u16, git: u16) -> Tree {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = Tree { dir, qms, git };
        std::fs::create_dir_all(tree.root().join(".claude/users")).unwrap();
        std::fs::create_dir_all(tree.root().join(".claude/agents")).unwrap();
        tree.write("docker/.mcp.json", &tree.ported(MCP_JSON));
        tree
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Rewrites the fixtures' ports 8000/8001 to this tree's.
    pub fn ported(&self, text: &str) -> String {
        text.replace(":8000/", &format!(":{}/", self.qms))
            .replace(":8001/", &format!(":{}/", self.git))
    }

    pub fn config_dir(&self, agent: &str) -> String {
        format!(".claude/users/{agent}/container")
    }

    /// An agent whose config dir is a copy of one fixture (ports rewritten), with its
    /// workspace and identity file.
    pub fn agent(&self, agent: &str, fixture: &str) -> &Tree {
        let dest = self.path(&self.config_dir(agent));
        copy_dir(&Path::new(FIXTURES).join(fixture), &dest);
        let cj = dest.join(".claude.json");
        if let Ok(text) = std::fs::read_to_string(&cj) {
            std::fs::write(&cj, self.ported(&text)).unwrap();
        }
        // The fixtures' CLI never logged in; a working agent has (config.auth).
        logged_in(&dest);
        std::fs::create_dir_all(self.path(&format!(".claude/users/{agent}/workspace"))).unwrap();
        if agent != "claude" {
            self.write(
                &format!(".claude/agents/{agent}.md"),
                &format!("# {agent}\n"),
            );
        }
        self
    }

    /// Approves the project-scope servers as Pipe Dream does: `docker/.claude-settings.json`
    /// (mounted over the containers' local project settings) enables qms and git and
    /// allows all their tools.
    pub fn approve(&self) -> &Tree {
        self.write(
            "docker/.claude-settings.json",
            "{\n  \"permissions\": {\"allow\": [\"mcp__qms\", \"mcp__git\"]},\n  \"enabledMcpjsonServers\": [\"qms\", \"git\"]\n}\n",
        );
        // The mount point in the read-only project mount must exist, as it does in the
        // real project.
        self.write(".claude/settings.local.json", "{}\n");
        self
    }

    /// Records in `agent`'s `.claude.json` that its first interactive start accepted the
    /// trust dialog for /pipe-dream, as Claude Code does (`projects["/pipe-dream"].
    /// hasTrustDialogAccepted`); the fixtures' CLI never started interactively.
    pub fn trust(&self, agent: &str) -> &Tree {
        let rel = format!("{}/.claude.json", self.config_dir(agent));
        let text = std::fs::read_to_string(self.path(&rel)).unwrap_or_else(|_| "{}".into());
        let mut doc: Value = serde_json::from_str(&text).expect("a .claude.json that parses");
        doc["projects"]["/pipe-dream"]["hasTrustDialogAccepted"] = Value::Bool(true);
        self.write(&rel, &(serde_json::to_string_pretty(&doc).unwrap() + "\n"));
        self
    }

    /// `pd-doctor.toml` with the two servers on this tree's ports plus `extra` lines.
    pub fn config(&self, extra: &str) {
        self.write(
            "pd-doctor.toml",
            &format!(
                "[[server]]\nname = \"qms\"\nport = {}\n\n[[server]]\nname = \"git\"\nport = {}\n{extra}\n",
                self.qms, self.git
            ),
        );
    }
}

/// A secret of the fake login in every test agent's `.credentials.json`: it must never
/// appear in any output.
pub const CREDENTIALS_TOKEN: &str = "sk-ant-oat01-pd-doctor-test-login";

/// The config dir `dir` as the interactive /login leaves it: a `.credentials.json`.
pub fn logged_in(dir: &Path) {
    std::fs::write(
        dir.join(".credentials.json"),
        format!("{{\"claudeAiOauth\":{{\"accessToken\":\"{CREDENTIALS_TOKEN}\",\"expiresAt\":1795610101048}}}}\n"),
    )
    .unwrap();
}

pub fn fixture_text(rel: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(rel)).expect("fixture")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Every instance id, in report order.
    pub fn ids(&self) -> Vec<String> {
        self.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// What the report says Claude Code will show for `agent` and `server`
    /// (`claude_code`).
    pub fn client(&self, agent: &str, server: &str) -> Value {
        self.json()["claude_code"]
            .as_array()
            .expect("claude_code in the report")
            .iter()
            .find(|v| v["agent"] == agent && v["server"] == server)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no claude_code entry for {agent}, {server}:\n{}",
                    self.stdout
                )
            })
    }

    /// The instance ids of the root causes, in report order.
    pub fn root_causes(&self) -> Vec<String> {
        self.json()["root_causes"]
            .as_array()
            .expect("root_causes")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// The result of one check instance.
    pub fn check(&self, id: &str) -> Value {
        let doc = self.json();
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id} in:\n{}", self.stdout))
    }

    /// Asserts one instance's status and cause, and that its message says each of `words`.
    pub fn expect_saying(&self, id: &str, status: &str, cause: &str, words: &[&str]) -> Value {
        let c = self.expect(id, status, cause);
        let message = c["message"].as_str().unwrap_or_default();
        for word in words {
            assert!(message.contains(word), "{id} does not say {word:?}: {c}");
        }
        c
    }

    /// Asserts one instance's status and cause, showing the whole result when they differ.
    pub fn expect(&self, id: &str, status: &str, cause: &str) -> Value {
        let c = self.check(id);
        assert_eq!(
            (c["status"].as_str().unwrap(), c["cause"].as_str().unwrap()),
            (status, cause),
            "{id}: {}",
            serde_json::to_string_pretty(&c).unwrap()
        );
        c
    }
}

/// Peak RSS allowed to pd-doctor against any hostile input (a run on a healthy project
/// stays near 20 MiB; every answer is capped at a few MiB).
pub const PEAK_KIB: i64 = 64 * 1024;

/// One run of the real binary with `args`, its command set up further by `setup`: its
/// output, and its peak RSS in KiB. The peak comes from GNU time (`%M`, the wait4 of the process it forks)
/// where it is installed, else from `VmHWM` in `/proc/<pid>/status`, read every 5 ms
/// while the run lasts (the two agree). Not wait4 on the child, as `benches/doctor.rs`
/// does: here it reported 628 MiB for a run both other ways put at 18 MiB.
pub fn measured(root: &Path, args: &[&str], setup: impl FnOnce(&mut Command)) -> (Run, i64) {
    let time = Path::new("/usr/bin/time");
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = if time.exists() {
        let mut cmd = Command::new(time);
        cmd.args(["-f", "%M", "-o"])
            .arg(report.path())
            .arg(env!("CARGO_BIN_EXE_pd-doctor"));
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_pd-doctor"))
    };
    let started = Instant::now();
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            from.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = format!("/proc/{}/status", child.id());
    let mut polled = 0;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if let Some(hwm) = std::fs::read_to_string(&status).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<i64>().ok()
        }) {
            polled = polled.max(hwm);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let peak = if time.exists() {
        let text = std::fs::read_to_string(report.path()).unwrap();
        text.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS from time: {text:?}"))
    } else {
        polled
    };
    let run = Run {
        code: exit.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        elapsed,
    };
    (run, peak)
}

fn finish(out: Output, elapsed: Duration) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    }
}

pub fn command(root: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pd-doctor"));
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("NO_COLOR")
        .kill_on_drop(true);
    cmd
}

/// Runs the real binary (async, so in-process servers keep serving meanwhile).
pub async fn run(root: &Path, args: &[&str]) -> Run {
    output(&mut command(root, args)).await
}

/// Runs a prepared pd-doctor command (extra environment, working directory) to its end.
pub async fn output(cmd: &mut tokio::process::Command) -> Run {
    let started = std::time::Instant::now();
    let out = cmd.output().await.expect("run pd-doctor");
    finish(out, started.elapsed())
}

/// `pd-doctor --json` plus `args`.
pub async fn run_json(root: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    run(root, &all).await
}

/// Runs pd-doctor on a pseudo-terminal (util-linux `script`) with `env` set. With an
/// `answer`, waits until the question (`[y/N]`) is on the screen, runs `meanwhile`, then
/// types the answer.
pub fn on_a_terminal(
    root: &Path,
    args: &str,
    env: &[(&str, &str)],
    answer: Option<&str>,
    meanwhile: impl FnOnce(),
) -> String {
    use std::io::{Read, Write};
    let line = format!(
        "{} --root {} {args}",
        env!("CARGO_BIN_EXE_pd-doctor"),
        root.display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("script(1) from util-linux");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let mut stdin = child.stdin.take();
    if let Some(answer) = answer {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !String::from_utf8_lossy(&screen).contains("[y/N]") {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => screen.extend(chunk),
                Err(_) => panic!(
                    "no question on the terminal:\n{}",
                    String::from_utf8_lossy(&screen)
                ),
            }
        }
        meanwhile();
        stdin
            .as_mut()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
    }
    drop(stdin);
    child.wait().unwrap();
    reader.join().unwrap();
    screen.extend(rx.try_iter().flatten());
    String::from_utf8_lossy(&screen).into_owned()
}

/// The real MCP server as a program of its own (`examples/mcp_test_server.rs`), for the
/// start scripts of `--fix` tests. `cargo test` builds examples, `cargo test --test X`
/// does not: it is built here once per test process (a no-op when it is up to date).
/// It is an example, not a binary of the package, because it needs the dev-dependency
/// rmcp and must never be installed with pd-doctor.
pub fn mcp_server_program() -> PathBuf {
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let out = std::process::Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "--example",
                    "mcp_test_server",
                    "--message-format",
                    "json",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("cargo");
            assert!(
                out.status.success(),
                "cargo build --example mcp_test_server: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find_map(|m| {
                    (m["target"]["name"] == "mcp_test_server")
                        .then(|| m["executable"].as_str().map(PathBuf::from))
                        .flatten()
                })
                .expect("the example's executable")
        })
        .clone()
}

/// Writes an executable script at `rel` in the tree.
pub fn script(t: &Tree, rel: &str, body: &str) {
    t.write(rel, &format!("#!/bin/bash\n{body}\n"));
    std::fs::set_permissions(
        t.path(rel),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// A start script as the project has one: it puts the server (the real rmcp server of
/// the tests, in a process of its own) in the background on `port`, reachable from
/// containers (loopback and the Docker bridge), and writes its PID file.
pub fn start_script(t: &Tree, rel: &str, port: u16, pid_file: &str) {
    let bridge = servers::bridge_ip().expect("a Docker bridge");
    script(
        t,
        rel,
        &format!(
            "cd \"$(dirname \"$0\")/../..\"\n\"{}\" {port} 127.0.0.1 {bridge} &\necho $! > {pid_file}\necho \"started on {port}\"",
            mcp_server_program().display()
        ),
    );
}

/// git as it is after a crash: its PID file names a process that is gone, and its
/// start script (which starts the real server) is in the tree. The guard stops what
/// the script starts.
pub fn git_died(t: &Tree) -> StopsServer {
    t.write(".git-mcp-server.pid", &format!("{}\n", dead_pid()));
    start_script(
        t,
        "docker/scripts/start-git-mcp.sh",
        t.git,
        ".git-mcp-server.pid",
    );
    StopsServer(t.path(".git-mcp-server.pid"))
}

/// Stops the server a test's start script left running, named by its PID file.
pub struct StopsServer(pub std::path::PathBuf);

impl Drop for StopsServer {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            // A PID this test's own start script wrote.
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .output();
        }
    }
}

pub fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

const SCHEMA: &str = include_str!("../../schema/pd-doctor-1.schema.json");

/// Asserts that a `--json` report follows the published schema.
pub fn validate_schema(doc: &Value) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}
