//! `container.anthropic`: Claude Code's first connection, to Anthropic's API. Started in
//! a container that cannot resolve or reach it, Claude Code prints "Unable to connect to
//! Anthropic services" and exits; in the hub layout its tmux session ends at once. The
//! route is Claude Code's own: `ANTHROPIC_BASE_URL` (else api.anthropic.com:443), through
//! `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` names the host, all read from the
//! container's environment. The one exec resolves the first hop's name and opens (and
//! closes) a TCP connection to it: not a byte is sent.

use crate::causes::{AnthropicCause as C, CommonCause};
use crate::facts::docker::Container;
use crate::facts::docker::{self, ExecError};
use crate::facts::inside::{self, Api, Connect, Endpoint, Limit, Resolved};
use crate::facts::Facts;
use crate::model::Finding;

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

pub async fn probe(f: &Facts, c: &Container) -> Finding {
    let route =
        match route(c) {
            Ok(r) => r,
            Err(why) => return Finding::fail(C::BadUrl, format!("{} in {}", why, c.name))
                .evidence("Claude Code cannot send a single request to Anthropic with it")
                .hint(
                    "fix the variable in the container's environment, then recreate the container",
                ),
        };
    let hop = route.first_hop();
    let (api, deadline) = match super::ask::inside(f, c).await {
        Some(report) => (report.api.clone(), report.deadline),
        None => match by_execs(f, c, hop).await {
            Some(api) => (api, true),
            None => {
                return Finding::skip(format!(
                    "cannot tell: {} runs neither sh nor getent",
                    c.name
                ))
            }
        },
    };
    let what = match &route.proxy {
        Some(p) => format!("the proxy {hop} ({} in {})", p.var, c.name),
        None if route.api_from == "default" => format!("{hop} (Anthropic's API)"),
        None => format!("{hop} ({} in {})", route.api_from, c.name),
    };
    let problem = |cause: C, what_happened: String| {
        let cause = if route.proxy.is_some() {
            C::Proxy
        } else {
            cause
        };
        Finding::fail(cause, format!("{what_happened}: Claude Code cannot start there"))
            .evidence("Claude Code says \"Unable to connect to Anthropic services\" and exits 1; in the hub layout its tmux session ends at once")
            .hint(hint(cause, c, &route))
    };
    let Some(resolved) = &api.resolve else {
        return match deadline {
            true => problem(
                C::Dns,
                format!(
                    "{what}: its name's lookup in {} did not end in time (EAI_AGAIN)",
                    c.name
                ),
            ),
            false => Finding::skip(format!(
                "cannot tell: the one exec in {} said nothing of {hop}",
                c.name
            )),
        };
    };
    if resolved.exit != 0 {
        return problem(
            C::Dns,
            format!(
                "{what} does not resolve in {} (getent exit {}: ENOTFOUND)",
                c.name, resolved.exit
            ),
        );
    }
    let at = resolved.addrs.join(" ");
    match api.connect {
        Some(Connect::Open) => Finding::ok(
            CommonCause::Ok,
            format!("{what} resolves and accepts a connection from {} (no byte sent)", c.name),
        ),
        Some(Connect::Untried) => Finding::ok(
            CommonCause::Ok,
            format!(
                "{what} resolves in {}; no connection tried (no bash, python3 or node there)",
                c.name
            ),
        ),
        Some(Connect::Refused) => problem(
            C::Refused,
            format!("{what} resolves in {} to {at}, but refuses the connection (ECONNREFUSED)", c.name),
        ),
        Some(Connect::Unreachable) => problem(
            C::Refused,
            format!("{what} resolves in {} to {at}, but no route leads there (network unreachable)", c.name),
        ),
        Some(Connect::Error) => problem(
            C::Refused,
            format!("{what} resolves in {} to {at}, but the connection to it failed", c.name),
        ),
        Some(Connect::Timeout) => problem(
            C::Timeout,
            format!("{what} resolves in {} to {at}, but a connection to it got no answer in time (ETIMEDOUT)", c.name),
        ),
        None if deadline => problem(
            C::Timeout,
            format!("{what} resolves in {} to {at}, but a connection to it got no answer by the deadline (ETIMEDOUT)", c.name),
        ),
        None => Finding::skip(format!(
            "cannot tell: the one exec in {} ended before the connection to {hop} did",
            c.name
        )),
    }
}

/// The per-client path, for an image without sh: `getent ahosts`, then a connection
/// by the first of bash, python3 and node that runs; `None` when getent does not run.
async fn by_execs(f: &Facts, c: &Container, hop: &Endpoint) -> Option<Api> {
    let d = f.docker().await.as_ref().ok()?;
    let deadline = f.exec_deadline();
    let argv = vec!["getent".into(), "ahosts".into(), hop.host().to_string()];
    let out = docker::exec(&d.client, &c.id, argv, deadline).await;
    let resolved = match out {
        Ok(o) if matches!(o.exit_code, Some(126 | 127)) => return None,
        Ok(o) => Resolved::from_getent(o.exit_code.unwrap_or(-1), &o.stdout),
        Err(ExecError::Timeout) => return Some(Api::default()),
        Err(_) => return None,
    };
    let mut api = Api {
        connect: None,
        resolve: Some(resolved),
    };
    if api.resolve.as_ref().is_some_and(|r| r.exit != 0) {
        return Some(api);
    }
    let limit = Limit::until(deadline);
    api.connect = Some(Connect::Untried);
    for program in ["bash", "python3", "node"] {
        let argv = inside::connect_argv(program, hop, &limit);
        match docker::exec(&d.client, &c.id, argv, deadline).await {
            Ok(o) if matches!(o.exit_code, Some(126 | 127)) => continue,
            Ok(o) => api.connect = Some(Connect::of(o.exit_code, &o.stderr)),
            Err(_) => api.connect = Some(Connect::Timeout),
        }
        break;
    }
    Some(api)
}

fn hint(cause: C, c: &Container, route: &Route) -> String {
    let hop = route.first_hop();
    match cause {
        C::Proxy => format!(
            "check the proxy: docker exec {} getent hosts {}; fix or unset {} (and set NO_PROXY for hosts it should not carry), then recreate the container",
            c.name,
            hop.host(),
            route.proxy.as_ref().map_or("HTTPS_PROXY", |p| p.var)
        ),
        C::Dns => format!(
            "give {} a DNS server that resolves {} (docker run --dns, the daemon's \"dns\" setting, or its network), or an HTTPS_PROXY it can reach",
            c.name,
            hop.host()
        ),
        _ => format!(
            "let {} open connections to {hop} (a firewall, an --add-host entry or ANTHROPIC_BASE_URL points it elsewhere: docker exec {} getent hosts {}), or set HTTPS_PROXY",
            c.name,
            c.name,
            hop.host()
        ),
    }
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
