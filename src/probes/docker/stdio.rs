//! `container.stdio`: the stdio entry the agent's Claude Code uses, started the way Claude
//! Code starts it: in the agent's own container, as an argument vector, with `${VAR}`
//! expanded in that container's environment and the entry's `env` set, asked
//! `initialize`, `notifications/initialized` and `tools/list` on its stdin, and ended at
//! the deadline. It runs inside the container's one exec (`facts::inside`), beside every
//! other server's; this module says what to run and judges what came back.

use serde_json::Value;

use crate::causes::{Cause, CommonCause, StdioCause as C};
use crate::facts::docker::Container;
use crate::facts::inside::{self, StdioRun};
use crate::facts::Facts;
use crate::model::{Finding, Status};
use crate::project::{Agent, Server};

use super::ask::{in_use, request};

pub async fn probe(f: &Facts, c: &Container, agent: &Agent, server: &Server) -> Finding {
    let Some(entry) = in_use(f, agent, server).await else {
        return Finding::skip(format!(
            "{}'s entry for {} is not a stdio entry: container.reach tries its URL",
            agent.name, server.name
        ));
    };
    if !c.running {
        return Finding::skip(format!("{} is not running", c.name));
    }
    let shown = entry
        .stdio
        .as_ref()
        .map(|s| s.display())
        .unwrap_or_default();
    let report = match f.inside(c, || request(f, c)).await {
        Some(Ok(report)) => report,
        Some(Err(why)) => {
            return Finding::skip(format!(
                "cannot start it in {}: the one exec did not run ({why})",
                c.name
            ))
        }
        None => return Finding::skip("needs the Docker engine checks"),
    };
    let index = f.project.servers.iter().position(|s| s.name == server.name);
    let Some(run) = index.and_then(|i| report.stdio.get(i)) else {
        return Finding::internal(format!("no stdio run for server {}", server.name));
    };
    let finding = judge(run, &report.ended, &server.name, &c.name)
        .evidence(format!("ran in {}: {shown}", c.name));
    let waits = crate::facts::claude_waits(c).as_secs();
    let cut_off = finding.cause == Cause::from(C::Timeout) && retrying(&run.log()).is_none();
    if !report.slow {
        // Cut off at the user's deadline while waiting (not retrying): Claude Code, which
        // waits longer, may still get its answer.
        if cut_off && f.keeps_user_deadline() {
            return finding.evidence(format!(
                "cut off at the --timeout given; Claude Code waits {waits} s for it in {}: run again with a longer --timeout, or without one, to tell a slow server from a dead one",
                c.name
            ));
        }
        return finding;
    }
    if f.keeps_user_deadline() {
        // Ended on time at the user's deadline while still at work: slow, not hung. A
        // proxy between retries sleeps, and is judged by what it was retrying.
        if !cut_off {
            return finding;
        }
        return Finding::warn(
            C::SlowStart,
            format!(
                "{}'s stdio command was still starting at the deadline in {}: its processes were using CPU, a slow start, not a hung one",
                server.name, c.name
            ),
        )
        .evidence_all(finding.evidence)
        .hint(format!(
            "run again with a longer --timeout (Claude Code waits {waits} s for it in {}), or without one: pd-doctor then waits for a slow start",
            c.name
        ));
    }
    finding.evidence(format!(
        "a slow start, not a hung one: at the deadline the exec's processes were still at work, so it waited for them, up to what Claude Code waits in {} ({} s); {} ms in all",
        c.name,
        waits,
        report.took.as_millis()
    ))
}

/// What the answers of one run say, most telling first; a failure also names what was
/// ended at the deadline.
pub fn judge(run: &StdioRun, ended: &[String], server: &str, container: &str) -> Finding {
    let finding = answers_say(run, server, container);
    match inside::ended_evidence(container, ended) {
        Some(line) if finding.status != Status::Ok => finding.evidence(line),
        _ => finding,
    }
}

fn answers_say(run: &StdioRun, server: &str, container: &str) -> Finding {
    if let Some(missing) = &run.missing {
        return Finding::fail(
            C::CommandNotFound,
            format!("{server}'s stdio command cannot start in {container}: {missing} is not there"),
        )
        .hint(format!(
            "install it in the image or fix the path, then rebuild and recreate {container}"
        ));
    }
    let answers: Vec<Value> = run
        .stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("jsonrpc").is_some())
        .collect();
    let answer = |id: i64| {
        answers
            .iter()
            .find(|v| v.get("id") == Some(&Value::from(id)))
    };
    let log = run.log();
    let with_log = |finding: Finding| {
        finding.evidence_all(
            log.iter()
                .rev()
                .take(5)
                .rev()
                .map(|l| format!("stderr: {l}")),
        )
    };
    for id in [1, 2] {
        if let Some(error) = answer(id).and_then(|a| a.get("error")) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            let method = if id == 1 { "initialize" } else { "tools/list" };
            return with_log(Finding::fail(
                C::RpcError,
                format!("{server}'s stdio server answered {method} with an error"),
            ))
            .evidence(format!("error: {}", crate::printable::line(message)))
            .hint("the upstream server refused or could not be reached: see server.mcp and container.reach");
        }
    }
    if let (Some(init), Some(list)) = (answer(1), answer(2)) {
        let info = init.pointer("/result/serverInfo");
        let name = info
            .and_then(|i| i.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let version = info
            .and_then(|i| i.get("version"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let tools = list
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "answered initialize ({} {}) and tools/list ({tools} tools) in {container}",
                crate::printable::line(name),
                crate::printable::line(version)
            ),
        );
    }
    if !run.stdout.is_empty() && answers.is_empty() {
        return with_log(Finding::fail(
            C::NotMcp,
            format!("{server}'s stdio command printed something other than JSON-RPC"),
        ))
        .evidence(format!(
            "stdout: {}",
            crate::facts::inside::clean(&run.stdout[0], 200)
        ))
        .hint("stdout is the MCP channel: the program must print nothing else there");
    }
    if let Some(status) = run.exit {
        // The line that says why, when the program is Python's: ModuleNotFoundError, ...
        let why = log
            .iter()
            .rev()
            .find(|l| l.contains("Error") || l.contains("error"))
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        return with_log(Finding::fail(
            C::Exited,
            format!("{server}'s stdio command ended with status {status} before answering{why}"),
        ))
        .hint(if why.contains("ModuleNotFoundError") {
            format!("the image lacks a module the command needs: install it in the Dockerfile, rebuild, and recreate {container}")
        } else {
            "its log above says why; run the same command in the container to see it whole".to_string()
        });
    }
    let waiting = if answer(1).is_some() {
        "tools/list"
    } else {
        "initialize"
    };
    let message = match retrying(&log) {
        Some(doing) => {
            format!("{server}'s stdio command did not answer {waiting} in time: {doing}")
        }
        None => format!("{server}'s stdio command did not answer {waiting} in time"),
    };
    with_log(Finding::fail(C::Timeout, message))
        .hint("a proxy retries an upstream that fails: see server.mcp and container.reach for why")
}

/// What a stdio proxy was doing when it was ended, from the last retry line of its log:
/// Pipe Dream's proxy logs "Retry 2/3 after error: E" (2 of 3 retries, 4 attempts), the
/// lab's "attempt 2/4 failed (E); again in 2s"; either sleeps before the next attempt.
fn retrying(log: &[&str]) -> Option<String> {
    log.iter().rev().find_map(|line| {
        let (done, total, error) = if let Some(at) = line.find("Retry ") {
            let rest = &line[at + "Retry ".len()..];
            let (count, error) = rest.split_once(" after error: ")?;
            let (n, retries) = count.split_once('/')?;
            let (n, retries): (u32, u32) = (n.parse().ok()?, retries.parse().ok()?);
            (n, retries.checked_add(1)?, error.to_string())
        } else {
            let rest = &line[line.find("attempt ")? + "attempt ".len()..];
            let (count, rest) = rest.split_once(" failed (")?;
            let (n, total) = count.split_once('/')?;
            // Only a line that says when it tries again: the last attempt says no such thing.
            let (error, _) = rest.rsplit_once("); again in ")?;
            (n.parse().ok()?, total.parse().ok()?, error.to_string())
        };
        let next = done.checked_add(1).filter(|next| *next <= total)?;
        Some(format!(
            "the proxy was retrying a failing upstream (attempt {next} of {total} next; the last one: {error})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_cut_off_between_retries_says_so() {
        let real = [
            "2026-02-09 10:00:01 [mcp-proxy] INFO: Retry 1/3 after error: [Errno 111] Connection refused",
            "2026-02-09 10:00:02 [mcp-proxy] INFO: Retry 2/3 after error: [Errno 111] Connection refused",
        ];
        assert_eq!(
            retrying(&real).as_deref(),
            Some("the proxy was retrying a failing upstream (attempt 3 of 4 next; the last one: [Errno 111] Connection refused)")
        );
        let lab = ["10:00:01 mcp_proxy: attempt 1/4 failed (ReadTimeout: timed out); again in 1s"];
        assert_eq!(
            retrying(&lab).as_deref(),
            Some("the proxy was retrying a failing upstream (attempt 2 of 4 next; the last one: ReadTimeout: timed out)")
        );
        assert_eq!(retrying(&["starting"]), None);
        assert_eq!(retrying(&["Retry x/y after error: z"]), None);
        // Hostile or final lines: no overflow, no attempt past the last.
        assert_eq!(retrying(&["Retry 1/4294967295 after error: x"]), None);
        assert_eq!(retrying(&["Retry 4294967295/3 after error: x"]), None);
        assert_eq!(retrying(&["attempt 4/4 failed (E)"]), None);
    }
    use crate::claude_config::ServerEntry;
    use crate::probes::docker::ask::argv;

    fn run(stdout: &[&str], stderr: &[&str], exit: Option<i64>) -> StdioRun {
        StdioRun {
            stdout: stdout.iter().map(|s| s.to_string()).collect(),
            stderr: stderr.iter().map(|s| s.to_string()).collect(),
            exit,
            ..Default::default()
        }
    }

    fn cause(f: &Finding) -> String {
        f.cause.to_string()
    }

    #[test]
    fn answers_are_judged_by_what_they_say() {
        let init =
            r#"{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"qms","version":"1"}}}"#;
        let list = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"},{"name":"b"}]}}"#;
        let ok = judge(&run(&[init, list], &[], None), &[], "qms", "agent-qa");
        assert_eq!(cause(&ok), "ok");
        assert!(ok.message.contains("2 tools"), "{}", ok.message);
        let err = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Remote server unreachable after 4 attempts: HTTP 401"},"id":1}"#;
        let refused = judge(&run(&[err], &[], None), &[], "qms", "agent-qa");
        assert_eq!(cause(&refused), "rpc-error");
        assert!(refused.evidence.iter().any(|e| e.contains("HTTP 401")));
        let module = judge(
            &run(
                &[],
                &[
                    "Traceback (most recent call last):",
                    "ModuleNotFoundError: No module named 'httpx'",
                ],
                Some(1),
            ),
            &[],
            "qms",
            "agent-qa",
        );
        assert_eq!(cause(&module), "exited");
        assert!(module.message.contains("No module named 'httpx'"));
        let noise = judge(&run(&["hello"], &[], Some(0)), &[], "qms", "c");
        assert_eq!(cause(&noise), "not-mcp");
        let slow = judge(
            &run(&[init], &[], None),
            &["python3 (pid 7)".into()],
            "qms",
            "c",
        );
        assert_eq!(cause(&slow), "timeout");
        assert!(slow.message.contains("tools/list"));
        assert!(slow.evidence.iter().any(|e| e.contains("python3 (pid 7)")));
        let missing = StdioRun {
            missing: Some("/proxy/mcp_proxy.py".into()),
            ..Default::default()
        };
        assert_eq!(
            cause(&judge(&missing, &[], "qms", "c")),
            "command-not-found"
        );
    }

    #[test]
    fn the_argv_is_the_entry_with_its_env_first() {
        let entry = ServerEntry::from_value(&serde_json::json!({
            "command": "python3",
            "args": ["/proxy/mcp_proxy.py", "http://h:1/mcp", "--header", "X-API-Key=k"],
            "env": {"A": "1", "bad name": "x"}
        }));
        assert_eq!(
            argv(&entry),
            [
                "env",
                "A=1",
                "python3",
                "/proxy/mcp_proxy.py",
                "http://h:1/mcp",
                "--header",
                "X-API-Key=k"
            ]
        );
        assert_eq!(entry.url.as_deref(), Some("http://h:1/mcp"));
        assert_eq!(entry.header("x-api-key").map(|s| s.expose()), Some("k"));
        let shown = entry.stdio.as_ref().unwrap().display();
        assert!(!shown.contains('k') || !shown.contains("=k"), "{shown}");
    }
}
