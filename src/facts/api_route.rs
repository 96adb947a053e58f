//! The way from an agent's container to Anthropic's API, as its Claude Code goes: read
//! from the container's environment alone (`ANTHROPIC_BASE_URL`, `HTTPS_PROXY`,
//! `HTTP_PROXY`, `NO_PROXY`). Container data: only a host name and a port leave here,
//! checked to be just that, and never a proxy's credentials.

use crate::facts::docker::Container;
use crate::facts::inside::Endpoint;

/// Where Claude Code talks to without `ANTHROPIC_BASE_URL`.
const DEFAULT_API: &str = "https://api.anthropic.com";

/// The way from a container to Anthropic's API, as its Claude Code goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub api: Endpoint,
    /// `ANTHROPIC_BASE_URL`, or the default.
    pub api_from: &'static str,
    pub proxy: Option<Proxy>,
}

/// The proxy Claude Code's requests go through: the variable that names it, and its
/// address (never its credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub var: &'static str,
    pub at: Endpoint,
}

impl Route {
    /// The address the connection is opened to: the proxy's, else the API's.
    pub fn first_hop(&self) -> &Endpoint {
        self.proxy.as_ref().map_or(&self.api, |p| &p.at)
    }
}

/// `c`'s route, or why its environment names none that can be tried.
pub fn route(c: &Container) -> Result<Route, String> {
    let (base, api_from) = match c.env("ANTHROPIC_BASE_URL").filter(|v| !v.trim().is_empty()) {
        Some(v) => (v.trim(), "ANTHROPIC_BASE_URL"),
        None => (DEFAULT_API, "default"),
    };
    let url = reqwest::Url::parse(base)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("{api_from} is not an http(s) URL"))?;
    let api = endpoint(&url).ok_or_else(|| format!("{api_from} names no host"))?;
    let names: &[&'static str] = match url.scheme() {
        "https" => &["https_proxy", "HTTPS_PROXY"],
        _ => &["http_proxy", "HTTP_PROXY"],
    };
    let proxy = match names
        .iter()
        .find_map(|n| c.env(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
    {
        Some((var, value)) if !no_proxy(c, &api) => Some(Proxy {
            var,
            at: proxy_endpoint(value).ok_or_else(|| format!("{var} names no proxy host"))?,
        }),
        _ => None,
    };
    Ok(Route {
        api,
        api_from,
        proxy,
    })
}

fn endpoint(url: &reqwest::Url) -> Option<Endpoint> {
    Endpoint::new(url.host_str()?, url.port_or_known_default()?)
}

/// A proxy variable's value, with or without its scheme (`proxy:3128` means http).
fn proxy_endpoint(value: &str) -> Option<Endpoint> {
    let value = value.trim();
    let url = match value.contains("://") {
        true => reqwest::Url::parse(value).ok()?,
        false => reqwest::Url::parse(&format!("http://{value}")).ok()?,
    };
    endpoint(&url)
}

/// `NO_PROXY`/`no_proxy` names `api`'s host: `*`, the host itself, or a domain it is in
/// (`example.com` and `.example.com` both take `api.example.com`), with or without a port.
fn no_proxy(c: &Container, api: &Endpoint) -> bool {
    let Some(list) = c.env("no_proxy").or_else(|| c.env("NO_PROXY")) else {
        return false;
    };
    let host = api.host();
    list.split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let (name, port) = match entry.rsplit_once(':') {
                Some((n, p)) if !n.contains(':') => (n, p.parse::<u16>().ok()),
                _ => (entry, None),
            };
            let name = name.trim_start_matches("*.").trim_start_matches('.');
            let name = name.to_ascii_lowercase();
            port.is_none_or(|p| p == api.port())
                && (entry == "*" || host == name || host.ends_with(&format!(".{name}")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(env: &[(&str, &str)]) -> Container {
        Container {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Container::default()
        }
    }

    #[test]
    fn the_route_is_claude_codes_own() {
        let r = route(&container(&[])).unwrap();
        assert_eq!(r.first_hop().to_string(), "api.anthropic.com:443");
        let r = route(&container(&[(
            "ANTHROPIC_BASE_URL",
            "http://gw.internal:8080/v1",
        )]))
        .unwrap();
        assert_eq!(r.first_hop().to_string(), "gw.internal:8080");
        assert_eq!(r.api_from, "ANTHROPIC_BASE_URL");
        // An https API goes through HTTPS_PROXY, credentials never kept.
        let r = route(&container(&[(
            "HTTPS_PROXY",
            "http://u:secret@proxy.corp:3128",
        )]))
        .unwrap();
        assert_eq!(r.first_hop().to_string(), "proxy.corp:3128");
        assert!(!format!("{r:?}").contains("secret"));
        let r = route(&container(&[("https_proxy", "proxy.corp")])).unwrap();
        assert_eq!(r.first_hop().to_string(), "proxy.corp:80");
        // HTTP_PROXY is not for an https API.
        let r = route(&container(&[("HTTP_PROXY", "http://proxy:1")])).unwrap();
        assert_eq!(r.proxy, None);
    }

    #[test]
    fn no_proxy_takes_the_host_its_domains_and_star() {
        for list in [
            "api.anthropic.com",
            "localhost, .anthropic.com",
            "anthropic.com",
            "*",
            "*.anthropic.com:443",
        ] {
            let c = container(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", list)]);
            assert_eq!(route(&c).unwrap().proxy, None, "{list}");
        }
        for list in [
            "anthropic.co",
            "notanthropic.com",
            "api.anthropic.com:8443",
            "",
        ] {
            let c = container(&[("HTTPS_PROXY", "http://proxy:3128"), ("no_proxy", list)]);
            assert!(route(&c).unwrap().proxy.is_some(), "{list}");
        }
    }

    #[test]
    fn names_that_are_not_host_names_never_travel() {
        for bad in ["ftp://x", "not a url", "http://", "https://[::1"] {
            let c = container(&[("ANTHROPIC_BASE_URL", bad)]);
            assert!(route(&c).is_err(), "{bad}");
        }
        assert!(Endpoint::new("a/../../etc", 443).is_none());
        assert!(Endpoint::new("$(id)", 443).is_none());
        assert_eq!(Endpoint::new("[::1]", 8).unwrap().to_string(), "[::1]:8");
    }
}
