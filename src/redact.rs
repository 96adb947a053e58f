//! Secrets never leave pd-doctor. Values that may be secret are held as [`Secret`], which
//! has no way to print itself; and every report is scrubbed of every secret value the run
//! has seen, so a message that quotes a file by mistake still prints `[redacted]`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A header value, token or key: comparable, never printable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// For the one place that must send it: an HTTP header to the server it belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `qms-…(12 chars)`: enough to tell two keys apart by eye, not enough to use one.
    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        if n >= 12 {
            let head: String = self.0.chars().take(4).collect();
            format!("{head}…({n} chars)")
        } else {
            "[redacted]".to_string()
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Header names whose values are secret whatever they look like.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "TOKEN",
        "KEY",
        "SECRET",
        "PASSWORD",
        "AUTHORIZATION",
        "COOKIE",
        "CREDENTIAL",
        "AUTH",
        "PASSWD",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Every secret value seen during a run; shared by all the probes that read configs.
#[derive(Clone, Default)]
pub struct SecretSet(Arc<Mutex<BTreeSet<String>>>);

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSet([redacted])")
    }
}

impl SecretSet {
    pub fn add(&self, value: &str) {
        let value = value.trim();
        // Very short values ("1", "on") would shred ordinary text and protect nothing.
        if value.chars().count() >= 4 {
            if let Ok(mut set) = self.0.lock() {
                set.insert(value.to_string());
                // "Bearer abc": the token alone must go too.
                if let Some((_, token)) = value.split_once(' ') {
                    if token.chars().count() >= 4 {
                        set.insert(token.to_string());
                    }
                }
            }
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let Ok(set) = self.0.lock() else {
            return text.to_string();
        };
        // Longest first, so a secret that contains another is replaced whole.
        let mut values: Vec<&String> = set.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for v in values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// A URL fit for printing: userinfo and query values replaced (`DOCKER_HOST`, server
/// URLs and redirects may carry a password or a token in either).
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("[redacted]@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let (path, fragment) = match tail.find('#') {
        Some(hash) => tail.split_at(hash),
        None => (tail, ""),
    };
    let path = match path.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) if !value.is_empty() => format!("{name}=[redacted]"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => path.to_string(),
    };
    format!("{scheme}://{authority}{path}{fragment}")
}

/// The parts of a URL that [`display_url`] hides: the userinfo (and its password alone)
/// and each query value, for the run's [`SecretSet`] to scrub wherever they surface.
pub fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut secrets = Vec::new();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        secrets.push(userinfo.to_string());
        if let Some((_, password)) = userinfo.split_once(':') {
            secrets.push(password.to_string());
        }
    }
    let tail = tail.split('#').next().unwrap_or_default();
    if let Some((_, query)) = tail.split_once('?') {
        secrets.extend(
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(_, value)| value.to_string())
                .filter(|v| !v.is_empty()),
        );
    }
    secrets
}

/// A process's command line fit for printing: at most six arguments; the value after a
/// secret-looking flag (`--token X`), of a secret-looking `--key=X` or `KEY=X`, and the
/// credentials of any URL among them hidden.
pub fn command_line(command: &str) -> String {
    let mut out = Vec::new();
    let mut hide_next = false;
    for arg in command.split_whitespace().take(6) {
        let shown = if hide_next {
            "[redacted]".to_string()
        } else if let Some((name, _)) = arg.split_once('=').filter(|(n, _)| is_secret_name(n)) {
            format!("{name}=[redacted]")
        } else if arg.contains("://") {
            display_url(arg)
        } else {
            arg.to_string()
        };
        hide_next = arg.starts_with('-') && !arg.contains('=') && is_secret_name(arg);
        out.push(shown);
    }
    if command.split_whitespace().count() > 6 {
        out.push("…".into());
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_never_shows_the_value() {
        let s = Secret::new("qms-internal-key");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.masked(), "qms-…(16 chars)");
        assert_eq!(Secret::new("short").masked(), "[redacted]");
    }

    #[test]
    fn scrub_replaces_bearer_tokens_and_whole_values() {
        let set = SecretSet::default();
        set.add("Bearer internal-trusted");
        set.add("ab");
        let out = set.scrub("sent Bearer internal-trusted; token internal-trusted; ab");
        assert_eq!(out, "sent [redacted]; token [redacted]; ab");
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            display_url("http://u:p@h:1/mcp"),
            "http://[redacted]@h:1/mcp"
        );
        assert_eq!(display_url("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(
            display_url("tcp://user:s3cretpw@127.0.0.1:2376"),
            "tcp://[redacted]@127.0.0.1:2376"
        );
    }

    #[test]
    fn urls_lose_their_query_values() {
        assert_eq!(
            display_url("tcp://u:pw@h:2376?token=abc123secret&x=&flag"),
            "tcp://[redacted]@h:2376?token=[redacted]&x=&flag"
        );
        assert_eq!(
            display_url("http://h:1/mcp?key=a@b#frag"),
            "http://h:1/mcp?key=[redacted]#frag"
        );
        assert_eq!(
            display_url("unix:///var/run/docker.sock"),
            "unix:///var/run/docker.sock"
        );
        assert_eq!(
            url_secrets("tcp://user:s3cretpw@h:1?token=abc123secret&x="),
            ["user:s3cretpw", "s3cretpw", "abc123secret"]
        );
        assert!(url_secrets("unix:///var/run/docker.sock").is_empty());
    }

    #[test]
    fn query_values_go_fragments_and_bare_flags_stay() {
        assert_eq!(
            display_url("http://h:1/mcp?api_key=abc123&debug#top"),
            "http://h:1/mcp?api_key=[redacted]&debug#top"
        );
        assert_eq!(
            display_url("tcp://u:pw@h:2376?token=x"),
            "tcp://[redacted]@h:2376?token=[redacted]"
        );
    }

    #[test]
    fn command_lines_hide_secret_arguments() {
        assert_eq!(
            command_line("python -m qms_mcp --api-key abc --port 8000"),
            "python -m qms_mcp --api-key [redacted] --port …"
        );
        assert_eq!(command_line("srv TOKEN=xyz"), "srv TOKEN=[redacted]");
        assert_eq!(
            command_line("srv --auth s3cret --password=hunter22"),
            "srv --auth [redacted] --password=[redacted]"
        );
        assert_eq!(
            command_line("srv --upstream http://u:pw@h/x?k=v"),
            "srv --upstream http://[redacted]@h/x?k=[redacted]"
        );
    }

    #[test]
    fn secret_names() {
        for n in [
            "X-API-Key",
            "Authorization",
            "GH_TOKEN",
            "DB_PASSWORD",
            "client_secret",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        assert!(!is_secret_name("HOME"));
    }
}
