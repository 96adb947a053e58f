//! What pd-doctor learns from inside a running container, in one `docker exec`: a fixed
//! POSIX `sh` script (`inside.sh`) that takes every value as a positional argument and
//! prints a versioned, line-oriented report, and the parser of that report. Also the
//! per-client command lines the fallback runs where an image has no `sh`.
//!
//! Every byte a container prints is hostile: the parser caps what it reads and keeps,
//! turns control characters into spaces, ignores lines it does not know, and calls a
//! report without its header garbled rather than guessing.

mod clean;
mod digest;
mod request;

use std::net::IpAddr;
use std::time::Duration;

use bollard::Docker;
use tokio::time::Instant;

use super::docker::exec::{self, ExecOutput, CLIENTS};

pub use clean::clean;
pub use digest::{cksum, Algo, Digest, InsideFile};
pub use request::{
    client_argv, client_env, connect_argv, Endpoint, KernelClock, Limit, Request, Target, BASH,
    MAX_FILES, MESSAGES, NODE, PYTHON, SCRIPT,
};
use request::{MAX_URLS, MIN_LIMIT};

/// The first line of a report this parser understands.
pub const HEADER: &str = "pd-doctor-inside 1";

/// Set to 1, the one-exec script is not used and every check takes the per-client path
/// (what images without `sh` get). For the tests that compare the two paths.
pub const DISABLE_ENV: &str = "PD_DOCTOR_NO_INSIDE_SCRIPT";

/// What the script's exec may print before pd-doctor stops reading.
const MAX_OUTPUT: usize = 512 * 1024;
/// A stdio server's line (a `tools/list` answer is one line) is cut to this many characters.
const MAX_STDIO_LINE: usize = 64 * 1024;
/// Lines kept of a stdio server's stdout and stderr.
const MAX_STDIO_LINES: usize = 16;
const MAX_LEFT: usize = 32;
const MAX_LINES: usize = 8192;
/// A line is cut to this many characters before it is looked at.
const MAX_LINE: usize = 512;
/// At most this many Claude Code PIDs are kept from a report.
const MAX_CLAUDE: usize = 16;
/// A window size larger than this is counted as this (a hostile number stays small).
pub const MAX_PANE: u32 = 10_000;
const MAX_ADDRS: usize = 16;
/// Lines kept per stream of one client run (the script sends at most 41).
const MAX_STREAM_LINES: usize = 48;
/// What inside.sh keeps of a client's stream: the first lines, each cut to so many bytes.
const HEAD_LINES: usize = 40;
const LINE_BYTES: usize = 240;
const MAX_PID1: usize = 400;

/// How often the script looks again whether its processes still use CPU (`sleep 0.25`).
pub const GRACE_STEP: Duration = Duration::from_millis(250);

/// The script's own deadline comes this long before pd-doctor stops reading it.
const END_MARGIN: Duration = Duration::from_millis(60);

/// At a deadline kept to the letter, how much longer pd-doctor still reads for the
/// script's last words ("slow", "deadline", what it ended): its wake-up from a quarter
/// second's sleep can come late on a busy machine.
pub const LAST_WORDS: Duration = Duration::from_millis(80);

/// `getent ahosts NAME` inside: its exit status and every address, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub exit: i64,
    pub addrs: Vec<String>,
}

impl Resolved {
    /// From getent's own output (the per-client path): the first field of each line.
    pub fn from_getent(exit: i64, stdout: &str) -> Resolved {
        Resolved {
            exit,
            addrs: addresses(stdout.lines().filter_map(|l| l.split_whitespace().next())),
        }
    }
}

/// Addresses only (anything else a container prints is dropped), each once, in order.
fn addresses<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words.take(4 * MAX_ADDRS) {
        if let Ok(ip) = w.parse::<IpAddr>() {
            let ip = ip.to_string();
            if !out.contains(&ip) && out.len() < MAX_ADDRS {
                out.push(ip);
            }
        }
    }
    out
}

/// One client run from the report: its output as the per-client exec would have given it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    stdout: Vec<String>,
    stdout_last: Option<String>,
    stderr: Vec<String>,
    stderr_last: Option<String>,
    exit: Option<i64>,
    done: bool,
}

impl Reach {
    /// The run's output, once the script said it ended.
    pub fn output(&self) -> Option<ExecOutput> {
        let join = |head: &[String], last: &Option<String>| {
            let mut text = head.join("\n");
            if let Some(last) = last {
                text.push('\n');
                text.push_str(last);
            }
            text
        };
        self.done.then(|| ExecOutput {
            exit_code: self.exit,
            stdout: join(&self.stdout, &self.stdout_last),
            stderr: join(&self.stderr, &self.stderr_last),
        })
    }
}

/// One stdio server's run, as the script saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioRun {
    /// Its JSON-RPC lines (the first [`MAX_STDIO_LINES`]).
    pub stdout: Vec<String>,
    /// Its log: the first lines and the last one.
    pub stderr: Vec<String>,
    pub stderr_last: Option<String>,
    pub exit: Option<i64>,
    /// The program, or the script given to it, that is not in the container.
    pub missing: Option<String>,
    /// It answered `tools/list`, or answered with an error.
    pub answered: bool,
}

impl StdioRun {
    /// The log's lines, the last one included.
    pub fn log(&self) -> Vec<&str> {
        self.stderr
            .iter()
            .chain(self.stderr_last.iter())
            .map(String::as_str)
            .collect()
    }
}

/// How the script's try of Claude Code's first connection went: the name's lookup, then
/// (only after it resolved) the TCP connection. `None` where no line came: not asked, or
/// the deadline came first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Api {
    pub resolve: Option<Resolved>,
    pub connect: Option<Connect>,
}

impl Connect {
    /// From a connecting program's exit status and stderr (see `connect` in inside.sh,
    /// which reads them the same way); `None` status: it was cut off.
    pub fn of(exit: Option<i64>, stderr: &str) -> Connect {
        match exit {
            Some(0) => Connect::Open,
            None => Connect::Timeout,
            _ if stderr.contains("refused") => Connect::Refused,
            _ if stderr.contains("nreachable") || stderr.contains("No route") => {
                Connect::Unreachable
            }
            _ if stderr.contains("timed out") => Connect::Timeout,
            _ => Connect::Error,
        }
    }
}

/// How a TCP connection went; no byte was sent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Open,
    Refused,
    /// No route to the address (the network is unreachable).
    Unreachable,
    /// Nothing answered within the clients' time limit.
    Timeout,
    Error,
    /// The image has none of bash, python3 and node to open one with.
    Untried,
}

/// The parsed report. A field is `None` where its line never came (truncated output, or
/// a script that could not find out): the check then takes the per-client path for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `Some(None)`: the container has no client at all.
    pub client: Option<Option<&'static str>>,
    pub resolve: Option<Resolved>,
    pub pid1: Option<String>,
    /// The PIDs of Claude Code's processes (named `claude`), at most [`MAX_CLAUDE`].
    pub claude: Option<Vec<u32>>,
    /// Whether the tmux session runs; `None`: not asked, or the image has no tmux.
    pub session: Option<bool>,
    /// Claude Code's first connection (see [`Request::api`]), as far as it got.
    pub api: Api,
    /// The session's window size, columns and rows (each at most [`MAX_PANE`]).
    pub pane: Option<(u32, u32)>,
    /// Whether Claude Code's config dir (`$CLAUDE_CONFIG_DIR`, else `~/.claude`) has
    /// `debug/`; `None`: no such config dir, or no line came.
    pub debug_dir: Option<bool>,
    /// Indexed like [`Request::files`]; `None` where no line came.
    pub files: Vec<Option<InsideFile>>,
    /// Indexed like [`Request::urls`].
    pub reach: Vec<Reach>,
    /// Indexed like [`Request::stdio`].
    pub stdio: Vec<StdioRun>,
    /// The deadline came before everything ended: the processes then ended, as
    /// "NAME (pid N)".
    pub deadline: bool,
    pub ended: Vec<String>,
    /// At the deadline something still used CPU, and the script waited for it.
    pub slow: bool,
    /// The closing `end` line came.
    pub complete: bool,
    pub took: Duration,
}

impl Report {
    pub fn reach(&self, index: usize) -> Option<ExecOutput> {
        self.reach.get(index)?.output()
    }

    /// The file asked as `index`, as the container has it.
    pub fn file(&self, index: usize) -> Option<&InsideFile> {
        self.files.get(index)?.as_ref()
    }
}

/// The evidence line that names what the script ended at its deadline in `container`.
pub fn ended_evidence(container: &str, ended: &[String]) -> Option<String> {
    (!ended.is_empty())
        .then(|| format!("ended at the deadline in {container}: {}", ended.join(", ")))
}

/// PID 1's command line as shown: arguments (NUL-separated in /proc) joined by spaces,
/// controls gone, capped.
pub fn cmdline(text: &str) -> String {
    clean(text, MAX_PID1).trim().to_string()
}

/// A per-client exec's output cut as the script cuts a client's (`tag` in inside.sh):
/// per stream the first [`HEAD_LINES`] lines and the last one, each at most
/// [`LINE_BYTES`] bytes, controls cleaned. Both paths then read the same text.
pub fn scrub(out: ExecOutput) -> ExecOutput {
    let stream = |text: &str| {
        // Lines as `read` sees them: a last newline ends a line, it does not begin one.
        let lines: Vec<&str> = match text {
            "" => Vec::new(),
            _ => text
                .strip_suffix('\n')
                .unwrap_or(text)
                .split('\n')
                .collect(),
        };
        let mut kept: Vec<String> = lines.iter().take(HEAD_LINES).map(|l| cut(l)).collect();
        if lines.len() > HEAD_LINES {
            kept.push(cut(lines[lines.len() - 1]));
        }
        kept.join("\n")
    };
    ExecOutput {
        exit_code: out.exit_code,
        stdout: stream(&out.stdout),
        stderr: stream(&out.stderr),
    }
}

/// At most [`LINE_BYTES`] bytes of `line` (printf's `%.240s`), cleaned.
fn cut(line: &str) -> String {
    let mut end = line.len().min(LINE_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    clean(&line[..end], LINE_BYTES)
}

/// Reads a report. Survives anything: unknown lines are skipped, repeated ones ignored
/// (the first counts), sizes capped; only a missing header makes it `Err`.
pub fn parse(text: &str, urls: usize) -> Result<Report, String> {
    let mut lines = text.split('\n').take(MAX_LINES);
    let header = lines.by_ref().find(|l| !l.trim().is_empty());
    if header.map(str::trim) != Some(HEADER) {
        return Err(match header {
            Some(h) => format!("garbled: it begins {:?}", clean(h.trim(), 80)),
            None => "garbled: it printed nothing".into(),
        });
    }
    let mut report = Report {
        reach: vec![Reach::default(); urls.min(MAX_URLS)],
        stdio: vec![StdioRun::default(); urls.min(MAX_URLS)],
        ..Default::default()
    };
    // Each file's `fl` lines until its `file` line comes.
    let mut file_lines: Vec<Vec<String>> = vec![Vec::new(); MAX_FILES];
    for raw in lines {
        let cap = if raw.starts_with("s ") {
            MAX_STDIO_LINE
        } else if raw.starts_with("fl ") {
            digest::FILE_LINE_BYTES + 16
        } else {
            MAX_LINE
        };
        let line = clean(raw, cap);
        let (key, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match key {
            "client" if report.client.is_none() => {
                report.client = match rest.trim() {
                    "-" => Some(None),
                    name => CLIENTS.iter().find(|c| **c == name).map(|c| Some(*c)),
                }
            }
            "resolve" if report.resolve.is_none() => report.resolve = resolved(rest),
            "file" => {
                let (index, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                if let Some(i) = index.parse::<usize>().ok().filter(|i| *i < MAX_FILES) {
                    if report.files.len() <= i {
                        report.files.resize(i + 1, None);
                    }
                    let lines = std::mem::take(&mut file_lines[i]);
                    report.files[i].get_or_insert_with(|| inside_file(rest, lines));
                }
            }
            "fl" => {
                let (index, text) = rest.split_once(' ').unwrap_or((rest, ""));
                if let Some(lines) = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| file_lines.get_mut(i))
                {
                    if lines.len() <= digest::MAX_FILE_LINES {
                        lines.push(text.to_string());
                    }
                }
            }
            "session" if report.session.is_none() => {
                report.session = match rest.trim() {
                    "0" => Some(true),
                    "1" => Some(false),
                    _ => None,
                };
            }
            "pane" if report.pane.is_none() => {
                let size = |w: Option<&str>| {
                    w.filter(|w| {
                        !w.is_empty() && w.len() <= 6 && w.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|w| w.parse::<u32>().ok())
                    .map(|n| n.min(MAX_PANE))
                };
                let mut words = rest.split_whitespace();
                if let (Some(w), Some(h)) = (size(words.next()), size(words.next())) {
                    report.pane = Some((w, h));
                }
            }
            "debug" if report.debug_dir.is_none() => {
                report.debug_dir = match rest.trim() {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                };
            }
            "claude" if report.claude.is_none() => {
                let mut words = rest.split_whitespace();
                if words.next().is_some_and(|n| n.parse::<u32>().is_ok()) {
                    report.claude = Some(
                        words
                            .filter_map(|w| w.parse().ok())
                            .take(MAX_CLAUDE)
                            .collect(),
                    );
                }
            }
            "pid1" if report.pid1.is_none() => {
                report.pid1 = Some(cmdline(rest));
            }
            "api" => api_line(&mut report.api, rest),
            "r" => reach_line(&mut report.reach, rest),
            "s" => stdio_line(&mut report.stdio, rest),
            "deadline" => report.deadline = true,
            "slow" => report.slow = true,
            "left" if report.ended.len() < MAX_LEFT => {
                let mut words = rest.split_whitespace();
                if let (Some(Ok(pid)), Some(name)) =
                    (words.next().map(str::parse::<u32>), words.next())
                {
                    let name = name.trim_start_matches('(').trim_end_matches(')');
                    // The script's own shells and its stdin holder are not news.
                    if !matches!(name, "sh" | "sleep") {
                        report.ended.push(format!("{name} (pid {pid})"));
                    }
                }
            }
            "end" => report.complete = true,
            _ => {}
        }
    }
    Ok(report)
}

/// A `file INDEX ...` line; `lines`: the `fl INDEX` lines that came before it.
fn inside_file(rest: &str, lines: Vec<String>) -> InsideFile {
    let mut words = rest.split_whitespace();
    let (algo, value) = (words.next().unwrap_or("-"), words.next().unwrap_or("-"));
    if algo == "missing" {
        return InsideFile::Missing;
    }
    if algo == "lines" && value.parse::<usize>().ok() == Some(lines.len()) {
        return InsideFile::Lines(lines);
    }
    let digest = match algo {
        "sha256" if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(Digest {
                algo: Algo::Sha256,
                value: value.to_ascii_lowercase(),
            })
        }
        "cksum" if !value.is_empty() && value.len() <= 10 && value.parse::<u32>().is_ok() => {
            Some(Digest {
                algo: Algo::Cksum,
                value: value.parse::<u32>().unwrap_or(0).to_string(),
            })
        }
        _ => None,
    };
    InsideFile::Present {
        digest,
        size: words.next().and_then(|s| s.parse().ok()),
    }
}

/// `EXIT ADDR...` of a lookup line.
fn resolved(rest: &str) -> Option<Resolved> {
    let mut words = rest.split_whitespace();
    let exit = words.next()?.parse().ok()?;
    Some(Resolved {
        exit,
        addrs: addresses(words),
    })
}

/// `api resolve EXIT ADDR...`, `api connect KIND`; the first of each counts.
fn api_line(api: &mut Api, rest: &str) {
    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    match kind {
        "resolve" if api.resolve.is_none() => api.resolve = resolved(rest),
        "connect" if api.connect.is_none() => {
            api.connect = match rest.trim() {
                "open" => Some(Connect::Open),
                "refused" => Some(Connect::Refused),
                "unreachable" => Some(Connect::Unreachable),
                "timeout" => Some(Connect::Timeout),
                "error" => Some(Connect::Error),
                "-" => Some(Connect::Untried),
                _ => None,
            }
        }
        _ => {}
    }
}

/// `r INDEX o|O|e|E TEXT`, `r INDEX x STATUS`, `r INDEX end`.
fn reach_line(reach: &mut [Reach], rest: &str) {
    let mut parts = rest.splitn(3, ' ');
    let (Some(index), Some(kind)) = (parts.next(), parts.next()) else {
        return;
    };
    let Some(r) = index.parse::<usize>().ok().and_then(|i| reach.get_mut(i)) else {
        return;
    };
    if r.done {
        return;
    }
    let text = parts.next().unwrap_or("");
    let push = |lines: &mut Vec<String>| {
        if lines.len() < MAX_STREAM_LINES {
            lines.push(text.to_string());
        }
    };
    match kind {
        "o" => push(&mut r.stdout),
        "e" => push(&mut r.stderr),
        "O" => r.stdout_last = Some(text.to_string()),
        "E" => r.stderr_last = Some(text.to_string()),
        "x" => r.exit = r.exit.or_else(|| text.trim().parse().ok()),
        "end" => r.done = true,
        _ => {}
    }
}

/// `s INDEX o|e|E TEXT`, `s INDEX missing PROGRAM`, `s INDEX answered`, `s INDEX x STATUS`.
fn stdio_line(runs: &mut [StdioRun], rest: &str) {
    let mut parts = rest.splitn(3, ' ');
    let (Some(index), Some(kind)) = (parts.next(), parts.next()) else {
        return;
    };
    let Some(run) = index.parse::<usize>().ok().and_then(|i| runs.get_mut(i)) else {
        return;
    };
    let text = parts.next().unwrap_or("");
    match kind {
        "o" if run.stdout.len() < MAX_STDIO_LINES => run.stdout.push(text.to_string()),
        "e" if run.stderr.len() < MAX_STREAM_LINES => run.stderr.push(clean(text, LINE_BYTES)),
        "E" => run.stderr_last = Some(clean(text, LINE_BYTES)),
        "x" => run.exit = run.exit.or_else(|| text.trim().parse().ok()),
        "missing" => run.missing = run.missing.take().or_else(|| Some(clean(text, 200))),
        "answered" => run.answered = true,
        _ => {}
    }
}

/// The report, or why there is none (no `sh`, the exec failed, the output is garbled,
/// the script is turned off).
pub type Gathered = Result<Report, String>;

/// Runs the script in `container` and reads its report. The clients' time limit comes
/// from `deadline`, the run's; the exec is read until `exec_deadline` and then cut, and
/// what came until then still counts.
/// What the script does with processes still at work (using CPU or the disk) at its
/// deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtDeadline {
    /// Ends them on time, having watched them for the last [`GRACE_STEP`] before it to
    /// say whether they were at work (`slow`): the user's `--timeout` is kept.
    End,
    /// Waits for them, a [`GRACE_STEP`] at a time, up to this much longer: slow is not
    /// hung.
    Wait(Duration),
}

pub async fn gather(
    client: &Docker,
    container: &str,
    request: &Request,
    deadline: Instant,
    exec_deadline: Instant,
    at_deadline: AtDeadline,
) -> Gathered {
    if std::env::var(DISABLE_ENV).as_deref() == Ok("1") {
        return Err(format!("{DISABLE_ENV}=1"));
    }
    let started = Instant::now();
    // The script's first look at how much CPU its processes use takes one step: it
    // begins a step early, so that a hung process still ends on time.
    let (steps, grace, margin) = match at_deadline {
        AtDeadline::End => (1, LAST_WORDS, END_MARGIN + LAST_WORDS),
        AtDeadline::Wait(g) => (
            (g.as_millis() / GRACE_STEP.as_millis()).max(1) as u32,
            g,
            END_MARGIN,
        ),
    };
    // The script ends what it started a little before pd-doctor stops reading, so that
    // what it says of it still comes.
    let end_in = exec_deadline
        .saturating_duration_since(started)
        .saturating_sub(margin)
        .max(MIN_LIMIT);
    let first_look = match steps {
        0 => end_in,
        _ => end_in.saturating_sub(GRACE_STEP).max(MIN_LIMIT),
    };
    let clock = KernelClock::now();
    let argv = request.argv_at(&Limit::until(deadline), first_look, steps, clock.as_ref());
    let run = exec::exec_until_env(
        client,
        container,
        argv,
        request.env(),
        exec_deadline + grace,
        MAX_OUTPUT,
    )
    .await?;
    let mut report =
        parse(&run.output.stdout, request.urls.len()).map_err(|e| match run.output.exit_code {
            Some(126 | 127) => "the image has no sh".to_string(),
            _ => e,
        })?;
    report.took = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Secret;
    use request::{ACCEPT, CONTENT_TYPE, INITIALIZE};

    const GOOD: &str = "pd-doctor-inside 1
client curl
r 0 e curl: (7) Failed to connect
r 1 o Not Acceptable
r 0 o 
r 0 x 7
r 1 x 0
r 0 o __pd_status__000
r 0 end
resolve 0 172.17.0.1 172.17.0.1 fe80::1 host.docker.internal
file 0 sha256 5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03 6
file 1 missing
file 99 missing
pid1 /bin/bash /entrypoint.sh sleep infinity 
claude 2 17 42
r 1 O __pd_status__406
r 1 end
end
";

    #[test]
    fn a_whole_report_reads_back_as_the_per_client_execs_would_have_answered() {
        let r = parse(GOOD, 3).unwrap();
        assert_eq!(r.client, Some(Some("curl")));
        assert_eq!(
            r.resolve,
            Some(Resolved {
                exit: 0,
                addrs: vec!["172.17.0.1".into(), "fe80::1".into()]
            })
        );
        assert_eq!(
            r.pid1.as_deref(),
            Some("/bin/bash /entrypoint.sh sleep infinity")
        );
        let refused = r.reach(0).unwrap();
        assert_eq!(refused.exit_code, Some(7));
        assert_eq!(refused.stdout, "\n__pd_status__000");
        assert_eq!(refused.stderr, "curl: (7) Failed to connect");
        let answered = r.reach(1).unwrap();
        assert_eq!(answered.stdout, "Not Acceptable\n__pd_status__406");
        assert_eq!(r.reach(2), None, "never started");
        assert!(r.complete);
        let file = r.file(0).unwrap();
        assert_eq!(file.differs_from(b"hello\n"), Some(false));
        assert_eq!(file.differs_from(b"hello!\n"), Some(true));
        assert_eq!(r.file(1), Some(&InsideFile::Missing));
        assert_eq!(r.files.len(), 2, "an index past the cap is dropped");
        assert_eq!(r.claude, Some(vec![17, 42]));
    }

    #[test]
    fn the_pane_and_the_debug_dir_take_digits_only() {
        let report = |lines: &str| parse(&format!("pd-doctor-inside 1\n{lines}end\n"), 0).unwrap();
        let r = report("pane 80 24\ndebug 0\n");
        assert_eq!((r.pane, r.debug_dir), (Some((80, 24)), Some(false)));
        assert_eq!(
            report("pane 120 30\npane 1 1\ndebug 1\n").pane,
            Some((120, 30))
        );
        assert_eq!(report("pane 999999 30\n").pane, Some((MAX_PANE, 30)));
        for hostile in [
            "pane -1 30",
            "pane 1e3 30",
            "pane 120",
            "pane 9999999999 1",
            "pane \u{1b}[2J 1",
        ] {
            assert_eq!(report(&format!("{hostile}\n")).pane, None, "{hostile}");
        }
        assert_eq!(report("debug yes\n").debug_dir, None);
    }

    #[test]
    fn a_file_without_a_digest_program_comes_line_by_line_and_is_compared_so() {
        let host = b"#!/bin/sh\n\tset -e\nexec \"$@\"\n";
        let report = "pd-doctor-inside 1\nfl 0 #!/bin/sh\nfl 0 \tset -e\nfl 0 exec \"$@\"\nfile 0 lines 3\nfl 1 a\nfile 1 lines 2\nend\n";
        let r = parse(report, 0).unwrap();
        assert_eq!(r.file(0).unwrap().differs_from(host), Some(false));
        assert_eq!(
            r.file(0).unwrap().differs_from(b"#!/bin/sh\nset -e\n"),
            Some(true)
        );
        // Fewer lines than it said: not to be trusted, so no answer from the report.
        assert_eq!(r.file(1).unwrap().differs_from(b"a\n"), None);
        // What a shell cannot show: NUL bytes, and lines longer than it prints.
        assert_eq!(r.file(0).unwrap().differs_from(b"#!/bin/sh\0\n"), None);
        assert_eq!(r.file(0).unwrap().differs_from(&[b'x'; 500]), None);
    }

    #[test]
    fn truncated_garbled_and_hostile_output_never_panics() {
        // Every prefix of a good report: a report cut anywhere still parses.
        for end in 0..=GOOD.len() {
            if let Some(text) = GOOD.get(..end) {
                if let Ok(r) = parse(text, 2) {
                    assert!(!r.complete || end >= GOOD.len() - 1);
                }
            }
        }
        let cut = parse(&GOOD[..GOOD.find("r 0 end").unwrap()], 2).unwrap();
        assert_eq!(cut.reach(0), None, "a run without its end is not an answer");
        assert!(!cut.complete);
        assert!(parse("", 2).is_err());
        assert!(parse(
            "OCI runtime exec failed: \"sh\": executable file not found",
            2
        )
        .is_err());
        assert!(parse("pd-doctor-inside 2\nclient curl\n", 2).is_err());
        let hostile = format!(
            "pd-doctor-inside 1\nclient evil\nresolve x\nresolve 0 $(rm) 10.0.0.1\nr 99999999999999999999 o x\nr 0 o \x1b[31mred\x07\u{9b}\nr 0 x not-a-number\nr -1 end\nfile 0 sha256 zz 12\nfile x missing\nfile 0 missing\npid1 {}\nr 0 O {}\nr 0 end\nr 0 o after the end\n{}",
            "A".repeat(100_000),
            "\u{0}".repeat(10),
            "garbage line\n".repeat(20_000)
        );
        let r = parse(&hostile, 1).unwrap();
        assert_eq!(
            r.client, None,
            "an unknown client name is as good as none said"
        );
        assert_eq!(
            r.resolve.as_ref().unwrap().addrs,
            vec!["10.0.0.1".to_string()]
        );
        assert!(r.pid1.as_ref().unwrap().chars().count() <= MAX_PID1);
        assert_eq!(
            r.file(0),
            Some(&InsideFile::Present {
                digest: None,
                size: Some(12)
            }),
            "the first line about a file counts"
        );
        let out = r.reach(0).unwrap();
        assert_eq!(out.exit_code, None);
        assert!(!out.stdout.chars().any(|c| c.is_control() && c != '\n'));
        assert!(out.stdout.starts_with(" [31mred  "), "{:?}", out.stdout);
        assert!(!out.stdout.contains("after the end"));
        let scrubbed = scrub(ExecOutput {
            exit_code: Some(0),
            stdout: format!("HTTP/1.0 200\r\n\x1b]0;title\x07{}", "x\n".repeat(100_000)),
            stderr: String::new(),
        });
        assert!(scrubbed.stdout.starts_with("HTTP/1.0 200 \n ]0;title "));
        assert_eq!(scrubbed.stdout.lines().count(), HEAD_LINES + 1);
        let flood = format!("pd-doctor-inside 1\n{}", "r 0 o x\n".repeat(10_000));
        let r = parse(&flood, 1).unwrap();
        assert_eq!(r.reach[0].stdout.len(), MAX_STREAM_LINES);
    }

    #[test]
    fn values_travel_as_arguments_of_a_fixed_script() {
        let url =
            reqwest::Url::parse("http://host.docker.internal:8000/mcp;rm -rf /$(id)").unwrap();
        let request = Request {
            host_name: "host.docker.internal".into(),
            files: vec!["/entrypoint.sh".into()],
            urls: vec![Some(Target::new(&url)), None],
            stdio: vec![None, Some(vec!["python3".into(), "$(id)".into()])],
            session: String::new(),
            api: None,
        };
        let argv = request.argv(
            &Limit::of(Duration::from_millis(1750)),
            Duration::from_secs(2),
            8,
        );
        assert_eq!(&argv[..3], &["sh", "-c", SCRIPT]);
        assert_eq!(argv[6], "1.75");
        assert_eq!(argv[7], "2");
        assert_eq!(argv[11], "8", "two URLs, four words each");
        assert_eq!(argv[12], "2.00");
        assert_eq!(argv[13], MESSAGES);
        assert_eq!(argv[14], "", "no tmux session asked for");
        assert_eq!(argv[15], "8", "two seconds' grace in quarters");
        assert_eq!(&argv[16..18], &["", ""], "no API connection asked for");
        assert_eq!(argv[22], url.as_str());
        assert_eq!(argv[23], "host.docker.internal");
        assert_eq!(argv[5], "1", "one file");
        assert_eq!(argv.len(), 22 + 8 + 1 + 4);
        assert!(argv[26..30].iter().all(String::is_empty));
        assert_eq!(argv[30], "/entrypoint.sh");
        // The stdio server's argument vector, whole, after its index and length.
        assert_eq!(&argv[31..], &["1", "2", "python3", "$(id)"]);
        let api = Request {
            api: Endpoint::new("[::1]", 443),
            ..request.clone()
        };
        let argv = api.argv(
            &Limit::of(Duration::from_secs(2)),
            Duration::from_secs(2),
            0,
        );
        assert_eq!(&argv[16..18], &["::1", "443"]);
        let curl = client_argv(
            "curl",
            &Target::new(&url),
            &Limit::of(Duration::from_secs(2)),
        );
        assert_eq!(curl[curl.len() - 2], "--");
        assert_eq!(curl.last().unwrap(), url.as_str());
        let bash = client_argv(
            "bash",
            &Target::new(&url),
            &Limit::of(Duration::from_secs(2)),
        );
        assert_eq!(&bash[..3], &["bash", "-c", BASH]);
        assert_eq!(bash[4], "host.docker.internal");
        // The entry's headers: one word, one a line; one that could not be one line of a
        // request is left out.
        let keyed = Target::new(&url).with_headers(&[
            ("X-API-Key".into(), Secret::new("k1")),
            ("Bad Name".into(), Secret::new("x")),
            ("Authorization".into(), Secret::new("Bearer t\r\nX: y")),
            ("Authorization".into(), Secret::new("Bearer t")),
        ]);
        assert_eq!(
            keyed.header_lines(),
            "X-API-Key: k1\nAuthorization: Bearer t"
        );
        // They travel in the exec's environment, never on its command line (the
        // engine's events show an exec's argv).
        let request = Request {
            urls: vec![None, Some(keyed.clone())],
            stdio: vec![None, None],
            ..Default::default()
        };
        assert_eq!(
            request.env(),
            ["PD_HEADERS=1 X-API-Key: k1\n1 Authorization: Bearer t"]
        );
        let argv = request.argv(
            &Limit::of(Duration::from_secs(1)),
            Duration::from_secs(1),
            0,
        );
        assert!(!argv.iter().any(|a| a.contains("k1")), "{argv:?}");
        assert_eq!(
            client_env(&keyed),
            ["PD_H=X-API-Key: k1\nAuthorization: Bearer t"]
        );
        let curl = client_argv("curl", &keyed, &Limit::of(Duration::from_secs(2)));
        assert!(!curl.iter().any(|a| a.contains("k1")), "{curl:?}");
        for h in [ACCEPT, CONTENT_TYPE] {
            assert!(
                curl.windows(2).any(|w| w[0] == "-H" && w[1] == h),
                "{curl:?}"
            );
        }
        assert!(curl
            .windows(2)
            .any(|w| w[0] == "--data-raw" && w[1] == INITIALIZE));
        assert_eq!(MESSAGES.lines().next(), Some(INITIALIZE));
        assert_eq!(Limit::of(Duration::from_millis(100)).whole, "1");
    }

    /// Only `initialize`, `notifications/initialized` and `tools/list`: a `tools/call`
    /// through the proxy would take the agent's identity lock on the server.
    #[test]
    fn a_stdio_server_is_never_sent_tools_call() {
        let methods: Vec<String> = MESSAGES
            .lines()
            .map(|l| {
                let message: serde_json::Value = serde_json::from_str(l).unwrap();
                message["method"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(
            methods,
            ["initialize", "notifications/initialized", "tools/list"]
        );
        assert!(!SCRIPT.contains("tools/call"));
    }

    #[test]
    fn digests_match_the_tools_inside() {
        // printf 'hello\n' | sha256sum; printf 'hello\n' | cksum; printf '' | cksum
        assert_eq!(
            Digest::of(Algo::Sha256, b"hello\n").value,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(cksum(b"hello\n"), 3015617425);
        assert_eq!(cksum(b""), 4294967295);
        let file = InsideFile::Present {
            digest: Some(Digest::of(Algo::Cksum, b"#!/bin/bash\n")),
            size: None,
        };
        assert_eq!(file.differs_from(b"#!/bin/bash\n"), Some(false));
        assert_eq!(file.differs_from(b"#!/bin/sh\n"), Some(true));
        assert_eq!(InsideFile::Missing.differs_from(b""), None);
    }

    /// The script itself, run by this host's `sh` against a port nothing listens on: its
    /// report parses, and the refusal comes back as curl (or the first client here) said it.
    #[cfg(unix)]
    #[test]
    fn the_script_runs_under_a_posix_sh() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
        let request = Request {
            host_name: "localhost".into(),
            files: vec!["/nonexistent/entrypoint.sh".into(), "/bin/sh".into()],
            urls: vec![Some(Target::new(&url))],
            stdio: vec![None],
            session: String::new(),
            api: None,
        };
        let argv = request.argv(
            &Limit::of(Duration::from_secs(2)),
            Duration::from_secs(3),
            0,
        );
        let Ok(out) = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
        else {
            return;
        };
        let r = parse(&String::from_utf8_lossy(&out.stdout), 1).unwrap();
        assert!(r.complete, "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(r.file(0), Some(&InsideFile::Missing));
        assert!(
            matches!(r.file(1), Some(InsideFile::Present { .. })),
            "{r:?}"
        );
        assert!(r.pid1.is_some());
        if r.client.flatten().is_some() {
            let answer = r.reach(0).unwrap();
            assert_ne!(answer.exit_code, Some(0), "{answer:?}");
        }
    }
}
