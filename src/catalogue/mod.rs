//! The check catalogue as data: sections and checks in checklist order, each with its
//! probe, its relations and its explanation. `load` builds it from the TOML in `checks/`
//! (embedded at build time) and a project's own `<root>/.pd-doctor/checks/*.toml`.

pub mod load;

use serde::Deserialize;

pub use crate::probe_kind::{FileState, GenericProbe, ProbeKind, ProbeSpec, UnknownProbe};

/// Which projects a check applies to, read from the project's data (never its layout's
/// name): a check that cannot apply is not listed at all, rather than skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    #[default]
    Always,
    /// Servers whose project entry is a stdio entry (per agent: any such server).
    StdioServers,
    /// Servers whose project entry (the containers' `.mcp.json`) is direct HTTP, not a
    /// stdio program: once per run when any is.
    HttpServers,
    /// A layout with the Agent Hub.
    WithHub,
    /// A layout that runs Claude Code in a tmux session.
    WithSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Per {
    None,
    Server,
    Agent,
    AgentServer,
}

impl Per {
    /// Whether instances of a check run per `key`.
    pub fn has(self, key: Key) -> bool {
        matches!(
            (self, key),
            (Per::Agent | Per::AgentServer, Key::Agent)
                | (Per::Server | Per::AgentServer, Key::Server)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Per::None => "—",
            Per::Server => "server",
            Per::Agent => "agent",
            Per::AgentServer => "agent, server",
        }
    }
}

/// A precondition: the check is skipped when `check` (for the same agent/server) ended
/// in a way listed here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Need {
    pub check: String,
    /// Blocks only when the prerequisite's cause is one of these.
    #[serde(default)]
    pub when: Vec<String>,
    /// Blocks on any fail or skip except these causes.
    #[serde(default)]
    pub unless: Vec<String>,
    /// Why the check was skipped; `{agent}` and `{server}` are filled in.
    pub reason: String,
}

/// Which subject keys two instances must share for a relation to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    Agent,
    Server,
}

/// A relation: a problem of this check is a symptom of a problem of `check`, and is
/// reported under it. `check` may be any check of the catalogue, before or after.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Explanation {
    pub check: String,
    /// The subject keys the two instances must agree on (default: every key both have).
    pub same: Option<Vec<Key>>,
    /// Holds only when the explaining check ended with one of these causes (default: any
    /// fail or warn).
    #[serde(default)]
    pub when: Vec<String>,
    /// Explains only these causes of this check (default: any).
    #[serde(default)]
    pub causes: Vec<String>,
    /// Holds only when both ended with the same cause (a hang seen twice is one hang).
    #[serde(default)]
    pub same_cause: bool,
}

/// What a generic probe's failure is reported as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub section: String,
    pub per: Per,
    #[serde(default)]
    pub applies: Applies,
    pub probe: ProbeSpec,
    pub fix: Option<String>,
    /// `warn` turns a generic probe's failure into a warning; anything but `fail` or
    /// `warn` is a load error.
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub needs: Vec<Need>,
    /// The checks whose problems explain a problem of this one, most telling first.
    #[serde(default)]
    pub explained_by: Vec<Explanation>,
    /// Causes that a restart of the agent's container repairs, its entrypoint acting on
    /// the repair; `--fix` restarts a running container only with `--force`.
    #[serde(default)]
    pub restart_when: Vec<String>,
    #[serde(default)]
    pub explain: String,
    /// An ok result of this check is advice worth reading: the human report shows its
    /// message and hint under "Notes" (exit 0 all the same).
    #[serde(default)]
    pub note: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    pub sections: Vec<Section>,
    pub checks: Vec<CheckDef>,
}

impl Catalogue {
    pub fn get(&self, id: &str) -> Option<&CheckDef> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub fn section_title<'a>(&'a self, id: &'a str) -> &'a str {
        self.sections
            .iter()
            .find(|s| s.id == id)
            .map_or(id, |s| s.title.as_str())
    }
}
