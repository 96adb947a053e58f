//! Starting a server that is not listening. The command is the server's `start` from
//! the layout (`pd-doctor.toml` or the defaults), never anything read from a file a
//! container can write; it runs only when its program, every link resolved, is a regular
//! file inside the project root. It runs from the root without a shell (the command line
//! split into argv), in a process group of its own so it outlives pd-doctor, with its
//! output in a log under `.pd-doctor/logs/`. The repair is done when the server answers
//! an MCP handshake, within the server's start timeout; otherwise it failed, and the
//! log's last lines say why.

use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use super::{Context, Outcome};
use crate::facts::Facts;
use crate::plan::{StartCommand, LOG_DIR};
use crate::project::Project;
use crate::safefs::Dir;

/// The log's last lines shown when a server does not come up, each at most this long.
const LOG_LINES: usize = 10;
const LOG_LINE_CHARS: usize = 200;
const POLL: Duration = Duration::from_millis(250);

/// Runs the start command and waits for a handshake.
pub async fn start(server: &str, planned: &StartCommand, cx: &Context) -> Outcome {
    let Some(spec) = cx.project.server(server) else {
        return Outcome::failed(format!("no server {server} in this project"));
    };
    // Resolved again now: the program must still be the one the plan named.
    match cx.project.start_command(spec) {
        Ok(now) if now == *planned => {}
        Ok(_) => {
            return Outcome::Refused(format!(
                "the start command of {server} changed since the plan was made"
            ))
        }
        Err(why) => return Outcome::Refused(format!("not starting {server}: {why}")),
    }
    let (logs, log) = match open_log(&cx.project, server, cx.stamp) {
        Ok(l) => l,
        Err(e) => return Outcome::failed(format!("creating a log under {LOG_DIR}: {e}")),
    };
    let shown_log = cx.show(&logs.path().join(&log.1));
    let mut cmd = std::process::Command::new(&planned.program);
    cmd.args(&planned.args)
        .current_dir(&cx.project.root)
        .stdin(Stdio::null());
    match log.0.try_clone() {
        Ok(out) => cmd.stdout(out).stderr(log.0),
        Err(e) => return Outcome::failed(format!("{shown_log}: {e}")),
    };
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("could not run {}: {e}", spec.start)),
    };
    let started = Instant::now();
    let deadline = started + spec.start_timeout;
    let mut last = String::from("it never accepted a connection");
    let mut exited = None;
    loop {
        let facts = Facts::new(cx.project.clone(), cx.timeout);
        if let Some(h) = facts.handshake(spec).await {
            match &h.result {
                Ok(info) => {
                    return Outcome::Done(format!(
                        "started {server} ({}): {} {} answered the MCP handshake after {:.1} s; log: {shown_log}",
                        spec.start,
                        info.name,
                        info.version,
                        started.elapsed().as_secs_f64()
                    ))
                }
                Err(e) => last = format!("last attempt: {} ({})", e.message, e.cause),
            }
        }
        if exited.is_none() {
            exited = child.try_wait().ok().flatten();
        }
        // A start script that failed says so at once; one that succeeded (it put the
        // server in the background) leaves the waiting to the deadline.
        let failed_early = exited.filter(|s| !s.success());
        if failed_early.is_some() || Instant::now() >= deadline {
            let why = match failed_early {
                Some(status) => format!("{} exited with {status}", spec.start),
                None => format!(
                    "{server} did not answer an MCP handshake within {}",
                    crate::printable::duration(spec.start_timeout)
                ),
            };
            let tail = log_tail(&logs, &log.1);
            let said = if tail.is_empty() {
                format!("; {shown_log} is empty")
            } else {
                format!("; the last lines of {shown_log}:")
            };
            return Outcome::Failed(format!("{why}; {last}{said}"), tail);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A new log file `<server>-start.<stamp>.log` in `.pd-doctor/logs/` of the root,
/// created exclusively through folder handles that never follow a link.
fn open_log(
    project: &Project,
    server: &str,
    stamp: u128,
) -> std::io::Result<(Dir, (std::fs::File, String))> {
    let mut dir = Dir::open(&project.root)?;
    for part in LOG_DIR.split('/') {
        dir = dir.subdir(part)?;
    }
    let file = dir.create_retrying(&format!("{server}-start.{stamp}.log"))?;
    Ok((dir, file))
}

/// The log's last lines, each capped; the report makes them printable.
fn log_tail(dir: &Dir, name: &str) -> Vec<String> {
    let bytes = dir
        .read_tail(name, (LOG_LINES * LOG_LINE_CHARS) as u64)
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_LINES)..]
        .iter()
        .map(|l| {
            format!(
                "log: {}",
                l.chars().take(LOG_LINE_CHARS).collect::<String>()
            )
        })
        .collect()
}
