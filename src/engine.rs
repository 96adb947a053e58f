//! Expands the catalogue into check instances (per server, agent, or both), runs every
//! probe at once under one per-probe deadline, turns a failed precondition into `skip`,
//! and returns results in checklist order. A probe that panics, errs or overruns becomes
//! its own `fail`, never the end of the run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::catalogue::{Applies, Catalogue, CheckDef, Explanation, Key, Need, Per};
use crate::causes::CommonCause;
use crate::facts::Facts;
use crate::model::{CheckResult, Finding, FixReport, RootCause, Status, Subject};
use crate::project::Project;

/// Time a probe may take beyond its own network deadline before the engine gives up on it.
const GRACE: Duration = Duration::from_millis(500);

/// At most this many probes run at once, each on a thread of the blocking pool (see
/// [`isolate`]); the others wait their turn, their time limit not yet running. A thread
/// per probe in flight was most of the peak memory: 809 checks at 20 agents × 5 servers
/// took 30.8 MiB. Probes mostly wait on facts that one of them gathers for all (the one
/// exec per container, the handshake per server), so the wall time stays the same.
pub const MAX_PROBE_THREADS: usize = 64;

#[derive(Debug, Clone)]
pub struct Instance {
    pub def: Arc<CheckDef>,
    pub subject: Subject,
    pub id: String,
}

/// Every instance of every check, in checklist order (agent-major for agent × server).
pub fn expand(catalogue: &Catalogue, project: &Project) -> Vec<Instance> {
    let mut out = Vec::new();
    for def in &catalogue.checks {
        let def = Arc::new(def.clone());
        let subjects: Vec<Subject> = match def.per {
            Per::None => vec![Subject::default()],
            Per::Server => project
                .servers
                .iter()
                .map(|s| Subject::server(&s.name))
                .collect(),
            Per::Agent => project
                .agents
                .iter()
                .map(|a| Subject::agent(&a.name))
                .collect(),
            Per::AgentServer => project
                .agents
                .iter()
                .flat_map(|a| {
                    project.servers.iter().map(|s| Subject {
                        agent: Some(a.name.clone()),
                        server: Some(s.name.clone()),
                    })
                })
                .collect(),
        };
        for subject in subjects
            .into_iter()
            .filter(|s| applies(def.applies, s, project))
        {
            let id = format!("{}{}", def.id, subject.suffix());
            out.push(Instance {
                def: def.clone(),
                subject,
                id,
            });
        }
    }
    out
}

fn applies(applies: Applies, subject: &Subject, project: &Project) -> bool {
    let stdio = |s: &crate::project::Server| s.expected.as_ref().is_some_and(|e| e.is_stdio());
    match applies {
        Applies::Always => true,
        Applies::StdioServers => match subject.server.as_deref() {
            Some(name) => project.server(name).is_some_and(stdio),
            None => project.servers.iter().any(stdio),
        },
        Applies::HttpServers => project
            .servers
            .iter()
            .any(crate::project::Server::is_direct_http),
        Applies::WithHub => !project.layout.hub.is_empty(),
        Applies::WithSession => !project.layout.session.is_empty(),
    }
}

/// `--only` / `--skip` globs against instance ids: `*` any run, `?` one character,
/// everything else literal (so `*[qa*` means what it says).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn selected(id: &str, only: &[String], skip: &[String]) -> bool {
    (only.is_empty() || only.iter().any(|g| glob_match(g, id)))
        && !skip.iter().any(|g| glob_match(g, id))
}

/// The prerequisite instances of `inst` for one need: those of the needed check whose
/// subject agrees with `inst` on every key both have.
fn prerequisites(instances: &[Instance], inst: &Instance, need: &Need) -> Vec<usize> {
    let agrees = |a: &Option<String>, b: &Option<String>| a.is_none() || b.is_none() || a == b;
    instances
        .iter()
        .enumerate()
        .filter(|(_, p)| p.def.id == need.check)
        .filter(|(_, p)| {
            agrees(&p.subject.agent, &inst.subject.agent)
                && agrees(&p.subject.server, &inst.subject.server)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Whether a prerequisite's result stops the dependent check, by the need's rules.
fn blocks(need: &Need, prereq: &CheckResult) -> bool {
    if prereq.status == Status::Skip {
        return true;
    }
    if !need.when.is_empty() {
        return need.when.contains(&prereq.cause);
    }
    prereq.status == Status::Fail && !need.unless.contains(&prereq.cause)
}

type Pending = Shared<BoxFuture<'static, CheckResult>>;

pub struct Engine {
    pub instances: Vec<Instance>,
    facts: Arc<Facts>,
}

impl Engine {
    pub fn new(catalogue: &Catalogue, facts: Arc<Facts>) -> Engine {
        Engine {
            instances: expand(catalogue, &facts.project),
            facts,
        }
    }

    /// Runs the selected instances (and, unreported, whatever they depend on).
    pub async fn run(&self, only: &[String], skip: &[String]) -> Vec<CheckResult> {
        self.run_where(|inst| selected(&inst.id, only, skip)).await
    }

    /// Runs the instances `keep` picks (and, unreported, whatever they depend on).
    pub async fn run_where(&self, keep: impl Fn(&Instance) -> bool) -> Vec<CheckResult> {
        let mut pending: HashMap<usize, Pending> = HashMap::new();
        let chosen: Vec<Pending> = (0..self.instances.len())
            .filter(|&i| keep(&self.instances[i]))
            .map(|i| self.schedule(i, &mut pending))
            .collect();
        let mut results = Vec::with_capacity(chosen.len());
        for result in chosen {
            results.push(result.await);
        }
        results
    }

    fn schedule(&self, i: usize, pending: &mut HashMap<usize, Pending>) -> Pending {
        if let Some(p) = pending.get(&i) {
            return p.clone();
        }
        let inst = self.instances[i].clone();
        let mut waits: Vec<(Need, Vec<Pending>)> = Vec::new();
        for need in &inst.def.needs {
            let deps = prerequisites(&self.instances, &inst, need)
                .into_iter()
                .map(|d| self.schedule(d, pending))
                .collect();
            waits.push((need.clone(), deps));
        }
        let facts = self.facts.clone();
        let task = tokio::spawn(async move {
            let _shown = crate::progress::track(&inst.id, &inst.subject, &facts.project);
            for (need, deps) in waits {
                for dep in deps {
                    let prereq = dep.await;
                    if blocks(&need, &prereq) {
                        let reason = if prereq.status == Status::Skip {
                            prereq.message.clone()
                        } else {
                            inst.subject.fill(&need.reason)
                        };
                        return finish(
                            &inst,
                            Finding::skip(reason),
                            Duration::ZERO,
                            &facts.project,
                        );
                    }
                }
            }
            let started = Instant::now();
            let finding = run_probe(&inst, facts.clone()).await;
            finish(&inst, finding, started.elapsed(), &facts.project)
        });
        let fallback = self.instances[i].clone();
        let project = self.facts.project.clone();
        let fut: BoxFuture<'static, CheckResult> = async move {
            task.await.unwrap_or_else(|e| {
                finish(
                    &fallback,
                    Finding::internal(e.to_string()),
                    Duration::ZERO,
                    &project,
                )
            })
        }
        .boxed();
        let shared = fut.shared();
        pending.insert(i, shared.clone());
        shared
    }
}

/// One probe, isolated: its panic is caught and its overrun cut off.
pub async fn run_probe(inst: &Instance, facts: Arc<Facts>) -> Finding {
    crate::debuglog::probe(&inst.id, isolated_probe(inst, facts)).await
}

async fn isolated_probe(inst: &Instance, facts: Arc<Facts>) -> Finding {
    let limit =
        facts.timeout + GRACE + crate::probes::dispatch::extra_time(&inst.def.probe, facts.timeout);
    let probe = crate::probes::dispatch::run(inst.def.clone(), inst.subject.clone(), facts);
    match isolate(probe, limit).await {
        Ok(finding) => finding,
        Err(Stopped::Panicked(why)) => Finding::internal(why),
        Err(Stopped::Overran(limit)) => Finding::fail(
            CommonCause::Timeout,
            format!(
                "the probe did not finish within {}",
                crate::printable::duration(limit)
            ),
        ),
    }
}

/// Why isolated work gave no answer.
#[derive(Debug)]
pub enum Stopped {
    Panicked(String),
    Overran(Duration),
}

/// Runs `work` off the async workers, on a thread of the blocking pool that drives it
/// with the runtime's handle: a file read, a /proc walk or a process snapshot inside it
/// can then never stall other probes, and the deadline here still fires. A panic is
/// caught; an overrun is abandoned (its async parts are dropped at the deadline).
pub async fn isolate<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
    limit: Duration,
) -> Result<T, Stopped> {
    let handle = tokio::runtime::Handle::current();
    // On the heap before it moves to its thread: there is one thread per probe in
    // flight, and a probe's state machine pinned on each thread's stack (copied there
    // more than once on the way) was most of the run's peak memory: 20 agents × 5
    // servers, release build, ~210 threads: 55 KiB of stack each, 18 KiB boxed.
    let work = Box::pin(work);
    let (started, has_started) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        let _ = started.send(());
        handle.block_on(async move { tokio::time::timeout(limit + GRACE, work).await.ok() })
    });
    // Queued behind other probes (MAX_PROBE_THREADS), its limit counts from its start.
    let _ = has_started.await;
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(Some(value))) => Ok(value),
        Ok(Ok(None)) | Err(_) => Err(Stopped::Overran(limit)),
        Ok(Err(e)) if e.is_panic() => Err(Stopped::Panicked(panic_text(e.into_panic()))),
        Ok(Err(e)) => Err(Stopped::Panicked(e.to_string())),
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map_or_else(|| "it panicked".into(), |m| format!("it panicked: {m}"))
}

fn finish(inst: &Instance, finding: Finding, took: Duration, project: &Project) -> CheckResult {
    let root = &project.root;
    let finding = crate::project::inside_the_fence(finding, project);
    let plan = finding
        .fix
        .as_ref()
        .map(|f| f.describe(root))
        .unwrap_or_default();
    let mut subject = inst.subject.clone();
    if subject.server.is_none() {
        subject.server = finding.server.clone();
    }
    CheckResult {
        id: inst.id.clone(),
        check: inst.def.id.clone(),
        section: inst.def.section.clone(),
        subject,
        status: finding.status,
        cause: finding.cause.to_string(),
        message: finding.message,
        evidence: finding.evidence,
        hint: finding.hint,
        fix: FixReport {
            available: !plan.is_empty(),
            plan,
            ..Default::default()
        },
        explained_by: None,
        duration_ms: took.as_millis() as u64,
        scope: finding.scope,
        plan: finding.fix,
    }
}

/// Whether `rel` (a relation of `symptom`'s check) makes `cause` the explanation of
/// `symptom`.
fn explains(rel: &Explanation, cause: &CheckResult, symptom: &CheckResult) -> bool {
    if cause.check != rel.check || !cause.is_problem() {
        return false;
    }
    let key = |s: &Subject, k: Key| match k {
        Key::Agent => s.agent.clone(),
        Key::Server => s.server.clone(),
    };
    let subjects_agree = match &rel.same {
        Some(keys) => keys.iter().all(|k| {
            let (a, b) = (key(&cause.subject, *k), key(&symptom.subject, *k));
            a.is_some() && a == b
        }),
        None => [Key::Agent, Key::Server].into_iter().all(|k| {
            let (a, b) = (key(&cause.subject, k), key(&symptom.subject, k));
            a.is_none() || b.is_none() || a == b
        }),
    };
    subjects_agree
        && (rel.when.is_empty() || rel.when.contains(&cause.cause))
        && (rel.causes.is_empty() || rel.causes.contains(&symptom.cause))
        && (!rel.same_cause || cause.cause == symptom.cause)
}

/// Relates the problems of a run by the catalogue's `explained_by`: each problem that
/// another explains gets `explained_by` (the root at the end of the chain), and every
/// problem nothing explains becomes a root cause, in checklist order, with what it
/// explains. A cycle of explanations is broken at its first check in checklist order.
pub fn relate(catalogue: &Catalogue, results: &mut [CheckResult]) -> Vec<RootCause> {
    let n = results.len();
    let mut direct: Vec<Option<usize>> = vec![None; n];
    for (i, symptom) in results.iter().enumerate() {
        if !symptom.is_problem() {
            continue;
        }
        let Some(def) = catalogue.get(&symptom.check) else {
            continue;
        };
        direct[i] = def
            .explained_by
            .iter()
            .find_map(|rel| (0..n).find(|&j| j != i && explains(rel, &results[j], symptom)));
    }
    for start in 0..n {
        let mut seen = vec![start];
        let mut at = start;
        while let Some(next) = direct[at] {
            if let Some(pos) = seen.iter().position(|&k| k == next) {
                let first = seen[pos..].iter().copied().min().unwrap_or(next);
                direct[first] = None;
                break;
            }
            seen.push(next);
            at = next;
        }
    }
    let root_of = |i: usize| {
        let mut at = i;
        while let Some(next) = direct[at] {
            at = next;
        }
        at
    };
    let mut roots: Vec<RootCause> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if r.is_problem() && direct[i].is_none() {
            index.insert(i, roots.len());
            roots.push(RootCause {
                id: r.id.clone(),
                status: r.status,
                cause: r.cause.clone(),
                message: r.message.clone(),
                explains: Vec::new(),
                hint: r.hint.clone(),
                fix: r.fix.clone(),
            });
        }
    }
    for i in 0..n {
        if !results[i].is_problem() || direct[i].is_none() {
            continue;
        }
        let root = root_of(i);
        results[i].explained_by = Some(results[root].id.clone());
        let Some(rc) = index.get(&root).map(|&k| &mut roots[k]) else {
            continue;
        };
        rc.explains.push(results[i].id.clone());
        for step in &results[i].fix.plan {
            if !rc.fix.plan.contains(step) {
                rc.fix.plan.push(step.clone());
            }
        }
        rc.fix.available = !rc.fix.plan.is_empty();
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_treat_brackets_literally() {
        assert!(glob_match("container.*", "container.reach[qa,git]"));
        assert!(glob_match("*[qa*", "container.reach[qa,git]"));
        assert!(glob_match("*[qa*", "config.marker[qa,qms]"));
        assert!(!glob_match("*[qa*", "server.mcp[qms]"));
        assert!(glob_match("server.mcp[q?s]", "server.mcp[qms]"));
        assert!(!glob_match("server.*", "config.isolation"));
        assert!(glob_match("*", ""));
    }

    #[tokio::test]
    async fn a_panicking_probe_is_an_internal_failure() {
        let f = isolate(async { panic!("boom") }, Duration::from_secs(1)).await;
        assert!(matches!(f, Err(Stopped::Panicked(why)) if why.contains("boom")));
    }

    #[tokio::test]
    async fn an_overrunning_probe_is_cut_off() {
        let f = isolate(
            async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Finding::ok(CommonCause::Ok, "late")
            },
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(f, Err(Stopped::Overran(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_probe_that_blocks_its_thread_does_not_stall_the_others() {
        // One async worker: were the blocked probe on it, the quick one could not run.
        let blocked = tokio::spawn(isolate(
            async { std::thread::sleep(Duration::from_secs(2)) },
            Duration::from_millis(100),
        ));
        let quick = isolate(async { 7 }, Duration::from_millis(500)).await;
        assert_eq!(quick.unwrap(), 7);
        assert!(matches!(blocked.await.unwrap(), Err(Stopped::Overran(_))));
    }

    fn result(id: &str, status: Status, cause: &str) -> CheckResult {
        let (check, rest) = id.split_once('[').unwrap_or((id, ""));
        let parts: Vec<&str> = rest.trim_end_matches(']').split(',').collect();
        let subject = match (
            check.starts_with("container.reach") || check.starts_with("config."),
            parts.as_slice(),
        ) {
            (true, [a, s]) => Subject {
                agent: Some(a.to_string()),
                server: Some(s.to_string()),
            },
            (_, [x]) if check.starts_with("server.") => Subject::server(x),
            (_, [x]) if !x.is_empty() => Subject::agent(x),
            _ => Subject::default(),
        };
        CheckResult {
            id: id.into(),
            check: check.into(),
            section: "8.1".into(),
            subject,
            status,
            cause: cause.into(),
            message: format!("{id} says {cause}"),
            evidence: Vec::new(),
            hint: None,
            explained_by: None,
            fix: FixReport::default(),
            duration_ms: 0,
            scope: None,
            plan: None,
        }
    }

    #[test]
    fn a_hanging_server_is_one_root_cause_for_every_agent() {
        let cat = Catalogue::builtin();
        let mut results = vec![
            result("server.listen[git]", Status::Ok, "ok"),
            result("server.mcp[qms]", Status::Ok, "ok"),
            result("server.mcp[git]", Status::Fail, "timeout"),
            result("server.oauth[git]", Status::Warn, "timeout"),
            result("container.reach[qa,git]", Status::Fail, "timeout"),
            result("container.reach[bu,git]", Status::Fail, "timeout"),
            // The same server, another kind of failure: its own problem.
            result("container.reach[tu,git]", Status::Fail, "dns"),
            result("container.reach[qa,qms]", Status::Ok, "ok"),
        ];
        results[2].fix.plan = vec!["nothing".into()];
        let roots = relate(&cat, &mut results);
        let ids: Vec<&str> = roots.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["server.mcp[git]", "container.reach[tu,git]"]);
        assert_eq!(
            roots[0].explains,
            [
                "server.oauth[git]",
                "container.reach[qa,git]",
                "container.reach[bu,git]"
            ]
        );
        assert_eq!(results[4].explained_by.as_deref(), Some("server.mcp[git]"));
        assert_eq!(results[6].explained_by, None);
        assert_eq!(
            results[7].explained_by, None,
            "an ok check is nobody's symptom"
        );
        assert!(roots[0].fix.available);
    }

    /// A finding of `config.mcp_json` about one server (its subject names it) explains
    /// that server's failed reaches, not another's.
    #[test]
    fn a_per_project_finding_about_one_server_explains_only_that_server() {
        let cat = Catalogue::builtin();
        let mut mcp_json = result("config.mcp_json", Status::Fail, "localhost-url");
        mcp_json.subject = Subject::server("qms");
        let mut results = vec![
            result("container.reach[qa,qms]", Status::Fail, "refused"),
            result("container.reach[qa,git]", Status::Fail, "refused"),
            mcp_json,
        ];
        let roots = relate(&cat, &mut results);
        assert_eq!(results[0].explained_by.as_deref(), Some("config.mcp_json"));
        assert_eq!(results[1].explained_by, None);
        let ids: Vec<&str> = roots.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["container.reach[qa,git]", "config.mcp_json"]);
    }

    #[test]
    fn chains_lead_to_the_root_and_collect_every_repair() {
        let cat = Catalogue::builtin();
        let mut results = vec![
            result("server.pidfile[git]", Status::Fail, "dead"),
            result("server.listen[git]", Status::Fail, "not-listening"),
            result("config.marker[qa,git]", Status::Fail, "stale-marker"),
            result("config.server_entry[qa,git]", Status::Fail, "missing"),
            result("config.server_entry[qa,qms]", Status::Fail, "missing"),
        ];
        results[0].fix.plan = vec!["remove the PID file".into()];
        results[1].fix.plan = vec!["start git".into()];
        let roots = relate(&cat, &mut results);
        assert_eq!(roots[0].id, "server.pidfile[git]");
        assert_eq!(roots[0].fix.plan, ["remove the PID file", "start git"]);
        assert_eq!(roots[1].explains, ["config.server_entry[qa,git]"]);
        // The marker of another server explains nothing about qms.
        assert_eq!(roots[2].id, "config.server_entry[qa,qms]");
    }

    #[test]
    fn a_cycle_of_explanations_is_broken_at_its_first_check() {
        let text = r#"
[[check]]
id = "x.a"
title = "a"
per = "none"
probe = "listen"
[[check.explained_by]]
check = "x.b"

[[check]]
id = "x.b"
title = "b"
per = "none"
probe = "listen"
[[check.explained_by]]
check = "x.a"
"#;
        let cat = Catalogue::parse(&[("c.toml", text)]).unwrap();
        let mut results = vec![
            result("x.a", Status::Fail, "one"),
            result("x.b", Status::Warn, "two"),
        ];
        let roots = relate(&cat, &mut results);
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].id, "x.a");
        assert_eq!(roots[0].explains, ["x.b"]);
    }

    #[test]
    fn selection_applies_only_then_skip() {
        let only = vec!["server.*".to_string()];
        let skip = vec!["*[git]".to_string()];
        assert!(selected("server.mcp[qms]", &only, &skip));
        assert!(!selected("server.mcp[git]", &only, &skip));
        assert!(!selected("config.isolation", &only, &[]));
    }
}
