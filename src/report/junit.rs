//! `--format junit`: one testsuite per primer section, one testcase per check instance;
//! failures carry cause, evidence and hint, skips their reason, warnings go to system-out.
//! The XML, its escaping and the characters XML forbids are quick-junit's business.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::Report;
use crate::catalogue::Catalogue;
use crate::model::{CheckResult, Status};

fn details(r: &CheckResult) -> String {
    let mut text = r.evidence.join("\n");
    if let Some(root) = &r.explained_by {
        text.push_str("\nexplained by: ");
        text.push_str(root);
    }
    if let Some(h) = &r.hint {
        text.push_str("\nhint: ");
        text.push_str(h);
    }
    text
}

fn case(r: &CheckResult) -> TestCase {
    let status = match r.status {
        // A warning passes; its text goes to system-out below.
        Status::Ok | Status::Fixed | Status::Warn => TestCaseStatus::success(),
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type(&r.cause)
                .set_message(&r.message)
                .set_description(details(r));
            s
        }
        Status::Skip => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(&r.message);
            s
        }
    };
    let mut case = TestCase::new(super::title(r), status);
    case.set_classname(&r.check)
        .set_time(Duration::from_millis(r.duration_ms));
    if r.status == Status::Warn {
        case.set_system_out(format!("warn ({}): {}\n{}", r.cause, r.message, details(r)));
    }
    case
}

pub fn render(report: &Report, catalogue: &Catalogue) -> String {
    let mut doc = quick_junit::Report::new("pd-doctor");
    doc.set_time(Duration::from_millis(report.duration_ms));
    let mut sections: Vec<&str> = report.results.iter().map(|r| r.section.as_str()).collect();
    sections.dedup();
    for section in sections {
        let mut suite = TestSuite::new(format!("{section} {}", catalogue.section_title(section)));
        suite.add_test_cases(
            report
                .results
                .iter()
                .filter(|r| r.section == section)
                .map(case),
        );
        doc.add_test_suite(suite);
    }
    doc.to_string()
        .unwrap_or_else(|e| format!("<!-- pd-doctor: cannot write JUnit XML: {e} -->\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FixReport, Subject};

    fn result(id: &str, status: Status, message: &str) -> CheckResult {
        CheckResult {
            id: id.into(),
            check: id.into(),
            section: "8.1".into(),
            subject: Subject::default(),
            status,
            cause: "cause".into(),
            message: message.into(),
            evidence: vec!["seen \x1b[31mred\x1b[0m & <b>".into()],
            hint: None,
            fix: FixReport::default(),
            duration_ms: 1500,
            scope: None,
            plan: None,
            explained_by: None,
        }
    }

    fn report(results: Vec<CheckResult>) -> Report {
        Report {
            layout: Default::default(),
            root_causes: Vec::new(),
            claude_code: Vec::new(),
            root: "/r".into(),
            started_at: String::new(),
            duration_ms: 2000,
            results,
        }
    }

    #[test]
    fn forbidden_characters_never_reach_the_xml_and_counts_add_up() {
        let report = report(vec![
            result("a", Status::Fail, "bell \x07 and \x00 nul \"q\" <x>"),
            result("b", Status::Skip, "skipped"),
            result("c", Status::Warn, "warned"),
            result("d", Status::Ok, "fine"),
        ]);
        let xml = render(&report, &Catalogue::builtin());
        assert!(!xml
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')));
        let back = quick_junit::Report::deserialize_from_str(&xml).expect("well-formed XML");
        assert_eq!(
            (back.tests, back.failures, back.skipped),
            (4, 1, 1),
            "{xml}"
        );
        assert!(
            xml.contains("&lt;x&gt;") && xml.contains("&amp; &lt;b&gt;"),
            "{xml}"
        );
    }

    #[test]
    fn a_per_project_finding_about_one_server_names_it() {
        let mut one = result("config.mcp_json", Status::Fail, "git points at localhost");
        one.subject = Subject::server("git");
        let xml = render(&report(vec![one]), &Catalogue::builtin());
        assert!(xml.contains("name=\"config.mcp_json (git)\""), "{xml}");
    }
}
