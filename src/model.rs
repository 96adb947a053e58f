//! The result vocabulary every probe speaks and every renderer reads.
//!
//! A probe answers with a [`Finding`] (status, cause, message, evidence, hint, fix plan);
//! the engine wraps it into a [`CheckResult`] with the instance id, subject and timing.

use serde::Serialize;

use crate::causes::{Cause, CommonCause};
use crate::plan::FixPlan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
    Fixed,
}

/// What a check instance is about: one server, one agent, both, or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Subject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl Subject {
    pub fn server(name: &str) -> Self {
        Subject {
            agent: None,
            server: Some(name.to_string()),
        }
    }

    pub fn agent(name: &str) -> Self {
        Subject {
            agent: Some(name.to_string()),
            server: None,
        }
    }

    /// The `[qa,git]` suffix of an instance id; empty for per-project checks.
    pub fn suffix(&self) -> String {
        let parts: Vec<&str> = [self.agent.as_deref(), self.server.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("[{}]", parts.join(","))
        }
    }

    /// Fills `{agent}` and `{server}` in a message template.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{agent}", self.agent.as_deref().unwrap_or("-"))
            .replace("{server}", self.server.as_deref().unwrap_or("-"))
    }
}

/// What a probe found. Built with [`Finding::ok`], [`Finding::warn`], [`Finding::fail`],
/// each given a variant of the probe's cause enum (`crate::causes`).
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub cause: Cause,
    pub message: String,
    pub evidence: Vec<String>,
    pub hint: Option<String>,
    pub fix: Option<FixPlan>,
    /// The one server a finding of a check that runs once for all servers is about
    /// (`config.mcp_json` on qms's entry): it joins the result's subject, so a consumer
    /// of the report sees which server it concerns and the grouping by root cause keeps
    /// the other servers apart.
    pub server: Option<String>,
    /// The scope of the entry Claude Code uses for the subject's agent and server
    /// (`local`, `project`, `user`, or `none`), where the check has decided it.
    pub scope: Option<&'static str>,
}

impl Finding {
    fn new(status: Status, cause: impl Into<Cause>, message: impl Into<String>) -> Self {
        Finding {
            status,
            cause: cause.into(),
            message: message.into(),
            evidence: Vec::new(),
            hint: None,
            fix: None,
            server: None,
            scope: None,
        }
    }

    pub fn ok(cause: impl Into<Cause>, message: impl Into<String>) -> Self {
        Self::new(Status::Ok, cause, message)
    }

    pub fn warn(cause: impl Into<Cause>, message: impl Into<String>) -> Self {
        Self::new(Status::Warn, cause, message)
    }

    pub fn fail(cause: impl Into<Cause>, message: impl Into<String>) -> Self {
        Self::new(Status::Fail, cause, message)
    }

    pub fn skip(message: impl Into<String>) -> Self {
        Self::new(Status::Skip, CommonCause::Precondition, message)
    }

    /// A probe that crashed or hit a bug: the run goes on, the check fails.
    pub fn internal(error: impl Into<String>) -> Self {
        let error = error.into();
        Self::new(
            Status::Fail,
            CommonCause::Internal,
            "pd-doctor could not run this check",
        )
        .evidence(error)
        .hint("this is a bug in pd-doctor; please report it with the evidence above")
    }

    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    pub fn evidence_all(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.evidence.extend(lines);
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn fix(mut self, plan: FixPlan) -> Self {
        self.fix = Some(plan);
        self
    }

    /// The finding concerns this one server (see [`Finding::server`]).
    pub fn about(mut self, server: &str) -> Self {
        self.server = Some(server.to_string());
        self
    }

    /// The entry in use has this scope (see [`Finding::scope`]).
    pub fn scope(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
    }

    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }
}

/// One check instance's outcome, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: String,
    pub check: String,
    pub section: String,
    pub subject: Subject,
    pub status: Status,
    pub cause: String,
    pub message: String,
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The root cause this problem is a symptom of: the instance id of an entry of
    /// `root_causes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
    pub fix: FixReport,
    pub duration_ms: u64,
    /// The scope of the entry Claude Code uses for the subject (`config.server_entry`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    /// The actions behind `fix.plan`, for `--fix`; not part of the report.
    #[serde(skip)]
    pub plan: Option<FixPlan>,
}

/// A problem (fail or warn) that no other problem explains, with the problems it
/// explains: what the report leads with.
#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    /// The instance id of the check that found it.
    pub id: String,
    pub status: Status,
    pub cause: String,
    pub message: String,
    /// Instance ids of the problems it explains, in checklist order.
    pub explains: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What repairs it: its own check's repair and those of the problems it explains.
    pub fix: FixReport,
}

/// The `fix` object of the JSON report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FixReport {
    pub available: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub fixed: usize,
}

impl CheckResult {
    /// A fail or a warning: something to report.
    pub fn is_problem(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Warn)
    }

    /// A note: advice (ok, exit 0) under a cause of its own, which the report shows
    /// where it hides other passing checks.
    pub fn is_note(&self) -> bool {
        self.status == Status::Ok && crate::causes::NOTES.contains(&self.cause.as_str())
    }
}

impl Summary {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Self {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Ok => s.ok += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
                Status::Fixed => s.fixed += 1,
            }
        }
        s
    }
}
