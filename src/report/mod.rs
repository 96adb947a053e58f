//! Renderers: every format reads the same [`Report`]; none of them probes anything.

pub mod github;
pub mod human;
pub mod json;
pub mod junit;

use crate::model::{CheckResult, Status, Summary};
use crate::printable;
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

    /// The last line of defence: every secret value the run has seen is replaced, and
    /// every control character escaped, in every text a renderer may print.
    pub fn scrub(&mut self, secrets: &SecretSet) {
        let line = |t: &str| printable::line(&secrets.scrub(t)).into_owned();
        self.root = line(&self.root);
        for r in &mut self.results {
            r.id = line(&r.id);
            for name in [&mut r.subject.agent, &mut r.subject.server]
                .into_iter()
                .flatten()
            {
                *name = line(name);
            }
            r.message = line(&r.message);
            r.hint = r
                .hint
                .as_deref()
                .map(|h| printable::block(&secrets.scrub(h)).into_owned());
            for text in r.evidence.iter_mut().chain(&mut r.fix.plan) {
                *text = line(text);
            }
            r.fix.outcome = r.fix.outcome.as_deref().map(line);
        }
    }
}
