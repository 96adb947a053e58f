//! Cause codes, the `cause` of every result: one enum per probe kind, each variant
//! spelled as the contract spells it. A probe hands its enum's variant to
//! [`Finding`](crate::model::Finding); only the enums here make a [`Cause`], so a probe
//! cannot make one up, and the catalogue checks the causes its relations name against
//! the same lists ([`codes`]), so a typo there is a load error.

use std::fmt;

use crate::probe_kind::{GenericProbe, ProbeKind, ProbeSpec};

/// A cause code as a result carries it. Made only from the enums of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cause(&'static str);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// An enum of cause codes, and its codes in one list.
pub trait CauseCode: Copy + Into<Cause> + 'static {
    const CODES: &'static [&'static str];
    fn as_str(self) -> &'static str;
}

/// Declares cause enums from one list each: the variants, their codes, and the
/// [`CauseCode`] and `Into<Cause>` that go with them.
///
/// Why not `strum`: its derives would give each variant's string and a list of
/// variants, but not a `const` slice of codes the catalogue can check against nor the
/// `Into<Cause>` every enum needs, so a macro would remain on top of it. This one is
/// the whole mechanism, and each code stays a literal next to its variant, to grep for.
macro_rules! causes {
    ($($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal,)* })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl CauseCode for $name {
            const CODES: &'static [&'static str] = &[$($code,)*];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }
        }

        impl From<$name> for Cause {
            fn from(cause: $name) -> Cause {
                Cause(cause.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

causes! {
    /// Causes any check may end with: a pass, a skip, a probe that crashed or overran
    /// its time limit (the engine stops it; probes that wait on a network have a
    /// `timeout` of their own too, the same code).
    CommonCause {
        Ok = "ok",
        Precondition = "precondition",
        Internal = "internal",
        Timeout = "timeout",
    }

    // 8.1: the servers.

    /// `server.pidfile`.
    PidfileCause {
        Absent = "absent",
        Unreadable = "unreadable",
        Garbage = "garbage",
        Dead = "dead",
        Reused = "reused",
        PortOwnerMismatch = "port-owner-mismatch",
    }

    /// `server.listen`.
    ListenCause {
        NotListening = "not-listening",
        LoopbackOnly = "loopback-only",
    }

    /// `server.mcp`: where the handshake broke.
    McpCause {
        Refused = "refused",
        Timeout = "timeout",
        Dns = "dns",
        Unauthorized = "unauthorized",
        HostRejected = "host-rejected",
        NotFound = "not-found",
        NotAcceptable = "not-acceptable",
        ServerError = "server-error",
        NotMcp = "not-mcp",
        ProtocolError = "protocol-error",
        MissingTools = "missing-tools",
        BadUrl = "bad-url",
        // A note (ok), asked for by `--compat`: the server answers 406 to a POST that
        // does not accept both JSON and SSE, which older clients send.
        StrictAccept = "strict-accept",
    }

    /// `server.session`.
    SessionCause {
        Stateful = "stateful",
        Unrecoverable = "unrecoverable",
        BadUrl = "bad-url",
        Refused = "refused",
        Dns = "dns",
        Timeout = "timeout",
        NotMcp = "not-mcp",
    }

    /// `server.oauth`.
    OauthCause {
        Advertised = "advertised",
        JunkMetadata = "junk-metadata",
        Redirect = "redirect",
        Refused = "refused",
        Dns = "dns",
        Timeout = "timeout",
        NotMcp = "not-mcp",
    }

    // 8.2 and 8.4: the engine and the containers.

    /// `docker.engine`.
    EngineCause {
        Unreachable = "unreachable",
        Tls = "tls",
        Unsupported = "unsupported",
        TooLarge = "too-large",
    }

    /// `container.state`.
    StateCause {
        Missing = "missing",
        Stopped = "stopped",
        Restarting = "restarting",
        Configuring = "configuring",
    }

    /// `container.entrypoint`.
    EntrypointCause {
        Bypassed = "bypassed",
        DestroysConfig = "destroys-config",
    }

    /// `container.host_gateway`.
    HostGatewayCause {
        Missing = "missing",
        Ipv6First = "ipv6-first",
        Loopback = "loopback",
        WrongAddress = "wrong-address",
        NoNetwork = "no-network",
    }

    /// `container.reach`.
    ReachCause {
        Dns = "dns",
        Refused = "refused",
        Timeout = "timeout",
        HostRejected = "host-rejected",
        ServerError = "server-error",
        NoClient = "no-client",
        NotRunning = "not-running",
        NoNetwork = "no-network",
    }

    /// `container.stdio`.
    StdioCause {
        CommandNotFound = "command-not-found",
        Exited = "exited",
        Timeout = "timeout",
        NotMcp = "not-mcp",
        RpcError = "rpc-error",
        SlowStart = "slow-start",
    }

    /// `container.session`.
    TmuxCause {
        NoSession = "no-session",
        PaneTooSmall = "pane-too-small",
    }

    /// `container.anthropic`.
    AnthropicCause {
        Dns = "dns",
        Refused = "refused",
        Timeout = "timeout",
        Proxy = "proxy",
        BadUrl = "bad-url",
    }

    /// `container.config`.
    ContainerConfigCause {
        WrongWorkdir = "wrong-workdir",
        McpTimeoutShort = "mcp-timeout-short",
        TwoClients = "two-clients",
        NoDebugDir = "no-debug-dir",
    }

    /// `container.identity`.
    IdentityCause {
        WrongIdentity = "wrong-identity",
        Missing = "missing",
        LockWindow = "lock-window",
    }

    /// `hub.service`.
    HubCause {
        NotListening = "not-listening",
        Unhealthy = "unhealthy",
        OutOfSync = "out-of-sync",
    }

    /// `container.image`.
    ImageCause {
        Outdated = "outdated",
        EntrypointDiffers = "entrypoint-differs",
        StaleImage = "stale-image",
        StaleFile = "stale-file",
    }

    /// `container.mounts`.
    MountsCause {
        MissingConfigMount = "missing-config-mount",
        WrongConfigDir = "wrong-config-dir",
        ConfigReadOnly = "config-read-only",
        ConfigDirEnv = "config-dir-env",
        MissingProject = "missing-project",
        CodeWritable = "code-writable",
        MissingWorkspace = "missing-workspace",
        WorkspaceReadOnly = "workspace-read-only",
        MissingMcpOverlay = "missing-mcp-overlay",
        MissingIdentity = "missing-identity",
    }

    /// `containers.stale`.
    StaleCause {
        Stale = "stale",
    }

    /// `containers.duplicate`.
    DuplicateCause {
        Duplicate = "duplicate",
    }

    // 8.3: the configuration.

    /// `config.isolation`.
    IsolationCause {
        Shared = "shared",
    }

    /// `config.claude_json`.
    ClaudeJsonCause {
        Missing = "missing",
        Unreadable = "unreadable",
        Empty = "empty",
        Corrupt = "corrupt",
        WrongShape = "wrong-shape",
    }

    /// `config.marker`.
    MarkerCause {
        StaleMarker = "stale-marker",
        MissingMarker = "missing-marker",
        None = "none",
    }

    /// `config.server_entry`.
    ServerEntryCause {
        Missing = "missing",
        LocalhostUrl = "localhost-url",
        WrongPort = "wrong-port",
        WrongServer = "wrong-server",
        WrongPath = "wrong-path",
        WrongTransport = "wrong-transport",
        MissingAuthHeader = "missing-auth-header",
        BadUrl = "bad-url",
        UnsetVariable = "unset-variable",
    }

    /// `config.scope_conflict`.
    ScopeConflictCause {
        Conflict = "conflict",
    }

    /// `config.mcp_json`.
    McpJsonCause {
        Missing = "missing",
        Unreadable = "unreadable",
        Empty = "empty",
        Corrupt = "corrupt",
        WrongShape = "wrong-shape",
        MissingServer = "missing-server",
        LocalhostUrl = "localhost-url",
        WrongTransport = "wrong-transport",
        BadUrl = "bad-url",
        UnsetVariable = "unset-variable",
        MissingAuthHeader = "missing-auth-header",
    }

    /// `config.host_mcp_json`.
    HostMcpJsonCause {
        SecondServer = "second-server",
    }

    /// `config.transport`: a note, never a failure.
    TransportCause {
        DirectHttp = "direct-http",
    }

    /// `config.approval`.
    ApprovalCause {
        Pending = "pending",
        Declined = "declined",
        Denied = "denied",
    }

    /// `config.trust`.
    TrustCause {
        NotAccepted = "not-accepted",
    }

    /// `config.permissions`.
    PermissionsCause {
        Prompts = "prompts",
    }

    /// `config.auth`.
    AuthCause {
        NotLoggedIn = "not-logged-in",
    }

    // A project's own checks.

    /// The generic `http` probe.
    HttpCause {
        BadUrl = "bad-url",
        Refused = "refused",
        Dns = "dns",
        Timeout = "timeout",
        NotMcp = "not-mcp",
        UnexpectedStatus = "unexpected-status",
    }

    /// The generic `file` probe.
    FileCause {
        Present = "present",
        Missing = "missing",
        Corrupt = "corrupt",
        UnexpectedValue = "unexpected-value",
    }
}

/// An HTTP request that got no answer, as every probe asking over HTTP reports it; each
/// of those probes' enums has these four (a converting `From`), the others cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetCause {
    Refused,
    Dns,
    Timeout,
    /// Something answered that no HTTP client could make sense of.
    NotMcp,
}

impl NetCause {
    pub fn as_str(self) -> &'static str {
        match self {
            NetCause::Refused => "refused",
            NetCause::Dns => "dns",
            NetCause::Timeout => "timeout",
            NetCause::NotMcp => "not-mcp",
        }
    }
}

impl fmt::Display for NetCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! from_net {
    ($($name:ident),*) => {$(
        impl From<NetCause> for $name {
            fn from(cause: NetCause) -> $name {
                match cause {
                    NetCause::Refused => $name::Refused,
                    NetCause::Dns => $name::Dns,
                    NetCause::Timeout => $name::Timeout,
                    NetCause::NotMcp => $name::NotMcp,
                }
            }
        }
    )*};
}

from_net!(McpCause, SessionCause, OauthCause, HttpCause);

/// Causes of `ok` results that are advice, not a pass: the human report shows them.
pub const NOTES: &[&str] = &["strict-accept"];

/// Every cause code a check with this probe may end with, [`CommonCause`] first, each
/// once.
pub fn codes(probe: &ProbeSpec) -> Vec<&'static str> {
    use ProbeKind as K;
    let own = match probe {
        ProbeSpec::Generic(GenericProbe::Http { .. }) => HttpCause::CODES,
        ProbeSpec::Generic(GenericProbe::File { .. }) => FileCause::CODES,
        ProbeSpec::Builtin(kind) => match kind {
            K::Pidfile => PidfileCause::CODES,
            K::Listen => ListenCause::CODES,
            K::McpHandshake => McpCause::CODES,
            K::Session => SessionCause::CODES,
            K::Oauth => OauthCause::CODES,
            K::DockerEngine => EngineCause::CODES,
            K::ContainerState => StateCause::CODES,
            K::ContainerEntrypoint => EntrypointCause::CODES,
            K::ContainerHostGateway => HostGatewayCause::CODES,
            K::ContainerReach => ReachCause::CODES,
            K::ContainerStdio => StdioCause::CODES,
            K::ContainerSession => TmuxCause::CODES,
            K::ContainerIdentity => IdentityCause::CODES,
            K::ContainerConfig => ContainerConfigCause::CODES,
            K::ContainerAnthropic => AnthropicCause::CODES,
            K::HubService => HubCause::CODES,
            K::ContainerImage => ImageCause::CODES,
            K::ContainerMounts => MountsCause::CODES,
            K::Isolation => IsolationCause::CODES,
            K::ClaudeJson => ClaudeJsonCause::CODES,
            K::Marker => MarkerCause::CODES,
            K::ServerEntry => ServerEntryCause::CODES,
            K::ScopeConflict => ScopeConflictCause::CODES,
            K::McpJson => McpJsonCause::CODES,
            K::HostMcpJson => HostMcpJsonCause::CODES,
            K::Transport => TransportCause::CODES,
            K::Approval => ApprovalCause::CODES,
            K::Trust => TrustCause::CODES,
            K::Permissions => PermissionsCause::CODES,
            K::Auth => AuthCause::CODES,
            K::ContainersStale => StaleCause::CODES,
            K::ContainersDuplicate => DuplicateCause::CODES,
        },
    };
    let mut codes = CommonCause::CODES.to_vec();
    codes.extend(own.iter().filter(|c| !CommonCause::CODES.contains(c)));
    codes
}
