//! What an entrypoint script removes of Claude Code's config dir at every start. Pipe
//! Dream once shipped one that deleted `projects/` and `history.jsonl` (the agents lost
//! their memory) and one that deleted `debug/` (Claude Code then crashed with ENOENT).
//! A legitimate entrypoint clears caches, markers and the MCP keys of `.claude.json`,
//! and removes `debug/` only to make it again.
//!
//! The script is untrusted text and is never run: its lines are split into words the
//! way a shell would (quotes, `$VAR`, `${VAR:-default}`, `~`, `{a,b}`, globs), its own
//! plain assignments followed, and every `rm`, `rmdir`, `unlink`, `find -delete` and
//! bare `> file` truncation whose path falls in the config dir is matched against what
//! Claude Code keeps there.

use std::collections::BTreeMap;

/// The config dir, wherever the script names it.
const CFG: char = '\u{4}';
/// `$HOME` or `~`.
const HOME: char = '\u{5}';
/// An unquoted `*` and `?`.
const STAR: char = '\u{1}';
const ONE: char = '\u{2}';
/// Anything the script cannot tell before it runs (`$1`, `$(...)`, unknown variables).
const UNKNOWN: char = '\u{3}';
/// Unquoted `{`, `,` and `}`, for brace expansion.
const OPEN: char = '\u{6}';
const COMMA: char = '\u{7}';
const CLOSE: char = '\u{8}';

/// At most this many lines are read, and words per command kept.
const MAX_LINES: usize = 5_000;
const MAX_WORDS: usize = 200;
/// A word, or a variable's value, grows no longer than this; a path component longer
/// than a file name can be matches nothing; `${...}` nests this deep at most; a brace
/// expansion makes this many words at most.
const MAX_WORD: usize = 4096;
const MAX_NAME: usize = 255;
const MAX_DEPTH: u8 = 8;
const MAX_BRACES: usize = 64;

/// What Claude Code keeps in its config dir, and what losing it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lost {
    /// `projects/` and `history.jsonl`: the agent's memory and command history.
    Memory,
    /// `debug/`: Claude Code crashes with ENOENT where it is missing.
    Debug,
    /// `.claude.json` and `.credentials.json`: the login, trust and approvals.
    Login,
}

/// The entries a start must not remove: name, what is lost, whether a folder.
pub const KEPT: [(&str, Lost, bool); 5] = [
    ("projects", Lost::Memory, true),
    ("history.jsonl", Lost::Memory, false),
    ("debug", Lost::Debug, true),
    (".claude.json", Lost::Login, false),
    (".credentials.json", Lost::Login, false),
];

/// One removal of what Claude Code keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// 1-based, of the line the command starts on.
    pub line: usize,
    /// The line as written (trimmed; not yet made printable).
    pub text: String,
    /// The path as the script resolves it, the config dir spelled `config_dir`.
    pub path: String,
    /// The entries it removes (`projects`, `history.jsonl`, ...).
    pub entries: Vec<&'static str>,
    pub lost: Vec<Lost>,
}

/// The removals in `script` of what Claude Code keeps in its config dir, known to the
/// script as `$CLAUDE_CONFIG_DIR`, `~/.claude` or any of `config_dirs` (the mount
/// target, the container's `CLAUDE_CONFIG_DIR`). A `debug/` made again later in the
/// script (`mkdir -p`) is not a removal.
pub fn scan(script: &str, config_dirs: &[&str]) -> Vec<Removal> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut found: Vec<Removal> = Vec::new();
    let mut made: Vec<usize> = Vec::new();
    // The script's own control characters cannot pass for the marks used here.
    let script: String = script
        .chars()
        .map(|c| {
            if ('\u{1}'..='\u{8}').contains(&c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    for (line, text) in logical_lines(&script) {
        for cmd in commands(&text, &vars) {
            let Some(at) = program_at(&cmd.words) else {
                // Only assignments: the script's own variables.
                for word in &cmd.words {
                    if let Some((name, value)) = assignment(word) {
                        if value.len() <= MAX_WORD {
                            vars.insert(name.to_string(), value.to_string());
                        }
                    }
                }
                continue;
            };
            let program = cmd.words[at].rsplit('/').next().unwrap_or("");
            let args: Vec<String> = cmd.words[at + 1..].iter().flat_map(|w| braces(w)).collect();
            match program {
                "export" | "readonly" | "local" | "declare" | "typeset" => {
                    for word in &args {
                        if let Some((name, value)) = assignment(word) {
                            if value.len() <= MAX_WORD {
                                vars.insert(name.to_string(), value.to_string());
                            }
                        }
                    }
                }
                "rm" | "rmdir" | "unlink" => {
                    let mut options = true;
                    for arg in &args {
                        if options && arg == "--" {
                            options = false;
                            continue;
                        }
                        if options && arg.starts_with('-') && arg.len() > 1 {
                            continue;
                        }
                        if let Some(rel) = in_config(arg, config_dirs) {
                            note(&mut found, line, &text, &rel, removed(&rel));
                        }
                    }
                }
                "find" => {
                    if let Some((rel, entries)) = find_removes(&args, config_dirs) {
                        note(&mut found, line, &text, &rel, entries);
                    }
                }
                "mkdir" | "install" => {
                    for arg in args.iter().filter(|a| !a.starts_with('-')) {
                        if let Some(rel) = in_config(arg, config_dirs) {
                            if rel == "debug" || rel.starts_with("debug/") {
                                made.push(line);
                            }
                        }
                    }
                }
                "" | ":" | "true" => truncations(&cmd, line, &text, config_dirs, &mut found),
                _ => {}
            }
            if cmd.words[at] == "cat" && args.first().is_some_and(|a| a == "/dev/null") {
                truncations(&cmd, line, &text, config_dirs, &mut found);
            }
        }
    }
    // `debug/` removed and made again after it: what the Hub's own entrypoint does.
    for removal in &mut found {
        if made.iter().any(|m| *m > removal.line) {
            let keep: Vec<usize> = (0..removal.entries.len())
                .filter(|i| removal.entries[*i] != "debug")
                .collect();
            removal.entries = keep.iter().map(|i| removal.entries[*i]).collect();
        }
        removal.lost = KEPT
            .iter()
            .filter(|(name, _, _)| removal.entries.contains(name))
            .map(|(_, lost, _)| *lost)
            .collect();
        removal.lost.dedup();
        removal.path = shown(&removal.path, config_dirs);
    }
    found.retain(|r| !r.entries.is_empty());
    found
}

fn note(found: &mut Vec<Removal>, line: usize, text: &str, rel: &str, entries: Vec<&'static str>) {
    if entries.is_empty() {
        return;
    }
    found.push(Removal {
        line,
        text: text.trim().to_string(),
        path: if rel.is_empty() {
            CFG.to_string()
        } else {
            format!("{CFG}/{rel}")
        },
        entries,
        lost: Vec::new(),
    });
}

/// `> FILE` with no command before it (or `:`, `true`, `cat /dev/null`): the file
/// emptied.
fn truncations(
    cmd: &Command,
    line: usize,
    text: &str,
    config_dirs: &[&str],
    found: &mut Vec<Removal>,
) {
    for target in &cmd.truncated {
        if let Some(rel) = in_config(target, config_dirs) {
            let entries = removed(&rel)
                .into_iter()
                .filter(|e| KEPT.iter().any(|(n, _, dir)| n == e && !dir))
                .collect();
            note(found, line, text, &rel, entries);
        }
    }
}

/// The kept entries a removal of `rel` (relative to the config dir) takes away.
fn removed(rel: &str) -> Vec<&'static str> {
    if rel.is_empty() {
        return KEPT.iter().map(|(n, _, _)| *n).collect();
    }
    let (first, deeper) = match rel.split_once('/') {
        Some((first, rest)) => (first, !rest.is_empty()),
        None => (rel, false),
    };
    KEPT.iter()
        .filter(|(name, _, dir)| glob(first, name) && (!deeper || (*dir && *name == "projects")))
        .map(|(n, _, _)| *n)
        .collect()
}

/// `find PATH... [-name P] ... -delete` (or `-exec rm`): what it removes of the config
/// dir, as the relative path it starts from and the kept entries it reaches.
fn find_removes(args: &[String], config_dirs: &[&str]) -> Option<(String, Vec<&'static str>)> {
    let deletes = args.iter().any(|a| a == "-delete")
        || args
            .windows(2)
            .any(|w| matches!(w[0].as_str(), "-exec" | "-execdir") && w[1].ends_with("rm"));
    if !deletes {
        return None;
    }
    let name = args
        .windows(2)
        .find(|w| matches!(w[0].as_str(), "-name" | "-iname"))
        .map(|w| {
            w[1].replace('*', &STAR.to_string())
                .replace('?', &ONE.to_string())
        });
    let files_only = args.windows(2).any(|w| w[0] == "-type" && w[1] == "f");
    let mut reached = Vec::new();
    let mut from = None;
    for start in args.iter().take_while(|a| !a.starts_with('-')) {
        let Some(rel) = in_config(start, config_dirs) else {
            continue;
        };
        let entries: Vec<&'static str> = match (&name, rel.is_empty()) {
            // From the config dir itself: the entries the name matches (every one
            // without a name), files alone with -type f.
            (_, true) => KEPT
                .iter()
                .filter(|(n, _, dir)| {
                    name.as_deref().is_none_or(|p| glob(p, n)) && !(files_only && *dir)
                })
                .map(|(n, _, _)| *n)
                .collect(),
            // From inside: what is below a kept folder goes with it only for projects/.
            (Some(p), false) => removed(&rel)
                .into_iter()
                .filter(|e| *e == "projects" || (glob(p, e) && !files_only))
                .collect(),
            (None, false) => removed(&rel)
                .into_iter()
                .filter(|e| *e == "projects" || !files_only)
                .collect(),
        };
        if !entries.is_empty() {
            from.get_or_insert(rel);
            reached.extend(entries);
        }
    }
    reached.sort_unstable();
    reached.dedup();
    Some((from?, reached))
}

/// Whether the glob `pattern` (unquoted `*` and `?` as [`STAR`] and [`ONE`]) matches
/// `name`; as a shell's, a leading dot is matched only by a dot.
fn glob(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    if p.len() > MAX_NAME {
        return false;
    }
    let n: Vec<char> = name.chars().collect();
    // reach[j]: the pattern so far matches the first j characters of the name.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for c in p {
        let mut next = vec![false; n.len() + 1];
        let mut any = false;
        for j in 0..=n.len() {
            next[j] = match c {
                STAR => {
                    any |= reach[j];
                    any
                }
                ONE => j > 0 && reach[j - 1],
                c => j > 0 && reach[j - 1] && n[j - 1] == c,
            };
        }
        reach = next;
    }
    reach[n.len()]
}

/// `word` relative to the config dir ("" for the dir itself), normalised; `None` when it
/// is not in it, or cannot be told.
fn in_config(word: &str, config_dirs: &[&str]) -> Option<String> {
    let home = format!("{HOME}/.claude");
    let mut rest = None;
    for dir in config_dirs
        .iter()
        .map(|d| d.trim_end_matches('/'))
        .filter(|d| d.len() > 1)
        .chain([CFG.to_string().as_str(), home.as_str()])
    {
        if let Some(r) = word.strip_prefix(dir) {
            if r.is_empty() || r.starts_with('/') {
                rest = Some(r.to_string());
                break;
            }
        }
    }
    let rest = rest?;
    let mut parts = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p if p.contains(UNKNOWN) && parts.is_empty() => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The path for a person: the config dir as the first of `config_dirs` (or
/// `$CLAUDE_CONFIG_DIR`), globs as written.
fn shown(path: &str, config_dirs: &[&str]) -> String {
    let dir = config_dirs
        .first()
        .map(|d| d.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "$CLAUDE_CONFIG_DIR".into());
    path.replace(CFG, &dir)
        .replace(HOME, "~")
        .replace(STAR, "*")
        .replace(ONE, "?")
        .replace(UNKNOWN, "…")
}

/// `NAME=VALUE` split, when `word` is an assignment.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some((name, value))
}

/// Where the program is in a command's words: after keywords, `sudo`, `env` and
/// assignments; `None` when there are only assignments.
fn program_at(words: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        match w {
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "("
            | ")" | "time" | "sudo" | "command" | "exec" | "nohup" | "builtin" | "env" | "fi"
            | "done" => i += 1,
            "for" | "case" | "esac" | "function" => return Some(words.len().saturating_sub(1)),
            _ if w.starts_with('-') && i > 0 && words[i - 1] == "env" => i += 1,
            _ if assignment(w).is_some() => i += 1,
            _ => return Some(i),
        }
    }
    None
}

/// The script's lines, each with the number it starts on; `\`-continued lines joined,
/// here-documents stepped over.
fn logical_lines(script: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut joined = String::new();
    let mut start = 0;
    let mut heredoc: Option<String> = None;
    for (i, raw) in script.lines().enumerate().take(MAX_LINES) {
        if let Some(end) = &heredoc {
            if raw.trim_start_matches('\t') == end {
                heredoc = None;
            }
            continue;
        }
        if joined.is_empty() {
            start = i + 1;
        }
        if let Some(body) = raw.strip_suffix('\\') {
            joined.push_str(body);
            joined.push(' ');
            continue;
        }
        joined.push_str(raw);
        heredoc = heredoc_end(&joined);
        out.push((start, std::mem::take(&mut joined)));
    }
    if !joined.is_empty() {
        out.push((start, joined));
    }
    out
}

/// The word that ends a here-document started on `line` (`<<EOF`, `<<-'EOF'`).
fn heredoc_end(line: &str) -> Option<String> {
    let at = line.find("<<")?;
    let rest = line[at + 2..].trim_start_matches(['-', ' ']);
    if rest.starts_with('<') {
        return None; // a here-string
    }
    let word: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | '|' | '&' | ')'))
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    (!word.is_empty()).then_some(word)
}

#[derive(Debug, Default)]
struct Command {
    words: Vec<String>,
    /// Targets of `>` (not `>>`).
    truncated: Vec<String>,
}

/// One line's commands, split at `;`, `&&`, `||`, `|`, `&` and parentheses, each word
/// expanded.
fn commands(line: &str, vars: &BTreeMap<String, String>) -> Vec<Command> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut cmd = Command::default();
    let mut word = String::new();
    let mut in_word = false;
    // The next word is the target of a redirection: Some(true) for `>`.
    let mut redirect: Option<bool> = None;
    let mut i = 0;
    let end_word =
        |word: &mut String, in_word: &mut bool, cmd: &mut Command, r: &mut Option<bool>| {
            if *in_word {
                let w = std::mem::take(word);
                match r.take() {
                    Some(true) => cmd.truncated.push(w),
                    None if cmd.words.len() < MAX_WORDS => cmd.words.push(w),
                    _ => {}
                }
            }
            *in_word = false;
        };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => end_word(&mut word, &mut in_word, &mut cmd, &mut redirect),
            '#' if !in_word => break,
            '&' if chars.get(i + 1) == Some(&'>') => {
                end_word(&mut word, &mut in_word, &mut cmd, &mut redirect);
                i += 1;
                continue;
            }
            ';' | '|' | '(' | ')' | '&' => {
                end_word(&mut word, &mut in_word, &mut cmd, &mut redirect);
                out.push(std::mem::take(&mut cmd));
            }
            '>' | '<' => {
                // A file descriptor before it ("2>") is no word.
                if in_word && word.chars().all(|c| c.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word(&mut word, &mut in_word, &mut cmd, &mut redirect);
                let mut truncates = c == '>';
                while let Some(next) = chars.get(i + 1) {
                    match next {
                        '>' | '<' => truncates = false,
                        '|' => {}
                        '&' => {
                            // `>&2`: a descriptor, not a file.
                            i += 1;
                            while chars
                                .get(i + 1)
                                .is_some_and(|c| c.is_ascii_digit() || *c == '-')
                            {
                                i += 1;
                            }
                            truncates = false;
                            break;
                        }
                        _ => break,
                    }
                    i += 1;
                }
                redirect = Some(truncates);
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let inner: String = chars[start..i.min(chars.len())].iter().collect();
                if word.len() < MAX_WORD {
                    word.push_str(&expand_quoted(&inner, vars, 0));
                }
            }
            '\\' => {
                in_word = true;
                i += 1;
                if let Some(next) = chars.get(i) {
                    word.push(*next);
                }
            }
            '$' | '`' => {
                in_word = true;
                let (value, used) = dollar(&chars[i..], vars, 0);
                if word.len() < MAX_WORD {
                    word.push_str(&value);
                }
                i += used;
                continue;
            }
            '~' if !in_word
                && chars
                    .get(i + 1)
                    .is_none_or(|c| *c == '/' || c.is_whitespace()) =>
            {
                in_word = true;
                word.push(HOME);
            }
            '*' => {
                in_word = true;
                word.push(STAR);
            }
            '?' => {
                in_word = true;
                word.push(ONE);
            }
            '{' if in_word || chars.get(i + 1).is_some_and(|c| !c.is_whitespace()) => {
                in_word = true;
                word.push(OPEN);
            }
            ',' => {
                in_word = true;
                word.push(COMMA);
            }
            '}' if in_word => word.push(CLOSE),
            c => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut cmd, &mut redirect);
    out.push(cmd);
    // Brace characters that were no expansion are themselves again, but for the
    // arguments, which `braces` expands.
    for cmd in &mut out {
        for w in cmd.words.iter_mut().chain(cmd.truncated.iter_mut()) {
            if !w.contains(COMMA) || !w.contains(OPEN) {
                *w = literal_braces(w);
            }
        }
    }
    out.retain(|c| !c.words.is_empty() || !c.truncated.is_empty());
    out
}

fn literal_braces(w: &str) -> String {
    w.replace(OPEN, "{").replace(COMMA, ",").replace(CLOSE, "}")
}

/// A word with `{a,b}` expanded (one group at a time, a few dozen words at most).
fn braces(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![word.to_string()];
    while let Some(w) = todo.pop() {
        let open = w.find(OPEN);
        let close = open.and_then(|o| w[o..].find(CLOSE).map(|c| o + c));
        match (open, close) {
            (Some(o), Some(c))
                if w[o..c].contains(COMMA)
                    && out.len() + todo.len() + w[o..c].matches(COMMA).count() < MAX_BRACES =>
            {
                for alt in w[o + OPEN.len_utf8()..c].split(COMMA) {
                    todo.push(format!("{}{alt}{}", &w[..o], &w[c + CLOSE.len_utf8()..]));
                }
            }
            _ => out.push(literal_braces(&w)),
        }
    }
    out.reverse();
    out
}

/// The inside of double quotes: `$` expanded, the rest literal.
fn expand_quoted(inner: &str, vars: &BTreeMap<String, String>, depth: u8) -> String {
    let chars: Vec<char> = inner.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '$' | '`' => {
                let (value, used) = dollar(&chars[i..], vars, depth);
                if out.len() < MAX_WORD {
                    out.push_str(&value);
                }
                i += used;
            }
            '\\' if chars
                .get(i + 1)
                .is_some_and(|c| matches!(c, '$' | '`' | '"' | '\\')) =>
            {
                out.push(chars[i + 1]);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A `$...` or backquote expansion at the start of `chars`: its value and how many
/// characters it took.
fn dollar(chars: &[char], vars: &BTreeMap<String, String>, depth: u8) -> (String, usize) {
    let lookup = |name: &str| -> Option<String> {
        vars.get(name).cloned().or(match name {
            "CLAUDE_CONFIG_DIR" => Some(CFG.to_string()),
            "HOME" => Some(HOME.to_string()),
            _ => None,
        })
    };
    if chars[0] == '`' {
        let end = chars[1..]
            .iter()
            .position(|c| *c == '`')
            .map_or(chars.len(), |p| p + 2);
        return (UNKNOWN.to_string(), end);
    }
    match chars.get(1) {
        Some('{') => {
            let end = closing(chars, '{', '}');
            let inner: String = chars[2..end.min(chars.len())].iter().collect();
            let name_len = inner
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .count();
            let (name, op) = inner.split_at(name_len);
            let default = [":-", ":=", "-", "="]
                .iter()
                .find_map(|p| op.strip_prefix(p));
            let value = match (op.is_empty(), default) {
                (true, _) => lookup(name),
                (false, Some(d)) => lookup(name)
                    .or_else(|| (depth < MAX_DEPTH).then(|| expand_quoted(d, vars, depth + 1))),
                _ => None,
            };
            (value.unwrap_or(UNKNOWN.to_string()), end + 1)
        }
        Some('(') => {
            let end = closing(chars, '(', ')');
            (UNKNOWN.to_string(), end + 1)
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let len = chars[1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            let name: String = chars[1..=len].iter().collect();
            (lookup(&name).unwrap_or(UNKNOWN.to_string()), 1 + len)
        }
        Some(c) if c.is_ascii_digit() || matches!(c, '@' | '*' | '#' | '?' | '$' | '!' | '-') => {
            (UNKNOWN.to_string(), 2)
        }
        _ => ("$".to_string(), 1),
    }
}

/// Where the `close` that matches the first `open` after `chars[0]` is (`chars.len()`
/// when none does).
fn closing(chars: &[char], open: char, close: char) -> usize {
    let mut depth = 0usize;
    for (k, c) in chars.iter().enumerate().skip(1) {
        if *c == open {
            depth += 1;
        } else if *c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return k;
            }
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRS: [&str; 1] = ["/claude-config"];

    fn entries(script: &str) -> Vec<(usize, Vec<&'static str>)> {
        scan(script, &DIRS)
            .into_iter()
            .map(|r| (r.line, r.entries))
            .collect()
    }

    #[test]
    fn the_hubs_own_entrypoint_removes_nothing_claude_code_keeps() {
        let hub = r#"
if [ -d "/claude-config" ]; then
    rm -rf /claude-config/cache 2>/dev/null
    rm -rf /claude-config/session-env 2>/dev/null
    rm -rf /claude-config/debug 2>/dev/null
    rm -rf /claude-config/telemetry 2>/dev/null
    rm -f /claude-config/.claude.json.backup.* 2>/dev/null
    rm -f /claude-config/.update.lock 2>/dev/null
    if jq 'walk(.)' \
        /claude-config/.claude.json > /claude-config/.claude.json.tmp \
        && mv /claude-config/.claude.json.tmp /claude-config/.claude.json; then
        echo "MCP state cleaned from .claude.json"
    else
        rm -f /claude-config/.claude.json.tmp 2>/dev/null
    fi
    mkdir -p /claude-config/debug
fi
state=/claude-config/.claude.json
rm -f "$state.pd-tmp"
config=${CLAUDE_CONFIG_DIR:-/claude-config}
for marker in .mcp-configured .git-mcp-configured; do
  rm -f "$config/$marker"
done
printf '%s}\n' "$body" > "$config/.claude.json"
"#;
        assert_eq!(entries(hub), vec![]);
    }

    #[test]
    fn removals_of_memory_debug_and_login_are_found_with_their_line() {
        let script = "#!/bin/bash\nconfig=${CLAUDE_CONFIG_DIR:-/claude-config}\n\
            rm -rf \"$config/projects\" \"$config\"/history.jsonl\n\
            rm -rf /claude-config/debug 2>/dev/null\n\
            rm -rf ~/.claude/{cache,projects}\n\
            find \"$CLAUDE_CONFIG_DIR\" -name '*.jsonl' -delete\n\
            : > /claude-config/history.jsonl\n\
            rm -rf /claude-config/*\n\
            rm -f $HOME/.claude/.credentials.json\n\
            rm -rf \"/claude-config/*\"\n\
            echo done > /claude-config/history.jsonl\n";
        assert_eq!(
            entries(script),
            vec![
                (3, vec!["projects"]),
                (3, vec!["history.jsonl"]),
                (4, vec!["debug"]),
                (5, vec!["projects"]),
                (6, vec!["history.jsonl"]),
                (7, vec!["history.jsonl"]),
                (8, vec!["projects", "history.jsonl", "debug"]),
                (9, vec![".credentials.json"]),
            ]
        );
        let found = scan(script, &DIRS);
        assert_eq!(found[0].path, "/claude-config/projects");
        assert_eq!(found[2].lost, vec![Lost::Debug]);
        assert_eq!(found[6].path, "/claude-config/*");
    }

    #[test]
    fn the_container_env_names_the_config_dir_too() {
        let script = "rm -rf /home/agent/cfg/projects\nrm -rf /claude-configs/projects\n";
        assert_eq!(
            scan(script, &["/claude-config", "/home/agent/cfg"])
                .into_iter()
                .map(|r| r.line)
                .collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn hostile_text_neither_panics_nor_runs_away() {
        for script in [
            "${",
            "$(",
            "`",
            "\"",
            "'",
            "rm -rf {",
            "rm -rf }{,}",
            "rm ${CLAUDE_CONFIG_DIR:-",
            "cat <<EOF\nrm -rf /claude-config\nEOF\n",
            "rm -rf \\",
            "find -delete",
            "> ",
            "rm -rf /claude-config/{a,{b,c}}",
            "x=é\u{1}; rm -rf \"$x\"",
        ] {
            let _ = scan(script, &DIRS);
        }
        // Deep nesting, long globs, doubling variables and wide braces stay small.
        let deep = format!(
            "rm -rf {}/claude-config/projects{}\n",
            "${a:-".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(scan(&deep, &DIRS).is_empty(), "past the depth: unknown");
        let nested = "rm -rf ${a:-${b:-${c:-/claude-config/projects}}}\n";
        assert_eq!(scan(nested, &DIRS).len(), 1);
        let stars = format!("rm -rf /claude-config/{}x\n", "*a".repeat(100_000));
        assert!(scan(&stars, &DIRS).is_empty());
        let doubling = "a=/claude-config/\n".to_string() + &"a=$a$a\n".repeat(64) + "rm -rf $a\n";
        let _ = scan(&doubling, &DIRS);
        let wide = format!(
            "rm -rf /claude-config/{{{}projects}}\n",
            "x,".repeat(100_000)
        );
        let _ = scan(&wide, &DIRS);
        let g = |p: &str| {
            p.replace('*', &STAR.to_string())
                .replace('?', &ONE.to_string())
        };
        assert!(glob(&g("*y*"), "history.jsonl") && glob(&g("h?story.*"), "history.jsonl"));
        assert!(!glob(&g("*"), ".claude.json") && glob(&g(".claude*"), ".claude.json"));
        assert!(!glob(&g("*a*a*b"), "aaaaaaaaaaaaaaaa") && glob(&g("*a*a"), "aaaa"));
        let many = "rm -rf /claude-config/{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}\n";
        assert!(scan(many, &DIRS).is_empty());
        assert!(scan("cat <<EOF\nrm -rf /claude-config\nEOF\n", &DIRS).is_empty());
    }
}
