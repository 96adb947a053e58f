//! How a container is networked decides what "reaching the host" means for it:
//! - `none`: it reaches nothing (`no-network`);
//! - `host`: it shares the host's network, so localhost is the host and
//!   host.docker.internal is not needed;
//! - `container:<other>`: the other container's namespace and /etc/hosts decide;
//! - bridge and user-defined networks (compose's `<project>_default` included):
//!   host.docker.internal must map to where the host answers for that network:
//!   `host-gateway`, a gateway the engine reports, or one of the host's own addresses.
//!   A loopback mapping is the container itself (`loopback`); any other address is
//!   somebody else (`wrong-address`).

use std::net::IpAddr;

use crate::causes::{CauseCode, CommonCause, HostGatewayCause};
use crate::facts::docker::{Container, NetSetup};
use crate::model::Finding;

pub enum Mode<'a> {
    None,
    Host,
    /// Bridge or user-defined networks, and the setup they were judged on.
    Networked(&'a NetSetup),
}

/// The networking that decides for `c`, and (for `container:<other>`) whose it is.
pub fn mode(c: &Container) -> (Mode<'_>, Option<&str>) {
    let via = c.net.peer.as_ref().map(|(name, _)| name.as_str());
    let setup = c.net.effective();
    let mode = match setup.mode.as_str() {
        "none" => Mode::None,
        "host" => Mode::Host,
        _ => Mode::Networked(setup),
    };
    (mode, via)
}

fn through(via: Option<&str>) -> String {
    via.map(|v| format!(" (it shares the network of container {v})"))
        .unwrap_or_default()
}

/// The `no-network` finding for a container that has none, for `container.host_gateway`
/// and `container.reach` alike (each with its own `no-network`).
pub fn no_network(c: &Container, cause: impl CauseCode) -> Option<Finding> {
    let (Mode::None, via) = mode(c) else {
        return None;
    };
    Some(
        Finding::fail(
            cause,
            format!(
                "{} has no network{}: it can reach no server",
                c.name,
                through(via)
            ),
        )
        .hint(match via {
            Some(v) => format!(
                "container {v} runs with --network none: give it a network, or start {} on its own",
                c.name
            ),
            None => format!(
                "recreate {} without --network none (compose: remove network_mode: none)",
                c.name
            ),
        }),
    )
}

/// The host's own addresses: where a mapping that is not the gateway may still reach it.
fn host_addresses() -> Vec<IpAddr> {
    let Ok(networks) = sysinfo::Networks::new_with_refreshed_list() else {
        return Vec::new();
    };
    networks
        .values()
        .flat_map(|n| n.ip_networks().iter().map(|i| i.addr))
        .collect()
}

/// `container.host_gateway`'s verdict where the network decides it; `None` leaves it to
/// the mapping and resolution checks of a bridge-networked container.
pub fn host_gateway(c: &Container, host_name: &str) -> Option<Finding> {
    if let Some(finding) = no_network(c, HostGatewayCause::NoNetwork) {
        return Some(finding);
    }
    let (mode, via) = mode(c);
    let setup = match mode {
        Mode::None => return None,
        Mode::Host => {
            return Some(Finding::ok(
                CommonCause::Ok,
                format!(
                "{} uses the host's network{}: localhost is the host, {host_name} is not needed",
                c.name,
                through(via)
            ),
            ))
        }
        Mode::Networked(setup) => setup,
    };
    let target = setup
        .extra_hosts
        .iter()
        .find_map(|h| h.strip_prefix(&format!("{host_name}:")))?;
    if target == "host-gateway" {
        return None;
    }
    let addr: IpAddr = target.trim_matches(['[', ']']).parse().ok()?;
    let networks: Vec<String> = setup.networks.iter().map(|n| n.name.clone()).collect();
    let gateways: Vec<&str> = setup
        .networks
        .iter()
        .map(|n| n.gateway.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    let flag = format!("--add-host={host_name}:host-gateway");
    if addr.is_loopback() {
        return Some(
            Finding::fail(
                HostGatewayCause::Loopback,
                format!(
                    "{host_name} maps to {addr} in {}{}: inside a container that is the container itself",
                    c.name,
                    through(via)
                ),
            )
            .evidence(format!("ExtraHosts: {host_name}:{target}"))
            .hint(format!(
                "recreate it with {flag} (compose: extra_hosts: [\"{host_name}:host-gateway\"])"
            )),
        );
    }
    if gateways.contains(&target) || host_addresses().contains(&addr) {
        return None;
    }
    Some(
        Finding::fail(
            HostGatewayCause::WrongAddress,
            format!(
                "{host_name} maps to {addr} in {}{}, where the host does not answer for network {}",
                c.name,
                through(via),
                networks.join(", ")
            ),
        )
        .evidence(format!("ExtraHosts: {host_name}:{target}"))
        .evidence(format!(
            "the host answers this network at {}",
            if gateways.is_empty() {
                "its gateway".to_string()
            } else {
                gateways.join(", ")
            }
        ))
        .hint(format!(
            "map it to the host: {flag} (compose: extra_hosts: [\"{host_name}:host-gateway\"])"
        )),
    )
}

/// Whether the agent's container shares the host's network: localhost URLs are right
/// for it.
pub fn on_host_network(c: &Container) -> bool {
    matches!(mode(c).0, Mode::Host)
}
