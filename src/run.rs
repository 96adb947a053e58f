//! One diagnosis of the project with fresh facts: what `pd-doctor` runs once, and what
//! `--fix` runs again to verify state before an action and to re-check after.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::catalogue::Catalogue;
use crate::engine::{expand, Engine};
use crate::facts::{docker, Facts};
use crate::model::{CheckResult, Finding};
use crate::project::Project;

pub struct Runner {
    pub project: Arc<Project>,
    pub catalogue: Catalogue,
    pub timeout: Duration,
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Runner {
    /// Facts read afresh: the engine asked again, nothing memoised from before.
    pub async fn facts(&self) -> Arc<Facts> {
        let docker = docker::gather(&self.project, Instant::now() + self.timeout).await;
        Arc::new(Facts::new(self.project.clone(), self.timeout, docker))
    }

    pub async fn diagnose_with(&self, facts: Arc<Facts>) -> Vec<CheckResult> {
        Engine::new(&self.catalogue, facts)
            .run(&self.only, &self.skip)
            .await
    }

    pub async fn diagnose(&self) -> Vec<CheckResult> {
        self.diagnose_with(self.facts().await).await
    }

    /// One check instance again, on `facts` read right before.
    pub async fn recheck(&self, id: &str, facts: Arc<Facts>) -> Option<Finding> {
        let inst = expand(&self.catalogue, &self.project)
            .into_iter()
            .find(|i| i.id == id)?;
        Some(crate::probes::run(inst.def, inst.subject, facts).await)
    }
}
