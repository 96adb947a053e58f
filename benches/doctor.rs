//! Wall time of whole pd-doctor runs, the number users feel: `cargo bench`.
//!
//! Host only (no containers):
//! - hung servers: five servers that accept and never answer, `--timeout 1s`: the run
//!   must cost about one timeout, not five;
//! - sequential baseline: the same five probed one after another with the same client
//!   deadline, which is what a script of `curl` calls costs;
//! - healthy host: two real MCP servers (rmcp) and seven configured agents.
//!
//! With agent containers (Docker; skipped with a note when there is none): real MCP
//! servers, N containers of the lab image started with the primer's `docker run` flags
//! (Chapter 2.4 mounts, CLAUDE_CONFIG_DIR, host-gateway, the image's entrypoint), and in
//! one run, alternating, pd-doctor (the release binary, `--json --timeout 2s`, with its
//! peak RSS from wait4) and the reference scripts of `benches/reference/` (the issue's
//! own, unchanged, so that every figure means the same):
//! - `chapter8-manual.sh`: the primer's Chapter 8 typed as its text gives it (its ports
//!   and container names are those of the lab: the commands and their cost are the same);
//! - `reach-floor.sh`: one exec per container that requests every URL at once, the least
//!   any reach check can do;
//! - `exec-floor.sh`: one `docker exec c sh -c :` per container, the engine alone;
//! - `hub-floor.sh` (the Agent Hub layout): one exec per container that starts every
//!   stdio entry at once and waits for its answer to `initialize`, what Claude Code pays.
//!
//! The primer's 7-agent cases run on two lab images: the usual one (bash, coreutils,
//! curl) and `minimal`, an agent image as small as one can be (bash as /bin/sh, curl,
//! cat, grep, getent, ls, sleep, touch, rm, mkdir; no sha256sum, cksum, tr...). The hub
//! layout's failing states (an upstream that refuses, one that hangs) are timed against
//! the deadline they were given.
//!
//! Prints medians, pd-doctor's spread, the ratios, and the targets, met or missed.
//! `cargo bench -- GROUP...` runs only the named groups of cases: `host`, `primer` (7
//! agents), `twenty`, `minimal`, `hub`, `hub-failing` (all of them without a name).

#![allow(
    unsafe_code,
    reason = "wait4 is the one call that reports a child's peak RSS; std and rustix have no safe one"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{self, Lab};
use common::servers::{self, Bind, Fault, McpOptions};
use common::Tree;

const RUNS: usize = 5;
const HOST_RUNS: usize = 7;
const TIMEOUT: &str = "2s";

const AGENTS: [&str; 20] = [
    "claude",
    "qa",
    "tu_ui",
    "tu_scene",
    "tu_sketch",
    "tu_sim",
    "bu",
    "a08",
    "a09",
    "a10",
    "a11",
    "a12",
    "a13",
    "a14",
    "a15",
    "a16",
    "a17",
    "a18",
    "a19",
    "a20",
];

fn binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let release = target.join("release/pd-doctor");
    assert!(
        Command::new("cargo")
            .args(["build", "--release", "-q"])
            .status()
            .unwrap()
            .success(),
        "cargo build --release"
    );
    release
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn measure(label: &str, mut run: impl FnMut() -> Duration) {
    let mut times: Vec<Duration> = (0..HOST_RUNS).map(|_| run()).collect();
    times.sort();
    println!(
        "{label:<48} median {:>7.1} ms   min {:>7.1} ms   max {:>7.1} ms",
        ms(times[HOST_RUNS / 2]),
        ms(times[0]),
        ms(times[HOST_RUNS - 1])
    );
}

fn pd_doctor(bin: &Path, root: &Path, args: &[&str]) -> Duration {
    pd_doctor_rss(bin, root, args).0
}

/// One run of the binary, its output discarded: wall time and peak RSS in KiB.
fn pd_doctor_rss(bin: &Path, root: &Path, args: &[&str]) -> (Duration, i64) {
    let started = Instant::now();
    let child = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // Reaped by wait4 below: std must not wait for it again.
    std::mem::forget(child);
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in; `id` is our own
    // child, reaped here once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(id, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    assert_eq!(pid, id, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 1);
    (took, usage.ru_maxrss)
}

/// One run of a reference script of `benches/reference/`.
fn reference(script: &str, args: &[String]) -> Duration {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/reference")
        .join(script);
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(path)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let took = started.elapsed();
    // chapter8-manual.sh ends with a PID-file test that fails where there is none.
    assert!(status.code().is_some(), "{script} was killed");
    took
}

/// The primer's Chapter 8 as `chapter8-manual.sh` types it, on this lab: the script with
/// the lab's ports for 8000 and 8001 and its container names for `agent-<a>`.
fn manual(root: &Path, ports: &[u16], containers: &[(String, String)], prefix: &str) -> Duration {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference/chapter8-manual.sh"),
    )
    .unwrap()
    .replace(":8000/", &format!(":{}/", ports[0]))
    .replace(":8001/", &format!(":{}/", ports[1]))
    .replace("\"agent-$a\"", &format!("\"{prefix}$a\""));
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), text).unwrap();
    let mut args = vec![root.display().to_string()];
    args.extend(containers.iter().map(|(a, _)| a.clone()));
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(script.path())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.code().is_some());
    started.elapsed()
}

fn names(containers: &[(String, String)]) -> Vec<String> {
    containers.iter().map(|(_, c)| c.clone()).collect()
}

/// Runs the case once before timing it and says whether pd-doctor diagnosed what the
/// case is: every container.reach as expected (a busy machine may make a healthy reach
/// miss the deadline: that is reported, not hidden).
fn sanity(
    bin: &Path,
    root: &Path,
    args: &[&str],
    want_reach: &dyn Fn(&str) -> &'static str,
) -> String {
    let out = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(args)
        .env("PD_DOCTOR_LOG", "debug")
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // What the engine was asked, from the debug trace.
    let trace = String::from_utf8_lossy(&out.stderr);
    let sent = |what: &str| {
        trace
            .lines()
            .filter(|l| l.contains(what) && l.ends_with(": sent"))
            .count()
    };
    let execs = sent("/exec: sent");
    let archives = sent("/archive");
    let reach: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "container.reach")
        .collect();
    let unexpected: Vec<String> = reach
        .iter()
        .filter(|c| c["cause"] != want_reach(c["id"].as_str().unwrap()))
        .map(|c| format!("{} {}", c["id"], c["cause"]))
        .collect();
    // What was not ok, counted by check, status and cause.
    let mut not_ok = std::collections::BTreeMap::<String, usize>::new();
    for c in doc["checks"].as_array().unwrap() {
        if c["status"] != "ok" {
            let key = format!("{} {} {}", c["check"], c["status"], c["cause"]).replace('"', "");
            *not_ok.entry(key).or_default() += 1;
        }
    }
    let not_ok: Vec<String> = not_ok
        .into_iter()
        .map(|(what, n)| format!("{n} × {what}"))
        .collect();
    let s = &doc["summary"];
    format!(
        "{} checks: {} ok, {} warn, {} fail; execs {execs}, archive reads {archives}; container.reach as expected: {}/{}{}{}",
        doc["checks"].as_array().unwrap().len(),
        s["ok"],
        s["warn"],
        s["fail"],
        reach.len() - unexpected.len(),
        reach.len(),
        if unexpected.is_empty() {
            String::new()
        } else {
            format!(" (not: {})", unexpected.join(", "))
        },
        if not_ok.is_empty() {
            String::new()
        } else {
            format!("\n    not ok: {}", not_ok.join(", "))
        }
    )
}

struct Case {
    label: String,
    root: PathBuf,
    ports: Vec<u16>,
    containers: Vec<(String, String)>,
    /// The lab's container name prefix (for the manual script).
    prefix: String,
    /// The hub layout: its floor is hub-floor.sh, and there is no Chapter 8 to type.
    hub: bool,
}

/// Medians of one case; pd-doctor's largest peak RSS in KiB.
struct Row {
    doctor: Duration,
    /// chapter8-manual.sh (primer layout only).
    manual: Option<Duration>,
    /// reach-floor.sh, or hub-floor.sh in the hub layout.
    floor: Duration,
    /// exec-floor.sh.
    exec: Duration,
    rss_kib: i64,
}

impl Row {
    fn per_manual(&self) -> f64 {
        self.manual
            .map_or(f64::NAN, |m| self.doctor.as_secs_f64() / m.as_secs_f64())
    }

    fn per_floor(&self) -> f64 {
        self.doctor.as_secs_f64() / self.floor.as_secs_f64()
    }

    fn per_exec(&self) -> f64 {
        self.doctor.as_secs_f64() / self.exec.as_secs_f64()
    }
}

fn run_case(bin: &Path, case: &Case, want_reach: &dyn Fn(&str) -> &'static str) -> Row {
    // The hub's healthy row at the default timeout: a given --timeout is kept to the
    // letter, and 14 Python proxies starting at once on two cores take longer than 2 s
    // (hub-floor.sh too); without one, pd-doctor waits for a slow start, as it should.
    let args: &[&str] = if case.hub {
        &["--json"]
    } else {
        &["--json", "--timeout", TIMEOUT]
    };
    let summary = sanity(bin, &case.root, args, want_reach);
    let root = case.root.display().to_string();
    let mut with_root = vec![root.clone()];
    with_root.extend(names(&case.containers));
    let (mut doctor, mut by_hand, mut floor, mut exec, mut rss) =
        (vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..RUNS {
        for step in 0..4 {
            match (rep + step) % 4 {
                0 => {
                    let (t, kib) = pd_doctor_rss(bin, &case.root, args);
                    doctor.push(t);
                    rss.push(kib);
                }
                1 if !case.hub => by_hand.push(manual(
                    &case.root,
                    &case.ports,
                    &case.containers,
                    &case.prefix,
                )),
                1 => {}
                2 if case.hub => floor.push(reference("hub-floor.sh", &with_root)),
                2 => floor.push(reference("reach-floor.sh", &with_root)),
                _ => exec.push(reference("exec-floor.sh", &names(&case.containers))),
            }
        }
    }
    let spread = {
        let mut d = doctor.clone();
        d.sort();
        (d[0], d[d.len() - 1])
    };
    let row = Row {
        doctor: median(&mut doctor),
        manual: (!by_hand.is_empty()).then(|| median(&mut by_hand)),
        floor: median(&mut floor),
        exec: median(&mut exec),
        rss_kib: *rss.iter().max().unwrap(),
    };
    println!(
        "{:<44} {:>6.0} ms ({:>4.0}-{:<4.0}) {:>7} {:>6.0} ms {:>6.0} ms {:>6.2} {:>6.2} {:>6.2} {:>6.1} MiB\n    {summary}",
        case.label,
        ms(row.doctor),
        ms(spread.0),
        ms(spread.1),
        row.manual.map_or("-".to_string(), |m| format!("{:.0} ms", ms(m))),
        ms(row.floor),
        ms(row.exec),
        row.per_floor(),
        row.per_manual(),
        row.per_exec(),
        row.rss_kib as f64 / 1024.0,
    );
    row
}

/// A tree for `agents` served by `lab`, with `extra` servers in pd-doctor.toml.
fn tree(lab: &Lab, qms: u16, git: u16, agents: &[&str], extra: &[(String, u16)]) -> Tree {
    let t = Tree::new(qms, git);
    for a in agents {
        t.agent(a, "healthy");
    }
    configure(lab, &t, extra);
    t
}

fn configure(lab: &Lab, t: &Tree, extra: &[(String, u16)]) {
    let servers: String = extra
        .iter()
        .map(|(name, port)| format!("[[server]]\nname = \"{name}\"\nport = {port}\n"))
        .collect();
    lab.configure(t, &servers);
    // The project names every server, as Pipe Dream's docker/.mcp.json does.
    let mut mcp_json: serde_json::Value =
        serde_json::from_str(&t.ported(common::MCP_JSON)).unwrap();
    for (name, port) in extra {
        mcp_json["mcpServers"][name] = serde_json::json!({
            "type": "http",
            "url": format!("http://host.docker.internal:{port}/mcp"),
        });
    }
    t.write(
        "docker/.mcp.json",
        &serde_json::to_string_pretty(&mcp_json).unwrap(),
    );
    // Approved as Pipe Dream approves the project's servers: the settings overlay,
    // mounted into every agent container, names each of them.
    t.approve();
    let names: Vec<String> = ["qms", "git"]
        .into_iter()
        .map(String::from)
        .chain(extra.iter().map(|(name, _)| name.clone()))
        .collect();
    t.write(
        "docker/.claude-settings.json",
        &serde_json::json!({
            "permissions": {"allow": names.iter().map(|n| format!("mcp__{n}")).collect::<Vec<_>>()},
            "enabledMcpjsonServers": names,
        })
        .to_string(),
    );
}

/// Points every agent's `git` entry (and, through `configure`, docker/.mcp.json and
/// pd-doctor.toml) at `port`.
fn repoint_git(lab: &Lab, t: &mut Tree, agents: &[&str], port: u16) {
    t.git = port;
    for a in agents {
        t.agent(a, "healthy");
    }
    configure(lab, t, &[]);
}

fn host_only(bin: &Path, rt: &tokio::runtime::Handle) {
    let ports: Vec<u16> = (0..5)
        .map(|_| rt.block_on(servers::fault_server(Fault::Hang)).port)
        .collect();
    let hung = Tree::new(ports[0], ports[1]);
    hung.write(
        "pd-doctor.toml",
        &ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[[server]]\nname = \"s{i}\"\nport = {p}\n"))
            .collect::<String>(),
    );
    measure("5 hung servers, --timeout 1s, all checks", || {
        pd_doctor(bin, hung.root(), &["--json", "--timeout", "1s"])
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        for p in &ports {
            let request = client.post(format!("http://127.0.0.1:{p}/mcp")).body("{}");
            let _ = rt.block_on(async { request.send().await });
        }
        times.push(started.elapsed());
    }
    println!(
        "{:<48} median {:>7.1} ms",
        "baseline: the same 5 probed one after another",
        ms(median(&mut times))
    );

    let qms = rt
        .block_on(servers::mcp_server(McpOptions {
            key: Some("qms-internal".into()),
            ..Default::default()
        }))
        .port;
    let git = rt.block_on(servers::mcp_server(McpOptions::default())).port;
    let healthy = Tree::new(qms, git);
    for agent in &AGENTS[..7] {
        healthy.agent(agent, "healthy");
    }
    healthy.config("");
    measure("healthy host: 2 real MCP servers, 7 agents", || {
        pd_doctor(bin, healthy.root(), &["--json"])
    });
}

/// The groups of cases named on the command line (`cargo bench -- minimal hub`), or
/// every group when none is.
fn wanted(group: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|n| n == group)
}

/// What the container cases measured, for the targets: the rows against the reference
/// scripts by key, and the failing states timed against their deadline.
#[derive(Default)]
struct Results {
    rows: BTreeMap<String, Row>,
    walls: Vec<Wall>,
}

/// pd-doctor alone on a failing state: its median wall time against `--timeout`.
struct Wall {
    label: String,
    doctor: Duration,
    timeout: Duration,
    rss_kib: i64,
}

/// The host's servers the primer cases' containers reach: qms and git, three more for
/// the 5-server case, and one that accepts and never answers.
struct Servers {
    qms: u16,
    git: u16,
    more: Vec<(String, u16)>,
    hung: u16,
}

impl Servers {
    fn start(rt: &tokio::runtime::Handle) -> Servers {
        let (qms, git) = rt.block_on(servers::reachable_pair());
        let more = (3..=5)
            .map(|i| {
                let opts = McpOptions {
                    bind: Bind::Reachable,
                    ..Default::default()
                };
                (format!("s{i}"), rt.block_on(servers::mcp_server(opts)).port)
            })
            .collect();
        let hung = rt
            .block_on(servers::fault_server_on(Fault::Hang, Bind::Reachable))
            .port;
        Servers {
            qms,
            git,
            more,
            hung,
        }
    }
}

/// `n` agent containers of `image` started with the primer's flags, and their tree.
struct PrimerLab {
    lab: Lab,
    tree: Tree,
    containers: Vec<(String, String)>,
}

impl PrimerLab {
    fn start(name: &str, s: &Servers, image: &str, n: usize) -> PrimerLab {
        let lab = Lab::new(name);
        let tree = tree(&lab, s.qms, s.git, &AGENTS[..n], &[]);
        let containers = AGENTS[..n]
            .iter()
            .map(|a| {
                lab.start_agent(&tree, a, image, &[]);
                (a.to_string(), lab.name(a))
            })
            .collect();
        PrimerLab {
            lab,
            tree,
            containers,
        }
    }

    fn case(&self, label: &str, ports: Vec<u16>) -> Case {
        Case {
            label: label.to_string(),
            root: self.tree.root().to_path_buf(),
            ports,
            containers: self.containers.clone(),
            prefix: self.lab.prefix.clone(),
            hub: false,
        }
    }

    /// Every agent healthy, then git hung (git's port accepts and never answers).
    fn healthy_then_git_hung(&mut self, bin: &Path, s: &Servers, image: &str) -> (Row, Row) {
        let suffix = if image.ends_with("-minimal") {
            ", minimal image"
        } else {
            ""
        };
        let label = format!(
            "{} agents × 2 servers, healthy{suffix}",
            self.containers.len()
        );
        let healthy = run_case(bin, &self.case(&label, vec![s.qms, s.git]), &|_| "ok");
        let agents: Vec<&str> = self.containers.iter().map(|(a, _)| a.as_str()).collect();
        repoint_git(&self.lab, &mut self.tree, &agents, s.hung);
        let label = format!("{} agents × 2 servers, git hung{suffix}", agents.len());
        let hung = run_case(bin, &self.case(&label, vec![s.qms, s.hung]), &|id: &str| {
            if id.ends_with(",git]") {
                "timeout"
            } else {
                "ok"
            }
        });
        (healthy, hung)
    }
}

fn with_containers(bin: &Path, rt: &tokio::runtime::Handle) {
    let groups = ["primer", "twenty", "minimal", "hub", "hub-failing"];
    if !groups.iter().any(|g| wanted(g)) {
        return;
    }
    if !lab::docker_or_skip("benchmark with agent containers") {
        return;
    }
    let s = Servers::start(rt);
    println!(
        "\n{:<44} {:>9} {:<11} {:>7} {:>9} {:>9} {:>6} {:>6} {:>6} {:>10}",
        "case (--json --timeout 2s)",
        "pd-doctor",
        " (min-max)",
        "manual",
        "floor",
        "exec",
        "pd/fl",
        "pd/man",
        "pd/ex",
        "peak RSS"
    );
    println!("  (floor: reach-floor.sh; in the hub layout hub-floor.sh; exec: exec-floor.sh)");
    let mut results = Results::default();
    if wanted("primer") || wanted("twenty") {
        primer(bin, &s, &mut results);
    }
    if wanted("minimal") {
        let image = lab::image("minimal");
        let mut seven = PrimerLab::start("benchmin", &s, &image, 7);
        let (healthy, hung) = seven.healthy_then_git_hung(bin, &s, &image);
        results.rows.insert("7 minimal".into(), healthy);
        results.rows.insert("7 minimal hung".into(), hung);
        drop(seven);
        let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
    }
    if wanted("hub") || wanted("hub-failing") {
        hub(bin, rt, &mut results);
    }
    targets(&results);
}

/// The primer layout on the usual lab image: 7 agents healthy and with git hung (group
/// `primer`), 20 agents with 2 and with 5 servers (group `twenty`).
fn primer(bin: &Path, s: &Servers, results: &mut Results) {
    let image = lab::image("curl");
    if wanted("primer") {
        let mut seven = PrimerLab::start("bench7", s, &image, 7);
        let (healthy, hung) = seven.healthy_then_git_hung(bin, s, &image);
        results.rows.insert("7".into(), healthy);
        results.rows.insert("7 hung".into(), hung);
    }
    if wanted("twenty") {
        twenty(bin, s, &image, results);
    }
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

fn twenty(bin: &Path, s: &Servers, image: &str, results: &mut Results) {
    let twenty = PrimerLab::start("bench20", s, image, 20);
    let healthy = |_: &str| "ok";
    let row = run_case(
        bin,
        &twenty.case("20 agents × 2 servers, healthy", vec![s.qms, s.git]),
        &healthy,
    );
    results.rows.insert("20".into(), row);
    configure(&twenty.lab, &twenty.tree, &s.more);
    let mut ports = vec![s.qms, s.git];
    ports.extend(s.more.iter().map(|(_, p)| *p));
    let row = run_case(
        bin,
        &twenty.case("20 agents × 5 servers, healthy", ports),
        &healthy,
    );
    results.rows.insert("20x5".into(), row);
}

/// The Agent Hub layout: 7 agents started as the Hub starts them, each with the stdio
/// proxy for qms and git (real rmcp servers that require the proxy's headers), against
/// hub-floor.sh. First a run at the default `--timeout` on fresh containers, whose
/// proxies start cold (Python compiles its modules): it must come out healthy. Then
/// (group `hub-failing`) git's upstream refused and hung, each at two deadlines.
fn hub(bin: &Path, rt: &tokio::runtime::Handle, results: &mut Results) {
    let image = common::hub::hub_image();
    let (qms, git) = rt.block_on(common::hub::hub_servers());
    let t = common::hub::hub_tree(qms, git, &AGENTS[..7]);
    common::hub::age(&t);
    let lab = Lab::new("benchhub");
    t.config(&format!(
        "[layout]\ncontainer_prefix = \"{}\"\ncompose_project = \"pdt-{}\"\nimage = \"{}\"\nhub = \"\"",
        lab.prefix,
        lab.id,
        image.split(':').next().unwrap_or(&image),
    ));
    let containers: Vec<(String, String)> = AGENTS[..7]
        .iter()
        .map(|a| (a.to_string(), lab.start_hub_agent(&t, a, &image, &[])))
        .collect();
    cold_hub_run(bin, &t);
    if wanted("hub") {
        let row = run_case(
            bin,
            &Case {
                label: "hub: 7 agents × 2 stdio proxies".into(),
                root: t.root().to_path_buf(),
                ports: vec![qms, git],
                containers,
                prefix: lab.prefix.clone(),
                hub: true,
            },
            &|_| "ok",
        );
        results.rows.insert("hub".into(), row);
    }
    if wanted("hub-failing") {
        failing_hub(bin, rt, &t, qms, results);
        // The containers' .mcp.json is the tree's: back to the healthy upstream.
        t.write(
            "agent-hub/docker/.mcp.json",
            &common::hub::container_mcp_json(qms, git),
        );
    }
    drop(lab);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

/// One run at the default `--timeout` on fresh hub containers: 14 Python proxies start
/// cold, which the deadline waits for while they work.
fn cold_hub_run(bin: &Path, t: &Tree) {
    let started = Instant::now();
    let cold = Command::new(bin)
        .arg("--root")
        .arg(t.root())
        .arg("--json")
        .output()
        .unwrap();
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&cold.stdout) else {
        println!("hub, 7 fresh containers, default --timeout: no JSON report");
        return;
    };
    let slow = doc["checks"].as_array().map_or(0, |checks| {
        checks
            .iter()
            .filter(|c| c["evidence"].to_string().contains("a slow start"))
            .count()
    });
    println!(
        "hub, 7 fresh containers, default --timeout: exit {}, {} ok, {} warn, {} fail, {slow} stdio checks waited for a slow start, {:.0} ms",
        cold.status.code().unwrap_or(-1),
        doc["summary"]["ok"],
        doc["summary"]["warn"],
        doc["summary"]["fail"],
        ms(started.elapsed())
    );
}

/// The hub layout's failing states: git's upstream refused (a port nothing listens on)
/// and hung (accepts, never answers), the proxies of all 7 agents on it, each at
/// `--timeout 2s` and `5s`. The containers mount the tree's `.mcp.json`, so rewriting it
/// repoints their proxies.
fn failing_hub(bin: &Path, rt: &tokio::runtime::Handle, t: &Tree, qms: u16, results: &mut Results) {
    let refused = common::free_port();
    let hung = rt
        .block_on(servers::fault_server_on(Fault::Hang, Bind::Reachable))
        .port;
    for (state, port, cause) in [("refused", refused, "refused"), ("hung", hung, "timeout")] {
        t.write(
            "agent-hub/docker/.mcp.json",
            &common::hub::container_mcp_json(qms, port),
        );
        let want = move |id: &str| if id.ends_with(",git]") { cause } else { "ok" };
        for secs in [2, 5] {
            let label = format!("hub, git upstream {state}, --timeout {secs}s");
            results
                .walls
                .push(run_wall(bin, &label, t.root(), secs, &want));
        }
    }
}

/// Times pd-doctor alone on a failing state at `--timeout {secs}s`: a failing state
/// costs the deadline it was given, and no more.
fn run_wall(
    bin: &Path,
    label: &str,
    root: &Path,
    secs: u64,
    want_reach: &dyn Fn(&str) -> &'static str,
) -> Wall {
    let timeout = format!("{secs}s");
    let summary = sanity(bin, root, &["--json", "--timeout", &timeout], want_reach);
    let (mut doctor, mut rss) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (t, kib) = pd_doctor_rss(bin, root, &["--json", "--timeout", &timeout]);
        doctor.push(t);
        rss.push(kib);
    }
    doctor.sort();
    let wall = Wall {
        label: label.to_string(),
        doctor: median(&mut doctor),
        timeout: Duration::from_secs(secs),
        rss_kib: *rss.iter().max().unwrap(),
    };
    println!(
        "{:<44} {:>6.0} ms ({:>4.0}-{:<4.0}) deadline {:.0} ms, over it by {:.0} ms {:>26.1} MiB\n    {summary}",
        wall.label,
        ms(wall.doctor),
        ms(doctor[0]),
        ms(doctor[doctor.len() - 1]),
        ms(wall.timeout),
        ms(wall.doctor) - ms(wall.timeout),
        wall.rss_kib as f64 / 1024.0,
    );
    wall
}

/// The targets, each with the measured figure and the ratio to the bare exec
/// floor beside it.
fn targets(results: &Results) {
    let rows = &results.rows;
    let check = |what: &str, value: f64, limit: f64, unit: &str, row: Option<&Row>| {
        let verdict = if value <= limit { "met" } else { "MISSED" };
        let exec = row.map_or(String::new(), |r| {
            format!("  ({:.2}× exec-floor)", r.per_exec())
        });
        println!("  {what:<56} {value:>6.2}{unit} (target ≤ {limit}{unit}): {verdict}{exec}");
    };
    println!("\ntargets");
    let ratio = |key: &str, what: &str, value: fn(&Row) -> f64, limit: f64| {
        if let Some(row) = rows.get(key) {
            check(what, value(row), limit, "×", Some(row));
        }
    };
    let wall = |key: &str, what: &str, limit: f64| {
        if let Some(row) = rows.get(key) {
            check(what, row.doctor.as_secs_f64(), limit, " s", None);
        }
    };
    ratio(
        "7",
        "7 agents: pd-doctor / reach-floor",
        Row::per_floor,
        1.3,
    );
    ratio(
        "7",
        "7 agents: pd-doctor / chapter8-manual",
        Row::per_manual,
        0.35,
    );
    ratio(
        "7 minimal",
        "7 agents, minimal image: pd-doctor / reach-floor",
        Row::per_floor,
        1.3,
    );
    ratio(
        "7 minimal",
        "7 agents, minimal image: pd-doctor / chapter8-manual",
        Row::per_manual,
        0.35,
    );
    ratio(
        "20",
        "20 agents × 2 servers: pd-doctor / reach-floor",
        Row::per_floor,
        1.3,
    );
    ratio(
        "20x5",
        "20 agents × 5 servers: pd-doctor / reach-floor",
        Row::per_floor,
        1.3,
    );
    ratio(
        "hub",
        "hub, 7 agents: pd-doctor / hub-floor",
        Row::per_floor,
        1.3,
    );
    wall("7 hung", "7 agents, git hung: pd-doctor wall time", 2.2);
    wall(
        "7 minimal hung",
        "7 agents, git hung, minimal image: pd-doctor wall time",
        2.2,
    );
    for w in &results.walls {
        let limit = w.timeout.as_secs_f64() + 0.2;
        check(
            &format!("{}: wall time", w.label),
            w.doctor.as_secs_f64(),
            limit,
            " s",
            None,
        );
    }
    let rss = rows
        .values()
        .map(|r| r.rss_kib)
        .chain(results.walls.iter().map(|w| w.rss_kib))
        .max()
        .unwrap_or(0) as f64
        / 1024.0;
    check("every case: pd-doctor peak RSS", rss, 30.0, " MiB", None);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bin = binary();
    println!(
        "pd-doctor bench: {} cores, {RUNS} runs per case (host-only: {HOST_RUNS})\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if wanted("host") {
        host_only(&bin, rt.handle());
    }
    with_containers(&bin, rt.handle());
}
