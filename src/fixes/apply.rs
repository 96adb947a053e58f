//! Carrying out one [`Action`]: the state is checked again first, every file is backed up
//! before it changes, writes are atomic and fenced, symlinks are never followed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use serde_json::Value;

use super::{Context, Outcome};
use crate::claude_config::{self, JsonFile};
use crate::engine::Stopped;
use crate::facts::pidfile;
use crate::facts::processes::ProcessTable;
use crate::facts::Facts;
use crate::plan::Action;
use crate::safefs::{self, Dir, Kind};

/// Time an action may take beyond the run's timeout: stopping a server waits up to 5 s
/// for it to exit.
const ACTION_SLACK: Duration = Duration::from_secs(6);

/// The time `action` may take: the slack, plus what it waits for by its nature.
fn limit(action: &Action, cx: &Context) -> Duration {
    let waits = match action {
        Action::StartServer { wait, .. } => *wait + cx.timeout,
        Action::RestartContainer { lock, .. } => {
            super::restart::limit() + cx.timeout * 3 + lock.unwrap_or_default()
        }
        _ => Duration::ZERO,
    };
    cx.timeout + ACTION_SLACK + waits
}

/// Carries out `action` under the same isolation as a probe: off the async workers, a
/// panic caught, an overrun cut off; each is a failed action, never the end of the run.
pub async fn apply(action: &Action, cx: &Arc<Context>) -> Outcome {
    let limit = limit(action, cx);
    let (action, cx) = (action.clone(), cx.clone());
    match crate::engine::isolate(async move { act(&action, &cx).await }, limit).await {
        Ok(outcome) => outcome,
        Err(Stopped::Panicked(why)) => Outcome::failed(format!("pd-doctor hit a bug: {why}")),
        Err(Stopped::Overran(limit)) => Outcome::failed(format!(
            "did not finish within {}",
            crate::printable::duration(limit)
        )),
    }
}

async fn act(action: &Action, cx: &Context) -> Outcome {
    let result = match action {
        Action::RemoveFile { path, .. } => remove_file(path, cx),
        Action::RestoreClaudeJson { path, backup } => restore(path, backup.as_deref(), cx),
        Action::RewriteServerEntry { path, server } => rewrite_entry(path, server, cx),
        Action::EditNameList {
            path,
            at,
            names,
            add,
            ..
        } => edit_name_list(path, at, names, *add, cx),
        Action::AcceptTrust { path, dir } => accept_trust(path, dir, cx),
        Action::RemoveContainer { id, name, .. } => return remove_container(id, name, cx).await,
        Action::StopServer {
            server,
            pid,
            pid_file,
        } => return stop_server(server, *pid, pid_file, cx).await,
        Action::StartServer {
            server, command, ..
        } => return super::start::start(server, command, cx).await,
        Action::RestartContainer { id, name, lock } => {
            return super::restart::restart(id, name, *lock, cx).await
        }
    };
    match result {
        Ok(text) => Outcome::Done(text),
        Err(text) => Outcome::failed(text),
    }
}

fn remove_file(path: &Path, cx: &Context) -> Result<String, String> {
    let shown = cx.show(path);
    let (dir, name) = cx.fence.folder_of(path).map_err(|e| e.to_string())?;
    let Some(state) = dir.state(&name) else {
        return Ok(format!("{shown} was already gone"));
    };
    if state.kind == Kind::Link {
        let target = dir.link_target(&name);
        dir.remove(&name)
            .map_err(|e| format!("removing {shown}: {e}"))?;
        return Ok(format!(
            "removed the symlink {shown}; its target {target} is untouched"
        ));
    }
    let saved =
        safefs::backup(&dir, &name, cx.stamp).map_err(|e| format!("backing up {shown}: {e}"))?;
    dir.remove(&name)
        .map_err(|e| format!("removing {shown}: {e}"))?;
    Ok(format!("removed {shown} (backup: {})", cx.show(&saved)))
}

/// The folder of a `.claude.json` to repair, refusing a link at the file's name.
fn config_file(path: &Path, cx: &Context) -> Result<(Dir, String), String> {
    let (dir, name) = cx.fence.folder_of(path).map_err(|e| e.to_string())?;
    if dir.state(&name).is_some_and(|s| s.kind == Kind::Link) {
        return Err(format!(
            "{} is a symlink; pd-doctor does not write through links: fix it by hand",
            cx.show(path)
        ));
    }
    Ok((dir, name))
}

/// A restore source: a regular file, not a link, directly inside the config dir's own
/// `backups/` (itself not a link).
fn read_backup(backup: &Path, config_dir: &Path, cx: &Context) -> Result<Value, String> {
    let shown = cx.show(backup);
    let backups = config_dir.join("backups");
    let name = backup
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| backup.parent() == Some(backups.as_path()))
        .ok_or_else(|| format!("{shown} is not in {}", cx.show(&backups)))?;
    let dir = Dir::open(&backups).map_err(|e| e.to_string())?;
    let (bytes, _) = dir
        .read(name, safefs::JSON_CAP)
        .map_err(|e| format!("the backup {shown} {e}"))?;
    match claude_config::parse_json(&bytes) {
        JsonFile::Parsed(v @ Value::Object(_)) => Ok(v),
        _ => Err(format!("the backup {shown} no longer parses")),
    }
}

fn restore(path: &Path, backup: Option<&Path>, cx: &Context) -> Result<String, String> {
    let (dir, name) = config_file(path, cx)?;
    let shown = cx.show(path);
    let (content, source) = match backup {
        Some(b) => (read_backup(b, dir.path(), cx)?, cx.show(b)),
        None => (Value::Object(Default::default()), "{}".to_string()),
    };
    let kept = match dir.state(&name) {
        Some(s) if s.kind == Kind::File => {
            let kept =
                safefs::copy_exclusive(&dir, &name, &dir, &format!("{name}.corrupt.{}", cx.stamp))
                    .map_err(|e| format!("keeping the broken {shown}: {e}"))?;
            format!(
                "kept the broken file as {}, ",
                cx.show(&dir.path().join(kept))
            )
        }
        _ => String::new(),
    };
    let text = serde_json::to_string_pretty(&content).map_err(|e| e.to_string())? + "\n";
    safefs::write_atomic(&dir, &name, text.as_bytes())
        .map_err(|e| format!("writing {shown}: {e}"))?;
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
    Ok(format!("{kept}restored {shown} from {source}{lacks}"))
}

/// Reads the JSON object at `path` (not a link, inside the fence), lets `edit` change
/// it, and writes it back atomically after a backup, keeping unknown fields, key order
/// and the trailing newline. Returns where the backup went, or `None` when `edit` found
/// nothing to change.
fn edit_json(
    path: &Path,
    cx: &Context,
    edit: impl FnOnce(&mut Value) -> Result<bool, String>,
) -> Result<Option<std::path::PathBuf>, String> {
    let (dir, name) = config_file(path, cx)?;
    let shown = cx.show(path);
    let (original, _) = dir
        .read(&name, safefs::JSON_CAP)
        .map_err(|e| format!("{shown} {e}"))?;
    let mut doc: Value = match claude_config::parse_json(&original) {
        JsonFile::Parsed(v @ Value::Object(_)) => v,
        _ => return Err(format!("{shown} no longer parses")),
    };
    if !edit(&mut doc)? {
        return Ok(None);
    }
    let saved =
        safefs::backup(&dir, &name, cx.stamp).map_err(|e| format!("backing up {shown}: {e}"))?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    if original.ends_with(b"\n") {
        text.push('\n');
    }
    safefs::write_atomic(&dir, &name, text.as_bytes())
        .map_err(|e| format!("writing {shown}: {e}"))?;
    Ok(Some(saved))
}

fn rewrite_entry(path: &Path, server: &str, cx: &Context) -> Result<String, String> {
    let shown = cx.show(path);
    let want = cx
        .project
        .mcp_json
        .parsed()
        .and_then(|d| d.get("mcpServers")?.get(server))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| format!("{} does not define {server}", cx.project.layout.mcp_json))?;
    let saved = edit_json(path, cx, |doc| {
        let entry = doc
            .get_mut("mcpServers")
            .and_then(|s| s.get_mut(server))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{shown} no longer has an entry for {server}"))?;
        // The transport: an http entry as `claude mcp add --transport http` writes it;
        // the keys of a stdio entry mean nothing to it (they stay in the backup).
        let stdio = ["command", "args", "env"];
        if stdio.iter().any(|k| entry.contains_key(*k)) {
            entry.retain(|k, _| !stdio.contains(&k.as_str()));
        }
        let kind = want
            .get("type")
            .cloned()
            .unwrap_or_else(|| Value::from("http"));
        entry.insert("type".into(), kind);
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
        Ok(true)
    })?;
    Ok(format!(
        "rewrote {server} in {shown} from {} (backup: {})",
        cx.project.layout.mcp_json,
        saved.map(|p| cx.show(&p)).unwrap_or_default()
    ))
}

/// Sets `projects[dir].hasTrustDialogAccepted` to true, creating the project entry when
/// there is none and keeping every other key of it.
fn accept_trust(path: &Path, dir: &str, cx: &Context) -> Result<String, String> {
    let shown = cx.show(path);
    let saved = edit_json(path, cx, |doc| {
        let Value::Object(top) = doc else {
            return Err(format!("{shown} is not a JSON object"));
        };
        let projects = top
            .entry("projects")
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(projects) = projects else {
            return Err(format!("{shown}: projects is not an object"));
        };
        let entry = projects
            .entry(dir.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(entry) = entry else {
            return Err(format!("{shown}: projects[{dir:?}] is not an object"));
        };
        if entry.get("hasTrustDialogAccepted") == Some(&Value::Bool(true)) {
            return Ok(false);
        }
        entry.insert("hasTrustDialogAccepted".into(), Value::Bool(true));
        Ok(true)
    })?;
    Ok(match saved {
        Some(saved) => format!(
            "recorded trust for {dir} in {shown} (backup: {})",
            cx.show(&saved)
        ),
        None => format!("{shown} already trusted {dir}"),
    })
}

/// Adds `names` to (creating the keys on the way) or removes them from the list at `at`.
fn edit_name_list(
    path: &Path,
    at: &[String],
    names: &[String],
    add: bool,
    cx: &Context,
) -> Result<String, String> {
    let shown = cx.show(path);
    let saved = edit_json(path, cx, |doc| {
        let mut node = doc;
        for key in at {
            let Value::Object(map) = node else {
                return Err(format!("{shown} is not shaped as expected at {key}"));
            };
            let last = Some(key) == at.last();
            node = map.entry(key.clone()).or_insert_with(|| {
                if last {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Default::default())
                }
            });
        }
        let Value::Array(list) = node else {
            return Err(format!("{shown}: {} is not a list", at.join(".")));
        };
        let has = |list: &[Value], name: &str| list.iter().any(|v| v.as_str() == Some(name));
        let before = list.len();
        if add {
            for name in names {
                if !has(list, name) {
                    list.push(Value::String(name.clone()));
                }
            }
        } else {
            list.retain(|v| !v.as_str().is_some_and(|s| names.iter().any(|n| n == s)));
        }
        Ok(list.len() != before)
    })?;
    let Some(saved) = saved else {
        return Ok(format!("{shown} already had it as wanted"));
    };
    Ok(format!(
        "{} {} {} {} in {shown} (backup: {})",
        if add { "added" } else { "removed" },
        names.join(", "),
        if add { "to" } else { "from" },
        at.last().map(String::as_str).unwrap_or(""),
        cx.show(&saved)
    ))
}

async fn remove_container(id: &str, name: &str, cx: &Context) -> Outcome {
    let Some(docker) = cx.docker.as_ref() else {
        return Outcome::failed("the Docker engine does not answer");
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
        Err(e) => Outcome::failed(format!("removing {name}: {e}")),
    }
}

async fn stop_server(server: &str, pid: u32, pid_file: &Path, cx: &Context) -> Outcome {
    // Checked again now, on facts read now: between plan and signal the PID may have died
    // and been reused.
    let facts = Facts::new(cx.project.clone(), cx.timeout);
    let Some(spec) = cx.project.server(server) else {
        return Outcome::failed(format!("no server {server} in this project"));
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
        return Outcome::failed(format!("could not send SIGTERM to pid {pid}"));
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
    Outcome::failed(format!(
        "{server} (pid {pid}) is still running 5 s after SIGTERM; not killing it harder"
    ))
}
