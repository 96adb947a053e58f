//! What a container left behind to read: one file out of it through the archive
//! endpoint (a tar stream), and the last lines it logged.

use std::time::Duration;

use bollard::query_parameters::{DownloadFromContainerOptionsBuilder, LogsOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;

use super::exec::MAX_EXEC_OUTPUT;

/// The most read of an archive from a container (one file, as a tar stream).
pub const MAX_TAR: usize = 4 * 1024 * 1024;

/// The last lines a stopped container logged: why its entrypoint died.
pub async fn last_log_lines(client: &Docker, container: &str, lines: usize) -> Vec<String> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let read = async {
        let mut text = String::new();
        let mut logs = client.logs(container, Some(options));
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            if text.len() > MAX_EXEC_OUTPUT {
                break;
            }
        }
        text
    };
    let text = tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .unwrap_or_default();
    text.lines()
        .map(|l| crate::facts::inside::clean(l, 200))
        .collect()
}

/// One file out of a container (running or not), via the archive endpoint.
pub async fn read_file(client: &Docker, container: &str, path: &str) -> Option<Vec<u8>> {
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = client.download_from_container(container, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.ok()?);
        if tar.len() > MAX_TAR {
            return None;
        }
    }
    first_tar_entry(&tar)
}

/// The content of the first regular file in a tar archive; PAX and GNU extension
/// headers before it are stepped over (the `tar` crate: checksums verified, base-256
/// sizes read). Bounded by the archive: an entry that claims more than is there is `None`.
pub(crate) fn first_tar_entry(tar: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().ok()? {
        let entry = entry.ok()?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = usize::try_from(entry.size())
            .ok()
            .filter(|s| *s <= tar.len())?;
        let mut body = Vec::with_capacity(size);
        entry.take(size as u64).read_to_end(&mut body).ok()?;
        return (body.len() == size).then_some(body);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        checksum(&mut h);
        h
    }

    /// The header checksum: the byte sum with the field itself counted as spaces.
    fn checksum(h: &mut [u8]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn tar_reading_skips_pax_headers() {
        let mut tar = header("PaxHeaders/entrypoint.sh", b'x', 20);
        tar.extend(vec![b'p'; 20]);
        tar.extend(vec![0u8; 512 - 20]);
        tar.extend(header("entrypoint.sh", b'0', 5));
        tar.extend(b"hello");
        tar.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&tar).as_deref(), Some(&b"hello"[..]));
        assert_eq!(first_tar_entry(&[0u8; 100]), None);
        assert_eq!(first_tar_entry(&[0u8; 1024]), None);
    }

    #[test]
    fn tar_reading_checks_checksums_sizes_and_bounds() {
        // A header whose checksum does not add up is not a header.
        let mut bad = header("entrypoint.sh", b'0', 5);
        bad[0] = b'E';
        bad.extend(b"hello");
        bad.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&bad), None);
        // GNU base-256 size (high bit set, big-endian binary), as tar writes past 8 GiB.
        let mut big = header("entrypoint.sh", b'0', 0);
        big[124..136].fill(0);
        big[124] = 0x80;
        big[135] = 5;
        checksum(&mut big);
        big.extend(b"hello");
        big.extend(vec![0u8; 507]);
        assert_eq!(first_tar_entry(&big).as_deref(), Some(&b"hello"[..]));
        // An entry claiming more than the archive holds is no entry.
        let mut short = header("entrypoint.sh", b'0', 4096);
        short.extend(b"hello");
        assert_eq!(first_tar_entry(&short), None);
    }
}
