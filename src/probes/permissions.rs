//! `config.permissions`: every tool a server lists in `tools/list` is allowed without a
//! prompt. Claude Code asks before each MCP tool that no `permissions.allow` rule covers
//! (`mcp__<server>` for all of a server's tools, `mcp__<server>__*`, or
//! `mcp__<server>__<tool>`); an agent in a tmux session then waits at the prompt until a
//! person answers, and "don't ask again" cannot be kept, since the local project settings
//! are the read-only overlay. A tool that `permissions.deny` or `permissions.ask` names
//! is meant to be so and is left alone.

use serde_json::Value;

use crate::causes::{CommonCause, PermissionsCause};
use crate::claude_config::{self, names, JsonFile};
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};

/// The most tools of one server looked at: a server's list is outside input.
const MAX_TOOLS: usize = 512;

/// How many tool names a message lists before "and N more".
const SHOWN: usize = 8;

/// A tool name pd-doctor writes into a rule: MCP's own alphabet, no more (a name from a
/// hostile server must not become a rule of another kind, such as `Bash(*)`).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A rule list names `tool` of `server`: the exact tool, the whole server, or its `*`.
fn covers(rules: &[String], server: &str, tool: &str) -> bool {
    let whole = format!("mcp__{server}");
    let star = format!("mcp__{server}__*");
    let exact = format!("mcp__{server}__{tool}");
    rules
        .iter()
        .any(|r| *r == whole || *r == star || *r == exact)
}

pub async fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    let Some(handshake) = f.handshake(server).await else {
        return Finding::skip(format!("the URL for {} does not parse", server.name));
    };
    let Ok(info) = &handshake.result else {
        return Finding::skip(format!("{} did not list its tools", server.name));
    };
    let settings = f.settings(agent).await;
    let mut allow = Vec::new();
    let mut meant = Vec::new();
    for doc in settings.iter().filter_map(|s| s.doc.as_ref()) {
        let permissions = doc.get("permissions");
        if permissions
            .and_then(|p| p.get("defaultMode"))
            .and_then(Value::as_str)
            == Some("bypassPermissions")
        {
            return Finding::ok(
                CommonCause::Ok,
                "permissions.defaultMode is bypassPermissions: Claude Code asks before no tool",
            );
        }
        allow.extend(names(permissions, "allow"));
        meant.extend(names(permissions, "deny"));
        meant.extend(names(permissions, "ask"));
    }
    // What "Yes, don't ask again" kept in the agent's own .claude.json.
    if let JsonFile::Parsed(doc) = f.claude_json(agent) {
        let entry = claude_config::project_entry(doc, &f.project.layout.project_mount);
        allow.extend(names(entry, "allowedTools"));
    }
    let tools: Vec<&String> = info.tools.iter().take(MAX_TOOLS).collect();
    let name = &server.name;
    let left: Vec<&String> = tools
        .iter()
        .copied()
        .filter(|t| !covers(&allow, name, t) && !covers(&meant, name, t))
        .collect();
    if left.is_empty() {
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "every one of {name}'s {} tools is allowed or deliberately asked/denied for {}",
                tools.len(),
                agent.name
            ),
        );
    }
    let layout = &f.project.layout;
    let shown: Vec<String> = left
        .iter()
        .take(SHOWN)
        .map(|t| crate::printable::line(t).into_owned())
        .collect();
    let more = left.len().saturating_sub(SHOWN);
    let finding = Finding::warn(
        PermissionsCause::Prompts,
        format!(
            "{} is asked before {} of {name}'s tools: {}{}",
            agent.name,
            left.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ),
    )
    .evidence(format!(
        "no permissions.allow rule covers them in the settings {}'s Claude Code reads ({})",
        agent.name,
        settings
            .iter()
            .map(|s| f.project.show(&s.path))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .evidence(format!(
        "the agent stops at a permission prompt for each, and \"don't ask again\" cannot be kept: {} is the read-only overlay",
        layout.settings_mount
    ));
    let rules: Vec<String> = left
        .iter()
        .filter(|t| plain_name(t))
        .map(|t| format!("mcp__{name}__{t}"))
        .collect();
    let finding = if rules.len() < left.len() {
        finding.evidence(format!(
            "{} tool name(s) are not plain names (letters, digits, _ and -) and are never written into a rule",
            left.len() - rules.len()
        ))
    } else {
        finding
    };
    let overlay = f.project.path(&layout.settings_overlay);
    match claude_config::read_json(&overlay) {
        JsonFile::Parsed(doc @ Value::Object(_)) if !rules.is_empty() && plain_name(name) => finding
            .hint(format!(
                "pd-doctor --fix adds them to permissions.allow in {} (or allow all of them: \"mcp__{name}\")",
                layout.settings_overlay
            ))
            .fix(FixPlan::one(Action::EditNameList {
                path: overlay,
                at: vec!["permissions".into(), "allow".into()],
                names: rules,
                add: true,
                now: names(doc.get("permissions"), "allow"),
            })),
        _ => finding.hint(format!(
            "add \"mcp__{name}\" (all its tools) or each \"mcp__{name}__TOOL\" to permissions.allow in {}, mounted at {}",
            layout.settings_overlay, layout.settings_mount
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_covers_a_tool_by_name_by_server_or_by_star() {
        let rules = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(covers(&rules(&["mcp__qms"]), "qms", "qms_inbox"));
        assert!(covers(&rules(&["mcp__qms__*"]), "qms", "qms_inbox"));
        assert!(covers(&rules(&["mcp__qms__qms_inbox"]), "qms", "qms_inbox"));
        assert!(!covers(&rules(&["mcp__qms__qms_inbox"]), "qms", "qms_read"));
        assert!(!covers(&rules(&["mcp__git"]), "qms", "qms_inbox"));
        assert!(!covers(&rules(&["mcp__qm"]), "qms", "qms_inbox"));
    }

    #[test]
    fn only_plain_tool_names_become_rules() {
        assert!(plain_name("qms_inbox"));
        assert!(plain_name("git-exec2"));
        assert!(!plain_name("x), Bash(*"));
        assert!(!plain_name("a\u{1b}[2J"));
        assert!(!plain_name(""));
        assert!(!plain_name(&"a".repeat(129)));
    }
}
