//! `server.pidfile`: the PID file, if any, names the live server that owns the port.

use crate::causes::{CommonCause, PidfileCause};
use crate::facts::pidfile::{self, PidFile};
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::Server;
use crate::redact::command_line as describe_command;

pub fn probe(f: &Facts, server: &Server) -> Finding {
    let Some(path) = &server.pid_file else {
        return Finding::ok(
            PidfileCause::Absent,
            format!(
                "this layout keeps no PID files; {}",
                port_story(f, server.port)
            ),
        );
    };
    let shown = f.project.show(path);
    let remove = |why: &str| {
        FixPlan::one(Action::RemoveFile {
            path: path.clone(),
            why: why.to_string(),
        })
    };
    match pidfile::read(f, server) {
        PidFile::Absent => Finding::ok(PidfileCause::Absent, format!("no PID file; {}", port_story(f, server.port))),
        PidFile::Unreadable(why) => Finding::fail(PidfileCause::Unreadable, format!("{shown} cannot be read: {why}"))
            .hint(format!("look at it: ls -la {shown}")),
        PidFile::Garbage(content) => Finding::fail(PidfileCause::Garbage, format!("{shown} does not hold a PID"))
            .evidence(format!("content: {content:?}"))
            .hint(format!("remove it and start the server again: rm {shown} && {}", server.start))
            .fix(remove("it holds no PID")),
        PidFile::Dead(pid) => Finding::fail(PidfileCause::Dead, format!("{shown} names pid {pid}, which is not running"))
            .evidence(port_story(f, server.port))
            .hint(format!("the server died; remove the file and start it: rm {shown} && {}", server.start))
            .fix(remove("its process is gone")),
        PidFile::Reused { pid, process, written } => Finding::fail(
            PidfileCause::Reused,
            format!("{shown} names pid {pid}, but that pid now belongs to another process"),
        )
        .evidence(format!(
            "pid {pid} ({}) started {}, the file was written {}",
            describe_command(&process.command),
            humantime::format_rfc3339_seconds(process.started),
            humantime::format_rfc3339_seconds(written)
        ))
        .hint(format!("do not kill {pid}; remove the file: rm {shown}"))
        .fix(remove("its pid was reused by another process")),
        PidFile::Alive { pid, process, owns_port: None } => {
            Finding::ok(CommonCause::Ok, format!("pid {pid} is alive ({})", describe_command(&process.command)))
                .evidence("this system's socket table cannot be read: port ownership not checked")
        }
        PidFile::Alive { pid, process, owns_port: Some(true) } => {
            Finding::ok(CommonCause::Ok, format!("pid {pid} is alive and owns port {}", server.port))
                .evidence(format!("pid {pid}: {}", describe_command(&process.command)))
        }
        PidFile::Alive { pid, process, owns_port: Some(false) } => Finding::warn(
            PidfileCause::PortOwnerMismatch,
            format!("pid {pid} is alive but does not own port {}", server.port),
        )
        .evidence(format!("pid {pid}: {}", describe_command(&process.command)))
        .evidence(port_story(f, server.port))
        .hint(format!(
            "a different process serves the port, or the server is still starting; check: ps -p {pid} -o pid,args"
        )),
    }
}

/// "port 8000 is served by pid 42 (python -m qms_mcp)" or "nothing listens on port 8000".
pub(super) fn port_story(f: &Facts, port: u16) -> String {
    if f.listeners().is_none() {
        return format!("who owns port {port} cannot be read here");
    }
    let owners = f.port_owners(port);
    if owners.is_empty() {
        return match f.listeners_on(port) {
            Some(l) if !l.is_empty() => {
                format!("port {port} is in use by a process pd-doctor cannot see")
            }
            _ => format!("nothing listens on port {port}"),
        };
    }
    let who: Vec<String> = owners
        .iter()
        .map(|pid| match f.processes().get(*pid) {
            Some(p) => format!("pid {pid} ({})", describe_command(&p.command)),
            None => format!("pid {pid}"),
        })
        .collect();
    format!("port {port} is served by {}", who.join(", "))
}
