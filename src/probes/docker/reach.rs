//! `container.reach`: from inside the agent's container, the URL the agent is configured
//! with answers. Uses whatever client the image has, run by the container's one-exec
//! script or, in an image without `sh`, by an exec of its own; either way every value
//! travels as one argv element of a fixed program (never a shell line built from
//! config), and the client's words are read the same way. Each client does what a real
//! MCP client does, and nothing a healthy server would log as a 4xx: it POSTs
//! `initialize` with the MCP headers and the agent's own; a session the server opens for
//! it, pd-doctor ends from the host with a DELETE.

use super::ask::{configured_headers, configured_url, inside, target};
use crate::causes::{CommonCause, ReachCause};
use crate::facts::docker::{self, Container, DockerFacts};
use crate::facts::inside::{self, Limit, Target};
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::{Agent, Server};

pub(crate) enum Answer {
    Status(u16, String),
    Failed(ReachCause, String),
}

fn error_kind(text: &str) -> Option<ReachCause> {
    let t = text.to_lowercase();
    if t.contains("resolve")
        || t.contains("name or service not known")
        || t.contains("name resolution")
        || t.contains("no address associated")
        || t.contains("bad address")
    {
        Some(ReachCause::Dns)
    } else if t.contains("refused") {
        Some(ReachCause::Refused)
    } else if t.contains("timed out") || t.contains("timeout") {
        Some(ReachCause::Timeout)
    } else {
        None
    }
}

pub(crate) fn interpret(client: &str, out: &docker::ExecOutput) -> Answer {
    let code = out.exit_code.unwrap_or(-1);
    match client {
        "curl" => {
            if let Some((body, status)) = out.stdout.rsplit_once("__pd_status__") {
                let body = body.rsplit_once("__pd_session__").map_or(body, |(b, _)| b);
                if let Ok(s) = status.trim().parse::<u16>() {
                    if s > 0 {
                        return Answer::Status(s, body.chars().take(300).collect());
                    }
                }
            }
            match code {
                6 => Answer::Failed(ReachCause::Dns, "curl: could not resolve host".into()),
                7 => Answer::Failed(ReachCause::Refused, "curl: connection refused".into()),
                28 => Answer::Failed(ReachCause::Timeout, "curl: no answer in time".into()),
                _ => Answer::Failed(
                    error_kind(&out.stderr).unwrap_or(ReachCause::Refused),
                    format!("curl exit {code}: {}", out.stderr.trim()),
                ),
            }
        }
        "wget" => {
            let status = out
                .stderr
                .lines()
                .rev()
                .filter_map(|l| l.trim().strip_prefix("HTTP/"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
                .next();
            match status {
                Some(s) => Answer::Status(s, out.stdout.chars().take(300).collect()),
                None => Answer::Failed(
                    error_kind(&out.stderr).unwrap_or(ReachCause::Refused),
                    format!("wget exit {code}: {}", out.stderr.trim()),
                ),
            }
        }
        "bash" => {
            let first = out.stdout.lines().next().unwrap_or("");
            match first
                .strip_prefix("HTTP/")
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
            {
                Some(s) => Answer::Status(s, out.stdout.chars().take(600).collect()),
                None if !out.stderr.trim().is_empty() => Answer::Failed(
                    error_kind(&out.stderr).unwrap_or(ReachCause::Refused),
                    format!("bash /dev/tcp: {}", out.stderr.trim()),
                ),
                None => Answer::Failed(
                    ReachCause::Timeout,
                    "bash /dev/tcp: connected, no answer in time".into(),
                ),
            }
        }
        _ => {
            let mut lines = out.stdout.lines();
            let first = lines.next().unwrap_or("");
            if let Some(s) = first
                .strip_prefix("STATUS ")
                .and_then(|s| s.trim().parse().ok())
            {
                Answer::Status(s, lines.collect::<Vec<_>>().join("\n"))
            } else {
                let kind = match first.strip_prefix("ERR ").unwrap_or("") {
                    "dns" => ReachCause::Dns,
                    "timeout" => ReachCause::Timeout,
                    _ => ReachCause::Refused,
                };
                Answer::Failed(kind, format!("{client}: {}", first.trim()))
            }
        }
    }
}

/// The `Mcp-Session-Id` the server gave the client, as the client said it: only a
/// plausible id (letters, digits and `._~+/=:-`, as the script keeps them; at most 256
/// bytes), never anything else it said. A curl older than 7.84 writes its `-w`
/// variable `%header{...}` as it is: not an id.
pub(crate) fn session_of(client: &str, out: &docker::ExecOutput) -> Option<String> {
    let header = |text: &str| {
        text.lines().find_map(|l| {
            let (name, value) = l.trim().split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("mcp-session-id")
                .then(|| value.trim().to_string())
        })
    };
    let id = match client {
        "curl" => out
            .stdout
            .rsplit_once("__pd_status__")?
            .0
            .rsplit_once("__pd_session__")?
            .1
            .lines()
            .next()
            .map(str::to_string),
        "wget" => header(&out.stderr),
        // Only the answer's head: the lines before the first empty one.
        "bash" => header(
            &out.stdout
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => out
            .stdout
            .lines()
            .take(2)
            .find_map(|l| l.strip_prefix("SESSION "))
            .map(str::to_string),
    }?;
    let id = id.trim();
    let plausible = |b: u8| b.is_ascii_alphanumeric() || b"._~+/=:-".contains(&b);
    (!id.is_empty() && id.len() <= 256 && id.bytes().all(plausible)).then(|| id.to_string())
}

/// Ends the session a client from inside opened, from the host: the URL and the agent's
/// headers, sent to the server's own port (when the URL names another port, the session
/// is left to the server's expiry, and the evidence says so).
async fn end_session(
    f: &Facts,
    server: &Server,
    url: &reqwest::Url,
    headers: Vec<(String, crate::redact::Secret)>,
    id: &str,
) -> String {
    if url.port_or_known_default() != Some(server.port) {
        return format!(
            "the server opened a session; {} is not {}'s port, so it was left to expire",
            crate::redact::display_url(url.as_str()),
            server.name
        );
    }
    let target = crate::facts::mcp::McpTarget {
        url: url.clone(),
        connect: f.connect_addr(server),
        headers,
    };
    match crate::facts::mcp::end_session(&target, id, f.deadline()).await {
        Ok(s) => format!("ended the session it opened: DELETE -> {s}"),
        Err(e) => format!("the session it opened could not be ended: {}", e.describe()),
    }
}

const NO_ANSWER: &str =
    "the server accepts the connection but does not answer, or a firewall drops it";

pub async fn probe(
    f: &Facts,
    d: &DockerFacts,
    c: &Container,
    agent: &Agent,
    server: &Server,
) -> Finding {
    if !c.running {
        return Finding::fail(ReachCause::NotRunning, format!("{} is not running", c.name));
    }
    let configured = configured_url(f, agent, server).await;
    let shown = crate::redact::display_url(&configured);
    let Some(url) = target(&configured) else {
        return Finding::fail(
            ReachCause::Dns,
            format!(
                "{}'s URL for {} is not an http URL: {shown}",
                agent.name, server.name
            ),
        )
        .hint("see config.server_entry");
    };
    let report = inside(f, c).await;
    let index = f.project.servers.iter().position(|s| s.name == server.name);
    let answer = report.and_then(|r| Some((r.reach(index?)?, r.took)));
    // The script takes the first client on PATH without starting it first: one that
    // cannot run (126, 127) sends this check to the per-client path, which finds one
    // that can, as it always did.
    let unusable = answer
        .as_ref()
        .is_some_and(|(out, _)| matches!(out.exit_code, Some(126 | 127)));
    let answer = answer.filter(|_| !unusable);
    // The script's deadline came while this URL's client ran (it was ended there), or the
    // run's deadline has passed while the exec was read: a second exec could not answer
    // in time, and would only leave its client running in the container.
    let out_of_time = tokio::time::Instant::now() >= f.run_deadline();
    if let Some(r) = report.filter(|r| (r.deadline || out_of_time) && answer.is_none() && !unusable)
    {
        let finding = Finding::fail(
            ReachCause::Timeout,
            format!("{} → {shown}: no answer in time", c.name),
        )
        .hint(NO_ANSWER);
        return match inside::ended_evidence(&c.name, &r.ended) {
            Some(line) => finding.evidence(line),
            None => finding,
        };
    }
    let client = match report.and_then(|r| r.client) {
        Some(found) if !unusable => found,
        _ => f.exec_client(c).await,
    };
    let Some(client) = client else {
        return Finding::warn(
            ReachCause::NoClient,
            format!(
                "{} has no curl, wget, python3, node or bash to test with",
                c.name
            ),
        )
        .hint(format!(
            "test by hand from a container on the same network: curl {shown}"
        ));
    };
    let (out, evidence) = match answer {
        Some((out, took)) => (
            out,
            format!(
                "docker exec {} {client} {shown} (one exec for all of its checks, {} ms)",
                c.name,
                took.as_millis()
            ),
        ),
        None => {
            let started = tokio::time::Instant::now();
            let target =
                Target::new(&url).with_headers(&configured_headers(f, agent, server).await);
            let argv = inside::client_argv(client, &target, &Limit::until(f.run_deadline()));
            let env = inside::client_env(&target);
            match docker::exec_env(&d.client, &c.id, argv, env, f.exec_deadline()).await {
                Ok(out) => {
                    let took = started.elapsed().as_millis();
                    (
                        inside::scrub(out),
                        format!("docker exec {} {client} {shown} ({took} ms)", c.name),
                    )
                }
                Err(docker::ExecError::Timeout) => {
                    return Finding::fail(
                        ReachCause::Timeout,
                        format!("{} → {shown}: no answer in time", c.name),
                    )
                }
                Err(e) => return Finding::internal(format!("docker exec in {}: {e}", c.name)),
            }
        }
    };
    let answer = interpret(client, &out);
    let evidence = match (&answer, session_of(client, &out)) {
        (Answer::Status(..), Some(id)) => {
            let ended = end_session(
                f,
                server,
                &url,
                configured_headers(f, agent, server).await,
                &id,
            )
            .await;
            vec![evidence, ended]
        }
        _ => vec![evidence],
    };
    match answer {
        Answer::Status(421, _) => Finding::fail(ReachCause::HostRejected, format!("{shown} answers 421 to Host {}", url.host_str().unwrap_or("")))
            .evidence_all(evidence)
            .hint("the server's DNS-rebinding protection refuses host.docker.internal: add it to its allowed hosts"),
        Answer::Status(403, body) if body.to_lowercase().contains("host") => {
            Finding::fail(ReachCause::HostRejected, format!("{shown} answers 403: the server refuses Host {}", url.host_str().unwrap_or("")))
                .evidence_all(evidence)
                .hint("the server's DNS-rebinding protection refuses host.docker.internal: add it to its allowed hosts")
        }
        Answer::Status(s, _) if s >= 500 => Finding::fail(ReachCause::ServerError, format!("{shown} answers {s} from inside {}", c.name)).evidence_all(evidence),
        Answer::Status(s, _) => Finding::ok(CommonCause::Ok, format!("{} reaches {shown}: HTTP {s}", c.name)).evidence_all(evidence),
        Answer::Failed(cause, detail) => {
            let hint = match cause {
                ReachCause::Dns => format!("{} does not resolve inside {}: add --add-host=host.docker.internal:host-gateway", url.host_str().unwrap_or(""), c.name),
                ReachCause::Refused => format!("nothing answers {shown} from the container: is the server bound to 0.0.0.0, and is the port right? ({})", server.start),
                _ => NO_ANSWER.into(),
            };
            Finding::fail(cause, format!("{} cannot reach {shown}: {}", c.name, cause_text(cause))).evidence_all(evidence).evidence(detail).hint(hint)
        }
    }
}

fn cause_text(cause: ReachCause) -> &'static str {
    match cause {
        ReachCause::Dns => "the host name does not resolve",
        ReachCause::Refused => "connection refused",
        _ => "no answer in time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i64, stdout: &str, stderr: &str) -> docker::ExecOutput {
        docker::ExecOutput {
            exit_code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    fn cause(a: Answer) -> String {
        match a {
            Answer::Status(s, _) => format!("status {s}"),
            Answer::Failed(c, _) => c.to_string(),
        }
    }

    /// The session a client was given, as each says it; nothing else it said.
    #[test]
    fn each_clients_session_is_read_and_only_a_plausible_one() {
        let cases: [(&str, &str, &str, Option<&str>); 9] = [
            (
                "curl",
                "{}\n__pd_session__%header{mcp-session-id}\n__pd_status__200",
                "",
                None,
            ),
            (
                "curl",
                "data: {}\n__pd_session__abc-1\n__pd_status__200",
                "",
                Some("abc-1"),
            ),
            (
                "curl",
                "data: {}\n__pd_session__\n__pd_status__200",
                "",
                None,
            ),
            ("curl", "{}\n__pd_status__200", "", None),
            (
                "wget",
                "",
                "  HTTP/1.1 200 OK\n  mcp-session-id: s-9\n",
                Some("s-9"),
            ),
            ("python3", "STATUS 200\nSESSION s 1\n{}", "", None),
            ("node", "STATUS 200\nSESSION s1\n{}", "", Some("s1")),
            (
                "bash",
                "HTTP/1.0 200 OK\r\nMcp-Session-Id: u-2\r\n\r\nMcp-Session-Id: body",
                "",
                Some("u-2"),
            ),
            (
                "bash",
                "HTTP/1.0 200 OK\r\n\r\nMcp-Session-Id: body",
                "",
                None,
            ),
        ];
        for (client, stdout, stderr, want) in cases {
            assert_eq!(
                session_of(client, &out(0, stdout, stderr)).as_deref(),
                want,
                "{client} {stdout:?}"
            );
        }
        match interpret(
            "curl",
            &out(0, "403 Host\n__pd_session__abc\n__pd_status__403", ""),
        ) {
            Answer::Status(403, body) => assert_eq!(body, "403 Host\n"),
            _ => panic!("not a status"),
        }
    }

    #[test]
    fn each_clients_words_become_the_same_causes() {
        let cases: [(&str, i64, &str, &str, &str); 12] = [
            (
                "curl",
                0,
                "Not Acceptable\n__pd_status__406",
                "",
                "status 406",
            ),
            (
                "curl",
                6,
                "\n__pd_status__000",
                "curl: (6) Could not resolve host",
                "dns",
            ),
            ("curl", 7, "\n__pd_status__000", "", "refused"),
            ("curl", 28, "\n__pd_status__000", "", "timeout"),
            (
                "wget",
                8,
                "",
                "  HTTP/1.1 406 Not Acceptable\n",
                "status 406",
            ),
            (
                "wget",
                4,
                "",
                "wget: unable to resolve host address 'x'",
                "dns",
            ),
            ("python3", 0, "STATUS 421\nmisdirected", "", "status 421"),
            ("python3", 0, "ERR dns", "", "dns"),
            ("node", 0, "ERR timeout", "", "timeout"),
            (
                "bash",
                0,
                "HTTP/1.0 403 Forbidden\r\n\r\nHost header is not allowed",
                "",
                "status 403",
            ),
            (
                "bash",
                1,
                "",
                "bash: connect: Connection refused",
                "refused",
            ),
            (
                "bash",
                1,
                "",
                "bash: host.docker.internal: Name or service not known",
                "dns",
            ),
        ];
        for (client, code, stdout, stderr, want) in cases {
            assert_eq!(
                cause(interpret(client, &out(code, stdout, stderr))),
                want,
                "{client} {code} {stdout:?} {stderr:?}"
            );
        }
    }
}
