//! `config.mcp_json`: `docker/.mcp.json`, the project scope of every container, parses
//! and names every server at a URL a container can reach.

use super::server_entry::is_local_host;
use crate::causes::{CommonCause, McpJsonCause as C};
use crate::claude_config::{self, JsonFile, ServerEntry};
use crate::expand::Env;
use crate::facts::Facts;
use crate::model::{Finding, Status};

pub async fn probe(f: &Facts) -> Finding {
    let layout = &f.project.layout;
    let shown = &layout.mcp_json;
    let doc = match &f.project.mcp_json {
        JsonFile::Parsed(doc) => doc,
        JsonFile::Missing => {
            return Finding::fail(C::Missing, format!("{shown} does not exist")).hint(format!(
                "create it: the containers see it as {}/.mcp.json",
                layout.project_mount
            ))
        }
        JsonFile::Unreadable(why) => {
            return Finding::fail(C::Unreadable, format!("{shown} cannot be read: {why}"))
        }
        JsonFile::Empty => return Finding::fail(C::Empty, format!("{shown} is empty")),
        JsonFile::Corrupt(why) => {
            return Finding::fail(C::Corrupt, format!("{shown} does not parse"))
                .evidence(why.clone())
        }
    };
    if !doc.get("mcpServers").is_some_and(|s| s.is_object()) {
        return Finding::fail(C::WrongShape, format!("{shown} has no mcpServers object"));
    }
    let entries = claude_config::server_entries(doc.get("mcpServers"));
    let mut problems = Vec::new();
    // `${VAR}` is expanded where Claude Code runs: in every running agent container
    // (the host's environment when none runs). A variable unset there is sent literally.
    let envs = if entries.iter().any(|(_, e)| e.has_references()) {
        f.running_envs().await
    } else {
        vec![(String::new(), Env::host())]
    };
    for (name, entry) in &entries {
        for (_, env) in &envs {
            for var in entry.expanded(env, &f.project.secrets).1 {
                problems.push((
                    C::UnsetVariable,
                    name.clone(),
                    format!(
                        "{name} refers to ${{{var}}}, which {} does not set: Claude Code sends it literally",
                        env.place
                    ),
                ));
            }
        }
    }
    let entries: Vec<(String, ServerEntry)> = entries
        .into_iter()
        .map(|(n, e)| {
            let used = e.expanded(&envs[0].1, &f.project.secrets).0;
            (n, used)
        })
        .collect();
    let mut auth = Vec::new();
    for server in &f.project.servers {
        let Some((_, entry)) = entries.iter().find(|(n, _)| *n == server.name) else {
            problems.push((
                C::MissingServer,
                server.name.clone(),
                format!("it does not name server {}", server.name),
            ));
            continue;
        };
        if let (false, Some(kind)) = (entry.is_stdio(), entry.kind.as_deref()) {
            if kind != "http" {
                problems.push((
                    C::WrongTransport,
                    server.name.clone(),
                    format!(
                        "{} has type {kind}; Claude Code in the containers needs type http or a stdio entry",
                        server.name
                    ),
                ));
            }
        }
        match entry.parsed_url() {
            // A stdio server of its own, not a proxy: it has no URL to judge.
            None if entry.is_stdio() && entry.url.is_none() => {}
            None => problems.push((
                C::BadUrl,
                server.name.clone(),
                format!("{} has no usable url", server.name),
            )),
            Some(url) if is_local_host(url.host_str().unwrap_or("")) => problems.push((
                C::LocalhostUrl,
                server.name.clone(),
                format!(
                    "{} points at {}, which inside a container is the container itself",
                    server.name,
                    url.host_str().unwrap_or("")
                ),
            )),
            Some(_) => {}
        }
        if sends_key_alone(entry) {
            auth.push((
                C::MissingAuthHeader,
                server.name.clone(),
                format!(
                    "{} sends X-API-Key without Authorization{}",
                    server.name,
                    if entry.is_stdio() {
                        " to the proxy's upstream"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    // Last: a key without Authorization leads only when nothing else is wrong, and is a
    // warning then (it breaks on a server that demands auth, where server.mcp says
    // `unauthorized`).
    problems.extend(auth);
    match problems.first() {
        None => Finding::ok(
            CommonCause::Ok,
            format!(
                "names {}",
                entries
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Some((cause, about, first)) => {
            let mut finding = Finding::fail(*cause, format!("{shown}: {first}"))
                .evidence_all(problems.iter().skip(1).map(|(_, _, p)| p.clone()));
            // A finding about one server names it; one about several names none.
            if problems.iter().all(|(_, s, _)| s == about) {
                finding = finding.about(about);
            }
            match cause {
                C::UnsetVariable => finding.hint("set it where the agents run: docker run -e NAME=value, or compose `environment:` / `env_file:`; or give it a default: ${NAME:-value}"),
                C::MissingAuthHeader => finding
                    .with_status(Status::Warn)
                    .evidence("with a 401 Claude Code falls into OAuth discovery and reports 'Dynamic Client Registration rejected (HTTP 401)'")
                    .hint(format!(
                        "send both headers, as Pipe Dream does: X-API-Key and Authorization: Bearer ... (a proxy: --header Authorization=Bearer ...) in {shown}"
                    )),
                _ => finding.hint(format!("use http://{}:PORT/mcp for every server", layout.host_name)),
            }
        }
    }
}

/// The entry (or a stdio proxy's upstream) sends `X-API-Key` but no `Authorization`.
fn sends_key_alone(entry: &ServerEntry) -> bool {
    entry.header("X-API-Key").is_some() && entry.header("Authorization").is_none()
}
