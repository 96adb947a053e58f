//! `config.scope_conflict`: the same server named in local, project and user scope with
//! different URLs or headers. Claude Code takes local over project over user.

use super::approval::{self, Approval};
use super::server_entry::expected;
use crate::causes::{CommonCause, ScopeConflictCause};
use crate::claude_config::ServerEntry;
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};

pub async fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    if f.claude_json(agent).parsed().is_none() {
        return Finding::ok(
            CommonCause::Ok,
            "no .claude.json yet: only project scope applies",
        );
    }
    let layout = &f.project.layout;
    // The project copy takes part only once approved (config.approval), and over a user
    // copy only in a trusted folder (config.trust): until then Claude Code does not use it.
    let approved = matches!(
        approval::approval(f, agent, server).await,
        Approval::Approved(_)
    ) && (f.trusted_by(agent).await.is_some()
        || f.user_entry(agent, server).is_none());
    let scopes: Vec<(&str, ServerEntry)> = [
        ("local", f.local_entry(agent, server)),
        ("project", server.expected.clone().filter(|_| approved)),
        ("user", f.user_entry(agent, server)),
    ]
    .into_iter()
    .filter_map(|(n, e)| e.map(|e| (n, e)))
    .collect();
    // Compared as Claude Code uses them: `${VAR}` expanded in the agent's environment.
    let scopes = if scopes.iter().any(|(_, e)| e.has_references()) {
        let env = f.env_of(agent).await;
        scopes
            .into_iter()
            .map(|(n, e)| (n, e.expanded(&env, &f.project.secrets).0))
            .collect()
    } else {
        scopes
    };
    let Some((winner, effective)) = scopes.first() else {
        return Finding::ok(
            CommonCause::Ok,
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
            CommonCause::Ok,
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
    let want = expected(f, server);
    let want = if want.has_references() {
        want.expanded(&f.env_of(agent).await, &f.project.secrets).0
    } else {
        want
    };
    if effective.same_as(&want) {
        let finding = Finding::warn(ScopeConflictCause::Conflict, message).evidence_all(evidence);
        // The copy in use is right; a stale user-scope copy (the one the entrypoint
        // writes) is rewritten from the project's, as config.server_entry rewrites it, so
        // it cannot surprise anyone once the project copy stops winning.
        if differing == ["user"] && server.expected.is_some() && layout.user_scope_kept {
            finding
                .hint(format!(
                    "the copy in use is right; pd-doctor --fix rewrites the user-scope copy from {}",
                    layout.mcp_json
                ))
                .fix(FixPlan::one(Action::RewriteServerEntry {
                    path: agent.config_dir.join(".claude.json"),
                    server: server.name.clone(),
                }))
        } else {
            let removes: Vec<String> = differing
                .iter()
                .map(|scope| format!("claude mcp remove {} -s {scope}", server.name))
                .collect();
            finding.hint(format!(
                "the copy in use is right; remove the others so they cannot surprise you later: {}",
                removes.join("; ")
            ))
        }
    } else {
        Finding::fail(ScopeConflictCause::Conflict, message)
            .evidence_all(evidence)
            .evidence(format!(
                "the {winner} scope copy is not what {} says",
                layout.mcp_json
            ))
            .hint(format!("inside the container: {remove}"))
    }
}
