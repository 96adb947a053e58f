//! The Agent Hub layout (L2) of the Docker lab: Pipe Dream as its users run it today.
//! No `docker/` folder at the root: the image's files are in `agent-hub/docker/`, each
//! container's `.mcp.json` names a stdio proxy (`python3 /proxy/mcp_proxy.py URL ...`)
//! per server, the entrypoint clears MCP state from `.claude.json` and sleeps
//! (`SETUP_ONLY=1`), and the Hub starts Claude Code in a tmux session with `docker exec`.
//!
//! The image (docker/lab/hub) is built FROM scratch out of this host's programs, like the
//! other lab images; its Claude Code is a stand-in that sleeps.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab::{self, docker, Lab};
use super::servers::{self, Bind, McpOptions};
use super::Tree;

/// The lab hub image's files, as `agent-hub/docker/` holds them in a hub tree (and as
/// the image bakes them in).
pub const DOCKERFILE: &str = include_str!("../../docker/lab/hub/Dockerfile");
pub const ENTRYPOINT: &str = include_str!("../../docker/lab/hub/entrypoint.sh");
pub const PROXY: &str = include_str!("../../docker/lab/hub/scripts/mcp_proxy.py");
/// The Claude Code stand-in, /usr/local/bin/claude in the image (not in the tree).
pub const CLAUDE: &str = include_str!("../../docker/lab/hub/claude");

/// The keys and the shared bearer token of Pipe Dream's two servers.
pub const QMS_KEY: &str = "qms-internal";
pub const GIT_KEY: &str = "git-internal";
pub const AUTHORIZATION: &str = "Bearer internal-trusted";

/// The tools of the tests' rmcp server (servers::QmsTools), which both servers run.
pub const TOOLS: [&str; 2] = ["qms_inbox", "git_exec"];

/// What the entrypoint prints when `SETUP_ONLY=1` and it is about to sleep.
pub const SETUP_COMPLETE: &str = "Setup complete. Waiting for docker exec...";

/// The Hub's command in a ready container: Claude Code in a detached tmux session.
pub const TMUX_START: [&str; 10] = [
    "tmux",
    "new-session",
    "-d",
    "-s",
    "agent",
    "-x",
    "120",
    "-y",
    "30",
    "claude",
];

/// The hub image of this test process, built on first use from docker/lab/hub, tagged
/// and labelled as [`lab::image`]'s are (and swept the same way).
pub fn hub_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            lab::sweep_images();
            let tag = format!("pd-doctor-lab:{}-hub", std::process::id());
            build_hub_image(&tag);
            tag
        })
        .clone()
}

/// Pins the tree's container files to an old time, as a tree checked out before the
/// image was built has them.
pub fn age(t: &Tree) {
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for f in ["Dockerfile", "entrypoint.sh", "scripts/mcp_proxy.py"] {
        std::fs::File::options()
            .write(true)
            .open(t.path(&format!("agent-hub/docker/{f}")))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

/// Builds the hub image as `tag`: a context laid out as `agent-hub/docker/` (Dockerfile,
/// entrypoint.sh, scripts/mcp_proxy.py) plus the stand-in `claude` and `rootfs/` from
/// `build-rootfs.sh ROOTFS hub`.
pub fn build_hub_image(tag: &str) {
    let ctx = tempfile::tempdir().unwrap();
    write_file(&ctx.path().join("Dockerfile"), DOCKERFILE, false);
    write_file(&ctx.path().join("entrypoint.sh"), ENTRYPOINT, true);
    write_file(&ctx.path().join("scripts/mcp_proxy.py"), PROXY, true);
    write_file(&ctx.path().join("claude"), CLAUDE, true);
    lab::build_context(ctx.path(), "hub", tag);
}

fn write_file(path: &Path, text: &str, executable: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// The container `.mcp.json` of the hub layout: one stdio proxy entry per server, the
/// proxy reaching the host's server at host.docker.internal with both headers.
pub fn container_mcp_json(qms: u16, git: u16) -> String {
    let entry = |port: u16, key: &str| {
        format!(
            r#"{{
      "command": "python3",
      "args": [
        "/proxy/mcp_proxy.py",
        "http://host.docker.internal:{port}/mcp",
        "--retries", "3",
        "--timeout", "10000",
        "--header", "X-API-Key={key}",
        "--header", "Authorization={AUTHORIZATION}"
      ]
    }}"#
        )
    };
    format!(
        "{{\n  \"mcpServers\": {{\n    \"qms\": {},\n    \"git\": {}\n  }}\n}}\n",
        entry(qms, QMS_KEY),
        entry(git, GIT_KEY)
    )
}

/// `agent-hub/docker/.claude-settings.json`: the tools allowed without asking, what the
/// agents may never do, and the approval of the project's two servers.
pub fn claude_settings_json() -> String {
    let allow = [
        "Bash(ls:*)",
        "Bash(cat:*)",
        "Bash(grep:*)",
        "Bash(git status:*)",
        "Bash(git diff:*)",
        "Bash(tmux:*)",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(
        ["qms", "git"]
            .iter()
            .flat_map(|s| TOOLS.iter().map(move |t| format!("mcp__{s}__{t}"))),
    )
    .map(|s| format!("      \"{s}\""))
    .collect::<Vec<_>>()
    .join(",\n");
    format!(
        "{{\n  \"permissions\": {{\n    \"allow\": [\n{allow}\n    ],\n    \"deny\": [\n      \"Edit(QMS/**)\",\n      \"Write(QMS/**)\"\n    ]\n  }},\n  \"enabledMcpjsonServers\": [\n    \"qms\",\n    \"git\"\n  ]\n}}\n"
    )
}

/// An agent's `.claude.json` as the entrypoint leaves it (and as jq prints it): Claude
/// Code's own keys, no user-scope servers, the project entry with empty approval lists.
pub fn claude_json(agent: &str) -> String {
    let user: String = format!("{agent}-pd-doctor-lab")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .chain(std::iter::repeat("0".to_string()))
        .take(32)
        .collect();
    format!(
        r#"{{
  "firstStartTime": "2026-02-09T09:00:00.000Z",
  "firstStartVersion": "2.1.332",
  "migrationVersion": 15,
  "userID": "{user}",
  "hasCompletedOnboarding": true,
  "mcpServers": {{}},
  "projects": {{
    "/pipe-dream": {{
      "allowedTools": [],
      "mcpContextUris": [],
      "mcpServers": {{}},
      "enabledMcpjsonServers": [],
      "disabledMcpjsonServers": [],
      "hasTrustDialogAccepted": true
    }}
  }}
}}
"#
    )
}

/// A Pipe Dream tree in the hub layout, healthy, with `agents` (see [`hub_agent`]):
///
/// ```text
/// QMS/                                   (empty folder: how the Hub finds the root)
/// CLAUDE.md
/// .mcp.json                              host's: qms over HTTP at localhost:<qms>
/// .claude/sessions/
/// .claude/settings.local.json            "{}": the overlay's mount point
/// .claude/agents/<a>.md                  agents other than claude
/// .claude/users/<a>/workspace/
/// .claude/users/<a>/container/.claude.json
/// agent-hub/docker/Dockerfile            byte-identical to the image's
/// agent-hub/docker/entrypoint.sh         "
/// agent-hub/docker/scripts/mcp_proxy.py  "
/// agent-hub/docker/.mcp.json             stdio proxy entries for qms and git
/// agent-hub/docker/.claude-settings.json permissions and enabledMcpjsonServers
/// ```
pub fn hub_tree(qms: u16, git: u16, agents: &[&str]) -> Tree {
    let tree = Tree {
        dir: tempfile::tempdir().expect("temp dir"),
        qms,
        git,
    };
    std::fs::create_dir_all(tree.path("QMS")).unwrap();
    std::fs::create_dir_all(tree.path(".claude/sessions")).unwrap();
    std::fs::create_dir_all(tree.path(".claude/agents")).unwrap();
    tree.write("CLAUDE.md", "# Pipe Dream\n");
    tree.write(".claude/settings.local.json", "{}\n");
    tree.write(
        ".mcp.json",
        &format!(
            "{{\"mcpServers\":{{\"qms\":{{\"type\":\"http\",\"url\":\"http://localhost:{qms}/mcp\"}}}}}}\n"
        ),
    );
    write_file(&tree.path("agent-hub/docker/Dockerfile"), DOCKERFILE, false);
    write_file(
        &tree.path("agent-hub/docker/entrypoint.sh"),
        ENTRYPOINT,
        true,
    );
    write_file(
        &tree.path("agent-hub/docker/scripts/mcp_proxy.py"),
        PROXY,
        true,
    );
    tree.write("agent-hub/docker/.mcp.json", &container_mcp_json(qms, git));
    tree.write(
        "agent-hub/docker/.claude-settings.json",
        &claude_settings_json(),
    );
    for agent in agents {
        hub_agent(&tree, agent);
    }
    tree
}

/// Adds `agent` to a hub tree: its config dir with a clean `.claude.json`, its
/// workspace, and (but for claude) its `.claude/agents/<a>.md`.
pub fn hub_agent(tree: &Tree, agent: &str) {
    tree.write(
        &format!(".claude/users/{agent}/container/.claude.json"),
        &claude_json(agent),
    );
    super::logged_in(&tree.path(&format!(".claude/users/{agent}/container")));
    std::fs::create_dir_all(tree.path(&format!(".claude/users/{agent}/workspace"))).unwrap();
    if agent != "claude" {
        tree.write(
            &format!(".claude/agents/{agent}.md"),
            &format!("# {agent}\n\nYou are the {agent} agent of Pipe Dream.\n"),
        );
    }
}

/// The arguments of one server's entry in the tree's `agent-hub/docker/.mcp.json`.
pub fn proxy_args(tree: &Tree, server: &str) -> Vec<String> {
    let text = std::fs::read_to_string(tree.path("agent-hub/docker/.mcp.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).expect("agent-hub/docker/.mcp.json");
    doc["mcpServers"][server]["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no args for {server} in {text}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The two servers as the hub layout runs them, reachable from containers: qms and git,
/// each requiring its X-API-Key and the shared Authorization. Returns (qms, git) ports.
pub async fn hub_servers() -> (u16, u16) {
    hub_servers_logged(None).await
}

/// The same, both writing their answers to `log` when there is one.
pub async fn hub_servers_logged(log: Option<servers::AccessLog>) -> (u16, u16) {
    let server = |key: &str| McpOptions {
        key: Some(key.into()),
        authorization: Some(AUTHORIZATION.into()),
        bind: Bind::Reachable,
        ..Default::default()
    };
    let qms = servers::logged_mcp_server(server(QMS_KEY), log.clone()).await;
    let git = servers::logged_mcp_server(server(GIT_KEY), log).await;
    (qms.port, git.port)
}

/// The Hub's `docker run` arguments for `agent` in `tree`, after `--name` (see
/// agent_hub/container.py): interactive with a terminal, hostname, working directory,
/// host gateway, environment and mounts.
pub fn hub_run_args(tree: &Tree, agent: &str) -> Vec<String> {
    let root = tree.root().display().to_string();
    let mut args: Vec<String> = [
        "-i",
        "-t",
        "--hostname",
        agent,
        "-w",
        "/pipe-dream",
        "--add-host",
        "host.docker.internal:host-gateway",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for env in [
        "HOME=/".to_string(),
        "CLAUDE_CONFIG_DIR=/claude-config".into(),
        "MCP_TIMEOUT=60000".into(),
        format!("QMS_USER={agent}"),
        "SETUP_ONLY=1".into(),
    ] {
        args.extend(["-e".into(), env]);
    }
    let mut mounts = vec![
        format!("{root}:/pipe-dream:ro"),
        format!("{root}/.claude/users/{agent}/workspace:/pipe-dream/.claude/users/{agent}/workspace:rw"),
        format!("{root}/.claude/sessions:/pipe-dream/.claude/sessions:rw"),
        format!("{root}/agent-hub/docker/.mcp.json:/pipe-dream/.mcp.json:ro"),
        format!("{root}/agent-hub/docker/.claude-settings.json:/pipe-dream/.claude/settings.local.json:ro"),
        format!("{root}/.claude/users/{agent}/container:/claude-config:rw"),
    ];
    if agent != "claude" {
        mounts.push(format!(
            "{root}/.claude/agents/{agent}.md:/pipe-dream/CLAUDE.md:ro"
        ));
    }
    for mount in mounts {
        args.extend(["-v".into(), mount]);
    }
    args
}

impl Lab {
    /// Starts `agent`'s container as the Hub does: `docker run -d` with
    /// [`hub_run_args`] (then `extra`, before the image), waits for the entrypoint's
    /// "Setup complete" in the logs, runs Claude Code in the `agent` tmux session and
    /// waits until the session exists. Returns the container's id.
    pub fn start_hub_agent(&self, tree: &Tree, agent: &str, image: &str, extra: &[&str]) -> String {
        self.start_hub_agent_running(tree, agent, image, extra, "claude")
    }

    /// The same with `program` as the tmux session's command instead of `claude`: an
    /// image that carries the real Claude Code keeps an idle stand-in for the session
    /// (see `claude::STAND_IN`).
    pub fn start_hub_agent_running(
        &self,
        tree: &Tree,
        agent: &str,
        image: &str,
        extra: &[&str],
        program: &str,
    ) -> String {
        let name = self.name(agent);
        let mut args = hub_run_args(tree, agent);
        args.extend(extra.iter().map(|s| s.to_string()));
        let id = self.launch(&name, true, &args, &[image]);
        wait_for_setup(&name);
        let mut start = TMUX_START.to_vec();
        *start.last_mut().expect("the session's command") = program;
        docker(&[&["exec", name.as_str()][..], &start[..]].concat());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has_agent_session(&name) {
            assert!(
                Instant::now() < deadline,
                "{name}: no tmux session `agent` after {start:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        id
    }

    /// pd-doctor.toml for a hub `tree` pointing at this lab's names, the image's name
    /// (its tag dropped) and the Hub's address `http://127.0.0.1:<hub>`.
    pub fn configure_hub(&self, tree: &Tree, image: &str, hub: u16) {
        tree.config(&format!(
            "[layout]\ncontainer_prefix = \"{}\"\ncompose_project = \"pdt-{}\"\nimage = \"{}\"\nhub = \"http://127.0.0.1:{hub}\"",
            self.prefix,
            self.id,
            image.split(':').next().unwrap_or(image),
        ));
    }
}

/// The Agent Hub's API as far as pd-doctor reads it: `/api/health` and `/api/status`,
/// every agent running. A stand-in, since the real Hub (FastAPI) is not installed here.
pub async fn hub_api(agents: &[&str]) -> u16 {
    let running: Vec<(&str, &str)> = agents.iter().map(|a| (*a, "running")).collect();
    hub_api_saying(&running).await
}

/// The same, `/api/status` giving each agent the state it is paired with.
pub async fn hub_api_saying(agents: &[(&str, &str)]) -> u16 {
    let status = serde_json::json!({
        "agents": agents.iter().map(|(a, state)| serde_json::json!({
            "id": a, "state": state, "inbox_count": 0, "launch_policy": "manual"
        })).collect::<Vec<_>>(),
        "uptime_seconds": 1.0
    });
    let app = axum::Router::new()
        .route(
            "/api/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/api/status",
            axum::routing::get(move || {
                let status = status.clone();
                async move { axum::Json(status) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// `tmux has-session -t agent` succeeds in the container.
pub fn has_agent_session(container: &str) -> bool {
    Command::new("docker")
        .args(["exec", container, "tmux", "has-session", "-t", "agent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits (15 s at most) for the entrypoint's "Setup complete" in the container's logs.
fn wait_for_setup(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let logs = Command::new("docker")
            .args(["logs", name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default();
        if logs.contains("Setup complete") {
            return;
        }
        let running = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", name])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true");
        assert!(
            running,
            "{name} stopped before its setup was complete:\n{logs}"
        );
        assert!(
            Instant::now() < deadline,
            "{name}: no \"Setup complete\" in 15 s:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What one run of a stdio MCP command in a container said.
pub struct Exchange {
    /// Each stdout line, parsed as JSON (a line that is not JSON fails the test).
    pub answers: Vec<Value>,
    pub stderr: String,
    pub code: i32,
}

impl Exchange {
    /// The answer to the request with `id`.
    pub fn answer(&self, id: u64) -> &Value {
        self.answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer to id {id}: {:?}\n{}", self.answers, self.stderr))
    }
}

/// The probe a stdio MCP client starts with: `initialize` (id 1), then
/// `notifications/initialized` and `tools/list` (id 2), one JSON-RPC message a line.
pub fn handshake_lines() -> String {
    [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"pd-doctor-lab","version":"0"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
    ]
    .join("\n")
        + "\n"
}

/// Runs `command` in `container` (`docker exec -i`) with `stdin` as its input, to its end
/// (60 s at most), as Claude Code runs a stdio entry.
pub async fn exec_stdio(container: &str, command: &[String], stdin: &str) -> Exchange {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("docker")
        .args(["exec", "-i", container])
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("docker CLI");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} in {container} did not end in 60 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let answers = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON-RPC line ({e}): {l}\n{stderr}"))
        })
        .collect();
    Exchange {
        answers,
        stderr,
        code: out.status.code().unwrap_or(-1),
    }
}

/// The `initialize` request alone (id 1): one message, so one round of retries when the
/// upstream fails (the proxy answers even a failed notification with an error).
pub fn initialize_line() -> String {
    handshake_lines().lines().next().unwrap().to_string() + "\n"
}

/// Runs the tree's proxy entry for `server` (`python3` + its args, with `args` changed
/// by `edit`) in `container` with the handshake as input.
pub async fn proxy_handshake(
    tree: &Tree,
    container: &str,
    server: &str,
    edit: impl FnOnce(&mut Vec<String>),
) -> Exchange {
    proxy_run(tree, container, server, edit, &handshake_lines()).await
}

/// The same with `stdin` as the input.
pub async fn proxy_run(
    tree: &Tree,
    container: &str,
    server: &str,
    edit: impl FnOnce(&mut Vec<String>),
    stdin: &str,
) -> Exchange {
    let mut args = proxy_args(tree, server);
    edit(&mut args);
    let mut command = vec!["python3".to_string()];
    command.extend(args);
    exec_stdio(container, &command, stdin).await
}
