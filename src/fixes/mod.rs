//! Carrying out repairs. A probe plans them as data (`crate::plan`); `apply` carries one
//! action out after checking the state again, `start` and `restart` are the actions that
//! wait for a server or a container, and `flow` runs the whole `--fix` / `reset`
//! conversation. Only this module changes anything on disk or in the engine.

pub mod apply;
pub mod flow;
pub mod restart;
pub mod start;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::project::Project;
use crate::safefs::{self, Fence};

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// Not done, on purpose: the state changed, or the action needs `--force`.
    Refused(String),
    /// What went wrong, and evidence (a log's last lines) when there is some.
    Failed(String, Vec<String>),
}

impl Outcome {
    pub fn text(&self) -> String {
        match self {
            Outcome::Done(t) => t.clone(),
            Outcome::Refused(t) => format!("not done: {t}"),
            Outcome::Failed(t, _) => format!("failed: {t}"),
        }
    }

    pub fn failed(text: impl Into<String>) -> Outcome {
        Outcome::Failed(text.into(), Vec::new())
    }

    /// The evidence of a failure.
    pub fn evidence(&self) -> &[String] {
        match self {
            Outcome::Failed(_, evidence) => evidence,
            _ => &[],
        }
    }

    pub fn done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

pub struct Context {
    pub project: Arc<Project>,
    pub docker: Option<bollard::Docker>,
    pub fence: Fence,
    pub force: bool,
    pub stamp: u128,
    /// The run's deadline, for every call an action makes.
    pub timeout: Duration,
}

impl Context {
    pub fn new(
        project: Arc<Project>,
        docker: Option<bollard::Docker>,
        force: bool,
        timeout: Duration,
    ) -> Context {
        Context {
            fence: Fence::new(project.fence_roots()),
            project,
            docker,
            force,
            stamp: safefs::stamp(),
            timeout,
        }
    }

    pub fn show(&self, p: &Path) -> String {
        self.project.show(p)
    }
}
