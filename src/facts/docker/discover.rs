//! Discovery and inspect: every agent container of the project found and inspected once,
//! with its image, mounts and networking; and what `docker top` says PID 1 is.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use tokio::time::Instant;

use super::connect::{connect, endpoint, EngineError};
use super::wire::TooLarge;
use crate::facts::inside::Gathered;
use crate::paths;
use crate::project::Project;

#[derive(Debug, Clone)]
pub struct Engine {
    pub version: String,
    pub api: String,
    pub endpoint: String,
}

/// A container's networking as `docker inspect` tells it.
#[derive(Debug, Clone, Default)]
pub struct NetSetup {
    /// `HostConfig.NetworkMode`: `bridge`, `host`, `none`, `container:<id>`, or a
    /// user-defined network's name (compose: `<project>_default`).
    pub mode: String,
    /// `NetworkSettings.Networks`, each with the gateway the engine reports.
    pub networks: Vec<NetworkInfo>,
    /// `HostConfig.ExtraHosts` (`name:address`, `address` may be `host-gateway`).
    pub extra_hosts: Vec<String>,
    /// For `container:<id>`: that container's name and networking, whose network
    /// namespace (and /etc/hosts) this one shares.
    pub peer: Option<(String, Box<NetSetup>)>,
}

#[derive(Debug, Clone)]
pub struct NetworkInfo {
    pub name: String,
    pub gateway: String,
    pub address: String,
}

impl NetSetup {
    fn of(
        host: &bollard::models::HostConfig,
        settings: Option<&bollard::models::NetworkSettings>,
    ) -> NetSetup {
        NetSetup {
            mode: host.network_mode.clone().unwrap_or_default(),
            networks: settings
                .and_then(|s| s.networks.as_ref())
                .map(|n| {
                    n.iter()
                        .map(|(name, e)| NetworkInfo {
                            name: name.clone(),
                            gateway: e.gateway.clone().unwrap_or_default(),
                            address: e.ip_address.clone().unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            extra_hosts: host.extra_hosts.clone().unwrap_or_default(),
            peer: None,
        }
    }

    /// The setup that decides this container's networking: its own, or for
    /// `container:<id>` the peer's.
    pub fn effective(&self) -> &NetSetup {
        match &self.peer {
            Some((_, peer)) => peer,
            None => self,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MountInfo {
    pub source: String,
    pub destination: String,
    pub rw: bool,
}

/// One agent container, inspected.
#[derive(Debug, Clone, Default)]
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
    /// When it last stopped (`State.FinishedAt`; the zero time when it never did).
    pub finished_at: String,
    /// The image id the container was created from, and the name it was asked for.
    pub image_id: String,
    pub image_name: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `Config.WorkingDir`: where its processes start ("" = the image's, `/` by default).
    pub working_dir: String,
    /// Environment variable names and values; values of secret-looking names are never shown.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<MountInfo>,
    /// How the container is networked, from the one inspect.
    pub net: NetSetup,
    /// The image the container's name for it (`Config.Image`) points at now.
    pub tag_image_id: Option<String>,
    pub image_created: Option<String>,
    pub image_entrypoint: Vec<String>,
}

/// A repair's vocabulary (`crate::plan`) knows no containers; the one action made
/// from a listed container is made here, where containers are.
impl crate::plan::Action {
    /// Removing `c`, as the plan sees it now.
    pub fn remove_container(c: &Container) -> Self {
        Self::RemoveContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            running: c.running,
        }
    }
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
    pub inside: HashMap<String, tokio::sync::OnceCell<Gathered>>,
    /// Files read out of images through the archive endpoint, by image id and path:
    /// once per image, whatever the number of its containers.
    image_files: std::sync::Mutex<HashMap<(String, String), ImageFileCell>>,
}

type ImageFileCell = std::sync::Arc<tokio::sync::OnceCell<Option<Vec<u8>>>>;

impl DockerFacts {
    /// `path` as `c`'s image has it, read through the archive endpoint from `c` (a
    /// stopped container too) the first time any container of that image asks.
    pub async fn image_file(&self, c: &Container, path: &str) -> Option<Vec<u8>> {
        let cell = {
            let mut files = self.image_files.lock().unwrap_or_else(|e| e.into_inner());
            files
                .entry((c.image_id.clone(), path.to_string()))
                .or_default()
                .clone()
        };
        cell.get_or_init(|| super::archive::read_file(&self.client, &c.id, path))
            .await
            .clone()
    }

    /// The container the agent works in: a running one first, then the most recently
    /// started.
    pub fn container_of(&self, agent: &str) -> Option<&Container> {
        let mut mine: Vec<&Container> = self
            .containers
            .iter()
            .filter(|c| c.agent == agent)
            .collect();
        mine.sort_by(|a, b| (b.running, &b.started_at).cmp(&(a.running, &a.started_at)));
        mine.first().copied()
    }
}

/// Connects as the docker CLI would (DOCKER_HOST and its TLS variables, else the current
/// context with its TLS material, else the local socket or named pipe), negotiates the
/// API version, and finds the project's agent containers; every call under `timeout`.
pub async fn gather(project: &Project, timeout: Duration) -> Result<DockerFacts, EngineError> {
    let deadline = Instant::now() + timeout;
    let endpoint = endpoint();
    // Shown redacted everywhere; scrubbed too, should an error quote the host whole.
    for secret in crate::redact::url_secrets(&endpoint.host) {
        project.secrets.add(&secret);
    }
    let client = connect(&endpoint, timeout)?;
    let connect = async {
        let client = client
            .negotiate_version()
            .await
            .map_err(|e| EngineError::from_call(&e, &endpoint))?;
        let version = client
            .version()
            .await
            .map_err(|e| EngineError::from_call(&e, &endpoint))?;
        let engine = Engine {
            version: version.version.unwrap_or_else(|| "?".into()),
            api: client.client_version().to_string(),
            endpoint: endpoint.to_string(),
        };
        let containers = discover(&client, project)
            .await
            .map_err(|e| EngineError::from_discovery(&e, &endpoint))?;
        Ok::<_, EngineError>(DockerFacts {
            client,
            engine,
            clients: cells(&containers),
            inside: cells(&containers),
            image_files: Default::default(),
            containers,
        })
    };
    match tokio::time::timeout_at(deadline, connect).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::unreachable(format!(
            "the engine at {endpoint} did not answer in time"
        ))),
    }
}

/// The host files that running containers mount at `destination` (the project scope
/// `/pipe-dream/.mcp.json`): what decides the layout of a tree that could be either.
/// Empty when the engine does not answer within `timeout`.
pub async fn mounted_at(destination: &str, timeout: Duration) -> Vec<PathBuf> {
    let endpoint = endpoint();
    let Ok(client) = connect(&endpoint, timeout) else {
        return Vec::new();
    };
    let list = async {
        let options = ListContainersOptionsBuilder::new().build();
        client
            .list_containers(Some(options))
            .await
            .unwrap_or_default()
    };
    let Ok(summaries) = tokio::time::timeout(timeout, list).await else {
        return Vec::new();
    };
    summaries
        .into_iter()
        .flat_map(|s| s.mounts.unwrap_or_default())
        .map(mount_info)
        .filter(|m| m.destination == destination)
        .map(|m| PathBuf::from(m.source))
        .collect()
}

/// One empty memo per container.
fn cells<T>(containers: &[Container]) -> HashMap<String, tokio::sync::OnceCell<T>> {
    containers
        .iter()
        .map(|c| (c.id.clone(), Default::default()))
        .collect()
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

async fn discover(
    client: &Docker,
    project: &Project,
) -> Result<Vec<Container>, bollard::errors::Error> {
    let options = ListContainersOptionsBuilder::new().all(true).build();
    let summaries = client.list_containers(Some(options)).await?;
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
    // A container that went away meanwhile is left out; an answer past its cap ends
    // the discovery, which `docker.engine` reports.
    let inspected =
        futures::future::join_all(wanted.into_iter().map(|(id, agent, found_by)| async move {
            match client.inspect_container(&id, None).await {
                Ok(c) => Ok(Some(container(c, agent, found_by))),
                Err(e) => capped(e).map(|()| None),
            }
        }))
        .await;
    let mut containers = Vec::new();
    for c in inspected {
        containers.extend(c?);
    }
    // `--network container:<id>`: the peer's namespace decides; inspected once each.
    for c in &mut containers {
        if let Some(peer) = c.net.mode.strip_prefix("container:").map(str::to_string) {
            let found = match client.inspect_container(&peer, None).await {
                Ok(p) => Some(p),
                Err(e) => capped(e).map(|()| None)?,
            };
            if let Some(p) = found {
                let name = p
                    .name
                    .clone()
                    .unwrap_or(peer)
                    .trim_start_matches('/')
                    .to_string();
                let setup = NetSetup::of(
                    &p.host_config.clone().unwrap_or_default(),
                    p.network_settings.as_ref(),
                );
                c.net.peer = Some((name, Box::new(setup)));
            }
        }
    }
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
    let inspected = futures::future::join_all(refs.into_iter().map(|r| async move {
        match client.inspect_image(&r).await {
            Ok(image) => Ok(Some((r, image))),
            Err(e) => capped(e).map(|()| None),
        }
    }))
    .await;
    let mut images: HashMap<String, bollard::models::ImageInspect> = HashMap::new();
    for image in inspected {
        images.extend(image?);
    }
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

/// A failed inspect during discovery: `Err` when the answer ran past its cap (the
/// engine misbehaves, and `docker.engine` says so), else `Ok`: the container or image
/// is left out, as one that went away meanwhile.
fn capped(e: bollard::errors::Error) -> Result<(), bollard::errors::Error> {
    match TooLarge::in_chain(&e) {
        Some(_) => Err(e),
        None => Ok(()),
    }
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
    let net = NetSetup::of(&host, c.network_settings.as_ref());
    Container {
        net,
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
        finished_at: state.finished_at.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        image_name: config.image.unwrap_or_default(),
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
        working_dir: config.working_dir.unwrap_or_default(),
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

/// The command line of the container's PID 1, as `docker top` shows it.
pub async fn pid1_command(client: &Docker, container: &str) -> Option<String> {
    let top = client
        .top_processes(container, None::<bollard::query_parameters::TopOptions>)
        .await
        .ok()?;
    let titles = top.titles.unwrap_or_default();
    let col = titles.iter().position(|t| t == "CMD" || t == "COMMAND")?;
    let first = top.processes.unwrap_or_default().into_iter().next()?;
    first.get(col).cloned()
}

/// The entrypoint script of a container's `Entrypoint`, if it is one (`/entrypoint.sh`):
/// while PID 1 is still that script, it has not exec'd its program yet.
pub fn entrypoint_script(entrypoint: &[String]) -> Option<&str> {
    entrypoint
        .first()
        .map(String::as_str)
        .filter(|e| e.ends_with(".sh"))
}
