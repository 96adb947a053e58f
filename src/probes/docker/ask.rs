//! What a container's one exec is asked (`facts::inside`), and its report: the URL and
//! the stdio entry of every server as the agent is configured with them, and the image
//! files to size and digest. Every container probe that reads the report, and
//! `container.reach` and `container.stdio` that judge their parts of it, ask here; this
//! room imports none of them.

use crate::claude_config::ServerEntry;
use crate::facts::docker::{Container, DockerFacts};
use crate::facts::inside;
use crate::facts::Facts;
use crate::probes::server_entry::{self, InUse};
use crate::project::{Agent, Server};

/// The one-exec report from inside a running container, if its script could run there.
pub(super) async fn inside<'a>(f: &'a Facts, c: &Container) -> Option<&'a inside::Report> {
    if !c.running {
        return None;
    }
    f.inside(c, || request(f, c)).await?.as_ref().ok()
}

/// What the script is asked in `c`: the host name, the image's entrypoint script, and the
/// URL of every server as `c`'s agent is configured with it.
pub(super) async fn request(f: &Facts, c: &Container) -> inside::Request {
    let mut urls = Vec::new();
    for server in &f.project.servers {
        let target = match f.project.agent(&c.agent) {
            Some(agent) => match target(&configured_url(f, agent, server).await) {
                Some(url) => Some(
                    inside::Target::new(&url)
                        .with_headers(&configured_headers(f, agent, server).await),
                ),
                None => None,
            },
            None => None,
        };
        urls.push(target);
    }
    let mut stdio_runs = Vec::new();
    for server in &f.project.servers {
        let run = match f.project.agent(&c.agent) {
            Some(agent) => in_use(f, agent, server).await.map(|e| argv(&e)),
            None => None,
        };
        stdio_runs.push(run);
    }
    // The image's files are sized and digested by one container of that image.
    let reads_files = match f.docker().await {
        Ok(d) => image_reader(d, c).is_some_and(|r| r.id == c.id),
        Err(_) => false,
    };
    inside::Request {
        session: f.project.layout.session.clone(),
        host_name: f.project.layout.host_name.clone(),
        files: if reads_files {
            image_files(f, c).into_iter().map(|i| i.dest).collect()
        } else {
            Vec::new()
        },
        urls,
        stdio: stdio_runs,
        api: crate::facts::api_route::route(c)
            .ok()
            .map(|r| r.first_hop().clone()),
    }
}

/// A configured URL (see [`configured_url`]) as it may travel into a container: http(s)
/// only, and without credentials, which would land on a command line there.
pub(super) fn target(configured: &str) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(configured)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url)
}

/// The stdio entry for `server` that `agent`'s Claude Code uses, expanded in its
/// container's environment; `None` when the copy in use is not a stdio entry.
pub(super) async fn in_use(f: &Facts, agent: &Agent, server: &Server) -> Option<ServerEntry> {
    let entry = match server_entry::in_use(f, agent, server).await {
        InUse::Local(e) | InUse::User(e) => e,
        InUse::Project | InUse::Untrusted => server.expected.clone()?,
        InUse::None => return None,
    };
    if !entry.is_stdio() {
        return None;
    }
    let env = f.env_of(agent).await;
    Some(entry.expanded(&env, &f.project.secrets).0)
}

/// The argument vector the one exec runs: the entry's `env` through `env NAME=VALUE`, then
/// the program and its arguments, each one element, never a shell line.
pub(super) fn argv(entry: &ServerEntry) -> Vec<String> {
    let Some(stdio) = &entry.stdio else {
        return Vec::new();
    };
    let mut argv = Vec::new();
    let vars: Vec<String> = stdio
        .env
        .iter()
        .filter(|(name, _)| is_env_name(name))
        .map(|(name, value)| format!("{name}={}", value.expose()))
        .collect();
    if !vars.is_empty() {
        argv.push("env".to_string());
        argv.extend(vars);
    }
    argv.push(stdio.command.clone());
    argv.extend(stdio.args.iter().map(|a| a.expose().to_string()));
    argv
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The URL an agent is configured with for a server: the copy its Claude Code uses
/// (local scope, else the approved project entry, else user scope; config.server_entry
/// judges the same copy), else the project's; `${VAR}` expanded in its container's
/// environment, as its Claude Code does. Untrusted input: it only ever travels as one
/// argv element.
pub(super) async fn configured_url(f: &Facts, agent: &Agent, server: &Server) -> String {
    let url = match server_entry::in_use(f, agent, server).await {
        InUse::Local(e) | InUse::User(e) => e.url,
        InUse::Project | InUse::Untrusted | InUse::None => None,
    }
    .unwrap_or_else(|| server.container_url(&f.project.layout));
    let container = f
        .docker_if_gathered()
        .and_then(|d| d.as_ref().ok())
        .and_then(|d| d.container_of(&agent.name));
    match container {
        Some(c) if url.contains("${") => {
            let env = crate::expand::Env::new(format!("container {}", c.name), c.env.clone(), true);
            crate::expand::expand(&url, &env).text
        }
        _ => url,
    }
}

/// The headers an agent's Claude Code sends to a server: those of the copy it uses (for
/// a stdio proxy, its `--header` pairs for the upstream), else the project's, expanded in
/// its container's environment. `container.reach` sends them, as a real client does: a
/// keyed server would log the 401 of a request without its key. Secrets: they travel
/// only as argv elements of the one exec, into the container that already holds them.
pub(crate) async fn configured_headers(
    f: &Facts,
    agent: &Agent,
    server: &Server,
) -> Vec<(String, crate::redact::Secret)> {
    let entry = match server_entry::in_use(f, agent, server).await {
        InUse::Local(e) | InUse::User(e) => e,
        InUse::Project | InUse::Untrusted | InUse::None => match &server.expected {
            Some(e) => e.clone(),
            None => return Vec::new(),
        },
    };
    if !entry.has_references() {
        return entry.headers;
    }
    let env = f.env_of(agent).await;
    entry.expanded(&env, &f.project.secrets).0.headers
}

/// A file of the image that the host has too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ImageFile {
    /// Relative to the project root.
    pub(super) source: String,
    /// Where the image has it.
    pub(super) dest: String,
}

/// The files `c`'s image was built with that the host has: what the layout's Dockerfile
/// copies from its folder, and the image's entrypoint script (the layout's entrypoint)
/// where the Dockerfile does not name it.
pub(super) fn image_files(f: &Facts, c: &Container) -> Vec<ImageFile> {
    let layout = &f.project.layout;
    let mut files: Vec<ImageFile> = f
        .dockerfile_copies()
        .iter()
        .map(|copied| ImageFile {
            source: format!("{}/{}", layout.docker_dir, copied.source),
            dest: copied.dest.clone(),
        })
        .collect();
    if let Some(script) = entrypoint_script(c) {
        if !files.iter().any(|i| i.dest == *script) {
            files.insert(
                0,
                ImageFile {
                    source: layout.entrypoint.clone(),
                    dest: script.clone(),
                },
            );
        }
    }
    files.truncate(inside::MAX_FILES);
    files
}

/// The container that sizes and digests the image's files for every container of that
/// image: its first running one by name. Once per image, not once per container.
pub(super) fn image_reader<'a>(d: &'a DockerFacts, c: &Container) -> Option<&'a Container> {
    d.containers
        .iter()
        .filter(|o| o.running && o.image_id == c.image_id)
        .min_by(|a, b| a.name.cmp(&b.name))
}

/// The image's entrypoint when it is a script file (not a shell given a command).
pub(super) fn entrypoint_script(c: &Container) -> Option<&String> {
    c.image_entrypoint
        .first()
        .filter(|p| p.starts_with('/') && !is_shell(p))
}

/// Whether `c` was started so that its image's entrypoint never ran: another
/// `--entrypoint`, or a shell told to sleep.
pub(super) fn bypassed(c: &Container) -> bool {
    let overridden = !c.image_entrypoint.is_empty() && c.entrypoint != c.image_entrypoint;
    let shell_sleep = c.entrypoint.first().is_some_and(|e| is_shell(e))
        && c.cmd.iter().any(|a| a.contains("sleep"));
    overridden || shell_sleep
}

pub(super) fn is_shell(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("bash" | "sh" | "dash" | "zsh" | "ash")
    )
}
