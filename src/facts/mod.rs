//! The outside world, read once per run and shared by every probe. Each fact is computed
//! on first use and memoised, so ten probes that need the socket table read it once, and
//! `server.mcp` and `server.session` share one handshake.

pub mod api_route;
pub mod docker;
pub mod http;
pub mod inside;
pub mod mcp;
pub mod pidfile;
pub mod processes;
pub mod sockets;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::claude_config::{self, JsonFile};
use crate::expand::Env;
use crate::project::{Agent, Project, Server};
use processes::ProcessTable;
use sockets::Listener;

/// One settings file the agent's Claude Code reads, and which one it is.
pub struct Settings {
    pub role: &'static str,
    pub path: PathBuf,
    pub doc: Option<Value>,
}

pub struct Facts {
    pub project: Arc<Project>,
    /// Per-probe deadline.
    pub timeout: Duration,
    /// The user's deadline for the whole run (see [`Facts::until`]).
    user_deadline: Option<Instant>,
    /// `--compat`: also ask what older clients would get (one 406 in a strict server's
    /// log); off, every request is one a current MCP client makes.
    pub compat: bool,
    /// When this diagnosis began: the shared deadline of the container execs counts from it.
    started: Instant,
    listeners: OnceLock<Option<Vec<Listener>>>,
    processes: OnceLock<ProcessTable>,
    socket_owners: OnceLock<HashMap<u64, Vec<u32>>>,
    claude_json: HashMap<String, OnceLock<JsonFile>>,
    settings: HashMap<String, OnceCell<Vec<Settings>>>,
    handshakes: HashMap<String, OnceCell<mcp::Handshake>>,
    dockerfile_copies: OnceLock<Vec<crate::dockerfile::Copied>>,
    /// The engine and the agent containers, asked for by the first container probe, so
    /// a hung engine costs its timeout alongside the host probes, not before them.
    docker: OnceCell<Result<docker::DockerFacts, docker::EngineError>>,
}

impl Facts {
    pub fn new(project: Arc<Project>, timeout: Duration) -> Facts {
        Facts::until(project, timeout, None)
    }

    /// Facts for a run that must end by `deadline`, the user's (`--timeout`, counted from
    /// the start of pd-doctor): nothing waits past it, not even a stdio server still at
    /// work (it is ended, and said to be slow). `None`: one timeout from now, with the
    /// slow-start allowance.
    pub fn until(project: Arc<Project>, timeout: Duration, deadline: Option<Instant>) -> Facts {
        Facts {
            user_deadline: deadline,
            claude_json: project
                .agents
                .iter()
                .map(|a| (a.name.clone(), OnceLock::new()))
                .collect(),
            settings: project
                .agents
                .iter()
                .map(|a| (a.name.clone(), OnceCell::new()))
                .collect(),
            handshakes: project
                .servers
                .iter()
                .map(|s| (s.name.clone(), OnceCell::new()))
                .collect(),
            project,
            timeout,
            compat: false,
            started: Instant::now(),
            listeners: OnceLock::new(),
            processes: OnceLock::new(),
            socket_owners: OnceLock::new(),
            docker: OnceCell::new(),
            dockerfile_copies: OnceLock::new(),
        }
    }

    /// The files the layout's Dockerfile copies from its folder, read once per run (none
    /// when it cannot be read).
    pub fn dockerfile_copies(&self) -> &[crate::dockerfile::Copied] {
        self.dockerfile_copies.get_or_init(|| {
            let path = self.project.path(&self.project.layout.dockerfile);
            match crate::safefs::read(&path, crate::safefs::TEXT_CAP, crate::safefs::Links::Follow)
            {
                Ok(bytes) => crate::dockerfile::copied_files(&String::from_utf8_lossy(&bytes)),
                Err(_) => Vec::new(),
            }
        })
    }

    /// The engine's answer, gathered once per run.
    pub async fn docker(&self) -> &Result<docker::DockerFacts, docker::EngineError> {
        // Boxed: every probe that asks for the engine's facts awaits this, and an
        // unboxed gather would make each of their futures (one per blocking thread, on
        // its stack) as large as the whole discovery.
        self.docker
            .get_or_init(|| {
                Box::pin(async {
                    let gathered = docker::gather(&self.project, self.timeout).await;
                    // Tokens in container environments may surface in logs a probe quotes.
                    if let Ok(d) = &gathered {
                        for (name, value) in d.containers.iter().flat_map(|c| c.env.iter()) {
                            if crate::redact::is_secret_name(name) {
                                self.project.secrets.add(value);
                            }
                        }
                    }
                    gathered
                })
            })
            .await
    }

    /// The engine's answer if some probe already asked for it.
    pub fn docker_if_gathered(&self) -> Option<&Result<docker::DockerFacts, docker::EngineError>> {
        self.docker.get()
    }

    /// Every listening TCP socket, or `None` where the kernel's table cannot be read.
    pub fn listeners(&self) -> Option<&[Listener]> {
        self.listeners.get_or_init(sockets::listeners).as_deref()
    }

    pub fn listeners_on(&self, port: u16) -> Option<Vec<&Listener>> {
        self.listeners()
            .map(|all| all.iter().filter(|l| l.port == port).collect())
    }

    /// PIDs owning the listening sockets of `port`. The process table is walked once,
    /// for the ports of every server, the first time any of them is asked about.
    pub fn port_owners(&self, port: u16) -> Vec<u32> {
        let owners = self.socket_owners.get_or_init(|| {
            let ports: HashSet<u16> = self.project.servers.iter().map(|s| s.port).collect();
            let inodes = self
                .listeners()
                .unwrap_or_default()
                .iter()
                .filter(|l| ports.contains(&l.port))
                .map(|l| l.inode)
                .collect();
            sockets::inode_owners(&inodes)
        });
        let mut pids: Vec<u32> = self
            .listeners_on(port)
            .unwrap_or_default()
            .iter()
            .flat_map(|l| owners.get(&l.inode).cloned().unwrap_or_default())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    pub fn processes(&self) -> &ProcessTable {
        self.processes.get_or_init(ProcessTable::snapshot)
    }

    /// The agent's `.claude.json`, read once; its header values join the secrets.
    pub fn claude_json(&self, agent: &Agent) -> &JsonFile {
        let cell = self
            .claude_json
            .get(&agent.name)
            .expect("facts are built for every agent");
        cell.get_or_init(|| {
            let file = claude_config::read_json(&agent.config_dir.join(".claude.json"));
            if let JsonFile::Parsed(v) = &file {
                claude_config::collect_secrets(v, &self.project.secrets);
            }
            file
        })
    }

    /// The settings files the container sees, read once per agent: user settings in the
    /// config dir, the project's shared settings through the read-only project mount, and
    /// the local project settings: the file mounted there when a container shows one, else
    /// the project's overlay when it has one. `config.approval`, `config.permissions`,
    /// `config.server_entry` and `config.scope_conflict` all read them.
    pub async fn settings(&self, agent: &Agent) -> &[Settings] {
        let cell = self
            .settings
            .get(&agent.name)
            .expect("facts are built for every agent");
        cell.get_or_init(|| async {
            let layout = &self.project.layout;
            let overlay = self.project.path(&layout.settings_overlay);
            let local = match self.docker().await {
                Ok(d) => match d.container_of(&agent.name) {
                    Some(c) => c
                        .mount_at(&layout.settings_mount)
                        .map(|m| PathBuf::from(&m.source))
                        .unwrap_or_else(|| self.project.path(".claude/settings.local.json")),
                    None => overlay.clone(),
                },
                Err(_) => overlay.clone(),
            };
            [
                ("user settings", agent.config_dir.join("settings.json")),
                (
                    "project settings",
                    self.project.path(".claude/settings.json"),
                ),
                ("local project settings", local),
            ]
            .into_iter()
            .map(|(role, path)| Settings {
                role,
                doc: claude_config::read_json(&path).parsed().cloned(),
                path,
            })
            .collect()
        })
        .await
    }

    /// The agent's user-scope entry for `server` (what the entrypoint's `claude mcp add`
    /// writes), if its `.claude.json` parses and has one.
    pub fn user_entry(&self, agent: &Agent, server: &Server) -> Option<claude_config::ServerEntry> {
        let doc = self.claude_json(agent).parsed()?;
        claude_config::user_scope(doc)?
            .get(&server.name)
            .map(claude_config::ServerEntry::from_value)
    }

    /// The environment `agent`'s Claude Code expands `${VAR}` in: its container's
    /// (`Config.Env`, which carries `docker run -e` and compose's `environment:`), else the
    /// host's as a stand-in, marked as such.
    pub async fn env_of(&self, agent: &Agent) -> Env {
        if let Ok(d) = self.docker().await {
            if let Some(c) = d.container_of(&agent.name) {
                return Env::new(format!("container {}", c.name), c.env.clone(), true);
            }
        }
        Env::new(
            format!(
                "the host environment (agent {} has no container)",
                agent.name
            ),
            std::env::vars(),
            false,
        )
    }

    /// The environments the servers are used from: every running agent container's, or
    /// the host's when none runs.
    pub async fn running_envs(&self) -> Vec<(String, Env)> {
        let mut envs = Vec::new();
        if let Ok(d) = self.docker().await {
            for c in d.containers.iter().filter(|c| c.running) {
                if !envs.iter().any(|(a, _)| a == &c.agent) {
                    envs.push((
                        c.agent.clone(),
                        Env::new(format!("container {}", c.name), c.env.clone(), true),
                    ));
                }
            }
        }
        if envs.is_empty() {
            envs.push((String::new(), Env::host()));
        }
        envs
    }

    /// The folder `agent`'s Claude Code starts in, whose trust decides whether it uses
    /// the project's `.mcp.json`: its container's working directory (`/` when the image
    /// sets none), else the layout's project mount.
    pub async fn work_dir(&self, agent: &Agent) -> String {
        let container = match self.docker().await {
            Ok(d) => d.container_of(&agent.name),
            Err(_) => None,
        };
        match container {
            Some(c) if c.working_dir.is_empty() => "/".into(),
            Some(c) => c.working_dir.clone(),
            None => self.project.layout.project_mount.clone(),
        }
    }

    /// The folder whose accepted trust dialog covers `agent`'s working directory, if one
    /// does (`None` also when `.claude.json` cannot be read: Claude Code would ask).
    pub async fn trusted_by(&self, agent: &Agent) -> Option<String> {
        let dir = self.work_dir(agent).await;
        claude_config::trusted_by(self.claude_json(agent).parsed()?, &dir)
    }

    /// The agent's local-scope entry for `server` (`projects["/pipe-dream"].mcpServers`).
    pub fn local_entry(
        &self,
        agent: &Agent,
        server: &Server,
    ) -> Option<claude_config::ServerEntry> {
        let doc = self.claude_json(agent).parsed()?;
        claude_config::local_scope(doc, &self.project.layout.project_mount)?
            .get(&server.name)
            .map(claude_config::ServerEntry::from_value)
    }

    /// Where the host reaches the server: loopback when it listens there or everywhere,
    /// else the one address it is bound to.
    pub fn connect_addr(&self, server: &Server) -> SocketAddr {
        let bound: Vec<IpAddr> = self
            .listeners_on(server.port)
            .unwrap_or_default()
            .iter()
            .map(|l| l.addr)
            .collect();
        SocketAddr::new(dial(&bound), server.port)
    }

    /// What `server.mcp` sends: the URL and headers of `docker/.mcp.json` with `${VAR}`
    /// expanded as the agents' Claude Code expands them, in the first running agent
    /// container's environment (the host's when none runs).
    pub async fn mcp_target(&self, server: &Server) -> Option<mcp::McpTarget> {
        let entry = server.expected.clone().unwrap_or_default();
        let entry = if entry.has_references() {
            let envs = self.running_envs().await;
            entry.expanded(&envs[0].1, &self.project.secrets).0
        } else {
            entry
        };
        let url = entry
            .url
            .clone()
            .unwrap_or_else(|| server.container_url(&self.project.layout));
        Some(mcp::McpTarget {
            url: reqwest::Url::parse(&url).ok()?,
            connect: self.connect_addr(server),
            headers: entry.headers,
        })
    }

    /// When `server`'s entry expands differently in the running agents' environments, a
    /// line saying so: the handshake's verdict holds for the first of them only.
    pub async fn expansion_note(&self, server: &Server) -> Option<String> {
        let entry = server.expected.as_ref().filter(|e| e.has_references())?;
        let envs = self.running_envs().await;
        let (first_agent, first_env) = &envs[0];
        let first = entry.expanded(first_env, &self.project.secrets).0;
        let differ: Vec<&str> = envs[1..]
            .iter()
            .filter(|(_, env)| !entry.expanded(env, &self.project.secrets).0.same_as(&first))
            .map(|(a, _)| a.as_str())
            .collect();
        let probed = if first_agent.is_empty() {
            first_env.place.clone()
        } else {
            format!("agent {first_agent}'s environment ({})", first_env.place)
        };
        Some(if differ.is_empty() {
            format!("{} expanded in {probed}", self.project.layout.mcp_json)
        } else {
            format!(
                "the result depends on the agent: probed as expanded in {probed}; {} expand it differently",
                differ.join(", ")
            )
        })
    }

    /// The one handshake per server that `server.mcp` and `server.session` both read.
    pub async fn handshake(&self, server: &Server) -> Option<&mcp::Handshake> {
        let target = self.mcp_target(server).await?;
        let cell = self.handshakes.get(&server.name)?;
        Some(
            cell.get_or_init(|| async { mcp::handshake(&target, self.deadline()).await })
                .await,
        )
    }

    /// The HTTP client an image has (curl, wget, python3, node, bash), probed once: the
    /// per-client path, for images without `sh`.
    pub async fn exec_client(&self, container: &docker::Container) -> Option<&'static str> {
        let Ok(d) = self.docker().await else {
            return None;
        };
        let cell = d.clients.get(&container.id)?;
        *cell
            .get_or_init(|| docker::detect_client(&d.client, &container.id, self.exec_deadline()))
            .await
    }

    /// Everything the container checks need from inside `container`, gathered by one
    /// `docker exec` the first time any of them asks (`request` says what to ask; the
    /// first asker's counts). `None` when the engine did not answer.
    pub async fn inside<R: std::future::Future<Output = inside::Request>>(
        &self,
        container: &docker::Container,
        request: impl FnOnce() -> R,
    ) -> Option<&inside::Gathered> {
        let Ok(d) = self.docker().await else {
            return None;
        };
        let cell = d.inside.get(&container.id)?;
        Some(
            // Boxed, as the engine's facts are: the futures of every container check
            // await this.
            cell.get_or_init(|| {
                Box::pin(async {
                    let request = Box::pin(request()).await;
                    // Stdio servers end at the run's deadline too, unless still at work.
                    let grace = if request.has_stdio() {
                        self.stdio_grace(container)
                    } else {
                        inside::AtDeadline::End
                    };
                    let exec_deadline = self.exec_deadline();
                    inside::gather(
                        &d.client,
                        &container.id,
                        &request,
                        self.run_deadline(),
                        exec_deadline,
                        grace,
                    )
                    .await
                })
            })
            .await,
        )
    }

    /// The deadline for network work started now: a little inside the engine's own, so
    /// the probe can name what it was waiting for.
    pub fn deadline(&self) -> Instant {
        let own = Instant::now() + self.timeout.mul_f32(0.95);
        match self.user_deadline {
            Some(run) => own.min(run - HOST_MARGIN),
            None => own,
        }
    }

    /// One timeout after the diagnosis began: the clients inside containers give up by
    /// then, however late their exec started, so a hung server costs one timeout in all.
    pub fn run_deadline(&self) -> Instant {
        self.user_deadline.unwrap_or(self.started + self.timeout)
    }

    /// How much longer than the run's deadline a stdio server that is still at work at
    /// that deadline (using CPU or the disk) may take: slow is not hung. A Python
    /// proxy's first start in a new container compiles its modules (1.7 s here on a busy
    /// machine, against 0.5 s warm), and every agent's proxies start at once: 14 of them
    /// cold on two cores took over 12 s. The script waits while they work and ends at
    /// once a process that sleeps (see `inside.sh`): a proxy sleeping between retries of
    /// a failing upstream is ended at the deadline, as the user asked (`--timeout`). It
    /// waits up to what Claude Code itself waits in that container (`MCP_TIMEOUT`, 30 s
    /// when unset), counted from now, and at least [`STDIO_GRACE_TIMEOUTS`] timeouts.
    pub fn stdio_grace(&self, container: &docker::Container) -> inside::AtDeadline {
        if self.user_deadline.is_some() {
            return inside::AtDeadline::End;
        }
        let claude_waits = claude_waits(container).min(MAX_STDIO_WAIT);
        inside::AtDeadline::Wait(
            (Instant::now() + claude_waits)
                .saturating_duration_since(self.run_deadline())
                .max(STDIO_GRACE_TIMEOUTS * self.timeout),
        )
    }

    /// Whether this run keeps the user's deadline (`--timeout` given), slow starts and
    /// all.
    pub fn keeps_user_deadline(&self) -> bool {
        self.user_deadline.is_some()
    }

    /// When pd-doctor stops reading a container exec: the run's deadline and the moment
    /// the engine needs to hand back a client's last words.
    pub fn exec_deadline(&self) -> Instant {
        self.run_deadline() + EXEC_SLACK
    }
}

/// See [`Facts::stdio_grace`]: in timeouts.
pub const STDIO_GRACE_TIMEOUTS: u32 = 4;

/// What Claude Code waits for an MCP server to start when `MCP_TIMEOUT` is unset.
pub const CLAUDE_DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a stdio server at work is waited for, whatever `MCP_TIMEOUT` says.
pub const MAX_STDIO_WAIT: Duration = Duration::from_secs(120);

/// How long Claude Code waits for an MCP server to start in `container`: its
/// `MCP_TIMEOUT` (milliseconds), or the default.
pub fn claude_waits(container: &docker::Container) -> Duration {
    container
        .env("MCP_TIMEOUT")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(CLAUDE_DEFAULT_MCP_TIMEOUT, Duration::from_millis)
}

/// See [`Facts::exec_deadline`]. With [`inside::LAST_WORDS`] it is what a run given
/// `--timeout` may take past it (`cargo bench -- hub-failing`: 2.15 s at 2 s).
const EXEC_SLACK: Duration = Duration::from_millis(50);

/// A host probe under the user's deadline gives up this much before it, to say what it
/// was waiting for by then.
const HOST_MARGIN: Duration = Duration::from_millis(30);

/// The address to dial for a server bound to `bound`: 127.0.0.1 when it listens there or
/// on every IPv4 address, ::1 likewise for IPv6, else the first address it is bound to
/// (127.0.0.2, or the Docker bridge alone).
fn dial(bound: &[IpAddr]) -> IpAddr {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if bound.is_empty()
        || bound
            .iter()
            .any(|a| *a == v4 || *a == IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    {
        v4
    } else if bound
        .iter()
        .any(|a| *a == v6 || *a == IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    {
        v6
    } else {
        bound[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_where_the_server_really_listens() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(dial(&[]), ip("127.0.0.1"));
        assert_eq!(dial(&[ip("0.0.0.0")]), ip("127.0.0.1"));
        assert_eq!(dial(&[ip("172.17.0.1"), ip("127.0.0.1")]), ip("127.0.0.1"));
        assert_eq!(dial(&[ip("::")]), ip("::1"));
        assert_eq!(dial(&[ip("127.0.0.2")]), ip("127.0.0.2"));
        assert_eq!(dial(&[ip("172.17.0.1")]), ip("172.17.0.1"));
    }
}
