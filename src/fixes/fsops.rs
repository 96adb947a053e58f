//! The only file operations a fix may use: a byte-identical timestamped backup before
//! anything changes, atomic replacement (temp file in the same folder, fsync, rename,
//! permissions kept), deletion that never follows a symlink, and a fence that keeps every
//! write inside the project root and the agents' config dirs.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A timestamp for backup names: milliseconds, as Claude Code names its own backups.
pub fn stamp() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Where the backup of `path` goes: `<config dir>/backups/<name>.pd-doctor.<ts>` for a
/// file in a config dir that has a backups folder, else `<name>.pd-doctor.<ts>` beside it.
pub fn backup_path(path: &Path, ts: u128) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let backups = dir.join("backups");
    let folder = if backups.is_dir() {
        backups
    } else {
        dir.to_path_buf()
    };
    folder.join(format!("{name}.pd-doctor.{ts}"))
}

/// Copies `path` byte for byte to its backup and returns where it went. A symlink is
/// never followed: there is nothing of ours behind it to keep.
pub fn backup(path: &Path, ts: u128) -> io::Result<PathBuf> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let dest = backup_path(path, ts);
    let bytes = fs::read(path)?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&dest)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    fs::set_permissions(&dest, meta.permissions())?;
    Ok(dest)
}

/// Replaces `path` with `bytes` atomically: the original stays whole until the rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, bytes, |from, to| fs::rename(from, to))
}

/// [`write_atomic`] with the rename supplied, so a crash at the last step can be tested.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    rename: impl Fn(&Path, &Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.pd-doctor-tmp.{}", std::process::id()));
    let permissions = fs::metadata(path).map(|m| m.permissions()).ok();
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(p) = permissions {
            fs::set_permissions(&temp, p)?;
        }
        rename(&temp, path)?;
        // The rename itself must reach the disk too.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes `path` itself: a symlink goes, its target stays.
pub fn remove_no_follow(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is a directory; not removing it",
            path.display()
        )));
    }
    fs::remove_file(path)
}

/// The folders fixes may write in.
#[derive(Debug, Clone)]
pub struct Fence {
    allowed: Vec<PathBuf>,
}

impl Fence {
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Fence {
        Fence {
            allowed: roots
                .into_iter()
                .filter_map(|r| fs::canonicalize(r).ok())
                .collect(),
        }
    }

    /// `path`'s folder (symlinks resolved) lies inside an allowed folder.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let real = fs::canonicalize(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        if self.allowed.iter().any(|a| real.starts_with(a)) {
            Ok(())
        } else {
            Err(format!(
                "{} is outside the project root and the agents' config dirs; not touching it",
                path.display()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn backup_is_byte_identical_and_keeps_permissions() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join(".claude.json");
        fs::write(&f, b"{\"a\": 1}\r\n\xEF\xBB\xBF").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let b = backup(&f, 42).unwrap();
        assert_eq!(b, d.path().join(".claude.json.pd-doctor.42"));
        assert_eq!(fs::read(&b).unwrap(), fs::read(&f).unwrap());
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::create_dir(d.path().join("backups")).unwrap();
        assert_eq!(
            backup_path(&f, 7),
            d.path().join("backups/.claude.json.pd-doctor.7")
        );
    }

    #[test]
    fn atomic_write_keeps_permissions() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.json");
        fs::write(&f, "old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&f, b"new").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn crash_before_rename_leaves_the_original_intact() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join(".claude.json");
        fs::write(&f, "original").unwrap();
        let err = write_atomic_with(&f, b"replacement", |_, _| {
            Err(io::Error::other("power cut"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "power cut");
        assert_eq!(fs::read_to_string(&f).unwrap(), "original");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn removing_a_symlink_keeps_its_target() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("precious");
        fs::write(&target, "keep me").unwrap();
        let link = d.path().join(".mcp-configured");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        remove_no_follow(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
        assert!(
            backup(&link, 1).is_err(),
            "a symlink is never copied through"
        );
    }

    #[test]
    fn the_fence_keeps_writes_inside() {
        let d = tempfile::tempdir().unwrap();
        let inside = d.path().join("root");
        fs::create_dir(&inside).unwrap();
        let fence = Fence::new([inside.clone()]);
        assert!(fence.check(&inside.join("a")).is_ok());
        assert!(fence.check(&d.path().join("b")).is_err());
        std::os::unix::fs::symlink(d.path(), inside.join("escape")).unwrap();
        assert!(
            fence.check(&inside.join("escape/c")).is_err(),
            "a symlinked folder leads outside"
        );
    }
}
