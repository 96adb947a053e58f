//! `server.listen`: something listens on the server's port, and not on loopback only.

use std::net::IpAddr;

use crate::causes::{CommonCause, ListenCause};
use crate::facts::pidfile::{self, PidFile};
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::Server;

pub async fn probe(f: &Facts, server: &Server) -> Finding {
    let port = server.port;
    let Some(listeners) = f.listeners_on(port) else {
        return connect_fallback(f, server).await;
    };
    if listeners.is_empty() {
        return not_listening(f, server, format!("nothing listens on port {port}"));
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
            ListenCause::LoopbackOnly,
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
    let finding = Finding::ok(CommonCause::Ok, format!("listening on {shown}"));
    // Without a PID file, the port's owner is the evidence of which server this is.
    match server.pid_file {
        None => finding.evidence(super::pidfile::port_story(f, port)),
        Some(_) => finding,
    }
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
        Ok(Ok(_)) => Finding::ok(
            CommonCause::Ok,
            format!("port {} accepts connections", server.port),
        )
        .evidence(format!(
            "{}: bound addresses not checked",
            crate::facts::sockets::UNAVAILABLE
        )),
        _ => not_listening(
            f,
            server,
            format!("nothing accepts connections on port {}", server.port),
        ),
    }
}

fn shown_pid_file(f: &Facts, server: &Server) -> String {
    server
        .pid_file
        .as_ref()
        .map_or_else(String::new, |p| f.project.show(p))
}

/// Nothing listens: the hint says how to start the server, and `--fix` starts it when
/// no live process claims it and its start command may be run (see `fixes::start`).
fn not_listening(f: &Facts, server: &Server, message: String) -> Finding {
    let finding = Finding::fail(ListenCause::NotListening, message);
    let why_not = match pidfile::read(f, server) {
        PidFile::Alive { pid, .. } => Err(format!(
            "pid {pid} of {} is alive: it may still be starting",
            shown_pid_file(f, server)
        )),
        PidFile::Unreadable(why) => Err(format!(
            "{} cannot be read: {why}",
            shown_pid_file(f, server)
        )),
        _ => f.project.start_command(server),
    };
    match why_not {
        Ok(command) => finding
            .hint(format!("start it: {}", server.start))
            .fix(FixPlan::one(Action::StartServer {
                server: server.name.clone(),
                command,
                wait: server.start_timeout,
            })),
        Err(why) => finding.hint(format!(
            "start it: {}; pd-doctor --fix does not: {why}",
            server.start
        )),
    }
}
