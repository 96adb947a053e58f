//! `config.auth`: the agent's Claude Code has a login. Claude Code in a container keeps
//! it in the config dir (`.credentials.json`; `oauthAccount` or `primaryApiKey` in
//! `.claude.json`), or takes it from the environment (`ANTHROPIC_API_KEY`). Without any,
//! the agent's Claude Code opens on its login screen and does nothing until a person logs
//! in. Only names are looked at: no value is read out or printed.

use crate::causes::{AuthCause, CommonCause};
use crate::claude_config::JsonFile;
use crate::facts::Facts;
use crate::model::Finding;
use crate::project::Agent;
use crate::safefs::{self, Kind};

/// Environment variables Claude Code logs in with.
const AUTH_ENV: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
];

/// Keys of `.claude.json` that hold a login.
const AUTH_KEYS: &[&str] = &["oauthAccount", "primaryApiKey"];

pub async fn probe(f: &Facts, agent: &Agent) -> Finding {
    let credentials = agent.config_dir.join(".credentials.json");
    // Looked at, never opened: its content is the secret itself.
    match safefs::state(&credentials) {
        Some(s) if s.kind == Kind::File && s.len > 0 => {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                    "{} is logged in ({} is there)",
                    agent.name,
                    f.project.show(&credentials)
                ),
            )
        }
        Some(s) if s.kind == Kind::Link => {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                    "{} has a .credentials.json (a symlink, not followed)",
                    agent.name
                ),
            )
        }
        _ => {}
    }
    let mut evidence = vec![format!(
        "no .credentials.json in {}",
        f.project.show(&agent.config_dir)
    )];
    let container = match f.docker().await {
        Ok(d) => d.container_of(&agent.name),
        Err(_) => {
            evidence.push(
                "the Docker engine does not answer: the container's environment was not looked at"
                    .into(),
            );
            None
        }
    };
    if let Some(c) = container {
        if let Some(name) = AUTH_ENV.iter().find(|n| c.env(n).is_some()) {
            return Finding::ok(
                CommonCause::Ok,
                format!(
                    "{} logs in with {name} from {}'s environment",
                    agent.name, c.name
                ),
            );
        }
        evidence.push(format!(
            "no {} in {}'s environment",
            AUTH_ENV.join(", "),
            c.name
        ));
    }
    match f.claude_json(agent) {
        JsonFile::Parsed(doc) => {
            if let Some(key) = AUTH_KEYS
                .iter()
                .find(|k| doc.get(**k).is_some_and(|v| !v.is_null()))
            {
                return Finding::ok(
                    CommonCause::Ok,
                    format!("{} is logged in ({key} in .claude.json)", agent.name),
                );
            }
            evidence.push(format!("no {} in .claude.json", AUTH_KEYS.join(" or ")));
        }
        JsonFile::Missing => evidence.push("no .claude.json yet".into()),
        _ => {
            return Finding::skip(format!(
                "{}'s .claude.json cannot be read, and nothing else shows a login",
                agent.name
            ))
        }
    }
    let layout = &f.project.layout;
    let name = container.map_or_else(
        || format!("{}{}", layout.container_prefix, agent.name),
        |c| c.name.clone(),
    );
    let login = if layout.session.is_empty() {
        format!("docker exec -it {name} claude, then /login")
    } else {
        format!(
            "docker exec -it {name} tmux attach -t {}, then /login in Claude Code (Ctrl-b d leaves the session running)",
            layout.session
        )
    };
    Finding::warn(
        AuthCause::NotLoggedIn,
        format!("{}'s Claude Code is not logged in: it waits on its login screen", agent.name),
    )
    .evidence_all(evidence)
    .hint(format!(
        "log in once, interactively, in the agent's container: {login}; the login is kept in {}/.credentials.json",
        f.project.show(&agent.config_dir)
    ))
}
