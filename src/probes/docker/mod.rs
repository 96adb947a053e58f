//! The container checks (primer 8.2 to 8.4), read from the engine facts gathered once
//! per run. What they need from inside a running container (PID 1, how the host name
//! resolves, the entrypoint's digest, every server's answer) comes from one `docker exec`
//! per container ([`Facts::inside`]); where the image has no `sh`, each check falls back
//! to execs of its own, at most one per question.

use std::time::SystemTime;

use crate::causes::{
    CommonCause, DuplicateCause, EntrypointCause, HostGatewayCause, IdentityCause, ImageCause,
    MountsCause, ReachCause, StaleCause, StateCause, TmuxCause,
};
use crate::facts::docker::{self, Container, DockerFacts};
use crate::facts::inside;
use crate::facts::Facts;
use crate::model::{Finding, Status, Subject};
use crate::paths;
use crate::plan::{Action, FixPlan};
use crate::probe_kind::ProbeKind as K;
use crate::project::Agent;
use crate::safefs;
use ask::{bypassed, entrypoint_script, image_files, image_reader, inside, ImageFile};

mod anthropic;
mod ask;
pub(crate) mod destroys;
pub(crate) mod network;
pub(crate) mod reach;
pub(crate) mod started;
pub(crate) mod stdio;

pub async fn probe(f: &Facts, kind: K, subject: &Subject) -> Finding {
    let d = match f.docker().await {
        Ok(d) => d,
        Err(e) if kind == K::DockerEngine => {
            return Finding::fail(e.cause, e.message.clone()).hint(e.hint.clone())
        }
        Err(_) => return Finding::skip("needs the Docker engine checks"),
    };
    let agent = subject.agent.as_deref().and_then(|n| f.project.agent(n));
    let server = subject.server.as_deref().and_then(|n| f.project.server(n));
    match (kind, agent, server) {
        (K::DockerEngine, _, _) => Finding::ok(
            CommonCause::Ok,
            format!(
                "Docker {} (API {}) at {}",
                d.engine.version, d.engine.api, d.engine.endpoint
            ),
        ),
        (K::ContainersStale, _, _) => stale(d),
        (K::ContainerStdio, Some(a), Some(s)) => match main_container(d, a) {
            Some(c) => stdio::probe(f, c, a, s).await,
            None => Finding::skip(format!("agent {} has no container", a.name)),
        },
        (K::ContainerReach, Some(a), Some(s)) => match main_container(d, a) {
            Some(c) => match network::no_network(c, ReachCause::NoNetwork) {
                Some(none) => none,
                None => reach::probe(f, d, c, a, s).await,
            },
            None => Finding::skip(format!("agent {} has no container", a.name)),
        },
        (K::ContainersDuplicate, Some(a), _) => duplicate(d, a),
        (_, Some(a), _) => {
            let Some(c) = main_container(d, a) else {
                return if kind == K::ContainerState {
                    Finding::warn(
                        StateCause::Missing,
                        format!("no container serves agent {}", a.name),
                    )
                    .hint(format!(
                        "start it with the project's script; pd-doctor looks for {}{}",
                        f.project.layout.container_prefix, a.name
                    ))
                } else {
                    Finding::skip(format!("agent {} has no container", a.name))
                };
            };
            match kind {
                K::ContainerState => state(f, d, c).await,
                K::ContainerEntrypoint => entrypoint(f, d, c).await,
                K::ContainerHostGateway => host_gateway(f, d, c).await,
                K::ContainerImage => image(f, d, c).await,
                K::ContainerMounts => mounts(f, c, a).await,
                K::ContainerIdentity => identity(f, c, a),
                K::ContainerConfig => started::probe(f, c, a).await,
                K::ContainerAnthropic => anthropic::probe(f, c).await,
                K::ContainerSession => session(f, c).await,
                _ => Finding::internal(format!("unknown container probe {}", kind.name())),
            }
        }
        _ => Finding::internal(format!(
            "probe {} got a subject it cannot handle: {subject:?}",
            kind.name()
        )),
    }
}

/// `QMS_USER` names the agent the container serves: the stdio proxy sends it to the QMS
/// server as `X-QMS-Identity`, and the server trusts it.
fn identity(f: &Facts, c: &Container, agent: &Agent) -> Finding {
    match c.env.iter().find(|(k, _)| k == "QMS_USER").map(|(_, v)| v) {
        Some(user) if *user == agent.name => match restarted_in_lock(c, f.project.identity_lock) {
            Some(gap) => lock_window(c, agent, gap, f.project.identity_lock),
            None => Finding::ok(
                CommonCause::Ok,
                format!("QMS_USER={user} in {}", c.name),
            ),
        },
        Some(user) => Finding::fail(
            IdentityCause::WrongIdentity,
            format!(
                "{} serves agent {} but its QMS_USER is {}",
                c.name,
                agent.name,
                crate::printable::line(user)
            ),
        )
        .evidence("the proxy sends QMS_USER as X-QMS-Identity: the agent acts as someone else on the QMS server")
        .hint(format!(
            "recreate the container with -e QMS_USER={} (the Hub sets it from the agent's name)",
            agent.name
        )),
        None => Finding::warn(
            IdentityCause::Missing,
            format!("{} has no QMS_USER", c.name),
        )
        .evidence("without it the proxy sends no X-QMS-Identity, and the server takes the client's word")
        .hint(format!("recreate the container with -e QMS_USER={}", agent.name)),
    }
}

/// How soon after its last stop the container started again, when that was inside the
/// QMS server's identity lock (`lock`); `None` when it never stopped, or not that soon.
pub fn restarted_in_lock(c: &Container, lock: std::time::Duration) -> Option<std::time::Duration> {
    let started = humantime::parse_rfc3339(&c.started_at).ok()?;
    // A container that never stopped has the zero time, which no SystemTime holds.
    let stopped = humantime::parse_rfc3339(&c.finished_at).ok()?;
    let gap = started.duration_since(stopped).ok()?;
    (c.running && gap < lock).then_some(gap)
}

/// The QMS server holds an agent's identity for the instance that had it until `lock`
/// after its container stops; a container started again before then finds its identity
/// taken, and its proxies' first requests as the agent refused ("IDENTITY LOCKED").
fn lock_window(
    c: &Container,
    agent: &Agent,
    gap: std::time::Duration,
    lock: std::time::Duration,
) -> Finding {
    let show = crate::printable::duration;
    let left = humantime::parse_rfc3339(&c.finished_at)
        .ok()
        .and_then(|stopped| stopped.checked_add(lock))
        .and_then(|ends| ends.duration_since(std::time::SystemTime::now()).ok());
    let now = match left {
        Some(left) => format!("the lock holds for {} more", show(left)),
        None => "the lock has ended since; a Claude Code started inside it may still hold the refused connection".into(),
    };
    Finding::warn(
        IdentityCause::LockWindow,
        format!(
            "{} started again {} after it stopped, inside the {} the QMS server keeps {}'s identity locked: its first MCP requests as {} may have been refused (IDENTITY LOCKED)",
            c.name,
            show(gap),
            show(lock),
            agent.name,
            agent.name
        ),
    )
    .evidence(format!(
        "stopped {}, started {}",
        crate::printable::line(&c.finished_at),
        crate::printable::line(&c.started_at)
    ))
    .evidence(now)
    .hint(format!(
        "leave an agent stopped for {} before starting it again (pd-doctor --fix --force waits for it); if its Claude Code shows a server failed, start Claude Code again in its session once the lock has ended",
        show(lock)
    ))
}

/// The size, columns and rows, the Agent Hub starts the session at (`-x 120 -y 30`).
const PANE: (u32, u32) = (120, 30);

/// Claude Code runs in the layout's tmux session: a running container with no such
/// session has no agent in it (the Hub calls this STALE).
async fn session(f: &Facts, c: &Container) -> Finding {
    let name = &f.project.layout.session;
    if !c.running {
        return Finding::skip(format!("{} is not running", c.name));
    }
    match has_session(f, c).await {
        Some(true) => match inside(f, c).await.and_then(|r| r.pane) {
            Some((w, h)) if w < PANE.0 || h < PANE.1 => Finding::warn(
                TmuxCause::PaneTooSmall,
                format!(
                    "tmux session {name} in {} is {w}x{h}, smaller than the {}x{} the Agent Hub starts it at",
                    c.name, PANE.0, PANE.1
                ),
            )
            .evidence("a session started without -x 120 -y 30 renders Claude Code at tmux's default 80x24")
            .hint(format!(
                "docker exec {} tmux resize-window -t {name} -x {} -y {}, or start the session again with -x {} -y {} (or restart the agent from the Hub)",
                c.name, PANE.0, PANE.1, PANE.0, PANE.1
            )),
            _ => Finding::ok(
                CommonCause::Ok,
                format!("tmux session {name} runs in {}", c.name),
            ),
        },
        Some(false) => Finding::warn(
            TmuxCause::NoSession,
            format!("{} runs, but no tmux session {name} is in it: no Claude Code runs there", c.name),
        )
        .evidence("PID 1 is `sleep infinity`: the container outlives the person quitting Claude")
        .hint(format!(
            "start it again: docker exec {} tmux new-session -d -s {name} -x 120 -y 30 claude (or restart the agent from the Hub)",
            c.name
        )),
        None => Finding::skip(format!(
            "cannot tell: {} has no tmux, or its one exec did not run",
            c.name
        )),
    }
}

/// Whether the layout's tmux session runs in `c`, as its one exec saw it; `None` when
/// that cannot be told (not running, no tmux, the exec did not run).
pub(crate) async fn has_session(f: &Facts, c: &Container) -> Option<bool> {
    inside(f, c).await.and_then(|r| r.session)
}

/// The container the agent works in: a running one first, then the most recently started.
pub fn main_container<'a>(d: &'a DockerFacts, agent: &Agent) -> Option<&'a Container> {
    d.container_of(&agent.name)
}

async fn state(f: &Facts, d: &DockerFacts, c: &Container) -> Finding {
    if c.restarting {
        return Finding::fail(
            StateCause::Restarting,
            format!("{} keeps restarting (exit code {})", c.name, c.exit_code),
        )
        .evidence_all(docker::last_log_lines(&d.client, &c.id, 5).await)
        .hint(format!("read why: docker logs {}", c.name));
    }
    if !c.running {
        let oom = if c.oom_killed {
            ", killed for lack of memory"
        } else {
            ""
        };
        if c.status == "created" {
            return Finding::fail(
                StateCause::Stopped,
                format!("{} was created but never started", c.name),
            )
            .hint(format!(
                "start it (docker start {}) or remove it and run the project's script",
                c.name
            ));
        }
        return Finding::fail(StateCause::Stopped, format!("{} is {} (exit code {}{oom})", c.name, c.status, c.exit_code))
            .evidence_all(docker::last_log_lines(&d.client, &c.id, 5).await.into_iter().map(|l| format!("log: {l}")))
            .hint(format!("the entrypoint probably died before configuring MCP: docker logs {}; then start it again", c.name));
    }
    // PID 1 still the entrypoint script: it has not exec'd the program yet.
    let script = c.entrypoint.first().filter(|e| e.ends_with(".sh"));
    if let Some(script) = script {
        if pid1(f, d, c)
            .await
            .is_some_and(|cmd| cmd.contains(script.as_str()))
        {
            return Finding::warn(StateCause::Configuring, format!("{} is running, but PID 1 is still {script}", c.name))
                .evidence("the entrypoint has not exec'd Claude Code yet: it is still waiting for servers or configuring")
                .hint("wait for it; a `docker exec ... claude` now races the entrypoint (primer 7.3)");
        }
    }
    Finding::ok(
        CommonCause::Ok,
        format!("{} is running (found by {})", c.name, c.found_by),
    )
}

/// PID 1's command line in a running container, its arguments joined by spaces.
async fn pid1(f: &Facts, d: &DockerFacts, c: &Container) -> Option<String> {
    if let Some(cmd) = inside(f, c).await.and_then(|r| r.pid1.clone()) {
        return Some(cmd);
    }
    let argv = vec!["cat".to_string(), "/proc/1/cmdline".into()];
    let out = docker::exec(&d.client, &c.id, argv, f.exec_deadline())
        .await
        .ok()?;
    (out.exit_code == Some(0)).then(|| inside::cmdline(&out.stdout))
}

/// How the host name resolves inside a running container (`getent ahosts`).
async fn resolve(f: &Facts, d: &DockerFacts, c: &Container) -> Option<inside::Resolved> {
    if let Some(resolved) = inside(f, c).await.and_then(|r| r.resolve.clone()) {
        return Some(resolved);
    }
    let argv = vec![
        "getent".to_string(),
        "ahosts".into(),
        f.project.layout.host_name.clone(),
    ];
    let out = docker::exec(&d.client, &c.id, argv, f.exec_deadline())
        .await
        .ok()?;
    Some(inside::Resolved::from_getent(
        out.exit_code.unwrap_or(-1),
        &out.stdout,
    ))
}

/// Whether the image's copy of `file` differs from the host's `on_host`; `None` when it
/// cannot be told (not in the image). The report of the image's reader answers by size
/// and digest; without one (a stopped container, an image without `sh`, or without
/// `sha256sum` and `cksum`), the image's copy is read through the archive endpoint, once
/// per image: from the image's reader, else from `c`.
async fn file_differs(
    d: &DockerFacts,
    c: &Container,
    report: Option<&inside::Report>,
    (index, file): (usize, &ImageFile),
    on_host: &[u8],
) -> Option<bool> {
    if let Some(copy) = report.and_then(|r| r.file(index)) {
        if *copy == inside::InsideFile::Missing {
            return None;
        }
        if let Some(answer) = copy.differs_from(on_host) {
            return Some(answer);
        }
    }
    let from = image_reader(d, c).unwrap_or(c);
    let copy = d.image_file(from, &file.dest).await?;
    Some(copy != on_host)
}

async fn entrypoint(f: &Facts, d: &DockerFacts, c: &Container) -> Finding {
    let shown = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(" ")
        }
    };
    if bypassed(c) {
        return Finding::fail(EntrypointCause::Bypassed, format!("{} was started with --entrypoint {}: the entrypoint never ran, so MCP was never configured", c.name, shown(&c.entrypoint)))
            .evidence(format!("container: {} {}", shown(&c.entrypoint), c.cmd.join(" ")))
            .evidence(format!("image's entrypoint: {}", shown(&c.image_entrypoint)))
            .hint(format!("docker rm -f {} and start it without --entrypoint (primer 7.3)", c.name));
    }
    if let Some(destroys) = destroys_config(f, d, c).await {
        return destroys;
    }
    Finding::ok(
        CommonCause::Ok,
        format!("runs the image's entrypoint {}", shown(&c.entrypoint)),
    )
}

/// The entrypoint's removals of what Claude Code keeps in its config dir, in the
/// project's copy and the image's: the image's copy is read (once per image, through the
/// archive endpoint, unless its lines came in the report) only where the one exec does
/// not say it is the project's.
async fn destroys_config(f: &Facts, d: &DockerFacts, c: &Container) -> Option<Finding> {
    let layout = &f.project.layout;
    let mut dirs = vec![layout.config_mount.as_str()];
    if let Some(env) = c.env("CLAUDE_CONFIG_DIR").filter(|e| e.starts_with('/')) {
        dirs.push(env);
    }
    let host = safefs::read(
        &f.project.path(&layout.entrypoint),
        safefs::TEXT_CAP,
        safefs::Links::Refuse,
    )
    .ok();
    let mut copies: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(host) = &host {
        copies.push((layout.entrypoint.clone(), host.clone()));
    }
    if let Some(script) = entrypoint_script(c) {
        let files = image_files(f, c);
        let index = files.iter().position(|i| i.dest == *script);
        let report = match image_reader(d, c) {
            Some(r) => inside(f, r).await,
            None => None,
        };
        let same = match (index, &host) {
            (Some(index), Some(host)) => report
                .and_then(|r| r.file(index))
                .and_then(|copy| copy.differs_from(host))
                .map(|differs| !differs),
            _ => None,
        };
        if same != Some(true) {
            // The image's copy as its lines came in the report, else read once per image.
            let lines = index
                .and_then(|i| report.and_then(|r| r.file(i)))
                .and_then(inside::InsideFile::text);
            let copy = match lines {
                Some(text) => Some(text.into_bytes()),
                None => d.image_file(image_reader(d, c).unwrap_or(c), script).await,
            };
            if let Some(copy) = copy {
                if host.as_ref() == Some(&copy) {
                    copies[0].0 = format!("{} (and {script} in the image)", layout.entrypoint);
                } else {
                    copies.push((format!("{script} in the image"), copy));
                }
            }
        } else {
            copies[0].0 = format!("{} (and {script} in the image)", layout.entrypoint);
        }
    }
    let mut found = Vec::new();
    for (name, text) in &copies {
        for removal in destroys::scan(&String::from_utf8_lossy(text), &dirs) {
            found.push((name.as_str(), removal));
        }
    }
    if found.is_empty() {
        return None;
    }
    let mut entries: Vec<&str> = found.iter().flat_map(|(_, r)| r.entries.clone()).collect();
    entries.sort_by_key(|e| destroys::KEPT.iter().position(|(n, _, _)| n == e));
    entries.dedup();
    let mut lost: Vec<destroys::Lost> = found.iter().flat_map(|(_, r)| r.lost.clone()).collect();
    lost.sort();
    lost.dedup();
    let costs: Vec<&str> = lost
        .iter()
        .map(|l| match l {
            destroys::Lost::Memory => "the agent loses its memory and history",
            destroys::Lost::Debug => "Claude Code crashes with ENOENT without debug/",
            destroys::Lost::Login => "the login, trust and approvals go",
        })
        .collect();
    let message = format!(
        "{}'s entrypoint deletes {} in the config dir at every start: {}",
        c.name,
        entries.join(", "),
        costs.join("; ")
    );
    let mut finding = if lost.contains(&destroys::Lost::Debug) {
        Finding::fail(EntrypointCause::DestroysConfig, message)
    } else {
        Finding::warn(EntrypointCause::DestroysConfig, message)
    };
    for (name, removal) in found.iter().take(8) {
        let line: String = f
            .project
            .secrets
            .scrub(&removal.text)
            .chars()
            .take(160)
            .collect();
        finding = finding.evidence(format!(
            "{name} line {}: {} ({})",
            removal.line,
            crate::printable::line(&line),
            crate::printable::line(&removal.path)
        ));
    }
    Some(finding.hint(format!(
        "remove those lines from {} (clear only caches, markers and the MCP keys of .claude.json; `mkdir -p {}/debug` after clearing it), rebuild the image ({}) and recreate the container",
        layout.entrypoint,
        layout.config_mount,
        layout.rebuild()
    )))
}

async fn host_gateway(f: &Facts, d: &DockerFacts, c: &Container) -> Finding {
    let name = &f.project.layout.host_name;
    if let Some(verdict) = network::host_gateway(c, name) {
        return verdict;
    }
    let mapped = c
        .net
        .extra_hosts
        .iter()
        .find_map(|h| h.strip_prefix(&format!("{name}:")));
    if let Some(target) = mapped {
        if target.contains(':') {
            return Finding::warn(HostGatewayCause::Ipv6First, format!("{name} maps to the IPv6 address {target}"))
                .hint("the servers listen on IPv4; Node resolves IPv6 first: map host-gateway or pass --dns-result-order=ipv4first");
        }
        return Finding::ok(CommonCause::Ok, format!("{name} → {target} (ExtraHosts)"));
    }
    if c.running {
        if let Some(resolved) = resolve(f, d, c).await.filter(|r| r.exit == 0) {
            let first = resolved.addrs.first().cloned().unwrap_or_default();
            let all = format!("getent ahosts {name} inside: {}", resolved.addrs.join(", "));
            if first.contains(':') {
                return Finding::warn(
                    HostGatewayCause::Ipv6First,
                    format!("{name} resolves to IPv6 {first} first inside {}", c.name),
                )
                .evidence(all)
                .hint("the servers listen on IPv4: Node needs --dns-result-order=ipv4first");
            }
            return Finding::ok(
                CommonCause::Ok,
                format!("{name} resolves to {first} inside {}", c.name),
            )
            .evidence(all);
        }
    }
    Finding::fail(
        HostGatewayCause::Missing,
        format!(
            "{} has no {name}: on Linux it exists only with --add-host",
            c.name
        ),
    )
    .evidence("not in the container's ExtraHosts, and it does not resolve inside")
    .hint(format!(
        "recreate the container with --add-host={name}:host-gateway (compose: extra_hosts)"
    ))
}

fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.get(..19)?).ok()
}

async fn image(f: &Facts, d: &DockerFacts, c: &Container) -> Finding {
    if let Some(tag) = &c.tag_image_id {
        if *tag != c.image_id {
            return Finding::fail(
                ImageCause::Outdated,
                format!("{} runs an older build of {}", c.name, c.image_name),
            )
            .evidence(format!(
                "container's image {}, the tag now {}",
                short_id(&c.image_id),
                short_id(tag)
            ))
            .hint(format!(
                "recreate it: docker rm -f {} and start it again",
                c.name
            ));
        }
    }
    let rebuild = f.project.layout.rebuild();
    let reader = image_reader(d, c);
    let report = match reader {
        Some(r) => inside(f, r).await,
        None => None,
    };
    let files = image_files(f, c);
    let mut stale = Vec::new();
    for (index, file) in files.iter().enumerate() {
        // The Dockerfile names these paths and the project is container-writable: a
        // link there is not followed.
        let Ok(on_host) = safefs::read(
            &f.project.path(&file.source),
            safefs::TEXT_CAP,
            safefs::Links::Refuse,
        ) else {
            continue;
        };
        if file_differs(d, c, report, (index, file), &on_host).await != Some(true) {
            continue;
        }
        if entrypoint_script(c) == Some(&file.dest) {
            return Finding::fail(
                ImageCause::EntrypointDiffers,
                format!("{} in {} differs from {}", file.dest, c.name, file.source),
            )
            .evidence("the entrypoint was edited on the host but the image was not rebuilt")
            .hint(format!(
                "rebuild the image ({rebuild}), then recreate the container"
            ));
        }
        stale.push(file);
    }
    if !stale.is_empty() {
        let mut finding = Finding::fail(
            ImageCause::StaleFile,
            format!(
                "{} runs {} with an older copy of {}",
                c.name,
                c.image_name,
                stale
                    .iter()
                    .map(|i| i.source.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        for file in &stale {
            finding = finding.evidence(format!(
                "{} in the image differs from {}",
                file.dest, file.source
            ));
        }
        if let Some(r) = reader.filter(|r| r.id != c.id) {
            finding = finding.evidence(format!(
                "compared once for image {} (in {})",
                short_id(&c.image_id),
                r.name
            ));
        }
        return finding.hint(format!(
            "rebuild the image ({rebuild}), then recreate the container"
        ));
    }
    let built = c.image_created.as_deref().and_then(parse_time);
    for rel in [&f.project.layout.dockerfile, &f.project.layout.entrypoint] {
        let changed = safefs::state(&f.project.path(rel)).and_then(|s| s.modified);
        if let (Some(built), Some(changed)) = (built, changed) {
            if changed > built {
                return Finding::warn(
                    ImageCause::StaleImage,
                    format!("{rel} changed after the image was built"),
                )
                .hint("rebuild the image, then recreate the container");
            }
        }
    }
    Finding::ok(
        CommonCause::Ok,
        format!(
            "{} runs the current {} ({})",
            c.name,
            c.image_name,
            short_id(&c.image_id)
        ),
    )
}

fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

async fn mounts(f: &Facts, c: &Container, agent: &Agent) -> Finding {
    let layout = &f.project.layout;
    let mut problems: Vec<(MountsCause, String)> = Vec::new();
    match c.mount_at(&layout.config_mount) {
        None => problems.push((
            MountsCause::MissingConfigMount,
            format!("nothing is mounted at {}", layout.config_mount),
        )),
        Some(m) if !paths::same_folder(&m.source, &agent.config_dir) => problems.push((
            MountsCause::WrongConfigDir,
            format!(
                "{} comes from {}, not {}",
                layout.config_mount,
                m.source,
                f.project.show(&agent.config_dir)
            ),
        )),
        Some(m) if !m.rw => problems.push((
            MountsCause::ConfigReadOnly,
            format!(
                "{} is read-only; Claude Code must write it",
                layout.config_mount
            ),
        )),
        Some(_) => {}
    }
    if c.env("CLAUDE_CONFIG_DIR") != Some(layout.config_mount.as_str()) {
        problems.push((
            MountsCause::ConfigDirEnv,
            format!("CLAUDE_CONFIG_DIR is not {}", layout.config_mount),
        ));
    }
    match c.mount_at(&layout.project_mount) {
        None => problems.push((
            MountsCause::MissingProject,
            format!("the project is not mounted at {}", layout.project_mount),
        )),
        Some(m) if m.rw => problems.push((
            MountsCause::CodeWritable,
            format!(
                "{} is mounted read-write; the code must be read-only",
                layout.project_mount
            ),
        )),
        Some(_) => {}
    }
    let workspace = format!(
        "{}/{}/{}/workspace",
        layout.project_mount, layout.users_dir, agent.name
    );
    match c.mount_at(&workspace) {
        Some(m) if m.rw && paths::same_folder(&m.source, &agent.workspace) => {}
        Some(m) if !m.rw => problems.push((
            MountsCause::WorkspaceReadOnly,
            format!("{workspace} is read-only"),
        )),
        _ => problems.push((
            MountsCause::MissingWorkspace,
            format!("the agent's own workspace is not mounted rw at {workspace}"),
        )),
    }
    let overlay = format!("{}/.mcp.json", layout.project_mount);
    match c.mount_at(&overlay) {
        Some(m) if paths::same_folder(&m.source, &f.project.path(&layout.mcp_json)) => {}
        _ => problems.push((
            MountsCause::MissingMcpOverlay,
            format!(
                "{} is not mounted over {overlay}: the container sees the host's stdio .mcp.json",
                layout.mcp_json
            ),
        )),
    }
    if let Some(identity) = &agent.identity {
        let target = format!("{}/CLAUDE.md", layout.project_mount);
        match c.mount_at(&target) {
            Some(m) if paths::same_folder(&m.source, identity) => {}
            _ => problems.push((
                MountsCause::MissingIdentity,
                format!(
                    "{} is not mounted at {target}: {} will think it is {}",
                    f.project.show(identity),
                    agent.name,
                    layout.default_agent
                ),
            )),
        }
    }
    match problems.first() {
        None => Finding::ok(
            CommonCause::Ok,
            format!("{} follows the Chapter 2.4 mount strategy", c.name),
        ),
        Some((cause, first)) => {
            let finding = Finding::fail(*cause, format!("{}: {first}", c.name))
                .evidence_all(problems.iter().skip(1).map(|(_, p)| p.clone()))
                .hint("recreate the container with the project's script (primer 2.4 lists the mounts)");
            let overlay_only = problems
                .iter()
                .all(|(c, _)| *c == MountsCause::MissingMcpOverlay);
            match overlay_only.then_some(()).and(own_entries(f, agent).await) {
                // A latent risk while the entries Claude Code uses are the agent's own.
                Some(used) => finding.with_status(Status::Warn).evidence(format!(
                    "for now Claude Code uses {used}, so the host's .mcp.json is not what it connects with"
                )),
                None => finding,
            }
        }
    }
}

/// "the user-scope entries of qms, git" when every server's entry in use is the agent's
/// own (user or local scope, not the project's `.mcp.json`); `None` otherwise.
async fn own_entries(f: &Facts, agent: &Agent) -> Option<String> {
    let mut scopes = Vec::new();
    for server in &f.project.servers {
        let used = crate::probes::server_entry::in_use(f, agent, server).await;
        match used.scope() {
            scope @ ("user" | "local") => scopes.push(format!("{} ({scope} scope)", server.name)),
            _ => return None,
        }
    }
    (!scopes.is_empty()).then(|| format!("the agent's own entries: {}", scopes.join(", ")))
}

fn stopped(c: &Container) -> bool {
    !c.running && matches!(c.status.as_str(), "exited" | "created" | "dead")
}

fn stale(d: &DockerFacts) -> Finding {
    let stale: Vec<&Container> = d.containers.iter().filter(|c| stopped(c)).collect();
    if stale.is_empty() {
        return Finding::ok(
            CommonCause::Ok,
            format!("{} agent containers, none stopped", d.containers.len()),
        );
    }
    let names: Vec<&str> = stale.iter().map(|c| c.name.as_str()).collect();
    Finding::warn(
        StaleCause::Stale,
        format!("stopped agent containers left behind: {}", names.join(", ")),
    )
    .evidence_all(
        stale
            .iter()
            .map(|c| format!("{} ({}, exit code {})", c.name, c.status, c.exit_code)),
    )
    .hint(format!("docker rm {}", names.join(" ")))
    .fix(FixPlan {
        actions: stale.iter().map(|c| Action::remove_container(c)).collect(),
    })
}

fn duplicate(d: &DockerFacts, agent: &Agent) -> Finding {
    let mine: Vec<&Container> = d
        .containers
        .iter()
        .filter(|c| c.agent == agent.name)
        .collect();
    if mine.len() <= 1 {
        return Finding::ok(
            CommonCause::Ok,
            format!("{} container for {}", mine.len(), agent.name),
        );
    }
    let names: Vec<String> = mine
        .iter()
        .map(|c| format!("{} ({})", c.name, c.status))
        .collect();
    let running = mine.iter().filter(|c| c.running).count();
    let keep = main_container(d, agent)
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let extras: Vec<&&Container> = mine.iter().filter(|c| c.id != keep && stopped(c)).collect();
    let finding = if running > 1 {
        Finding::fail(
            DuplicateCause::Duplicate,
            format!(
                "{running} running containers serve {}: {}",
                agent.name,
                names.join(", ")
            ),
        )
        .evidence("two writers of one config dir: markers and .claude.json race")
        .hint("docker rm -f the one you do not use")
    } else {
        Finding::warn(
            DuplicateCause::Duplicate,
            format!(
                "{} containers serve {}: {}",
                mine.len(),
                agent.name,
                names.join(", ")
            ),
        )
        .hint("docker rm the stopped extras")
    };
    if extras.is_empty() {
        finding
    } else {
        finding.fix(FixPlan {
            actions: extras.iter().map(|c| Action::remove_container(c)).collect(),
        })
    }
}

/// `config.isolation` across containers: one host config dir mounted at the config mount
/// point of containers serving different agents.
pub async fn shared_mounts(f: &Facts) -> Vec<String> {
    let Ok(d) = f.docker().await else {
        return Vec::new();
    };
    let mounts: Vec<(&Container, &str)> = d
        .containers
        .iter()
        .filter_map(|c| {
            c.mount_at(&f.project.layout.config_mount)
                .map(|m| (c, m.source.as_str()))
        })
        .collect();
    let mut out = Vec::new();
    for (i, (a, src_a)) in mounts.iter().enumerate() {
        for (b, src_b) in &mounts[i + 1..] {
            if a.agent != b.agent && paths::same_folder(src_a, std::path::Path::new(src_b)) {
                out.push(format!(
                    "{} ({}) and {} ({}) both mount {src_a}",
                    a.name, a.agent, b.name, b.agent
                ));
            }
        }
    }
    out
}
