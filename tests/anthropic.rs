//! `container.anthropic`: Claude Code's first connection, to Anthropic's API, tried from
//! inside each container without sending a byte. Every case points the name at a port of
//! this test, at the container itself or at nothing (`--add-host`, `--dns 127.0.0.1`):
//! no lookup and no connection leaves the machine. An empty `ANTHROPIC_BASE_URL` means
//! Claude Code's default, api.anthropic.com:443, and keeps the lab's own stand-in out.

mod common;

use common::hub::{hub_image, hub_servers, hub_tree};
use common::lab::{docker, docker_or_skip, lab_or_skip, Lab};
use common::servers;
use common::{free_port, run_json, Run, Tree};

/// Claude Code's default route: api.anthropic.com, port 443.
const DEFAULT_ROUTE: &str = "ANTHROPIC_BASE_URL=";

/// A primer-layout lab whose agent qa starts with the lab's flags plus `args`, and
/// pd-doctor's verdict on it (the lab stays up while the verdict is read).
async fn primer(test: &str, args: &[&str]) -> Option<(Lab, Run)> {
    let (lab, curl) = lab_or_skip(test, "anthropic", "curl")?;
    let (qms, git) = servers::reachable_pair().await;
    let t = Tree::new(qms, git);
    t.agent("qa", "healthy");
    lab.configure(&t, "");
    lab.start_agent(&t, "qa", &curl, args);
    let run = run_json(t.root(), &["--timeout", "3s"]).await;
    Some((lab, run))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_reaches_its_api_is_ok_and_no_byte_is_sent() {
    // The lab's own stand-in: a port of this process that accepts and closes.
    let Some((_lab, r)) = primer("anthropic_ok", &[]).await else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.stdout);
    r.expect_saying(
        "container.anthropic[qa]",
        "ok",
        "ok",
        &["pd-lab-anthropic:", "ANTHROPIC_BASE_URL", "no byte sent"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_does_not_resolve_is_dns_and_stops_claude_code() {
    let args = ["--dns", "127.0.0.1", "-e", DEFAULT_ROUTE];
    let Some((_lab, r)) = primer("anthropic_dns", &args).await else {
        return;
    };
    assert_eq!(r.code, 1, "{}", r.stdout);
    let c = r.expect_saying(
        "container.anthropic[qa]",
        "fail",
        "dns",
        &["api.anthropic.com:443", "does not resolve", "ENOTFOUND"],
    );
    assert!(
        c["evidence"]
            .to_string()
            .contains("Unable to connect to Anthropic services"),
        "{c}"
    );
    // The MCP servers are reached by /etc/hosts all the same.
    r.expect("container.reach[qa,qms]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_mapped_to_nothing_that_listens_is_refused() {
    let args = [
        "--add-host",
        "api.anthropic.com:127.0.0.1",
        "-e",
        DEFAULT_ROUTE,
    ];
    let Some((_lab, r)) = primer("anthropic_refused", &args).await else {
        return;
    };
    r.expect_saying(
        "container.anthropic[qa]",
        "fail",
        "refused",
        &["api.anthropic.com:443", "127.0.0.1", "ECONNREFUSED"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_nothing_answers_is_a_timeout() {
    let Some(bridge) = servers::bridge_ip() else {
        assert!(!docker_or_skip("a_connection_nothing_answers_is_a_timeout"));
        return;
    };
    // A listener whose accept queue (backlog 0) one connection fills: the kernel drops
    // every SYN after it, as a firewall that drops them would.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::new(bridge, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let _full = socket.listen(0).unwrap();
    let _first = std::net::TcpStream::connect((bridge, port)).unwrap();
    let base = format!("ANTHROPIC_BASE_URL=http://host.docker.internal:{port}");
    let Some((_lab, r)) = primer("anthropic_timeout", &["-e", &base]).await else {
        return;
    };
    r.expect_saying(
        "container.anthropic[qa]",
        "fail",
        "timeout",
        &[&format!("host.docker.internal:{port}"), "ETIMEDOUT"],
    );
    assert!(r.elapsed.as_secs() < 10, "the run ends at its deadline");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_is_the_first_hop_unless_no_proxy_names_the_host() {
    // qa's HTTPS_PROXY is its own loopback, where nothing listens; its password never shows.
    let proxy = [
        "-e",
        DEFAULT_ROUTE,
        "-e",
        "HTTPS_PROXY=http://agent:hunter2@127.0.0.1:9",
    ];
    let Some((lab, r)) = primer("anthropic_proxy", &proxy).await else {
        return;
    };
    let c = r.expect_saying(
        "container.anthropic[qa]",
        "fail",
        "proxy",
        &["the proxy 127.0.0.1:9", "HTTPS_PROXY"],
    );
    assert!(!r.stdout.contains("hunter2"), "{c}");
    drop(lab);

    // The lab's stand-in is http: HTTP_PROXY would carry it, but NO_PROXY names it.
    let bypass = [
        "-e",
        "HTTP_PROXY=http://127.0.0.1:9",
        "-e",
        "NO_PROXY=localhost,pd-lab-anthropic",
    ];
    let (_lab, r) = primer("anthropic_no_proxy", &bypass).await.unwrap();
    r.expect("container.anthropic[qa]", "ok", "ok");
}

/// In the hub layout Claude Code that cannot reach Anthropic exits at once and takes its
/// tmux session with it: the session's absence is explained by the connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_hub_session_that_ended_is_explained_by_an_unreachable_api() {
    if !docker_or_skip("a_hub_session_that_ended_is_explained_by_an_unreachable_api") {
        return;
    }
    let (qms, git) = hub_servers().await;
    let t = hub_tree(qms, git, &["qa"]);
    common::hub::age(&t);
    let lab = Lab::new("anthropic_hub");
    let image = hub_image();
    lab.configure_hub(&t, &image, free_port());
    lab.start_hub_agent(
        &t,
        "qa",
        &image,
        &["--dns", "127.0.0.1", "-e", DEFAULT_ROUTE],
    );
    // What Claude Code's exit leaves behind.
    docker(&["exec", &lab.name("qa"), "tmux", "kill-server"]);
    let r = run_json(t.root(), &[]).await;
    r.expect("container.anthropic[qa]", "fail", "dns");
    let s = r.expect("container.session[qa]", "warn", "no-session");
    assert_eq!(s["explained_by"], "container.anthropic[qa]", "{s}");
}
