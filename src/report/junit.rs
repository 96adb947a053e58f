//! `--format junit`: one testsuite per primer section, one testcase per check instance;
//! failures carry cause, evidence and hint, skips their reason, warnings go to system-out.

use std::fmt::Write;

use super::Report;
use crate::catalogue::Catalogue;
use crate::model::{CheckResult, Status};

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn details(r: &CheckResult) -> String {
    let mut text = r.evidence.join("\n");
    if let Some(root) = &r.explained_by {
        let _ = write!(text, "\nexplained by: {root}");
    }
    if let Some(h) = &r.hint {
        let _ = write!(text, "\nhint: {h}");
    }
    text
}

pub fn render(report: &Report, catalogue: &Catalogue) -> String {
    let s = report.summary();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"pd-doctor\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\">",
        report.results.len(),
        s.fail,
        s.skip,
        secs(report.duration_ms)
    );
    let mut sections: Vec<&str> = report.results.iter().map(|r| r.section.as_str()).collect();
    sections.dedup();
    for section in sections {
        let cases: Vec<&CheckResult> = report
            .results
            .iter()
            .filter(|r| r.section == section)
            .collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{} {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            esc(section),
            esc(catalogue.section_title(section)),
            cases.len(),
            cases.iter().filter(|r| r.status == Status::Fail).count(),
            cases.iter().filter(|r| r.status == Status::Skip).count(),
        );
        for r in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                esc(&r.check),
                esc(&r.id),
                secs(r.duration_ms)
            );
            match r.status {
                Status::Ok | Status::Fixed => out.push_str("/>\n"),
                Status::Fail => {
                    let _ = write!(
                        out,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                        esc(&r.cause),
                        esc(&r.message),
                        esc(&details(r))
                    );
                }
                Status::Skip => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        esc(&r.message)
                    );
                }
                Status::Warn => {
                    let _ = write!(
                        out,
                        ">\n      <system-out>warn ({}): {}\n{}</system-out>\n    </testcase>\n",
                        esc(&r.cause),
                        esc(&r.message),
                        esc(&details(r))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
