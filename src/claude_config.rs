//! Claude Code's config files as pd-doctor reads them: `.claude.json` (user scope in
//! `mcpServers`, local scope in `projects[<dir>].mcpServers`) and `.mcp.json` (project
//! scope). Reading never fails: every way a file can be broken is a variant of [`JsonFile`].

use std::path::Path;

use serde_json::Value;

use crate::expand::{self, Env, Expanded};
use crate::redact::{Secret, SecretSet};
use crate::safefs::{self, Links, ReadError};

#[derive(Debug, Clone)]
pub enum JsonFile {
    Missing,
    /// Exists but cannot be read as a file: permissions, a directory, a FIFO, too large.
    Unreadable(String),
    /// Zero bytes or only white space.
    Empty,
    /// Does not parse; the parser's position, never the content.
    Corrupt(String),
    Parsed(Value),
}

impl JsonFile {
    pub fn parsed(&self) -> Option<&Value> {
        match self {
            JsonFile::Parsed(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads a config file the user's layout names (a link is followed: a config dir may be
/// one on purpose), through the trust boundary: never blocking, at most 64 MiB.
pub fn read_json(path: &Path) -> JsonFile {
    read_json_with(path, Links::Follow)
}

pub fn read_json_with(path: &Path, links: Links) -> JsonFile {
    match safefs::read(path, safefs::JSON_CAP, links) {
        Ok(bytes) => parse_json(&bytes),
        Err(ReadError::Missing) => JsonFile::Missing,
        Err(e) => JsonFile::Unreadable(e.to_string()),
    }
}

pub fn parse_json(bytes: &[u8]) -> JsonFile {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return JsonFile::Empty;
    }
    match serde_json::from_slice(bytes) {
        Ok(v) => JsonFile::Parsed(v),
        Err(e) => JsonFile::Corrupt(e.to_string()),
    }
}

/// One server as a config file names it.
#[derive(Debug, Clone, Default)]
pub struct ServerEntry {
    pub kind: Option<String>,
    pub url: Option<String>,
    pub headers: Vec<(String, Secret)>,
    /// A stdio entry (`command`, no type or `type: stdio`): the program Claude Code starts
    /// in the container. When its arguments name an `http(s)://` URL (the stdio proxy's
    /// form), `url` and `headers` above are that upstream and its `--header` pairs.
    pub stdio: Option<Stdio>,
    /// Why the entry is not the shape Claude Code writes, if it is not.
    pub shape_error: Option<String>,
}

/// The program of a stdio entry. Arguments and `env` values are secrets as a whole
/// (a proxy carries its keys in `--header K=V`), so they never print as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub command: String,
    pub args: Vec<Secret>,
    pub env: Vec<(String, Secret)>,
}

impl Stdio {
    fn from_object(obj: &serde_json::Map<String, Value>) -> Result<Stdio, String> {
        let command = match obj.get("command") {
            Some(Value::String(c)) => c.clone(),
            _ => return Err("command is not a string".into()),
        };
        let args = match obj.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(Secret::new))
                .collect::<Option<Vec<_>>>()
                .ok_or("an argument is not a string")?,
            Some(_) => return Err("args is not an array".into()),
        };
        let env = match obj.get("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| v.as_str().map(|s| (k.clone(), Secret::new(s))))
                .collect::<Option<Vec<_>>>()
                .ok_or("an env value is not a string")?,
            Some(_) => return Err("env is not an object".into()),
        };
        Ok(Stdio { command, args, env })
    }

    /// The first `http(s)://` argument: where a stdio proxy forwards to.
    pub fn upstream_url(&self) -> Option<&str> {
        self.args
            .iter()
            .map(Secret::expose)
            .find(|a| a.starts_with("http://") || a.starts_with("https://"))
    }

    /// The proxy's `--header K=V`, `--header "K: V"` and `--header=K=V` pairs.
    pub fn upstream_headers(&self) -> Vec<(String, Secret)> {
        let args: Vec<&str> = self.args.iter().map(Secret::expose).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let value = if args[i] == "--header" || args[i] == "-H" {
                i += 1;
                args.get(i).copied()
            } else {
                args[i].strip_prefix("--header=")
            };
            if let Some((name, value)) = value.and_then(split_header) {
                out.push((name.to_string(), Secret::new(value)));
            }
            i += 1;
        }
        out
    }

    /// The program and its arguments as shown: the program and the upstream URL as they
    /// are (the URL without userinfo or query values), every other argument by its shape.
    pub fn display(&self) -> String {
        let mut words = vec![crate::redact::command_line(&self.command)];
        let mut after_header = false;
        for a in self.args.iter().map(Secret::expose) {
            let shown = if after_header {
                split_header(a).map_or("[redacted]".to_string(), |(n, _)| format!("{n}=…"))
            } else if a.starts_with("http://") || a.starts_with("https://") {
                crate::redact::display_url(a)
            } else if a.starts_with('-') || a.starts_with('/') || a.parse::<f64>().is_ok() {
                crate::printable::line(a).into_owned()
            } else {
                "[redacted]".to_string()
            };
            after_header = a == "--header" || a == "-H";
            words.push(shown);
        }
        words.join(" ")
    }
}

/// `K=V` or `K: V`, with a name that is a header name.
fn split_header(text: &str) -> Option<(&str, &str)> {
    let (name, value) = match (text.find('='), text.find(':')) {
        (Some(e), Some(c)) if c < e => text.split_at(c),
        (Some(e), _) => text.split_at(e),
        (None, Some(c)) => text.split_at(c),
        (None, None) => return None,
    };
    let name = name.trim();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| (name, value[1..].trim_start()))
}

impl ServerEntry {
    pub fn from_value(value: &Value) -> ServerEntry {
        let Some(obj) = value.as_object() else {
            return ServerEntry {
                shape_error: Some("entry is not an object".into()),
                ..Default::default()
            };
        };
        let mut entry = ServerEntry {
            kind: obj.get("type").and_then(Value::as_str).map(str::to_string),
            url: obj.get("url").and_then(Value::as_str).map(str::to_string),
            ..Default::default()
        };
        let stdio_kind = matches!(entry.kind.as_deref(), None | Some("stdio"));
        if obj.contains_key("command") && stdio_kind {
            match Stdio::from_object(obj) {
                Ok(stdio) => {
                    if entry.url.is_none() {
                        entry.url = stdio.upstream_url().map(str::to_string);
                        entry.headers = stdio.upstream_headers();
                    }
                    entry.stdio = Some(stdio);
                }
                Err(e) => entry.shape_error = Some(e),
            }
            return entry;
        }
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (name, v) in h {
                    match v.as_str() {
                        Some(s) => entry.headers.push((name.clone(), Secret::new(s))),
                        None => entry.shape_error = Some(format!("header {name} is not a string")),
                    }
                }
            }
            Some(_) => entry.shape_error = Some("headers is not an object".into()),
        }
        if obj.get("url").is_some_and(|u| !u.is_string()) {
            entry.shape_error = Some("url is not a string".into());
        }
        entry
    }

    /// A stdio entry: Claude Code starts a program in the container.
    pub fn is_stdio(&self) -> bool {
        self.stdio.is_some()
    }

    pub fn parsed_url(&self) -> Option<reqwest::Url> {
        self.url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
    }

    pub fn header(&self, name: &str) -> Option<&Secret> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Whether the URL or a header value holds a `${...}` reference.
    pub fn has_references(&self) -> bool {
        let stdio = self.stdio.iter().any(|s| {
            s.command.contains("${")
                || s.args.iter().any(|a| a.expose().contains("${"))
                || s.env.iter().any(|(_, v)| v.expose().contains("${"))
        });
        stdio
            || self.url.as_deref().is_some_and(|u| u.contains("${"))
            || self.headers.iter().any(|(_, v)| v.expose().contains("${"))
    }

    /// The entry as Claude Code uses it in `env`: `${VAR}` references in the URL and the
    /// header values expanded, with the variables that stayed unset. Header values that
    /// came from the environment join `secrets`.
    pub fn expanded(&self, env: &Env, secrets: &SecretSet) -> (ServerEntry, Vec<String>) {
        let mut unset = Vec::new();
        let mut note = |e: &Expanded| {
            for name in &e.unset {
                if !unset.contains(name) {
                    unset.push(name.clone());
                }
            }
        };
        let secret = |text: &str, note: &mut dyn FnMut(&Expanded)| {
            let e = expand::expand(text, env);
            note(&e);
            if e.from_env {
                secrets.add(&e.text);
            }
            Secret::new(e.text)
        };
        if let Some(stdio) = &self.stdio {
            let command = expand::expand(&stdio.command, env);
            note(&command);
            let stdio = Stdio {
                command: command.text,
                args: stdio
                    .args
                    .iter()
                    .map(|a| secret(a.expose(), &mut note))
                    .collect(),
                env: stdio
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), secret(v.expose(), &mut note)))
                    .collect(),
            };
            let entry = ServerEntry {
                url: stdio.upstream_url().map(str::to_string),
                headers: stdio.upstream_headers(),
                stdio: Some(stdio),
                ..self.clone()
            };
            return (entry, unset);
        }
        let url = self.url.as_ref().map(|u| {
            let e = expand::expand(u, env);
            note(&e);
            e.text
        });
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let e = expand::expand(value.expose(), env);
                note(&e);
                if e.from_env {
                    secrets.add(&e.text);
                }
                (name.clone(), Secret::new(e.text))
            })
            .collect();
        (
            ServerEntry {
                url,
                headers,
                ..self.clone()
            },
            unset,
        )
    }

    /// Same URL and same headers (names case-insensitive, values exact).
    pub fn same_as(&self, other: &ServerEntry) -> bool {
        self.url == other.url
            && self.headers.len() == other.headers.len()
            && self.headers.iter().all(|(n, v)| other.header(n) == Some(v))
    }
}

/// The entries of an `mcpServers` object, in file order; nothing when it is not an object.
pub fn server_entries(servers: Option<&Value>) -> Vec<(String, ServerEntry)> {
    servers
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), ServerEntry::from_value(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The user-scope `mcpServers` of a `.claude.json`.
pub fn user_scope(doc: &Value) -> Option<&Value> {
    doc.get("mcpServers")
}

/// The local-scope `mcpServers` for one project directory (`/pipe-dream`).
pub fn local_scope<'a>(doc: &'a Value, project_dir: &str) -> Option<&'a Value> {
    doc.get("projects")?.get(project_dir)?.get("mcpServers")
}

/// The project entry of a `.claude.json` for one project directory, where Claude Code
/// keeps local scope and the answers to the project-scope approval prompt.
pub fn project_entry<'a>(doc: &'a Value, project_dir: &str) -> Option<&'a Value> {
    doc.get("projects")?.get(project_dir)
}

/// The folder whose trust covers `dir`, as Claude Code decides it: `dir` itself or the
/// nearest folder above it whose `projects` entry has a truthy `hasTrustDialogAccepted`
/// (keys compared exactly: "/pipe-dream/" is not "/pipe-dream"). Measured with Claude
/// Code 2.1.327: a trusted "/" covers "/pipe-dream", a trusted child does not, and `1` or
/// `"yes"` count as JavaScript counts them.
pub fn trusted_by(doc: &Value, dir: &str) -> Option<String> {
    let projects = doc.get("projects")?;
    let mut at = std::path::Path::new(dir);
    loop {
        let key = at.to_str()?;
        if projects
            .get(key)
            .and_then(|p| p.get("hasTrustDialogAccepted"))
            .is_some_and(truthy)
        {
            return Some(key.to_string());
        }
        at = at.parent()?;
    }
}

/// JavaScript's truthiness, which is how Claude Code reads its flags.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The strings of the array `key` of `doc` (an approval list, say); nothing when absent.
pub fn names(doc: Option<&Value>, key: &str) -> Vec<String> {
    doc.and_then(|d| d.get(key))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Why a parsed `.claude.json` is not the shape Claude Code writes, if it is not.
pub fn shape_problem(doc: &Value, project_dir: &str) -> Option<String> {
    if !doc.is_object() {
        return Some(format!("the top level is {}, not an object", kind_of(doc)));
    }
    if let Some(s) = user_scope(doc) {
        if !s.is_object() {
            return Some(format!("mcpServers is {}, not an object", kind_of(s)));
        }
    }
    if let Some(p) = doc.get("projects") {
        if !p.is_object() {
            return Some(format!("projects is {}, not an object", kind_of(p)));
        }
        if let Some(s) = local_scope(doc, project_dir) {
            if !s.is_object() {
                return Some(format!(
                    "projects[\"{project_dir}\"].mcpServers is not an object"
                ));
            }
        }
    }
    let scopes = [user_scope(doc), local_scope(doc, project_dir)];
    for (name, entry) in scopes.into_iter().flat_map(|s| server_entries(s)) {
        if let Some(problem) = entry.shape_error {
            return Some(format!("server {name}: {problem}"));
        }
    }
    None
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The parts of a value that are not `${VAR}` references: a reference names a variable
/// (printed in findings), its value is the secret and joins when expanded.
fn literal_parts(value: &str) -> Vec<&str> {
    if !value.contains("${") {
        return vec![value];
    }
    let mut parts = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        parts.push(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    parts.push(rest);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "Bearer")
        .collect()
}

/// Adds every header value of every `mcpServers` object in `doc` (any depth) to `secrets`.
pub fn collect_secrets(doc: &Value, secrets: &SecretSet) {
    match doc {
        Value::Object(map) => {
            for (key, v) in map {
                // A stdio proxy carries its keys as `--header K=V` arguments.
                if key == "args" {
                    if let Some(args) = v.as_array() {
                        let stdio = Stdio {
                            args: args
                                .iter()
                                .filter_map(Value::as_str)
                                .map(Secret::new)
                                .collect(),
                            ..Default::default()
                        };
                        for (_, value) in stdio.upstream_headers() {
                            for part in literal_parts(value.expose()) {
                                secrets.add(part);
                            }
                        }
                    }
                }
                if key == "headers" || key == "env" {
                    if let Some(h) = v.as_object() {
                        h.values()
                            .filter_map(Value::as_str)
                            .flat_map(literal_parts)
                            .for_each(|s| secrets.add(s));
                    }
                }
                // A key in a query string (`?api_key=...`) is a secret like a header.
                if key == "url" {
                    if let Some(url) = v.as_str() {
                        for s in crate::redact::url_secrets(url) {
                            secrets.add(&s);
                        }
                    }
                }
                collect_secrets(v, secrets);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, secrets)),
        _ => {}
    }
}

/// Claude Code's own backups (`backups/.claude.json.backup.<ms>`), newest first.
/// A `backups` that is a link leads out of the config dir: it has no backups.
pub fn backups(config_dir: &Path) -> Vec<std::path::PathBuf> {
    let folder = config_dir.join("backups");
    if safefs::state(&folder).is_none_or(|s| s.kind != safefs::Kind::Dir) {
        return Vec::new();
    }
    let mut found: Vec<(u128, std::path::PathBuf)> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    let stamp = name.strip_prefix(".claude.json.backup.")?.parse().ok()?;
                    Some((stamp, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|b| std::cmp::Reverse(b.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The newest backup that parses as a JSON object; a link among them is passed over.
pub fn newest_parsable_backup(config_dir: &Path) -> Option<std::path::PathBuf> {
    backups(config_dir).into_iter().find(|p| {
        matches!(
            read_json_with(p, Links::Refuse),
            JsonFile::Parsed(serde_json::Value::Object(_))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tells_empty_corrupt_and_bom_apart() {
        assert!(matches!(parse_json(b""), JsonFile::Empty));
        assert!(matches!(parse_json(b" \r\n"), JsonFile::Empty));
        assert!(matches!(parse_json(b"{\"a\": "), JsonFile::Corrupt(_)));
        assert!(matches!(parse_json(b"\xEF\xBB\xBF{}"), JsonFile::Parsed(_)));
        assert!(matches!(
            parse_json(b"{\r\n\"a\": 1\r\n}\r\n"),
            JsonFile::Parsed(_)
        ));
    }

    /// The rules Claude Code 2.1.327 was seen to follow (`claude mcp list` in a lab
    /// container, /pipe-dream as its working directory).
    #[test]
    fn trust_is_the_folder_or_a_folder_above_it() {
        let trust = |projects: Value| {
            trusted_by(&serde_json::json!({ "projects": projects }), "/pipe-dream")
        };
        let yes = serde_json::json!({"hasTrustDialogAccepted": true});
        assert_eq!(
            trust(serde_json::json!({"/pipe-dream": yes})).as_deref(),
            Some("/pipe-dream")
        );
        assert_eq!(trust(serde_json::json!({"/": yes})).as_deref(), Some("/"));
        assert_eq!(trust(serde_json::json!({"/pipe-dream/": yes})), None);
        assert_eq!(trust(serde_json::json!({"/pipe-dream/sub": yes})), None);
        assert_eq!(trust(serde_json::json!({"/pipe": yes})), None);
        assert_eq!(
            trust(serde_json::json!({"/pipe-dream": {"hasTrustDialogAccepted": "yes"}})).as_deref(),
            Some("/pipe-dream")
        );
        assert_eq!(
            trust(serde_json::json!({"/pipe-dream": {"hasTrustDialogAccepted": 0}})),
            None
        );
        assert_eq!(
            trust(serde_json::json!({"/pipe-dream": {"hasTrustDialogAccepted": false}, "/": yes}))
                .as_deref(),
            Some("/")
        );
        assert_eq!(trusted_by(&serde_json::json!({}), "/pipe-dream"), None);
        assert_eq!(
            trusted_by(&serde_json::json!({"projects": []}), "/pipe-dream"),
            None
        );
    }

    #[test]
    fn shape_problems_are_named() {
        let doc: Value = serde_json::json!({"mcpServers": []});
        assert_eq!(
            shape_problem(&doc, "/p").as_deref(),
            Some("mcpServers is an array, not an object")
        );
        let doc: Value = serde_json::json!({"mcpServers": {"qms": {"headers": {"X": 1}}}});
        assert_eq!(
            shape_problem(&doc, "/p").as_deref(),
            Some("server qms: header X is not a string")
        );
        assert!(shape_problem(&serde_json::json!([1]), "/p").is_some());
        assert!(shape_problem(&serde_json::json!({}), "/p").is_none());
    }

    #[test]
    fn entries_compare_without_printing() {
        let a = ServerEntry::from_value(
            &serde_json::json!({"url": "u", "headers": {"X-API-Key": "k"}}),
        );
        let b = ServerEntry::from_value(
            &serde_json::json!({"url": "u", "headers": {"x-api-key": "k"}}),
        );
        let c = ServerEntry::from_value(
            &serde_json::json!({"url": "u", "headers": {"x-api-key": "other"}}),
        );
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
        assert!(!format!("{a:?}").contains("\"k\""));
    }
}
