//! `container.anthropic`: Claude Code's first connection, to Anthropic's API. Started in
//! a container that cannot resolve or reach it, Claude Code prints "Unable to connect to
//! Anthropic services" and exits; in the hub layout its tmux session ends at once. The
//! route is Claude Code's own: `ANTHROPIC_BASE_URL` (else api.anthropic.com:443), through
//! `HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` names the host, all read from the
//! container's environment. The one exec resolves the first hop's name and opens (and
//! closes) a TCP connection to it: not a byte is sent.

use crate::causes::{AnthropicCause as C, CommonCause};
use crate::facts::api_route::{route, Route};
use crate::facts::docker::Container;
use crate::facts::docker::{self, ExecError};
use crate::facts::inside::{self, Api, Connect, Endpoint, Limit, Resolved};
use crate::facts::Facts;
use crate::model::Finding;

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
