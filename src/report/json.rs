//! `--json`: schema `pd-doctor/1`, alone on stdout (see schema/pd-doctor-1.schema.json).

use serde::Serialize;

use super::Report;
use crate::model::{CheckResult, RootCause, Summary};

pub const SCHEMA: &str = "pd-doctor/1";

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: &'static str,
    root: &'a str,
    layout: &'a super::LayoutInfo,
    started_at: &'a str,
    duration_ms: u64,
    summary: Summary,
    root_causes: &'a [RootCause],
    claude_code: &'a [super::verdict::ClientVerdict],
    checks: &'a [CheckResult],
}

pub fn render(report: &Report) -> String {
    let doc = Document {
        schema: SCHEMA,
        version: env!("CARGO_PKG_VERSION"),
        root: &report.root,
        layout: &report.layout,
        started_at: &report.started_at,
        duration_ms: report.duration_ms,
        summary: report.summary(),
        root_causes: &report.root_causes,
        claude_code: &report.claude_code,
        checks: &report.results,
    };
    let mut out =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    out.push('\n');
    out
}
