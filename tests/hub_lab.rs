//! The hub-layout lab itself, without pd-doctor: containers started as the Agent Hub
//! starts them have their tmux session, their stdio proxies reach the two servers with
//! both headers (and get a JSON-RPC error naming 401 with a wrong key), and the
//! entrypoint cleared the MCP state of `.claude.json`.

mod common;

use common::hub::{self, hub_image, hub_servers, hub_tree};
use common::lab::{docker, docker_or_skip, Lab};
use serde_json::Value;

fn tool_names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_lab_containers_reach_both_servers_through_the_stdio_proxy() {
    if !docker_or_skip("hub_lab_containers_reach_both_servers_through_the_stdio_proxy") {
        return;
    }
    let (qms, git) = hub_servers().await;
    let tree = hub_tree(qms, git, &["claude", "qa"]);
    let clean_claude_json =
        std::fs::read_to_string(tree.path(".claude/users/claude/container/.claude.json")).unwrap();

    // qa comes with state an older layout left: a user-scope server and approvals.
    let qa_state = tree.path(".claude/users/qa/container/.claude.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&qa_state).unwrap()).unwrap();
    doc["mcpServers"] = serde_json::json!({
        "qms": {"type": "http", "url": format!("http://host.docker.internal:{qms}/mcp")}
    });
    doc["projects"]["/pipe-dream"]["enabledMcpjsonServers"] = serde_json::json!(["qms"]);
    doc["projects"]["/pipe-dream"]["disabledMcpjsonServers"] = serde_json::json!(["git"]);
    std::fs::write(&qa_state, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let image = tokio::task::spawn_blocking(hub_image).await.unwrap();
    let lab = Lab::new("hub_lab");
    let names = {
        let (lab_ref, tree_ref, image) = (&lab, &tree, image.as_str());
        ["claude", "qa"].map(|agent| {
            lab_ref.start_hub_agent(tree_ref, agent, image, &[]);
            lab_ref.name(agent)
        })
    };

    for (agent, name) in ["claude", "qa"].iter().zip(&names) {
        // (a) Claude Code runs in the Hub's tmux session; PID 1 is the entrypoint's sleep.
        assert!(hub::has_agent_session(name), "{name}: no tmux session");
        let logs = docker(&["logs", name]);
        assert!(logs.contains(hub::SETUP_COMPLETE), "{logs}");
        assert_eq!(docker(&["exec", name, "cat", "/etc/hostname"]), *agent);

        // (b) Each proxy entry of the tree's .mcp.json, run in the container, speaks MCP
        // to its server with the headers it requires.
        for (server, port) in [("qms", qms), ("git", git)] {
            let ex = hub::proxy_handshake(&tree, name, server, |_| {}).await;
            assert_eq!(ex.code, 0, "{name} {server}: {}", ex.stderr);
            let init = ex.answer(1);
            assert!(
                init["result"]["serverInfo"]["name"].is_string(),
                "{name} {server}: {init}\n{}",
                ex.stderr
            );
            assert!(init["result"]["protocolVersion"].is_string(), "{init}");
            let mut tools = tool_names(ex.answer(2));
            tools.sort();
            let mut expected = hub::TOOLS.map(String::from).to_vec();
            expected.sort();
            assert_eq!(tools, expected, "{name} {server}");
            assert_eq!(
                ex.answers.len(),
                2,
                "the notification has no answer: {:?}",
                ex.answers
            );
            assert!(
                ex.stderr.contains(&format!(":{port}/mcp")) && ex.stderr.contains(agent),
                "the proxy logs its upstream and identity on stderr:\n{}",
                ex.stderr
            );
        }
    }

    // (c) With a wrong key, every try (1 + 3 retries, 7 s of back-off) gets 401 and the
    // client a JSON-RPC error saying so.
    let wrong_key = |args: &mut Vec<String>| {
        for a in args.iter_mut() {
            if a.starts_with("X-API-Key=") {
                *a = "X-API-Key=wrong".into();
            }
        }
    };
    let ex = hub::proxy_run(&tree, &names[1], "qms", wrong_key, &hub::initialize_line()).await;
    assert_eq!(ex.answers.len(), 1, "{:?}", ex.answers);
    assert_eq!(ex.stderr.matches("HTTP 401").count(), 4, "{}", ex.stderr);
    let err = ex.answer(1);
    assert_eq!(err["error"]["code"], -32000, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("401"),
        "{err}\n{}",
        ex.stderr
    );

    // Without the Authorization header the server refuses too (one try is enough).
    let ex = hub::proxy_handshake(&tree, &names[0], "git", |args| {
        let at = args
            .iter()
            .position(|a| a.starts_with("Authorization="))
            .unwrap();
        args.drain(at - 1..=at);
        let retries = args.iter().position(|a| a == "--retries").unwrap();
        args[retries + 1] = "0".into();
    })
    .await;
    let err = ex.answer(1);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("401"),
        "{err}\n{}",
        ex.stderr
    );

    // (d) The entrypoint wiped qa's MCP state at every depth and kept the rest; claude's
    // clean file comes out as it went in.
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&qa_state).unwrap()).unwrap();
    assert_eq!(after["mcpServers"], serde_json::json!({}), "{after}");
    let project = &after["projects"]["/pipe-dream"];
    assert_eq!(
        project["enabledMcpjsonServers"],
        serde_json::json!([]),
        "{after}"
    );
    assert_eq!(
        project["disabledMcpjsonServers"],
        serde_json::json!([]),
        "{after}"
    );
    assert_eq!(project["hasTrustDialogAccepted"], true, "{after}");
    assert_eq!(after["userID"], doc["userID"], "{after}");
    assert!(tree.path(".claude/users/qa/container/debug").is_dir());
    assert_eq!(
        std::fs::read_to_string(tree.path(".claude/users/claude/container/.claude.json")).unwrap(),
        clean_claude_json
    );

    // A healthy lab: the tree's agent-hub/docker files are the image's.
    for (rel, inside) in [
        ("agent-hub/docker/entrypoint.sh", "/entrypoint.sh"),
        (
            "agent-hub/docker/scripts/mcp_proxy.py",
            "/proxy/mcp_proxy.py",
        ),
    ] {
        let host = std::fs::read_to_string(tree.path(rel)).unwrap();
        assert_eq!(
            docker(&["exec", &names[0], "cat", inside]),
            host.trim_end(),
            "{rel}"
        );
    }
}
