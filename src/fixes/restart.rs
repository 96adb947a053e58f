//! Restarting an agent's container after a repair its entrypoint must act on: a stale
//! marker removed (the entrypoint registers the server again), a `.claude.json`
//! restored, an entry rewritten (Claude Code reads it at start). Which causes a restart
//! repairs is data: `restart_when` in the catalogue. A running container is restarted
//! only with `--force`, because the Claude session in it ends; without, the plan names
//! the command. The repair is done when PID 1 is no longer the entrypoint script.

use std::time::Duration;

use bollard::query_parameters::{
    RestartContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use tokio::time::Instant;

use super::{Context, Outcome};
use crate::catalogue::Catalogue;
use crate::facts::docker;
use crate::facts::Facts;
use crate::model::CheckResult;
use crate::plan::{restart_command, Action, FixPlan};

/// How long a stopping container gets before the engine kills it (the docker CLI's).
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the entrypoint gets to exec its program after the restart: the primer's
/// entrypoint alone waits up to 30 s for the servers.
pub const ENTRYPOINT_WAIT: Duration = Duration::from_secs(45);
const POLL: Duration = Duration::from_millis(250);

/// The time a restart may take: the grace to stop, then the entrypoint.
pub fn limit() -> Duration {
    STOP_GRACE + ENTRYPOINT_WAIT
}

/// Whether `result` is a problem that a restart of its agent's container repairs.
pub fn repairs(catalogue: &Catalogue, result: &CheckResult) -> bool {
    result.is_problem()
        && result.subject.agent.is_some()
        && catalogue
            .get(&result.check)
            .is_some_and(|d| d.restart_when.contains(&result.cause))
}

/// Adds a restart of the agent's running container to every problem a restart repairs.
/// The engine is asked only when some problem wants one.
pub async fn plan(catalogue: &Catalogue, results: &mut [CheckResult], facts: &Facts) {
    if !results.iter().any(|r| repairs(catalogue, r)) {
        return;
    }
    let Ok(d) = facts.docker().await else {
        return;
    };
    for r in results.iter_mut().filter(|r| repairs(catalogue, r)) {
        let Some(agent) = r
            .subject
            .agent
            .as_deref()
            .and_then(|a| facts.project.agent(a))
        else {
            continue;
        };
        // A stopped container runs its entrypoint when it starts: nothing to restart.
        let Some(c) = crate::probes::docker::main_container(d, agent).filter(|c| c.running) else {
            continue;
        };
        let action = Action::RestartContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            lock: sends_identity(c).then_some(facts.project.identity_lock),
        };
        r.fix.plan.push(action.describe(&facts.project.root));
        r.fix.available = true;
        r.plan
            .get_or_insert_with(|| FixPlan {
                actions: Vec::new(),
            })
            .actions
            .push(action);
    }
}

/// Stops the container, waits out the QMS server's identity lock (`lock`, counted from
/// the stop), and starts it again: a plain restart would start it inside the lock.
async fn outside_the_lock(
    client: &bollard::Docker,
    id: &str,
    name: &str,
    lock: Duration,
) -> Result<(), String> {
    let grace = STOP_GRACE.as_secs() as i32;
    let stop = StopContainerOptionsBuilder::new().t(grace).build();
    client
        .stop_container(id, Some(stop))
        .await
        .map_err(|e| format!("stopping {name}: {e}"))?;
    tokio::time::sleep(lock).await;
    client
        .start_container(id, None::<StartContainerOptions>)
        .await
        .map_err(|e| format!("starting {name} again: {e}; it is stopped: docker start {name}"))
}

/// The container's proxies send an identity (`QMS_USER`) the QMS server locks.
fn sends_identity(c: &docker::Container) -> bool {
    c.env("QMS_USER").is_some_and(|v| !v.is_empty())
}

/// Restarts the container (with `--force` only) and waits for its entrypoint.
pub async fn restart(id: &str, name: &str, lock: Option<Duration>, cx: &Context) -> Outcome {
    let Some(client) = cx.docker.as_ref() else {
        return Outcome::failed("the Docker engine does not answer");
    };
    let Ok(inspected) = client.inspect_container(id, None).await else {
        return Outcome::Refused(format!("{name} is gone"));
    };
    if !inspected.state.and_then(|s| s.running).unwrap_or(false) {
        return Outcome::Refused(format!(
            "{name} is not running; its entrypoint acts on the repair when it starts"
        ));
    }
    if !cx.force {
        return Outcome::Refused(format!(
            "{name} is running; restart it to apply: {} (pd-doctor --fix --force does, ending the Claude session in it)",
            restart_command(name, lock)
        ));
    }
    let entrypoint = inspected
        .config
        .and_then(|c| c.entrypoint)
        .unwrap_or_default();
    // The engine answers a restart once the container stopped and started again.
    let patient = client.clone().with_timeout(STOP_GRACE + cx.timeout * 2);
    let started = Instant::now();
    // An agent whose proxies send its identity must stay stopped until the QMS server
    // lets go of it, or its new proxies find it taken.
    let waited = if let Some(lock) = lock {
        match outside_the_lock(&patient, id, name, lock).await {
            Ok(()) => format!(
                ", after waiting {} for the QMS server's identity lock to end",
                crate::printable::duration(lock)
            ),
            Err(e) => return Outcome::failed(e),
        }
    } else {
        let grace = STOP_GRACE.as_secs() as i32;
        let options = RestartContainerOptionsBuilder::new().t(grace).build();
        if let Err(e) = patient.restart_container(id, Some(options)).await {
            return Outcome::failed(format!("restarting {name}: {e}"));
        }
        String::new()
    };
    let deadline = Instant::now() + ENTRYPOINT_WAIT;
    loop {
        let running = client
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            let log = docker::last_log_lines(client, id, 5).await;
            return Outcome::Failed(
                format!(
                    "{name} stopped after the restart: its entrypoint failed (docker logs {name})"
                ),
                log.into_iter().map(|l| format!("log: {l}")).collect(),
            );
        }
        let pid1 = docker::pid1_command(client, id).await;
        let configuring = match docker::entrypoint_script(&entrypoint) {
            Some(script) => pid1.as_deref().is_none_or(|cmd| cmd.contains(script)),
            None => pid1.is_none(),
        };
        if !configuring {
            return Outcome::Done(format!(
                "restarted {name}{waited}; its entrypoint finished after {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
        if Instant::now() >= deadline {
            return Outcome::failed(format!(
                "restarted {name}, but PID 1 is still its entrypoint after {}: it is still waiting for servers or configuring (docker logs {name})",
                crate::printable::duration(ENTRYPOINT_WAIT)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
