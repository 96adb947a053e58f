//! `--format github`: GitHub Actions workflow commands, so a CI job's problems show as
//! annotations. One `::error` per failed check and one `::warning` per warning, titled
//! with the instance id, then a `::notice` with the summary. Values are escaped as the
//! runner decodes them: in data `%`, CR and LF; in property values also `:` and `,`.

use std::fmt::Write;

use super::Report;
use crate::model::{CheckResult, Status};

/// The message part of a workflow command (after `::`).
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A property value of a workflow command (`title=...`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn message(r: &CheckResult) -> String {
    let mut text = format!("{} ({})", r.message, r.cause);
    for e in &r.evidence {
        let _ = write!(text, "\n│ {e}");
    }
    if let Some(h) = &r.hint {
        let _ = write!(text, "\n→ {h}");
    }
    for step in &r.fix.plan {
        let _ = write!(text, "\nfix: {step}");
    }
    text
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let command = match r.status {
            Status::Fail => "error",
            Status::Warn => "warning",
            Status::Ok | Status::Skip | Status::Fixed => continue,
        };
        let _ = writeln!(
            out,
            "::{command} title={}::{}",
            escape_property(&super::title(r)),
            escape_data(&message(r))
        );
    }
    let s = report.summary();
    let _ = writeln!(
        out,
        "::notice title=pd-doctor::{}",
        escape_data(&format!(
            "{} failed, {}, {} skipped, {} ok, {} fixed ({:.1} s)",
            s.fail,
            super::counted(s.warn, "warning", "warnings"),
            s.skip,
            s.ok,
            s.fixed,
            report.duration_ms as f64 / 1000.0
        ))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FixReport, Subject};

    #[test]
    fn data_escapes_percent_cr_and_lf_only() {
        assert_eq!(
            escape_data("100% done\r\nnext: a,b"),
            "100%25 done%0D%0Anext: a,b"
        );
        // `%` first: an escape in the text is not decoded by the runner into a newline.
        assert_eq!(escape_data("%0A"), "%250A");
    }

    #[test]
    fn properties_also_escape_colon_and_comma() {
        assert_eq!(
            escape_property("container.reach[qa,git]"),
            "container.reach[qa%2Cgit]"
        );
        assert_eq!(escape_property("a::b%\n"), "a%3A%3Ab%25%0A");
    }

    #[test]
    fn one_command_per_problem_then_the_summary() {
        let result = |id: &str, status| CheckResult {
            id: id.into(),
            check: id.into(),
            section: "8.1".into(),
            subject: Subject::default(),
            status,
            cause: "refused".into(),
            message: "connection refused: 50% of tries".into(),
            evidence: vec!["POST http://h:1/mcp".into()],
            hint: Some("start it:\nscripts/start.sh".into()),
            fix: FixReport::default(),
            duration_ms: 5,
            scope: None,
            plan: None,
            explained_by: None,
        };
        let report = Report {
            layout: Default::default(),
            root_causes: Vec::new(),
            claude_code: Vec::new(),
            root: "/r".into(),
            started_at: String::new(),
            duration_ms: 1234,
            results: vec![
                result("server.mcp[qms]", Status::Fail),
                result("a", Status::Ok),
                result("b,c", Status::Warn),
                result("d", Status::Skip),
            ],
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            "::error title=server.mcp[qms]::connection refused: 50%25 of tries (refused)%0A│ POST http://h:1/mcp%0A→ start it:%0Ascripts/start.sh"
        );
        assert!(lines[1].starts_with("::warning title=b%2Cc::"), "{text}");
        // A finding of a per-project check about one server names it.
        let mut one = result("config.mcp_json", Status::Fail);
        one.subject = Subject::server("git");
        let text = render(&Report {
            results: vec![one],
            ..report
        });
        assert!(
            text.starts_with("::error title=config.mcp_json (git)::"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "::notice title=pd-doctor::1 failed, 1 warning, 1 skipped, 1 ok, 0 fixed (1.2 s)"
        );
    }
}
