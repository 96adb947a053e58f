//! The real Claude Code CLI in the lab: the pinned binary (docker/lab/fetch-claude.sh, or
//! `PD_CLAUDE_CLI`), lab images that carry it, and `claude mcp list` run in a container
//! and read as a verdict per server. Its output is untrusted: capped, and stripped of
//! control characters before it is parsed or printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};

use super::lab::{self, LABEL};

/// Where images with the real CLI keep the lab's idle stand-in (docker/lab/hub/claude),
/// still named claude: the hub's tmux session runs it, because the real CLI started
/// interactively would try to reach api.anthropic.com, exit, and end the session.
pub const STAND_IN: &str = "/usr/local/lib/pd-doctor-lab/claude";

/// The longest `claude mcp list` may take: Claude Code waits MCP_TIMEOUT (60 s in the
/// hub layout) for a server that hangs, plus its own start on a busy machine (120 s
/// was once not enough while two builds shared the two cores).
pub const MCP_LIST_BOUND: Duration = Duration::from_secs(150);

/// What is kept of each output stream of `claude mcp list`.
const OUTPUT_CAP: usize = 256 * 1024;

/// What is kept of one line for messages.
const LINE_CAP: usize = 400;

/// The CLI's path on this host, found once per test process: `PD_CLAUDE_CLI`, else what
/// docker/lab/fetch-claude.sh fetches (or finds in its cache). None when neither works;
/// [`cli_or_skip`] says why.
pub fn cli() -> Option<PathBuf> {
    located().as_ref().ok().cloned()
}

/// The CLI, or a skip with the reason (a failure under PD_REQUIRE_CLAUDE=1 or
/// PD_REQUIRE_DOCKER=1, where the differential tests must run).
pub fn cli_or_skip(test: &str) -> Option<PathBuf> {
    match located() {
        Ok(path) => Some(path.clone()),
        Err(why) if required() => panic!("{test}: no Claude Code CLI: {why}"),
        Err(why) => {
            eprintln!("skipped {test}: no Claude Code CLI ({why}); set PD_REQUIRE_CLAUDE=1 to make this a failure");
            None
        }
    }
}

fn required() -> bool {
    ["PD_REQUIRE_CLAUDE", "PD_REQUIRE_DOCKER"]
        .iter()
        .any(|v| std::env::var(v).as_deref() == Ok("1"))
}

fn located() -> &'static Result<PathBuf, String> {
    static CLI: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CLI.get_or_init(|| match std::env::var_os("PD_CLAUDE_CLI") {
        Some(path) if !path.is_empty() => executable(PathBuf::from(path)),
        _ => fetch(),
    })
}

fn executable(path: PathBuf) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
        Ok(_) => Err(format!("{} is not an executable file", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Runs docker/lab/fetch-claude.sh (a download of 165 MB the first time).
fn fetch() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/fetch-claude.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("bash {}: {e}", script.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("fetch-claude.sh failed: {}", stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .last()
        .ok_or_else(|| format!("fetch-claude.sh printed no path: {}", stderr.trim()))?;
    executable(PathBuf::from(path))
}

/// The image `base` plus the real CLI at /usr/local/bin/claude with the libraries it
/// links (ldd), and the stand-in at [`STAND_IN`]; built once per test process and base,
/// tagged `<base>-claude`, labelled as every lab image is (and swept the same way).
/// Needs [`cli`] to have found the CLI.
pub fn with_claude(base: &str) -> String {
    static IMAGES: Mutex<BTreeMap<String, Arc<OnceLock<String>>>> = Mutex::new(BTreeMap::new());
    lab::sweep_images();
    // One lock per base, so that two bases build at once but one base builds once.
    let once = IMAGES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(base.to_string())
        .or_default()
        .clone();
    once.get_or_init(|| {
        let cli = cli().expect("with_claude: no Claude Code CLI (call cli_or_skip first)");
        let tag = claude_tag(base);
        build_with_claude(base, &tag, &cli);
        tag
    })
    .clone()
}

/// `repo:tag` → `repo:tag-claude`; an untagged `repo` → `repo:claude`.
fn claude_tag(base: &str) -> String {
    let name_start = base.rfind('/').map_or(0, |i| i + 1);
    if base[name_start..].contains(':') {
        format!("{base}-claude")
    } else {
        format!("{base}:claude")
    }
}

fn build_with_claude(base: &str, tag: &str, cli: &Path) {
    let ctx = tempfile::tempdir().unwrap();
    let rootfs = ctx.path().join("rootfs");
    place(cli, &rootfs.join("usr/local/bin/claude"));
    for lib in linked_libraries(cli) {
        let dest = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
        place(&lib, &dest);
    }
    let stand_in = rootfs.join(STAND_IN.trim_start_matches('/'));
    std::fs::create_dir_all(stand_in.parent().unwrap()).unwrap();
    std::fs::write(&stand_in, super::hub::CLAUDE).unwrap();
    std::fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY rootfs/ /\n"),
    )
    .unwrap();
    let label = format!("{LABEL}={}", std::process::id());
    let started = Instant::now();
    lab::docker(&[
        "build",
        "-q",
        "--label",
        &label,
        "-t",
        tag,
        &ctx.path().display().to_string(),
    ]);
    eprintln!("built {tag} in {:.1?}", started.elapsed());
}

/// `from` at `to`: a hard link when both are on one file system (the CLI is 373 MB),
/// else a copy; symbolic links followed, as `cp -L` does.
fn place(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let from = std::fs::canonicalize(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    if std::fs::hard_link(&from, to).is_err() {
        std::fs::copy(&from, to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
}

/// The libraries `ldd` names for `program` (only glibc's, for this CLI).
fn linked_libraries(program: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .expect("ldd (libc-bin)");
    assert!(
        out.status.success(),
        "ldd {}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// Claude Code's verdict on one server, as `claude mcp list` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `✔ Connected`
    Connected,
    /// `✘ Failed to connect — <reason>`
    Failed(String),
    /// `⏸ Pending approval (run `claude` to approve)`
    PendingApproval,
    /// `⚠ Needs authentication`
    NeedsAuthentication,
    /// `Disabled`
    Disabled,
    /// A status this parser does not know (a newer CLI): kept as printed.
    Other(String),
}

impl Verdict {
    /// The word pd-doctor's `claude_code[].expected` uses for this verdict.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Connected => "connected",
            Verdict::Failed(_) => "failed",
            Verdict::PendingApproval => "pending-approval",
            Verdict::NeedsAuthentication => "needs-authentication",
            Verdict::Disabled => "disabled",
            Verdict::Other(_) => "other",
        }
    }
}

/// One server's line of `claude mcp list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub verdict: Verdict,
    /// The whole line, cleaned and capped.
    pub line: String,
}

/// What `claude mcp list` said in one container.
#[derive(Debug, Clone)]
pub struct ClientList {
    /// The servers it listed; a server absent here is not configured for Claude Code.
    pub servers: BTreeMap<String, Listed>,
    /// Its stdout and stderr, cleaned and capped.
    pub raw: String,
    /// Its exit code (None when it was ended at [`MCP_LIST_BOUND`]).
    pub code: Option<i32>,
    pub elapsed: Duration,
}

impl ClientList {
    pub fn get(&self, server: &str) -> Option<&Listed> {
        self.servers.get(server)
    }
}

/// Runs `claude mcp list` in `container` as an agent would (working directory
/// /pipe-dream, no traffic but to its MCP servers), after pd-doctor: the CLI writes into
/// `$CLAUDE_CONFIG_DIR/.claude.json`. Ended (the docker CLI killed) at
/// [`MCP_LIST_BOUND`].
pub async fn mcp_list(container: &str) -> ClientList {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("docker")
        .args([
            "exec",
            "-w",
            "/pipe-dream",
            "-e",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
            "-e",
            "DISABLE_AUTOUPDATER=1",
            container,
            "claude",
            "mcp",
            "list",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("docker CLI");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let finished = tokio::time::timeout(MCP_LIST_BOUND, async {
        tokio::join!(read_capped(stdout), read_capped(stderr), child.wait())
    })
    .await;
    let (servers, raw, code) = match finished {
        Ok((out, err, status)) => {
            let out = clean(&out);
            let servers = parse_list(&out);
            let mut raw = out;
            if !err.is_empty() {
                raw.push_str("\n[stderr]\n");
                raw.push_str(&clean(&err));
            }
            (servers, raw, status.ok().and_then(|s| s.code()))
        }
        Err(_) => {
            // The CLI in the container lives on until the lab removes the container.
            let _ = child.kill().await;
            let raw = format!("(ended: no answer from claude mcp list in {MCP_LIST_BOUND:?})");
            (BTreeMap::new(), raw, None)
        }
    };
    ClientList {
        servers,
        raw,
        code,
        elapsed: started.elapsed(),
    }
}

/// Everything `from` gives, of which the first [`OUTPUT_CAP`] bytes are kept: the rest
/// is read and dropped so the writer never blocks on a full pipe.
async fn read_capped(mut from: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = OUTPUT_CAP.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    kept
}

/// Text from untrusted bytes: lossy UTF-8, control characters (escapes, carriage
/// returns) replaced by `?`, newlines and tabs kept.
fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// The servers of a `claude mcp list` output: each line `<name>: <description> -
/// <status>`, up to the "MCP config diagnostics" section that may follow (its lines
/// quote server names too). The first line for a name wins.
pub fn parse_list(text: &str) -> BTreeMap<String, Listed> {
    let mut servers = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("MCP config diagnostics") {
            break;
        }
        if let Some((name, listed)) = parse_line(line) {
            servers.entry(name).or_insert(listed);
        }
    }
    servers
}

/// One server line. The description may itself contain " - " (a stdio command's
/// arguments), so the status is what follows the last " - " that starts a status; a
/// line with a server's name but no known status keeps what follows its last " - ".
fn parse_line(line: &str) -> Option<(String, Listed)> {
    let line = line.trim_end();
    let (name, rest) = line.split_once(": ")?;
    let is_name = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !is_name {
        return None;
    }
    let separators: Vec<usize> = rest.match_indices(" - ").map(|(at, _)| at).collect();
    let verdict = separators
        .iter()
        .rev()
        .find_map(|at| status(&rest[at + 3..]))
        .or_else(|| {
            let last = *separators.last()?;
            Some(Verdict::Other(capped(&rest[last + 3..])))
        })?;
    Some((
        name.to_string(),
        Listed {
            verdict,
            line: capped(line),
        },
    ))
}

/// The verdict a status text starts with, by its glyph or its words.
fn status(text: &str) -> Option<Verdict> {
    let glyph = text.chars().next()?;
    let words = text
        .trim_start_matches(['✔', '✓', '✘', '✗', '⏸', '⚠', '○', ' '])
        .trim_start();
    let starts = |w: &str| words.to_lowercase().starts_with(w);
    if glyph == '✔' || glyph == '✓' || starts("connected") {
        Some(Verdict::Connected)
    } else if glyph == '✘' || glyph == '✗' || starts("failed") {
        let reason = words
            .strip_prefix("Failed to connect")
            .unwrap_or(words)
            .trim_start_matches([' ', '—', '-', ':'])
            .trim();
        Some(Verdict::Failed(capped(reason)))
    } else if glyph == '⏸' || starts("pending approval") {
        Some(Verdict::PendingApproval)
    } else if starts("needs authentication") {
        Some(Verdict::NeedsAuthentication)
    } else if starts("disabled") {
        Some(Verdict::Disabled)
    } else {
        None
    }
}

fn capped(text: &str) -> String {
    match text.char_indices().nth(LINE_CAP) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
