//! Claude Code's variable expansion in MCP server entries: `${VAR}` and
//! `${VAR:-default}` in `url`, `headers`, `command`, `args` and `env`, from the
//! environment of the Claude Code process (the container's). An unset `${VAR}` without a
//! default is sent as the literal text; `$VAR` without braces is never expanded.

use std::collections::HashMap;

/// The environment a config is expanded in, and where it is.
#[derive(Debug, Clone)]
pub struct Env {
    /// "container agent-qa", "the host environment".
    pub place: String,
    vars: HashMap<String, String>,
    /// False when this environment only stands in for one that cannot be read (an agent
    /// without a container is judged against the host's): its verdicts are softer.
    pub definite: bool,
}

impl Env {
    pub fn new(
        place: impl Into<String>,
        vars: impl IntoIterator<Item = (String, String)>,
        definite: bool,
    ) -> Env {
        Env {
            place: place.into(),
            vars: vars.into_iter().collect(),
            definite,
        }
    }

    /// pd-doctor's own environment, the host's.
    pub fn host() -> Env {
        Env::new("the host environment", std::env::vars(), true)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// A text with its references expanded, and what it referred to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    pub text: String,
    /// Variables referenced without a default that the environment does not set: the
    /// text keeps `${NAME}` literally for these.
    pub unset: Vec<String>,
    /// Whether any reference was replaced by a value from the environment.
    pub from_env: bool,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands every `${NAME}` and `${NAME:-default}` in `text` against `env`.
pub fn expand(text: &str, env: &Env) -> Expanded {
    let mut out = Expanded::default();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.text.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.text.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if !is_name(name) {
            out.text.push_str(&rest[start..start + 3 + end]);
        } else {
            match (env.get(name), default) {
                (Some(value), _) => {
                    out.text.push_str(value);
                    out.from_env = true;
                }
                (None, Some(d)) => out.text.push_str(d),
                (None, None) => {
                    out.text.push_str(&rest[start..start + 3 + end]);
                    if !out.unset.iter().any(|u| u == name) {
                        out.unset.push(name.to_string());
                    }
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.text.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::new("test", [("KEY".to_string(), "s3cret".to_string())], true)
    }

    #[test]
    fn braces_expand_bare_dollars_do_not() {
        let e = expand("Bearer ${KEY}", &env());
        assert_eq!((e.text.as_str(), e.from_env), ("Bearer s3cret", true));
        assert_eq!(expand("$KEY", &env()).text, "$KEY");
        assert_eq!(
            expand("${MISSING:-fallback}/mcp", &env()).text,
            "fallback/mcp"
        );
        assert_eq!(expand("${KEY:-fallback}", &env()).text, "s3cret");
    }

    #[test]
    fn an_unset_reference_stays_literal_and_is_named() {
        let e = expand("http://h:${PORT}/mcp?k=${PORT}", &env());
        assert_eq!(e.text, "http://h:${PORT}/mcp?k=${PORT}");
        assert_eq!(e.unset, ["PORT"]);
        assert!(!e.from_env);
    }

    #[test]
    fn malformed_references_are_text() {
        assert_eq!(expand("${", &env()).text, "${");
        assert_eq!(expand("${1X} ${} ${A B}", &env()).text, "${1X} ${} ${A B}");
        assert!(expand("${1X}", &env()).unset.is_empty());
    }
}
