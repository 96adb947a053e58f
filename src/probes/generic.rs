//! Probes a project can use in its own checks (`.pd-doctor/checks/*.toml`) without
//! recompiling: an HTTP URL answers with a status; a file exists, is absent, or holds a
//! JSON value at a pointer. `{root}`, `{agent}`, `{server}`, `{port}` and `{config_dir}`
//! are filled in from the check's subject.

use crate::catalogue::{FileState, GenericProbe, Severity};
use crate::causes::{CommonCause, FileCause, HttpCause};
use crate::claude_config::{self, JsonFile};
use crate::facts::{http, Facts};
use crate::model::{Finding, Status, Subject};

fn fill(f: &Facts, subject: &Subject, template: &str) -> String {
    let mut out = subject
        .fill(template)
        .replace("{root}", &f.project.root.display().to_string());
    if let Some(s) = subject.server.as_deref().and_then(|n| f.project.server(n)) {
        out = out.replace("{port}", &s.port.to_string());
    }
    if let Some(a) = subject.agent.as_deref().and_then(|n| f.project.agent(n)) {
        out = out.replace("{config_dir}", &a.config_dir.display().to_string());
    }
    out
}

pub async fn probe(
    f: &Facts,
    probe: &GenericProbe,
    subject: &Subject,
    severity: Severity,
) -> Finding {
    let finding = match probe {
        GenericProbe::Http { url, status } => http_probe(f, &fill(f, subject, url), status).await,
        GenericProbe::File {
            path,
            state,
            pointer,
            equals,
        } => file_probe(
            f,
            &fill(f, subject, path),
            *state,
            pointer.as_deref(),
            equals.as_ref(),
        ),
    };
    if severity == Severity::Warn && finding.status == Status::Fail {
        finding.with_status(Status::Warn)
    } else {
        finding
    }
}

async fn http_probe(f: &Facts, url: &str, want: &[u16]) -> Finding {
    let shown = crate::redact::display_url(url);
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Finding::fail(HttpCause::BadUrl, format!("{shown} does not parse"));
    };
    let client = http::client_for(&parsed, None);
    match http::send(client.get(parsed), f.deadline()).await {
        Err(e) => Finding::fail(
            HttpCause::from(e.cause()),
            format!("GET {shown}: {}", e.describe()),
        ),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let good = if want.is_empty() {
                (200..300).contains(&status)
            } else {
                want.contains(&status)
            };
            if good {
                Finding::ok(CommonCause::Ok, format!("GET {shown} -> {status}"))
            } else {
                Finding::fail(
                    HttpCause::UnexpectedStatus,
                    format!("GET {shown} -> {status}"),
                )
                .evidence(format!(
                    "expected {}",
                    if want.is_empty() {
                        "2xx".into()
                    } else {
                        format!("{want:?}")
                    }
                ))
            }
        }
    }
}

fn file_probe(
    f: &Facts,
    path: &str,
    state: FileState,
    pointer: Option<&str>,
    equals: Option<&serde_json::Value>,
) -> Finding {
    let path = f.project.root.join(path);
    let shown = f.project.show(&path);
    let exists = crate::safefs::exists(&path);
    match (state, exists) {
        (FileState::Absent, false) => {
            return Finding::ok(CommonCause::Ok, format!("{shown} is absent"))
        }
        (FileState::Absent, true) => {
            return Finding::fail(FileCause::Present, format!("{shown} exists"))
        }
        (FileState::Exists, false) => {
            return Finding::fail(FileCause::Missing, format!("{shown} does not exist"))
        }
        (FileState::Exists, true) => {}
    }
    let Some(pointer) = pointer else {
        return Finding::ok(CommonCause::Ok, format!("{shown} exists"));
    };
    let JsonFile::Parsed(doc) = claude_config::read_json(&path) else {
        return Finding::fail(FileCause::Corrupt, format!("{shown} is not readable JSON"));
    };
    // Values are compared, never printed: a pointer may well lead to a key.
    match (doc.pointer(pointer), equals) {
        (None, _) => Finding::fail(
            FileCause::Missing,
            format!("{shown} has nothing at {pointer}"),
        ),
        (Some(_), None) => {
            Finding::ok(CommonCause::Ok, format!("{shown} has a value at {pointer}"))
        }
        (Some(v), Some(want)) if v == want => Finding::ok(
            CommonCause::Ok,
            format!("{shown} has the expected value at {pointer}"),
        ),
        (Some(_), Some(_)) => Finding::fail(
            FileCause::UnexpectedValue,
            format!("{shown} has another value at {pointer}"),
        ),
    }
}
