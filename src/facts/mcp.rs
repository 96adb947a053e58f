//! A minimal MCP client over Streamable HTTP: exactly the handshake Claude Code performs
//! (initialize, notifications/initialized, tools/list), reporting where and why it broke.
//! JSON and SSE answers both count; header values are sent, never reported.

use std::net::SocketAddr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use reqwest::{Client, Url};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::http::{self, NetError};
use crate::causes::McpCause;
use crate::redact::Secret;

/// The version Claude Code and the official SDKs offer; servers answer with theirs.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
const SESSION_HEADER: &str = "mcp-session-id";

/// Where to send the handshake and as whom.
#[derive(Debug, Clone)]
pub struct McpTarget {
    /// The URL the agents are configured with; its host goes into the Host header.
    pub url: Url,
    /// The address actually dialled (the host side of host.docker.internal).
    pub connect: SocketAddr,
    pub headers: Vec<(String, Secret)>,
}

#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub protocol: String,
    pub tools: Vec<String>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: McpCause,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Handshake {
    pub result: Result<ServerInfo, Failure>,
    /// One line per request: `POST http://... initialize -> 200 in 4 ms`.
    pub evidence: Vec<String>,
    /// Whether the server issued an `Mcp-Session-Id` (it is stateful).
    pub stateful: bool,
    pub header_names: Vec<String>,
}

struct Answer {
    status: u16,
    session: Option<String>,
    message: Option<Value>,
    body: String,
}

struct Exchange<'a> {
    target: &'a McpTarget,
    client: Client,
    deadline: Instant,
    evidence: Vec<String>,
}

impl<'a> Exchange<'a> {
    /// Requests for `url` go to the target's address, whatever the URL's host resolves to.
    fn new(target: &'a McpTarget, url: &Url, deadline: Instant) -> Self {
        Exchange {
            target,
            client: http::client_for(url, Some(target.connect)),
            deadline,
            evidence: Vec::new(),
        }
    }
}

impl Exchange<'_> {
    fn headers(&self, session: Option<&str>, protocol: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &self.target.headers {
            if let (Ok(n), Ok(mut v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                v.set_sensitive(true);
                h.insert(n, v);
            }
        }
        if let Some(s) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
            h.insert(SESSION_HEADER, s);
        }
        if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
            h.insert("mcp-protocol-version", p);
        }
        h
    }

    async fn post(
        &mut self,
        url: &Url,
        message: Value,
        session: Option<&str>,
        protocol: Option<&str>,
        extra: HeaderMap,
    ) -> Result<Answer, NetError> {
        let label = message["method"].as_str().unwrap_or("request").to_string();
        let id = message.get("id").cloned();
        let mut headers = self.headers(session, protocol);
        headers.extend(extra);
        let started = Instant::now();
        let req = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(message.to_string());
        let result = self.receive(req, id).await;
        let took = http::millis_since(started);
        self.evidence.push(match &result {
            Ok(a) => format!(
                "POST {} {label} -> {} in {took} ms",
                crate::redact::display_url(url.as_str()),
                a.status
            ),
            Err(e) => format!(
                "POST {} {label} -> {} after {took} ms",
                crate::redact::display_url(url.as_str()),
                e.describe()
            ),
        });
        result
    }

    async fn receive(
        &self,
        req: reqwest::RequestBuilder,
        id: Option<Value>,
    ) -> Result<Answer, NetError> {
        let resp = http::send(req, self.deadline).await?;
        let status = resp.status().as_u16();
        let session = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let mut answer = Answer {
            status,
            session,
            message: None,
            body: String::new(),
        };
        if !(200..300).contains(&status) || id.is_none() {
            let body = http::read_body(resp, self.deadline)
                .await
                .unwrap_or_default();
            answer.body = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Ok(answer);
        }
        if sse {
            let id = id.clone();
            answer.message = http::read_sse_until(resp, self.deadline, |data| {
                let v: Value = serde_json::from_str(data).ok()?;
                (v.get("id") == id.as_ref()).then_some(v)
            })
            .await?;
        } else {
            let body = http::read_body(resp, self.deadline).await?;
            answer.message = serde_json::from_slice(&body).ok();
            answer.body = String::from_utf8_lossy(&body).chars().take(200).collect();
        }
        Ok(answer)
    }
}

impl Exchange<'_> {
    /// `DELETE` of a session, as a real client ends one: its status.
    async fn end_session(&self, id: &str, protocol: Option<&str>) -> Result<u16, NetError> {
        let mut h = self.headers(Some(id), protocol);
        h.remove(CONTENT_TYPE);
        let req = self.client.delete(self.target.url.clone()).headers(h);
        http::send(req, self.deadline)
            .await
            .map(|r| r.status().as_u16())
    }
}

/// Ends a session someone else opened as `target`'s client (`container.reach`'s, from
/// inside a container): a session left open is a trace in the server too.
pub async fn end_session(target: &McpTarget, id: &str, deadline: Instant) -> Result<u16, NetError> {
    Exchange::new(target, &target.url, deadline)
        .end_session(id, None)
        .await
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn initialize() -> Value {
    request(
        1,
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "pd-doctor", "version": env!("CARGO_PKG_VERSION")}
        }),
    )
}

fn fail(cause: McpCause, message: impl Into<String>) -> Failure {
    Failure {
        cause,
        message: message.into(),
    }
}

/// Performs the handshake before `deadline`; never panics on what the server sends.
pub async fn handshake(target: &McpTarget, deadline: Instant) -> Handshake {
    let mut c = Exchange::new(target, &target.url, deadline);
    let started = Instant::now();
    let mut stateful = false;
    let result = run(&mut c, &mut stateful, started).await;
    Handshake {
        result,
        evidence: c.evidence,
        stateful,
        header_names: target.headers.iter().map(|(n, _)| n.clone()).collect(),
    }
}

async fn run(
    c: &mut Exchange<'_>,
    stateful: &mut bool,
    started: Instant,
) -> Result<ServerInfo, Failure> {
    let url = c.target.url.clone();
    let init = c
        .post(&url, initialize(), None, None, HeaderMap::new())
        .await
        .map_err(net_failure)?;
    if !(200..300).contains(&init.status) {
        return Err(status_failure(c, init).await);
    }
    let reply = init
        .message
        .ok_or_else(|| fail(McpCause::NotMcp, "the answer to initialize is not JSON-RPC"))?;
    let result = rpc_result(&reply, "initialize")?;
    let protocol = result["protocolVersion"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let name = result["serverInfo"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let version = result["serverInfo"]["version"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let session = init.session;
    *stateful = session.is_some();

    let notified = c
        .post(
            &url,
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            session.as_deref(),
            Some(&protocol),
            HeaderMap::new(),
        )
        .await
        .map_err(net_failure)?;
    if !(200..300).contains(&notified.status) {
        return Err(fail(
            McpCause::ProtocolError,
            format!(
                "the server refused notifications/initialized with HTTP {}",
                notified.status
            ),
        ));
    }
    let listed = c
        .post(
            &url,
            request(2, "tools/list", json!({})),
            session.as_deref(),
            Some(&protocol),
            HeaderMap::new(),
        )
        .await
        .map_err(net_failure)?;
    if !(200..300).contains(&listed.status) {
        return Err(fail(
            McpCause::ProtocolError,
            format!("tools/list answered HTTP {}", listed.status),
        ));
    }
    let reply = listed
        .message
        .ok_or_else(|| fail(McpCause::NotMcp, "the answer to tools/list is not JSON-RPC"))?;
    let tools = rpc_result(&reply, "tools/list")?["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let elapsed_ms = http::millis_since(started);
    if let Some(id) = session {
        // Be a good client: end the session we opened. Best effort, inside the deadline.
        let _ = c.end_session(&id, Some(&protocol)).await;
    }
    Ok(ServerInfo {
        name,
        version,
        protocol,
        tools,
        elapsed_ms,
    })
}

fn rpc_result<'a>(reply: &'a Value, method: &str) -> Result<&'a Value, Failure> {
    if reply.get("jsonrpc").is_none()
        && reply.get("result").is_none()
        && reply.get("error").is_none()
    {
        return Err(fail(
            McpCause::NotMcp,
            format!("the answer to {method} is JSON but not JSON-RPC"),
        ));
    }
    if let Some(err) = reply.get("error") {
        let code = err["code"].as_i64().unwrap_or(0);
        let msg = err["message"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(160)
            .collect::<String>();
        return Err(fail(
            McpCause::ProtocolError,
            format!("{method} returned JSON-RPC error {code}: {msg}"),
        ));
    }
    reply
        .get("result")
        .filter(|r| r.is_object())
        .ok_or_else(|| {
            fail(
                McpCause::NotMcp,
                format!("the answer to {method} has no result"),
            )
        })
}

fn net_failure(e: NetError) -> Failure {
    match e {
        NetError::Timeout => fail(McpCause::Timeout, "connected, but no answer in time"),
        NetError::Refused => fail(McpCause::Refused, "connection refused"),
        NetError::Dns => fail(McpCause::Dns, "the host name does not resolve"),
        NetError::Other(msg) => fail(McpCause::NotMcp, msg),
    }
}

async fn status_failure(c: &mut Exchange<'_>, answer: Answer) -> Failure {
    let sent = if c.target.headers.is_empty() {
        "sent no headers".to_string()
    } else {
        format!(
            "sent headers {}",
            c.target
                .headers
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match answer.status {
        421 => fail(
            McpCause::HostRejected,
            format!("answered 421: it refuses Host {}", authority(&c.target.url)),
        ),
        401 | 403 => {
            if answer.status == 403 && answer.body.to_lowercase().contains("host") {
                return fail(
                    McpCause::HostRejected,
                    format!(
                        "answered 403 \"{}\": it refuses Host {}",
                        answer.body.trim(),
                        authority(&c.target.url)
                    ),
                );
            }
            // Tell a refused key from a refused Host: ask again as plain 127.0.0.1.
            if host_is_the_problem(c).await {
                return fail(
                    McpCause::HostRejected,
                    format!(
                        "answered {} with Host {} but accepts Host 127.0.0.1",
                        answer.status,
                        authority(&c.target.url)
                    ),
                );
            }
            fail(
                McpCause::Unauthorized,
                format!("answered {} to initialize; {sent}", answer.status),
            )
        }
        404 => fail(
            McpCause::NotFound,
            format!("answered 404: nothing at {}", c.target.url.path()),
        ),
        406 => fail(
            McpCause::NotAcceptable,
            "answered 406 to a POST that accepts JSON and SSE",
        ),
        s if s >= 500 => fail(McpCause::ServerError, format!("answered {s} to initialize")),
        s => fail(McpCause::NotMcp, format!("answered {s} to initialize")),
    }
}

async fn host_is_the_problem(c: &mut Exchange<'_>) -> bool {
    let mut url = c.target.url.clone();
    if url.set_host(Some("127.0.0.1")).is_err()
        || url.set_port(Some(c.target.connect.port())).is_err()
    {
        return false;
    }
    let mut extra = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("127.0.0.1:{}", c.target.connect.port())) {
        extra.insert(HOST, v);
    }
    let mut plain = Exchange::new(c.target, &url, c.deadline);
    let ok = matches!(plain.post(&url, initialize(), None, None, extra).await, Ok(a) if (200..300).contains(&a.status));
    c.evidence.extend(
        plain
            .evidence
            .into_iter()
            .map(|e| format!("{e} (retried as Host 127.0.0.1)")),
    );
    ok
}

fn authority(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.to_string(),
    }
}

/// `--compat`: `initialize` as an older client POSTs it, accepting neither JSON nor SSE
/// by name (`Accept: */*`, reqwest's own). Returns the status and its evidence line; a
/// session it opens is ended.
pub async fn accept_less_status(
    target: &McpTarget,
    deadline: Instant,
) -> (Result<u16, NetError>, String) {
    let c = Exchange::new(target, &target.url, deadline);
    let mut headers = c.headers(None, None);
    headers.remove(ACCEPT);
    let started = Instant::now();
    let req = c
        .client
        .post(target.url.clone())
        .headers(headers)
        .body(initialize().to_string());
    let result = c.receive(req, None).await;
    let took = http::millis_since(started);
    let shown = crate::redact::display_url(target.url.as_str());
    let line = match &result {
        Ok(a) => format!(
            "POST {shown} initialize with Accept: */* -> {} in {took} ms",
            a.status
        ),
        Err(e) => format!(
            "POST {shown} initialize with Accept: */* -> {} after {took} ms",
            e.describe()
        ),
    };
    if let Ok(Answer {
        session: Some(id), ..
    }) = &result
    {
        let _ = c.end_session(id, None).await;
    }
    (result.map(|a| a.status), line)
}

/// The stale-session test: a request carrying a session id the server never issued.
/// Returns the HTTP status, which must be 404 for clients to recover.
pub async fn unknown_session_status(
    target: &McpTarget,
    protocol: &str,
    deadline: Instant,
) -> (Result<u16, NetError>, String) {
    let mut c = Exchange::new(target, &target.url, deadline);
    let bogus = format!("pd-doctor-unknown-{}", std::process::id());
    let url = target.url.clone();
    let result = c
        .post(
            &url,
            request(3, "tools/list", json!({})),
            Some(&bogus),
            Some(protocol),
            HeaderMap::new(),
        )
        .await;
    (
        result.map(|a| a.status),
        c.evidence.pop().unwrap_or_default(),
    )
}
