//! `config.approval`: Claude Code uses a project-scope server (the project's `.mcp.json`,
//! in the containers `docker/.mcp.json`) only once it is approved: named in
//! `enabledMcpjsonServers` or covered by `enableAllProjectMcpServers` in a settings file
//! the container sees (Pipe Dream overlays `docker/.claude-settings.json` as
//! `/pipe-dream/.claude/settings.local.json`), and not declined there
//! (`disabledMcpjsonServers`). Settings may also deny a server outright
//! (`deniedMcpServers`, or an `allowedMcpServers` list without it). The answers an agent
//! gave at the prompt, kept in its `.claude.json` project entry, count only where Claude
//! Code can move them into the local settings (see `answers_apply`). Until approved,
//! `claude mcp list` says the server is pending approval and the agent has none of its
//! tools, while every file looks right.

use serde_json::Value;

use crate::causes::{ApprovalCause, CommonCause};
use crate::claude_config::{self, names, JsonFile};
use crate::facts::{Facts, Settings};
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};

/// A `deniedMcpServers` / `allowedMcpServers` list names the server: entries are
/// `{"serverName": "..."}` objects (plain strings are taken too).
fn lists(doc: &Value, key: &str, server: &str) -> Option<bool> {
    let list = doc.get(key)?.as_array()?;
    Some(list.iter().any(|e| {
        e.get("serverName").and_then(Value::as_str) == Some(server) || e.as_str() == Some(server)
    }))
}

pub enum Approval {
    /// `docker/.mcp.json` does not name the server: nothing to approve.
    NotProject,
    Approved(String),
    /// Declined in the agent's `.claude.json` (fixable) or in a settings file.
    Declined {
        in_claude_json: bool,
        source: String,
    },
    Denied(String),
    /// `ignored`: the answer the agent's `.claude.json` keeps for it, which Claude Code
    /// does not use here (see [`answers_apply`]).
    Pending {
        ignored: Option<String>,
    },
}

/// Whether the approvals kept in `.claude.json` (`projects[dir].enabledMcpjsonServers`,
/// `disabledMcpjsonServers`) count. Claude Code 2.1.327 moves them into the project's
/// local settings (`<project>/.claude/settings.local.json`) at start and reads them
/// there; where that file cannot be written (Pipe Dream mounts the overlay there, in a
/// project mounted read-only) they stay where they are, unused (measured in the lab: both
/// servers "⏸ Pending approval", the lists untouched). So they count only where the
/// agent's container mounts that file, or the project, read-write.
async fn answers_apply(f: &Facts, agent: &Agent) -> Writable {
    let layout = &f.project.layout;
    let container = match f.docker().await {
        Ok(d) => d.container_of(&agent.name),
        Err(_) => None,
    };
    let Some(c) = container else {
        return Writable::NoContainer;
    };
    match c
        .mount_at(&layout.settings_mount)
        .or_else(|| c.mount_at(&layout.project_mount))
    {
        Some(m) if m.rw => Writable::Yes,
        _ => Writable::No(c.name.clone()),
    }
}

/// Whether an agent's container can write its local project settings.
enum Writable {
    Yes,
    /// This container cannot.
    No(String),
    /// No container to tell: Pipe Dream's mounts (a read-only project, the overlay) are
    /// assumed.
    NoContainer,
}

pub async fn approval(f: &Facts, agent: &Agent, server: &Server) -> Approval {
    if server.expected.is_none() {
        return Approval::NotProject;
    }
    let name = server.name.as_str();
    let settings = f.settings(agent).await;
    let shown = |s: &Settings| format!("{} ({})", s.role, f.project.show(&s.path));
    for s in settings {
        let Some(doc) = &s.doc else { continue };
        if lists(doc, "deniedMcpServers", name) == Some(true) {
            return Approval::Denied(format!("deniedMcpServers in {}", shown(s)));
        }
        if lists(doc, "allowedMcpServers", name) == Some(false)
            && doc["allowedMcpServers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            return Approval::Denied(format!("allowedMcpServers in {} leaves it out", shown(s)));
        }
    }
    let kept = match f.claude_json(agent) {
        JsonFile::Parsed(doc) => claude_config::project_entry(doc, &f.project.layout.project_mount),
        _ => None,
    };
    let writable = answers_apply(f, agent).await;
    let applies = matches!(writable, Writable::Yes);
    let claude_json = kept.filter(|_| applies);
    let disables = |doc: Option<&Value>| {
        names(doc, "disabledMcpjsonServers")
            .iter()
            .any(|n| n == name)
    };
    let approves = |doc: Option<&Value>| {
        doc.and_then(|d| d.get("enableAllProjectMcpServers"))
            .and_then(Value::as_bool)
            == Some(true)
            || names(doc, "enabledMcpjsonServers")
                .iter()
                .any(|n| n == name)
    };
    // The order Claude Code 2.1.327 showed: a settings file's "no" beats any "yes"; a
    // settings file's "yes" beats the answer kept in .claude.json; there, "no" beats "yes".
    if let Some(s) = settings.iter().find(|s| disables(s.doc.as_ref())) {
        return Approval::Declined {
            in_claude_json: false,
            source: format!("disabledMcpjsonServers in {}", shown(s)),
        };
    }
    if let Some(s) = settings.iter().find(|s| approves(s.doc.as_ref())) {
        return Approval::Approved(shown(s));
    }
    if disables(claude_json) {
        return Approval::Declined {
            in_claude_json: true,
            source: format!(
                "projects[\"{}\"].disabledMcpjsonServers in {}",
                f.project.layout.project_mount,
                f.project.show(&agent.config_dir.join(".claude.json"))
            ),
        };
    }
    if approves(claude_json) {
        return Approval::Approved(format!(
            "the approval kept in {}",
            f.project.show(&agent.config_dir.join(".claude.json"))
        ));
    }
    let ignored = match (disables(kept), approves(kept)) {
        (true, _) => Some("a \"no\""),
        (false, true) => Some("a \"yes\""),
        _ => None,
    };
    let cannot = match &writable {
        Writable::No(container) => format!("which {container} cannot write"),
        _ => "which the containers Pipe Dream starts cannot write (no running container to tell)"
            .into(),
    };
    Approval::Pending {
        ignored: ignored.filter(|_| !applies).map(|answer| {
            format!(
                "{answer} for {name} is kept in {}, but Claude Code does not use it here: it moves such answers into {}, {cannot}",
                f.project.show(&agent.config_dir.join(".claude.json")),
                f.project.layout.settings_mount
            )
        }),
    }
}

pub async fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    let layout = &f.project.layout;
    let name = &server.name;
    match approval(f, agent, server).await {
        Approval::NotProject => Finding::ok(
            CommonCause::Ok,
            format!("{name} is not a project-scope server ({} does not name it)", layout.mcp_json),
        ),
        Approval::Approved(by) => Finding::ok(CommonCause::Ok, format!("{name} from {} is approved by {by}", layout.mcp_json)),
        Approval::Denied(by) => Finding::fail(ApprovalCause::Denied, format!("{name} is denied to {}: {by}", agent.name))
            .evidence("a denied server is never started, whatever else says")
            .hint("remove it from deniedMcpServers (or add it to allowedMcpServers) in that settings file"),
        Approval::Declined { in_claude_json, source } => {
            let finding = Finding::fail(
                ApprovalCause::Declined,
                format!("{name} was declined for {}: {source}", agent.name),
            )
            .evidence("Claude Code keeps a 'no' to the approval prompt for good and never asks again");
            let path = agent.config_dir.join(".claude.json");
            let list = |doc: &Value| {
                names(
                    claude_config::project_entry(doc, &layout.project_mount),
                    "disabledMcpjsonServers",
                )
            };
            match (in_claude_json, f.claude_json(agent).parsed()) {
                (true, Some(doc)) => finding
                    .hint("pd-doctor --fix takes it off the list (backup first)")
                    .fix(FixPlan::one(Action::EditNameList {
                        path,
                        at: vec!["projects".into(), layout.project_mount.clone(), "disabledMcpjsonServers".into()],
                        names: vec![name.clone()],
                        add: false,
                        now: list(doc),
                    })),
                _ => finding.hint(format!("remove {name} from that list")),
            }
        }
        Approval::Pending { ignored } => {
            let elsewhere =
                f.user_entry(agent, server).is_some() || f.local_entry(agent, server).is_some();
            let message = format!(
                "{name} from {} is not approved for {}: Claude Code lists it as pending approval and gives no tools from it",
                layout.mcp_json, agent.name
            );
            let finding = if elsewhere {
                Finding::warn(ApprovalCause::Pending, message).evidence("the agent's own registration (user or local scope) is used meanwhile")
            } else {
                Finding::fail(ApprovalCause::Pending, message)
            }
            .evidence_all(ignored);
            let overlay = f.project.path(&layout.settings_overlay);
            match claude_config::read_json(&overlay) {
                JsonFile::Parsed(doc @ Value::Object(_)) => finding
                    .hint(format!("pd-doctor --fix adds it to enabledMcpjsonServers in {}", layout.settings_overlay))
                    .fix(FixPlan::one(Action::EditNameList {
                        path: overlay,
                        at: vec!["enabledMcpjsonServers".into()],
                        names: vec![name.clone()],
                        add: true,
                        now: names(Some(&doc), "enabledMcpjsonServers"),
                    })),
                _ => finding.hint(format!(
                    "approve it: {{\"enabledMcpjsonServers\": [\"{name}\"]}} in {}, mounted at {}",
                    layout.settings_overlay, layout.settings_mount
                )),
            }
        }
    }
}
