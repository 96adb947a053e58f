//! The import rule of `src/` (README, "Layout of this repository"): a module imports
//! only modules of its own layer or of a layer below, and no modules import each other
//! in a loop, not even within a layer. This test reads the `use` lines and the inline
//! `crate::`, `super::`, `self::` and child-module paths of every file of `src/`, so a
//! new upward arrow or a new loop fails the day it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, highest first. A module belongs to the layer of its longest listed
/// prefix (`fixes::flow` is a layer of its own above `run`, the rest of `fixes` below).
const LAYERS: &[(&str, &[&str])] = &[
    // The command line, and the crate's property tests (test-only, they reach anywhere).
    ("cli", &["cli", "proptests"]),
    // The `--fix` and `reset` conversation: diagnose, confirm, apply, diagnose again.
    ("flow", &["fixes::flow"]),
    // One diagnosis with fresh facts.
    ("run", &["run"]),
    // Carrying out repairs (the plans themselves are data in `plan`).
    ("fixes", &["fixes"]),
    // Instances, preconditions, concurrency, isolation; the live progress line.
    ("engine", &["engine", "progress"]),
    // One module per probe kind, and the dispatch on the kind.
    ("probes", &["probes"]),
    // The outside world, read once per run.
    ("facts", &["facts"]),
    // The project tree and the files in it, as data.
    (
        "project",
        &["project", "claude_config", "dockerfile", "expand"],
    ),
    // Renderers of results.
    ("report", &["report"]),
    // What to check: the checks as data, and their loading.
    ("catalogue", &["catalogue"]),
    // The `-v` debug log.
    ("debuglog", &["debuglog"]),
    // The vocabulary every layer speaks: results, repairs as data, cause codes, probe kinds.
    ("model", &["model", "plan", "causes", "probe_kind"]),
    // Leaves: the one way to touch a file, escaping, paths, secrets.
    ("base", &["safefs", "printable", "paths", "redact"]),
];

/// Arrows that break the rule and are waiting for a fix (none today; the list began with
/// 22 when this test was written). An arrow listed here that no longer exists fails the
/// test too, so the list only shrinks.
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn no_module_imports_a_higher_layer_or_closes_a_loop() {
    let graph = graph(Path::new(env!("CARGO_MANIFEST_DIR")).join("src").as_path());
    let mut problems = Vec::new();
    for module in graph.keys() {
        if layer_of(module).is_none() {
            problems.push(format!("{module} is in no layer: add it to LAYERS"));
        }
    }
    for (_, prefixes) in LAYERS {
        for p in *prefixes {
            if !graph.contains_key(*p) {
                problems.push(format!("LAYERS names {p}, which is no module of src/"));
            }
        }
    }
    let known: BTreeSet<(&str, &str)> = KNOWN.iter().copied().collect();
    for &(from, to) in &known {
        if !graph.get(from).is_some_and(|t| t.contains(to)) {
            problems.push(format!("{from} -> {to} is gone: take it off KNOWN"));
        }
    }
    for (from, tos) in &graph {
        for to in tos {
            if known.contains(&(from.as_str(), to.as_str())) {
                continue;
            }
            if let (Some(a), Some(b)) = (layer_of(from), layer_of(to)) {
                if b < a {
                    problems.push(format!(
                        "{from} (layer {}) imports {to} (layer {}), a higher layer",
                        LAYERS[a].0, LAYERS[b].0
                    ));
                }
            }
        }
    }
    let allowed: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .map(|(from, tos)| {
            let kept = tos
                .iter()
                .filter(|to| !known.contains(&(from.as_str(), to.as_str())))
                .cloned()
                .collect();
            (from.clone(), kept)
        })
        .collect();
    for cycle in loops(&allowed) {
        problems.push(format!(
            "these modules import each other in a loop: {}",
            cycle.join(", ")
        ));
    }
    assert!(
        problems.is_empty(),
        "the import rule of src/ (README, \"Layout of this repository\"):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_reader_sees_every_kind_of_path_and_nothing_in_comments_or_strings() {
    let modules: BTreeSet<String> = ["a", "a::b", "a::c", "d", "e", "f", "g", "h", "x"]
        .map(String::from)
        .into();
    let text = r##"
        //! Talks about crate::g in a comment.
        mod b;
        pub mod c;
        use crate::{d::Thing, e};
        use super::x;
        use self::b::Other;
        /* crate::h in a block comment */
        fn f() -> &'static str {
            let _ = crate::f::call();
            let _ = c::value('a', '\'');
            "crate::h in a string"
        }
        const RAW: &str = r#"crate::h in a raw "string""#;
        #[cfg(test)]
        mod tests {
            use super::*;
            use std::{sync::Arc};
        }
    "##;
    let found = imports("a", &clean(text), &modules);
    let want: BTreeSet<String> = ["a::b", "a::c", "d", "e", "f", "x"]
        .map(String::from)
        .into();
    assert_eq!(found, want);
}

/// The layer index of `module` (0 is the highest), by its longest listed prefix.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (_, prefixes))| prefixes.iter().map(move |p| (i, *p)))
        .filter(|(_, p)| module == *p || module.starts_with(&format!("{p}::")))
        .max_by_key(|(_, p)| p.len())
        .map(|(i, _)| i)
}

/// Every module of `src/` (the crate root and the binary left out) and the modules it
/// imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = BTreeMap::new();
    collect(src, src, &mut files);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, text)| (m.clone(), imports(m, &clean(text), &modules)))
        .collect()
}

fn collect(src: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(src, &path, files);
            continue;
        }
        if path.extension().is_none_or(|x| x != "rs") || path == src.join("main.rs") {
            continue;
        }
        let rel = path.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        files.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
    }
}

/// `text` with comments, string and character literals blanked out.
fn clean(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            loop {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r' && !prev_ident && matches!(c.get(i + 1), Some('"' | '#')) {
            // r"…", r#"…"#; the `b` of br"…" is left as a harmless letter.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() && !(c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')))
            {
                j += 1;
            }
            i = j + 1 + hashes;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The modules of `modules` that the (cleaned) source of `module` names: through `use`
/// trees and inline paths rooted at `crate`, `super`, `self` or a child module it
/// declares (`mod x;`). `super` inside an inline module (`mod tests { … }`) is the
/// file's own module.
fn imports(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let c: Vec<char> = text.chars().collect();
    let own: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(String::from).collect()
    };
    let children: BTreeSet<String> = modules
        .iter()
        .filter_map(|m| {
            let rest = if module.is_empty() {
                m.as_str()
            } else {
                m.strip_prefix(&format!("{module}::"))?
            };
            (!rest.is_empty() && !rest.contains("::")).then(|| rest.to_string())
        })
        .collect();
    let mut found = BTreeSet::new();
    // Inline modules open at these brace depths.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        match c[i] {
            '{' => {
                depth += 1;
                i += 1;
                continue;
            }
            '}' => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth -= 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !ident(c[i]) || (i > 0 && ident(c[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < c.len() && ident(c[i]) {
            i += 1;
        }
        let word: String = c[start..i].iter().collect();
        if word == "mod" {
            // `mod name {` opens an inline module.
            let mut j = i;
            while j < c.len() && (c[j].is_whitespace() || ident(c[j])) {
                j += 1;
            }
            if c.get(j) == Some(&'{') {
                inline.push(depth + 1);
            }
            continue;
        }
        let after_path = start >= 2 && c[start - 1] == ':' && c[start - 2] == ':';
        let in_group = {
            let mut j = start;
            while j > 0 && c[j - 1].is_whitespace() {
                j -= 1;
            }
            j > 0 && matches!(c[j - 1], '{' | ',')
        };
        let base: Option<Vec<String>> = match word.as_str() {
            "crate" => Some(Vec::new()),
            // Inside an inline module, `super` is the file's own module.
            "super" if inline.is_empty() => Some(own[..own.len().saturating_sub(1)].to_vec()),
            "super" | "self" => Some(own.clone()),
            w if children.contains(w) => {
                let mut b = own.clone();
                b.push(w.to_string());
                Some(b)
            }
            _ => None,
        };
        let Some(base) = base else { continue };
        if after_path || (in_group && !matches!(word.as_str(), "crate" | "super" | "self")) {
            // A segment of some other path (`tokio::sync`, `use std::{sync::Arc}`).
            continue;
        }
        let (paths, end) = tree(&c, i);
        i = end;
        for tail in paths {
            let mut full = base.clone();
            for seg in tail {
                if seg == "super" {
                    full.pop();
                } else {
                    full.push(seg);
                }
            }
            // The longest prefix that is a module of src/.
            while !full.is_empty() && !modules.contains(&full.join("::")) {
                full.pop();
            }
            let target = full.join("::");
            if !target.is_empty() && target != module {
                found.insert(target);
            }
        }
    }
    found
}

/// The paths of the tree that follows a path's first segment at `i` (`::a::b`,
/// `::{a, b::c}`, `::*`), each as its segments, and where the tree ends.
fn tree(c: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let skip_ws = |i: &mut usize| {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut segs = Vec::new();
    loop {
        let mut j = i;
        skip_ws(&mut j);
        if !(c.get(j) == Some(&':') && c.get(j + 1) == Some(&':')) {
            // A bare `super` (`pub(super)`) or `self` (a method's receiver) is no path.
            return (
                if segs.is_empty() {
                    Vec::new()
                } else {
                    vec![segs]
                },
                i,
            );
        }
        j += 2;
        skip_ws(&mut j);
        match c.get(j) {
            Some('{') => {
                let mut out = Vec::new();
                j += 1;
                loop {
                    skip_ws(&mut j);
                    if c.get(j) == Some(&'}') {
                        return (out, j + 1);
                    }
                    let start = j;
                    while j < c.len() && ident(c[j]) {
                        j += 1;
                    }
                    if start == j {
                        // `*` or something else: the group's own prefix.
                        out.push(segs.clone());
                        j += 1;
                    } else {
                        let word: String = c[start..j].iter().collect();
                        let (mut subs, end) = tree(c, j);
                        j = end;
                        if subs.is_empty() {
                            subs.push(Vec::new());
                        }
                        for sub in subs {
                            let mut p = segs.clone();
                            if word != "self" {
                                p.push(word.clone());
                            }
                            p.extend(sub);
                            out.push(p);
                        }
                    }
                    // Skip `as name` and the comma.
                    while j < c.len() && !matches!(c[j], ',' | '}') {
                        j += 1;
                    }
                    if c.get(j) == Some(&',') {
                        j += 1;
                    }
                }
            }
            Some(&ch) if ident(ch) => {
                let start = j;
                while j < c.len() && ident(c[j]) {
                    j += 1;
                }
                segs.push(c[start..j].iter().collect());
                i = j;
            }
            _ => return (vec![segs], j),
        }
    }
}

/// Every loop of the graph: its strongly connected components of more than one module.
fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}
