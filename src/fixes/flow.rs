//! The `--fix` and `reset` conversations: show the plan, change nothing on `--dry-run`,
//! ask once (or act on `--yes`, or refuse without a terminal), verify each action against
//! the state right before it, act, re-check, and report only what now passes as fixed.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::apply;
use super::{Context, Outcome};
use crate::facts::pidfile::{self, PidFile};
use crate::facts::Facts;
use crate::model::{CheckResult, Status};
use crate::plan::Action;
use crate::run::Runner;
use crate::safefs::{self, FileState};

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub yes: bool,
    pub dry_run: bool,
    pub force: bool,
}

/// Why nothing was done although something could have been.
#[derive(Debug)]
pub enum Refusal {
    /// No `--yes` and no terminal to ask on.
    NoConsent,
}

/// Where the plan and the progress lines go: stdout for people, stderr when stdout
/// carries JSON or JUnit.
pub struct Narrator<'a> {
    pub out: Box<dyn Write + 'a>,
    pub scrub: Box<dyn Fn(&str) -> String + 'a>,
}

impl Narrator<'_> {
    pub fn say(&mut self, line: &str) {
        let _ = writeln!(self.out, "{}", (self.scrub)(line));
    }
}

/// One action and the check instances that asked for it.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub ids: Vec<String>,
}

/// The actions the results ask for, each once, in fix order; none already tried.
pub fn plan(results: &[CheckResult], tried: &[Action]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for r in results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Warn))
    {
        for action in r.plan.iter().flat_map(|p| p.actions.iter()) {
            // A restart may be needed again after a later round's repairs (see below).
            let restart = matches!(action, Action::RestartContainer { .. });
            if tried.contains(action) && !restart {
                continue;
            }
            match steps.iter_mut().find(|s| &s.action == action) {
                Some(step) => step.ids.push(r.id.clone()),
                None => steps.push(Step {
                    action: action.clone(),
                    ids: vec![r.id.clone()],
                }),
            }
        }
    }
    // A restart already tried comes back only for this round's other repairs.
    let others: HashSet<String> = steps
        .iter()
        .filter(|s| !matches!(s.action, Action::RestartContainer { .. }))
        .flat_map(|s| s.ids.iter().cloned())
        .collect();
    steps.retain(|s| !tried.contains(&s.action) || s.ids.iter().any(|id| others.contains(id)));
    // Stable: within one kind, checklist order.
    steps.sort_by_key(|s| s.action.order());
    steps
}

/// Asks on the terminal; `None` when there is no terminal to ask on.
pub fn ask(question: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return None;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok()?;
    Some(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// [`ask`] on a thread of its own: waiting for a person never holds an async worker.
async fn ask_off_workers(question: String) -> Option<bool> {
    tokio::task::spawn_blocking(move || ask(&question))
        .await
        .ok()
        .flatten()
}

fn describe(steps: &[Step], root: &std::path::Path, force: bool) -> Vec<String> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let what = match &s.action {
                // Without --force a running container is not restarted: the plan says
                // what to run instead.
                Action::RestartContainer { name, lock, .. } if !force => format!(
                    "restart {name} to apply (by hand: {}; pd-doctor does it only with --force, which ends the Claude session in it)",
                    crate::plan::restart_command(name, *lock)
                ),
                action => action.describe(root),
            };
            format!("  {}. {what}   [{}]", i + 1, s.ids.join(", "))
        })
        .collect()
}

/// Fixes rounds of problems until nothing fixable is left (at most three rounds: a
/// restored `.claude.json` can reveal stale markers the corrupt one hid). Returns the
/// final results, with `fixed` where a repair made a check pass.
pub async fn fix(
    runner: &Runner,
    first: Vec<CheckResult>,
    opts: Options,
    say: &mut Narrator<'_>,
) -> Result<Vec<CheckResult>, Refusal> {
    let before: HashMap<String, Status> = first.iter().map(|r| (r.id.clone(), r.status)).collect();
    let root = runner.project.root.clone();
    let mut results = first;
    // A symptom repaired with its cause is `fixed` too.
    crate::engine::relate(&runner.catalogue, &mut results);
    let causes: HashMap<String, String> = results
        .iter()
        .filter_map(|r| Some((r.id.clone(), r.explained_by.clone()?)))
        .collect();
    let mut tried: Vec<Action> = Vec::new();
    let mut outcomes: HashMap<String, Vec<Outcome>> = HashMap::new();
    let mut to_restart: Vec<(String, Option<std::time::Duration>)> = Vec::new();
    for round in 0..3 {
        let steps = plan(&results, &tried);
        if steps.is_empty() {
            if round == 0 {
                say.say("Nothing to fix automatically.");
            }
            break;
        }
        say.say(if round == 0 {
            "pd-doctor --fix will:"
        } else {
            "That revealed more to repair; pd-doctor --fix will now:"
        });
        for line in describe(&steps, &root, opts.force) {
            say.say(&line);
        }
        if opts.dry_run {
            say.say("--dry-run: nothing was changed.");
            return Ok(mark(results, &before, &outcomes, &causes));
        }
        // What each file was when the plan was made: a file that changes before its
        // repair (a container writing it, a swap for a link) is left alone.
        let mut planned: HashMap<PathBuf, Option<FileState>> = steps
            .iter()
            .filter_map(|s| s.action.file())
            .map(|p| (p.to_path_buf(), safefs::state(p)))
            .collect();
        if !opts.yes {
            match ask_off_workers(format!("Apply these {} repairs?", steps.len())).await {
                None => return Err(Refusal::NoConsent),
                Some(false) => {
                    say.say(if round == 0 {
                        "Nothing was changed."
                    } else {
                        "Stopped here."
                    });
                    break;
                }
                Some(true) => {}
            }
        }
        // Checks a repair of this round acted for: their containers' entrypoints have
        // something new to act on.
        let mut repaired: HashSet<String> = HashSet::new();
        for step in steps {
            let outcome = match unchanged(&step.action, &planned, &root) {
                Err(refusal) => refusal,
                Ok(()) => verified_apply(runner, &step, opts, &repaired).await,
            };
            if outcome.done() {
                repaired.extend(step.ids.iter().cloned());
            }
            if let (Action::RestartContainer { name, lock, .. }, Outcome::Refused(why)) =
                (&step.action, &outcome)
            {
                if why.starts_with(&format!("{name} is running"))
                    && !to_restart.iter().any(|(n, _)| n == name)
                {
                    to_restart.push((name.clone(), *lock));
                }
            }
            if let Some(p) = step.action.file() {
                // Our own change is the new expected state for later steps on the file.
                planned.insert(p.to_path_buf(), safefs::state(p));
            }
            let mark = if outcome.done() { "✓" } else { "✗" };
            say.say(&format!("  {mark} {}", outcome.text()));
            for line in outcome.evidence() {
                say.say(&format!("      │ {line}"));
            }
            for id in &step.ids {
                outcomes
                    .entry(id.clone())
                    .or_default()
                    .push(outcome.clone());
            }
            tried.push(step.action);
        }
        results = runner.diagnose().await;
    }
    if !to_restart.is_empty() {
        let names: Vec<&str> = to_restart.iter().map(|(n, _)| n.as_str()).collect();
        // One `docker restart` for all, unless an identity lock must be waited out.
        let how = if to_restart.iter().all(|(_, lock)| lock.is_none()) {
            format!("docker restart {}", names.join(" "))
        } else {
            to_restart
                .iter()
                .map(|(n, lock)| crate::plan::restart_command(n, *lock))
                .collect::<Vec<_>>()
                .join("; ")
        };
        say.say(&format!(
            "To finish, restart {} so the entrypoint applies the repairs: {how} (or: pd-doctor --fix --yes --force)",
            names.join(" and "),
        ));
    }
    Ok(mark(results, &before, &outcomes, &causes))
}

/// The action's file is still the one the plan was made for.
fn unchanged(
    action: &Action,
    planned: &HashMap<PathBuf, Option<FileState>>,
    root: &Path,
) -> Result<(), Outcome> {
    let Some(path) = action.file() else {
        return Ok(());
    };
    let Some(Some(then)) = planned.get(path) else {
        return Ok(());
    };
    match then.change_to(safefs::state(path).as_ref()) {
        None => Ok(()),
        Some(change) => Err(Outcome::Refused(format!(
            "{}: {} changed since the plan was made ({change}); left alone",
            action.describe(root),
            path.strip_prefix(root).unwrap_or(path).display()
        ))),
    }
}

/// Acts only when a check, run again right now, still asks for this very action. A
/// restart has no state of its own to check: it goes ahead when a repair of this round
/// acted for one of its checks, or when one of them still has a cause a restart repairs.
async fn verified_apply(
    runner: &Runner,
    step: &Step,
    opts: Options,
    repaired: &HashSet<String>,
) -> Outcome {
    let facts = runner.facts();
    let restart = matches!(step.action, Action::RestartContainer { .. });
    let mut wanted = restart && step.ids.iter().any(|id| repaired.contains(id));
    for id in &step.ids {
        if wanted {
            break;
        }
        let Some(finding) = runner.recheck(id, facts.clone()).await else {
            continue;
        };
        wanted = if restart {
            let check = id.split('[').next().unwrap_or(id);
            matches!(finding.status, Status::Fail | Status::Warn)
                && runner
                    .catalogue
                    .get(check)
                    .is_some_and(|d| d.restart_when.iter().any(|c| finding.cause == c.as_str()))
        } else {
            finding
                .fix
                .as_ref()
                .is_some_and(|p| p.actions.iter().any(|a| a.same_repair(&step.action)))
        };
    }
    if !wanted {
        let why = if restart {
            "nothing is left for the entrypoint to act on"
        } else {
            "the state changed since the plan was made"
        };
        return Outcome::Refused(format!(
            "{}: {why}",
            step.action.describe(&runner.project.root)
        ));
    }
    act_now(runner, &step.action, opts, &facts).await
}

/// Carries out `action` with the engine of `facts`.
async fn act_now(runner: &Runner, action: &Action, opts: Options, facts: &Facts) -> Outcome {
    let docker = facts.docker().await.as_ref().ok().map(|d| d.client.clone());
    let cx = Arc::new(Context::new(
        runner.project.clone(),
        docker,
        opts.force,
        runner.timeout,
    ));
    apply::apply(action, &cx).await
}

/// Fills each result's `fix` with what was done, and says `fixed` where a repair turned
/// a failure into no failure (or a warning into ok).
fn mark(
    mut results: Vec<CheckResult>,
    before: &HashMap<String, Status>,
    outcomes: &HashMap<String, Vec<Outcome>>,
    causes: &HashMap<String, String>,
) -> Vec<CheckResult> {
    let improved = |r: &CheckResult| {
        matches!(
            (before.get(&r.id).copied(), r.status),
            (Some(Status::Fail), Status::Ok | Status::Warn) | (Some(Status::Warn), Status::Ok)
        )
    };
    for r in &mut results {
        let Some(done) = outcomes.get(&r.id) else {
            if r.fix.available {
                r.fix.applied = Some(false);
            }
            // A symptom whose cause was repaired, and which passes now, was repaired too.
            let cause = causes.get(&r.id);
            let cause_repaired = cause
                .and_then(|c| outcomes.get(c))
                .is_some_and(|o| o.iter().any(Outcome::done));
            if cause_repaired && improved(r) {
                r.status = Status::Fixed;
                r.fix.outcome = cause.map(|c| format!("repaired with {c}"));
            }
            continue;
        };
        let applied = done.iter().any(Outcome::done);
        r.evidence
            .extend(done.iter().flat_map(|o| o.evidence().iter().cloned()));
        r.fix.applied = Some(applied);
        r.fix.outcome = Some(
            done.iter()
                .map(Outcome::text)
                .collect::<Vec<_>>()
                .join("; "),
        );
        if applied && improved(r) {
            r.status = Status::Fixed;
        }
    }
    results
}

/// Chapter 8.5 as one command: remove the agent containers, clear the markers, and with
/// `stop_servers` stop the servers their PID files name, once each is verified.
pub async fn reset(
    runner: &Runner,
    stop_servers: bool,
    opts: Options,
    say: &mut Narrator<'_>,
) -> Result<bool, Refusal> {
    let facts = runner.facts();
    let project = &runner.project;
    let mut actions = Vec::new();
    if stop_servers {
        // Verified now for the plan, and again right before the signal.
        for s in &project.servers {
            // A file naming no live server would make the start scripts believe the
            // server is up after the reset: it goes, and nothing is signalled.
            let Some(pid_file) = &s.pid_file else {
                continue;
            };
            let stale = |why: &str| Action::RemoveFile {
                path: pid_file.clone(),
                why: why.into(),
            };
            let pid = match pidfile::read(&facts, s) {
                PidFile::Absent => continue,
                PidFile::Dead(_) => {
                    actions.push(stale("its process is gone"));
                    continue;
                }
                PidFile::Reused { .. } => {
                    actions.push(stale("its pid was reused by another process"));
                    continue;
                }
                PidFile::Alive { pid, .. } => pid,
                PidFile::Unreadable(why) | PidFile::Garbage(why) => {
                    say.say(&format!(
                        "leaving server {} alone: its PID file holds no usable PID ({why})",
                        s.name
                    ));
                    continue;
                }
            };
            match pidfile::verify_server(&facts, s, pid) {
                Ok(_) => actions.push(Action::StopServer {
                    server: s.name.clone(),
                    pid,
                    pid_file: pid_file.clone(),
                }),
                Err(why) => say.say(&format!("leaving server {} alone: {why}", s.name)),
            }
        }
    }
    match facts.docker().await {
        Ok(d) => actions.extend(d.containers.iter().map(Action::remove_container)),
        Err(e) => say.say(&format!(
            "(the Docker engine does not answer, so no containers are removed: {e})"
        )),
    }
    for agent in &project.agents {
        for s in &project.servers {
            if let Some(marker) = agent.marker(s).filter(|_| agent.has_marker(s)) {
                actions.push(Action::RemoveFile {
                    path: marker,
                    why: "reset".into(),
                });
            }
        }
    }
    if actions.is_empty() {
        say.say("Nothing to reset: no agent containers, no markers.");
        return Ok(true);
    }
    let steps: Vec<Step> = actions
        .into_iter()
        .map(|a| Step {
            action: a,
            ids: vec!["reset".into()],
        })
        .collect();
    say.say("pd-doctor reset will:");
    for s in &steps {
        say.say(&format!("  - {}", s.action.describe(&project.root)));
    }
    if opts.dry_run {
        say.say("--dry-run: nothing was changed.");
        return Ok(true);
    }
    if !opts.yes {
        match ask_off_workers("Reset?".into()).await {
            None => return Err(Refusal::NoConsent),
            Some(false) => {
                say.say("Nothing was changed.");
                return Ok(true);
            }
            Some(true) => {}
        }
    }
    let docker = facts.docker().await.as_ref().ok().map(|d| d.client.clone());
    let cx = Arc::new(Context::new(
        project.clone(),
        docker,
        opts.force,
        runner.timeout,
    ));
    let mut all_ok = true;
    for s in &steps {
        let outcome = apply::apply(&s.action, &cx).await;
        all_ok &= !matches!(outcome, Outcome::Failed(..));
        say.say(&format!(
            "  {} {}",
            if outcome.done() { "✓" } else { "✗" },
            outcome.text()
        ));
    }
    Ok(all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FixReport, Subject};
    use crate::plan::FixPlan;

    fn wanting(id: &str, actions: Vec<Action>) -> CheckResult {
        CheckResult {
            id: id.into(),
            check: id.split('[').next().unwrap().into(),
            section: "8.3".into(),
            subject: Subject::default(),
            status: Status::Fail,
            cause: "x".into(),
            message: String::new(),
            evidence: Vec::new(),
            hint: None,
            explained_by: None,
            fix: FixReport::default(),
            duration_ms: 0,
            scope: None,
            plan: Some(FixPlan { actions }),
        }
    }

    #[test]
    fn a_restart_comes_again_only_for_a_new_repair_of_its_checks() {
        let restart = Action::RestartContainer {
            id: "c1".into(),
            name: "agent-qa".into(),
            lock: None,
        };
        let marker = Action::RemoveFile {
            path: "/p/.mcp-configured".into(),
            why: "stale marker".into(),
        };
        let entry = wanting("config.server_entry[qa,qms]", vec![restart.clone()]);
        let stale = wanting(
            "config.marker[qa,qms]",
            vec![marker.clone(), restart.clone()],
        );
        let tried = vec![restart.clone()];
        // Tried, and nothing new for its entrypoint: not again.
        assert!(plan(std::slice::from_ref(&entry), &tried).is_empty());
        // A marker removed in this round: the container must restart again, last.
        let steps = plan(&[stale, entry], &tried);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].action, marker);
        assert_eq!(steps[1].action, restart);
        assert_eq!(
            steps[1].ids,
            ["config.marker[qa,qms]", "config.server_entry[qa,qms]"]
        );
    }
}
