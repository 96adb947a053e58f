//! A real MCP server (the tests' rmcp server, Streamable HTTP at `/mcp`) in a process of
//! its own: what a project's start script starts in the tests of `--fix`.
//!
//! `mcp_test_server PORT [ADDRESS...]` serves on PORT at each address (default
//! 127.0.0.1), stateless, accepting `Host: host.docker.internal`. It exits by itself
//! after ten minutes, so a test that dies cannot leave it behind for long.

#[allow(dead_code)]
#[path = "../tests/common/servers.rs"]
mod servers;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .and_then(|p| p.parse().ok())
        .expect("usage: mcp_test_server PORT [ADDRESS...]");
    let mut addresses: Vec<String> = args.collect();
    if addresses.is_empty() {
        addresses.push("127.0.0.1".into());
    }
    let mut listeners = Vec::new();
    for address in &addresses {
        let ip: std::net::IpAddr = address.parse().expect("an IP address");
        listeners.push(
            tokio::net::TcpListener::bind((ip, port))
                .await
                .unwrap_or_else(|e| panic!("binding {address}:{port}: {e}")),
        );
    }
    servers::mcp_server_on(servers::McpOptions::default(), listeners);
    println!("mcp_test_server: serving /mcp on port {port} at {addresses:?}");
    tokio::time::sleep(Duration::from_secs(600)).await;
}
