//! Whether a bind-mount source and a host folder are the same folder: symlinks resolved,
//! and Docker Desktop for Windows' spellings of one folder treated as one
//! (`C:\Users\x`, `/run/desktop/mnt/host/c/Users/x`, `/host_mnt/c/Users/x`,
//! `/mnt/c/Users/x`, case-insensitive, as NTFS is).

use std::path::Path;

/// A path as `/c/users/x` when it is a Windows drive path in any of Docker's spellings.
fn windows_form(path: &str) -> Option<String> {
    let p = path.replace('\\', "/");
    let bytes = p.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Some(
            format!("/{}{}", (bytes[0] as char).to_ascii_lowercase(), &p[2..]).to_lowercase(),
        );
    }
    for prefix in ["/run/desktop/mnt/host/", "/host_mnt/", "/mnt/"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            let mut parts = rest.splitn(2, '/');
            let drive = parts.next().unwrap_or("");
            if drive.len() == 1 && drive.as_bytes()[0].is_ascii_alphabetic() {
                return Some(format!("/{drive}/{}", parts.next().unwrap_or("")).to_lowercase());
            }
        }
    }
    None
}

fn resolved(path: &str) -> String {
    std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
        .trim_end_matches(['/', '\\'])
        .to_string()
}

pub fn same_folder(mount_source: &str, host: &Path) -> bool {
    let a = resolved(mount_source);
    let b = resolved(&host.display().to_string());
    if a == b {
        return true;
    }
    match (windows_form(&a), windows_form(&b)) {
        (Some(x), Some(y)) => x.trim_end_matches('/') == y.trim_end_matches('/'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_desktop_spellings_of_one_windows_folder_are_one_folder() {
        let host = Path::new(r"C:\Users\wilha\projects\pipe-dream\.claude\users\qa\container");
        for source in [
            r"C:\Users\wilha\projects\pipe-dream\.claude\users\qa\container",
            "c:/users/wilha/projects/pipe-dream/.claude/users/qa/container/",
            "/run/desktop/mnt/host/c/Users/wilha/projects/pipe-dream/.claude/users/qa/container",
            "/host_mnt/c/Users/wilha/projects/pipe-dream/.claude/users/qa/container",
            "/mnt/c/Users/Wilha/Projects/pipe-dream/.claude/users/qa/container",
        ] {
            assert!(same_folder(source, host), "{source}");
        }
        assert!(!same_folder(
            "/host_mnt/c/Users/wilha/projects/pipe-dream/.claude/users/claude/container",
            host
        ));
        assert!(!same_folder(
            "/mnt/d/Users/wilha/projects/pipe-dream/.claude/users/qa/container",
            host
        ));
    }

    #[test]
    fn linux_paths_compare_exactly_after_resolving_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(same_folder(&link.display().to_string(), &real));
        assert!(!same_folder("/tmp/Real", &real));
        assert!(!same_folder("/mnt/data/x", Path::new("/mnt/data/y")));
    }
}
