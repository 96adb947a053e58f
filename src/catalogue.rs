//! The check catalogue: TOML in `checks/` embedded at build time, plus a project's own
//! checks from `<root>/.pd-doctor/checks/*.toml`. Order in the files is checklist order.

use std::path::Path;

use serde::Deserialize;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Per {
    None,
    Server,
    Agent,
    AgentServer,
}

impl Per {
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

/// How a check gathers its evidence: a built-in probe by name, or a generic one that a
/// project can use in its own checks without recompiling.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ProbeSpec {
    Builtin(String),
    Generic(GenericProbe),
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
    pub probe: ProbeSpec,
    pub fix: Option<String>,
    /// `warn` turns a generic probe's failure into a warning.
    pub severity: Option<String>,
    #[serde(default)]
    pub needs: Vec<Need>,
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
        let mut cat = Catalogue {
            sections: Vec::new(),
            checks: Vec::new(),
        };
        for (name, text) in BUILTIN {
            // The built-in files are tested; a broken one is a build defect, not user input.
            cat.add_file(name, text)
                .unwrap_or_else(|e| panic!("built-in catalogue {name}: {e}"));
        }
        cat
    }

    /// The built-in catalogue plus the project's `.pd-doctor/checks/*.toml`, in name order.
    pub fn load(root: &Path) -> Result<Catalogue, String> {
        let mut cat = Catalogue::builtin();
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
            .map_err(|e| format!("{} {e}", path.display()))?;
            cat.add_file(&path.display().to_string(), &text)?;
        }
        Ok(cat)
    }

    fn add_file(&mut self, name: &str, text: &str) -> Result<(), String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
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

    fn validate(&self, file: &str, check: &CheckDef) -> Result<(), String> {
        if self.get(&check.id).is_some() {
            return Err(format!("{file}: check {} is defined twice", check.id));
        }
        for need in &check.needs {
            // Prerequisites must come earlier, so the engine can wire them in one pass.
            if self.get(&need.check).is_none() {
                return Err(format!(
                    "{file}: check {} needs {}, which is not defined before it",
                    check.id, need.check
                ));
            }
        }
        if let ProbeSpec::Builtin(name) = &check.probe {
            if !crate::probes::is_builtin(name) {
                return Err(format!(
                    "{file}: check {}: unknown probe {name:?}",
                    check.id
                ));
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
