//! The one-exec script's try of Claude Code's first connection, run by this host's `sh`
//! with only the programs a given image would have on PATH: bash's /dev/tcp, else
//! python3, else node open the connection, and not one byte is sent on it. (A test file
//! of its own: it builds PATH folders with std::fs, which the library keeps to safefs.)
#![cfg(unix)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use pd_doctor::facts::inside::{parse, Connect, Endpoint, Limit, Request};
use tokio::time::Instant;

/// A folder holding links to `programs` (found on this host), for PATH; `None` when
/// the host lacks one.
fn path_of(programs: &[&str]) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    for p in programs {
        let real = ["/usr/bin", "/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(p))
            .find(|f| f.exists())?;
        std::os::unix::fs::symlink(real, dir.path().join(p)).unwrap();
    }
    Some(dir)
}

fn try_api(port: u16, connector: &str) -> Option<(Option<Connect>, i64)> {
    let dir = path_of(&["sh", "getent", "sleep", "tr", "cat", connector])?;
    let request = Request {
        host_name: "localhost".into(),
        api: Endpoint::new("127.0.0.1", port),
        ..Request::default()
    };
    let argv = request.argv(
        &Limit::until(Instant::now() + Duration::from_secs(3)),
        Duration::from_secs(4),
        0,
    );
    let sh = dir.path().join("sh");
    let out = std::process::Command::new(sh)
        .args(&argv[1..])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let report = parse(&String::from_utf8_lossy(&out.stdout), 0).unwrap();
    let resolved = report.api.resolve.map(|r| r.exit).unwrap_or(-1);
    Some((report.api.connect, resolved))
}

#[test]
fn the_connection_is_opened_by_bash_python3_or_node_and_carries_no_byte() {
    for connector in ["bash", "python3", "node"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let Some((connect, resolved)) = try_api(open, connector) else {
            eprintln!("skipped {connector}: not on this host");
            continue;
        };
        assert_eq!((connect, resolved), (Some(Connect::Open), 0), "{connector}");
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        assert!(got.is_empty(), "{connector} sent {got:?}");
        let (connect, _) = try_api(closed, connector).unwrap();
        assert_eq!(connect, Some(Connect::Refused), "{connector}");
    }
}

#[test]
fn without_bash_python3_or_node_the_connection_is_not_tried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some((connect, resolved)) = try_api(port, "true") else {
        return;
    };
    assert_eq!((connect, resolved), (Some(Connect::Untried), 0));
}
