//! One diagnosis of the project with fresh facts: what `pd-doctor` runs once, and what
//! `--fix` runs again to verify state before an action and to re-check after.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::Catalogue;
use crate::engine::{expand, selected, Engine, Instance};
use crate::facts::Facts;
use crate::model::{CheckResult, Finding};
use crate::project::Project;

pub struct Runner {
    pub project: Arc<Project>,
    pub catalogue: Catalogue,
    pub timeout: Duration,
    /// The user's deadline for the first diagnosis: `--timeout` given, counted from the
    /// start of pd-doctor. `None`: one timeout per diagnosis, slow starts waited for.
    pub deadline: Option<tokio::time::Instant>,
    pub only: Vec<String>,
    pub skip: Vec<String>,
    /// `--agent`: only these agents, also among those found in containers.
    pub agents: Vec<String>,
    /// `--compat`: also the probes that leave a 4xx line in a strict server's log.
    pub compat: bool,
}

impl Runner {
    /// Facts read afresh: nothing memoised from before.
    pub fn facts(&self) -> Arc<Facts> {
        let mut facts = Facts::new(self.project.clone(), self.timeout);
        facts.compat = self.compat;
        Arc::new(facts)
    }

    /// The same for the first diagnosis, which keeps the user's deadline (both its passes).
    fn first_facts(&self) -> Arc<Facts> {
        let mut facts = Facts::until(self.project.clone(), self.timeout, self.deadline);
        facts.compat = self.compat;
        Arc::new(facts)
    }

    /// The first diagnosis of a run. Agents seen only in containers (no config dir under
    /// `.claude/users/`) become known when the engine answers, alongside the host probes;
    /// they join the project and get their checks in a second pass, merged into
    /// checklist order.
    pub async fn first_diagnosis(&mut self) -> Vec<CheckResult> {
        let facts = self.first_facts();
        let mut results = Engine::new(&self.catalogue, facts.clone())
            .run(&self.only, &self.skip)
            .await;
        learn_every_secret(&facts);
        let mut project = (*self.project).clone();
        let mut joined = Vec::new();
        if let Some(Ok(d)) = facts.docker_if_gathered() {
            for c in &d.containers {
                let wanted = self.agents.is_empty() || self.agents.contains(&c.agent);
                if wanted && project.agent(&c.agent).is_none() {
                    let source = c
                        .mount_at(&project.layout.config_mount)
                        .map(|m| PathBuf::from(&m.source));
                    project.add_agent(&c.agent, source.filter(|p| p.is_dir()));
                    joined.push(c.agent.clone());
                }
            }
        }
        if joined.is_empty() {
            crate::fixes::restart::plan(&self.catalogue, &mut results, &facts).await;
            return results;
        }
        self.project = Arc::new(project);
        let facts = self.first_facts();
        let engine = Engine::new(&self.catalogue, facts.clone());
        let theirs = |inst: &Instance| {
            inst.subject
                .agent
                .as_ref()
                .is_some_and(|a| joined.contains(a))
        };
        results.extend(
            engine
                .run_where(|inst| theirs(inst) && selected(&inst.id, &self.only, &self.skip))
                .await,
        );
        let order: HashMap<&str, usize> = engine
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.id.as_str(), i))
            .collect();
        results.sort_by_key(|r| order.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
        crate::fixes::restart::plan(&self.catalogue, &mut results, &facts).await;
        learn_every_secret(&facts);
        results
    }

    /// Every selected check again, with fresh facts.
    pub async fn diagnose(&self) -> Vec<CheckResult> {
        let facts = self.facts();
        let mut results = Engine::new(&self.catalogue, facts.clone())
            .run(&self.only, &self.skip)
            .await;
        crate::fixes::restart::plan(&self.catalogue, &mut results, &facts).await;
        learn_every_secret(&facts);
        results
    }

    /// One check instance again, on `facts` read right before.
    pub async fn recheck(&self, id: &str, facts: Arc<Facts>) -> Option<Finding> {
        let inst = expand(&self.catalogue, &self.project)
            .into_iter()
            .find(|i| i.id == id)?;
        // Under the same panic and deadline isolation as a normal run.
        Some(crate::engine::run_probe(&inst, facts).await)
    }
}

/// Header values join the secrets as each `.claude.json` is read; a run that checked no
/// config (`--only container.*`) may still quote a log line holding one. Every agent's
/// file is read (once: memoised) before results reach a report.
fn learn_every_secret(facts: &Facts) {
    for agent in &facts.project.agents {
        facts.claude_json(agent);
    }
}
