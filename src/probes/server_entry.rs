//! `config.server_entry`: the agent's user-scope entry for a server is what
//! `docker/.mcp.json` says it should be: type, host, port, path and every header.

use super::approval::{self, Approval};
use crate::causes::{CommonCause, ServerEntryCause as C};
use crate::claude_config::ServerEntry;
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};

const LOCAL_HOSTS: [&str; 5] = ["localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0"];

pub fn is_local_host(host: &str) -> bool {
    LOCAL_HOSTS.contains(&host) || host.starts_with("127.")
}

/// What the entry should be: `docker/.mcp.json`'s, else the layout's URL with no headers.
pub fn expected(f: &Facts, server: &Server) -> ServerEntry {
    server.expected.clone().unwrap_or_else(|| ServerEntry {
        kind: Some("http".into()),
        url: Some(server.container_url(&f.project.layout)),
        ..Default::default()
    })
}

/// Every way `entry` differs from `want`, as (cause, description), most telling first.
/// `host_network`: the agent's container shares the host's network, where localhost is
/// the host and so the right host.
pub fn differences(
    entry: &ServerEntry,
    want: &ServerEntry,
    host_network: bool,
) -> Vec<(C, String)> {
    let mut out = Vec::new();
    if entry.is_stdio() {
        // A stdio entry runs in the container (the stdio proxy is how Pipe Dream reaches
        // its servers since the primer): judged by its upstream, if it names one.
        if entry.url.is_none() {
            return out;
        }
    } else if entry.kind.as_deref() != Some("http") {
        let kind = entry
            .kind
            .as_deref()
            .map_or("no type".to_string(), |k| format!("type {k}"));
        out.push((
            C::WrongTransport,
            format!("it has {kind}; the servers speak Streamable HTTP (type http)"),
        ));
    }
    let (Some(url), Some(want_url)) = (entry.parsed_url(), want.parsed_url()) else {
        if entry.parsed_url().is_none() {
            out.push((
                C::BadUrl,
                format!(
                    "its url {:?} does not parse",
                    entry
                        .url
                        .as_deref()
                        .map(crate::redact::display_url)
                        .unwrap_or_default()
                ),
            ));
        }
        return out;
    };
    let host = url.host_str().unwrap_or("");
    if is_local_host(host) && host_network {
        // Right for this agent; port and path are still compared.
    } else if is_local_host(host) {
        out.push((
            C::LocalhostUrl,
            format!("it points at {host}, which inside a container is the container itself"),
        ));
    } else if Some(host) != want_url.host_str() {
        out.push((
            C::BadUrl,
            format!(
                "it points at host {host}, not {}",
                want_url.host_str().unwrap_or("?")
            ),
        ));
    }
    if url.port_or_known_default() != want_url.port_or_known_default() {
        out.push((
            C::WrongPort,
            format!(
                "port {} instead of {}",
                show_port(&url),
                show_port(&want_url)
            ),
        ));
    }
    if url.path() != want_url.path() {
        out.push((
            C::WrongPath,
            format!("path {} instead of {}", url.path(), want_url.path()),
        ));
    }
    for (name, value) in &want.headers {
        match entry.header(name) {
            None => out.push((C::MissingAuthHeader, format!("header {name} is missing"))),
            Some(v) if v != value => out.push((
                C::MissingAuthHeader,
                format!(
                    "header {name} differs from docker/.mcp.json ({} here, {} there)",
                    v.masked(),
                    value.masked()
                ),
            )),
            Some(_) => {}
        }
    }
    out
}

/// Causes a rewrite from `docker/.mcp.json` repairs: everything the project's own entry
/// states. A host that is neither local nor the project's (`bad-url`) is left to a person:
/// it may be a deliberate proxy.
fn rewritable(cause: C) -> bool {
    matches!(
        cause,
        C::LocalhostUrl
            | C::MissingAuthHeader
            | C::WrongPort
            | C::WrongServer
            | C::WrongPath
            | C::WrongTransport
    )
}

/// Another of the project's servers that `entry` points at by its port (on the host the
/// containers use, on that server's path): Claude Code reaches a server there, just not
/// this one.
fn other_server<'a>(f: &'a Facts, server: &Server, entry: &ServerEntry) -> Option<&'a Server> {
    let url = entry.parsed_url()?;
    let port = url.port_or_known_default()?;
    f.project
        .servers
        .iter()
        .find(|s| s.name != server.name && s.port == port && s.path == url.path())
}

/// Whether a server that wants `want`'s headers takes `entry`'s: every header it names
/// is sent, with the same value.
fn accepts(want: &ServerEntry, entry: &ServerEntry) -> bool {
    want.headers
        .iter()
        .all(|(name, value)| entry.header(name) == Some(value))
}

fn show_port(url: &reqwest::Url) -> String {
    url.port_or_known_default()
        .map_or("?".into(), |p| p.to_string())
}

/// The copy of `server` that the agent's Claude Code uses, and its scope: local scope
/// over project scope (when approved, in a trusted folder) over user scope (Claude
/// Code's documented order; the trust rule as Claude Code 2.1.327 showed it: in a folder
/// whose trust dialog was never accepted it takes the user-scope copy, and lists an
/// approved project server with no other copy as pending approval).
pub enum InUse {
    Local(ServerEntry),
    Project,
    /// Approved in `.mcp.json`, with no other copy, in a folder not trusted: the copy
    /// Claude Code will use once the folder is trusted, pending until then.
    Untrusted,
    User(ServerEntry),
    None,
}

pub async fn in_use(f: &Facts, agent: &Agent, server: &Server) -> InUse {
    if let Some(e) = f.local_entry(agent, server) {
        return InUse::Local(e);
    }
    let approved = matches!(
        approval::approval(f, agent, server).await,
        Approval::Approved(_)
    );
    let trusted = approved && f.trusted_by(agent).await.is_some();
    if trusted {
        return InUse::Project;
    }
    match f.user_entry(agent, server) {
        Some(e) => InUse::User(e),
        None if approved => InUse::Untrusted,
        None => InUse::None,
    }
}

/// The agent's container runs with `--network host` (itself or through the container
/// whose network it shares).
async fn on_host_network(f: &Facts, agent: &Agent) -> bool {
    match f.docker().await {
        Ok(d) => d
            .container_of(&agent.name)
            .is_some_and(super::docker::network::on_host_network),
        Err(_) => false,
    }
}

impl InUse {
    /// The scope's name, as the report's `scope` gives it.
    pub fn scope(&self) -> &'static str {
        match self {
            InUse::Local(_) => "local",
            InUse::Project | InUse::Untrusted => "project",
            InUse::User(_) => "user",
            InUse::None => "none",
        }
    }
}

/// Judges the entry in use, and says which scope it is from.
pub async fn probe(f: &Facts, agent: &Agent, server: &Server) -> Finding {
    let used = in_use(f, agent, server).await;
    let scope = used.scope();
    judge(f, agent, server, used).await.scope(scope)
}

async fn judge(f: &Facts, agent: &Agent, server: &Server, used: InUse) -> Finding {
    let path = agent.config_dir.join(".claude.json");
    let shown = f.project.show(&path);
    let (scope, entry) = match used {
        InUse::Local(e) => ("local", e),
        InUse::User(e) => ("user", e),
        InUse::Project => {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                "the project-scope copy from {} is in use (approved); config.mcp_json judges it",
                f.project.layout.mcp_json
            ),
            )
        }
        InUse::Untrusted => {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                    "the project-scope copy from {} is the one to use (approved), once the folder is trusted (config.trust); config.mcp_json judges it",
                    f.project.layout.mcp_json
                ),
            )
        }
        InUse::None => {
            return if agent.has_marker(server) {
                Finding::fail(
                    C::Missing,
                    format!(
                        "{} is not registered in {shown}, though its marker exists",
                        server.name
                    ),
                )
                .hint("the marker stops the entrypoint from registering it: see config.marker")
            } else {
                Finding::warn(
                    C::Missing,
                    format!("{} is not registered in {shown} yet", server.name),
                )
                .hint("the entrypoint registers it on the next start")
            }
        }
    };
    let want = expected(f, server);
    // Judged as Claude Code uses it: `${VAR}` expanded in the agent's environment.
    let (entry, want) = if entry.has_references() || want.has_references() {
        let env = f.env_of(agent).await;
        let (entry, unset) = entry.expanded(&env, &f.project.secrets);
        if let Some(var) = unset.first() {
            let message = format!(
                "{}'s {scope}-scope entry for {} refers to ${{{var}}}, which {} does not set: Claude Code sends the text literally",
                agent.name, server.name, env.place
            );
            let finding = if env.definite {
                Finding::fail(C::UnsetVariable, message)
            } else {
                Finding::warn(C::UnsetVariable, message)
            };
            return finding
                .evidence_all(unset.iter().skip(1).map(|v| format!("${{{v}}} is unset too")))
                .hint(format!(
                    "start the container with -e {var}=... (compose: environment: or env_file:), or write ${{{var}:-default}}"
                ));
        }
        (entry, want.expanded(&env, &f.project.secrets).0)
    } else {
        (entry, want)
    };
    let local_url = entry
        .parsed_url()
        .is_some_and(|u| is_local_host(u.host_str().unwrap_or("")));
    let host_network = local_url && on_host_network(f, agent).await;
    let problems = differences(&entry, &want, host_network);
    let Some((cause, first)) = problems.first().cloned() else {
        if host_network {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                    "http {}: right for {}, whose container uses the host's network (localhost is the host there)",
                    crate::redact::display_url(entry.url.as_deref().unwrap_or("")),
                    agent.name
                ),
            );
        }
        let names = entry.header_names();
        let headers = if names.is_empty() {
            "no headers".into()
        } else {
            format!("headers {}", names.join(", "))
        };
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "http {} with {headers}",
                crate::redact::display_url(entry.url.as_deref().unwrap_or(""))
            ),
        );
    };
    let (cause, first, answered) = match other_server(f, server, &entry) {
        Some(other) if cause == C::WrongPort && !accepts(&expected(f, other), &entry) => (
            cause,
            format!(
                "{first}: port {} is {}'s, which wants headers this entry does not send (Claude Code: \"Failed to connect\", HTTP 401)",
                other.port, other.name
            ),
            None,
        ),
        Some(other) if cause == C::WrongPort => {
            let said = match f.handshake(other).await.map(|h| &h.result) {
                Some(Ok(info)) => Some(format!(
                    "the server on port {} calls itself {:?} (serverInfo.name of its initialize answer)",
                    other.port,
                    crate::printable::line(&info.name)
                )),
                _ => None,
            };
            (
                C::WrongServer,
                format!(
                    "port {} is {}'s: Claude Code connects there and shows ✔ Connected, but to {}, under the name {}",
                    other.port, other.name, other.name, server.name
                ),
                said,
            )
        }
        _ => (cause, first, None),
    };
    let mut finding = Finding::fail(
        cause,
        format!(
            "{}'s {scope}-scope entry for {}: {first}",
            agent.name, server.name
        ),
    )
    .evidence_all(answered)
    .evidence_all(problems.iter().skip(1).map(|(_, p)| p.clone()))
    .evidence(format!(
        "configured: {}",
        crate::redact::display_url(entry.url.as_deref().unwrap_or("(none)"))
    ))
    .evidence(format!(
        "expected:   {}",
        crate::redact::display_url(want.url.as_deref().unwrap_or("(none)"))
    ));
    if want.header("X-API-Key").is_some()
        && entry.header("Authorization").is_none()
        && want.header("Authorization").is_some()
    {
        finding = finding.evidence("X-API-Key without Authorization makes Claude Code try OAuth discovery: 'Dynamic Client Registration rejected (HTTP 401)'");
    }
    // The rewrite acts on the user-scope entry, the one the entrypoint writes.
    // A stdio entry is never rewritten: an http entry would undo the proxy.
    let fixable = server.expected.is_some()
        && !entry.is_stdio()
        && scope == "user"
        && f.project.layout.user_scope_kept
        && problems.iter().all(|(c, _)| rewritable(*c));
    if fixable {
        finding = finding
            .hint(format!(
                "pd-doctor --fix rewrites it from {}",
                f.project.layout.mcp_json
            ))
            .fix(FixPlan::one(Action::RewriteServerEntry {
                path,
                server: server.name.clone(),
            }));
    } else if scope == "user" && !f.project.layout.user_scope_kept {
        finding = finding.hint(format!(
            "the entrypoint clears the user scope at every start: docker restart {}{}",
            f.project.layout.container_prefix, agent.name
        ));
    } else {
        finding = finding.hint(format!(
            "inside the container: claude mcp remove {} -s {scope}, then add it as {} has it",
            server.name, f.project.layout.mcp_json
        ));
    }
    finding
}
