//! The probe of a check, picked by its kind: a `match` on [`ProbeKind`] with the subject
//! the kind needs, and the time each kind may take beyond the per-probe timeout.

use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::{CheckDef, ProbeKind, ProbeSpec};
use crate::facts::Facts;
use crate::model::{Finding, Subject};

use super::{
    approval, auth, claude_json, docker, generic, host_mcp_json, hub, isolation, listen, marker,
    mcp, mcp_json, oauth, permissions, pidfile, scope_conflict, server_entry, transport, trust,
};

/// Time a probe needs beyond the per-probe timeout: a `docker exec` pays for starting a
/// process in the container before its own network timeout begins, and a container's one
/// exec waits past the run's deadline for stdio servers still at work
/// (`Facts::stdio_grace`), which every container probe may wait on.
pub fn extra_time(spec: &ProbeSpec, timeout: Duration) -> Duration {
    match spec {
        // hub.service compares the Hub's view with what the containers' execs saw.
        ProbeSpec::Builtin(kind) if in_container(*kind) || *kind == ProbeKind::HubService => {
            Duration::from_secs(3)
                + timeout * crate::facts::STDIO_GRACE_TIMEOUTS
                + crate::facts::MAX_STDIO_WAIT
        }
        _ => Duration::ZERO,
    }
}

pub async fn run(def: Arc<CheckDef>, subject: Subject, facts: Arc<Facts>) -> Finding {
    let f = &*facts;
    let kind = match &def.probe {
        ProbeSpec::Generic(g) => return generic::probe(f, g, &subject, def.severity).await,
        ProbeSpec::Builtin(kind) => *kind,
    };
    let server = subject.server.as_deref().and_then(|n| f.project.server(n));
    let agent = subject.agent.as_deref().and_then(|n| f.project.agent(n));
    use ProbeKind as K;
    match (kind, server, agent) {
        (K::Pidfile, Some(s), _) => pidfile::probe(f, s),
        (K::Listen, Some(s), _) => listen::probe(f, s).await,
        (K::McpHandshake, Some(s), _) => mcp::handshake(f, s).await,
        (K::Session, Some(s), _) => mcp::session(f, s).await,
        (K::Oauth, Some(s), _) => oauth::probe(f, s).await,
        (K::Isolation, _, _) => isolation::probe(f).await,
        (K::HubService, _, _) => hub::probe(f).await,
        (K::ClaudeJson, _, Some(a)) => claude_json::probe(f, a),
        (K::Marker, Some(s), Some(a)) => marker::probe(f, a, s),
        (K::ServerEntry, Some(s), Some(a)) => server_entry::probe(f, a, s).await,
        (K::ScopeConflict, Some(s), Some(a)) => scope_conflict::probe(f, a, s).await,
        (K::McpJson, _, _) => mcp_json::probe(f).await,
        (K::HostMcpJson, _, _) => host_mcp_json::probe(f),
        (K::Transport, _, _) => transport::probe(f),
        (K::Approval, Some(s), Some(a)) => approval::probe(f, a, s).await,
        (K::Permissions, Some(s), Some(a)) => permissions::probe(f, a, s).await,
        (K::Auth, _, Some(a)) => auth::probe(f, a).await,
        (K::Trust, _, Some(a)) => trust::probe(f, a).await,
        (K::DockerEngine, _, _) => docker::probe(f, kind, &subject).await,
        (k, _, _) if in_container(k) => docker::probe(f, kind, &subject).await,
        (k, _, _) => Finding::internal(format!(
            "probe {} got a subject it cannot handle: {subject:?}",
            k.name()
        )),
    }
}

/// The probes that ask the engine about containers (`probes::docker`), each of which may
/// wait on a container's one exec.
fn in_container(kind: ProbeKind) -> bool {
    use ProbeKind as K;
    matches!(
        kind,
        K::ContainerState
            | K::ContainerEntrypoint
            | K::ContainerHostGateway
            | K::ContainerReach
            | K::ContainerStdio
            | K::ContainerSession
            | K::ContainerIdentity
            | K::ContainerConfig
            | K::ContainerAnthropic
            | K::ContainerImage
            | K::ContainerMounts
            | K::ContainersStale
            | K::ContainersDuplicate
    )
}
