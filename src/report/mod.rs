//! Renderers: every format reads the same [`Report`]; none of them probes anything.

pub mod human;
pub mod json;
pub mod junit;

use crate::model::{CheckResult, Status, Summary};
use crate::redact::SecretSet;

pub struct Report {
    pub root: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub results: Vec<CheckResult>,
}

impl Report {
    pub fn summary(&self) -> Summary {
        Summary::of(&self.results)
    }

    pub fn failed(&self) -> bool {
        self.results.iter().any(|r| r.status == Status::Fail)
    }

    /// The last line of defence: every secret value the run has seen is replaced in every
    /// text a renderer may print.
    pub fn scrub(&mut self, secrets: &SecretSet) {
        for r in &mut self.results {
            r.message = secrets.scrub(&r.message);
            r.hint = r.hint.as_deref().map(|h| secrets.scrub(h));
            for e in &mut r.evidence {
                *e = secrets.scrub(e);
            }
            for p in &mut r.fix.plan {
                *p = secrets.scrub(p);
            }
            r.fix.outcome = r.fix.outcome.as_deref().map(|o| secrets.scrub(o));
        }
    }
}
