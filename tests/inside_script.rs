//! The one-exec script's curl path, run by this host's `sh` with a `curl` on PATH that
//! logs each start: every URL of a container is fetched by one curl process, a 403 gets
//! a fetch of its own for its body, and a curl without `--parallel` gets one fetch per
//! URL with the same answers. (A test file of its own: it writes the wrapper with
//! std::fs, which the library keeps to its safefs module.)
#![cfg(unix)]

use std::time::Duration;

use pd_doctor::facts::docker::ExecOutput;
use pd_doctor::facts::inside::{parse, Limit, Report, Request, Target};
use tokio::time::Instant;

/// A server for the script's tests: `/forbid` answers 403 naming the Host header,
/// anything else 406, as a strict MCP server does to a request it does not take.
fn answering_server() -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if head.contains(" /forbid ") {
                ("403 Forbidden", "Forbidden: Host header is not allowed")
            } else {
                ("406 Not Acceptable", "Not Acceptable")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Runs the script with this host's `sh` and a `curl` on PATH that logs each start
/// and then runs the real one (or, `parallel: false`, refuses `--parallel` as curl
/// before 7.66 does). Returns the report and the logged command lines.
fn run_with_logged_curl(urls: &[&str], parallel: bool) -> Option<(Report, Vec<String>)> {
    let targets: Vec<Target> = urls
        .iter()
        .map(|u| Target::new(&reqwest::Url::parse(u).unwrap()))
        .collect();
    run_with_logged_curl_targets(&targets, parallel)
}

/// The same for targets, with their headers.
fn run_with_logged_curl_targets(
    targets: &[Target],
    parallel: bool,
) -> Option<(Report, Vec<String>)> {
    use std::os::unix::fs::PermissionsExt as _;
    let real = ["/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let refuse = if parallel {
        ""
    } else {
        "case \" $* \" in *\" --parallel \"*) echo 'curl: option --parallel: is unknown' >&2; exit 2 ;; esac\n"
    };
    let wrapper = dir.path().join("curl");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{{ printf '%s ' \"$@\" | tr '\\n' ' '; echo; }} >>'{}'\n{refuse}exec {real} \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let request = Request {
        host_name: "localhost".into(),
        files: Vec::new(),
        urls: targets.iter().cloned().map(Some).collect(),
        stdio: vec![None; targets.len()],
        session: String::new(),
        api: None,
    };
    let argv = request.argv(
        &Limit::until(Instant::now() + Duration::from_secs(3)),
        Duration::from_secs(4),
        0,
    );
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(request.env().iter().filter_map(|v| v.split_once('=')))
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .unwrap();
    let report = parse(&String::from_utf8_lossy(&out.stdout), targets.len()).unwrap();
    let starts = std::fs::read_to_string(&log).unwrap_or_default();
    Some((report, starts.lines().map(String::from).collect()))
}

/// curl fetches every URL in one start; a 403 gets a run of its own for its body;
/// a curl that knows no `--parallel` gets one run per URL, with the same answers.
#[test]
fn curl_starts_once_for_all_urls_and_an_old_curl_once_per_url() {
    let port = answering_server();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let urls = [
        format!("http://127.0.0.1:{port}/mcp"),
        format!("http://127.0.0.1:{closed}/mcp"),
        format!("http://127.0.0.1:{port}/forbid"),
        format!("http://127.0.0.1:{port}/other"),
    ];
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let Some((together, starts)) = run_with_logged_curl(&urls, true) else {
        eprintln!("skipped: no curl on this host");
        return;
    };
    assert_eq!(starts.len(), 2, "one for all, one for the 403: {starts:?}");
    assert!(starts[0].contains("--parallel"), "{starts:?}");
    assert!(starts[1].trim_end().ends_with("/forbid"), "{starts:?}");
    let (alone, starts) = run_with_logged_curl(&urls, false).unwrap();
    assert_eq!(starts.len(), 1 + urls.len(), "{starts:?}");
    for i in 0..urls.len() {
        let (a, b) = (together.reach(i).unwrap(), alone.reach(i).unwrap());
        assert_eq!(a.exit_code, b.exit_code, "{a:?} {b:?}");
        let status = |o: &ExecOutput| {
            o.stdout
                .rsplit_once("__pd_status__")
                .map(|(_, s)| s.to_string())
        };
        assert_eq!(status(&a), status(&b), "{a:?} {b:?}");
    }
    assert_eq!(together.reach(0).unwrap().stdout, "__pd_status__406");
    assert_eq!(together.reach(1).unwrap().exit_code, Some(7));
    assert!(together.reach(1).unwrap().stderr.starts_with("curl: (7) "));
    assert!(together.reach(2).unwrap().stdout.contains("Host header"));
}

/// A server that records each request head and body, and answers 200 with a session.
fn recording_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read as _, Write as _};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // The head, then the body its Content-Length announces.
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_string());
            let body = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: sid-7\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// Every client, run by the script (curl in one start, and one per URL) or on its own
/// (the per-client path), POSTs `initialize` as an MCP client does, with the MCP headers
/// and the entry's own, never a GET; and each says the session the server opened.
#[test]
fn every_client_posts_initialize_with_the_entrys_headers_and_says_its_session() {
    use pd_doctor::facts::inside::{client_argv, client_env};
    use pd_doctor::redact::Secret;
    let (port, seen) = recording_server();
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
    let target = Target::new(&url).with_headers(&[("X-API-Key".into(), Secret::new("k-1"))]);
    // keyed: whether the entry's own header is sent (curl and wget on an exec of their
    // own, in an image without sh, go without: it would be on the exec's command line).
    let check = |what: &str, keyed: bool, requests: Vec<String>| {
        assert!(!requests.is_empty(), "{what}: no request");
        for r in requests {
            let lower = r.to_ascii_lowercase();
            assert!(r.starts_with("POST /mcp "), "{what}: {r}");
            assert!(
                lower.contains("accept: application/json, text/event-stream"),
                "{what}: {r}"
            );
            assert!(
                lower.contains("content-type: application/json"),
                "{what}: {r}"
            );
            assert_eq!(lower.contains("x-api-key: k-1"), keyed, "{what}: {r}");
            assert!(r.contains(r#""method":"initialize""#), "{what}: {r}");
        }
    };
    for client in ["curl", "wget", "python3", "node", "bash"] {
        let argv = client_argv(
            client,
            &target,
            &Limit::until(Instant::now() + Duration::from_secs(2)),
        );
        let Ok(out) = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .envs(client_env(&target).iter().filter_map(|v| v.split_once('=')))
            .output()
        else {
            eprintln!("{client}: not on this host");
            continue;
        };
        let requests = std::mem::take(&mut *seen.lock().unwrap());
        check(client, !matches!(client, "curl" | "wget"), requests);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.contains("sid-7") || stderr.contains("sid-7"),
            "{client}: {stdout} {stderr}"
        );
    }
    // The script, curl in one start for all, and an old curl once per URL.
    for parallel in [true, false] {
        let Some((report, _)) =
            run_with_logged_curl_targets(std::slice::from_ref(&target), parallel)
        else {
            return;
        };
        check(
            "the script",
            true,
            std::mem::take(&mut *seen.lock().unwrap()),
        );
        let out = report.reach(0).unwrap();
        assert!(
            out.stdout.contains("__pd_session__sid-7\n__pd_status__200"),
            "{out:?}"
        );
    }
}

/// The script with only `sh` and one client on PATH: python3, or bash's /dev/tcp; each
/// gets the entry's headers from the exec's environment.
#[test]
fn the_script_hands_each_client_the_entrys_headers() {
    use pd_doctor::redact::Secret;
    let (port, seen) = recording_server();
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/mcp")).unwrap();
    let target = Target::new(&url).with_headers(&[("X-API-Key".into(), Secret::new("k-2"))]);
    for client in ["python3", "bash"] {
        let Some(program) = ["/usr/bin/", "/bin/", "/usr/local/bin/"]
            .iter()
            .map(|d| format!("{d}{client}"))
            .find(|p| std::path::Path::new(p).exists())
        else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&program, dir.path().join(client)).unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).unwrap();
        let request = Request {
            host_name: "localhost".into(),
            files: Vec::new(),
            urls: vec![Some(target.clone())],
            stdio: vec![None],
            session: String::new(),
            api: None,
        };
        let argv = request.argv(
            &Limit::until(Instant::now() + Duration::from_secs(3)),
            Duration::from_secs(4),
            0,
        );
        let out = std::process::Command::new(dir.path().join("sh"))
            .args(&argv[1..])
            .env_clear()
            .envs(request.env().iter().filter_map(|v| v.split_once('=')))
            .env("PATH", dir.path())
            .output()
            .unwrap();
        let report = parse(&String::from_utf8_lossy(&out.stdout), 1).unwrap();
        assert_eq!(report.client, Some(Some(client)), "{report:?}");
        let requests = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(requests.len(), 1, "{client}: {requests:?}");
        let lower = requests[0].to_ascii_lowercase();
        assert!(requests[0].starts_with("POST /mcp "), "{client}: {lower}");
        assert!(lower.contains("x-api-key: k-2"), "{client}: {lower}");
        assert!(
            lower.contains("accept: application/json, text/event-stream"),
            "{client}: {lower}"
        );
        let answer = report.reach(0).unwrap();
        assert!(answer.stdout.contains("sid-7"), "{client}: {answer:?}");
    }
}
