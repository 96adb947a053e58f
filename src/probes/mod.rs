//! One module per probe kind. A probe reads facts and returns a [`Finding`]; it never
//! prints and never changes anything.

mod approval;
mod claude_json;
pub(crate) mod docker;
mod generic;
mod isolation;
mod listen;
mod marker;
mod mcp;
mod mcp_json;
mod oauth;
mod pidfile;
mod scope_conflict;
mod server_entry;

use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::{CheckDef, ProbeSpec};
use crate::facts::Facts;
use crate::model::{Finding, Subject};
use crate::project::{Agent, Server};

const BUILTIN: &[&str] = &[
    "pidfile",
    "listen",
    "mcp-handshake",
    "session",
    "oauth",
    "docker-engine",
    "container-state",
    "container-entrypoint",
    "container-host-gateway",
    "container-reach",
    "container-image",
    "container-mounts",
    "isolation",
    "claude-json",
    "marker",
    "server-entry",
    "scope-conflict",
    "mcp-json",
    "approval",
    "containers-stale",
    "containers-duplicate",
];

pub fn is_builtin(name: &str) -> bool {
    BUILTIN.contains(&name)
}

/// Time a probe needs beyond the per-probe timeout: a `docker exec` pays for starting a
/// process in the container before its own network timeout begins.
pub fn extra_time(spec: &ProbeSpec) -> Duration {
    match spec {
        ProbeSpec::Builtin(name) if name.starts_with("container") => Duration::from_secs(3),
        _ => Duration::ZERO,
    }
}

pub async fn run(def: Arc<CheckDef>, subject: Subject, facts: Arc<Facts>) -> Finding {
    let f = &*facts;
    let name = match &def.probe {
        ProbeSpec::Generic(g) => {
            return generic::probe(f, g, &subject, def.severity.as_deref()).await
        }
        ProbeSpec::Builtin(name) => name.as_str(),
    };
    let server = subject.server.as_deref().and_then(|n| f.project.server(n));
    let agent = subject.agent.as_deref().and_then(|n| f.project.agent(n));
    match (name, server, agent) {
        ("pidfile", Some(s), _) => pidfile::probe(f, s),
        ("listen", Some(s), _) => listen::probe(f, s).await,
        ("mcp-handshake", Some(s), _) => mcp::handshake(f, s).await,
        ("session", Some(s), _) => mcp::session(f, s).await,
        ("oauth", Some(s), _) => oauth::probe(f, s).await,
        ("isolation", _, _) => isolation::probe(f).await,
        ("claude-json", _, Some(a)) => claude_json::probe(f, a),
        ("marker", Some(s), Some(a)) => marker::probe(f, a, s),
        ("server-entry", Some(s), Some(a)) => server_entry::probe(f, a, s).await,
        ("scope-conflict", Some(s), Some(a)) => scope_conflict::probe(f, a, s).await,
        ("mcp-json", _, _) => mcp_json::probe(f).await,
        ("approval", Some(s), Some(a)) => approval::probe(f, a, s).await,
        (n, _, _) if n.starts_with("docker") || n.starts_with("container") => {
            docker::probe(f, n, &subject).await
        }
        (n, _, _) => Finding::internal(format!(
            "probe {n} got a subject it cannot handle: {subject:?}"
        )),
    }
}

/// Marker files of `agent` that exist (as anything, a dangling symlink included).
fn markers_present<'a>(f: &'a Facts, agent: &Agent) -> Vec<&'a Server> {
    f.project
        .servers
        .iter()
        .filter(|s| agent.has_marker(s))
        .collect()
}

pub use crate::redact::command_line as describe_command;
