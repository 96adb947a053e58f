//! Loading the catalogue: the built-in files, then a project's own, each check validated
//! as it comes (defined once, its prerequisites defined before it) and the relations once
//! all are in (they name real checks, keys both checks have, causes their probes report).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Catalogue, CheckDef, Key, Section};
use crate::safefs::ReadError;

/// The built-in catalogue, one file per primer section, in checklist order.
const BUILTIN: &[(&str, &str)] = &[
    (
        "8.1-servers.toml",
        include_str!("../../checks/8.1-servers.toml"),
    ),
    (
        "8.2-containers.toml",
        include_str!("../../checks/8.2-containers.toml"),
    ),
    (
        "8.3-config.toml",
        include_str!("../../checks/8.3-config.toml"),
    ),
    (
        "8.4-stale.toml",
        include_str!("../../checks/8.4-stale.toml"),
    ),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    section: Option<Section>,
    #[serde(default)]
    check: Vec<CheckDef>,
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
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{ProbeKind, ProbeSpec, Severity};
    use crate::causes::*;

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

    // The cause lists of `causes`, against the catalogue that names them (moved from
    // causes.rs, which the catalogue imports).

    #[test]
    fn codes_are_kebab_case_and_listed_once() {
        let builtin = Catalogue::builtin()
            .checks
            .into_iter()
            .map(|c| (c.id, codes(&c.probe)));
        let generic = [("http", HttpCause::CODES), ("file", FileCause::CODES)]
            .map(|(kind, own)| (kind.to_string(), own.to_vec()));
        for (of, codes) in builtin.chain(generic) {
            for (i, code) in codes.iter().enumerate() {
                let kebab = |w: &str| {
                    !w.is_empty() && w.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'))
                };
                assert!(code.split('-').all(kebab), "{of}: {code:?}");
                assert!(!codes[..i].contains(code), "{of}: {code} twice");
            }
        }
    }

    /// The contract's cause lists (the first round and the second), copied, space
    /// separated: each cause it names for a check is one that check's probe can report.
    const CONTRACT: &[(&str, &str)] = &[
        ("server.mcp", "ok refused timeout dns unauthorized host-rejected not-found not-acceptable server-error not-mcp protocol-error missing-tools"),
        ("server.listen", "ok not-listening loopback-only"),
        ("server.pidfile", "ok absent unreadable garbage dead reused port-owner-mismatch"),
        ("container.reach", "ok dns refused timeout host-rejected server-error no-client not-running no-network"),
        ("config.marker", "ok stale-marker missing-marker none"),
        ("config.claude_json", "ok missing empty corrupt wrong-shape"),
        ("config.server_entry", "ok missing localhost-url wrong-port wrong-path wrong-transport missing-auth-header bad-url unset-variable"),
        ("containers.stale", "ok stale"),
        ("config.approval", "ok pending declined denied"),
        ("config.mcp_json", "unset-variable missing-auth-header wrong-transport"),
        ("container.host_gateway", "loopback wrong-address no-network"),
        ("container.stdio", "ok command-not-found exited timeout not-mcp rpc-error"),
        ("container.session", "ok no-session"),
        ("container.identity", "ok wrong-identity missing"),
        ("container.config", "ok wrong-workdir mcp-timeout-short two-clients"),
        ("hub.service", "ok not-listening unhealthy out-of-sync"),
        ("config.host_mcp_json", "ok second-server"),
        ("config.permissions", "ok prompts"),
        ("config.auth", "ok not-logged-in"),
        ("config.trust", "ok not-accepted"),
    ];

    #[test]
    fn the_enums_have_every_cause_the_contract_names() {
        let cat = Catalogue::builtin();
        for (id, contract) in CONTRACT {
            let codes = codes(&cat.get(id).unwrap().probe);
            for cause in contract.split_whitespace() {
                assert!(
                    codes.contains(&cause),
                    "{id}: the contract's {cause} is missing"
                );
            }
            for common in ["internal", "precondition"] {
                assert!(codes.contains(&common), "{id}: {common}");
            }
        }
    }

    /// The README's cause table (`### Cause codes`) lists exactly what each built-in
    /// check can report, besides `internal` and `precondition`.
    #[test]
    fn the_enums_and_the_readme_cause_table_agree() {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("### Cause codes")
            .nth(1)
            .and_then(|t| t.split("\n## ").next())
            .unwrap();
        let cat = Catalogue::builtin();
        let mut rows = 0;
        for line in table.lines().filter(|l| l.starts_with("| `")) {
            let mut cells = line.split('|').skip(1);
            let id = cells.next().unwrap().trim().trim_matches('`');
            let listed = ticked(cells.next().unwrap());
            let mut listed = listed;
            let mut codes = codes(&cat.get(id).unwrap_or_else(|| panic!("{id}")).probe);
            codes.retain(|c| !matches!(*c, "internal" | "precondition" | "timeout"));
            listed.retain(|c| *c != "timeout");
            listed.sort_unstable();
            codes.sort_unstable();
            assert_eq!(listed, codes, "{id}: README (left) and enum (right)");
            rows += 1;
        }
        assert_eq!(rows, cat.checks.len(), "one README row per built-in check");
    }

    /// The `code` spans of a table cell that start it or follow a comma, leaving those
    /// inside parentheses (examples, not causes).
    fn ticked(cell: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut depth = 0;
        let mut rest = cell;
        while let Some(i) = rest.find(['(', ')', '`']) {
            match rest.as_bytes()[i] {
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {
                    let after = &rest[i + 1..];
                    let end = after.find('`').unwrap();
                    if depth == 0 {
                        out.push(&after[..end]);
                    }
                    rest = &after[end + 1..];
                    continue;
                }
            }
            rest = &rest[i + 1..];
        }
        out
    }
}
