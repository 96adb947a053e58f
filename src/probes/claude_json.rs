//! `config.claude_json`: the agent's `.claude.json` is there, parses, and has the shape
//! Claude Code writes.

use crate::causes::{ClaudeJsonCause, CommonCause};
use crate::claude_config::{self, JsonFile};
use crate::facts::Facts;
use crate::model::Finding;
use crate::plan::{Action, FixPlan};
use crate::project::{Agent, Server};
use crate::safefs;

pub fn probe(f: &Facts, agent: &Agent) -> Finding {
    let path = agent.config_dir.join(".claude.json");
    let shown = f.project.show(&path);
    let restore = || {
        let backup = claude_config::newest_parsable_backup(&agent.config_dir);
        // Links among the backups are passed over; the plan says so.
        let passed_over: Vec<String> = claude_config::backups(&agent.config_dir)
            .iter()
            .filter(|b| safefs::state(b).is_some_and(|s| s.kind == safefs::Kind::Link))
            .map(|b| {
                format!(
                    "{} is a symlink: passed over (only regular files in backups/ are restored)",
                    f.project.show(b)
                )
            })
            .chain(
                safefs::state(&agent.config_dir.join("backups"))
                    .filter(|s| s.kind == safefs::Kind::Link)
                    .map(|_| {
                        "backups/ is a symlink out of the config dir: its files are not used"
                            .to_string()
                    }),
            )
            .collect();
        let hint = match &backup {
            Some(b) => format!("restore the newest backup that parses: cp {} {shown}", f.project.show(b)),
            None => format!("no backup parses; move it aside and let Claude Code start afresh: mv {shown} {shown}.corrupt"),
        };
        (
            FixPlan::one(Action::RestoreClaudeJson {
                path: path.clone(),
                backup,
            }),
            hint,
            passed_over,
        )
    };
    match f.claude_json(agent) {
        JsonFile::Missing => {
            let claimed = markers_present(f, agent);
            if claimed.is_empty() {
                Finding::warn(ClaudeJsonCause::Missing, format!("{shown} does not exist yet"))
                    .hint("Claude Code creates it on the agent's first start; the entrypoint then registers the servers")
            } else {
                Finding::fail(
                    ClaudeJsonCause::Missing,
                    format!("{shown} is missing, but markers say the servers were configured"),
                )
                .evidence(format!(
                    "markers present: {}",
                    claimed
                        .iter()
                        .filter_map(|s| s.marker.as_deref())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .hint(format!(
                    "remove the markers so the entrypoint configures again: rm {}/.*mcp-configured",
                    f.project.show(&agent.config_dir)
                ))
            }
        }
        JsonFile::Unreadable(why) => Finding::fail(
            ClaudeJsonCause::Unreadable,
            format!("{shown} cannot be read: {why}"),
        )
        .hint(format!(
            "check it: ls -la {}",
            f.project.show(&agent.config_dir)
        )),
        JsonFile::Empty => {
            let (plan, hint, passed_over) = restore();
            Finding::fail(
                ClaudeJsonCause::Empty,
                format!(
                    "{shown} is empty: Claude Code will say the configuration file is corrupted"
                ),
            )
            .evidence_all(passed_over)
            .hint(hint)
            .fix(plan)
        }
        JsonFile::Corrupt(why) => {
            let (plan, hint, passed_over) = restore();
            Finding::fail(ClaudeJsonCause::Corrupt, format!("{shown} does not parse: Claude Code will say the configuration file is corrupted"))
                .evidence(why.clone())
                .evidence("usually two containers wrote it at once (see config.isolation)")
                .evidence_all(passed_over)
                .hint(hint)
                .fix(plan)
        }
        JsonFile::Parsed(doc) => {
            match claude_config::shape_problem(doc, &f.project.layout.project_mount) {
                Some(problem) => Finding::fail(
                    ClaudeJsonCause::WrongShape,
                    format!("{shown} parses, but {problem}"),
                )
                .hint(
                    "Claude Code cannot use it; restore a backup from backups/ or fix it by hand",
                ),
                None => {
                    let names: Vec<String> =
                        claude_config::server_entries(claude_config::user_scope(doc))
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect();
                    let message = if names.is_empty() {
                        "parses; no servers in user scope".to_string()
                    } else {
                        format!("parses; user scope has {}", names.join(", "))
                    };
                    Finding::ok(CommonCause::Ok, message)
                }
            }
        }
    }
}

/// Marker files of `agent` that exist (as anything, a dangling symlink included).
fn markers_present<'a>(f: &'a Facts, agent: &Agent) -> Vec<&'a Server> {
    f.project
        .servers
        .iter()
        .filter(|s| agent.has_marker(s))
        .collect()
}
