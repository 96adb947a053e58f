//! The default output: the problems first, one entry per root cause (what is wrong, what
//! else it explains, the evidence, the command or `--fix` that repairs it), then the
//! checklist with one line for a section where all is well and only the checks that are
//! not ok under the others, a summary table and what to do next. `-v` lists every check
//! with its evidence.

use std::fmt::Write;

use comfy_table::{presets, Cell, CellAlignment, Table};
use owo_colors::{OwoColorize, Style};

use super::verdict::{ClientVerdict, Expected};
use super::Report;
use crate::catalogue::Catalogue;
use crate::model::{CheckResult, Status, Summary};

/// Evidence lines shown under a problem before the rest is left to `-v`.
const EVIDENCE_LINES: usize = 6;

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
    client(&mut out, &p, &report.claude_code);
    if !report.root_causes.is_empty() {
        problems(&mut out, &p, report, opts.verbose);
    }
    // Notes are listed under Notes, not counted with the checks.
    let checks: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| !is_note(r, catalogue))
        .collect();
    let mut sections: Vec<&str> = checks.iter().map(|r| r.section.as_str()).collect();
    sections.dedup();
    for section in sections {
        let results: Vec<&CheckResult> = checks
            .iter()
            .copied()
            .filter(|r| r.section == section)
            .collect();
        let title = format!("{section} {}", catalogue.section_title(section));
        if opts.verbose {
            let _ = writeln!(
                out,
                "\n{}",
                p.paint(&title, Style::new().bold().underline())
            );
            let width = id_width(results.iter().map(|r| r.id.as_str()));
            for r in results {
                line(&mut out, &p, r, width, true);
            }
        } else {
            compact_section(&mut out, &p, &title, &results);
        }
    }
    notes(&mut out, &p, report, catalogue);
    out.push('\n');
    out.push_str(&table(&checks, catalogue));
    out.push('\n');
    out.push_str(&verdict(&p, report));
    out
}

/// The ok results of checks whose ok is advice (`note = true` in the catalogue): each
/// once, with its hint.
fn notes(out: &mut String, p: &Painter, report: &Report, catalogue: &Catalogue) {
    let notes: Vec<&CheckResult> = report
        .results
        .iter()
        .filter(|r| is_note(r, catalogue))
        .collect();
    if notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", p.paint("Notes", Style::new().bold()));
    let width = id_width(notes.iter().map(|r| r.id.as_str()));
    for r in notes {
        mark_line(out, p, r.status, &r.id, width, &r.message);
        repair(out, p, r.hint.as_deref(), &[]);
    }
}

/// An ok result of a check whose ok is advice (`note = true`).
fn is_note(r: &CheckResult, catalogue: &Catalogue) -> bool {
    r.status == Status::Ok && catalogue.get(&r.check).is_some_and(|d| d.note)
}

/// What `claude mcp list` will show, where it is not "✔ Connected": each such agent and
/// server with the root cause beside it, so that the line a user saw in Claude Code is
/// found here. Nothing when every pair connects.
fn client(out: &mut String, p: &Painter, verdicts: &[ClientVerdict]) {
    let odd: Vec<&ClientVerdict> = verdicts
        .iter()
        .filter(|v| {
            !matches!(v.expected, Expected::Connected | Expected::Unknown) || v.because.is_some()
        })
        .collect();
    if odd.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        p.paint(
            "What Claude Code will show (claude mcp list in each container)",
            Style::new().bold().underline()
        )
    );
    let width = |f: fn(&ClientVerdict) -> usize| odd.iter().map(|v| f(v)).max().unwrap_or(0);
    let agent_w = width(|v| v.agent.chars().count());
    let server_w = width(|v| v.server.chars().count());
    let shown_w = width(|v| v.expected.shown().chars().count());
    for v in &odd {
        let style = match v.expected {
            Expected::Failed | Expected::PendingApproval | Expected::NotRunning => {
                Style::new().red().bold()
            }
            _ => Style::new().yellow(),
        };
        let shown = format!("{:shown_w$}", v.expected.shown());
        let because = match (&v.because, &v.cause) {
            (Some(id), Some(cause)) => format!("  <- {id} ({cause})"),
            (Some(id), None) => format!("  <- {id}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:agent_w$}  {:server_w$}  {}{because}",
            v.agent,
            v.server,
            p.paint(&shown, style)
        );
    }
    let connected = verdicts
        .iter()
        .filter(|v| v.expected == Expected::Connected && v.because.is_none())
        .count();
    if connected > 0 {
        let _ = writeln!(
            out,
            "  {}",
            p.paint(
                &format!(
                    "{}: {}",
                    super::counted(connected, "other pair", "other pairs"),
                    Expected::Connected.shown()
                ),
                Style::new().dimmed()
            )
        );
    }
}

/// The id column: as wide as the longest id listed, within reason.
fn id_width<'a>(ids: impl Iterator<Item = &'a str>) -> usize {
    ids.map(|id| id.chars().count()).max().unwrap_or(0).min(34)
}

/// A mark, an id in its column, and the text.
fn mark_line(out: &mut String, p: &Painter, status: Status, id: &str, width: usize, text: &str) {
    let id = format!("{id:width$}");
    let _ = writeln!(
        out,
        "  {} {}  {text}",
        p.mark(status),
        p.paint(&id, Style::new().bold())
    );
}

/// One entry per root cause: its line, what it explains, its evidence, the hint and
/// the repair.
fn problems(out: &mut String, p: &Painter, report: &Report, verbose: bool) {
    let title = match report.root_causes.len() {
        1 => "Problems: 1 at the root".to_string(),
        n => format!("Problems: {n} at the root"),
    };
    let _ = writeln!(
        out,
        "\n{}",
        p.paint(&title, Style::new().bold().underline())
    );
    let width = id_width(report.root_causes.iter().map(|rc| rc.id.as_str()));
    for rc in &report.root_causes {
        let cause = p.paint(&format!("({})", rc.cause), Style::new().dimmed());
        let text = format!("{} {cause}", rc.message);
        mark_line(out, p, rc.status, &rc.id, width, &text);
        if !rc.explains.is_empty() {
            let _ = writeln!(
                out,
                "      {}",
                p.paint(
                    &format!(
                        "and {} more: {}",
                        rc.explains.len(),
                        collapse(&rc.explains).join(", ")
                    ),
                    Style::new().yellow()
                )
            );
        }
        let evidence = report.result(&rc.id).map_or(&[][..], |r| &r.evidence[..]);
        let shown = if verbose {
            evidence.len()
        } else {
            evidence.len().min(EVIDENCE_LINES)
        };
        for e in &evidence[..shown] {
            let _ = writeln!(
                out,
                "      {}",
                p.paint(&format!("│ {e}"), Style::new().dimmed())
            );
        }
        if shown < evidence.len() {
            let more = format!("│ … {} more lines (pd-doctor -v)", evidence.len() - shown);
            let _ = writeln!(out, "      {}", p.paint(&more, Style::new().dimmed()));
        }
        repair(out, p, rc.hint.as_deref(), &rc.fix.plan);
    }
}

/// The manual command, then what `--fix` would do.
fn repair(out: &mut String, p: &Painter, hint: Option<&str>, plan: &[String]) {
    if let Some(h) = hint {
        let _ = writeln!(
            out,
            "      {} {h}",
            p.paint("→", Style::new().cyan().bold())
        );
    }
    for step in plan {
        let _ = writeln!(
            out,
            "      {} {step}",
            p.paint("fix:", Style::new().green())
        );
    }
}

/// Instance ids of one check grouped into one, with `*` where they differ:
/// `container.reach[qa,git]`, `container.reach[bu,git]` → `container.reach[*,git]`.
fn collapse(ids: &[String]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<Vec<&str>>)> = Vec::new();
    for id in ids {
        let (check, subject) = match id.split_once('[') {
            Some((c, rest)) => (c, rest.trim_end_matches(']').split(',').collect()),
            None => (id.as_str(), Vec::new()),
        };
        match groups.iter_mut().find(|(c, _)| *c == check) {
            Some((_, members)) => members.push(subject),
            None => groups.push((check, vec![subject])),
        }
    }
    groups
        .into_iter()
        .map(|(check, members)| {
            let first = &members[0];
            if first.is_empty() {
                return check.to_string();
            }
            let parts: Vec<&str> = (0..first.len())
                .map(|k| {
                    if members.iter().all(|m| m.get(k) == first.get(k)) {
                        first[k]
                    } else {
                        "*"
                    }
                })
                .collect();
            format!("{check}[{}]", parts.join(","))
        })
        .collect()
}

/// A section in the default view: one line when every check in it is ok; else its
/// problems and repairs one line each, its skipped checks one line per reason, and a
/// count of the rest.
fn compact_section(out: &mut String, p: &Painter, title: &str, results: &[&CheckResult]) {
    let notes = results.iter().filter(|r| r.is_note()).count();
    let ok = results.iter().filter(|r| r.status == Status::Ok).count();
    if ok == results.len() && notes == 0 {
        let checks = if ok == 1 { "check" } else { "checks" };
        let _ = writeln!(
            out,
            "\n{} {}",
            p.mark(Status::Ok),
            p.paint(&format!("{title} {ok} {checks}"), Style::new().bold())
        );
        return;
    }
    let _ = writeln!(out, "\n{}", p.paint(title, Style::new().bold().underline()));
    let listed = results
        .iter()
        .filter(|r| r.is_note() || !matches!(r.status, Status::Ok | Status::Skip));
    let width = id_width(listed.map(|r| r.id.as_str()));
    let mut skip_groups: Vec<(&str, Vec<String>)> = Vec::new();
    for r in results.iter().filter(|r| r.status == Status::Skip) {
        match skip_groups.iter_mut().find(|(m, _)| *m == r.message) {
            Some((_, ids)) => ids.push(r.id.clone()),
            None => skip_groups.push((&r.message, vec![r.id.clone()])),
        }
    }
    let mut skips_shown = 0;
    for r in results {
        match r.status {
            Status::Ok if r.is_note() => {
                line(out, p, r, width, false);
                repair(out, p, r.hint.as_deref(), &[]);
            }
            Status::Ok => {}
            Status::Skip => {
                // Each reason once, where its first check stands.
                let next = skip_groups.get(skips_shown);
                if let Some((reason, ids)) = next.filter(|(_, ids)| ids[0] == r.id) {
                    let _ = writeln!(
                        out,
                        "  {} {}  {}",
                        p.mark(Status::Skip),
                        collapse(ids).join(", "),
                        p.paint(&format!("skipped: {reason}"), Style::new().dimmed())
                    );
                    skips_shown += 1;
                }
            }
            _ => line(out, p, r, width, false),
        }
    }
    let ok = ok - notes;
    if ok > 0 {
        let more = if ok == 1 {
            "1 other check ok".to_string()
        } else {
            format!("{ok} other checks ok")
        };
        let _ = writeln!(out, "  {} {}", p.mark(Status::Ok), more);
    }
}

/// One check. `full`: with its evidence, hint and repair (the `-v` view); otherwise one
/// line, with what was done when it was repaired: the Problems block has the rest.
fn line(out: &mut String, p: &Painter, r: &CheckResult, width: usize, full: bool) {
    let cause = match &r.explained_by {
        Some(root) => format!("({}; explained by {root})", r.cause),
        None => format!("({})", r.cause),
    };
    let message = match r.status {
        Status::Skip => format!("skipped: {}", r.message),
        Status::Ok if !r.is_note() => r.message.clone(),
        Status::Fixed => format!(
            "{} {}",
            r.message,
            p.paint("(fixed)", Style::new().green().bold())
        ),
        _ => format!("{} {}", r.message, p.paint(&cause, Style::new().dimmed())),
    };
    mark_line(out, p, r.status, &r.id, width, &message);
    if full {
        for e in &r.evidence {
            let _ = writeln!(
                out,
                "      {}",
                p.paint(&format!("│ {e}"), Style::new().dimmed())
            );
        }
    }
    if let Some(outcome) = &r.fix.outcome {
        let label = if r.status == Status::Fixed {
            "fixed:"
        } else {
            "repair:"
        };
        let _ = writeln!(
            out,
            "      {} {outcome}",
            p.paint(label, Style::new().green())
        );
    }
    if full && (r.is_problem() || r.is_note()) {
        let plan: &[String] = if r.fix.outcome.is_none() {
            &r.fix.plan
        } else {
            &[]
        };
        repair(out, p, r.hint.as_deref(), plan);
    }
}

fn table(checks: &[&CheckResult], catalogue: &Catalogue) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners());
    t.set_header(vec!["section", "ok", "warn", "fail", "skip", "fixed"]);
    let mut sections: Vec<&str> = checks.iter().map(|r| r.section.as_str()).collect();
    sections.dedup();
    let row = |name: String, s: &Summary| {
        let mut cells = vec![Cell::new(name)];
        for n in [s.ok, s.warn, s.fail, s.skip, s.fixed] {
            cells.push(Cell::new(n).set_alignment(CellAlignment::Right));
        }
        cells
    };
    for section in sections {
        let s = Summary::of(checks.iter().copied().filter(|r| r.section == section));
        t.add_row(row(
            format!("{section} {}", catalogue.section_title(section)),
            &s,
        ));
    }
    t.add_row(row("total".into(), &Summary::of(checks.iter().copied())));
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
    // The counts that are not zero, as "2 failed, 1 warning, 3 skipped".
    let tally = |parts: &[(usize, &str, &str)]| {
        parts
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many)| super::counted(*n, one, many))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let warnings = (s.warn, "warning", "warnings");
    let skipped = (s.skip, "skipped", "skipped");
    let mut out = if s.fail > 0 {
        p.paint(
            &format!(
                "✗ {} ({took})",
                tally(&[(s.fail, "failed", "failed"), warnings, skipped])
            ),
            Style::new().red().bold(),
        )
    } else if s.warn > 0 {
        p.paint(
            &format!("! no failures, {} ({took})", tally(&[warnings, skipped])),
            Style::new().yellow().bold(),
        )
    } else if s.ok + s.fixed == 0 && s.skip > 0 {
        // Every check skipped is not a clean bill of health: nothing was looked at.
        p.paint(
            &format!("! nothing could be checked: {} ({took})", tally(&[skipped])),
            Style::new().yellow().bold(),
        )
    } else if s.skip > 0 {
        p.paint(
            &format!("✓ no problems found, {} ({took})", tally(&[skipped])),
            Style::new().green().bold(),
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

#[cfg(test)]
mod tests {
    use super::collapse;

    #[test]
    fn instances_of_one_check_collapse_where_they_differ() {
        let ids: Vec<String> = [
            "container.reach[qa,git]",
            "server.oauth[git]",
            "container.reach[bu,git]",
            "container.reach[tu_ui,git]",
            "config.isolation",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            collapse(&ids),
            [
                "container.reach[*,git]",
                "server.oauth[git]",
                "config.isolation"
            ]
        );
        let two = [
            "config.marker[qa,qms]".to_string(),
            "config.marker[bu,git]".to_string(),
        ];
        assert_eq!(collapse(&two), ["config.marker[*,*]"]);
    }
}
