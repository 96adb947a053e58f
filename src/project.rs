//! Where the Pipe Dream tree is and what it holds: servers, agents and the layout
//! conventions, from the defaults of the layout document, `pd-doctor.toml`, and
//! `docker/.mcp.json`. Reading a broken `.mcp.json` is not an error here: the
//! `config.mcp_json` check reports it, and the defaults stand in.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::claude_config::{self, JsonFile, ServerEntry};
use crate::model::Finding;
use crate::plan::{Action, FixPlan, StartCommand};
use crate::redact::SecretSet;
use crate::safefs::{self, Fence, Links, ReadError};

pub const CONFIG_FILE: &str = "pd-doctor.toml";

/// Why the project cannot be loaded: a run cannot start (exit code 2). Each message
/// already says why, so the reason is not also a `source`: the chain prints it once.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("project root {}: {error}", path.display())]
    Root {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} {error}", path.display())]
    ConfigUnreadable { path: PathBuf, error: ReadError },
    #[error("{}: {error}", path.display())]
    ConfigSyntax {
        path: PathBuf,
        error: toml::de::Error,
    },
    #[error("{CONFIG_FILE}: [layout]: {error}")]
    Layout { error: String },
    #[error("{CONFIG_FILE}: server {server}: start_timeout {value:?}: {error}")]
    StartTimeout {
        server: String,
        value: String,
        error: humantime::DurationError,
    },
    #[error("{CONFIG_FILE}: [hub]: identity_lock = {0}: at most {MAX_IDENTITY_LOCK} seconds")]
    IdentityLock(u64),
}

/// The longest `[hub] identity_lock` taken: a restart waits it out.
const MAX_IDENTITY_LOCK: u64 = 600;

/// The two trees Pipe Dream has had: the primer's (`docker/`, markers, PID files) and
/// the Agent Hub's of today (`agent-hub/docker/`, stdio proxy entries, no markers, no PID
/// files, Claude Code in a tmux session, the Hub on 127.0.0.1:9000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutName {
    #[default]
    Primer,
    Hub,
}

impl LayoutName {
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutName::Primer => "primer",
            LayoutName::Hub => "hub",
        }
    }
}

/// Conventions of the tree and its containers; every one overridable in `[layout]`.
/// Where the primer and hub layouts differ, the difference is here: the defaults of
/// [`Layout::of`], the one place that knows both.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: LayoutName,
    /// Why this layout was chosen, as the report says it.
    #[serde(skip)]
    pub how: String,
    /// Host side, relative to the root: the folder of the container files.
    pub docker_dir: String,
    pub users_dir: String,
    pub agents_dir: String,
    pub mcp_json: String,
    pub dockerfile: String,
    pub entrypoint: String,
    /// Server PID files in the root, and the entrypoint's "configured" markers.
    pub pid_files: bool,
    pub markers: bool,
    /// Container side.
    pub config_mount: String,
    pub project_mount: String,
    pub host_name: String,
    /// Docker naming.
    pub image: String,
    pub container_prefix: String,
    pub compose_project: String,
    pub compose_service: String,
    pub compose_agent: String,
    /// The agent that needs no identity file.
    pub default_agent: String,
    /// The project's own settings file, mounted over the container's local project
    /// settings (it approves the project-scope servers), and where it is mounted.
    pub settings_overlay: String,
    pub settings_mount: String,
    /// The tmux session Claude Code runs in ("" where it is the container's own program).
    pub session: String,
    /// The Agent Hub's address ("" where there is no Hub).
    pub hub: String,
    /// Whether user-scope entries in `.claude.json` last from one start to the next. The
    /// hub's entrypoint wipes them at every start: there `--fix` never writes one.
    pub user_scope_kept: bool,
}

impl Layout {
    /// The defaults of one layout.
    pub fn of(name: LayoutName) -> Layout {
        let docker_dir = match name {
            LayoutName::Primer => "docker",
            LayoutName::Hub => "agent-hub/docker",
        };
        let hub = name == LayoutName::Hub;
        Layout {
            name,
            how: String::new(),
            docker_dir: docker_dir.into(),
            users_dir: ".claude/users".into(),
            agents_dir: ".claude/agents".into(),
            mcp_json: format!("{docker_dir}/.mcp.json"),
            dockerfile: format!("{docker_dir}/Dockerfile"),
            entrypoint: format!("{docker_dir}/entrypoint.sh"),
            pid_files: !hub,
            markers: !hub,
            config_mount: "/claude-config".into(),
            project_mount: "/pipe-dream".into(),
            host_name: "host.docker.internal".into(),
            image: "docker-claude-agent".into(),
            container_prefix: "agent-".into(),
            compose_project: "docker".into(),
            compose_service: "claude-agent".into(),
            compose_agent: "claude".into(),
            default_agent: "claude".into(),
            settings_overlay: format!("{docker_dir}/.claude-settings.json"),
            settings_mount: "/pipe-dream/.claude/settings.local.json".into(),
            session: if hub { "agent" } else { "" }.into(),
            hub: if hub { "http://127.0.0.1:9000" } else { "" }.into(),
            user_scope_kept: !hub,
        }
    }

    /// `name`'s defaults with the `[layout]` table of pd-doctor.toml laid over them.
    fn with_overrides(name: LayoutName, table: &toml::Table) -> Result<Layout, String> {
        let mut merged = serde_json::to_value(Layout::of(name)).map_err(|e| e.to_string())?;
        let overrides = serde_json::to_value(table).map_err(|e| e.to_string())?;
        if let (Some(m), Some(o)) = (merged.as_object_mut(), overrides.as_object()) {
            for (k, v) in o {
                if k != "name" {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(merged).map_err(|e| e.to_string())
    }

    /// The command that rebuilds the agent image.
    pub fn rebuild(&self) -> String {
        format!(
            "docker compose -f {}/docker-compose.yml build",
            self.docker_dir
        )
    }

    /// Where the start scripts live.
    pub fn scripts(&self) -> String {
        format!("{}/scripts", self.docker_dir)
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::of(LayoutName::Primer)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerConfig {
    name: String,
    port: Option<u16>,
    path: Option<String>,
    pid_file: Option<String>,
    marker: Option<String>,
    start: Option<String>,
    /// How long `--fix` waits for the server it started to answer a handshake ("20s").
    start_timeout: Option<String>,
    #[serde(default)]
    tools: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentConfig {
    name: String,
    config_dir: Option<String>,
    workspace: Option<String>,
    identity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Laid over the chosen layout's defaults; `name` chooses the layout.
    #[serde(default)]
    layout: toml::Table,
    #[serde(default)]
    server: Vec<ServerConfig>,
    #[serde(default)]
    agent: Vec<AgentConfig>,
    #[serde(default)]
    hub: HubConfig,
}

/// `[hub]`: what the QMS server behind the Agent Hub does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HubConfig {
    /// Seconds the QMS server keeps an agent's identity locked after its container stops.
    identity_lock: Option<u64>,
}

/// How long the QMS server keeps an agent's identity locked to the instance that held
/// it, after its container stops ("IDENTITY LOCKED"), unless `[hub] identity_lock` says.
pub const IDENTITY_LOCK: std::time::Duration = std::time::Duration::from_secs(90);

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub port: u16,
    pub path: String,
    /// `None` in a layout that keeps no PID files (the hub's).
    pub pid_file: Option<PathBuf>,
    /// `None` in a layout whose entrypoint writes no markers (the hub's).
    pub marker: Option<String>,
    /// The command that starts it, run from the root (`--fix`, when its program is in
    /// the project), and the time it gets to answer a handshake.
    pub start: String,
    pub start_timeout: std::time::Duration,
    pub tools: Vec<String>,
    /// What `docker/.mcp.json` says the agents should use for this server, when it names it.
    pub expected: Option<ServerEntry>,
}

impl Server {
    /// The URL agents use inside containers: `http://host.docker.internal:8000/mcp`.
    pub fn container_url(&self, layout: &Layout) -> String {
        match self.expected.as_ref().and_then(|e| e.url.clone()) {
            Some(url) => url,
            None => format!("http://{}:{}{}", layout.host_name, self.port, self.path),
        }
    }

    /// The containers reach it over HTTP straight from Claude Code: its entry in
    /// `docker/.mcp.json` has a URL and is no stdio program (no proxy).
    pub fn is_direct_http(&self) -> bool {
        self.expected
            .as_ref()
            .is_some_and(|e| !e.is_stdio() && e.url.is_some())
    }
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub name: String,
    pub config_dir: PathBuf,
    pub workspace: PathBuf,
    pub identity: Option<PathBuf>,
}

impl Agent {
    /// Where the entrypoint puts `server`'s "already configured" marker for this agent,
    /// in a layout with markers.
    pub fn marker(&self, server: &Server) -> Option<PathBuf> {
        server.marker.as_ref().map(|m| self.config_dir.join(m))
    }

    /// The marker exists, as anything: a dangling symlink counts, as it does for `rm`.
    pub fn has_marker(&self, server: &Server) -> bool {
        self.marker(server).is_some_and(|m| safefs::exists(&m))
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub layout: Layout,
    pub servers: Vec<Server>,
    pub agents: Vec<Agent>,
    /// `docker/.mcp.json` as read once for the whole run.
    pub mcp_json: JsonFile,
    pub secrets: SecretSet,
    /// Folders outside the root that `pd-doctor.toml` names (its users dir, agents'
    /// config dirs and workspaces): with the root, the fence repairs stay inside.
    pub named_folders: Vec<PathBuf>,
    /// See [`IDENTITY_LOCK`].
    pub identity_lock: std::time::Duration,
}

/// Walks up from `start` to the nearest folder with `.claude/` and one of `docker/`,
/// `agent-hub/docker/` or `QMS/` (the Agent Hub's own rule).
pub fn discover_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            dir.join(".claude").is_dir()
                && ["docker", "agent-hub/docker", "QMS"]
                    .iter()
                    .any(|d| dir.join(d).is_dir())
        })
        .map(Path::to_path_buf)
}

/// Which layout the tree at `root` is, and why. `mounted` is asked only when the tree
/// could be either: the host files the running containers mount over
/// `/pipe-dream/.mcp.json`.
pub fn detect_layout(
    root: &Path,
    set: Option<LayoutName>,
    mounted: &dyn Fn() -> Vec<PathBuf>,
) -> (LayoutName, String) {
    if let Some(name) = set {
        return (name, format!("set in {CONFIG_FILE}"));
    }
    let primer = root.join("docker").is_dir();
    let hub = root.join("agent-hub/docker").is_dir();
    match (primer, hub) {
        (true, false) => (
            LayoutName::Primer,
            "docker/ is there, agent-hub/docker/ is not".into(),
        ),
        (false, true) => (
            LayoutName::Hub,
            "agent-hub/docker/ is there, docker/ is not".into(),
        ),
        (false, false) => (
            LayoutName::Primer,
            "neither docker/ nor agent-hub/docker/ is there: the primer's defaults".into(),
        ),
        (true, true) => {
            let under = |dir: &str| {
                let dir = root.join(dir);
                mounted().iter().filter(|m| m.starts_with(&dir)).count()
            };
            let (h, p) = (under("agent-hub/docker"), under("docker"));
            if h > p {
                (
                    LayoutName::Hub,
                    format!("both docker/ and agent-hub/docker/ are there; {h} running container(s) mount agent-hub/docker/.mcp.json"),
                )
            } else if p > 0 {
                (
                    LayoutName::Primer,
                    format!("both docker/ and agent-hub/docker/ are there; {p} running container(s) mount docker/.mcp.json"),
                )
            } else {
                (
                    LayoutName::Hub,
                    "both docker/ and agent-hub/docker/ are there and no running container tells: the newer, hub".into(),
                )
            }
        }
    }
}

/// How long `--fix` waits for a server it started, unless `start_timeout` says otherwise.
pub const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

struct Defaults {
    name: &'static str,
    port: u16,
    marker: &'static str,
    /// In the layout's scripts folder.
    start: &'static str,
}

const DEFAULT_SERVERS: &[Defaults] = &[
    Defaults {
        name: "qms",
        port: 8000,
        marker: ".mcp-configured",
        start: "start-mcp-server.sh --background",
    },
    Defaults {
        name: "git",
        port: 8001,
        marker: ".git-mcp-configured",
        start: "start-git-mcp.sh --background",
    },
];

impl Project {
    /// Loads the project at `root`; `only_agents` narrows the agents (`--agent`).
    pub fn load(root: &Path, only_agents: &[String]) -> Result<Project, ProjectError> {
        Project::load_with(root, only_agents, &Vec::new)
    }

    /// [`Project::load`], asking `mounted` what the running containers mount over
    /// `/pipe-dream/.mcp.json` when the tree could be either layout.
    pub fn load_with(
        root: &Path,
        only_agents: &[String],
        mounted: &dyn Fn() -> Vec<PathBuf>,
    ) -> Result<Project, ProjectError> {
        let root = std::fs::canonicalize(root).map_err(|error| ProjectError::Root {
            path: root.to_path_buf(),
            error,
        })?;
        let config = read_config(&root)?;
        let set = match config.layout.get("name") {
            None => None,
            Some(v) => {
                Some(
                    LayoutName::deserialize(v.clone()).map_err(|e| ProjectError::Layout {
                        error: format!("name: {e}"),
                    })?,
                )
            }
        };
        let (name, how) = detect_layout(&root, set, mounted);
        let mut layout = Layout::with_overrides(name, &config.layout)
            .map_err(|error| ProjectError::Layout { error })?;
        layout.how = how;
        let secrets = SecretSet::default();
        let mcp_json = claude_config::read_json(&root.join(&layout.mcp_json));
        if let JsonFile::Parsed(value) = &mcp_json {
            claude_config::collect_secrets(value, &secrets);
        }
        let servers = servers(&config, &mcp_json, &root, &layout)?;
        let mut named_folders = vec![root.join(&layout.users_dir)];
        for a in &config.agent {
            named_folders.extend(
                [&a.config_dir, &a.workspace]
                    .into_iter()
                    .flatten()
                    .map(|p| root.join(p)),
            );
        }
        let mut agents = agents(&config, &root, &layout);
        if !only_agents.is_empty() {
            agents.retain(|a| only_agents.contains(&a.name));
            for name in only_agents {
                if !agents.iter().any(|a| &a.name == name) {
                    agents.push(agent_at(&root, &layout, name, &AgentConfig::default()));
                }
            }
        }
        Ok(Project {
            root,
            layout,
            servers,
            agents,
            mcp_json,
            secrets,
            named_folders,
            identity_lock: match config.hub.identity_lock {
                None => IDENTITY_LOCK,
                Some(s) if s <= MAX_IDENTITY_LOCK => std::time::Duration::from_secs(s),
                Some(s) => return Err(ProjectError::IdentityLock(s)),
            },
        })
    }

    /// An agent seen only in a container; its config dir is the one mounted, if known.
    pub fn add_agent(&mut self, name: &str, config_dir: Option<PathBuf>) {
        if self.agent(name).is_some() {
            return;
        }
        let mut agent = agent_at(&self.root, &self.layout, name, &AgentConfig::default());
        if let Some(dir) = config_dir {
            agent.config_dir = dir;
        }
        self.agents.push(agent);
    }

    /// Where repairs may write: the root and the folders `pd-doctor.toml` names; never a
    /// config dir learned only from a container's mounts.
    pub fn fence_roots(&self) -> Vec<PathBuf> {
        std::iter::once(self.root.clone())
            .chain(self.named_folders.iter().cloned())
            .collect()
    }

    /// The start command of `server` if pd-doctor may run it, or why not.
    pub fn start_command(&self, server: &Server) -> Result<StartCommand, String> {
        let argv = shlex::split(&server.start)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("its start command {:?} does not parse", server.start))?;
        let named = Path::new(&argv[0]);
        let Ok(real) = std::fs::canonicalize(self.root.join(named)) else {
            return Err(format!("{} is not in the project", argv[0]));
        };
        if !real.starts_with(&self.root) {
            return Err(format!("{} leads outside the project root", argv[0]));
        }
        if !std::fs::metadata(&real).is_ok_and(|m| m.is_file()) {
            return Err(format!("{} is not a regular file", argv[0]));
        }
        Ok(StartCommand {
            program: real,
            args: argv[1..].to_vec(),
        })
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// Shows a path relative to the root when it is inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn read_config(root: &Path) -> Result<ConfigFile, ProjectError> {
    let path = root.join(CONFIG_FILE);
    match safefs::read_text(&path, safefs::TEXT_CAP, Links::Follow) {
        Ok(text) => {
            toml::from_str(&text).map_err(|error| ProjectError::ConfigSyntax { path, error })
        }
        Err(ReadError::Missing) => Ok(ConfigFile::default()),
        Err(error) => Err(ProjectError::ConfigUnreadable { path, error }),
    }
}

/// `pd-doctor.toml` servers if it names any, else qms and git; then every server that
/// `docker/.mcp.json` names. The port and path come from the toml, else from the URL in
/// `.mcp.json`, else from the defaults.
fn servers(
    config: &ConfigFile,
    mcp_json: &JsonFile,
    root: &Path,
    layout: &Layout,
) -> Result<Vec<Server>, ProjectError> {
    let mut wanted: Vec<ServerConfig> = if config.server.is_empty() {
        DEFAULT_SERVERS
            .iter()
            .map(|d| ServerConfig {
                name: d.name.into(),
                ..Default::default()
            })
            .collect()
    } else {
        config.server.clone()
    };
    let entries = match mcp_json {
        JsonFile::Parsed(v) => claude_config::server_entries(v.get("mcpServers")),
        _ => Vec::new(),
    };
    for (name, _) in &entries {
        if !wanted.iter().any(|s| &s.name == name) {
            wanted.push(ServerConfig {
                name: name.clone(),
                ..Default::default()
            });
        }
    }
    wanted
        .into_iter()
        .map(|cfg| {
            let defaults = DEFAULT_SERVERS.iter().find(|d| d.name == cfg.name);
            let expected = entries
                .iter()
                .find(|(n, _)| *n == cfg.name)
                .map(|(_, e)| e.clone());
            let parsed = expected.as_ref().and_then(|e| e.parsed_url());
            let port = cfg
                .port
                .or_else(|| parsed.as_ref().and_then(|u| u.port_or_known_default()))
                .or(defaults.map(|d| d.port))
                .unwrap_or(8000);
            let path = cfg
                .path
                .or_else(|| parsed.as_ref().map(|u| u.path().to_string()))
                .unwrap_or_else(|| "/mcp".into());
            let name = cfg.name;
            let start_timeout = match &cfg.start_timeout {
                None => START_TIMEOUT,
                Some(t) => {
                    humantime::parse_duration(t).map_err(|error| ProjectError::StartTimeout {
                        server: name.clone(),
                        value: t.clone(),
                        error,
                    })?
                }
            };
            Ok(Server {
                pid_file: match cfg.pid_file {
                    Some(file) => Some(root.join(file)),
                    None if layout.pid_files => Some(root.join(format!(".{name}-mcp-server.pid"))),
                    None => None,
                },
                marker: match cfg.marker {
                    Some(marker) => Some(marker),
                    None if layout.markers => Some(defaults.map_or_else(
                        || format!(".{name}-mcp-configured"),
                        |d| d.marker.to_string(),
                    )),
                    None => None,
                },
                start: cfg
                    .start
                    .or(defaults.map(|d| format!("{}/{}", layout.scripts(), d.start)))
                    .unwrap_or_else(|| format!("start the {name} MCP server")),
                start_timeout,
                tools: cfg.tools,
                port,
                path,
                expected,
                name,
            })
        })
        .collect()
}

/// Agents named in `pd-doctor.toml`, then every `<users_dir>/<agent>/container/` folder.
fn agents(config: &ConfigFile, root: &Path, layout: &Layout) -> Vec<Agent> {
    let mut agents: Vec<Agent> = config
        .agent
        .iter()
        .map(|a| agent_at(root, layout, &a.name, a))
        .collect();
    let mut found: Vec<String> = std::fs::read_dir(root.join(&layout.users_dir))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("container").is_dir())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    for name in found {
        if !agents.iter().any(|a| a.name == name) {
            agents.push(agent_at(root, layout, &name, &AgentConfig::default()));
        }
    }
    agents
}

fn agent_at(root: &Path, layout: &Layout, name: &str, cfg: &AgentConfig) -> Agent {
    let user = root.join(&layout.users_dir).join(name);
    let identity = match &cfg.identity {
        Some(p) => Some(root.join(p)),
        None if name == layout.default_agent => None,
        None => Some(root.join(&layout.agents_dir).join(format!("{name}.md"))),
    };
    Agent {
        name: name.to_string(),
        config_dir: cfg
            .config_dir
            .as_ref()
            .map_or_else(|| user.join("container"), |p| root.join(p)),
        workspace: cfg
            .workspace
            .as_ref()
            .map_or_else(|| user.join("workspace"), |p| root.join(p)),
        identity,
    }
}

/// Takes out of `finding`'s plan every action on a file outside the fence (a config dir
/// known only from a container's mounts): such a finding is diagnosed as usual, and its
/// hint says what to do by hand instead.
pub fn inside_the_fence(mut finding: Finding, project: &Project) -> Finding {
    let Some(plan) = finding.fix.take() else {
        return finding;
    };
    let fence = Fence::new(project.fence_roots());
    let (inside, outside): (Vec<Action>, Vec<Action>) = plan
        .actions
        .into_iter()
        .partition(|a| a.file().is_none_or(|p| fence.check(p).is_ok()));
    if !outside.is_empty() {
        let by_hand: Vec<String> = outside.iter().map(|a| a.describe(&project.root)).collect();
        let note = format!(
            "not repaired automatically: it lies outside the project root and the folders pd-doctor.toml names (a folder known only from a container's mounts); by hand: {}",
            by_hand.join("; ")
        );
        finding.hint = Some(match finding.hint.take() {
            Some(h) => format!("{h}; {note}"),
            None => note,
        });
    }
    if !inside.is_empty() {
        finding.fix = Some(FixPlan { actions: inside });
    }
    finding
}
