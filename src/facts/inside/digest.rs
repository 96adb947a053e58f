//! Files compared by digest: the container's copy as the script summed it
//! (`sha256sum`, else POSIX `cksum`) against the host's, summed the same way.

use sha2::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    Sha256,
    Cksum,
}

/// How a file's content is summed: `sha256sum`, else POSIX `cksum` (both in coreutils
/// and busybox). pd-doctor sums the host's copy the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub algo: Algo,
    pub value: String,
}

impl Digest {
    pub fn of(algo: Algo, bytes: &[u8]) -> Digest {
        let value = match algo {
            Algo::Sha256 => sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            Algo::Cksum => cksum(bytes).to_string(),
        };
        Digest { algo, value }
    }
}

/// The host's copy as the script would print it, line by line; `None` where that could
/// not tell two copies apart (NUL bytes, which a shell drops; not UTF-8; longer lines or
/// more lines than the script prints). A difference in the last newline alone is not
/// seen.
fn host_lines(host: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(host)
        .ok()
        .filter(|t| !t.contains('\0'))?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Some(Vec::new());
    }
    let lines: Vec<&str> = body.split('\n').collect();
    if lines.len() >= MAX_FILE_LINES || lines.iter().any(|l| l.len() >= FILE_LINE_BYTES) {
        return None;
    }
    Some(
        lines
            .iter()
            .map(|l| super::clean::clean(l, FILE_LINE_BYTES))
            .collect(),
    )
}

/// POSIX `cksum`: CRC-32 (polynomial 0x04C11DB7, most significant bit first) over the
/// bytes and then the length, complemented.
pub fn cksum(bytes: &[u8]) -> u32 {
    fn feed(crc: u32, b: u8) -> u32 {
        let mut crc = crc ^ (u32::from(b) << 24);
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
        crc
    }
    let mut crc = bytes.iter().fold(0, |crc, b| feed(crc, *b));
    let mut len = bytes.len();
    while len > 0 {
        crc = feed(crc, (len & 0xff) as u8);
        len >>= 8;
    }
    !crc
}

/// At most this many lines of files come line by line (all files together), each cut to
/// [`FILE_LINE_BYTES`] (see `files` in inside.sh).
pub const MAX_FILE_LINES: usize = 1000;
pub const FILE_LINE_BYTES: usize = 400;

/// A file as the container has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsideFile {
    Missing,
    /// The file itself, its lines as the shell read them (`IFS= read -r`), controls
    /// cleaned: an image with no digest program.
    Lines(Vec<String>),
    /// `digest` is `None` where the image has neither `sha256sum` nor `cksum`.
    Present {
        digest: Option<Digest>,
        size: Option<u64>,
    },
}

impl InsideFile {
    /// The file's text where it came line by line (its last newline, if any, not known).
    pub fn text(&self) -> Option<String> {
        match self {
            InsideFile::Lines(lines) => Some(lines.join("\n")),
            _ => None,
        }
    }

    /// Whether the container's copy differs from `host`; `None`: the report cannot tell.
    pub fn differs_from(&self, host: &[u8]) -> Option<bool> {
        match self {
            InsideFile::Missing => None,
            InsideFile::Lines(lines) => Some(host_lines(host)? != *lines),
            InsideFile::Present { digest, size } => {
                let digest = digest.as_ref()?;
                let other_size = size.is_some_and(|s| s != host.len() as u64);
                Some(other_size || *digest != Digest::of(digest.algo, host))
            }
        }
    }
}
