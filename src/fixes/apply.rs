//! Carrying out one [`Action`]: the state is checked again first, every file is backed up
//! before it changes, writes are atomic and fenced, symlinks are never followed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use serde_json::Value;

use super::fsops::{self, Fence};
use super::Action;
use crate::claude_config::{self, JsonFile};
use crate::facts::pidfile;
use crate::facts::processes::ProcessTable;
use crate::facts::Facts;
use crate::project::Project;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// Not done, on purpose: the state changed, or the action needs `--force`.
    Refused(String),
    Failed(String),
}

impl Outcome {
    pub fn text(&self) -> String {
        match self {
            Outcome::Done(t) => t.clone(),
            Outcome::Refused(t) => format!("not done: {t}"),
            Outcome::Failed(t) => format!("failed: {t}"),
        }
    }

    pub fn done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

pub struct Context<'a> {
    pub project: &'a Project,
    pub docker: Option<&'a bollard::Docker>,
    pub fence: Fence,
    pub force: bool,
    pub stamp: u128,
}

impl Context<'_> {
    pub fn new<'a>(
        project: &'a Project,
        docker: Option<&'a bollard::Docker>,
        force: bool,
    ) -> Context<'a> {
        let mut allowed = vec![project.root.clone()];
        allowed.extend(project.agents.iter().map(|a| a.config_dir.clone()));
        Context {
            project,
            docker,
            fence: Fence::new(allowed),
            force,
            stamp: fsops::stamp(),
        }
    }

    fn show(&self, p: &Path) -> String {
        self.project.show(p)
    }
}

pub async fn apply(action: &Action, cx: &Context<'_>) -> Outcome {
    let result = match action {
        Action::RemoveFile { path, .. } => remove_file(path, cx),
        Action::RestoreClaudeJson { path, backup } => restore(path, backup.as_deref(), cx),
        Action::RewriteServerEntry { path, server } => rewrite_entry(path, server, cx),
        Action::RemoveContainer { id, name } => return remove_container(id, name, cx).await,
        Action::StopServer {
            server,
            pid,
            pid_file,
        } => return stop_server(server, *pid, pid_file, cx).await,
    };
    match result {
        Ok(text) => Outcome::Done(text),
        Err(text) => Outcome::Failed(text),
    }
}

fn remove_file(path: &Path, cx: &Context) -> Result<String, String> {
    cx.fence.check(path)?;
    let shown = cx.show(path);
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(format!("{shown} was already gone")),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        fsops::remove_no_follow(path).map_err(|e| format!("removing {shown}: {e}"))?;
        return Ok(format!(
            "removed the symlink {shown}; its target {target} is untouched"
        ));
    }
    let saved = fsops::backup(path, cx.stamp).map_err(|e| format!("backing up {shown}: {e}"))?;
    fsops::remove_no_follow(path).map_err(|e| format!("removing {shown}: {e}"))?;
    Ok(format!("removed {shown} (backup: {})", cx.show(&saved)))
}

fn refuse_symlink(path: &Path, cx: &Context) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "{} is a symlink; pd-doctor does not write through links: fix it by hand",
            cx.show(path)
        ));
    }
    Ok(())
}

fn restore(path: &Path, backup: Option<&Path>, cx: &Context) -> Result<String, String> {
    cx.fence.check(path)?;
    refuse_symlink(path, cx)?;
    let shown = cx.show(path);
    let (content, source) = match backup {
        Some(b) => match claude_config::read_json(b) {
            JsonFile::Parsed(v @ Value::Object(_)) => (v, cx.show(b)),
            _ => return Err(format!("the backup {} no longer parses", cx.show(b))),
        },
        None => (Value::Object(Default::default()), "{}".to_string()),
    };
    let kept = path.with_file_name(format!(".claude.json.corrupt.{}", cx.stamp));
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::copy(path, &kept).map_err(|e| format!("keeping the broken {shown}: {e}"))?;
    }
    let text = serde_json::to_string_pretty(&content).map_err(|e| e.to_string())? + "\n";
    fsops::write_atomic(path, text.as_bytes()).map_err(|e| format!("writing {shown}: {e}"))?;
    let servers = claude_config::server_entries(claude_config::user_scope(&content));
    let lacks = if servers.is_empty() {
        "; it registers no MCP server, so the entrypoint must register them again (clear the markers)".to_string()
    } else {
        format!(
            "; it registers {}",
            servers
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Ok(format!(
        "kept the broken file as {}, restored {shown} from {source}{lacks}",
        cx.show(&kept)
    ))
}

fn rewrite_entry(path: &Path, server: &str, cx: &Context) -> Result<String, String> {
    cx.fence.check(path)?;
    refuse_symlink(path, cx)?;
    let shown = cx.show(path);
    let want = cx
        .project
        .mcp_json
        .parsed()
        .and_then(|d| d.get("mcpServers")?.get(server))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| format!("{} does not define {server}", cx.project.layout.mcp_json))?;
    let original = std::fs::read(path).map_err(|e| format!("reading {shown}: {e}"))?;
    let mut doc: Value = match claude_config::parse_json(&original) {
        JsonFile::Parsed(v) => v,
        _ => return Err(format!("{shown} no longer parses")),
    };
    let entry = doc
        .get_mut("mcpServers")
        .and_then(|s| s.get_mut(server))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("{shown} no longer has an entry for {server}"))?;
    if let Some(url) = want.get("url") {
        entry.insert("url".into(), url.clone());
    }
    if let Some(Value::Object(headers)) = want.get("headers") {
        let have = entry
            .entry("headers")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(have) = have {
            for (name, value) in headers {
                // Keep the key as the file spells it, and where it stands.
                let key = have
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(name))
                    .cloned()
                    .unwrap_or_else(|| name.clone());
                have.insert(key, value.clone());
            }
        }
    }
    let saved = fsops::backup(path, cx.stamp).map_err(|e| format!("backing up {shown}: {e}"))?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    if original.ends_with(b"\n") {
        text.push('\n');
    }
    fsops::write_atomic(path, text.as_bytes()).map_err(|e| format!("writing {shown}: {e}"))?;
    Ok(format!(
        "rewrote {server} in {shown} from {} (backup: {})",
        cx.project.layout.mcp_json,
        cx.show(&saved)
    ))
}

async fn remove_container(id: &str, name: &str, cx: &Context<'_>) -> Outcome {
    let Some(docker) = cx.docker else {
        return Outcome::Failed("the Docker engine does not answer".into());
    };
    let running = match docker.inspect_container(id, None).await {
        Ok(c) => c.state.and_then(|s| s.running).unwrap_or(false),
        Err(_) => return Outcome::Done(format!("{name} was already gone")),
    };
    if running && !cx.force {
        return Outcome::Refused(format!(
            "{name} is running; pd-doctor removes a running container only with --force"
        ));
    }
    let options = RemoveContainerOptionsBuilder::new().force(running).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Outcome::Done(format!(
            "removed {}container {name}",
            if running { "running " } else { "" }
        )),
        Err(e) => Outcome::Failed(format!("removing {name}: {e}")),
    }
}

async fn stop_server(server: &str, pid: u32, pid_file: &Path, cx: &Context<'_>) -> Outcome {
    // Checked again now, on facts read now: between plan and signal the PID may have died
    // and been reused.
    let facts = Facts::new(Arc::new(cx.project.clone()), Duration::from_secs(2));
    let Some(spec) = cx.project.server(server) else {
        return Outcome::Failed(format!("no server {server} in this project"));
    };
    let command = match pidfile::verify_server(&facts, spec, pid) {
        Ok(c) => c,
        Err(why) => return Outcome::Refused(format!("{why}; not signalling it")),
    };
    let mut system = sysinfo::System::new().ok();
    let signalled = system.as_mut().and_then(|s| {
        let p = sysinfo::Pid::from_u32(pid);
        s.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[p]), true);
        s.process(p)?.kill_with(sysinfo::Signal::Term)
    });
    if signalled != Some(true) {
        return Outcome::Failed(format!("could not send SIGTERM to pid {pid}"));
    }
    for _ in 0..50 {
        if ProcessTable::snapshot().get(pid).is_none() {
            let cleared = remove_file(pid_file, cx).unwrap_or_else(|e| e);
            return Outcome::Done(format!(
                "stopped {server} (pid {pid}: {command}); {cleared}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Outcome::Failed(format!(
        "{server} (pid {pid}) is still running 5 s after SIGTERM; not killing it harder"
    ))
}
