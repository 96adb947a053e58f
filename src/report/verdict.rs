//! What Claude Code will show: for each agent and server, the verdict `claude mcp list`
//! gives in that agent's container, read off the run's results, with the root cause
//! beside it. The user who saw "✘ Failed to connect" finds that line and its cause.
//!
//! A pure function of the results: the checks that decide whether Claude Code connects
//! (the entry it uses, approval, folder trust, reachability, the handshake) in the order
//! Claude Code meets them; checks that warn of risks it does not see (a shared config dir,
//! a stale image) leave the verdict alone.

use serde::Serialize;

use crate::model::{CheckResult, Status};

/// `claude mcp list`'s verdict for one server, as pd-doctor expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expected {
    /// "✔ Connected".
    Connected,
    /// "✘ Failed to connect".
    Failed,
    /// "⏸ Pending approval".
    PendingApproval,
    /// "⚠ Needs authentication".
    NeedsAuthentication,
    /// Declined or denied: not listed.
    Disabled,
    /// No entry in any scope: not listed.
    NotConfigured,
    /// The agent has no running container, so no Claude Code to ask.
    NotRunning,
    /// pd-doctor could not tell (the engine did not answer, the checks were skipped).
    Unknown,
}

impl Expected {
    /// As `claude mcp list` words it.
    pub fn shown(self) -> &'static str {
        match self {
            Expected::Connected => "✔ Connected",
            Expected::Failed => "✘ Failed to connect",
            Expected::PendingApproval => "⏸ Pending approval",
            Expected::NeedsAuthentication => "⚠ Needs authentication",
            Expected::Disabled => "not listed (disabled)",
            Expected::NotConfigured => "not listed (not configured)",
            Expected::NotRunning => "no Claude Code runs (no running container)",
            Expected::Unknown => "unknown",
        }
    }
}

/// One (agent, server) pair: what Claude Code will show, and why.
#[derive(Debug, Clone, Serialize)]
pub struct ClientVerdict {
    pub agent: String,
    pub server: String,
    /// The scope of the entry Claude Code uses (`local`, `project`, `user`, `none`),
    /// where config.server_entry decided it (its result's `scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    pub expected: Expected,
    /// The instance id of the root cause (absent when connected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Every pair of the agents and servers the results speak of, in their order.
pub fn judge(results: &[CheckResult]) -> Vec<ClientVerdict> {
    let mut agents: Vec<&str> = Vec::new();
    let mut servers: Vec<&str> = Vec::new();
    for r in results {
        if let Some(a) = r.subject.agent.as_deref().filter(|a| !agents.contains(a)) {
            agents.push(a);
        }
        // Only checks that run per server define the servers (a finding may name one).
        if r.id.ends_with(']') {
            if let Some(s) = r.subject.server.as_deref().filter(|s| !servers.contains(s)) {
                servers.push(s);
            }
        }
    }
    let mut verdicts = Vec::new();
    for agent in &agents {
        for server in &servers {
            verdicts.push(pair(results, agent, server));
        }
    }
    verdicts
}

fn pair(results: &[CheckResult], agent: &str, server: &str) -> ClientVerdict {
    let on_path: Vec<&CheckResult> = results
        .iter()
        .filter(|r| {
            r.subject.agent.as_deref().is_none_or(|a| a == agent)
                && r.subject.server.as_deref().is_none_or(|s| s == server)
        })
        .collect();
    let find = |check: &str| on_path.iter().copied().find(|r| r.check == check);
    let entry = find("config.server_entry").and_then(|r| r.scope);
    let (expected, by) = decide(&find, entry);
    let root = by.map(|r| {
        let id = r.explained_by.clone().unwrap_or_else(|| r.id.clone());
        let cause = results
            .iter()
            .find(|x| x.id == id)
            .map_or_else(|| r.cause.clone(), |x| x.cause.clone());
        (id, cause)
    });
    ClientVerdict {
        agent: agent.to_string(),
        server: server.to_string(),
        scope: entry,
        expected,
        because: root.as_ref().map(|(id, _)| id.clone()),
        cause: root.map(|(_, cause)| cause),
    }
}

/// The checks Claude Code meets on its way to a connection, in that order, and what a
/// failure of each makes it show.
const FAILS_THE_CONNECTION: &[&str] = &[
    "container.host_gateway",
    "config.server_entry",
    "server.listen",
    "container.reach",
    "container.stdio",
    "server.mcp",
];

fn decide<'a>(
    find: &dyn Fn(&str) -> Option<&'a CheckResult>,
    entry: Option<&str>,
) -> (Expected, Option<&'a CheckResult>) {
    let failed = |check: &str| find(check).filter(|r| r.status == Status::Fail);
    let is = |check: &str, causes: &[&str]| {
        find(check).filter(|r| r.is_problem() && causes.contains(&r.cause.as_str()))
    };
    if let Some(r) = failed("docker.engine") {
        return (Expected::Unknown, Some(r));
    }
    if let Some(r) = is("container.state", &["missing", "stopped", "restarting"]) {
        return (Expected::NotRunning, Some(r));
    }
    if let Some(r) = failed("config.claude_json") {
        return (Expected::Failed, Some(r));
    }
    // A denied server is never started, from any scope.
    if let Some(r) = is("config.approval", &["denied"]) {
        return (Expected::Disabled, Some(r));
    }
    // Approval and trust hold back the project's copy only: an agent's own (user or
    // local scope) copy is used meanwhile.
    let project_copy = matches!(entry, Some("project" | "none") | None);
    if project_copy {
        if let Some(r) = is("config.approval", &["declined"]) {
            return (Expected::Disabled, Some(r));
        }
    }
    if entry == Some("project") {
        if let Some(r) = failed("config.trust") {
            return (Expected::PendingApproval, Some(r));
        }
    }
    if project_copy {
        if let Some(r) = failed("config.approval") {
            return (Expected::PendingApproval, Some(r));
        }
    }
    if entry == Some("none") {
        return (Expected::NotConfigured, find("config.server_entry"));
    }
    // docker/.mcp.json's finding about this server, when its copy is the one in use.
    if entry == Some("project") {
        if let Some(r) = failed("config.mcp_json").filter(|r| r.subject.server.is_some()) {
            return (Expected::Failed, Some(r));
        }
    }
    // Claude Code connects, to another server under this one's name: it says "✔
    // Connected", and pd-doctor says why that is wrong.
    if let Some(r) = is("config.server_entry", &["wrong-server"]) {
        return (Expected::Connected, Some(r));
    }
    // A 401 from a server that advertises OAuth: Claude Code offers to log in.
    let advertised = find("server.oauth").is_some_and(|o| o.cause == "advertised");
    if let Some(r) = is("server.mcp", &["unauthorized"]).filter(|_| advertised) {
        return (Expected::NeedsAuthentication, Some(r));
    }
    if let Some(r) = FAILS_THE_CONNECTION.iter().find_map(|c| failed(c)) {
        return (Expected::Failed, Some(r));
    }
    // Connected only where a handshake or the container's own try got through: a run
    // that left those checks out (`--only config.*`) cannot say.
    let answered = ["container.reach", "container.stdio", "server.mcp"]
        .iter()
        .any(|c| find(c).is_some_and(|r| r.status == Status::Ok));
    if answered {
        (Expected::Connected, None)
    } else {
        (Expected::Unknown, None)
    }
}
