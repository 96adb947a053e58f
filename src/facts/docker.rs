//! The Docker engine as the container checks see it: connected the way the docker CLI
//! connects, every agent container found and inspected once, and `docker exec` with an
//! argv array, a deadline and a cap on what it reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::time::Instant;

use crate::paths;
use crate::project::Project;

const MAX_EXEC_OUTPUT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Engine {
    pub version: String,
    pub api: String,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct MountInfo {
    pub source: String,
    pub destination: String,
    pub rw: bool,
}

/// One agent container, inspected.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The agent it serves, and how that was decided.
    pub agent: String,
    pub found_by: &'static str,
    pub status: String,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub started_at: String,
    /// The image id the container was created from, and the name it was asked for.
    pub image_id: String,
    pub image_name: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// Environment variable names and values; values of secret-looking names are never shown.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<MountInfo>,
    /// The image the container's name for it (`Config.Image`) points at now.
    pub tag_image_id: Option<String>,
    pub image_created: Option<String>,
    pub image_entrypoint: Vec<String>,
}

impl Container {
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn mount_at(&self, destination: &str) -> Option<&MountInfo> {
        self.mounts
            .iter()
            .find(|m| m.destination.trim_end_matches('/') == destination.trim_end_matches('/'))
    }
}

pub struct DockerFacts {
    pub client: Docker,
    pub engine: Engine,
    pub containers: Vec<Container>,
    /// Which HTTP client each container has, found out on first use (the per-client
    /// path, for images without `sh`).
    pub clients: HashMap<String, tokio::sync::OnceCell<Option<&'static str>>>,
    /// What the one-exec script reported from inside each container, on first use.
    pub inside: HashMap<String, tokio::sync::OnceCell<super::inside::Gathered>>,
}

/// Connects as the docker CLI would (DOCKER_HOST, else the local socket or named pipe),
/// negotiates the API version, and finds the project's agent containers.
pub async fn gather(project: &Project, deadline: Instant) -> Result<DockerFacts, String> {
    let endpoint = endpoint();
    let connect = async {
        let client = Docker::connect_with_host(&endpoint.host).map_err(|e| e.to_string())?;
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| e.to_string())?;
        let version = client.version().await.map_err(|e| e.to_string())?;
        let engine = Engine {
            version: version.version.unwrap_or_else(|| "?".into()),
            api: client.client_version().to_string(),
            endpoint: endpoint.to_string(),
        };
        let containers = discover(&client, project).await?;
        Ok::<_, String>(DockerFacts {
            client,
            engine,
            clients: cells(&containers),
            inside: cells(&containers),
            containers,
        })
    };
    match tokio::time::timeout_at(deadline, connect).await {
        Ok(result) => result.map_err(|e| format!("{e} (at {endpoint})")),
        Err(_) => Err(format!("the engine at {endpoint} did not answer in time")),
    }
}

/// One empty memo per container.
fn cells<T>(containers: &[Container]) -> HashMap<String, tokio::sync::OnceCell<T>> {
    containers
        .iter()
        .map(|c| (c.id.clone(), Default::default()))
        .collect()
}

fn default_endpoint() -> &'static str {
    if cfg!(windows) {
        "npipe:////./pipe/docker_engine"
    } else {
        "unix:///var/run/docker.sock"
    }
}

/// Where the engine is, and what said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub context: Option<String>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.context {
            Some(name) => write!(f, "{} (context {name})", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Where the docker CLI would connect: DOCKER_HOST; else the current context's endpoint
/// (DOCKER_CONTEXT, else `currentContext` in the CLI's config.json), which is how Docker
/// Desktop, rootless Docker and colima are reached; else the platform's default socket.
pub fn endpoint() -> Endpoint {
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            return Endpoint {
                host,
                context: None,
            };
        }
    }
    let config_dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let context = std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let text = std::fs::read_to_string(config_dir.as_ref()?.join("config.json")).ok()?;
            let config: serde_json::Value = serde_json::from_str(&text).ok()?;
            config["currentContext"].as_str().map(str::to_string)
        });
    match (context, config_dir) {
        (Some(name), Some(dir)) if name != "default" => match context_host(&dir, &name) {
            Some(host) => Endpoint {
                host,
                context: Some(name),
            },
            None => Endpoint {
                host: default_endpoint().into(),
                context: Some(format!("{name}, not found")),
            },
        },
        _ => Endpoint {
            host: default_endpoint().into(),
            context: None,
        },
    }
}

/// The docker endpoint of context `name`: contexts live in `contexts/meta/<digest>/meta.json`.
fn context_host(config_dir: &Path, name: &str) -> Option<String> {
    std::fs::read_dir(config_dir.join("contexts").join("meta"))
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let text = std::fs::read_to_string(entry.path().join("meta.json")).ok()?;
            let meta: serde_json::Value = serde_json::from_str(&text).ok()?;
            (meta["Name"] == name).then(|| {
                meta["Endpoints"]["docker"]["Host"]
                    .as_str()
                    .map(str::to_string)
            })?
        })
}

/// Which agent a container serves: by name (`agent-<agent>`), by compose labels, or by
/// the agent config dir it mounts at the config mount point.
fn agent_of(
    project: &Project,
    name: &str,
    labels: &HashMap<String, String>,
    mounts: &[MountInfo],
) -> Option<(String, &'static str)> {
    let layout = &project.layout;
    if let Some(agent) = name
        .strip_prefix(&layout.container_prefix)
        .filter(|a| !a.is_empty())
    {
        return Some((agent.to_string(), "name"));
    }
    let label = |k: &str| labels.get(k).map(String::as_str);
    if label("com.docker.compose.project") == Some(layout.compose_project.as_str())
        && label("com.docker.compose.service") == Some(layout.compose_service.as_str())
    {
        return Some((layout.compose_agent.clone(), "compose labels"));
    }
    let config = mounts
        .iter()
        .find(|m| m.destination == layout.config_mount)?;
    project
        .agents
        .iter()
        .find(|a| paths::same_folder(&config.source, &a.config_dir))
        .map(|a| (a.name.clone(), "config mount"))
}

async fn discover(client: &Docker, project: &Project) -> Result<Vec<Container>, String> {
    let options = ListContainersOptionsBuilder::new().all(true).build();
    let summaries = client
        .list_containers(Some(options))
        .await
        .map_err(|e| e.to_string())?;
    let mut wanted = Vec::new();
    for s in summaries {
        let name = s
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let mounts: Vec<MountInfo> = s
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(mount_info)
            .collect();
        if let Some((agent, found_by)) =
            agent_of(project, &name, &s.labels.unwrap_or_default(), &mounts)
        {
            wanted.push((s.id.unwrap_or_default(), agent, found_by));
        }
    }
    let inspected =
        futures::future::join_all(wanted.into_iter().map(|(id, agent, found_by)| async move {
            let c = client.inspect_container(&id, None).await.ok()?;
            Some(container(c, agent, found_by))
        }))
        .await;
    let mut containers: Vec<Container> = inspected.into_iter().flatten().collect();
    // Seven agents usually share one image: inspect each image reference once.
    let tag_of = |c: &Container| {
        // Created from a bare image id: compare with the project's image instead.
        if c.image_name.starts_with("sha256:") {
            project.layout.image.clone()
        } else {
            c.image_name.clone()
        }
    };
    let mut refs: Vec<String> = containers
        .iter()
        .flat_map(|c| [c.image_id.clone(), tag_of(c)])
        .collect();
    refs.sort();
    refs.dedup();
    let images: HashMap<String, bollard::models::ImageInspect> = futures::future::join_all(
        refs.into_iter()
            .map(|r| async move { Some((r.clone(), client.inspect_image(&r).await.ok()?)) }),
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    for c in &mut containers {
        if let Some(own) = images.get(&c.image_id) {
            c.image_created = own.created.clone();
            c.image_entrypoint = own
                .config
                .as_ref()
                .and_then(|cfg| cfg.entrypoint.clone())
                .unwrap_or_default();
        }
        c.tag_image_id = images.get(&tag_of(c)).and_then(|i| i.id.clone());
    }
    containers.sort_by(|a, b| (&a.agent, &a.name).cmp(&(&b.agent, &b.name)));
    Ok(containers)
}

fn mount_info(m: bollard::models::MountPoint) -> MountInfo {
    MountInfo {
        source: m.source.unwrap_or_default(),
        destination: m.destination.unwrap_or_default(),
        rw: m.rw.unwrap_or(false),
    }
}

fn container(
    c: bollard::models::ContainerInspectResponse,
    agent: String,
    found_by: &'static str,
) -> Container {
    let state = c.state.unwrap_or_default();
    let config = c.config.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();
    Container {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        agent,
        found_by,
        status: state.status.map(|s| s.to_string()).unwrap_or_default(),
        running: state.running.unwrap_or(false),
        restarting: state.restarting.unwrap_or(false),
        exit_code: state.exit_code.unwrap_or(0),
        oom_killed: state.oom_killed.unwrap_or(false),
        started_at: state.started_at.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        image_name: config.image.unwrap_or_default(),
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        extra_hosts: host.extra_hosts.unwrap_or_default(),
        env: config
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        mounts: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .map(mount_info)
            .collect(),
        tag_image_id: None,
        image_created: None,
        image_entrypoint: Vec::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// An exec read until it ended, its output cap, or the deadline.
#[derive(Debug, Clone)]
pub struct ExecRun {
    pub output: ExecOutput,
    /// The program ended and its output was read to the end (or to the cap).
    pub finished: bool,
}

/// `docker exec` with an argv array (never a shell line built from values), reading at
/// most 64 KiB, given up at the deadline.
pub async fn exec(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
) -> Result<ExecOutput, String> {
    let run = exec_until(client, container, argv, deadline, MAX_EXEC_OUTPUT).await?;
    if run.finished {
        Ok(run.output)
    } else {
        Err("timeout".into())
    }
}

/// The same, reading at most `cap` bytes, and keeping what came before the deadline.
pub async fn exec_until(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
    cap: usize,
) -> Result<ExecRun, String> {
    let (mut stdout, mut stderr, mut exit_code) = (Vec::new(), Vec::new(), None);
    let run = async {
        let created = client
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        if let StartExecResults::Attached { mut output, .. } = client
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| e.to_string())?
        {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.extend_from_slice(&message)
                    }
                    Ok(other) => stdout.extend_from_slice(&other.into_bytes()),
                    Err(e) => return Err(e.to_string()),
                }
                if stdout.len() + stderr.len() > cap {
                    break;
                }
            }
        }
        exit_code = client
            .inspect_exec(&created.id)
            .await
            .ok()
            .and_then(|i| i.exit_code);
        Ok::<_, String>(())
    };
    let finished = match tokio::time::timeout_at(deadline, run).await {
        Ok(result) => {
            result?;
            true
        }
        Err(_) => false,
    };
    Ok(ExecRun {
        output: ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        finished,
    })
}

/// The last lines a stopped container logged: why its entrypoint died.
pub async fn last_log_lines(client: &Docker, container: &str, lines: usize) -> Vec<String> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let read = async {
        let mut text = String::new();
        let mut logs = client.logs(container, Some(options));
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if text.len() > MAX_EXEC_OUTPUT {
                break;
            }
        }
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .unwrap_or_default();
    text.lines().map(|l| super::inside::clean(l, 200)).collect()
}

/// One file out of a container (running or not), via the archive endpoint.
pub async fn read_file(client: &Docker, container: &str, path: &str) -> Option<Vec<u8>> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = client.download_from_container(container, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.ok()?);
        if tar.len() > 4 * 1024 * 1024 {
            return None;
        }
    }
    first_tar_entry(&tar)
}

/// The content of the first regular file in a tar archive; PAX and GNU extension
/// headers before it are stepped over.
fn first_tar_entry(tar: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while let Some(header) = tar.get(at..at + 512) {
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .ok()?;
        let body = at + 512;
        if matches!(header[156], b'0' | 0) && header[0] != 0 {
            return tar.get(body..body + size).map(<[u8]>::to_vec);
        }
        at = body + size.div_ceil(512) * 512;
    }
    None
}

/// The HTTP-capable programs `container.reach` can use, in order of preference.
pub const CLIENTS: [&str; 5] = ["curl", "wget", "python3", "node", "bash"];

/// The first of [`CLIENTS`] the container can run. An exec of a missing program fails
/// to start (exit 126/127 or an OCI error), which is the answer.
pub async fn detect_client(
    client: &Docker,
    container: &str,
    deadline: Instant,
) -> Option<&'static str> {
    for name in CLIENTS {
        let probe = match name {
            "bash" => vec!["bash".to_string(), "-c".into(), "exit 0".into()],
            _ => vec![name.to_string(), "--version".into()],
        };
        if let Ok(out) = exec(client, container, probe, deadline).await {
            if out.exit_code == Some(0) {
                return Some(name);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h
    }

    #[test]
    fn tar_reading_skips_pax_headers() {
        let mut tar = header("PaxHeaders/entrypoint.sh", b'x', 20);
        tar.extend(vec![b'p'; 20]);
        tar.extend(vec![0u8; 512 - 20]);
        tar.extend(header("entrypoint.sh", b'0', 5));
        tar.extend(b"hello");
        tar.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&tar).as_deref(), Some(&b"hello"[..]));
        assert_eq!(first_tar_entry(&[0u8; 100]), None);
        assert_eq!(first_tar_entry(&[0u8; 1024]), None);
    }
}
