//! `config.isolation`: no two agents share one config dir on the host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::causes::{CommonCause, IsolationCause};
use crate::facts::Facts;
use crate::model::Finding;

pub async fn probe(f: &Facts) -> Finding {
    let mut by_dir: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for agent in &f.project.agents {
        // Symlinks resolved: two names for one folder are one folder.
        if let Ok(real) = std::fs::canonicalize(&agent.config_dir) {
            by_dir.entry(real).or_default().push(&agent.name);
        }
    }
    let mut shared: Vec<String> = by_dir
        .iter()
        .filter(|(_, agents)| agents.len() > 1)
        .map(|(dir, agents)| format!("{} share {}", agents.join(" and "), dir.display()))
        .collect();
    shared.extend(super::docker::shared_mounts(f).await);
    if shared.is_empty() {
        return Finding::ok(
            CommonCause::Ok,
            format!(
                "{} agents, {} separate config dirs",
                f.project.agents.len(),
                by_dir.len()
            ),
        );
    }
    Finding::fail(IsolationCause::Shared, shared[0].clone())
        .evidence_all(shared.iter().skip(1).cloned())
        .evidence("shared markers stop one agent from configuring; two writers corrupt .claude.json")
        .hint("give every agent its own .claude/users/<agent>/container/ (no symlinks between them) and recreate the containers")
}
