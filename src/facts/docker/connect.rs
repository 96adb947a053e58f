//! Connecting the way the docker CLI connects: DOCKER_HOST and its TLS variables, else
//! the current context (with its own TLS store), else the local socket or named pipe;
//! and why the engine could not be asked.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;

use super::config::{cert_dir, config_dir, read_small_file};
use super::tls::{self, Tls};
use super::wire::TooLarge;
use crate::causes::EngineCause;

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
    pub(super) fn unreachable(message: String) -> EngineError {
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

    /// An answer that ran past its cap (`wire`): what asked, and the cap.
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
    pub(super) fn from_discovery(e: &bollard::errors::Error, endpoint: &Endpoint) -> EngineError {
        match TooLarge::in_chain(e) {
            Some(cap) => EngineError::too_large(cap, endpoint),
            None => EngineError::unreachable(format!("{e} (at {endpoint})")),
        }
    }

    /// A failed engine call: an answer past its cap is `too-large`, a TLS problem
    /// anywhere in the chain is `tls`.
    pub(super) fn from_call(e: &bollard::errors::Error, endpoint: &Endpoint) -> EngineError {
        if let Some(cap) = TooLarge::in_chain(e) {
            EngineError::too_large(cap, endpoint)
        } else if endpoint.tls.is_some() && tls::is_tls_error(e) {
            EngineError::tls(describe(e), endpoint, false)
        } else if endpoint.tls.is_some() && tls::closed_before_answer(e) {
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
pub(super) fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Docker, EngineError> {
    let timeout = client_timeout(timeout);
    let (scheme, authority) = match endpoint.host.split_once("://") {
        Some((scheme, rest)) => (scheme, authority(rest)),
        None => ("tcp", authority(&endpoint.host)),
    };
    let plain = |host: &str| {
        super::wire::connect_with_host(host)
            .map(|c| c.with_timeout(timeout))
            .map_err(|e| EngineError::unreachable(format!("{} (at {endpoint})", describe(&e))))
    };
    match (scheme, &endpoint.tls) {
        ("tcp" | "http" | "https", Some(tls)) => {
            let config = tls::client_config(tls)
                .map_err(|message| EngineError::tls(message, endpoint, true))?;
            tls::connect(authority, config, timeout)
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

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
}
