//! `hub.service`: the Agent Hub answers `GET /api/health` on its address, and what its
//! `/api/status` says of each agent agrees with the engine: an agent the Hub calls
//! running has a running container (with Claude Code's tmux session, where that can be
//! seen), one it calls stopped has none running.

use serde_json::Value;

use crate::causes::{CommonCause, HubCause};
use crate::facts::docker::DockerFacts;
use crate::facts::http::{self, NetError};
use crate::facts::Facts;
use crate::model::Finding;
use crate::printable;

pub async fn probe(f: &Facts) -> Finding {
    let base = f.project.layout.hub.trim_end_matches('/');
    let Ok(health) = reqwest::Url::parse(&format!("{base}/api/health")) else {
        return Finding::internal(format!("the Hub's address {base:?} is not a URL"));
    };
    let client = http::client_for(&health, None);
    let deadline = f.deadline();
    let answer = match http::send(client.get(health.clone()), deadline).await {
        Ok(resp) => resp,
        Err(NetError::Refused) => {
            return Finding::warn(
                HubCause::NotListening,
                format!("the Agent Hub is not running (nothing listens at {base})"),
            )
            .hint("start it: agent-hub start (the agents' containers run without it, but nothing restarts or watches them)")
        }
        Err(e) => {
            return Finding::fail(
                HubCause::Unhealthy,
                format!("the Agent Hub at {base} did not answer: {}", e.describe()),
            )
        }
    };
    let status = answer.status();
    if status != reqwest::StatusCode::OK {
        return Finding::fail(
            HubCause::Unhealthy,
            format!("the Agent Hub at {base} answers {status} to /api/health"),
        )
        .hint("read agent-hub's log, then restart it");
    }
    let ok = Finding::ok(CommonCause::Ok, format!("the Agent Hub answers at {base}"));
    let Some(states) = agent_states(&client, base, deadline).await else {
        return ok;
    };
    let said = format!(
        "the Hub says: {}",
        states
            .iter()
            .map(|(id, state)| format!("{} {}", printable::line(id), printable::line(state)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Ok(d) = f.docker().await else {
        return ok
            .evidence(said)
            .evidence("the Docker engine does not answer: the Hub's states were not compared with the containers");
    };
    let mut disagree = Vec::new();
    for (id, state) in &states {
        if let Some(why) = disagreement(f, d, id, state).await {
            disagree.push((printable::line(id).into_owned(), why));
        }
    }
    if disagree.is_empty() {
        return ok.evidence(said);
    }
    Finding::warn(
        HubCause::OutOfSync,
        format!(
            "the Agent Hub's view of {} disagrees with the Docker engine's",
            disagree.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    )
    .evidence_all(disagree.into_iter().map(|(id, why)| format!("{id}: {why}")))
    .evidence(said)
    .hint("the Hub acts on what it believes (it will not start an agent it thinks runs, nor watch one it thinks stopped): stop and start those agents from the Hub, or restart the Hub (agent-hub stop, agent-hub start) so it looks again")
}

/// Why the Hub's `state` of agent `id` is not what the engine shows, if it is not. Only
/// the settled states are compared: `starting`, `stopping` and `error` are on their way.
async fn disagreement(f: &Facts, d: &DockerFacts, id: &str, state: &str) -> Option<String> {
    let container = d.container_of(id);
    match (state, container) {
        ("running", None) => Some("the Hub says running, but no container serves it".into()),
        ("running", Some(c)) if !c.running => Some(format!(
            "the Hub says running, but {} is {}",
            c.name,
            printable::line(&c.status)
        )),
        ("running", Some(c)) if !f.project.layout.session.is_empty() => {
            (crate::probes::docker::has_session(f, c).await == Some(false)).then(|| {
                format!(
                    "the Hub says running, but {} has no tmux session {}: no Claude Code runs there",
                    c.name, f.project.layout.session
                )
            })
        }
        ("stopped", Some(c)) if c.running => Some(format!(
            "the Hub says stopped, but {} is running",
            c.name
        )),
        _ => None,
    }
}

/// Each agent's `id` and `state` from `/api/status`, when it answers in time.
async fn agent_states(
    client: &reqwest::Client,
    base: &str,
    deadline: tokio::time::Instant,
) -> Option<Vec<(String, String)>> {
    let url = reqwest::Url::parse(&format!("{base}/api/status")).ok()?;
    let resp = http::send(client.get(url), deadline).await.ok()?;
    let body = http::read_body(resp, deadline).await.ok()?;
    let doc: Value = serde_json::from_slice(&body).ok()?;
    let states: Vec<(String, String)> = doc
        .get("agents")?
        .as_array()?
        .iter()
        .take(64)
        .filter_map(|a| {
            let id = a.get("id")?.as_str()?;
            let state = a.get("state")?.as_str()?;
            Some((cap(id), cap(state).to_lowercase()))
        })
        .collect();
    (!states.is_empty()).then_some(states)
}

/// At most 64 characters of a name the Hub sent.
fn cap(text: &str) -> String {
    text.chars().take(64).collect()
}
