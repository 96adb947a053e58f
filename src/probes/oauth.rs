//! `server.oauth`: the well-known OAuth paths on the server's origin advertise nothing,
//! or something valid; never junk or a redirect that sends Claude Code's discovery astray.
//! Claude Code looks there only when `initialize` fails (a 401 first of all); on a server
//! that completes the handshake the lookups are not made: on a healthy server each would
//! be a 404 line in its log, and nothing could follow from them.

use reqwest::header::LOCATION;

use crate::causes::{Cause, CommonCause, OauthCause};
use crate::facts::http::{self, NetError};
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::Server;

const PATHS: [(&str, &str); 2] = [
    ("/.well-known/oauth-protected-resource", "resource"),
    ("/.well-known/oauth-authorization-server", "issuer"),
];

pub async fn probe(f: &Facts, server: &Server) -> Finding {
    if let Some(skip) = super::mcp::unprobed_scheme(f, server) {
        return skip;
    }
    let Ok(url) = reqwest::Url::parse(&server.container_url(&f.project.layout)) else {
        return Finding::skip(format!("the URL for {} does not parse", server.name));
    };
    if let Some(h) = f.handshake(server).await.filter(|h| h.result.is_ok()) {
        return Finding::ok(
            CommonCause::Ok,
            "initialize succeeds, so Claude Code never looks for OAuth metadata: not looked up",
        )
        .evidence(format!(
            "{} completes the MCP handshake ({})",
            server.name,
            h.evidence.first().cloned().unwrap_or_default()
        ));
    }
    let client = http::client_for(&url, Some(f.connect_addr(server)));
    let deadline = f.deadline();
    let lookups = PATHS.iter().map(|(path, field)| {
        let mut doc = url.clone();
        doc.set_path(path);
        doc.set_query(None);
        let req = client.get(doc.clone());
        async move { (doc, fetch(req, deadline, field).await) }
    });
    let mut worst = Finding::ok(
        CommonCause::Ok,
        "advertises no OAuth metadata (Claude Code will use the configured headers)",
    );
    let mut evidence = Vec::new();
    for (doc, outcome) in futures::future::join_all(lookups).await {
        evidence.push(format!("GET {} -> {}", doc.path(), outcome.describe()));
        let finding = outcome.finding(server);
        if finding.status > worst.status
            || (worst.cause == Cause::from(CommonCause::Ok)
                && finding.cause == Cause::from(OauthCause::Advertised))
        {
            worst = finding;
        }
    }
    worst.evidence_all(evidence)
}

enum Outcome {
    Nothing(u16),
    Valid(u16),
    Junk(u16, &'static str),
    Redirect(u16, String),
    Failed(NetError),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Nothing(s) => format!("{s}"),
            Outcome::Valid(s) => format!("{s}, valid metadata"),
            Outcome::Junk(s, what) => format!("{s}, {what}"),
            Outcome::Redirect(s, to) => format!("{s} to {}", crate::redact::display_url(to)),
            Outcome::Failed(e) => e.describe(),
        }
    }

    fn finding(&self, server: &Server) -> Finding {
        let astray = "Claude Code follows it into OAuth discovery and reports 'Dynamic Client Registration rejected' instead of the real problem";
        match self {
            Outcome::Nothing(_) => Finding::ok(CommonCause::Ok, "advertises no OAuth metadata"),
            Outcome::Valid(_) => Finding::ok(
                OauthCause::Advertised,
                format!("{} advertises valid OAuth metadata", server.name),
            ),
            Outcome::Junk(_, what) => Finding::warn(
                OauthCause::JunkMetadata,
                format!(
                    "{} answers 200 with {what} on an OAuth discovery path",
                    server.name
                ),
            )
            .hint(format!("make the server answer 404 there: {astray}")),
            Outcome::Redirect(s, _) => Finding::warn(
                OauthCause::Redirect,
                format!("{} redirects ({s}) an OAuth discovery path", server.name),
            )
            .hint(format!("make the server answer 404 there: {astray}")),
            Outcome::Failed(e) => Finding::warn(
                OauthCause::from(e.cause()),
                format!("{}: OAuth discovery paths: {}", server.name, e.describe()),
            ),
        }
    }
}

async fn fetch(
    req: reqwest::RequestBuilder,
    deadline: tokio::time::Instant,
    field: &str,
) -> Outcome {
    let resp = match http::send(req, deadline).await {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e),
    };
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        let to = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        return Outcome::Redirect(status, to);
    }
    if !(200..300).contains(&status) {
        return Outcome::Nothing(status);
    }
    let body = match http::read_body(resp, deadline).await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e),
    };
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(doc) if doc.get(field).is_some_and(|v| v.is_string()) => Outcome::Valid(status),
        Ok(_) => Outcome::Junk(status, "JSON that is not OAuth metadata"),
        Err(_)
            if String::from_utf8_lossy(&body)
                .to_lowercase()
                .contains("<html") =>
        {
            Outcome::Junk(status, "an HTML page")
        }
        Err(_) => Outcome::Junk(status, "something that is not JSON"),
    }
}
