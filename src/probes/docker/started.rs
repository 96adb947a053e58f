//! `container.config`: how the agent's container was started. Its working directory
//! must be the project mount (Claude Code reads `.mcp.json` from where it starts), its
//! `MCP_TIMEOUT` must outlast the stdio proxy's own retries, and one Claude Code must run
//! in it, not two.

use std::time::Duration;

use crate::causes::{CommonCause, ContainerConfigCause as C};
use crate::claude_config::Stdio;
use crate::facts::docker::Container;
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::Agent;
use crate::{paths, safefs};

pub async fn probe(f: &Facts, c: &Container, agent: &Agent) -> Finding {
    let mount = &f.project.layout.project_mount;
    let workdir = match c.working_dir.as_str() {
        "" => "/",
        dir => dir,
    };
    if workdir.trim_end_matches('/') != mount.trim_end_matches('/') {
        return Finding::fail(
            C::WrongWorkdir,
            format!(
                "{} starts in {}, not {mount}: Claude Code there never finds {mount}/.mcp.json",
                c.name,
                crate::printable::line(workdir)
            ),
        )
        .evidence(
            "project-scope MCP servers come from .mcp.json in the folder Claude Code starts in",
        )
        .hint(format!(
            "recreate it with -w {mount} (working_dir: {mount} in compose; the Hub sets it)"
        ));
    }
    let mut warnings = Vec::new();
    if let Some(pids) = super::ask::inside(f, c)
        .await
        .and_then(|r| r.claude.as_ref())
    {
        if pids.len() > 1 {
            let shown: Vec<String> = pids.iter().map(u32::to_string).collect();
            warnings.push(
                Finding::warn(
                    C::TwoClients,
                    format!(
                        "{} Claude Code processes run in {} (pids {}): two sessions write one config dir",
                        pids.len(),
                        c.name,
                        shown.join(", ")
                    ),
                )
                .hint(format!(
                    "run one Claude Code per container: end the extra one (docker exec {} kill PID)",
                    c.name
                )),
            );
        }
    }
    if let Some(short) = mcp_timeout_short(f, c, agent).await {
        warnings.push(short);
    }
    if let Some(missing) = no_debug_dir(f, c, agent).await {
        // The least of them: the others lead when there are any.
        warnings.insert(0, missing);
    }
    if let Some(first) = warnings.pop() {
        // The other warnings travel as evidence of the first.
        return warnings
            .into_iter()
            .fold(first, |w, other| w.evidence(other.message));
    }
    Finding::ok(CommonCause::Ok, format!("{} starts in {mount}", c.name))
}

/// `debug/` missing from the config dir of a container whose entrypoint has run:
/// Claude Code crashes with ENOENT without it. Read on the host through the config
/// mount's source (a link there is not followed, only seen), else from the one exec.
async fn no_debug_dir(f: &Facts, c: &Container, agent: &Agent) -> Option<Finding> {
    if !c.running || super::ask::bypassed(c) {
        return None;
    }
    let report = super::ask::inside(f, c).await;
    // Still configuring: the entrypoint may not have made it yet.
    let script = c.entrypoint.first().filter(|e| e.ends_with(".sh"));
    let pid1 = report.and_then(|r| r.pid1.as_deref());
    if script.is_some_and(|s| pid1.is_some_and(|p| p.contains(s.as_str()))) {
        return None;
    }
    let mount = &f.project.layout.config_mount;
    let (present, seen) = match c.mount_at(mount) {
        Some(m) if paths::same_folder(&m.source, &agent.config_dir) => {
            let debug = agent.config_dir.join("debug");
            let present = safefs::state(&debug)
                .is_some_and(|s| matches!(s.kind, safefs::Kind::Dir | safefs::Kind::Link));
            (present, f.project.show(&debug))
        }
        _ => (report?.debug_dir?, "the container's config dir".to_string()),
    };
    if present {
        return None;
    }
    Some(
        Finding::warn(
            C::NoDebugDir,
            format!(
                "{}'s config dir has no debug/ folder: Claude Code crashes with ENOENT without it",
                c.name
            ),
        )
        .evidence(format!("no folder debug/ in {seen} ({mount} in the container)"))
        .hint(format!(
            "docker exec {} mkdir -p {mount}/debug, and make the entrypoint end its clearing with `mkdir -p {mount}/debug`",
            c.name
        )),
    )
}

/// `MCP_TIMEOUT` (or Claude Code's default) against the longest a stdio proxy in use can
/// take to give up on its upstream: a shorter one makes Claude Code drop the server
/// before the proxy says why.
async fn mcp_timeout_short(f: &Facts, c: &Container, agent: &Agent) -> Option<Finding> {
    let mut slowest: Option<(String, GiveUp)> = None;
    for server in &f.project.servers {
        let Some(entry) = super::ask::in_use(f, agent, server).await else {
            continue;
        };
        let Some(give_up) = entry.stdio.as_ref().and_then(GiveUp::of) else {
            continue;
        };
        if slowest
            .as_ref()
            .is_none_or(|(_, s)| give_up.total() > s.total())
        {
            slowest = Some((server.name.clone(), give_up));
        }
    }
    let (server, give_up) = slowest?;
    let set = c.env("MCP_TIMEOUT");
    let waits = crate::facts::claude_waits(c);
    if waits >= give_up.total() {
        return None;
    }
    let said = match set {
        Some(v) => format!("MCP_TIMEOUT={}", crate::printable::line(v)),
        None => format!(
            "MCP_TIMEOUT is unset (Claude Code waits {} s)",
            crate::facts::CLAUDE_DEFAULT_MCP_TIMEOUT.as_secs()
        ),
    };
    Some(
        Finding::warn(
            C::McpTimeoutShort,
            format!(
                "{said} in {}, but {server}'s proxy can take {} s to give up",
                c.name,
                give_up.total().as_secs()
            ),
        )
        .evidence(give_up.to_string())
        .evidence("Claude Code drops the server first, and the user sees 'MCP failed' without the proxy's reason")
        .hint(format!(
            "recreate it with -e MCP_TIMEOUT={} (the Hub sets 60000)",
            (give_up.total().as_millis() as u64).div_ceil(10_000) * 10_000 + 10_000
        )),
    )
}

/// How long the stdio proxy (`mcp_proxy.py <url> [--retries N] [--timeout MS]`) tries
/// before it answers with an error: every try may take the timeout, and between tries
/// it backs off 1, 2, 4, then 8 s at most (the proxy's own `min(2 ** attempt, 8)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiveUp {
    pub retries: u32,
    pub timeout: Duration,
}

impl GiveUp {
    /// The proxy's defaults: 3 retries, 10 000 ms.
    const DEFAULT: GiveUp = GiveUp {
        retries: 3,
        timeout: Duration::from_secs(10),
    };
    /// More retries than this are counted as this many (a hostile number stays small).
    const MAX_RETRIES: u32 = 100;

    /// From a stdio entry, when it is the proxy; `None` for any other program.
    pub fn of(stdio: &Stdio) -> Option<GiveUp> {
        let args: Vec<&str> = stdio.args.iter().map(|a| a.expose()).collect();
        if !args.iter().any(|a| a.ends_with("mcp_proxy.py")) {
            return None;
        }
        let mut give_up = GiveUp::DEFAULT;
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
                _ => (*word, None),
            };
            let value = match flag {
                "--retries" | "--timeout" => inline.or_else(|| words.next().copied()),
                _ => continue,
            };
            let Some(number) = value.and_then(|v| v.parse::<u64>().ok()) else {
                continue;
            };
            match flag {
                "--retries" => give_up.retries = number.min(u64::from(Self::MAX_RETRIES)) as u32,
                _ => give_up.timeout = Duration::from_millis(number.min(3_600_000)),
            }
        }
        Some(give_up)
    }

    fn backoff(&self) -> Duration {
        (0..self.retries)
            .map(|attempt| Duration::from_secs(2u64.pow(attempt.min(3))))
            .sum()
    }

    pub fn total(&self) -> Duration {
        self.timeout * (self.retries + 1) + self.backoff()
    }
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tries of {} ms each, and {} s of back-off between them",
            self.retries + 1,
            self.timeout.as_millis(),
            self.backoff().as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;

    fn proxy(args: &[&str]) -> Stdio {
        Stdio {
            command: "python3".into(),
            args: args.iter().map(|a| Secret::new(*a)).collect(),
            env: Default::default(),
        }
    }

    #[test]
    fn the_proxy_gives_up_after_its_tries_and_back_off() {
        let defaults = GiveUp::of(&proxy(&["/proxy/mcp_proxy.py", "http://h:8000/mcp"])).unwrap();
        assert_eq!(defaults.total(), Duration::from_secs(4 * 10 + 1 + 2 + 4));
        let hub = GiveUp::of(&proxy(&[
            "/proxy/mcp_proxy.py",
            "http://h:8000/mcp",
            "--retries",
            "3",
            "--timeout",
            "10000",
            "--header",
            "X-API-Key=k",
        ]))
        .unwrap();
        assert_eq!(hub, defaults);
        let quick = GiveUp::of(&proxy(&[
            "/proxy/mcp_proxy.py",
            "u",
            "--retries=0",
            "--timeout=2000",
        ]))
        .unwrap();
        assert_eq!(quick.total(), Duration::from_secs(2));
        let many = GiveUp::of(&proxy(&[
            "/proxy/mcp_proxy.py",
            "u",
            "--retries",
            "99999999999",
        ]))
        .unwrap();
        assert_eq!(many.retries, GiveUp::MAX_RETRIES);
        assert_eq!(many.backoff(), Duration::from_secs(1 + 2 + 4 + 8 * 97));
        assert_eq!(GiveUp::of(&proxy(&["server.js"])), None);
    }
}
