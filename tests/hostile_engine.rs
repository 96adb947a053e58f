//! A hostile Docker engine: a fake engine on a unix socket in a temp dir, reached
//! through `DOCKER_HOST`, that answers HTTP/1.1 by hand with what no real engine sends
//! on purpose: a body that never ends, a body that drips a byte at a time, and a
//! 100 MiB answer after a healthy version. The real binary runs against it with
//! `--timeout 2s --json`; each case asserts the exit code, `docker.engine`'s status and
//! cause, the wall time, and the child's peak RSS.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{free_port, measured, Tree, PEAK_KIB};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The run's timeout, and how much longer than it a run may take to end.
const TIMEOUT: &str = "2s";
const WALL: Duration = Duration::from_secs(3);

/// 100 MiB: the size of a hostile `docker ps` or `docker inspect` answer.
const HUGE: usize = 100 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum Engine {
    /// Every request: `200`, then a chunked body that never ends, as fast as it goes.
    Endless,
    /// Every request: `200`, then a chunked body of one byte every 100 ms, forever.
    Dripping,
    /// A healthy `/version`, then a 100 MiB container list.
    HugeList,
    /// A healthy `/version` and a list with one agent container, whose inspect is
    /// 100 MiB.
    HugeInspect,
}

const VERSION: &str = r#"{"Version":"27.5.1","ApiVersion":"1.47","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}"#;
const LIST: &str = r#"[{"Id":"c0ffee","Names":["/agent-qa"],"Image":"pd-agent","State":"running","Status":"Up","Labels":{},"Mounts":[]}]"#;

/// The fake engine's socket, served until the test ends.
fn serve(engine: Engine) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(engine, stream));
        }
    });
    (dir, socket)
}

/// Reads one request head and answers it; a write that fails (pd-doctor hung up) ends it.
async fn answer(engine: Engine, mut stream: UnixStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap_or("/")
        .to_string();
    match engine {
        Engine::Endless => endless(&mut stream).await,
        Engine::Dripping => dripping(&mut stream).await,
        Engine::HugeList | Engine::HugeInspect if path.ends_with("/version") => {
            whole(&mut stream, VERSION).await
        }
        Engine::HugeList if path.ends_with("/containers/json") => huge(&mut stream).await,
        Engine::HugeInspect if path.ends_with("/containers/json") => whole(&mut stream, LIST).await,
        Engine::HugeInspect if path.ends_with("/containers/c0ffee/json") => huge(&mut stream).await,
        _ => {
            let body = r#"{"message":"not in this fake engine"}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        }
    }
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.47\r\nTransfer-Encoding: chunked\r\n\r\n";

async fn endless(stream: &mut UnixStream) -> std::io::Result<()> {
    stream.write_all(CHUNKED).await?;
    let mut chunk = b"10000\r\n".to_vec();
    chunk.extend(std::iter::repeat_n(b' ', 0x10000));
    chunk.extend_from_slice(b"\r\n");
    loop {
        stream.write_all(&chunk).await?;
    }
}

async fn dripping(stream: &mut UnixStream) -> std::io::Result<()> {
    stream.write_all(CHUNKED).await?;
    loop {
        stream.write_all(b"1\r\n \r\n").await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn whole(stream: &mut UnixStream, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.47\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}

/// A 100 MiB JSON answer with its length announced: one string of spaces.
async fn huge(stream: &mut UnixStream) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.47\r\nContent-Length: {HUGE}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(b"\"").await?;
    let block = vec![b' '; 0x10000];
    let mut left = HUGE - 2;
    while left > 0 {
        let n = left.min(block.len());
        stream.write_all(&block[..n]).await?;
        left -= n;
    }
    stream.write_all(b"\"").await
}

/// pd-doctor against `engine`: `docker.engine` fails with `cause`, the run ends on time
/// and stays under the memory bound. Returns the check's message.
async fn against(engine: Engine, cause: &str) -> String {
    let (_dir, socket) = serve(engine);
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let root = t.root().to_path_buf();
    let (r, peak) = tokio::task::spawn_blocking(move || {
        measured(&root, &["--json", "--timeout", TIMEOUT], |cmd| {
            cmd.env("DOCKER_HOST", format!("unix://{}", socket.display()))
                .env_remove("DOCKER_CONTEXT")
                .env_remove("DOCKER_TLS_VERIFY")
                .env_remove("DOCKER_TLS");
        })
    })
    .await
    .unwrap();
    eprintln!(
        "{engine:?}: exit {}, {:?}, peak RSS {} KiB",
        r.code, r.elapsed, peak
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let check = r.expect("docker.engine", "fail", cause);
    assert!(
        r.elapsed < WALL,
        "{engine:?}: {:?} at --timeout {TIMEOUT}",
        r.elapsed
    );
    assert!(
        peak < PEAK_KIB,
        "{engine:?}: peak RSS {peak} KiB, more than {PEAK_KIB} KiB"
    );
    let message = check["message"].as_str().unwrap().to_string();
    eprintln!("{engine:?}: {message}");
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_is_cut_off_at_its_cap() {
    let message = against(Engine::Endless, "too-large").await;
    assert!(message.contains("MiB"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dripping_answer_ends_at_the_deadline() {
    let message = against(Engine::Dripping, "unreachable").await;
    assert!(message.contains("in time"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mib_container_list_is_too_large_not_an_allocation() {
    let message = against(Engine::HugeList, "too-large").await;
    assert!(message.contains("/containers/json"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mib_inspect_is_too_large_not_an_allocation() {
    let message = against(Engine::HugeInspect, "too-large").await;
    assert!(message.contains("/containers/c0ffee/json"), "{message}");
}
