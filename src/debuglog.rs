//! The debug trace: `PD_DOCTOR_LOG=debug` (or `-vv`) writes a timestamped line to stderr
//! for every probe's start and end, every HTTP exchange and every Docker API call.
//!
//! Only pd-doctor's own events are written (never those of its dependencies, which may
//! log headers or bodies). What is logged is chosen not to hold secrets: URLs through
//! [`crate::redact::display_url`], errors as their cause code, never header values or
//! bodies. Every line is then scrubbed of the secrets the run has read so far and has
//! its control characters escaped ([`crate::printable::line`]) on its way to stderr.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::printable;
use crate::redact::{self, SecretSet};

/// The variable that turns the trace on: a level (`debug`, `trace`, `info`, `off`...).
pub const VAR: &str = "PD_DOCTOR_LOG";

const TARGET: &str = "pd_doctor";

static SECRETS: OnceLock<SecretSet> = OnceLock::new();
static ON: OnceLock<bool> = OnceLock::new();

/// The level asked for: `PD_DOCTOR_LOG` wins (an unknown value means `debug`), else
/// `-vv` or more is `debug`; otherwise no trace.
pub fn level(verbosity: u8, var: Option<&str>) -> LevelFilter {
    match var.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v.parse().unwrap_or(LevelFilter::DEBUG),
        None if verbosity >= 2 => LevelFilter::DEBUG,
        None => LevelFilter::OFF,
    }
}

/// Installs the trace writer on stderr, when asked for.
pub fn init(verbosity: u8) {
    let var = std::env::var(VAR).ok();
    let level = level(verbosity, var.as_deref());
    let _ = ON.set(level >= LevelFilter::DEBUG);
    if level == LevelFilter::OFF {
        return;
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(|| SafeStderr);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(Targets::new().with_target(TARGET, level))
        .try_init();
}

/// Whether the trace is being written (the progress line then stays away).
pub fn enabled() -> bool {
    ON.get().copied().unwrap_or(false)
}

/// From now on every line is scrubbed of the secrets in `secrets` (shared: it grows as
/// the run reads configs).
pub fn watch(secrets: &SecretSet) {
    let _ = SECRETS.set(secrets.clone());
}

/// stderr, one whole event per write: secrets scrubbed, control characters escaped.
struct SafeStderr;

/// One formatted event as it may reach stderr.
fn safe_line(buf: &[u8], secrets: Option<&SecretSet>) -> String {
    let text = String::from_utf8_lossy(buf);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let body = match secrets {
        Some(s) => s.scrub(body),
        None => body.to_string(),
    };
    format!("{}\n", printable::line(&body))
}

impl Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = safe_line(buf, SECRETS.get());
        std::io::stderr().lock().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Runs one probe, logging its start, its end with status and cause, and its duration.
pub async fn probe(
    id: &str,
    work: impl std::future::Future<Output = crate::model::Finding>,
) -> crate::model::Finding {
    tracing::debug!(target: TARGET, "probe {id}: start");
    let started = Instant::now();
    let finding = work.await;
    tracing::debug!(
        target: TARGET,
        "probe {id}: end {} ({}) in {} ms",
        format!("{:?}", finding.status).to_lowercase(),
        finding.cause,
        ms(started.elapsed())
    );
    finding
}

/// An HTTP request about to go: its method and URL (userinfo and query values redacted).
pub fn http_request(request: &reqwest::Request) -> (String, Instant) {
    let what = format!(
        "{} {}",
        request.method(),
        redact::display_url(request.url().as_str())
    );
    tracing::debug!(target: TARGET, "http {what}: sent");
    (what, Instant::now())
}

/// Its answer: the status, or the cause code of the failure, and the time it took.
pub fn http_response(
    (what, started): (String, Instant),
    status: Result<u16, crate::causes::NetCause>,
) {
    let took = ms(started.elapsed());
    match status {
        Ok(code) => tracing::debug!(target: TARGET, "http {what}: {code} in {took} ms"),
        Err(cause) => {
            tracing::debug!(target: TARGET, "http {what}: failed ({cause}) in {took} ms")
        }
    }
}

/// An engine API request about to go: method and path, query values redacted (the
/// host of a unix-socket URI is its path, hex-encoded: left out).
pub fn docker_request(method: &str, uri: &hyper::Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let shown = redact::display_url(&format!("docker://engine{path}"));
    let what = format!("{method} {}", shown.trim_start_matches("docker://engine"));
    tracing::debug!(target: TARGET, "docker {what}: sent");
    what
}

/// Its answer: the status, or that it failed (the error may quote the request), and the
/// time to the answer's head.
pub fn docker_answer(what: &str, status: Result<u16, &bollard::errors::Error>, started: Instant) {
    let took = ms(started.elapsed());
    match status {
        Ok(code) => tracing::debug!(target: TARGET, "docker {what}: {code} in {took} ms"),
        Err(_) => tracing::debug!(target: TARGET, "docker {what}: failed in {took} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_over_the_flag_and_nothing_means_off() {
        assert_eq!(level(0, None), LevelFilter::OFF);
        assert_eq!(level(1, None), LevelFilter::OFF);
        assert_eq!(level(2, None), LevelFilter::DEBUG);
        assert_eq!(level(0, Some("debug")), LevelFilter::DEBUG);
        assert_eq!(level(0, Some("trace")), LevelFilter::TRACE);
        assert_eq!(level(3, Some("off")), LevelFilter::OFF);
        assert_eq!(level(0, Some("nonsense")), LevelFilter::DEBUG);
        assert_eq!(level(2, Some("")), LevelFilter::DEBUG);
    }

    #[test]
    fn a_line_reaches_stderr_escaped_and_scrubbed() {
        let secrets = SecretSet::default();
        secrets.add("sk-planted-secret");
        let line = safe_line(
            b"probe x\x1b]0;t\x07 [a\nb]: sk-planted-secret\n",
            Some(&secrets),
        );
        assert!(
            line.starts_with("probe x\\x1b]0;t\\x07 [a\\x0ab]: "),
            "{line}"
        );
        assert!(!line.contains("sk-planted-secret"), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }
}
