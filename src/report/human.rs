//! The default output: checklist sections, one line per check with a mark, evidence and
//! a hint under every problem, a summary table and what to do next.

use std::fmt::Write;

use comfy_table::{presets, Cell, CellAlignment, Table};
use owo_colors::{OwoColorize, Style};

use super::Report;
use crate::catalogue::Catalogue;
use crate::model::{CheckResult, Status, Summary};

pub struct Options {
    pub verbose: bool,
    pub color: bool,
}

struct Painter(bool);

impl Painter {
    fn paint(&self, text: &str, style: Style) -> String {
        if self.0 {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn mark(&self, status: Status) -> String {
        let (mark, style) = match status {
            Status::Ok => ("✓", Style::new().green()),
            Status::Fixed => ("✓", Style::new().green().bold()),
            Status::Warn => ("!", Style::new().yellow().bold()),
            Status::Fail => ("✗", Style::new().red().bold()),
            Status::Skip => ("-", Style::new().dimmed()),
        };
        self.paint(mark, style)
    }
}

pub fn render(report: &Report, catalogue: &Catalogue, header: &str, opts: &Options) -> String {
    let p = Painter(opts.color);
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.paint(header, Style::new().bold()));
    let width = report
        .results
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(0)
        .min(34);
    let mut section = "";
    for r in &report.results {
        if r.section != section {
            section = &r.section;
            let title = format!("{} {}", r.section, catalogue.section_title(&r.section));
            let _ = writeln!(
                out,
                "\n{}",
                p.paint(&title, Style::new().bold().underline())
            );
        }
        line(&mut out, &p, r, width, opts.verbose);
    }
    out.push('\n');
    out.push_str(&table(report, catalogue));
    out.push('\n');
    out.push_str(&verdict(&p, report));
    out
}

fn line(out: &mut String, p: &Painter, r: &CheckResult, width: usize, verbose: bool) {
    let message = match r.status {
        Status::Skip => format!("skipped: {}", r.message),
        Status::Ok => r.message.clone(),
        Status::Fixed => format!(
            "{} {}",
            r.message,
            p.paint("(fixed)", Style::new().green().bold())
        ),
        _ => format!(
            "{} {}",
            r.message,
            p.paint(&format!("({})", r.cause), Style::new().dimmed())
        ),
    };
    let id = format!("{:width$}", r.id);
    let _ = writeln!(
        out,
        "  {} {}  {}",
        p.mark(r.status),
        p.paint(&id, Style::new().bold()),
        message
    );
    let problem = matches!(r.status, Status::Warn | Status::Fail);
    if problem || verbose {
        for e in &r.evidence {
            let _ = writeln!(
                out,
                "      {}",
                p.paint(&format!("│ {e}"), Style::new().dimmed())
            );
        }
    }
    if let Some(outcome) = &r.fix.outcome {
        let _ = writeln!(
            out,
            "      {} {outcome}",
            p.paint("fixed:", Style::new().green())
        );
    }
    if problem {
        if let Some(h) = &r.hint {
            let _ = writeln!(
                out,
                "      {} {h}",
                p.paint("→", Style::new().cyan().bold())
            );
        }
        if r.fix.outcome.is_none() {
            for step in &r.fix.plan {
                let _ = writeln!(
                    out,
                    "      {} {step}",
                    p.paint("fix:", Style::new().green())
                );
            }
        }
    }
}

fn table(report: &Report, catalogue: &Catalogue) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners());
    t.set_header(vec!["section", "ok", "warn", "fail", "skip", "fixed"]);
    let mut sections: Vec<&str> = report.results.iter().map(|r| r.section.as_str()).collect();
    sections.dedup();
    let row = |name: String, s: &Summary| {
        let mut cells = vec![Cell::new(name)];
        for n in [s.ok, s.warn, s.fail, s.skip, s.fixed] {
            cells.push(Cell::new(n).set_alignment(CellAlignment::Right));
        }
        cells
    };
    for section in sections {
        let s = Summary::of(report.results.iter().filter(|r| r.section == section));
        t.add_row(row(
            format!("{section} {}", catalogue.section_title(section)),
            &s,
        ));
    }
    t.add_row(row("total".into(), &report.summary()));
    format!("{t}\n")
}

fn verdict(p: &Painter, report: &Report) -> String {
    let s = report.summary();
    let fixable = report
        .results
        .iter()
        .filter(|r| r.fix.available && r.fix.applied != Some(true))
        .filter(|r| matches!(r.status, Status::Fail | Status::Warn))
        .count();
    let took = format!("{:.1} s", report.duration_ms as f64 / 1000.0);
    let mut out = if s.fail > 0 {
        p.paint(
            &format!(
                "✗ {} failed, {} warnings, {} skipped ({took})",
                s.fail, s.warn, s.skip
            ),
            Style::new().red().bold(),
        )
    } else if s.warn > 0 {
        p.paint(
            &format!(
                "! no failures, {} warnings, {} skipped ({took})",
                s.warn, s.skip
            ),
            Style::new().yellow().bold(),
        )
    } else {
        p.paint(
            &format!("✓ no problems found ({took})"),
            Style::new().green().bold(),
        )
    };
    out.push('\n');
    if fixable > 0 {
        let _ = writeln!(
            out,
            "{fixable} of them can be fixed automatically: pd-doctor --fix --dry-run shows how"
        );
    }
    if s.fail + s.warn > 0 {
        out.push_str("pd-doctor explain CHECK_ID tells what a check looks at and why\n");
    }
    out
}
