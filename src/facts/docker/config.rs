//! The docker CLI's own files: its config folder, where its TLS files are, and a capped
//! read of any of them.

use std::path::{Path, PathBuf};

/// The docker CLI's config folder: DOCKER_CONFIG, else ~/.docker.
pub(super) fn config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// Where the CLI's TLS files are: DOCKER_CERT_PATH, else the config folder.
pub(super) fn cert_dir(config_dir: Option<&Path>) -> (PathBuf, String) {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(path) => (PathBuf::from(path), "DOCKER_CERT_PATH".into()),
        None => (
            config_dir.map(Path::to_path_buf).unwrap_or_default(),
            "the default DOCKER_CERT_PATH".into(),
        ),
    }
}

/// The most pd-doctor reads of the docker CLI's config.json, a context's meta.json or a
/// TLS file.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads one of the docker CLI's files through the trust boundary (non-blocking, capped).
pub(crate) fn read_small_file(path: &Path) -> Result<Vec<u8>, crate::safefs::ReadError> {
    crate::safefs::read(path, MAX_CONFIG_BYTES, crate::safefs::Links::Follow)
}
