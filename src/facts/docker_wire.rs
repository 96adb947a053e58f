//! Engine API requests in the debug trace: method, path (query values redacted), status
//! and time to the answer's head. bollard has no hook after a response, so while the
//! trace is on, the unix-socket and TCP transports are built here as bollard builds them
//! (hyperlocal or hyper's HTTP connector, no idle connections kept) and handed to it as
//! custom transports that log; the TLS transport of `docker_tls` logs the same way.
//! With the trace off, bollard's own transports are used, unchanged.

use std::time::Instant;

use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type Answer = Result<Response<Incoming>, bollard::errors::Error>;

/// The body type of bollard's requests, which bollard does not name publicly.
pub(super) trait BodyOf {
    type Body;
}

impl<B> BodyOf for Request<B> {
    type Body = B;
}

pub(super) type Body = <BollardRequest as BodyOf>::Body;

/// `Docker::connect_with_host`, with a logging transport while the trace is on. bollard
/// still checks the host first (a missing socket, an unknown scheme), with its errors.
pub(super) fn connect_with_host(host: &str) -> Result<Docker, bollard::errors::Error> {
    let plain = Docker::connect_with_host(host)?;
    if !crate::debuglog::enabled() {
        return Ok(plain);
    }
    let timeout = plain.timeout().as_secs();
    #[cfg(unix)]
    if let Some(path) = host.strip_prefix("unix://") {
        // hyperlocal finds the socket's path in the URI's host, hex-encoded.
        let hex: String = path.bytes().map(|b| format!("{b:02x}")).collect();
        return custom(hyperlocal::UnixConnector, format!("unix://{hex}"), timeout);
    }
    match host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        Some(addr) => custom(HttpConnector::new(), format!("http://{addr}"), timeout),
        None => Ok(plain),
    }
}

/// bollard over a logging transport on `connector`, dialling `addr`.
fn custom<C>(connector: C, addr: String, timeout: u64) -> Result<Docker, bollard::errors::Error>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let mut builder = Client::builder(TokioExecutor::new());
    // As bollard's own transports: no idle connections kept.
    builder.pool_max_idle_per_host(0);
    let client: Client<C, Body> = builder.build(connector);
    Docker::connect_with_custom_transport(traced(client), Some(addr), timeout, API_DEFAULT_VERSION)
}

/// A bollard transport over `client` that logs each request and its answer.
pub(super) fn traced<C>(
    client: Client<C, Body>,
) -> impl Fn(BollardRequest) -> BoxFuture<'static, Answer>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    move |request: BollardRequest| {
        let client = client.clone();
        let what = crate::debuglog::docker_request(request.method().as_str(), request.uri());
        let started = Instant::now();
        Box::pin(async move {
            let answer = client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from);
            crate::debuglog::docker_answer(
                &what,
                answer.as_ref().map(|r| r.status().as_u16()),
                started,
            );
            answer
        })
    }
}
