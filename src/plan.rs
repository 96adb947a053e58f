//! Repairs as data: a probe that finds something safely fixable attaches a [`FixPlan`]
//! of concrete [`Action`]s to its finding. Plain data with no I/O, so every layer may
//! speak it; `fixes` carries the actions out.

use std::path::{Path, PathBuf};

/// Where the output of started servers goes, under the project root (which no
/// container can write: it is mounted read-only).
pub const LOG_DIR: &str = ".pd-doctor/logs";

/// The command a person runs to restart container `name`: with `lock`, the QMS
/// server's identity lock, stopped for that long first.
pub fn restart_command(name: &str, lock: Option<std::time::Duration>) -> String {
    match lock {
        None => format!("docker restart {name}"),
        Some(lock) => format!(
            "docker stop {name}, then {} later docker start {name}",
            crate::printable::duration(lock)
        ),
    }
}

/// The program and arguments of a server's start command (made by
/// `Project::start_command`, which checks that pd-doctor may run it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCommand {
    /// The program, links resolved: what is run.
    pub program: PathBuf,
    pub args: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Delete one file; a symlink is removed itself, never its target.
    RemoveFile { path: PathBuf, why: String },
    /// Keep a broken `.claude.json` aside and put the newest parsable backup (or `{}`) in place.
    RestoreClaudeJson {
        path: PathBuf,
        backup: Option<PathBuf>,
    },
    /// Rewrite one server entry of a `.claude.json` from `docker/.mcp.json`.
    RewriteServerEntry { path: PathBuf, server: String },
    /// Add `names` to, or take them off, a JSON list of names (an approval list, the
    /// allowed tools) at the keys `at`, after a backup; `now` is the list when the plan
    /// was made.
    EditNameList {
        path: PathBuf,
        at: Vec<String>,
        names: Vec<String>,
        add: bool,
        now: Vec<String>,
    },
    /// Record in a `.claude.json` that the trust dialog was accepted for the folder `dir`
    /// (`projects[dir].hasTrustDialogAccepted = true`), after a backup.
    AcceptTrust { path: PathBuf, dir: String },
    /// Remove one container; a running one only with `--force`. `running` is what the
    /// plan saw; the action looks again before it acts.
    RemoveContainer {
        id: String,
        name: String,
        running: bool,
    },
    /// SIGTERM a server named by its PID file, once it is verified to be that server.
    StopServer {
        server: String,
        pid: u32,
        pid_file: PathBuf,
    },
    /// Restart an agent's running container (only with `--force`) so its entrypoint acts
    /// on a repair, and wait until it has.
    /// `lock`: how long the QMS server keeps the agent's identity after a stop, when its
    /// proxies send one: the container stays stopped that long (a restart would start it
    /// inside the lock).
    RestartContainer {
        id: String,
        name: String,
        lock: Option<std::time::Duration>,
    },
    /// Run a server's start command and wait up to `wait` for it to answer a handshake.
    StartServer {
        server: String,
        command: StartCommand,
        wait: std::time::Duration,
    },
}

// `Action::remove_container`, made from a container the engine listed, is in
// `facts::docker`.
impl Action {
    /// Fixes run in this order: containers go first (so nothing rewrites a config dir
    /// while it is repaired), then `.claude.json` is made readable, then its entries
    /// rewritten, then stale files removed (a dead PID file among them), then servers
    /// started, and last the containers restarted, whose entrypoints wait for servers.
    pub fn order(&self) -> u8 {
        match self {
            Action::StopServer { .. } => 0,
            Action::RemoveContainer { .. } => 1,
            Action::RestoreClaudeJson { .. } => 2,
            Action::RewriteServerEntry { .. }
            | Action::EditNameList { .. }
            | Action::AcceptTrust { .. } => 3,
            Action::RemoveFile { .. } => 4,
            Action::StartServer { .. } => 5,
            Action::RestartContainer { .. } => 6,
        }
    }

    /// The file the action changes, if it changes one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Action::RemoveFile { path, .. }
            | Action::RestoreClaudeJson { path, .. }
            | Action::RewriteServerEntry { path, .. }
            | Action::EditNameList { path, .. }
            | Action::AcceptTrust { path, .. } => Some(path),
            Action::RemoveContainer { .. }
            | Action::StopServer { .. }
            | Action::StartServer { .. }
            | Action::RestartContainer { .. } => None,
        }
    }

    /// One line saying what the action will do, printed before it is done; paths are
    /// shown relative to the project root when they are inside it.
    /// Whether `other` is the same repair, though made on another look at the state:
    /// a list edit is the same whatever the list held then (another repair of this
    /// round may have added to it).
    pub fn same_repair(&self, other: &Action) -> bool {
        match (self, other) {
            (
                Action::EditNameList {
                    path,
                    at,
                    names,
                    add,
                    ..
                },
                Action::EditNameList {
                    path: p,
                    at: a,
                    names: n,
                    add: d,
                    ..
                },
            ) => path == p && at == a && names == n && add == d,
            _ => self == other,
        }
    }

    pub fn describe(&self, root: &Path) -> String {
        let show = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        match self {
            Action::RemoveFile { path, why } => format!("remove {} ({why})", show(path)),
            Action::RestoreClaudeJson {
                path,
                backup: Some(b),
            } => format!("move {} aside and restore it from {}", show(path), show(b)),
            Action::RestoreClaudeJson { path, backup: None } => {
                format!("move {} aside and start it afresh as {{}}", show(path))
            }
            Action::RewriteServerEntry { path, server } => format!(
                "rewrite server {server} in {} from docker/.mcp.json (backup first)",
                show(path)
            ),
            Action::EditNameList {
                path,
                at,
                names,
                add,
                now,
            } => {
                let after: Vec<&String> = if *add {
                    now.iter().chain(names.iter().filter(|n| !now.contains(n))).collect()
                } else {
                    now.iter().filter(|n| !names.contains(n)).collect()
                };
                // A long list (the allowed tools) is counted, not shown.
                let lists = if after.len() + now.len() <= 16 {
                    format!("{now:?} -> {after:?}")
                } else {
                    format!("{} entries -> {}", now.len(), after.len())
                };
                let quoted = names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let key = at
                    .iter()
                    .map(|k| {
                        if k.contains('/') {
                            format!("[{k:?}]")
                        } else {
                            format!(".{k}")
                        }
                    })
                    .collect::<String>();
                format!(
                    "{} {quoted} {} {} in {}: {lists} (backup first)",
                    if *add { "add" } else { "remove" },
                    if *add { "to" } else { "from" },
                    key.trim_start_matches('.'),
                    show(path)
                )
            }
            Action::AcceptTrust { path, dir } => format!(
                "set projects[{dir:?}].hasTrustDialogAccepted to true in {}, as accepting the trust dialog does (backup first)",
                show(path)
            ),
            Action::RemoveContainer {
                name,
                running: false,
                ..
            } => format!("remove container {name}"),
            Action::RemoveContainer { name, .. } => format!(
                "remove running container {name} (needs --force: the Claude session in it ends)"
            ),
            Action::RestartContainer {
                name,
                lock: None,
                ..
            } => format!(
                "restart {name} so its entrypoint applies the repair ({}; needs --force: the Claude session in it ends)",
                restart_command(name, None)
            ),
            Action::RestartContainer {
                name,
                lock: Some(lock),
                ..
            } => format!(
                "stop {name}, wait {} for the QMS server's identity lock to end, then start it so its entrypoint applies the repair (needs --force: the Claude session in it ends)",
                crate::printable::duration(*lock)
            ),
            Action::StopServer {
                server,
                pid,
                pid_file,
            } => {
                format!(
                    "stop server {server} (pid {pid} from {}) with SIGTERM",
                    show(pid_file)
                )
            }
            Action::StartServer {
                server,
                command,
                wait,
            } => {
                let mut line = vec![show(&command.program)];
                line.extend(command.args.iter().cloned());
                format!(
                    "start server {server}: {} (from the project root, output in {}/), and wait up to {} for it to answer",
                    line.join(" "),
                    LOG_DIR,
                    crate::printable::duration(*wait)
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixPlan {
    pub actions: Vec<Action>,
}

impl FixPlan {
    pub fn one(action: Action) -> Self {
        FixPlan {
            actions: vec![action],
        }
    }

    pub fn describe(&self, root: &Path) -> Vec<String> {
        self.actions.iter().map(|a| a.describe(root)).collect()
    }
}
