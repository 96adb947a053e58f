//! Processes as the PID-file checks need them: alive, when started, what they run, and
//! whether one descends from another (a server's worker may hold its socket).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: u32,
    pub started: SystemTime,
    pub command: String,
}

pub struct ProcessTable {
    system: Option<System>,
}

impl ProcessTable {
    /// One snapshot of every process: command lines and parents, nothing costly.
    pub fn snapshot() -> Self {
        let system = System::new().ok().map(|mut s| {
            s.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always),
            );
            s
        });
        ProcessTable { system }
    }

    pub fn get(&self, pid: u32) -> Option<ProcessInfo> {
        let p = self.system.as_ref()?.process(Pid::from_u32(pid))?;
        // A zombie has exited; only its parent has not collected it yet.
        if p.status() == sysinfo::ProcessStatus::Zombie {
            return None;
        }
        let command = p
            .cmd()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Some(ProcessInfo {
            pid,
            started: UNIX_EPOCH + Duration::from_secs(p.start_time()),
            command: if command.is_empty() {
                p.name().to_string_lossy().into_owned()
            } else {
                command
            },
        })
    }

    /// `pid` is `ancestor` or one of its descendants.
    pub fn descends_from(&self, pid: u32, ancestor: u32) -> bool {
        let Some(system) = &self.system else {
            return pid == ancestor;
        };
        let mut current = Some(Pid::from_u32(pid));
        for _ in 0..64 {
            match current {
                Some(p) if p.as_u32() == ancestor => return true,
                Some(p) => current = system.process(p).and_then(|p| p.parent()),
                None => return false,
            }
        }
        false
    }
}
