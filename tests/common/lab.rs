//! The Docker lab for tests: agent images built FROM scratch out of this host's own
//! programs (docker/lab/build-rootfs.sh), containers created per test with a unique name
//! prefix and label, and removed when the test ends, passed or failed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, Once};
use std::time::Duration;

use super::Tree;

pub const LABEL: &str = "pd-doctor-test";

/// What makes host.docker.internal exist in a container on a Linux engine.
pub const GATEWAY: &str = "--add-host=host.docker.internal:host-gateway";

/// The name lab containers reach "Anthropic's API" by (see [`anthropic_args`]).
pub const LAB_API_HOST: &str = "pd-lab-anthropic";

/// Where a lab container's Claude Code would connect first, unless a test says
/// otherwise (it names ANTHROPIC_BASE_URL, or shares another container's network): a
/// port of this test process on the Docker bridge that accepts and closes every
/// connection, by a name of the container's own /etc/hosts. No lookup of
/// api.anthropic.com ever leaves the machine.
fn anthropic_args(args: &[String]) -> Vec<String> {
    let shares_network = args
        .windows(2)
        .any(|w| w[0] == "--network" && w[1].starts_with("container:"));
    if shares_network || args.iter().any(|a| a.contains("ANTHROPIC_BASE_URL")) {
        return Vec::new();
    }
    vec![
        format!("--add-host={LAB_API_HOST}:host-gateway"),
        "-e".into(),
        format!(
            "ANTHROPIC_BASE_URL=http://{LAB_API_HOST}:{}",
            super::servers::lab_api_port()
        ),
    ]
}

/// The lab for one test and its image with `variant`'s client, or a skip (see
/// [`docker_or_skip`]).
pub fn lab_or_skip(test: &str, lab_name: &str, variant: &str) -> Option<(Lab, String)> {
    docker_or_skip(test).then(|| (Lab::new(lab_name), image(variant)))
}

/// Docker is there, or the test skips with a reason (fails under PD_REQUIRE_DOCKER=1).
pub fn docker_or_skip(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("PD_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("{test}: PD_REQUIRE_DOCKER=1 but no Docker engine answers");
        }
        eprintln!(
            "skipped {test}: no Docker engine (set PD_REQUIRE_DOCKER=1 to make this a failure)"
        );
    }
    ok
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A non-loopback IPv6 address of this host, docker0's link-local one first.
pub fn host_ipv6() -> String {
    let table = std::fs::read_to_string("/proc/net/if_inet6").expect("an IPv6 table");
    let mut rows: Vec<(&str, &str)> = table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.last()?))
        })
        .filter(|(_, dev)| *dev != "lo")
        .collect();
    rows.sort_by_key(|(_, dev)| *dev != "docker0");
    let hex = rows.first().expect("a non-loopback IPv6 address").0;
    let groups: Vec<String> = (0..8).map(|i| hex[i * 4..i * 4 + 4].to_string()).collect();
    let addr: std::net::Ipv6Addr = groups.join(":").parse().unwrap();
    addr.to_string()
}

pub const ENTRYPOINT: &str = include_str!("../../docker/entrypoint.sh");

/// Builds a lab image tagged `tag` with `entrypoint` as /entrypoint.sh; `variant` is the
/// HTTP client it carries (see docker/lab/build-rootfs.sh).
pub fn build_image(tag: &str, variant: &str, entrypoint: &str) {
    let ctx = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::copy(
        Path::new(root).join("docker/Dockerfile"),
        ctx.path().join("Dockerfile"),
    )
    .unwrap();
    std::fs::write(ctx.path().join("entrypoint.sh"), entrypoint).unwrap();
    std::fs::set_permissions(
        ctx.path().join("entrypoint.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    build_context(ctx.path(), variant, tag);
}

/// Fills `ctx/rootfs` with `build-rootfs.sh ROOTFS variant` and builds `ctx` as `tag`,
/// labelled with this test process.
pub fn build_context(ctx: &Path, variant: &str, tag: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/lab/build-rootfs.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(ctx.join("rootfs"))
        .arg(variant)
        .status()
        .expect("bash");
    assert!(status.success(), "build-rootfs.sh {variant} failed");
    let label = format!("{LABEL}={}", std::process::id());
    docker(&[
        "build",
        "-q",
        "--label",
        &label,
        "-t",
        tag,
        &ctx.display().to_string(),
    ]);
}

/// The lab image of this test process with `variant`'s client, built on first use.
pub fn image(variant: &str) -> String {
    static IMAGES: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    sweep_images();
    let mut built = IMAGES.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(variant.to_string())
        .or_insert_with(|| {
            let tag = format!("pd-doctor-lab:{}-{variant}", std::process::id());
            build_image(&tag, variant, ENTRYPOINT);
            tag
        })
        .clone()
}

/// Removes, once per test process, the lab images of test processes that have ended.
/// Every image builder of the lab calls it before its first build.
pub fn sweep_images() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(remove_images_of_finished_runs);
}

/// Images are shared by a test process's tests, so no single test can remove them; the
/// next run removes those whose process has ended.
fn remove_images_of_finished_runs() {
    let listing = docker(&[
        "images",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    for line in listing.lines() {
        let Some((id, tag)) = line.split_once(' ') else {
            continue;
        };
        // Another test process may sweep the same image meanwhile: gone is as good.
        let Some(inspected) = Command::new("docker")
            .args([
                "image",
                "inspect",
                id,
                "--format",
                &format!("{{{{index .Config.Labels \"{LABEL}\"}}}}"),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
        else {
            continue;
        };
        let owner = String::from_utf8_lossy(&inspected.stdout);
        let alive = owner
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = Command::new("docker").args(["rmi", "-f", tag]).output();
        }
    }
}

/// One test's containers: named `<prefix><agent>`, labelled, removed on drop.
pub struct Lab {
    pub id: String,
    pub prefix: String,
}

impl Lab {
    pub fn new(test: &str) -> Lab {
        let id = format!(
            "{}-{}-{}",
            test.chars().take(20).collect::<String>().replace('_', "-"),
            std::process::id(),
            rand_suffix()
        );
        Lab {
            prefix: format!("pdt-{id}-agent-"),
            id,
        }
    }

    /// pd-doctor.toml for `tree` pointing at this lab's names.
    pub fn configure(&self, tree: &Tree, extra: &str) {
        tree.config(&format!(
            "[layout]\ncontainer_prefix = \"{}\"\ncompose_project = \"pdt-{}\"\n{extra}",
            self.prefix, self.id
        ));
        tree.write("docker/entrypoint.sh", ENTRYPOINT);
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(tree.path("docker/entrypoint.sh"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        tree.write(
            ".mcp.json",
            "{\"mcpServers\": {\"qms\": {\"command\": \"C:/python.exe\"}}}",
        );
        tree.write("CLAUDE.md", "# claude\n");
    }

    pub fn name(&self, agent: &str) -> String {
        format!("{}{agent}", self.prefix)
    }

    /// The Chapter 2.4 mounts and environment of `agent` in `tree`.
    pub fn standard_args(tree: &Tree, agent: &str) -> Vec<String> {
        let root = tree.root().display().to_string();
        let mut args = vec![
            "-v".to_string(),
            format!("{root}:/pipe-dream:ro"),
            "-v".into(),
            format!("{root}/.claude/users/{agent}/workspace:/pipe-dream/.claude/users/{agent}/workspace:rw"),
            "-v".into(),
            format!("{root}/.claude/users/{agent}/container:/claude-config:rw"),
            "-v".into(),
            format!("{root}/docker/.mcp.json:/pipe-dream/.mcp.json:ro"),
            "-e".into(),
            "CLAUDE_CONFIG_DIR=/claude-config".into(),
        ];
        if agent != "claude" {
            args.extend([
                "-v".into(),
                format!("{root}/.claude/agents/{agent}.md:/pipe-dream/CLAUDE.md:ro"),
            ]);
        }
        if tree.path("docker/.claude-settings.json").exists() {
            args.extend([
                "-v".into(),
                format!("{root}/docker/.claude-settings.json:/pipe-dream/.claude/settings.local.json:ro"),
            ]);
        }
        args
    }

    /// This lab's containers, running or not, as `docker ps --format` prints them; never
    /// fails (a Drop calls it).
    pub fn containers(&self, format: &str) -> Vec<String> {
        Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label={LABEL}={}", self.id),
                "--format",
                format,
            ])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts `agent`'s container the way the project's script should: Chapter 2.4
    /// mounts, host gateway, the image's own entrypoint, plus `extra` arguments.
    pub fn start_agent(&self, t: &Tree, agent: &str, image: &str, extra: &[&str]) -> String {
        let mut args = Lab::standard_args(t, agent);
        args.push(GATEWAY.into());
        args.extend(extra.iter().map(|s| s.to_string()));
        self.start(&self.name(agent), true, &args, &[image])
    }

    /// `docker run -d` (or `create` with `run = false`) of a labelled container; a run
    /// returns once the entrypoint has exec'd its command.
    pub fn start(&self, name: &str, run: bool, args: &[String], image_and_cmd: &[&str]) -> String {
        let id = self.launch(name, run, args, image_and_cmd);
        if run {
            wait_for_exec(name);
        }
        id
    }

    /// The same, without waiting for the entrypoint.
    pub fn launch(&self, name: &str, run: bool, args: &[String], image_and_cmd: &[&str]) -> String {
        let label = format!("{LABEL}={}", self.id);
        let mut all: Vec<&str> = vec![if run { "run" } else { "create" }];
        if run {
            all.push("-d");
        }
        all.extend(["--name", name, "--label", &label]);
        let api = anthropic_args(args);
        all.extend(api.iter().map(String::as_str));
        all.extend(args.iter().map(String::as_str));
        all.extend(image_and_cmd);
        docker(&all)
    }
}

/// Waits until the entrypoint has exec'd its command (PID 1 is no longer the script).
fn wait_for_exec(name: &str) {
    for _ in 0..50 {
        let top = Command::new("docker")
            .args(["top", name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let first = top.lines().nth(1).unwrap_or("");
        if !first.is_empty() && !first.contains("entrypoint.sh") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rand_suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}", n % 0xffffff)
}

impl Drop for Lab {
    fn drop(&mut self) {
        let ids = self.containers("{{.ID}}");
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &format!("pdt-{}-img", self.id)])
            .output();
    }
}
