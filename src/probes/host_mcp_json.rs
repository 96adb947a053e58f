//! `config.host_mcp_json`: the host's own `.mcp.json` (the project root's, which Claude
//! Code on the host reads; the containers see the layout's file over it) reaches the
//! servers over HTTP. A stdio entry there that is no proxy starts a server of its own: a
//! second qms next to the one on :8000 that the agents use.

use crate::causes::{CommonCause, HostMcpJsonCause};
use crate::claude_config::{self, JsonFile};
use crate::facts::Facts;
use crate::model::Finding;

pub fn probe(f: &Facts) -> Finding {
    let path = f.project.path(".mcp.json");
    let doc = match claude_config::read_json(&path) {
        JsonFile::Parsed(doc) => doc,
        JsonFile::Missing => {
            return Finding::ok(
                CommonCause::Ok,
                "the host has no .mcp.json in the project root: Claude Code on the host starts no server of its own",
            )
        }
        JsonFile::Empty => return Finding::skip("the host's .mcp.json is empty"),
        JsonFile::Unreadable(why) => {
            return Finding::skip(format!("the host's .mcp.json cannot be read: {why}"))
        }
        JsonFile::Corrupt(_) => return Finding::skip("the host's .mcp.json does not parse"),
    };
    let entries = claude_config::server_entries(doc.get("mcpServers"));
    let mut own = Vec::new();
    for server in &f.project.servers {
        let Some((_, entry)) = entries.iter().find(|(n, _)| *n == server.name) else {
            continue;
        };
        // A proxy to an http(s) URL is a client, not a second server.
        if let Some(stdio) = entry.stdio.as_ref().filter(|_| entry.url.is_none()) {
            own.push((server, stdio.command.clone(), stdio.args.len()));
        }
    }
    let Some((first, _, _)) = own.first() else {
        return Finding::ok(
            CommonCause::Ok,
            "the host's .mcp.json runs no project server as a program of its own",
        );
    };
    let names: Vec<&str> = own.iter().map(|(s, _, _)| s.name.as_str()).collect();
    let finding = Finding::warn(
        HostMcpJsonCause::SecondServer,
        format!(
            "the host's .mcp.json runs {} as a stdio program: Claude Code on the host starts a second server instead of using the one the agents use",
            names.join(", ")
        ),
    );
    // A finding about one server names it.
    let finding = match names.as_slice() {
        [one] => finding.about(one),
        _ => finding,
    };
    finding
    .evidence_all(own.iter().map(|(s, command, args)| {
        format!(
            "{}: command {} with {args} argument(s), not http://localhost:{}{}",
            s.name,
            crate::printable::line(command),
            s.port,
            s.path
        )
    }))
    .evidence("two servers on one QMS tree: what the host's Claude Code does bypasses the identities and locks of the server on the port")
    .hint(format!(
        "in .mcp.json at the project root, make it {{\"type\": \"http\", \"url\": \"http://localhost:{}{}\"}}",
        first.port, first.path
    ))
}
