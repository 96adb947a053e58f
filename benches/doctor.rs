//! Wall time of whole pd-doctor runs, the number users feel: `cargo bench`.
//!
//! - hung servers: five servers that accept and never answer, `--timeout 1s`: the run
//!   must cost about one timeout, not five;
//! - healthy host: two real MCP servers (rmcp) and seven configured agents;
//! - sequential baseline: the same five hung servers probed one after another with the
//!   same client deadline, which is what a script of `curl` calls costs.
//!
//! Prints the median and the spread of several runs of the release binary.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::servers::{self, Fault, McpOptions};
use common::Tree;

const RUNS: usize = 7;

fn binary() -> std::path::PathBuf {
    let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/pd-doctor");
    assert!(
        std::process::Command::new("cargo")
            .args(["build", "--release", "-q"])
            .status()
            .unwrap()
            .success(),
        "cargo build --release"
    );
    release
}

fn measure(label: &str, mut run: impl FnMut() -> Duration) {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    println!(
        "{label:<48} median {:>7.1} ms   min {:>7.1} ms   max {:>7.1} ms",
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3
    );
}

fn pd_doctor(bin: &std::path::Path, root: &std::path::Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = std::process::Command::new(bin)
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.code().is_some());
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let bin = binary();

    let mut ports = Vec::new();
    for _ in 0..5 {
        ports.push(servers::fault_server(Fault::Hang).await.port);
    }
    let hung = Tree::new(ports[0], ports[1]);
    hung.write(
        "pd-doctor.toml",
        &ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("[[server]]\nname = \"s{i}\"\nport = {p}\n"))
            .collect::<String>(),
    );
    let b = bin.clone();
    let root = hung.root().to_path_buf();
    let bench = tokio::task::spawn_blocking(move || {
        measure("5 hung servers, --timeout 1s, all checks", || {
            pd_doctor(&b, &root, &["--json", "--timeout", "1s"])
        });
    });
    bench.await.unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        for p in &ports {
            let _ = client
                .post(format!("http://127.0.0.1:{p}/mcp"))
                .body("{}")
                .send()
                .await;
        }
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{:<48} median {:>7.1} ms",
        "baseline: the same 5 probed one after another",
        times[1].as_secs_f64() * 1e3
    );

    let qms = servers::mcp_server(McpOptions {
        key: Some("qms-internal".into()),
        ..Default::default()
    })
    .await;
    let git = servers::mcp_server(McpOptions::default()).await;
    let healthy = Tree::new(qms.port, git.port);
    for agent in [
        "claude",
        "qa",
        "tu_ui",
        "tu_scene",
        "tu_sketch",
        "tu_sim",
        "bu",
    ] {
        healthy.agent(agent, "healthy");
    }
    healthy.config("");
    let root = healthy.root().to_path_buf();
    let b = bin.clone();
    tokio::task::spawn_blocking(move || {
        measure("healthy host: 2 real MCP servers, 7 agents", || {
            pd_doctor(&b, &root, &["--json"])
        });
    })
    .await
    .unwrap();
}
