//! The one way pd-doctor touches a file in the project tree or an agent's config dir.
//!
//! Everything under those folders is writable by the agent containers, so every name
//! there may be a planted symlink, a FIFO, a device or a sparse file of many GB, and may
//! be swapped between a look and a use. Reads here never block (non-blocking open, type
//! checked before and after the open), check the size on the open handle and read at
//! most a stated cap, and refuse a symlink where pd-doctor chose the name itself. Writes
//! happen only inside the [`Fence`], through a handle on the folder that was opened
//! without following a link: new files are created exclusively (`O_EXCL` never follows
//! a link) under retried names, replacements are written to a fresh temp file and
//! renamed over the original, permissions and (as root) the owner are kept.
//!
//! On Unix this is `openat`-style work through `rustix`; elsewhere a portable fallback
//! does the same checks by path (a smaller guarantee, as the platform allows).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Claude Code's own `.claude.json` reaches a few MB; anything far beyond is no config.
pub const JSON_CAP: u64 = 64 * 1024 * 1024;
/// Scripts, Dockerfiles, `pd-doctor.toml`, project checks, the docker CLI's config.
pub const TEXT_CAP: u64 = 1024 * 1024;
/// A PID file holds one number.
pub const PID_CAP: u64 = 4 * 1024;

/// Whether a symlink at the last component of a path is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The path came from the layout or the user (a config dir may be a link on purpose).
    Follow,
    /// pd-doctor chose the name itself (backups, markers, PID files): a link is a finding.
    Refuse,
}

/// Why a file was not read; the text completes "<path> ...".
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("does not exist")]
    Missing,
    /// A symlink where pd-doctor expects a file, or one that leads nowhere.
    #[error("is {0}")]
    Link(&'static str),
    /// A directory, FIFO, socket or device: never opened for a blocking read.
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is {size} bytes, more than the {} pd-doctor reads", human_size(*cap))]
    TooLarge { size: u64, cap: u64 },
    #[error("{0}")]
    Io(#[source] io::Error),
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// What a file was when pd-doctor looked: a repair acts only on the file it planned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub kind: Kind,
    pub len: u64,
    pub modified: Option<SystemTime>,
    /// Device and inode where the platform has them: a file replaced under the same name
    /// is another file.
    pub identity: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

impl FileState {
    fn of(meta: &std::fs::Metadata) -> FileState {
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            Kind::Link
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        FileState {
            kind,
            len: meta.len(),
            modified: meta.modified().ok(),
            identity: identity(meta),
        }
    }

    /// How this state differs from `now`, in words, or `None` when it is the same file.
    pub fn change_to(&self, now: Option<&FileState>) -> Option<String> {
        let Some(now) = now else {
            return Some("it is gone".into());
        };
        if self == now {
            return None;
        }
        Some(if self.kind != now.kind {
            format!("it is now {:?} (was {:?})", now.kind, self.kind).to_lowercase()
        } else if self.identity != now.identity {
            "another file now stands at that name".into()
        } else if self.len != now.len {
            format!("its size went from {} to {} bytes", self.len, now.len)
        } else {
            "it was modified".into()
        })
    }
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// The state of whatever stands at `path` (a link is described, not followed).
pub fn state(path: &Path) -> Option<FileState> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| FileState::of(&m))
}

/// Whether anything (even a dangling link) stands at `path`.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn kind_word(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Reads at most `cap` bytes of the regular file at `path`, or says why not.
pub fn read(path: &Path, cap: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    // Looked at first, so a FIFO, socket or device is never even opened.
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Io(e)),
    };
    let before = if before.file_type().is_symlink() {
        if links == Links::Refuse {
            return Err(ReadError::Link("a symlink"));
        }
        match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ReadError::Link("a symlink to nothing"))
            }
            Err(e) => return Err(ReadError::Io(e)),
        }
    } else {
        before
    };
    if !before.is_file() {
        return Err(ReadError::NotRegular(kind_word(before.file_type())));
    }
    read_handle(open_read(path, links)?, cap).map(|(bytes, _)| bytes)
}

/// Reads an opened file: its type and size judged on the handle (what was looked at
/// before the open may have been swapped since), at most `cap` bytes.
fn read_handle(file: std::fs::File, cap: u64) -> Result<(Vec<u8>, std::fs::Metadata), ReadError> {
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_word(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok((bytes, meta))
}

/// [`read`] as text; bytes that are not UTF-8 become U+FFFD.
pub fn read_text(path: &Path, cap: u64, links: Links) -> Result<String, ReadError> {
    read(path, cap, links).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(unix)]
fn open_read(path: &Path, links: Links) -> Result<std::fs::File, ReadError> {
    use rustix::fs::{Mode, OFlags};
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if links == Links::Refuse {
        flags |= OFlags::NOFOLLOW;
    }
    opened(rustix::fs::open(path, flags, Mode::empty()))
}

/// A read-only open's outcome in pd-doctor's words: ELOOP under O_NOFOLLOW is a link,
/// ENXIO a socket.
#[cfg(unix)]
fn opened(result: rustix::io::Result<std::os::fd::OwnedFd>) -> Result<std::fs::File, ReadError> {
    match result {
        Ok(fd) => Ok(std::fs::File::from(fd)),
        Err(rustix::io::Errno::LOOP) => Err(ReadError::Link("a symlink")),
        Err(rustix::io::Errno::NXIO) => Err(ReadError::NotRegular("a socket")),
        Err(rustix::io::Errno::NOENT) => Err(ReadError::Missing),
        Err(e) => Err(ReadError::Io(e.into())),
    }
}

#[cfg(not(unix))]
fn open_read(path: &Path, _links: Links) -> Result<std::fs::File, ReadError> {
    std::fs::File::open(path).map_err(ReadError::Io)
}

/// The folders a repair may write in: the project root and the folders `pd-doctor.toml`
/// names. A config dir known only from a container's mounts is not among them.
#[derive(Debug, Clone)]
pub struct Fence {
    allowed: Vec<PathBuf>,
}

impl Fence {
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Fence {
        Fence {
            allowed: roots
                .into_iter()
                .filter_map(|r| std::fs::canonicalize(r).ok())
                .collect(),
        }
    }

    /// `folder` (links resolved) lies inside an allowed folder.
    pub fn contains(&self, folder: &Path) -> bool {
        std::fs::canonicalize(folder)
            .is_ok_and(|real| self.allowed.iter().any(|a| real.starts_with(a)))
    }

    /// `path`'s folder (links resolved) lies inside an allowed folder.
    pub fn check(&self, path: &Path) -> Result<(), String> {
        let parent = path.parent().unwrap_or(Path::new("."));
        if self.contains(parent) {
            Ok(())
        } else {
            Err(format!(
                "{} is outside the project root and the folders pd-doctor.toml names; not touching it",
                path.display()
            ))
        }
    }

    /// Opens the folder of `path` for writing in it: inside the fence, and not a link.
    pub fn folder_of(&self, path: &Path) -> io::Result<(Dir, String)> {
        self.check(path).map_err(io::Error::other)?;
        let parent = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            io::Error::other(format!("{} has no usable file name", path.display()))
        })?;
        Ok((Dir::open(parent)?, name.to_string()))
    }
}

/// A folder held open: every name below is resolved against the handle, so swapping the
/// folder for a link after the check leads nowhere.
pub struct Dir {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

fn already_exists(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AlreadyExists
}

impl Dir {
    /// Opens `path`, refusing a link at its last component.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            return Err(io::Error::other(format!(
                "{} is a symlink; pd-doctor does not write through links",
                path.display()
            )));
        }
        if !meta.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            Ok(Dir {
                path: path.to_path_buf(),
                fd,
            })
        }
        #[cfg(not(unix))]
        Ok(Dir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What stands at `name` in this folder, not following a link.
    pub fn state(&self, name: &str) -> Option<FileState> {
        #[cfg(unix)]
        {
            use rustix::fs::AtFlags;
            let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
            let kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                rustix::fs::FileType::RegularFile => Kind::File,
                rustix::fs::FileType::Directory => Kind::Dir,
                rustix::fs::FileType::Symlink => Kind::Link,
                _ => Kind::Other,
            };
            let modified = u64::try_from(st.st_mtime).ok().map(|s| {
                SystemTime::UNIX_EPOCH
                    + std::time::Duration::new(s, u32::try_from(st.st_mtime_nsec).unwrap_or(0))
            });
            Some(FileState {
                kind,
                len: u64::try_from(st.st_size).unwrap_or(0),
                modified,
                identity: (st.st_dev as u64, st.st_ino as u64),
            })
        }
        #[cfg(not(unix))]
        state(&self.path.join(name))
    }

    /// Reads the regular file `name` (never a link) of at most `cap` bytes.
    pub fn read(&self, name: &str, cap: u64) -> Result<(Vec<u8>, std::fs::Metadata), ReadError> {
        match self.state(name) {
            None => return Err(ReadError::Missing),
            Some(s) if s.kind == Kind::Link => return Err(ReadError::Link("a symlink")),
            Some(s) if s.kind != Kind::File => {
                return Err(ReadError::NotRegular(if s.kind == Kind::Dir {
                    "a directory"
                } else {
                    "not a regular file"
                }))
            }
            Some(_) => {}
        }
        read_handle(self.open_at(name)?, cap)
    }

    #[cfg(unix)]
    fn open_at(&self, name: &str) -> Result<std::fs::File, ReadError> {
        use rustix::fs::{Mode, OFlags};
        let flags =
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        opened(rustix::fs::openat(&self.fd, name, flags, Mode::empty()))
    }

    #[cfg(not(unix))]
    fn open_at(&self, name: &str) -> Result<std::fs::File, ReadError> {
        std::fs::File::open(self.path.join(name)).map_err(ReadError::Io)
    }

    /// The last `max` bytes of the regular file `name` (never a link): a log's tail,
    /// however long the log grew.
    pub fn read_tail(&self, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
        use std::io::{Seek, SeekFrom};
        let mut file = self.open_at(name)?;
        let meta = file.metadata().map_err(ReadError::Io)?;
        if !meta.is_file() {
            return Err(ReadError::NotRegular(kind_word(meta.file_type())));
        }
        file.seek(SeekFrom::Start(meta.len().saturating_sub(max)))
            .map_err(ReadError::Io)?;
        let mut bytes = Vec::new();
        file.take(max)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        Ok(bytes)
    }

    /// The folder `name` in this one, created (0755) when it does not exist; a link
    /// there is refused, never followed.
    pub fn subdir(&self, name: &str) -> io::Result<Dir> {
        let path = self.path.join(name);
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::other(format!(
                    "{} is not a folder pd-doctor may write in (a link or a file)",
                    path.display()
                )),
                e => e.into(),
            })?;
            Ok(Dir { path, fd })
        }
        #[cfg(not(unix))]
        {
            std::fs::create_dir_all(&path)?;
            Dir::open(&path)
        }
    }

    /// Creates `name` exclusively: a link, file or anything else already there makes
    /// this fail, and nothing is written through it.
    fn create_new(&self, name: &str) -> io::Result<std::fs::File> {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            Ok(std::fs::File::from(fd))
        }
        #[cfg(not(unix))]
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.path.join(name))
    }

    /// Creates the first free name of `base`, `base.1`, `base.2`, …: a name someone
    /// planted (a link, a file) is stepped over, never written through.
    pub fn create_retrying(&self, base: &str) -> io::Result<(std::fs::File, String)> {
        let mut last = None;
        for n in 0..64 {
            let name = if n == 0 {
                base.to_string()
            } else {
                format!("{base}.{n}")
            };
            match self.create_new(&name) {
                Ok(f) => return Ok((f, name)),
                Err(e) if already_exists(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free name")))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        #[cfg(unix)]
        {
            rustix::fs::renameat(&self.fd, from, &self.fd, to)?;
            Ok(())
        }
        #[cfg(not(unix))]
        std::fs::rename(self.path.join(from), self.path.join(to))
    }

    /// Removes `name` itself: a link goes, its target stays; a folder is refused.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        if self.state(name).is_some_and(|s| s.kind == Kind::Dir) {
            return Err(io::Error::other(format!(
                "{} is a directory; not removing it",
                self.path.join(name).display()
            )));
        }
        #[cfg(unix)]
        {
            rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())?;
            Ok(())
        }
        #[cfg(not(unix))]
        std::fs::remove_file(self.path.join(name))
    }

    /// What a link at `name` points to, for the narration.
    pub fn link_target(&self, name: &str) -> String {
        std::fs::read_link(self.path.join(name))
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    }

    fn sync(&self) {
        #[cfg(unix)]
        let _ = rustix::fs::fsync(&self.fd);
    }
}

/// Gives a file pd-doctor wrote the permissions and (as root) the owner of the one it
/// copies or replaces, on the open handle.
fn take_over(file: &std::fs::File, like: &std::fs::Metadata) -> io::Result<()> {
    file.set_permissions(like.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if rustix::process::geteuid().is_root() {
            rustix::fs::fchown(
                file,
                Some(rustix::process::Uid::from_raw(like.uid())),
                Some(rustix::process::Gid::from_raw(like.gid())),
            )?;
        }
    }
    Ok(())
}

fn write_all_synced(mut file: &std::fs::File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Copies the regular file `name` of `from` byte for byte to a new file in `to`, named
/// `base` or the first free `base.N`; returns the name it got.
pub fn copy_exclusive(from: &Dir, name: &str, to: &Dir, base: &str) -> io::Result<String> {
    let (bytes, meta) = from
        .read(name, JSON_CAP)
        .map_err(|e| io::Error::other(format!("{} {e}", from.path().join(name).display())))?;
    let (file, got) = to.create_retrying(base)?;
    let written = take_over(&file, &meta).and_then(|()| write_all_synced(&file, &bytes));
    if let Err(e) = written {
        let _ = to.remove(&got);
        return Err(e);
    }
    to.sync();
    Ok(got)
}

/// Where backups of files in `folder` go: its `backups/` when that is a real folder (not
/// a link), else `folder` itself.
pub fn backup_folder(folder: &Dir) -> io::Result<Dir> {
    let backups = folder.path().join("backups");
    match state(&backups) {
        Some(s) if s.kind == Kind::Dir => Dir::open(&backups),
        _ => Dir::open(folder.path()),
    }
}

/// A millisecond timestamp for backup names, as Claude Code names its own backups.
pub fn stamp() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Copies the regular file `name` of `dir`, byte for byte, to
/// `<backups folder>/<name>.pd-doctor.<stamp>` (or the first free `.N` after it) and
/// returns where it went.
pub fn backup(dir: &Dir, name: &str, stamp: u128) -> io::Result<PathBuf> {
    let to = backup_folder(dir)?;
    let got = copy_exclusive(dir, name, &to, &format!("{name}.pd-doctor.{stamp}"))?;
    Ok(to.path().join(got))
}

/// Replaces `name` in `dir` with `bytes` atomically: a fresh temp file (exclusive, random
/// name) in the same folder, synced, renamed over the original. The original's
/// permissions and owner are kept; it stays whole until the rename.
pub fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(dir, name, bytes, |d, from, to| d.rename(from, to))
}

/// [`write_atomic`] with the rename supplied, so a crash at the last step can be tested.
pub fn write_atomic_with(
    dir: &Dir,
    name: &str,
    bytes: &[u8],
    rename: impl Fn(&Dir, &str, &str) -> io::Result<()>,
) -> io::Result<()> {
    let like = match dir.open_at(name) {
        Ok(f) => f.metadata().ok().filter(|m| m.is_file()),
        Err(_) => None,
    };
    let (file, temp) = dir.create_retrying(&format!(".{name}.pd-doctor-tmp.{}", random_tag()))?;
    let result = (|| {
        if let Some(like) = &like {
            take_over(&file, like)?;
        }
        write_all_synced(&file, bytes)?;
        rename(dir, &temp, name)?;
        // The rename itself must reach the disk too.
        dir.sync();
        Ok(())
    })();
    if result.is_err() {
        let _ = dir.remove(&temp);
    }
    result
}

/// A name part no one can guess ahead: the clock's nanoseconds and the process id,
/// through the standard library's randomly keyed hasher.
fn random_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn read_errors_say_what_the_file_is_and_keep_their_cause() {
        use std::error::Error as _;
        assert_eq!(ReadError::Missing.to_string(), "does not exist");
        assert_eq!(ReadError::Link("a symlink").to_string(), "is a symlink");
        assert_eq!(
            ReadError::NotRegular("a FIFO").to_string(),
            "is a FIFO, not a regular file"
        );
        assert_eq!(
            ReadError::TooLarge {
                size: 5_000_000,
                cap: TEXT_CAP
            }
            .to_string(),
            "is 5000000 bytes, more than the 1 MiB pd-doctor reads"
        );
        let io = ReadError::Io(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(io.to_string(), "permission denied");
        assert!(io.source().is_some(), "the io::Error is the source");
    }

    fn dir() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn a_fifo_is_reported_not_opened() {
        let (t, d) = dir();
        let fifo = t.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            read(&fifo, 10, Links::Follow),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(matches!(d.read("pipe", 10), Err(ReadError::NotRegular(_))));
    }

    #[test]
    fn a_sparse_file_beyond_the_cap_is_refused_without_reading() {
        let (t, d) = dir();
        let f = fs::File::create(t.path().join("big")).unwrap();
        f.set_len(20 * 1024 * 1024 * 1024).unwrap();
        let err = read(&t.path().join("big"), JSON_CAP, Links::Follow).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        assert!(matches!(
            d.read("big", PID_CAP),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn links_are_refused_where_pd_doctor_chose_the_name() {
        let (t, d) = dir();
        fs::write(t.path().join("target"), "secret").unwrap();
        symlink(t.path().join("target"), t.path().join("link")).unwrap();
        assert!(matches!(
            read(&t.path().join("link"), 10, Links::Refuse),
            Err(ReadError::Link(_))
        ));
        assert_eq!(
            read(&t.path().join("link"), 10, Links::Follow).unwrap(),
            b"secret"
        );
        assert!(matches!(d.read("link", 10), Err(ReadError::Link(_))));
        symlink(t.path().join("nothing"), t.path().join("dangling")).unwrap();
        assert!(matches!(
            read(&t.path().join("dangling"), 10, Links::Follow),
            Err(ReadError::Link("a symlink to nothing"))
        ));
    }

    #[test]
    fn exclusive_creation_steps_over_planted_links() {
        let (t, d) = dir();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        symlink(&victim, t.path().join("copy")).unwrap();
        symlink(&victim, t.path().join("copy.1")).unwrap();
        fs::write(t.path().join("src"), "data").unwrap();
        let got = copy_exclusive(&d, "src", &d, "copy").unwrap();
        assert_eq!(got, "copy.2");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(fs::read_to_string(t.path().join("copy.2")).unwrap(), "data");
    }

    #[test]
    fn atomic_write_keeps_permissions_and_leaves_no_temp() {
        let (t, d) = dir();
        let f = t.path().join("x.json");
        fs::write(&f, "old").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&d, "x.json", b"new").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "new");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn as_root_a_replaced_file_keeps_its_owner() {
        if !rustix::process::geteuid().is_root() {
            return; // Only root can hand a file to someone else; CI runs as root.
        }
        use std::os::unix::fs::MetadataExt;
        let (t, d) = dir();
        let f = t.path().join(".claude.json");
        fs::write(&f, "{}").unwrap();
        std::os::unix::fs::chown(&f, Some(4242), Some(4343)).unwrap();
        write_atomic(&d, ".claude.json", b"{\"a\": 1}").unwrap();
        let meta = fs::metadata(&f).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
        let copy = copy_exclusive(&d, ".claude.json", &d, "kept").unwrap();
        let meta = fs::metadata(t.path().join(copy)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
    }

    #[test]
    fn crash_before_rename_leaves_the_original_intact() {
        let (t, d) = dir();
        let f = t.path().join(".claude.json");
        fs::write(&f, "original").unwrap();
        let err = write_atomic_with(&d, ".claude.json", b"replacement", |_, _, _| {
            Err(io::Error::other("power cut"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "power cut");
        assert_eq!(fs::read_to_string(&f).unwrap(), "original");
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "temp file left behind"
        );
    }

    #[test]
    fn removing_a_symlink_keeps_its_target() {
        let (t, d) = dir();
        let target = t.path().join("precious");
        fs::write(&target, "keep me").unwrap();
        symlink(&target, t.path().join(".mcp-configured")).unwrap();
        d.remove(".mcp-configured").unwrap();
        assert!(!exists(&t.path().join(".mcp-configured")));
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
        fs::create_dir(t.path().join("sub")).unwrap();
        assert!(d.remove("sub").is_err());
    }

    #[test]
    fn subfolders_are_made_but_never_entered_through_a_link() {
        let (t, d) = dir();
        let logs = d.subdir(".pd-doctor").unwrap().subdir("logs").unwrap();
        assert!(t.path().join(".pd-doctor/logs").is_dir());
        let (mut f, name) = logs.create_retrying("a.log").unwrap();
        f.write_all(&b"x".repeat(5000)).unwrap();
        f.write_all(b"\nlast line\n").unwrap();
        assert_eq!(logs.read_tail(&name, 10).unwrap(), b"last line\n");
        symlink(std::env::temp_dir(), t.path().join("out")).unwrap();
        assert!(d.subdir("out").is_err());
    }

    #[test]
    fn a_linked_folder_is_not_written_in() {
        let t = tempfile::tempdir().unwrap();
        symlink(std::env::temp_dir(), t.path().join("backups")).unwrap();
        assert!(Dir::open(&t.path().join("backups")).is_err());
        let d = Dir::open(t.path()).unwrap();
        assert_eq!(backup_folder(&d).unwrap().path(), t.path());
    }

    #[test]
    fn the_fence_keeps_writes_inside() {
        let d = tempfile::tempdir().unwrap();
        let inside = d.path().join("root");
        fs::create_dir(&inside).unwrap();
        let fence = Fence::new([inside.clone()]);
        assert!(fence.check(&inside.join("a")).is_ok());
        assert!(fence.check(&d.path().join("b")).is_err());
        symlink(d.path(), inside.join("escape")).unwrap();
        assert!(
            fence.check(&inside.join("escape/c")).is_err(),
            "a symlinked folder leads outside"
        );
    }

    #[test]
    fn a_changed_file_is_told_apart() {
        let (t, _) = dir();
        let f = t.path().join("a");
        fs::write(&f, "one").unwrap();
        let s = state(&f).unwrap();
        assert_eq!(s.change_to(state(&f).as_ref()), None);
        fs::write(&f, "three").unwrap();
        assert!(s.change_to(state(&f).as_ref()).unwrap().contains("size"));
        fs::remove_file(&f).unwrap();
        assert_eq!(s.change_to(None).as_deref(), Some("it is gone"));
    }
}
