//! `server.listen`: something listens on the server's port, and not on loopback only.

use std::net::IpAddr;

use crate::facts::Facts;
use crate::model::Finding;
use crate::project::Server;

pub async fn probe(f: &Facts, server: &Server) -> Finding {
    let port = server.port;
    let Some(listeners) = f.listeners_on(port) else {
        return connect_fallback(f, server).await;
    };
    if listeners.is_empty() {
        return Finding::fail("not-listening", format!("nothing listens on port {port}"))
            .hint(format!("start it: {}", server.start));
    }
    let mut addrs: Vec<IpAddr> = listeners.iter().map(|l| l.addr).collect();
    addrs.sort();
    addrs.dedup();
    let shown = addrs
        .iter()
        .map(|a| show(*a, port))
        .collect::<Vec<_>>()
        .join(", ");
    if addrs.iter().all(IpAddr::is_loopback) {
        return Finding::fail(
            "loopback-only",
            format!("listens on {shown} only: containers cannot reach it"),
        )
        .evidence(
            "containers come in through host.docker.internal (the Docker bridge), not loopback",
        )
        .hint(format!(
            "restart it bound to all addresses (--host 0.0.0.0): {}",
            server.start
        ));
    }
    Finding::ok("ok", format!("listening on {shown}"))
}

fn show(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Without a socket table, a connection to loopback is the best evidence there is.
async fn connect_fallback(f: &Facts, server: &Server) -> Finding {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    match tokio::time::timeout(f.timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Finding::ok("ok", format!("port {} accepts connections", server.port))
            .evidence(format!(
                "{}: bound addresses not checked",
                crate::facts::sockets::UNAVAILABLE
            )),
        _ => Finding::fail(
            "not-listening",
            format!("nothing accepts connections on port {}", server.port),
        )
        .hint(format!("start it: {}", server.start)),
    }
}
