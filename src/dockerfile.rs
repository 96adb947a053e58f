//! The files a Dockerfile copies from its build context into the image: what
//! `container.image` compares with the image's copies. Only what can be named file by
//! file: `COPY` of files from the context, in shell or JSON form. A folder, a wildcard,
//! another stage (`--from`), a URL or `ADD` (which may unpack) are left out, since no
//! single file on the host stands for them.

/// At most this many files are compared per image.
pub const MAX_FILES: usize = 16;

/// One file copied from the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Relative to the build context, as the Dockerfile names it (`scripts/mcp_proxy.py`).
    pub source: String,
    /// Its absolute path in the image (`/proxy/mcp_proxy.py`).
    pub dest: String,
}

/// The files `text` copies, in order, at most [`MAX_FILES`].
pub fn copied_files(text: &str) -> Vec<Copied> {
    let mut files = Vec::new();
    let mut workdir = "/".to_string();
    for instruction in instructions(text) {
        let (keyword, rest) = instruction
            .split_once(char::is_whitespace)
            .unwrap_or((&instruction, ""));
        match keyword.to_ascii_uppercase().as_str() {
            "WORKDIR" => workdir = absolute(&workdir, rest.trim()),
            "COPY" => files.extend(copy(&workdir, rest.trim())),
            _ => {}
        }
        if files.len() >= MAX_FILES {
            files.truncate(MAX_FILES);
            break;
        }
    }
    files
}

/// Instructions with their continuation lines joined; comments and blank lines gone.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn copy(workdir: &str, rest: &str) -> Vec<Copied> {
    let mut words: Vec<String> = if rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(words) => words,
            Err(_) => return Vec::new(),
        }
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    // Flags come first: --chown, --chmod, --link are harmless; --from names another
    // stage or image, whose files are not the context's.
    while words.first().is_some_and(|w| w.starts_with("--")) {
        if words[0].starts_with("--from") {
            return Vec::new();
        }
        words.remove(0);
    }
    let Some(dest) = words.pop() else {
        return Vec::new();
    };
    if words.is_empty() {
        return Vec::new();
    }
    let into_folder = dest.ends_with('/') || words.len() > 1;
    let dest = absolute(workdir, &dest);
    words
        .iter()
        .map(|source| source.strip_prefix("./").unwrap_or(source))
        .filter(|source| is_one_file(source))
        .map(|source| {
            let dest = if into_folder {
                let name = source.rsplit('/').next().unwrap_or(source);
                format!("{}/{name}", dest.trim_end_matches('/'))
            } else {
                dest.clone()
            };
            Copied {
                source: source.to_string(),
                dest,
            }
        })
        .collect()
}

/// A source that names one file in the context: no wildcard, no folder (a trailing
/// `/`), no URL, nothing outside the context.
fn is_one_file(source: &str) -> bool {
    !source.contains(['*', '?', '[', '$'])
        && !source.contains("://")
        && !source.starts_with('/')
        && source
            .split('/')
            .all(|part| !matches!(part, "" | "." | ".."))
}

fn absolute(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", workdir.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        copied_files(text)
            .into_iter()
            .map(|c| (c.source, c.dest))
            .collect()
    }

    #[test]
    fn the_hub_dockerfile_names_its_four_files() {
        let text = "FROM python:3.11-slim\nENV HOME=/\nWORKDIR /\n# Copy the proxy\nCOPY scripts/mcp_proxy.py /proxy/mcp_proxy.py\nCOPY .mcp.json /.mcp.json\nCOPY .claude-container.json /init-config/.claude.json\nCOPY entrypoint.sh /entrypoint.sh\nRUN chmod +x /entrypoint.sh\nENTRYPOINT [\"/entrypoint.sh\"]\n";
        assert_eq!(
            pairs(text),
            [
                ("scripts/mcp_proxy.py", "/proxy/mcp_proxy.py"),
                (".mcp.json", "/.mcp.json"),
                (".claude-container.json", "/init-config/.claude.json"),
                ("entrypoint.sh", "/entrypoint.sh"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn forms_flags_folders_and_workdir() {
        let text = "WORKDIR /app\nCOPY --chown=1:1 a.sh b.sh bin/\nCOPY [\"c d.txt\", \"/etc/c\"]\nCOPY ./e.py \\\n  e.py\nCOPY --from=build /out/x /x\nCOPY rootfs/ /\nCOPY *.sh /s/\nCOPY ../secret /s\nADD f.tar /\ncopy g /g\n";
        assert_eq!(
            pairs(text),
            [
                ("a.sh", "/app/bin/a.sh"),
                ("b.sh", "/app/bin/b.sh"),
                ("c d.txt", "/etc/c"),
                ("e.py", "/app/e.py"),
                ("g", "/g"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn hostile_text_is_bounded() {
        let many: String = (0..100).map(|i| format!("COPY f{i} /f{i}\n")).collect();
        assert_eq!(copied_files(&many).len(), MAX_FILES);
        assert!(copied_files("COPY [\"unterminated\nCOPY\nCOPY x\n\\").is_empty());
    }
}
