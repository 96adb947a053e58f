//! Primer 8.2 to 8.4 against a real Docker engine: lab images built FROM scratch from this
//! host's programs, one real container per broken pattern, and real MCP servers on the
//! Docker bridge. Every container is unique to its test and removed afterwards.

mod common;

use common::lab::{self, docker, docker_or_skip, lab_or_skip, Lab, GATEWAY};
use common::servers::{self, Bind, Fault, McpOptions};
use common::{free_port, run_json, Run, Tree};

fn tree(lab: &Lab, qms: u16, git: u16, agents: &[&str]) -> Tree {
    let t = Tree::new(qms, git);
    for a in agents {
        t.agent(a, "healthy");
    }
    lab.configure(&t, "");
    t
}

async fn diagnose(t: &Tree) -> Run {
    run_json(t.root(), &["--timeout", "3s"]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn running_and_healthy_lab_passes_every_check() {
    let Some((lab, curl)) = lab_or_skip(
        "running_and_healthy_lab_passes_every_check",
        "healthy",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["claude", "qa"]);
    // Approved as Pipe Dream approves them: the settings overlay, mounted.
    t.approve();
    lab.start_agent(&t, "claude", curl, &[]);
    lab.start_agent(&t, "qa", curl, &[]);
    let r = diagnose(&t).await;
    for c in r.json()["checks"].as_array().unwrap() {
        assert_eq!(
            c["status"],
            "ok",
            "{}",
            serde_json::to_string_pretty(c).unwrap()
        );
    }
    assert_eq!(r.code, 0);
    r.expect("container.reach[qa,qms]", "ok", "ok");
}

/// With the project's servers approved, Claude Code uses the project's entry over the
/// agent's own user-scope one (local, then project, then user): container.reach tries the
/// URL in use, as config.server_entry judges it, not the stale user copy.
#[tokio::test(flavor = "multi_thread")]
async fn the_approved_project_entry_is_the_url_reached() {
    let Some((lab, curl)) = lab_or_skip(
        "the_approved_project_entry_is_the_url_reached",
        "inuse",
        "curl",
    ) else {
        return;
    };
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    // Approved, in a folder whose trust dialog qa accepted: only then does Claude Code
    // take the project copy over its own (config.trust).
    t.approve();
    t.trust("qa");
    let path = t.path(".claude/users/qa/container/.claude.json");
    let stale = format!("http://{}:{}/mcp", "host.docker.internal", free_port());
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["mcpServers"]["qms"]["url"] = stale.clone().into();
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    lab.start_agent(&t, "qa", &curl, &[]);
    let r = diagnose(&t).await;
    r.expect("config.server_entry[qa,qms]", "ok", "ok");
    let c = r.expect("container.reach[qa,qms]", "ok", "ok");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains(&format!(":{qms}/mcp")),
        "{c}"
    );
    let tried = serde_json::to_string(&r.check("container.reach[qa,qms]")).unwrap();
    assert!(
        !tried.contains(&stale),
        "the user copy is not in use: {tried}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_container_is_stale() {
    let Some((lab, curl)) = lab_or_skip("stopped_container_is_stale", "stale", "curl") else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.push(GATEWAY.into());
    lab.start(&lab.name("qa"), false, &args, &[curl]);
    let r = diagnose(&t).await;
    r.expect("container.state[qa]", "fail", "stopped");
    let c = r.expect("containers.stale", "warn", "stale");
    assert_eq!(c["fix"]["available"], true);
    r.expect("container.reach[qa,qms]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn entrypoint_bypassed_with_sleep_infinity() {
    let Some((lab, curl)) =
        lab_or_skip("entrypoint_bypassed_with_sleep_infinity", "bypass", "curl")
    else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.extend([
        GATEWAY.to_string(),
        "--entrypoint".into(),
        "/bin/bash".into(),
    ]);
    lab.start(
        &lab.name("qa"),
        true,
        &args,
        &[curl, "-c", "sleep infinity"],
    );
    let r = diagnose(&t).await;
    r.expect("container.entrypoint[qa]", "fail", "bypassed");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_host_gateway_means_no_host_docker_internal() {
    let Some((lab, curl)) = lab_or_skip(
        "no_host_gateway_means_no_host_docker_internal",
        "nogateway",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.extend(["--dns".to_string(), "127.0.0.1".into()]);
    lab.start(&lab.name("qa"), true, &args, &[curl]);
    let r = diagnose(&t).await;
    r.expect("container.host_gateway[qa]", "fail", "missing");
    r.expect("container.reach[qa,qms]", "fail", "dns");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_config_dir_mounted_into_two_agent_containers() {
    let Some((lab, curl)) = lab_or_skip(
        "one_config_dir_mounted_into_two_agent_containers",
        "shared",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["claude", "qa"]);
    lab.start_agent(&t, "qa", curl, &[]);
    // claude's container, started with qa's config dir: the copy-paste of primer 6.3.
    let mut args: Vec<String> = Lab::standard_args(&t, "claude")
        .into_iter()
        .map(|a| a.replace("users/claude/container", "users/qa/container"))
        .collect();
    args.push(GATEWAY.into());
    lab.start(&lab.name("claude"), true, &args, &[curl]);
    let r = diagnose(&t).await;
    let c = r.expect("config.isolation", "fail", "shared");
    assert!(
        c["message"].as_str().unwrap().contains(&lab.name("claude")),
        "{c}"
    );
    r.expect("container.mounts[claude]", "fail", "wrong-config-dir");
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_json_overlay_missing_and_identity_missing() {
    let Some((lab, curl)) = lab_or_skip(
        "mcp_json_overlay_missing_and_identity_missing",
        "mounts",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa", "tu_ui"]);
    let drop_mount = |agent: &str, needle: &str| {
        let mut args = Lab::standard_args(&t, agent);
        let at = args.iter().position(|a| a.contains(needle)).unwrap();
        args.drain(at - 1..=at);
        args.push(GATEWAY.into());
        args
    };
    lab.start(
        &lab.name("qa"),
        true,
        &drop_mount("qa", ":/pipe-dream/.mcp.json"),
        &[curl],
    );
    lab.start(
        &lab.name("tu_ui"),
        true,
        &drop_mount("tu_ui", ":/pipe-dream/CLAUDE.md"),
        &[curl],
    );
    let r = diagnose(&t).await;
    // qa's Claude Code uses its own user-scope entries, which work: a latent risk.
    r.expect_saying(
        "container.mounts[qa]",
        "warn",
        "missing-mcp-overlay",
        &["not mounted"],
    );
    r.expect("container.mounts[tu_ui]", "fail", "missing-identity");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_on_loopback_only_is_refused_from_the_container() {
    let Some((lab, curl)) = lab_or_skip(
        "server_on_loopback_only_is_refused_from_the_container",
        "loopback",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let qms = servers::mcp_server(McpOptions {
        key: Some("qms-internal".into()),
        ..Default::default()
    })
    .await;
    let (_, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms.port, git, &["qa"]);
    lab.start_agent(&t, "qa", curl, &[]);
    let r = diagnose(&t).await;
    r.expect("server.listen[qms]", "fail", "loopback-only");
    r.expect("server.mcp[qms]", "ok", "ok");
    r.expect("container.reach[qa,qms]", "fail", "refused");
    r.expect("container.reach[qa,git]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_server_times_out_from_the_container_too() {
    let Some((lab, curl)) = lab_or_skip(
        "hung_server_times_out_from_the_container_too",
        "hung",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let hung = servers::fault_server_on(Fault::Hang, Bind::Reachable).await;
    let t = tree(&lab, hung.port, free_port(), &["qa"]);
    lab.start_agent(&t, "qa", curl, &[]);
    let r = run_json(t.root(), &["--timeout", "1s"]).await;
    r.expect("server.mcp[qms]", "fail", "timeout");
    r.expect("container.reach[qa,qms]", "fail", "timeout");
    r.expect("container.reach[qa,git]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn image_rebuilt_after_the_container_started() {
    let Some((lab, curl)) = lab_or_skip(
        "image_rebuilt_after_the_container_started",
        "rebuilt",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let tag = format!("pdt-{}-img", lab.id);
    docker(&["tag", curl.as_str(), &tag]);
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    lab.start_agent(&t, "qa", &tag, &[]);
    let edited = format!(
        "{}\n# edited on the host after the build\n",
        lab::ENTRYPOINT
    );
    assert_ne!(edited, lab::ENTRYPOINT);
    t.write("docker/entrypoint.sh", &edited);
    let before = diagnose(&t).await;
    before.expect("container.image[qa]", "fail", "entrypoint-differs");
    lab::build_image(&tag, "curl", &edited);
    let after = diagnose(&t).await;
    after.expect("container.image[qa]", "fail", "outdated");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_containers_for_one_agent() {
    let Some((lab, curl)) = lab_or_skip("two_containers_for_one_agent", "duplicate", "curl") else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    lab.start_agent(&t, "qa", curl, &[]);
    // A compose-style second container for qa, found by its config mount.
    let mut args = Lab::standard_args(&t, "qa");
    args.push(GATEWAY.into());
    lab.start(&format!("pdt-{}-other-qa", lab.id), false, &args, &[curl]);
    let r = diagnose(&t).await;
    let c = r.expect("containers.duplicate[qa]", "warn", "duplicate");
    assert_eq!(c["fix"]["available"], true);
    lab.start(&format!("pdt-{}-third-qa", lab.id), true, &args, &[curl]);
    let r = diagnose(&t).await;
    r.expect("containers.duplicate[qa]", "fail", "duplicate");
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_container_serves_claude_by_its_labels() {
    let Some((lab, curl)) = lab_or_skip(
        "compose_container_serves_claude_by_its_labels",
        "compose",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["claude"]);
    let mut args = Lab::standard_args(&t, "claude");
    args.extend([
        GATEWAY.to_string(),
        "--label".into(),
        format!("com.docker.compose.project=pdt-{}", lab.id),
        "--label".into(),
        "com.docker.compose.service=claude-agent".into(),
    ]);
    lab.start(&format!("pdt-{}-compose-1", lab.id), true, &args, &[curl]);
    let r = diagnose(&t).await;
    let c = r.expect("container.state[claude]", "ok", "ok");
    assert!(
        c["message"].as_str().unwrap().contains("compose labels"),
        "{c}"
    );
    r.expect("container.reach[claude,qms]", "ok", "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_less_image_reaches_with_bash() {
    let Some((lab, bash_only)) =
        lab_or_skip("curl_less_image_reaches_with_bash", "nocurl", "bash-only")
    else {
        return;
    };
    let bash_only = &bash_only;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    lab.start_agent(&t, "qa", bash_only, &[]);
    let r = diagnose(&t).await;
    let c = r.expect("container.reach[qa,qms]", "ok", "ok");
    assert!(c["evidence"].to_string().contains(" bash "), "{c}");
    let loopback_only = servers::mcp_server(McpOptions::default()).await;
    let t2 = tree(&lab, loopback_only.port, git, &["tu_ui"]);
    lab.start_agent(&t2, "tu_ui", bash_only, &[]);
    run_json(t2.root(), &["--agent", "tu_ui"]).await.expect(
        "container.reach[tu_ui,qms]",
        "fail",
        "refused",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_or_hung_engine_fails_once_and_skips_the_rest() {
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let hung = servers::fault_server(Fault::Hang).await;
    for host in [
        "unix:///nonexistent/docker.sock".to_string(),
        format!("tcp://127.0.0.1:{}", hung.port),
    ] {
        let mut cmd = common::command(t.root(), &["--json", "--timeout", "1s"]);
        cmd.env("DOCKER_HOST", &host);
        let started = std::time::Instant::now();
        let out = cmd.output().await.unwrap();
        let r = Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::new(),
            elapsed: started.elapsed(),
        };
        r.expect("docker.engine", "fail", "unreachable");
        let c = r.expect("container.reach[qa,qms]", "skip", "precondition");
        assert_eq!(c["message"], "needs the Docker engine checks");
        r.expect("containers.stale", "skip", "precondition");
        // The engine is asked alongside the host probes: one timeout in all, not two.
        assert!(
            r.elapsed < std::time::Duration::from_secs(3),
            "{host}: {:?}",
            r.elapsed
        );
    }
}

/// Reach through each client an image may carry, against a reachable and a loopback-only
/// server: the answer and the refusal both come through the client's own words.
async fn reach_with(variant: &str) {
    if !docker_or_skip(variant) {
        return;
    }
    let image = lab::image(variant);
    let lab = Lab::new(&format!("client-{variant}"));
    let (qms, _) = servers::reachable_pair().await;
    let loopback_only = servers::mcp_server(McpOptions::default()).await;
    let t = tree(&lab, qms, loopback_only.port, &["qa"]);
    lab.start_agent(&t, "qa", &image, &[]);
    let r = diagnose(&t).await;
    let c = r.expect("container.reach[qa,qms]", "ok", "ok");
    assert!(
        c["evidence"].to_string().contains(&format!(" {variant} ")),
        "{c}"
    );
    r.expect("container.reach[qa,git]", "fail", "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn wget_image_reaches_with_wget() {
    reach_with("wget").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_image_reaches_with_node() {
    reach_with("node").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn image_without_any_client_is_no_client() {
    let Some((lab, bare)) =
        lab_or_skip("image_without_any_client_is_no_client", "noclient", "bare")
    else {
        return;
    };
    let bare = &bare;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.extend([
        GATEWAY.to_string(),
        "--entrypoint".into(),
        "/bin/sleep".into(),
    ]);
    lab.start(&lab.name("qa"), true, &args, &[bare, "infinity"]);
    let r = diagnose(&t).await;
    r.expect("container.reach[qa,qms]", "warn", "no-client");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_gateway_mapped_to_ipv6_warns() {
    let Some((lab, curl)) = lab_or_skip("host_gateway_mapped_to_ipv6_warns", "ipv6", "curl") else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa", "bu"]);
    let mut args = Lab::standard_args(&t, "qa");
    // One of the host's own IPv6 addresses (::1 would be the container itself: see
    // tests/networking.rs).
    args.push(format!(
        "--add-host=host.docker.internal:{}",
        lab::host_ipv6()
    ));
    lab.start(&lab.name("qa"), true, &args, &[curl]);
    let r = diagnose(&t).await;
    r.expect("container.host_gateway[qa]", "warn", "ipv6-first");
    // bu has a config dir but was never started.
    r.expect("container.state[bu]", "warn", "missing");
    r.expect("container.reach[bu,qms]", "skip", "precondition");
}

#[tokio::test(flavor = "multi_thread")]
async fn entrypoint_still_waiting_for_servers_is_configuring() {
    let Some((lab, curl)) = lab_or_skip(
        "entrypoint_still_waiting_for_servers_is_configuring",
        "configuring",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.extend([
        GATEWAY.to_string(),
        "-e".into(),
        format!("PD_WAIT_FOR=host.docker.internal:{}", t.qms),
        "-e".into(),
        "PD_WAIT_SECONDS=120".into(),
    ]);
    lab.launch(&lab.name("qa"), true, &args, &[curl]);
    let mut r = diagnose(&t).await;
    for _ in 0..20 {
        if r.check("container.state[qa]")["cause"] == "configuring" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        r = diagnose(&t).await;
    }
    r.expect("container.state[qa]", "warn", "configuring");
}

#[tokio::test(flavor = "multi_thread")]
async fn crashed_entrypoint_shows_exit_code_and_last_log_lines() {
    let Some((lab, curl)) = lab_or_skip(
        "crashed_entrypoint_shows_exit_code_and_last_log_lines",
        "crashed",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    let mut args = Lab::standard_args(&t, "qa");
    args.push(GATEWAY.into());
    lab.launch(
        &lab.name("qa"),
        true,
        &args,
        &[
            curl,
            "bash",
            "-c",
            "echo claude: configuration file is corrupted >&2; exit 3",
        ],
    );
    let mut status = String::new();
    for _ in 0..50 {
        status = docker(&["inspect", "-f", "{{.State.Status}}", &lab.name("qa")]);
        if status == "exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "exited");
    let r = diagnose(&t).await;
    let c = r.expect("container.state[qa]", "fail", "stopped");
    assert!(
        c["message"].as_str().unwrap().contains("exit code 3"),
        "{c}"
    );
    assert!(
        c["evidence"]
            .to_string()
            .contains("configuration file is corrupted"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_in_container_env_never_show_even_when_logged() {
    let Some((lab, curl)) = lab_or_skip(
        "tokens_in_container_env_never_show_even_when_logged",
        "envtoken",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    let token = "ghp_plantedTokenValue0123456789";
    // A key only qa's .claude.json holds, which the crashing entrypoint dumps to its log.
    let key = "sk-onlyInClaudeJson-0123456789";
    let cj = t.path(".claude/users/qa/container/.claude.json");
    std::fs::write(
        &cj,
        std::fs::read_to_string(&cj)
            .unwrap()
            .replace("\"qms-internal\"", &format!("\"{key}\"")),
    )
    .unwrap();
    let mut args = Lab::standard_args(&t, "qa");
    args.extend([
        GATEWAY.to_string(),
        "-e".into(),
        format!("GH_TOKEN={token}"),
    ]);
    lab.launch(
        &lab.name("qa"),
        true,
        &args,
        &[
            curl,
            "bash",
            "-c",
                        "while read -r l; do case $l in *X-API-Key*) echo \"config: $l\" >&2;; esac; done < /claude-config/.claude.json; echo using GH_TOKEN=$GH_TOKEN >&2; exit 4",
        ],
    );
    for _ in 0..50 {
        if docker(&["inspect", "-f", "{{.State.Status}}", &lab.name("qa")]) == "exited" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The last one reads no config check, yet the key in the log must still be hidden.
    let only_state = vec!["--json", "--only", "container.state*"];
    for args in [
        vec!["--json", "-v"],
        vec!["-v"],
        vec!["--format", "junit"],
        only_state,
    ] {
        let r = common::run(t.root(), &args).await;
        assert!(
            r.stdout.contains("[redacted]"),
            "the log line was expected in the evidence:\n{}",
            r.stdout
        );
        for secret in [token, key] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{secret} leaked with {args:?}:\n{}",
                r.stdout
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_seen_only_in_a_container_joins_the_checklist() {
    let Some((lab, curl)) = lab_or_skip(
        "an_agent_seen_only_in_a_container_joins_the_checklist",
        "ghost",
        "curl",
    ) else {
        return;
    };
    let curl = &curl;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    lab.start_agent(&t, "qa", curl, &[]);
    // ghost's config dir lives outside .claude/users: only its container names it.
    common::copy_dir(
        &std::path::Path::new(common::FIXTURES).join("healthy"),
        &t.path("elsewhere/ghost-config"),
    );
    let root = t.root().display().to_string();
    let args: Vec<String> = vec![
        "-v".into(),
        format!("{root}:/pipe-dream:ro"),
        "-v".into(),
        format!("{root}/elsewhere/ghost-config:/claude-config:rw"),
        GATEWAY.into(),
    ];
    lab.start(&lab.name("ghost"), true, &args, &[curl]);
    let r = diagnose(&t).await;
    r.expect("container.state[ghost]", "ok", "ok");
    r.expect("config.claude_json[ghost]", "ok", "ok");
    let ids: Vec<String> = r.ids();
    let pos = |id: &str| ids.iter().position(|i| i == id).unwrap();
    assert!(
        pos("container.state[ghost]") < pos("container.entrypoint[qa]"),
        "checklist order kept: {ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_rejected_and_server_error_as_the_container_sees_them() {
    let Some((lab, curl)) = lab_or_skip(
        "host_rejected_and_server_error_as_the_container_sees_them",
        "rejected",
        "curl",
    ) else {
        return;
    };
    // rmcp's default allowed hosts refuse Host: host.docker.internal with a 403.
    let strict = servers::mcp_server(McpOptions {
        allow_docker_host: false,
        bind: Bind::Reachable,
        ..Default::default()
    })
    .await;
    let broken = servers::fault_server_on(
        Fault::Status(500, "text/plain", "boom".into()),
        Bind::Reachable,
    )
    .await;
    let t = tree(&lab, strict.port, broken.port, &["qa"]);
    lab.start_agent(&t, "qa", &curl, &[]);
    let r = diagnose(&t).await;
    r.expect("server.mcp[qms]", "fail", "host-rejected");
    r.expect("container.reach[qa,qms]", "fail", "host-rejected");
    r.expect("container.reach[qa,git]", "fail", "server-error");
}

#[tokio::test(flavor = "multi_thread")]
async fn dockerfile_edited_after_the_image_was_built() {
    let Some((lab, curl)) = lab_or_skip(
        "dockerfile_edited_after_the_image_was_built",
        "staleimage",
        "curl",
    ) else {
        return;
    };
    let t = tree(&lab, free_port(), free_port(), &["qa"]);
    lab.start(
        &lab.name("qa"),
        false,
        &Lab::standard_args(&t, "qa"),
        &[&curl],
    );
    t.write(
        "docker/Dockerfile",
        "FROM scratch\n# edited after the build\n",
    );
    diagnose(&t)
        .await
        .expect("container.image[qa]", "warn", "stale-image");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_a_mount_can_be_wrong() {
    let Some((lab, curl)) = lab_or_skip("every_way_a_mount_can_be_wrong", "mountcases", "curl")
    else {
        return;
    };
    let agents = [
        "a_noconfig",
        "a_roconfig",
        "a_noenv",
        "a_noproject",
        "a_rwcode",
        "a_noworkspace",
        "a_roworkspace",
        "a_none",
    ];
    let t = tree(&lab, free_port(), free_port(), &agents);
    let root = t.root().display().to_string();
    for agent in agents {
        let cfg = format!("{root}/.claude/users/{agent}/container:/claude-config:rw");
        let ws = format!(
            "{root}/.claude/users/{agent}/workspace:/pipe-dream/.claude/users/{agent}/workspace:rw"
        );
        let code = format!("{root}:/pipe-dream:ro");
        let args = Lab::standard_args(&t, agent);
        // One defect per agent, applied to the Chapter 2.4 arguments.
        let args = match agent {
            "a_noconfig" => without(args, &cfg),
            "a_roconfig" => replaced(args, &cfg, cfg.replace(":rw", ":ro")),
            "a_noenv" => without(args, "CLAUDE_CONFIG_DIR=/claude-config"),
            "a_noproject" => without(args, &code),
            "a_rwcode" => replaced(args, &code, code.replace(":ro", ":rw")),
            "a_noworkspace" => without(args, &ws),
            "a_roworkspace" => replaced(args, &ws, ws.replace(":rw", ":ro")),
            _ => args,
        };
        lab.start(&lab.name(agent), false, &args, &[&curl]);
    }
    let r = diagnose(&t).await;
    r.expect(
        "container.mounts[a_noconfig]",
        "fail",
        "missing-config-mount",
    );
    r.expect("container.mounts[a_roconfig]", "fail", "config-read-only");
    r.expect("container.mounts[a_noenv]", "fail", "config-dir-env");
    r.expect("container.mounts[a_noproject]", "fail", "missing-project");
    r.expect("container.mounts[a_rwcode]", "fail", "code-writable");
    r.expect(
        "container.mounts[a_noworkspace]",
        "fail",
        "missing-workspace",
    );
    r.expect(
        "container.mounts[a_roworkspace]",
        "fail",
        "workspace-read-only",
    );
    r.expect("container.mounts[a_none]", "ok", "ok");
}

/// `args` without `value` and the flag (-v, -e) before it.
fn without(args: Vec<String>, value: &str) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == value)
        .expect("the argument to drop");
    args.into_iter()
        .enumerate()
        .filter(|(i, _)| *i + 1 != at && *i != at)
        .map(|(_, a)| a)
        .collect()
}

fn replaced(args: Vec<String>, value: &str, with: String) -> Vec<String> {
    args.into_iter()
        .map(|a| if a == value { with.clone() } else { a })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_current_docker_context_is_followed_as_the_cli_does() {
    if !docker_or_skip("the_current_docker_context_is_followed_as_the_cli_does") {
        return;
    }
    let socket = "/var/run/docker.sock";
    assert!(
        std::path::Path::new(socket).exists() || std::env::var("DOCKER_HOST").is_ok(),
        "no default socket here"
    );
    let t = Tree::new(free_port(), free_port());
    t.agent("qa", "healthy");
    t.config("");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"auths": {}, "currentContext": "lab"}"#,
    )
    .unwrap();
    let meta = config.path().join("contexts/meta/0123abcd");
    std::fs::create_dir_all(&meta).unwrap();
    for (host, status, cause) in [
        (format!("unix://{socket}"), "ok", "ok"),
        (
            "unix:///nonexistent/lab.sock".to_string(),
            "fail",
            "unreachable",
        ),
    ] {
        let doc = serde_json::json!({"Name": "lab", "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(meta.join("meta.json"), doc.to_string()).unwrap();
        let mut cmd = common::command(t.root(), &["--json", "--only", "docker.engine"]);
        cmd.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", config.path());
        let out = cmd.output().await.unwrap();
        let r = Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::new(),
            elapsed: Default::default(),
        };
        let c = r.expect("docker.engine", status, cause);
        let message = c["message"].as_str().unwrap();
        assert!(
            message.contains("context lab") && message.contains(&host),
            "{message}"
        );
    }
}

/// A lab with agent qa and an image whose entrypoint is the lab's with `lines` before its
/// `exec`: the lab, its tree, the image's tag and the entrypoint's text.
async fn destroying_lab(
    test: &str,
    name: &str,
    lines: &str,
) -> Option<(Lab, Tree, String, String)> {
    let (lab, _curl) = lab_or_skip(test, name, "curl")?;
    let (qms, git) = servers::reachable_pair().await;
    let t = tree(&lab, qms, git, &["qa"]);
    t.approve();
    let destroying = lab::ENTRYPOINT.replace("\nexec \"$@\"", &format!("\n{lines}\nexec \"$@\""));
    assert_ne!(destroying, lab::ENTRYPOINT);
    let tag = format!("pdt-{}-img", lab.id);
    lab::build_image(&tag, "curl", &destroying);
    Some((lab, t, tag, destroying))
}

/// An entrypoint of Pipe Dream's history, built into the image and in the project: it
/// "clears the state" at every start, memory and history with it, and debug/ (after which
/// Claude Code crashed with ENOENT). Its real run deletes them; pd-doctor names the
/// lines, and the missing debug/ has the entrypoint as its likely root cause.
#[tokio::test(flavor = "multi_thread")]
async fn an_entrypoint_that_deletes_memory_and_debug_is_named_by_its_lines() {
    let Some((lab, t, tag, destroying)) = destroying_lab(
        "an_entrypoint_that_deletes_memory_and_debug_is_named_by_its_lines",
        "destroys",
        "# Start clean every time.\nrm -rf \"$config/projects\" \"$config/history.jsonl\"\nrm -rf /claude-config/debug 2>/dev/null",
    )
    .await
    else {
        return;
    };
    let line_of = |text: &str| {
        destroying
            .lines()
            .position(|l| l.starts_with(text))
            .expect("the line")
            + 1
    };
    let (memory, debug) = (
        line_of("rm -rf \"$config/projects\""),
        line_of("rm -rf /claude-config/debug"),
    );
    t.write("docker/entrypoint.sh", &destroying);
    std::fs::File::options()
        .write(true)
        .open(t.path("docker/entrypoint.sh"))
        .unwrap()
        .set_modified(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000),
        )
        .unwrap();
    let config = t.path(".claude/users/qa/container");
    std::fs::create_dir_all(config.join("projects/-pipe-dream")).unwrap();
    std::fs::write(config.join("projects/-pipe-dream/session.jsonl"), "{}\n").unwrap();
    std::fs::write(config.join("history.jsonl"), "{}\n").unwrap();
    lab.start_agent(&t, "qa", &tag, &[]);
    // The real entrypoint did what it says.
    for gone in ["projects", "history.jsonl", "debug"] {
        assert!(!config.join(gone).exists(), "{gone} survived the start");
    }
    let r = diagnose(&t).await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    let e = r.expect_saying(
        "container.entrypoint[qa]",
        "fail",
        "destroys-config",
        &["projects, history.jsonl, debug", "ENOENT", "memory"],
    );
    let evidence = e["evidence"].to_string();
    for needle in [
        format!("docker/entrypoint.sh (and /entrypoint.sh in the image) line {memory}: rm -rf \\\"$config/projects\\\""),
        "(/claude-config/projects)".to_string(),
        "(/claude-config/history.jsonl)".to_string(),
        format!("line {debug}: rm -rf /claude-config/debug 2>/dev/null (/claude-config/debug)"),
    ] {
        assert!(evidence.contains(&needle), "{needle} in {evidence}");
    }
    let c = r.expect("container.config[qa]", "warn", "no-debug-dir");
    assert_eq!(c["explained_by"], "container.entrypoint[qa]", "{c}");
    r.expect("container.image[qa]", "ok", "ok");
}

/// An entrypoint that deletes only memory is a warning: Claude Code still starts.
#[tokio::test(flavor = "multi_thread")]
async fn an_entrypoint_that_deletes_only_history_is_a_warning() {
    // The image's copy alone: the project's was mended, the image not rebuilt.
    let Some((lab, t, tag, _)) = destroying_lab(
        "an_entrypoint_that_deletes_only_history_is_a_warning",
        "history",
        "rm -f \"${CLAUDE_CONFIG_DIR:-/claude-config}\"/*.jsonl",
    )
    .await
    else {
        return;
    };
    let config = t.path(".claude/users/qa/container");
    std::fs::write(config.join("history.jsonl"), "{}\n").unwrap();
    lab.start_agent(&t, "qa", &tag, &[]);
    assert!(!config.join("history.jsonl").exists());
    let r = diagnose(&t).await;
    let e = r.expect_saying(
        "container.entrypoint[qa]",
        "warn",
        "destroys-config",
        &["history.jsonl", "memory"],
    );
    let evidence = e["evidence"].to_string();
    assert!(
        evidence.contains("/entrypoint.sh in the image line")
            && !evidence.contains("docker/entrypoint.sh"),
        "{evidence}"
    );
    r.expect("container.config[qa]", "ok", "ok");
    r.expect("container.image[qa]", "fail", "entrypoint-differs");
}

/// With no config mount to look through from the host, the one exec tells whether the
/// container's config dir has debug/.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_debug_dir_is_seen_from_inside_without_a_config_mount() {
    let Some((lab, t, tag, _)) = destroying_lab(
        "a_missing_debug_dir_is_seen_from_inside_without_a_config_mount",
        "debugexec",
        "rm -rf /claude-config/debug",
    )
    .await
    else {
        return;
    };
    let root = t.root().display().to_string();
    let cfg = format!("{root}/.claude/users/qa/container:/claude-config:rw");
    let mut args = without(Lab::standard_args(&t, "qa"), &cfg);
    args.push(GATEWAY.into());
    lab.start(&lab.name("qa"), true, &args, &[&tag]);
    let r = diagnose(&t).await;
    r.expect("container.mounts[qa]", "fail", "missing-config-mount");
    r.expect("container.entrypoint[qa]", "fail", "destroys-config");
    let c = r.expect("container.config[qa]", "warn", "no-debug-dir");
    assert!(
        c["evidence"]
            .to_string()
            .contains("the container's config dir"),
        "{c}"
    );
    assert_eq!(c["explained_by"], "container.entrypoint[qa]", "{c}");
}
