//! `config.trust`: Claude Code starts the servers of a project's `.mcp.json` only in a
//! folder whose "Do you trust the files in this folder?" dialog was accepted. The answer
//! is kept in the agent's `.claude.json` as `projects[<folder>].hasTrustDialogAccepted`,
//! for the folder Claude Code starts in or one above it. A fresh agent whose first
//! interactive start never got past the dialog has none, and `claude mcp list` then shows
//! every `.mcp.json` server as "⏸ Pending approval", approved or not, while a user-scope
//! copy of a server is used as before (Claude Code 2.1.327, measured in the lab).

use super::server_entry::{in_use, InUse};
use crate::causes::{CommonCause, TrustCause};
use crate::claude_config::JsonFile;
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, LayoutName};

pub async fn probe(f: &Facts, agent: &Agent) -> Finding {
    let dir = f.work_dir(agent).await;
    let path = agent.config_dir.join(".claude.json");
    let shown = f.project.show(&path);
    if let Some(by) = f.trusted_by(agent).await {
        let covered = if by == dir {
            String::new()
        } else {
            format!(", which covers {dir}")
        };
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "{} trusts {by}{covered} (hasTrustDialogAccepted in {shown})",
                agent.name
            ),
        );
    }
    // The servers that wait on the dialog: approved in .mcp.json, with no other copy.
    let mut waiting = Vec::new();
    let mut user_scope = Vec::new();
    for server in &f.project.servers {
        match in_use(f, agent, server).await {
            InUse::Untrusted => waiting.push(server.name.as_str()),
            InUse::User(_) if server.expected.is_some() => user_scope.push(server.name.as_str()),
            _ => {}
        }
    }
    let mcp_json = &f.project.layout.mcp_json;
    if waiting.is_empty() {
        let why = if user_scope.is_empty() {
            format!("no approved server of {mcp_json} depends on it")
        } else {
            format!(
                "{} come{} from the user scope, which needs no trust",
                user_scope.join(", "),
                if user_scope.len() == 1 { "s" } else { "" }
            )
        };
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "{} never accepted the trust dialog for {dir}, but {why}",
                agent.name
            ),
        );
    }
    // The commands are for a person to paste: every word from outside is quoted.
    let container = match f.docker().await {
        Ok(d) => d.container_of(&agent.name).map(|c| c.name.clone()),
        Err(_) => None,
    }
    .unwrap_or_else(|| format!("{}{}", f.project.layout.container_prefix, agent.name));
    let quoted =
        |word: &str| shlex::try_quote(word).map_or_else(|_| "'?'".to_string(), |q| q.into_owned());
    let attach = match f.project.layout.name {
        LayoutName::Hub => format!(
            "attach to the agent's session and answer \"Yes, proceed\": docker exec -it {} tmux attach -t agent (Ctrl-b d leaves it running)",
            quoted(&container)
        ),
        LayoutName::Primer => format!(
            "start Claude Code once interactively and answer \"Yes, proceed\": docker exec -it -w {} {} claude",
            quoted(&dir),
            quoted(&container)
        ),
    };
    // Trust is recorded only for the project itself: a container started elsewhere
    // (container.config says so) would have pd-doctor trust a folder it never meant to.
    let mount = &f.project.layout.project_mount;
    let in_project = dir == *mount || dir.starts_with(&format!("{}/", mount.trim_end_matches('/')));
    let finding = Finding::fail(
        TrustCause::NotAccepted,
        format!(
            "{} never accepted the trust dialog for {dir}: Claude Code holds back {} from {mcp_json} as pending approval",
            agent.name,
            waiting.join(", ")
        ),
    )
    .evidence(format!(
        "no projects entry for {dir} or a folder above it has \"hasTrustDialogAccepted\": true in {shown}"
    ))
    .evidence("`claude mcp list` shows them as \"⏸ Pending approval (run `claude` to approve)\", even those enabledMcpjsonServers approves");
    // About one server, it names it: the agent's other servers are not held back.
    let finding = match waiting.as_slice() {
        [one] => finding.about(one),
        _ => finding,
    };
    match f.claude_json(agent) {
        JsonFile::Parsed(serde_json::Value::Object(_)) if in_project => finding
            .hint(format!("{attach}; or pd-doctor --fix records the answer (backup first), then restart Claude Code in the session"))
            .fix(FixPlan::one(Action::AcceptTrust { path, dir })),
        _ => finding.hint(attach),
    }
}
