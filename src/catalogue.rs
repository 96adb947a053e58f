//! The check catalogue: TOML in `checks/` embedded at build time, plus a project's own
//! checks from `<root>/.pd-doctor/checks/*.toml`. Order in the files is checklist order.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::safefs::ReadError;

/// The built-in catalogue, one file per primer section, in checklist order.
const BUILTIN: &[(&str, &str)] = &[
    (
        "8.1-servers.toml",
        include_str!("../checks/8.1-servers.toml"),
    ),
    (
        "8.2-containers.toml",
        include_str!("../checks/8.2-containers.toml"),
    ),
    ("8.3-config.toml", include_str!("../checks/8.3-config.toml")),
    ("8.4-stale.toml", include_str!("../checks/8.4-stale.toml")),
];

/// Why a catalogue does not load. The messages name the file or the check, and what a
/// reason's text already says is not also its `source`: the chain prints each once.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Not TOML, or a value the catalogue does not know (a probe, a severity, a field).
    #[error("{file}: {error}")]
    Syntax {
        file: String,
        error: toml::de::Error,
    },
    #[error("{} {error}", path.display())]
    Unreadable { path: PathBuf, error: ReadError },
    #[error("{file}: check {id} is defined twice")]
    DefinedTwice { file: String, id: String },
    /// Prerequisites come earlier, so the engine can wire them in one pass.
    #[error("{file}: check {id} needs {needs}, which is not defined before it")]
    NeedsUndefined {
        file: String,
        id: String,
        needs: String,
    },
    #[error("check {id} is explained by {by}, which is not defined")]
    ExplainedByUndefined { id: String, by: String },
    #[error("check {id} cannot explain itself")]
    ExplainsItself { id: String },
    #[error("check {id}: explained_by {by} with same = {key:?}, which is not a key of both")]
    NotAKeyOfBoth { id: String, by: String, key: Key },
    /// A cause in `needs`, `explained_by` or `restart_when` that the check it is about
    /// never reports.
    #[error(
        "check {id}: {field} names cause {cause:?}, which {of} does not report; its causes are {}",
        known.join(", ")
    )]
    UnknownCause {
        id: String,
        field: &'static str,
        cause: String,
        of: String,
        known: Vec<&'static str>,
    },
}

/// Which projects a check applies to, read from the project's data (never its layout's
/// name): a check that cannot apply is not listed at all, rather than skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    #[default]
    Always,
    /// Servers whose project entry is a stdio entry (per agent: any such server).
    StdioServers,
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

/// Declares [`ProbeKind`] from one list: each built-in probe and its name in the
/// catalogue files. `probes::run` dispatches on the kind.
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
    Approval = "approval",
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

/// What a generic probe's failure is reported as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Fail,
    Warn,
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
}

#[derive(Debug, Clone, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    section: Option<Section>,
    #[serde(default)]
    check: Vec<CheckDef>,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    pub sections: Vec<Section>,
    pub checks: Vec<CheckDef>,
}

impl Catalogue {
    pub fn builtin() -> Catalogue {
        // The built-in files are tested; a broken one is a build defect, not user input.
        Catalogue::parse(BUILTIN).unwrap_or_else(|e| panic!("built-in catalogue: {e}"))
    }

    /// A catalogue of these (name, TOML text) files, in order.
    pub fn parse(files: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
        let mut cat = Catalogue {
            sections: Vec::new(),
            checks: Vec::new(),
        };
        for (name, text) in files {
            cat.add_file(name, text)?;
        }
        cat.check_relations()?;
        Ok(cat)
    }

    /// The built-in catalogue plus the project's `.pd-doctor/checks/*.toml`, in name order.
    pub fn load(root: &Path) -> Result<Catalogue, CatalogueError> {
        let mut cat = Catalogue::builtin();
        // Relations are checked once every file is in: a project check may be explained
        // by one defined in a later file.
        let dir = root.join(".pd-doctor").join("checks");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(cat);
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let text = crate::safefs::read_text(
                &path,
                crate::safefs::TEXT_CAP,
                crate::safefs::Links::Follow,
            )
            .map_err(|error| CatalogueError::Unreadable {
                path: path.clone(),
                error,
            })?;
            cat.add_file(&path.display().to_string(), &text)?;
        }
        cat.check_relations()?;
        Ok(cat)
    }

    /// Every relation names a check of the catalogue (defined anywhere: relations are
    /// resolved after the run), only subject keys both checks have, and only causes the
    /// checks it names can report.
    fn check_relations(&self) -> Result<(), CatalogueError> {
        for check in &self.checks {
            self.check_causes(check)?;
            for rel in &check.explained_by {
                let Some(other) = self.get(&rel.check) else {
                    return Err(CatalogueError::ExplainedByUndefined {
                        id: check.id.clone(),
                        by: rel.check.clone(),
                    });
                };
                if rel.check == check.id {
                    return Err(CatalogueError::ExplainsItself {
                        id: check.id.clone(),
                    });
                }
                for key in rel.same.iter().flatten() {
                    if !(check.per.has(*key) && other.per.has(*key)) {
                        return Err(CatalogueError::NotAKeyOfBoth {
                            id: check.id.clone(),
                            by: rel.check.clone(),
                            key: *key,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The causes in `needs`, `explained_by` and `restart_when` are causes of the check
    /// each list is about, as its probe's cause enum spells them: a typo would otherwise
    /// never match, and the relation silently never hold.
    fn check_causes(&self, check: &CheckDef) -> Result<(), CatalogueError> {
        let lists = check
            .needs
            .iter()
            .flat_map(|n| {
                [
                    (&n.check, "needs.when", &n.when),
                    (&n.check, "needs.unless", &n.unless),
                ]
            })
            .chain(check.explained_by.iter().flat_map(|r| {
                [
                    (&r.check, "explained_by.when", &r.when),
                    (&check.id, "explained_by.causes", &r.causes),
                ]
            }))
            .chain([(&check.id, "restart_when", &check.restart_when)]);
        for (of, field, causes) in lists {
            // Relations to an undefined check are reported by the caller.
            let Some(of) = self.get(of) else { continue };
            let known = crate::causes::codes(&of.probe);
            if let Some(typo) = causes.iter().find(|c| !known.contains(&c.as_str())) {
                return Err(CatalogueError::UnknownCause {
                    id: check.id.clone(),
                    field,
                    cause: typo.clone(),
                    of: of.id.clone(),
                    known,
                });
            }
        }
        Ok(())
    }

    fn add_file(&mut self, name: &str, text: &str) -> Result<(), CatalogueError> {
        let file: File = toml::from_str(text).map_err(|error| CatalogueError::Syntax {
            file: name.to_string(),
            error,
        })?;
        let default_section = file.section.as_ref().map(|s| s.id.clone());
        if let Some(section) = file.section {
            if !self.sections.iter().any(|s| s.id == section.id) {
                self.sections.push(section);
            }
        }
        for mut check in file.check {
            if check.section.is_empty() {
                check.section = default_section.clone().unwrap_or_else(|| "custom".into());
            }
            self.validate(name, &check)?;
            if !self.sections.iter().any(|s| s.id == check.section) {
                self.sections.push(Section {
                    id: check.section.clone(),
                    title: check.section.clone(),
                });
            }
            self.checks.push(check);
        }
        // Checklist order is section order, then file order within a section.
        let order: Vec<String> = self.sections.iter().map(|s| s.id.clone()).collect();
        self.checks
            .sort_by_key(|c| order.iter().position(|s| *s == c.section));
        Ok(())
    }

    fn validate(&self, file: &str, check: &CheckDef) -> Result<(), CatalogueError> {
        if self.get(&check.id).is_some() {
            return Err(CatalogueError::DefinedTwice {
                file: file.to_string(),
                id: check.id.clone(),
            });
        }
        for need in &check.needs {
            if self.get(&need.check).is_none() {
                return Err(CatalogueError::NeedsUndefined {
                    file: file.to_string(),
                    id: check.id.clone(),
                    needs: need.check.clone(),
                });
            }
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[check]]
id = "a.one"
title = "one"
per = "server"
probe = "listen"
[[check.explained_by]]
check = "b.two"
same = ["server"]

[[check]]
id = "b.two"
title = "two"
per = "agent-server"
probe = "marker"
"#;

    #[test]
    fn relations_may_name_later_checks_but_must_name_real_ones() {
        let cat = Catalogue::parse(&[("t.toml", TWO)]).unwrap();
        assert_eq!(cat.get("a.one").unwrap().explained_by[0].check, "b.two");
        let dangling = TWO.replace("check = \"b.two\"", "check = \"c.three\"");
        let err = Catalogue::parse(&[("t.toml", &dangling)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.three"), "{err}");
        let wrong_key = TWO.replace("same = [\"server\"]", "same = [\"agent\"]");
        let err = Catalogue::parse(&[("t.toml", &wrong_key)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a key of both"), "{err}");
    }

    #[test]
    fn the_builtin_relations_are_well_formed() {
        let cat = Catalogue::builtin();
        let reach = cat.get("container.reach").unwrap();
        assert!(reach
            .explained_by
            .iter()
            .any(|r| r.check == "server.mcp" && r.same_cause));
    }

    /// The built-in files with one text replaced (which must be there).
    fn builtin_with(from: &str, to: &str) -> Result<Catalogue, CatalogueError> {
        let files: Vec<(&str, String)> = BUILTIN
            .iter()
            .map(|(name, text)| (*name, text.replacen(from, to, 1)))
            .collect();
        assert!(
            files.iter().any(|(_, t)| t.contains(to)),
            "{from} not found"
        );
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        Catalogue::parse(&files)
    }

    #[test]
    fn a_typo_in_a_cause_is_a_load_error_naming_it_and_the_check() {
        for (from, to, check) in [
            // explained_by.when: a cause of the explaining check.
            (
                "when = [\"loopback-only\"]",
                "when = [\"loopback_only\"]",
                "server.listen",
            ),
            // explained_by.causes: a cause of this check.
            (
                "causes = [\"dns\"]",
                "causes = [\"dsn\"]",
                "container.reach",
            ),
            // needs.unless and needs.when: causes of the prerequisite.
            (
                "unless = [\"missing-tools\"]",
                "unless = [\"missing-tool\"]",
                "server.mcp",
            ),
            (
                "when = [\"missing\"]",
                "when = [\"absent\"]",
                "container.state",
            ),
            // restart_when: a cause of this check.
            (
                "restart_when = [\"stale-marker\"]",
                "restart_when = [\"stale\"]",
                "config.marker",
            ),
        ] {
            let typo = to.split('"').nth(1).unwrap();
            let err = builtin_with(from, to).unwrap_err();
            assert!(
                matches!(&err, CatalogueError::UnknownCause { cause, of, .. } if cause == typo && of == check),
                "{err:?}"
            );
            let err = err.to_string();
            assert!(
                err.contains(&format!("{typo:?}"))
                    && err.contains(&format!("which {check} does not report")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_projects_relations_name_causes_of_generic_probes_too() {
        let site = |cause: &str| {
            format!(
                "{CHECK}[check.probe]\nkind = \"http\"\nurl = \"http://x\"\n[[check.explained_by]]\ncheck = \"server.listen\"\ncauses = [\"{cause}\"]\n"
            )
        };
        let files = |text: &str| -> Vec<(&str, String)> {
            let mut files: Vec<(&str, String)> =
                BUILTIN.iter().map(|(n, t)| (*n, t.to_string())).collect();
            files.push(("site.toml", text.to_string()));
            files
        };
        let parse = |text: &str| {
            let files = files(text);
            let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
            Catalogue::parse(&files)
        };
        assert!(parse(&site("refused")).is_ok());
        let err = parse(&site("refusd")).unwrap_err().to_string();
        assert!(
            err.contains("\"refusd\"") && err.contains("site.x"),
            "{err}"
        );
    }

    fn load(check: &str) -> Result<Catalogue, String> {
        let mut cat = Catalogue::builtin();
        cat.add_file("site.toml", check)
            .map(|()| cat)
            .map_err(|e| e.to_string())
    }

    const CHECK: &str = "[[check]]\nid = \"site.x\"\ntitle = \"x\"\nper = \"none\"\n";

    #[test]
    fn every_builtin_check_names_a_known_probe_and_every_kind_its_own_name() {
        let cat = Catalogue::builtin();
        assert!(cat
            .checks
            .iter()
            .all(|c| matches!(c.probe, ProbeSpec::Builtin(_))));
        for kind in ProbeKind::ALL {
            assert_eq!(kind.name().parse::<ProbeKind>(), Ok(*kind));
        }
    }

    #[test]
    fn a_typo_in_a_probe_name_is_a_load_error_naming_it() {
        let err = load(&format!("{CHECK}probe = \"mcp-handshak\"\n")).unwrap_err();
        assert!(
            err.contains("site.toml") && err.contains("unknown probe \"mcp-handshak\""),
            "{err}"
        );
        assert!(err.contains("mcp-handshake"), "known probes listed: {err}");
        assert!(load(&format!("{CHECK}probe = \"mcp-handshake\"\n")).is_ok());
    }

    #[test]
    fn a_typo_in_a_severity_is_a_load_error() {
        let generic = "[check.probe]\nkind = \"file\"\npath = \"x\"\n";
        let err = load(&format!("{CHECK}severity = \"warning\"\n{generic}")).unwrap_err();
        assert!(err.contains("warning") && err.contains("warn"), "{err}");
        let cat = load(&format!("{CHECK}severity = \"warn\"\n{generic}")).unwrap();
        assert_eq!(cat.get("site.x").unwrap().severity, Severity::Warn);
        let cat = load(&format!("{CHECK}{generic}")).unwrap();
        assert_eq!(cat.get("site.x").unwrap().severity, Severity::Fail);
    }
}
