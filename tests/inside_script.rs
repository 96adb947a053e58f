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
/// anything else 406, as an MCP server does to a plain GET.
fn answering_server() -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if head.starts_with("GET /forbid ") {
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
        urls: urls
            .iter()
            .map(|u| Some(Target::new(&reqwest::Url::parse(u).unwrap())))
            .collect(),
        stdio: vec![None; urls.len()],
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
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .unwrap();
    let report = parse(&String::from_utf8_lossy(&out.stdout), urls.len()).unwrap();
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
