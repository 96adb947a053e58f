//! `config.scope_conflict`: the same server named in local, project and user scope with
//! different URLs or headers. Claude Code takes local over project over user.

use super::server_entry::expected;
use crate::claude_config::{self, ServerEntry};
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::{Agent, Server};

pub fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    let Some(doc) = f.claude_json(agent).parsed() else {
        return Finding::ok("ok", "no .claude.json yet: only project scope applies");
    };
    let layout = &f.project.layout;
    let local = claude_config::local_scope(doc, &layout.project_mount)
        .and_then(|s| s.get(&server.name))
        .map(ServerEntry::from_value);
    let scopes: Vec<(&str, ServerEntry)> = [
        ("local", local),
        ("project", server.expected.clone()),
        ("user", f.user_entry(agent, server)),
    ]
    .into_iter()
    .filter_map(|(n, e)| e.map(|e| (n, e)))
    .collect();
    let Some((winner, effective)) = scopes.first() else {
        return Finding::ok(
            "ok",
            format!("{} is not configured in any scope", server.name),
        );
    };
    let differing: Vec<&str> = scopes
        .iter()
        .filter(|(_, e)| !e.same_as(effective))
        .map(|(n, _)| *n)
        .collect();
    if differing.is_empty() {
        let names: Vec<&str> = scopes.iter().map(|(n, _)| *n).collect();
        return Finding::ok(
            "ok",
            format!("{} agrees in {} scope", server.name, names.join(", ")),
        );
    }
    let evidence: Vec<String> = scopes
        .iter()
        .map(|(n, e)| {
            format!(
                "{n} scope: {}",
                crate::redact::display_url(e.url.as_deref().unwrap_or("(no url)"))
            )
        })
        .collect();
    let message = format!(
        "{} differs between {} scope (which Claude Code uses) and {} scope",
        server.name,
        winner,
        differing.join(", ")
    );
    let remove = format!("claude mcp remove {} -s {winner}", server.name);
    if effective.same_as(&expected(f, server)) {
        Finding::warn("conflict", message)
            .evidence_all(evidence)
            .hint(format!("the copy in use is right; remove the others so they cannot surprise you later: claude mcp remove {} -s <scope>", server.name))
    } else {
        Finding::fail("conflict", message)
            .evidence_all(evidence)
            .evidence(format!(
                "the {winner} scope copy is not what {} says",
                layout.mcp_json
            ))
            .hint(format!("inside the container: {remove}"))
    }
}
