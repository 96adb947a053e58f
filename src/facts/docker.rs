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

use super::docker_tls::{self, Tls};
use super::docker_wire::TooLarge;
use crate::causes::EngineCause;
use crate::paths;
use crate::project::Project;

const MAX_EXEC_OUTPUT: usize = 64 * 1024;

/// The most read of an archive from a container (one file, as a tar stream).
pub const MAX_TAR: usize = 4 * 1024 * 1024;

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

/// Why the engine could not be asked, as `docker.engine` reports it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    /// `unreachable`, `tls` (TLS material or handshake), `unsupported` (a host
    /// pd-doctor cannot dial, such as `ssh://`) or `too-large` (an answer past its cap).
    pub cause: EngineCause,
    pub message: String,
    pub hint: String,
}

const UNREACHABLE_HINT: &str = "start Docker (Docker Desktop, or: sudo systemctl start docker), then check `docker version` and DOCKER_HOST";

impl EngineError {
    fn unreachable(message: String) -> EngineError {
        EngineError {
            cause: EngineCause::Unreachable,
            message: format!("the Docker engine does not answer: {message}"),
            hint: UNREACHABLE_HINT.into(),
        }
    }

    /// TLS was asked for and could not be had: `files` when the material is missing or
    /// bad (nothing was dialled), else the handshake failed.
    fn tls(message: String, endpoint: &Endpoint, files: bool) -> EngineError {
        let hint = match (&endpoint.context, files) {
            (Some(name), true) => format!(
                "a context's TLS files are ca.pem, cert.pem and key.pem in its store; set them with: docker context update {name} --docker \"host=...,ca=CA.pem,cert=CERT.pem,key=KEY.pem\", then check `docker version`"
            ),
            (None, true) => "TLS is dialled as the docker CLI does, with ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (default: DOCKER_CONFIG, else ~/.docker): put the engine's CA and your client certificate there and check `docker --tlsverify version`, or unset DOCKER_TLS_VERIFY for an engine without TLS".into(),
            (_, false) => "the engine's certificate must be signed by ca.pem and name the host dialled, and the engine must trust cert.pem: `docker version` with the same settings shows the same refusal".into(),
        };
        EngineError {
            cause: EngineCause::Tls,
            message: format!("no TLS connection to the Docker engine at {endpoint}: {message}"),
            hint,
        }
    }

    fn unsupported(endpoint: &Endpoint, scheme: &str) -> EngineError {
        let hint = if scheme == "ssh" {
            "forward the engine's socket and point DOCKER_HOST at it (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST, then DOCKER_HOST=unix:///tmp/docker.sock), or use a docker context with tcp:// and TLS"
        } else {
            "set DOCKER_HOST to unix://, tcp:// (with DOCKER_TLS_VERIFY for TLS) or npipe:// on Windows"
        };
        EngineError {
            cause: EngineCause::Unsupported,
            message: format!(
                "pd-doctor cannot dial {scheme}:// engines ({endpoint}); nothing was sent"
            ),
            hint: hint.into(),
        }
    }

    /// An answer that ran past its cap (`docker_wire`): what asked, and the cap.
    fn too_large(cap: &TooLarge, endpoint: &Endpoint) -> EngineError {
        EngineError {
            cause: EngineCause::TooLarge,
            message: format!(
                "the Docker engine at {endpoint} sent too much: {cap}; reading stopped there"
            ),
            hint: "a healthy engine's answers are far smaller: check what DOCKER_HOST or the docker context points at (a socket proxy or tunnel in between?) and whether `docker version` and `docker ps -a` with the same settings end".into(),
        }
    }

    /// A failed discovery (list and inspects): `too-large`, else `unreachable`.
    fn from_discovery(e: &bollard::errors::Error, endpoint: &Endpoint) -> EngineError {
        match TooLarge::in_chain(e) {
            Some(cap) => EngineError::too_large(cap, endpoint),
            None => EngineError::unreachable(format!("{e} (at {endpoint})")),
        }
    }

    /// A failed engine call: an answer past its cap is `too-large`, a TLS problem
    /// anywhere in the chain is `tls`.
    fn from_call(e: &bollard::errors::Error, endpoint: &Endpoint) -> EngineError {
        if let Some(cap) = TooLarge::in_chain(e) {
            EngineError::too_large(cap, endpoint)
        } else if endpoint.tls.is_some() && docker_tls::is_tls_error(e) {
            EngineError::tls(describe(e), endpoint, false)
        } else if endpoint.tls.is_some() && docker_tls::closed_before_answer(e) {
            EngineError::tls(
                format!(
                    "{}; the engine closed the connection before answering, as it does when it refuses the client certificate",
                    describe(e)
                ),
                endpoint,
                false,
            )
        } else {
            EngineError::unreachable(format!("{} (at {endpoint})", describe(e)))
        }
    }
}

/// An error and its causes in one line, each cause once ("client error (Connect): tcp
/// connect error: Connection refused").
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    // bollard's wrapper says nothing the causes do not.
    if let Some(rest) = text.strip_prefix("Error in the hyper legacy client: ") {
        text = rest.to_string();
    }
    let mut next = err.source();
    while let Some(e) = next {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = e.source();
    }
    text
}

/// bollard counts its request timeout in whole seconds: round the run's timeout up, so
/// `--timeout 500ms` is one second and not zero (which times every call out at once).
fn client_timeout(timeout: Duration) -> Duration {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// A client for `endpoint`, with the run's timeout on every call it makes (bollard's
/// default is 120 s). TLS material is read here, before any connection is made.
fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Docker, EngineError> {
    let timeout = client_timeout(timeout);
    let (scheme, authority) = match endpoint.host.split_once("://") {
        Some((scheme, rest)) => (scheme, authority(rest)),
        None => ("tcp", authority(&endpoint.host)),
    };
    let plain = |host: &str| {
        super::docker_wire::connect_with_host(host)
            .map(|c| c.with_timeout(timeout))
            .map_err(|e| EngineError::unreachable(format!("{} (at {endpoint})", describe(&e))))
    };
    match (scheme, &endpoint.tls) {
        ("tcp" | "http" | "https", Some(tls)) => {
            let config = docker_tls::client_config(tls)
                .map_err(|message| EngineError::tls(message, endpoint, true))?;
            docker_tls::connect(authority, config, timeout)
                .map(|c| c.with_timeout(timeout))
                .map_err(|e| EngineError::tls(describe(&e), endpoint, true))
        }
        // Only reached without TLS material (`endpoint` gives https:// TLS always).
        ("https", None) => Err(EngineError::tls(
            "https:// without TLS material".into(),
            endpoint,
            true,
        )),
        ("tcp" | "http", None) => plain(&format!("tcp://{authority}")),
        ("unix", _) if cfg!(unix) => plain(&endpoint.host),
        ("npipe", _) if cfg!(windows) => plain(&endpoint.host),
        (other, _) => Err(EngineError::unsupported(endpoint, other)),
    }
}

/// `host:port` out of what follows `scheme://`: userinfo, path and query dropped (the
/// engine API has no use for them, and they may hold secrets).
fn authority(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

impl DockerFacts {
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

fn default_endpoint() -> &'static str {
    if cfg!(windows) {
        "npipe:////./pipe/docker_engine"
    } else {
        "unix:///var/run/docker.sock"
    }
}

/// Where the docker CLI dials when TLS is asked for and no host is given.
const DEFAULT_TLS_HOST: &str = "tcp://localhost:2376";

/// Where the engine is, what said so, and the TLS to dial it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As configured; may hold userinfo or a query: print it only through `Display`.
    pub host: String,
    pub context: Option<String>,
    pub tls: Option<Tls>,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::redact::display_url(&self.host))?;
        let mut notes = Vec::new();
        if let Some(name) = &self.context {
            notes.push(format!("context {name}"));
        }
        match &self.tls {
            Some(tls) if tls.verify => notes.push("TLS".to_string()),
            Some(_) => notes.push("TLS, engine certificate not verified".to_string()),
            None => {}
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join(", "))?;
        }
        Ok(())
    }
}

/// The docker CLI's config folder: DOCKER_CONFIG, else ~/.docker.
fn config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// Where the CLI's TLS files are: DOCKER_CERT_PATH, else the config folder.
fn cert_dir(config_dir: Option<&Path>) -> (PathBuf, String) {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(path) => (PathBuf::from(path), "DOCKER_CERT_PATH".into()),
        None => (
            config_dir.map(Path::to_path_buf).unwrap_or_default(),
            "the default DOCKER_CERT_PATH".into(),
        ),
    }
}

/// TLS as DOCKER_TLS_VERIFY / DOCKER_TLS ask for it (any non-empty value, as the CLI
/// reads them). With DOCKER_TLS_VERIFY all three files must be there.
fn env_tls(config_dir: Option<&Path>) -> Option<Tls> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let verify = set("DOCKER_TLS_VERIFY");
    if !verify && !set("DOCKER_TLS") {
        return None;
    }
    let (dir, source) = cert_dir(config_dir);
    Some(Tls {
        dir,
        source,
        verify,
        client_cert_required: verify,
    })
}

/// Where the docker CLI would connect: DOCKER_HOST; else the current context's endpoint
/// (DOCKER_CONTEXT, else `currentContext` in the CLI's config.json), which is how Docker
/// Desktop, rootless Docker and colima are reached; else the platform's default socket.
/// TLS comes from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH for DOCKER_HOST and the default,
/// and from the context's own TLS store for a context, as the CLI takes it.
pub fn endpoint() -> Endpoint {
    let config_dir = config_dir();
    let env_tls = env_tls(config_dir.as_deref());
    // TLS applies to TCP only; a local socket or pipe is dialled as it is.
    let tls_for = |host: &str, tls: Option<Tls>| {
        let scheme = host.split_once("://").map_or("", |(s, _)| s);
        match scheme {
            "tcp" | "http" => tls,
            // https:// is TLS whatever the variables say, verified unless told otherwise.
            "https" => Some(tls.unwrap_or_else(|| {
                let (dir, source) = cert_dir(config_dir.as_deref());
                Tls {
                    dir,
                    source,
                    verify: true,
                    client_cert_required: false,
                }
            })),
            _ => None,
        }
    };
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if !host.is_empty() {
            // `host:port` alone is TCP to the CLI.
            let host = if host.contains("://") {
                host
            } else {
                format!("tcp://{host}")
            };
            let tls = tls_for(&host, env_tls);
            return Endpoint {
                host,
                context: None,
                tls,
            };
        }
    }
    let context = std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let bytes = read_small_file(&config_dir.as_ref()?.join("config.json")).ok()?;
            let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            config["currentContext"].as_str().map(str::to_string)
        });
    match (context, &config_dir) {
        (Some(name), Some(dir)) if name != "default" => match context_endpoint(dir, &name) {
            Some(found) => Endpoint {
                tls: tls_for(&found.host, found.tls),
                host: found.host,
                context: Some(name),
            },
            None => Endpoint {
                host: default_endpoint().into(),
                context: Some(format!("{name}, not found")),
                tls: None,
            },
        },
        // The default context: TLS from the environment, and then the CLI's TLS port.
        _ => {
            let host = if env_tls.is_some() {
                DEFAULT_TLS_HOST
            } else {
                default_endpoint()
            };
            Endpoint {
                host: host.into(),
                context: None,
                tls: tls_for(host, env_tls),
            }
        }
    }
}

struct ContextEndpoint {
    host: String,
    tls: Option<Tls>,
}

/// The docker endpoint of context `name`: contexts live in `contexts/meta/<digest>/meta.json`,
/// their TLS files in `contexts/tls/<digest>/docker/{ca,cert,key}.pem`. The CLI dials
/// with TLS when any of those files is there or the endpoint says `SkipTLSVerify`.
fn context_endpoint(config_dir: &Path, name: &str) -> Option<ContextEndpoint> {
    std::fs::read_dir(config_dir.join("contexts").join("meta"))
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| {
            let bytes = read_small_file(&entry.path().join("meta.json")).ok()?;
            let meta: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            if meta["Name"] != name {
                return None;
            }
            let docker = &meta["Endpoints"]["docker"];
            let host = docker["Host"].as_str()?.to_string();
            let skip_verify = docker["SkipTLSVerify"].as_bool().unwrap_or(false);
            let dir = config_dir
                .join("contexts")
                .join("tls")
                .join(entry.file_name())
                .join("docker");
            let has_material = ["ca.pem", "cert.pem", "key.pem"]
                .iter()
                .any(|f| std::fs::symlink_metadata(dir.join(f)).is_ok());
            let tls = (has_material || skip_verify).then(|| Tls {
                dir,
                source: format!("context {name}"),
                verify: !skip_verify,
                client_cert_required: false,
            });
            Some(ContextEndpoint { host, tls })
        })
}

/// The most pd-doctor reads of the docker CLI's config.json, a context's meta.json or a
/// TLS file.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads one of the docker CLI's files through the trust boundary (non-blocking, capped).
pub(crate) fn read_small_file(path: &Path) -> Result<Vec<u8>, crate::safefs::ReadError> {
    crate::safefs::read(path, MAX_CONFIG_BYTES, crate::safefs::Links::Follow)
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

/// Why a `docker exec` gave no output to judge.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The deadline passed before the program ended: the caller's `timeout`.
    #[error("timeout")]
    Timeout,
    /// The engine refused or broke off the exec.
    #[error(transparent)]
    Engine(#[from] bollard::errors::Error),
}

/// For the callers that keep an exec's failure as text, as they always did.
impl From<ExecError> for String {
    fn from(e: ExecError) -> String {
        e.to_string()
    }
}

/// `docker exec` with an argv array (never a shell line built from values), reading at
/// most 64 KiB, given up at the deadline.
pub async fn exec(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
) -> Result<ExecOutput, ExecError> {
    let run = exec_until(client, container, argv, deadline, MAX_EXEC_OUTPUT).await?;
    if run.finished {
        Ok(run.output)
    } else {
        Err(ExecError::Timeout)
    }
}

/// The same, reading at most `cap` bytes, and keeping what came before the deadline.
pub async fn exec_until(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
    cap: usize,
) -> Result<ExecRun, ExecError> {
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
            .await?;
        if let StartExecResults::Attached { mut output, .. } = client
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await?
        {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.extend_from_slice(&message)
                    }
                    Ok(other) => stdout.extend_from_slice(&other.into_bytes()),
                    Err(e) => return Err(e),
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
        Ok::<_, bollard::errors::Error>(())
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
        if tar.len() > MAX_TAR {
            return None;
        }
    }
    first_tar_entry(&tar)
}

/// The content of the first regular file in a tar archive; PAX and GNU extension
/// headers before it are stepped over (the `tar` crate: checksums verified, base-256
/// sizes read). Bounded by the archive: an entry that claims more than is there is `None`.
pub(crate) fn first_tar_entry(tar: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = usize::try_from(entry.size())
            .ok()
            .filter(|s| *s <= tar.len())?;
        let mut body = Vec::with_capacity(size);
        entry.take(size as u64).read_to_end(&mut body).ok()?;
        return (body.len() == size).then_some(body);
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
        checksum(&mut h);
        h
    }

    /// The header checksum: the byte sum with the field itself counted as spaces.
    fn checksum(h: &mut [u8]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn client_timeout_rounds_up_to_whole_seconds() {
        assert_eq!(
            client_timeout(Duration::from_millis(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            client_timeout(Duration::from_millis(1500)),
            Duration::from_secs(2)
        );
        assert_eq!(
            client_timeout(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn authority_drops_userinfo_path_and_query() {
        assert_eq!(authority("u:pw@h:2376/x?token=t"), "h:2376");
        assert_eq!(authority("h:2376?a=b@c"), "h:2376");
        assert_eq!(authority("[::1]:2376"), "[::1]:2376");
    }

    fn context(dir: &Path, digest: &str, name: &str, host: &str, skip: bool, files: &[&str]) {
        let meta = dir.join("contexts/meta").join(digest);
        std::fs::create_dir_all(&meta).unwrap();
        let doc = serde_json::json!({"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}}});
        std::fs::write(meta.join("meta.json"), doc.to_string()).unwrap();
        let tls = dir.join("contexts/tls").join(digest).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        for f in files {
            std::fs::write(tls.join(f), "x").unwrap();
        }
    }

    #[test]
    fn a_context_dials_tls_when_it_has_material_or_skips_verification() {
        let dir = tempfile::tempdir().unwrap();
        context(dir.path(), "aa", "plain", "tcp://h:2375", false, &[]);
        context(dir.path(), "bb", "ca", "tcp://h:2376", false, &["ca.pem"]);
        context(dir.path(), "cc", "skip", "tcp://h:2376", true, &[]);
        let plain = context_endpoint(dir.path(), "plain").unwrap();
        assert_eq!((plain.host.as_str(), plain.tls), ("tcp://h:2375", None));
        let ca = context_endpoint(dir.path(), "ca").unwrap().tls.unwrap();
        assert!(ca.verify && !ca.client_cert_required);
        assert_eq!(ca.dir, dir.path().join("contexts/tls/bb/docker"));
        assert!(
            !context_endpoint(dir.path(), "skip")
                .unwrap()
                .tls
                .unwrap()
                .verify
        );
        assert!(context_endpoint(dir.path(), "none").is_none());
    }

    #[test]
    fn an_endpoint_never_shows_its_secrets() {
        let e = Endpoint {
            host: "tcp://user:s3cretpw@h:2376?token=abc123secret".into(),
            context: Some("lab".into()),
            tls: Some(Tls {
                dir: PathBuf::from("/certs"),
                source: "DOCKER_CERT_PATH".into(),
                verify: true,
                client_cert_required: true,
            }),
        };
        assert_eq!(
            e.to_string(),
            "tcp://[redacted]@h:2376?token=[redacted] (context lab, TLS)"
        );
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

    #[test]
    fn tar_reading_checks_checksums_sizes_and_bounds() {
        // A header whose checksum does not add up is not a header.
        let mut bad = header("entrypoint.sh", b'0', 5);
        bad[0] = b'E';
        bad.extend(b"hello");
        bad.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&bad), None);
        // GNU base-256 size (high bit set, big-endian binary), as tar writes past 8 GiB.
        let mut big = header("entrypoint.sh", b'0', 0);
        big[124..136].fill(0);
        big[124] = 0x80;
        big[135] = 5;
        checksum(&mut big);
        big.extend(b"hello");
        big.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&big).as_deref(), Some(&b"hello"[..]));
        // An entry claiming more than the archive holds is no entry.
        let mut short = header("entrypoint.sh", b'0', 4096);
        short.extend(b"hello");
        assert_eq!(first_tar_entry(&short), None);
    }
}
