//! pd-doctor's own transport for bollard: every answer of the engine read under a cap
//! that fits it, and every request in the debug trace.
//!
//! **Caps.** bollard reads a JSON answer whole (`collect`) before parsing it, and its
//! log and exec decoders buffer a frame until it is complete: an engine (a broken
//! socket proxy, a hostile remote, a tunnel gone wrong) that sends an endless body
//! would grow the process by gigabytes before the deadline. bollard's custom transport
//! must hand back hyper's own `Response<Incoming>`, which cannot be wrapped (no
//! `http_body_util::Limited` there), and hyper has no limit on a body. So the cap sits
//! one level down, on the connection: the connector's stream counts what it reads, and
//! past the request's cap a read fails with [`TooLarge`], which reaches bollard as the
//! body's error and `docker.engine` as the cause `too-large`. Connections are never
//! reused (no idle ones are kept, as in bollard's own transports), so the cap of a
//! connection is the cap of its one request. `tokio::io::AsyncReadExt::take` would
//! stop at the cap too, but as an end of stream: a truncated answer, told apart from an
//! engine that hung up by nothing.
//!
//! **Trace.** bollard has no hook after a response; while the trace is on, each request
//! is logged with its method, path (query values redacted), status and time to the
//! answer's head. The TLS transport of `tls` goes through the same transport.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type Answer = Result<Response<Incoming>, bollard::errors::Error>;

const MIB: u64 = 1024 * 1024;

/// The most read of one JSON answer (version, inspect, exec create and inspect, top):
/// a healthy engine's are a few KiB.
pub const MAX_JSON: u64 = 4 * MIB;

/// The most read of the container list (`docker ps -a`), the one JSON answer that grows
/// with the host: about 3 KiB a container, so some 5 000 containers.
pub const MAX_LIST: u64 = 16 * MIB;

/// The most read of a stream (logs, an archive, exec output): twice the largest cap
/// their readers keep (the 4 MiB of an archive, [`super::archive::MAX_TAR`]), for the
/// framing around them.
pub const MAX_STREAM: u64 = 8 * MIB;

/// What an answer may hold, by the request that asks for it.
fn cap_for(path: &str) -> u64 {
    let path = api_path(path);
    let stream = ["/logs", "/archive", "/start", "/attach"]
        .iter()
        .any(|end| path.ends_with(end));
    if stream {
        MAX_STREAM
    } else if path == "/containers/json" {
        MAX_LIST
    } else {
        MAX_JSON
    }
}

/// The path as the engine API documents it: without bollard's `/v1.47` prefix.
fn api_path(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    let numeric = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if numeric {
        &rest[end..]
    } else {
        path
    }
}

/// A cap as it is shown: `4 MiB`, or bytes when it is not whole MiB.
fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// An answer that ran past its cap: the error a capped connection's read fails with.
#[derive(Debug, thiserror::Error)]
#[error("the answer to {request} ran past {}, pd-doctor's cap for it", size(*.cap))]
pub struct TooLarge {
    /// Method and API path (`GET /containers/json`), no query.
    pub request: Arc<str>,
    pub cap: u64,
}

impl TooLarge {
    /// The [`TooLarge`] somewhere in `err`'s chain. An `io::Error`'s `source` skips the
    /// error it wraps, so each one is looked into.
    pub fn in_chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a TooLarge> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<TooLarge>() {
                return Some(found);
            }
            if let Some(inner) = e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                if let Some(found) = TooLarge::in_chain(inner) {
                    return Some(found);
                }
            }
            next = e.source();
        }
        None
    }
}

/// A connector whose connections read at most `cap` bytes (head, framing and body).
#[derive(Clone)]
struct Capped<C> {
    inner: C,
    cap: u64,
    request: Arc<str>,
}

impl<C> tower_service::Service<Uri> for Capped<C>
where
    C: tower_service::Service<Uri>,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin,
    C::Future: Send + 'static,
{
    type Response = TokioIo<CappedIo<TokioIo<C::Response>>>;
    type Error = C::Error;
    type Future = BoxFuture<'static, Result<Self::Response, C::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialled = self.inner.call(uri);
        let (cap, request) = (self.cap, self.request.clone());
        Box::pin(async move {
            let io = TokioIo::new(dialled.await?);
            Ok(TokioIo::new(CappedIo {
                io,
                read: 0,
                cap,
                request,
            }))
        })
    }
}

/// A connection that fails its reads with [`TooLarge`] once more than `cap` bytes came:
/// an answer of exactly `cap` bytes is read whole.
struct CappedIo<T> {
    io: T,
    read: u64,
    cap: u64,
    request: Arc<str>,
}

impl<T: AsyncRead + Unpin> AsyncRead for CappedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        let got = buf.filled().len().saturating_sub(before);
        this.read = this.read.saturating_add(got as u64);
        if this.read > this.cap {
            // A read that fails hands back nothing (tokio's contract): the bytes past
            // the cap are dropped with the answer.
            buf.set_filled(before);
            return Poll::Ready(Err(std::io::Error::other(TooLarge {
                request: this.request.clone(),
                cap: this.cap,
            })));
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CappedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<T: Connection> Connection for CappedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

/// The body type of bollard's requests, which bollard does not name publicly.
pub(super) trait BodyOf {
    type Body;
}

impl<B> BodyOf for Request<B> {
    type Body = B;
}

pub(super) type Body = <BollardRequest as BodyOf>::Body;

/// `Docker::connect_with_host`, over pd-doctor's capped (and, with the trace on,
/// logging) transport for unix sockets and plain TCP. bollard still checks the host
/// first (a missing socket, an unknown scheme), with its errors. Other hosts (a named
/// pipe on Windows) keep bollard's own transport.
pub(super) fn connect_with_host(host: &str) -> Result<Docker, bollard::errors::Error> {
    let plain = Docker::connect_with_host(host)?;
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

/// bollard over the capped transport on `connector`, dialling `addr`.
pub(super) fn custom<C>(
    connector: C,
    addr: String,
    timeout: u64,
) -> Result<Docker, bollard::errors::Error>
where
    C: tower_service::Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Docker::connect_with_custom_transport(
        transport(connector),
        Some(addr),
        timeout,
        API_DEFAULT_VERSION,
    )
}

/// A bollard transport over `connector`: each request on a connection of its own,
/// capped for what it asks for, and logged while the trace is on.
fn transport<C>(connector: C) -> impl Fn(BollardRequest) -> BoxFuture<'static, Answer>
where
    C: tower_service::Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Connection + Unpin + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |request: BollardRequest| {
        let path = api_path(request.uri().path());
        let capped = Capped {
            inner: connector.clone(),
            cap: cap_for(path),
            request: format!("{} {path}", request.method()).into(),
        };
        let mut builder = Client::builder(TokioExecutor::new());
        // As bollard's own transports: no idle connections kept, so each request
        // dials a connection of its own, and its cap is the request's.
        builder.pool_max_idle_per_host(0);
        let client: Client<_, Body> = builder.build(capped);
        let traced = crate::debuglog::enabled();
        let what = traced
            .then(|| crate::debuglog::docker_request(request.method().as_str(), request.uri()));
        let started = Instant::now();
        Box::pin(async move {
            let answer = client
                .request(request)
                .await
                .map_err(bollard::errors::Error::from);
            if let Some(what) = what {
                crate::debuglog::docker_answer(
                    &what,
                    answer.as_ref().map(|r| r.status().as_u16()),
                    started,
                );
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_gets_the_cap_that_fits_it() {
        assert_eq!(cap_for("/v1.47/version"), MAX_JSON);
        assert_eq!(cap_for("/_ping"), MAX_JSON);
        assert_eq!(cap_for("/v1.47/containers/json"), MAX_LIST);
        assert_eq!(cap_for("/v1.47/containers/c0ffee/json"), MAX_JSON);
        assert_eq!(cap_for("/v1.47/containers/c0ffee/logs"), MAX_STREAM);
        assert_eq!(cap_for("/v1.47/containers/c0ffee/archive"), MAX_STREAM);
        assert_eq!(cap_for("/v1.47/exec/e1/start"), MAX_STREAM);
        assert_eq!(cap_for("/v1.47/exec/e1/json"), MAX_JSON);
        assert_eq!(api_path("/v1.47/images/vim/json"), "/images/vim/json");
        assert_eq!(api_path("/volumes"), "/volumes");
    }

    #[tokio::test]
    async fn a_read_past_the_cap_fails_with_too_large() {
        use tokio::io::AsyncReadExt;
        let (mut engine, ours) = tokio::io::duplex(64);
        let mut capped = CappedIo {
            io: ours,
            read: 0,
            cap: 10,
            request: "GET /version".into(),
        };
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = engine.write_all(&[b'x'; 64]).await;
        });
        let mut got = Vec::new();
        let err = capped.read_to_end(&mut got).await.unwrap_err();
        assert!(got.len() <= 10, "{}", got.len());
        let found = TooLarge::in_chain(&err).expect("TooLarge in the chain");
        assert_eq!(
            found.to_string(),
            "the answer to GET /version ran past 10 bytes, pd-doctor's cap for it"
        );
    }
}
