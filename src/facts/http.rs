//! HTTP as the probes need it: a client that dials a chosen address while sending the
//! Host header of the URL the agents use, errors sorted into the contract's causes, and
//! bodies read under a size cap and a deadline (a server that drips forever is a timeout).

use std::error::Error as _;
use std::net::SocketAddr;

use eventsource_stream::{EventStreamError, Eventsource as _};
use futures::{Stream, StreamExt as _};
use reqwest::{Client, Response, Url};
use tokio::time::Instant;

use crate::causes::NetCause;

/// An MCP answer or OAuth document is a few KB; anything past this is not one.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    Refused,
    Dns,
    Timeout,
    Other(String),
}

impl NetError {
    pub fn cause(&self) -> NetCause {
        match self {
            NetError::Refused => NetCause::Refused,
            NetError::Dns => NetCause::Dns,
            NetError::Timeout => NetCause::Timeout,
            NetError::Other(_) => NetCause::NotMcp,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            NetError::Refused => "connection refused".into(),
            NetError::Dns => "host name does not resolve".into(),
            NetError::Timeout => "no answer in time".into(),
            NetError::Other(e) => e.clone(),
        }
    }
}

/// A client that sends requests for `url` to `connect` instead of resolving its host:
/// `http://host.docker.internal:8000/mcp` probed on 127.0.0.1:8000 with the real Host.
pub fn client_for(url: &Url, connect: Option<SocketAddr>) -> Client {
    let mut builder = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("pd-doctor/", env!("CARGO_PKG_VERSION")));
    if let (Some(host), Some(addr)) = (url.host_str(), connect) {
        builder = builder.resolve(host, addr);
    }
    builder.build().unwrap_or_default()
}

pub fn classify(err: &reqwest::Error) -> NetError {
    if err.is_timeout() {
        return NetError::Timeout;
    }
    let mut source = err.source();
    let mut text = err.to_string();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return NetError::Refused,
                std::io::ErrorKind::TimedOut => return NetError::Timeout,
                _ => {}
            }
        }
        text = format!("{text}: {s}");
        source = s.source();
    }
    let lower = text.to_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        NetError::Dns
    } else if lower.contains("connection refused") {
        NetError::Refused
    } else {
        NetError::Other(text)
    }
}

/// Sends under the deadline; a deadline that passes is [`NetError::Timeout`].
pub async fn send(
    request: reqwest::RequestBuilder,
    deadline: Instant,
) -> Result<Response, NetError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| classify(&e))?;
    let logged = crate::debuglog::http_request(&request);
    let result = match tokio::time::timeout_at(deadline, client.execute(request)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(NetError::Timeout),
    };
    crate::debuglog::http_response(
        logged,
        result
            .as_ref()
            .map(|r| r.status().as_u16())
            .map_err(NetError::cause),
    );
    result
}

/// Reads at most `MAX_BODY_BYTES` (more is an error), before the deadline.
pub async fn read_body(mut resp: Response, deadline: Instant) -> Result<Vec<u8>, NetError> {
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return Err(NetError::Timeout),
            Ok(Err(e)) => return Err(classify(&e)),
            Ok(Ok(None)) => return Ok(body),
            Ok(Ok(Some(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY_BYTES {
                    return Err(NetError::Other(format!(
                        "answer larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
            }
        }
    }
}

/// Reads a `text/event-stream` until one event's data satisfies `want`, the stream ends,
/// the cap is reached or the deadline passes. Streams stay open by design, so waiting for
/// their end would hang on healthy servers.
pub async fn read_sse_until<T>(
    resp: Response,
    deadline: Instant,
    mut want: impl FnMut(&str) -> Option<T>,
) -> Result<Option<T>, NetError> {
    // Counted before decoding: a stream that never ends an event is cut at the cap.
    let mut total = 0usize;
    let chunks = resp.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(Feed::Net)?;
        total += chunk.len();
        if total > MAX_BODY_BYTES {
            return Err(Feed::TooLarge);
        }
        Ok(chunk)
    });
    let mut events = std::pin::pin!(event_data(chunks));
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) => return Err(NetError::Timeout),
            Ok(None) => return Ok(None),
            Ok(Some(Ok(data))) => {
                if let Some(found) = want(&data) {
                    return Ok(Some(found));
                }
            }
            Ok(Some(Err(EventStreamError::Transport(Feed::Net(e))))) => return Err(classify(&e)),
            Ok(Some(Err(EventStreamError::Transport(Feed::TooLarge)))) => {
                return Err(NetError::Other(format!(
                    "event stream passed {MAX_BODY_BYTES} bytes without an answer"
                )))
            }
            Ok(Some(Err(e))) => return Err(NetError::Other(format!("event stream: {e}"))),
        }
    }
}

/// Why a response's bytes stopped: the network, or the cap.
#[derive(Debug)]
enum Feed {
    Net(reqwest::Error),
    TooLarge,
}

impl std::fmt::Display for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feed::Net(e) => e.fmt(f),
            Feed::TooLarge => f.write_str("too large"),
        }
    }
}

/// The `data` of each event of a `text/event-stream`, decoded by `eventsource-stream`
/// (bytes are buffered across chunks, so a UTF-8 character or a CRLF split between two
/// chunks is read whole; LF, CRLF and CR all end lines).
pub fn event_data<S, B, E>(chunks: S) -> impl Stream<Item = Result<String, EventStreamError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    chunks.eventsource().map(|event| event.map(|e| e.data))
}

/// Time left before the deadline, for messages.
pub fn millis_since(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn refused_and_silent_servers_have_their_causes() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let url = Url::parse(&format!("http://{closed}/mcp")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let err = send(client_for(&url, None).get(url.clone()), deadline)
            .await
            .unwrap_err();
        assert_eq!(err, NetError::Refused);
        // Accepts (the kernel does, from its backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/mcp", silent.local_addr().unwrap())).unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        let err = send(client_for(&url, None).get(url.clone()), deadline)
            .await
            .unwrap_err();
        assert_eq!(err, NetError::Timeout);
    }
}
