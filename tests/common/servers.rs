//! Servers for tests. Healthy paths use the official Rust MCP SDK (rmcp) for real;
//! hand-written servers exist only for faults a real server does not commit on purpose.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct QmsTools {
    tool_router: ToolRouter<Self>,
    /// The name and version the server gives in `initialize`, when the test sets them.
    identity: Option<(String, String)>,
}

#[tool_router]
impl QmsTools {
    fn new(identity: Option<(String, String)>) -> Self {
        QmsTools {
            tool_router: Self::tool_router(),
            identity,
        }
    }

    #[tool(description = "List the QMS inbox")]
    fn qms_inbox(&self) -> String {
        "inbox: empty".into()
    }

    #[tool(description = "Run a git command")]
    fn git_exec(&self) -> String {
        "ok".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for QmsTools {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        if let Some((name, version)) = &self.identity {
            info.server_info.name = name.clone();
            info.server_info.version = version.clone();
        }
        info
    }
}

#[derive(Debug, Clone)]
pub struct McpOptions {
    pub stateful: bool,
    /// Required X-API-Key value; requests without it get 401 from an auth layer.
    pub key: Option<String>,
    /// Required Authorization value (`Bearer internal-trusted` in Pipe Dream); requests
    /// without it get 401 from the same layer.
    pub authorization: Option<String>,
    /// Accept `Host: host.docker.internal` (rmcp's default refuses it).
    pub allow_docker_host: bool,
    pub bind: Bind,
    /// The server's name and version in `initialize` (rmcp's own when `None`).
    pub identity: Option<(String, String)>,
}

impl Default for McpOptions {
    fn default() -> Self {
        McpOptions {
            stateful: false,
            key: None,
            authorization: None,
            allow_docker_host: true,
            bind: Bind::Loopback,
            identity: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// 127.0.0.1 only: the host sees it, containers do not.
    Loopback,
    /// 127.0.0.1 and the Docker bridge's address: what `--host 0.0.0.0` gives containers,
    /// without listening on every interface of the test machine.
    Reachable,
}

/// Headers a server requires, each with its one accepted value.
type Required = Arc<Vec<(&'static str, String)>>;

async fn require_headers(State(required): State<Required>, req: Request, next: Next) -> Response {
    for (header, value) in required.iter() {
        let sent = req.headers().get(*header).and_then(|v| v.to_str().ok());
        if sent != Some(value.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                format!("missing or wrong {header}"),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The Docker bridge's address on this host (docker0), if there is one.
pub fn bridge_ip() -> Option<IpAddr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", "docker0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    cidr.split('/').next()?.parse().ok()
}

/// A port on the Docker bridge where this process accepts every TCP connection and
/// closes it at once: the lab's stand-in for Anthropic's API, which pd-doctor only
/// connects to (it sends no byte). One per test process, for its life.
pub fn lab_api_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let bridge = bridge_ip().expect("a Docker bridge (docker0) for the lab's API stand-in");
        let listener = std::net::TcpListener::bind(SocketAddr::new(bridge, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        port
    })
}

/// Listeners for one port on each address `bind` asks for.
pub async fn listeners(bind: Bind) -> Vec<TcpListener> {
    for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        if bind == Bind::Loopback {
            return vec![first];
        }
        let port = first.local_addr().unwrap().port();
        let bridge =
            bridge_ip().expect("a Docker bridge (docker0) to bind a reachable test server to");
        if let Ok(second) = TcpListener::bind(SocketAddr::new(bridge, port)).await {
            return vec![first, second];
        }
    }
    panic!("no port free on both loopback and the Docker bridge");
}

pub struct Served {
    pub port: u16,
}

/// A real MCP server (rmcp Streamable HTTP) at `/mcp`.
pub async fn mcp_server(opts: McpOptions) -> Served {
    logged_mcp_server(opts, None).await
}

/// What a server answered: one line of its access log.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub user_agent: String,
}

impl std::fmt::Display for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {} ({})",
            self.method, self.path, self.status, self.user_agent
        )
    }
}

/// A server's access log, shared with the test.
pub type AccessLog = Arc<std::sync::Mutex<Vec<Logged>>>;

async fn log_access(State(log): State<AccessLog>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let user_agent = req
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let response = next.run(req).await;
    log.lock().unwrap().push(Logged {
        method,
        path,
        status: response.status().as_u16(),
        user_agent,
    });
    response
}

/// A real MCP server, as [`mcp_server`], that writes every answer (its auth layer's too)
/// to `log` when there is one, as a server's access log does.
pub async fn logged_mcp_server(opts: McpOptions, log: Option<AccessLog>) -> Served {
    let ls = listeners(opts.bind).await;
    serve_mcp(opts, ls, log)
}

/// The same on listeners the caller bound (their `bind` is ignored).
pub fn mcp_server_on(opts: McpOptions, ls: Vec<TcpListener>) -> Served {
    serve_mcp(opts, ls, None)
}

fn serve_mcp(opts: McpOptions, ls: Vec<TcpListener>, log: Option<AccessLog>) -> Served {
    let mut config = StreamableHttpServerConfig::default().with_legacy_session_mode(opts.stateful);
    if opts.allow_docker_host {
        config = config.with_allowed_hosts(["localhost", "127.0.0.1", "host.docker.internal"]);
    }
    let identity = opts.identity.clone();
    let service: StreamableHttpService<QmsTools, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(QmsTools::new(identity.clone())),
        Default::default(),
        config,
    );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    let required: Vec<(&'static str, String)> = [
        ("X-API-Key", opts.key),
        ("Authorization", opts.authorization),
    ]
    .into_iter()
    .filter_map(|(header, value)| Some((header, value?)))
    .collect();
    if !required.is_empty() {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(required),
            require_headers,
        ));
    }
    if let Some(log) = log {
        router = router.layer(axum::middleware::from_fn_with_state(log, log_access));
    }
    let port = ls[0].local_addr().unwrap().port();
    for l in ls {
        let router = router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(l, router).await;
        });
    }
    Served { port }
}

/// What a fault server does with each connection.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Accepts, reads, never answers.
    Hang,
    /// Answers this status with this body and content type.
    Status(u16, &'static str, String),
    /// 200, then one byte of an event stream every 100 ms, forever.
    Drip,
    /// 200 with a body of this many bytes.
    Huge(usize),
    /// Up, but not ready for MCP: 406 to a GET, 503 to a POST (still starting).
    NotReady,
    /// 307 to this URL, for every request.
    Redirect(String),
    /// 200 and complete event-stream events as fast as the socket takes them, for a minute.
    Flood,
}

pub fn ok_json(body: &str) -> Fault {
    Fault::Status(200, "application/json", body.to_string())
}

/// A hand-written HTTP server on loopback that commits one fault.
pub async fn fault_server(fault: Fault) -> Served {
    fault_server_on(fault, Bind::Loopback).await
}

/// The same, on the addresses `bind` asks for.
pub async fn fault_server_on(fault: Fault, bind: Bind) -> Served {
    let ls = listeners(bind).await;
    let port = ls[0].local_addr().unwrap().port();
    for listener in ls {
        serve_fault(listener, fault.clone());
    }
    Served { port }
}

fn serve_fault(listener: TcpListener, fault: Fault) {
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let fault = fault.clone();
            tokio::spawn(async move {
                let request = read_head(&mut sock).await;
                let fault = match fault {
                    Fault::NotReady if request.starts_with(b"GET") => {
                        Fault::Status(406, "text/plain", "Not Acceptable".into())
                    }
                    Fault::NotReady => Fault::Status(503, "text/plain", "starting up".into()),
                    other => other,
                };
                match fault {
                    Fault::Hang | Fault::NotReady => {
                        tokio::time::sleep(Duration::from_secs(120)).await
                    }
                    Fault::Status(code, ctype, body) => {
                        let head = format!(
                            "HTTP/1.1 {code} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                    Fault::Drip => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                            .await;
                        for _ in 0..1200 {
                            if sock.write_all(b"1\r\n:\r\n").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    Fault::Redirect(to) => {
                        let head = format!(
                            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                    }
                    Fault::Flood => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
                            .await;
                        let event = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n".repeat(256);
                        let until = tokio::time::Instant::now() + Duration::from_secs(60);
                        while tokio::time::Instant::now() < until {
                            if sock.write_all(&event).await.is_err() {
                                return;
                            }
                        }
                    }
                    Fault::Huge(n) => {
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n");
                        let _ = sock.write_all(head.as_bytes()).await;
                        let chunk = vec![b' '; 64 * 1024];
                        let mut left = n;
                        while left > 0 {
                            let k = left.min(chunk.len());
                            if sock.write_all(&chunk[..k]).await.is_err() {
                                return;
                            }
                            left -= k;
                        }
                    }
                }
            });
        }
    });
}

/// What a client sent: its request head and as much body as it announced, or what came
/// until half a second after its last byte. A client on a busy machine may send its
/// request in pieces; answering before the rest arrives makes the kernel reset the
/// connection, and the client never sees the answer.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    while buf.len() < 65536 && !request_complete(&buf) {
        match tokio::time::timeout(Duration::from_millis(500), sock.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
}

fn request_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    buf.len() >= end + 4 + length
}

/// A server that answers every POST with `body` and a fresh `Mcp-Session-Id`, whatever
/// session the request carries: stateful, yet never says 404 to an unknown session.
pub async fn session_echo_server(body: &'static str) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_millis(500), sock.read(&mut buf)).await;
                let text = String::from_utf8_lossy(&buf);
                let (status, answer) = if text.contains("\"method\":\"tools/list\"") {
                    (
                        200,
                        r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#.to_string(),
                    )
                } else if text.contains("notifications/initialized") {
                    (202, String::new())
                } else {
                    (200, body.to_string())
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nMcp-Session-Id: s-1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    answer.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(answer.as_bytes()).await;
            });
        }
    });
    Served { port }
}

/// qms and git as the primer runs them: reachable from containers, qms keyed, git open.
pub async fn reachable_pair() -> (u16, u16) {
    pair(Bind::Reachable).await
}

/// qms (keyed) and git (open) bound as `bind` says; their ports.
pub async fn pair(bind: Bind) -> (u16, u16) {
    pair_logged(bind, None).await
}

/// The same, both writing their answers to `log` when there is one.
pub async fn pair_logged(bind: Bind, log: Option<AccessLog>) -> (u16, u16) {
    let qms = logged_mcp_server(
        McpOptions {
            key: Some("qms-internal".into()),
            bind,
            ..Default::default()
        },
        log.clone(),
    )
    .await;
    let git = logged_mcp_server(
        McpOptions {
            bind,
            ..Default::default()
        },
        log,
    )
    .await;
    (qms.port, git.port)
}
