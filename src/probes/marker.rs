//! `config.marker`: the entrypoint's marker file and the server's registration agree.

use crate::causes::{CommonCause, MarkerCause};
use crate::claude_config;
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};

/// The server is registered for the agent, in user or local scope.
pub fn registered(f: &Facts, agent: &Agent, server: &Server) -> bool {
    let Some(doc) = f.claude_json(agent).parsed() else {
        return false;
    };
    let scopes = [
        claude_config::user_scope(doc),
        claude_config::local_scope(doc, &f.project.layout.project_mount),
    ];
    scopes
        .into_iter()
        .flatten()
        .any(|s| s.get(&server.name).is_some())
}

pub fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    let Some(marker) = agent.marker(server) else {
        return Finding::ok(
            MarkerCause::None,
            format!(
                "this layout's entrypoint writes no markers; {} comes from {}",
                server.name, f.project.layout.mcp_json
            ),
        );
    };
    let shown = f.project.show(&marker);
    match (agent.has_marker(server), registered(f, agent, server)) {
        (true, true) => Finding::ok(CommonCause::Ok, format!("{} is registered and marked configured", server.name)),
        (true, false) => Finding::fail(
            MarkerCause::StaleMarker,
            format!("{shown} says {} was configured, but .claude.json does not register it", server.name),
        )
        .evidence("the entrypoint's `claude mcp add ... || true` failed and the marker was written anyway")
        .evidence("while the marker exists, the entrypoint never tries again")
        .hint(format!("rm {shown}, then restart the container"))
        .fix(FixPlan::one(Action::RemoveFile { path: marker.clone(), why: "stale marker".into() })),
        (false, true) => Finding::warn(MarkerCause::MissingMarker, format!("{} is registered but {shown} is absent", server.name))
            .hint("harmless: the entrypoint will run `claude mcp add` again on the next start and may fail on the duplicate; touch the marker to stop it"),
        (false, false) => Finding::ok(MarkerCause::None, format!("{} not configured yet; the entrypoint configures it on the next start", server.name)),
    }
}
