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
//! one run, alternating:
//! - pd-doctor: the release binary, `--json --timeout 2s`, with its peak RSS (wait4);
//! - manual: the primer's Chapter 8 commands one after another (benches/manual-checklist.sh);
//! - floor: N concurrent `docker exec <c> sh -c :`, the engine's cost of one exec per
//!   container and nothing else.
//!
//! Prints medians (and pd-doctor's spread) and the ratios pd-doctor/manual and
//! pd-doctor/floor.

#![allow(
    unsafe_code,
    reason = "wait4 is the one call that reports a child's peak RSS; std and rustix have no safe one"
)]

#[path = "../tests/common/mod.rs"]
mod common;

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
    let release = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/pd-doctor");
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

/// The primer's Chapter 8 commands, one after another.
fn manual(root: &Path, ports: &[u16], containers: &[(String, String)]) -> Duration {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/manual-checklist.sh");
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let agents: Vec<String> = containers.iter().map(|(a, c)| format!("{a}={c}")).collect();
    let max = TIMEOUT.trim_end_matches('s');
    let started = Instant::now();
    let status = Command::new("bash")
        .arg(script)
        .arg(root)
        .args([max, &ports.join(" "), &agents.join(" ")])
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

/// N concurrent `docker exec <c> sh -c :`.
fn floor(containers: &[(String, String)]) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = containers
        .iter()
        .map(|(_, c)| {
            Command::new("docker")
                .args(["exec", c, "sh", "-c", ":"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        let _ = child.wait();
    }
    started.elapsed()
}

/// Runs the case once before timing it and says whether pd-doctor diagnosed what the
/// case is: every container.reach as expected (a busy machine may make a healthy reach
/// miss the deadline: that is reported, not hidden).
fn sanity(bin: &Path, root: &Path, want_reach: &dyn Fn(&str) -> &'static str) -> String {
    let out = Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(["--json", "--timeout", TIMEOUT])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
        "{} checks: {} ok, {} warn, {} fail; container.reach as expected: {}/{}{}{}",
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

struct Case<'a> {
    label: String,
    root: &'a Path,
    ports: Vec<u16>,
    containers: Vec<(String, String)>,
}

/// Medians of one case: pd-doctor, manual, floor; pd-doctor's largest peak RSS in KiB.
struct Row {
    doctor: Duration,
    manual: Duration,
    floor: Duration,
    rss_kib: i64,
}

impl Row {
    fn per_manual(&self) -> f64 {
        self.doctor.as_secs_f64() / self.manual.as_secs_f64()
    }

    fn per_floor(&self) -> f64 {
        self.doctor.as_secs_f64() / self.floor.as_secs_f64()
    }
}

fn run_case(bin: &Path, case: &Case, want_reach: &dyn Fn(&str) -> &'static str) -> Row {
    let summary = sanity(bin, case.root, want_reach);
    let (mut doctor, mut by_hand, mut engine, mut rss) = (vec![], vec![], vec![], vec![]);
    for rep in 0..RUNS {
        for step in 0..3 {
            match (rep + step) % 3 {
                0 => {
                    let (t, kib) = pd_doctor_rss(bin, case.root, &["--json", "--timeout", TIMEOUT]);
                    doctor.push(t);
                    rss.push(kib);
                }
                1 => by_hand.push(manual(case.root, &case.ports, &case.containers)),
                _ => engine.push(floor(&case.containers)),
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
        manual: median(&mut by_hand),
        floor: median(&mut engine),
        rss_kib: *rss.iter().max().unwrap(),
    };
    println!(
        "{:<34} {:>6.0} ms ({:>4.0}-{:<4.0}) {:>7.0} ms {:>6.0} ms {:>6.2} {:>6.2} {:>6.1} MiB\n    {summary}",
        case.label,
        ms(row.doctor),
        ms(spread.0),
        ms(spread.1),
        ms(row.manual),
        ms(row.floor),
        row.per_manual(),
        row.per_floor(),
        row.rss_kib as f64 / 1024.0,
    );
    row
}

/// A lab, its tree, and (agent, container name) for each agent.
type Setup = (Lab, Tree, Vec<(String, String)>);

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
        &serde_json::json!({ "enabledMcpjsonServers": names }).to_string(),
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

fn with_containers(bin: &Path, rt: &tokio::runtime::Handle) {
    if !lab::docker_or_skip("benchmark with agent containers") {
        return;
    }
    let image = lab::image("curl");
    let reachable = |opts: McpOptions| rt.block_on(servers::mcp_server(opts)).port;
    let (qms, git) = rt.block_on(servers::reachable_pair());
    let more: Vec<(String, u16)> = (3..=5)
        .map(|i| {
            let port = reachable(McpOptions {
                bind: Bind::Reachable,
                ..Default::default()
            });
            (format!("s{i}"), port)
        })
        .collect();
    let hung = rt
        .block_on(servers::fault_server_on(Fault::Hang, Bind::Reachable))
        .port;

    let mut labs: Vec<Setup> = [2, 7, 20]
        .iter()
        .map(|&n| {
            let lab = Lab::new(&format!("bench{n}"));
            let t = tree(&lab, qms, git, &AGENTS[..n], &[]);
            let containers = AGENTS[..n]
                .iter()
                .map(|a| {
                    lab.start_agent(&t, a, &image, &[]);
                    (a.to_string(), lab.name(a))
                })
                .collect();
            (lab, t, containers)
        })
        .collect();

    println!(
        "\n{:<34} {:>9} {:<11} {:>10} {:>9} {:>6} {:>6} {:>10}",
        "case (--json --timeout 2s)",
        "pd-doctor",
        " (min-max)",
        "manual",
        "floor",
        "pd/man",
        "pd/fl",
        "peak RSS"
    );
    let healthy = |_: &str| "ok";
    let mut rows = std::collections::BTreeMap::new();
    for (lab, t, containers) in &mut labs {
        let n = containers.len();
        let row = run_case(
            bin,
            &Case {
                label: format!("{n} agents × 2 servers, healthy"),
                root: t.root(),
                ports: vec![qms, git],
                containers: containers.clone(),
            },
            &healthy,
        );
        rows.insert(format!("{n}"), row);
        if n == 7 {
            repoint_git(lab, t, &AGENTS[..7], hung);
            let row = run_case(
                bin,
                &Case {
                    label: "7 agents × 2 servers, git hung".into(),
                    root: t.root(),
                    ports: vec![qms, hung],
                    containers: containers.clone(),
                },
                &|id: &str| {
                    if id.ends_with(",git]") {
                        "timeout"
                    } else {
                        "ok"
                    }
                },
            );
            rows.insert("7 hung".into(), row);
            repoint_git(lab, t, &AGENTS[..7], git);
        }
        if n == 20 {
            configure(lab, t, &more);
            let mut ports = vec![qms, git];
            ports.extend(more.iter().map(|(_, p)| *p));
            let row = run_case(
                bin,
                &Case {
                    label: "20 agents × 5 servers, healthy".into(),
                    root: t.root(),
                    ports,
                    containers: containers.clone(),
                },
                &healthy,
            );
            rows.insert("20x5".into(), row);
        }
    }
    drop(labs);
    targets(&rows);
    let _ = Command::new("docker").args(["rmi", "-f", &image]).output();
}

/// The targets, each with the measured figure.
fn targets(rows: &std::collections::BTreeMap<String, Row>) {
    let check = |what: &str, value: f64, limit: f64, unit: &str| {
        let verdict = if value <= limit { "met" } else { "MISSED" };
        println!("  {what:<44} {value:>6.2}{unit} (target ≤ {limit}{unit}): {verdict}");
    };
    println!("\ntargets");
    check(
        "7 agents: pd-doctor / manual",
        rows["7"].per_manual(),
        0.35,
        "×",
    );
    check(
        "7 agents: pd-doctor / floor",
        rows["7"].per_floor(),
        1.6,
        "×",
    );
    check(
        "20 agents × 2 servers: pd-doctor / floor",
        rows["20"].per_floor(),
        1.6,
        "×",
    );
    check(
        "20 agents × 5 servers: pd-doctor / floor",
        rows["20x5"].per_floor(),
        1.6,
        "×",
    );
    check(
        "7 agents, git hung: pd-doctor wall time",
        rows["7 hung"].doctor.as_secs_f64(),
        2.3,
        " s",
    );
    let rss = rows["20"].rss_kib.max(rows["20x5"].rss_kib) as f64 / 1024.0;
    check("20 agents: pd-doctor peak RSS", rss, 30.0, " MiB");
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
    host_only(&bin, rt.handle());
    with_containers(&bin, rt.handle());
}
