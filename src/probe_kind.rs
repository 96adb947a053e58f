//! Which probe a check runs: a built-in one by kind, or a generic one a project can use
//! in its own checks without recompiling. Plain data, below every layer that speaks of
//! probes: the catalogue reads it, `causes` keys its cause lists by it, and the probes'
//! dispatch matches on it.

use serde::Deserialize;

/// Declares [`ProbeKind`] from one list: each built-in probe and its name in the
/// catalogue files. `probes::dispatch` matches on the kind.
macro_rules! probe_kinds {
    ($($kind:ident = $name:literal,)*) => {
        /// A built-in probe, by the name the catalogue files give it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProbeKind {
            $($kind,)*
        }

        impl ProbeKind {
            pub const ALL: &[ProbeKind] = &[$(ProbeKind::$kind,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(ProbeKind::$kind => $name,)*
                }
            }
        }
    };
}

probe_kinds! {
    Pidfile = "pidfile",
    Listen = "listen",
    McpHandshake = "mcp-handshake",
    Session = "session",
    Oauth = "oauth",
    DockerEngine = "docker-engine",
    ContainerState = "container-state",
    ContainerEntrypoint = "container-entrypoint",
    ContainerHostGateway = "container-host-gateway",
    ContainerReach = "container-reach",
    ContainerStdio = "container-stdio",
    ContainerSession = "container-session",
    ContainerIdentity = "container-identity",
    ContainerConfig = "container-config",
    ContainerAnthropic = "container-anthropic",
    HubService = "hub-service",
    ContainerImage = "container-image",
    ContainerMounts = "container-mounts",
    Isolation = "isolation",
    ClaudeJson = "claude-json",
    Marker = "marker",
    ServerEntry = "server-entry",
    ScopeConflict = "scope-conflict",
    McpJson = "mcp-json",
    HostMcpJson = "host-mcp-json",
    Transport = "transport",
    Approval = "approval",
    Trust = "trust",
    Permissions = "permissions",
    Auth = "auth",
    ContainersStale = "containers-stale",
    ContainersDuplicate = "containers-duplicate",
}

/// A `probe` name that is no built-in probe; the message lists those there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown probe {name:?}; built-in probes are {}, or a table with kind = \"http\" or \"file\"",
    ProbeKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
)]
pub struct UnknownProbe {
    name: String,
}

impl std::str::FromStr for ProbeKind {
    type Err = UnknownProbe;

    fn from_str(name: &str) -> Result<Self, UnknownProbe> {
        ProbeKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == name)
            .ok_or_else(|| UnknownProbe {
                name: name.to_string(),
            })
    }
}

/// How a check gathers its evidence: a built-in probe by name, or a generic one that a
/// project can use in its own checks without recompiling.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawProbe")]
pub enum ProbeSpec {
    Builtin(ProbeKind),
    Generic(GenericProbe),
}

/// `probe` as written: a name (checked against [`ProbeKind`]) or a table.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawProbe {
    Name(String),
    Generic(GenericProbe),
}

impl TryFrom<RawProbe> for ProbeSpec {
    type Error = UnknownProbe;

    fn try_from(raw: RawProbe) -> Result<Self, UnknownProbe> {
        match raw {
            RawProbe::Name(name) => name.parse().map(ProbeSpec::Builtin),
            RawProbe::Generic(g) => Ok(ProbeSpec::Generic(g)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GenericProbe {
    /// GET a URL; ok when the status is one of `status` (default: any 2xx).
    Http {
        url: String,
        #[serde(default)]
        status: Vec<u16>,
    },
    /// A file exists, is absent, or (with `pointer`) holds a JSON value.
    File {
        path: String,
        #[serde(default = "default_file_state")]
        state: FileState,
        pointer: Option<String>,
        equals: Option<serde_json::Value>,
    },
}

fn default_file_state() -> FileState {
    FileState::Exists
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Exists,
    Absent,
}
