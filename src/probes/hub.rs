//! `hub.service`: the Agent Hub answers `GET /api/health` on its address, and what its
//! `/api/status` says of each agent.

use serde_json::Value;

use crate::causes::{CommonCause, HubCause};
use crate::facts::http::{self, NetError};
use crate::facts::Facts;
use crate::model::Finding;

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
    let mut finding = Finding::ok(CommonCause::Ok, format!("the Agent Hub answers at {base}"));
    if let Some(states) = agent_states(&client, base, deadline).await {
        finding = finding.evidence(format!("the Hub says: {states}"));
    }
    finding
}

/// "claude running, qa stopped" from `/api/status`, when it answers in time.
async fn agent_states(
    client: &reqwest::Client,
    base: &str,
    deadline: tokio::time::Instant,
) -> Option<String> {
    let url = reqwest::Url::parse(&format!("{base}/api/status")).ok()?;
    let resp = http::send(client.get(url), deadline).await.ok()?;
    let body = http::read_body(resp, deadline).await.ok()?;
    let doc: Value = serde_json::from_slice(&body).ok()?;
    let states: Vec<String> = doc
        .get("agents")?
        .as_array()?
        .iter()
        .take(64)
        .filter_map(|a| {
            let id = a.get("id")?.as_str()?;
            let state = a.get("state")?.as_str()?;
            Some(format!(
                "{} {}",
                crate::printable::line(id),
                crate::printable::line(state)
            ))
        })
        .collect();
    (!states.is_empty()).then(|| states.join(", "))
}
