//! Renderers: every format reads the same [`Report`]; none of them probes anything.

pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod verdict;

use crate::model::{CheckResult, FixReport, RootCause, Status, Summary};
use crate::printable;
use crate::redact::SecretSet;

/// "1 warning", "2 warnings": a count with its noun in the right number.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Which layout the run judged the tree by, and why (JSON `layout`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LayoutInfo {
    pub name: String,
    pub docker_dir: String,
    pub how: String,
}

/// A result's title where a format has one line for it (a JUnit test case, a GitHub
/// annotation): its instance id, and the server a finding of a check that runs once for
/// all servers is about (`config.mcp_json (qms)`).
pub fn title(r: &CheckResult) -> String {
    match &r.subject.server {
        Some(server) if !r.id.ends_with(']') => format!("{} ({server})", r.id),
        _ => r.id.clone(),
    }
}

pub struct Report {
    pub root: String,
    pub layout: LayoutInfo,
    pub started_at: String,
    pub duration_ms: u64,
    pub results: Vec<CheckResult>,
    /// The problems nothing else explains, in checklist order (see `engine::relate`).
    pub root_causes: Vec<RootCause>,
    /// What `claude mcp list` will show for each agent and server (see [`verdict`]).
    pub claude_code: Vec<verdict::ClientVerdict>,
}

impl Report {
    pub fn summary(&self) -> Summary {
        Summary::of(&self.results)
    }

    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }

    /// The last line of defence: every secret value the run has seen is replaced, and
    /// every control character escaped, in every text a renderer may print.
    pub fn scrub(&mut self, secrets: &SecretSet) {
        let line = |t: &str| printable::line(&secrets.scrub(t)).into_owned();
        let block = |t: &str| printable::block(&secrets.scrub(t)).into_owned();
        let fix = |f: &mut FixReport| {
            for text in &mut f.plan {
                *text = line(text);
            }
            f.outcome = f.outcome.as_deref().map(line);
        };
        self.root = line(&self.root);
        self.layout.docker_dir = line(&self.layout.docker_dir);
        self.layout.how = line(&self.layout.how);
        for r in &mut self.results {
            r.id = line(&r.id);
            for name in [&mut r.subject.agent, &mut r.subject.server]
                .into_iter()
                .flatten()
            {
                *name = line(name);
            }
            r.message = line(&r.message);
            r.hint = r.hint.as_deref().map(block);
            for text in &mut r.evidence {
                *text = line(text);
            }
            fix(&mut r.fix);
            r.explained_by = r.explained_by.as_deref().map(line);
        }
        for v in &mut self.claude_code {
            for text in [&mut v.agent, &mut v.server]
                .into_iter()
                .chain(v.because.as_mut())
                .chain(v.cause.as_mut())
            {
                *text = line(text);
            }
        }
        for rc in &mut self.root_causes {
            rc.id = line(&rc.id);
            rc.message = line(&rc.message);
            rc.hint = rc.hint.as_deref().map(block);
            for text in &mut rc.explains {
                *text = line(text);
            }
            fix(&mut rc.fix);
        }
    }

    /// The result of one check instance.
    pub fn result(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }
}
