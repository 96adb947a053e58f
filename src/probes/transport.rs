//! `config.transport`: the containers reach the servers over HTTP straight from Claude
//! Code. Not a fault, a note once per run: in Pipe Dream's own record that client failed
//! about 1 start in 10 per server in Docker, and the stdio proxy that replaced it did not.

use crate::causes::TransportCause;
use crate::facts::Facts;
use crate::model::Finding;

pub fn probe(f: &Facts) -> Finding {
    let layout = &f.project.layout;
    let http: Vec<&str> = f
        .project
        .servers
        .iter()
        .filter(|s| s.is_direct_http())
        .map(|s| s.name.as_str())
        .collect();
    Finding::ok(
        TransportCause::DirectHttp,
        format!(
            "the containers reach {} over direct HTTP (type: http in {}): in Pipe Dream's record Claude Code's HTTP client failed about 1 start in 10 per server in Docker (27 of 30 good starts, against 40 of 40 through the stdio proxy)",
            http.join(", "),
            layout.mcp_json
        ),
    )
    .evidence("advice, not a failure: a start that fails shows the server as failed in `claude mcp list` until Claude Code is restarted")
    .hint(format!(
        "make each entry in {} a stdio proxy, as Pipe Dream's later layouts do: {{\"command\": \"python3\", \"args\": [\"/proxy/mcp_proxy.py\", \"<url>\", \"--retries\", \"3\", \"--timeout\", \"10000\", \"--header\", \"X-API-Key=...\"]}}, with mcp_proxy.py baked into the image",
        layout.mcp_json
    ))
}
