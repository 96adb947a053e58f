//! `server.mcp` and `server.session`: both read the one handshake the facts hold.

use crate::causes::{CauseCode, CommonCause, McpCause, SessionCause};
use crate::facts::mcp::{self, Handshake};
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::Server;

/// The URL does not parse: `bad-url` for `server.mcp` and `server.session` alike.
fn no_target(f: &Facts, server: &Server, cause: impl CauseCode) -> Finding {
    Finding::fail(cause, format!("the URL for {} does not parse", server.name))
        .evidence(crate::redact::display_url(
            &server.container_url(&f.project.layout),
        ))
        .hint(format!(
            "fix the url of {} in {}",
            server.name, f.project.layout.mcp_json
        ))
}

/// pd-doctor speaks plain HTTP, as Pipe Dream's servers do; for an https URL it says so
/// instead of reporting a failure it did not observe.
pub fn unprobed_scheme(f: &Facts, server: &Server) -> Option<Finding> {
    let url = server.container_url(&f.project.layout);
    url.starts_with("https://").then(|| {
        Finding::skip(format!(
            "{} is https: this build of pd-doctor probes plain http only",
            crate::redact::display_url(&url)
        ))
    })
}

pub async fn handshake(f: &Facts, server: &Server) -> Finding {
    if let Some(skip) = unprobed_scheme(f, server) {
        return skip;
    }
    let Some(h) = f.handshake(server).await else {
        return no_target(f, server, McpCause::BadUrl);
    };
    let note = f.expansion_note(server).await;
    let finding = match &h.result {
        Ok(info) => {
            let missing: Vec<&String> = server
                .tools
                .iter()
                .filter(|t| !info.tools.contains(t))
                .collect();
            if !missing.is_empty() {
                Finding::fail(
                    McpCause::MissingTools,
                    format!("{} answers, but lacks {}", server.name, join(&missing)),
                )
                .evidence(format!("tools: {}", info.tools.join(", ")))
                .hint("another server, or an older build, is on this port: restart the right one")
            } else {
                let spoken = format!(
                    "{} {} speaks MCP {}, {} tools, {} ms",
                    info.name,
                    info.version,
                    info.protocol,
                    info.tools.len(),
                    info.elapsed_ms
                );
                if f.compat {
                    compat(f, server, spoken).await
                } else {
                    Finding::ok(CommonCause::Ok, spoken)
                }
            }
        }
        Err(e) => {
            let finding = Finding::fail(e.cause, format!("{}: {}", server.name, e.message));
            // A header still reading `${VAR}` was never a wrong key: the variable is unset.
            let literal = match f.mcp_target(server).await {
                Some(t) => t.headers.iter().any(|(_, v)| v.expose().contains("${")),
                None => false,
            };
            if e.cause == McpCause::Unauthorized && literal {
                finding.hint(format!(
                    "a header in {} is still a literal ${{...}}: its variable is unset where it is expanded (see config.mcp_json)",
                    f.project.layout.mcp_json
                ))
            } else {
                finding.hint(hint(f, server, e.cause, h))
            }
        }
    };
    finding.evidence_all(h.evidence.clone()).evidence_all(note)
}

/// `--compat`: what an older client gets, one that POSTs without accepting both JSON and
/// SSE by name. A 406 is a note (advice, exit 0): the server is right by the spec, and
/// Claude Code sends the header, but an older client fails on it.
async fn compat(f: &Facts, server: &Server, spoken: String) -> Finding {
    let Some(target) = f.mcp_target(server).await else {
        return Finding::ok(CommonCause::Ok, spoken);
    };
    let (status, line) = mcp::accept_less_status(&target, f.deadline()).await;
    match status {
        Ok(406) => Finding::ok(
            McpCause::StrictAccept,
            format!(
                "{spoken}; strict: it answers 406 to a client that does not accept both JSON and SSE"
            ),
        )
        .evidence(line)
        .evidence("Claude Code sends Accept: application/json, text/event-stream and is served; an older MCP client (or a plain HTTP client) that sends Accept: */* or none is refused")
        .hint(format!(
            "nothing to do for Claude Code; for an older client, update it (it must accept application/json and text/event-stream), or let {} accept */*",
            server.name
        )),
        _ => Finding::ok(CommonCause::Ok, spoken).evidence(line),
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn hint(f: &Facts, server: &Server, cause: McpCause, h: &Handshake) -> String {
    let mcp_json = &f.project.layout.mcp_json;
    match cause {
        McpCause::Refused => format!("start it: {}", server.start),
        McpCause::Timeout => format!(
            "it accepts connections but never answers (Claude Code waits 30 s, then says 'connection timed out'): restart it: {}",
            server.start
        ),
        McpCause::Dns => format!("the host in {mcp_json} does not resolve from here"),
        McpCause::Unauthorized if h.header_names.iter().any(|n| n.eq_ignore_ascii_case("authorization")) => {
            format!("the server refuses the key: make the headers for {} in {mcp_json} match the server's key", server.name)
        }
        McpCause::Unauthorized => format!(
            "send both X-API-Key and Authorization: Bearer ... for {} in {mcp_json}; with a 401 Claude Code falls into OAuth discovery ('Dynamic Client Registration rejected')",
            server.name
        ),
        McpCause::HostRejected => format!(
            "the server's DNS-rebinding protection refuses Host {}: add it to the server's allowed hosts",
            f.project.layout.host_name
        ),
        McpCause::NotFound => format!("check the path of {} in {mcp_json} against the path the server serves", server.name),
        McpCause::NotAcceptable => "the server does not accept a Streamable HTTP POST; is it an SSE-only server?".into(),
        McpCause::ServerError => "the server failed while handling initialize: read its log".into(),
        McpCause::ProtocolError => "the server refused the handshake: read its log; it may need a newer MCP SDK".into(),
        _ => format!("something that is not an MCP server answers on port {}: find it with `ss -ltnp 'sport = :{}'`", server.port, server.port),
    }
}

pub async fn session(f: &Facts, server: &Server) -> Finding {
    let Some(h) = f.handshake(server).await else {
        return no_target(f, server, SessionCause::BadUrl);
    };
    if !h.stateful {
        return Finding::ok(
            CommonCause::Ok,
            "stateless: no Mcp-Session-Id, nothing to go stale",
        );
    }
    let protocol = h
        .result
        .as_ref()
        .map(|i| i.protocol.clone())
        .unwrap_or_else(|_| mcp::PROTOCOL_VERSION.into());
    let Some(target) = f.mcp_target(server).await else {
        return no_target(f, server, SessionCause::BadUrl);
    };
    let (status, line) = mcp::unknown_session_status(&target, &protocol, f.deadline()).await;
    match status {
        Ok(404) => Finding::warn(SessionCause::Stateful, format!("{} is stateful (it issues Mcp-Session-Id)", server.name))
            .evidence(line)
            .evidence("after a server restart Claude Code keeps its old session id; the server's 404 makes it start over, but tools can fail until it does")
            .hint("run the server stateless (FastMCP: stateless_http=True) so restarts never strand a client"),
        Ok(s) => Finding::fail(
            SessionCause::Unrecoverable,
            format!("{} answers {s} to an unknown session id, not 404: after a restart no client can recover", server.name),
        )
        .evidence(line)
        .hint("run the server stateless, or make it answer 404 to unknown sessions as the MCP spec requires"),
        Err(e) => Finding::fail(SessionCause::from(e.cause()), format!("{}: the stale-session request failed: {}", server.name, e.describe())).evidence(line),
    }
}
