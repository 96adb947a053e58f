//! What a server's PID file says, judged against the live processes and the sockets they
//! own: the one definition of "this PID is the server", shared by `server.pidfile` and
//! by `reset --stop-servers` before it signals anything.

use std::time::{Duration, SystemTime};

use super::processes::ProcessInfo;
use super::Facts;
use crate::project::Server;
use crate::safefs::{self, Links, ReadError};

/// Start times have one-second resolution; a process may start a moment before it writes.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub enum PidFile {
    Absent,
    /// Exists but cannot be read as a file (a directory, permissions).
    Unreadable(String),
    /// Holds no PID; the first characters, for the evidence.
    Garbage(String),
    Dead(u32),
    /// Alive, but started after the file was written: not the process that wrote it.
    Reused {
        pid: u32,
        process: ProcessInfo,
        written: SystemTime,
    },
    /// Alive and the writer; `owns_port` is `None` where socket owners cannot be read.
    Alive {
        pid: u32,
        process: ProcessInfo,
        owns_port: Option<bool>,
    },
}

/// The PID a PID file holds, or its first characters for the evidence.
pub fn parse(bytes: &[u8]) -> Result<u32, String> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_string();
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| text.chars().take(32).collect())
}

pub fn read(f: &Facts, server: &Server) -> PidFile {
    // A layout without PID files: nothing claims a process.
    let Some(path) = &server.pid_file else {
        return PidFile::Absent;
    };
    let Some(written) = safefs::state(path).and_then(|s| s.modified) else {
        return PidFile::Absent;
    };
    let bytes = match safefs::read(path, safefs::PID_CAP, Links::Refuse) {
        Ok(bytes) => bytes,
        Err(ReadError::Missing) => return PidFile::Absent,
        Err(e) => return PidFile::Unreadable(e.to_string()),
    };
    let pid = match parse(&bytes) {
        Ok(pid) => pid,
        Err(shown) => return PidFile::Garbage(shown),
    };
    let Some(process) = f.processes().get(pid) else {
        return PidFile::Dead(pid);
    };
    if process.started > written + CLOCK_SLACK {
        return PidFile::Reused {
            pid,
            process,
            written,
        };
    }
    let owns_port = f.listeners().map(|_| {
        f.port_owners(server.port)
            .iter()
            .any(|o| f.processes().descends_from(*o, pid))
    });
    PidFile::Alive {
        pid,
        process,
        owns_port,
    }
}

/// `pid` is, right now, the server its PID file names: the file still says so, the process
/// wrote it, and it owns the server's port. Returns its command line for the report.
pub fn verify_server(f: &Facts, server: &Server, pid: u32) -> Result<String, String> {
    let shown = server
        .pid_file
        .as_ref()
        .map_or_else(|| "no PID file".into(), |p| f.project.show(p));
    match read(f, server) {
        PidFile::Alive {
            pid: p,
            process,
            owns_port,
        } if p == pid => match owns_port {
            Some(true) => Ok(crate::redact::command_line(&process.command)),
            Some(false) => Err(format!("pid {pid} does not own port {}", server.port)),
            None => Err(format!("who owns port {} cannot be read here", server.port)),
        },
        PidFile::Dead(_) => Err(format!("pid {pid} is not running")),
        PidFile::Reused { .. } => Err(format!(
            "pid {pid} started after {shown} was written: it is another process"
        )),
        _ => Err(format!("{shown} no longer names pid {pid}")),
    }
}
