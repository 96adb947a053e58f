//! `docker exec` with an argv array (never a shell line built from values), a deadline
//! and a cap on what it reads; and which HTTP client a container can run.

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use futures::StreamExt;
use tokio::time::Instant;

pub(super) const MAX_EXEC_OUTPUT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

/// An exec read until it ended, its output cap, or the deadline.
#[derive(Debug, Clone)]
pub struct ExecRun {
    pub output: ExecOutput,
    /// The program ended and its output was read to the end (or to the cap).
    pub finished: bool,
}

/// Why a `docker exec` gave no output to judge.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The deadline passed before the program ended: the caller's `timeout`.
    #[error("timeout")]
    Timeout,
    /// The engine refused or broke off the exec.
    #[error(transparent)]
    Engine(#[from] bollard::errors::Error),
}

/// For the callers that keep an exec's failure as text, as they always did.
impl From<ExecError> for String {
    fn from(e: ExecError) -> String {
        e.to_string()
    }
}

/// `docker exec` with an argv array (never a shell line built from values), reading at
/// most 64 KiB, given up at the deadline.
pub async fn exec(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
) -> Result<ExecOutput, ExecError> {
    exec_env(client, container, argv, Vec::new(), deadline).await
}

/// The same with `env` (`NAME=VALUE`) added to the process's environment: how values
/// that must not be on a command line (the engine's events name an exec's argv) travel.
pub async fn exec_env(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    env: Vec<String>,
    deadline: Instant,
) -> Result<ExecOutput, ExecError> {
    let run = exec_until_env(client, container, argv, env, deadline, MAX_EXEC_OUTPUT).await?;
    if run.finished {
        Ok(run.output)
    } else {
        Err(ExecError::Timeout)
    }
}

/// The same, reading at most `cap` bytes, and keeping what came before the deadline.
pub async fn exec_until(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    deadline: Instant,
    cap: usize,
) -> Result<ExecRun, ExecError> {
    exec_until_env(client, container, argv, Vec::new(), deadline, cap).await
}

/// [`exec_until`] with `env` added to the process's environment.
pub async fn exec_until_env(
    client: &Docker,
    container: &str,
    argv: Vec<String>,
    env: Vec<String>,
    deadline: Instant,
    cap: usize,
) -> Result<ExecRun, ExecError> {
    let (mut stdout, mut stderr, mut exit_code) = (Vec::new(), Vec::new(), None);
    let run = async {
        let created = client
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(argv),
                    env: (!env.is_empty()).then_some(env),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        if let StartExecResults::Attached { mut output, .. } = client
            .start_exec(&created.id, Some(StartExecOptions::default()))
            .await?
        {
            while let Some(chunk) = output.next().await {
                match chunk {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr.extend_from_slice(&message)
                    }
                    Ok(other) => stdout.extend_from_slice(&other.into_bytes()),
                    Err(e) => return Err(e),
                }
                if stdout.len() + stderr.len() > cap {
                    break;
                }
            }
        }
        exit_code = client
            .inspect_exec(&created.id)
            .await
            .ok()
            .and_then(|i| i.exit_code);
        Ok::<_, bollard::errors::Error>(())
    };
    let finished = match tokio::time::timeout_at(deadline, run).await {
        Ok(result) => {
            result?;
            true
        }
        Err(_) => false,
    };
    Ok(ExecRun {
        output: ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        finished,
    })
}

/// The HTTP-capable programs `container.reach` can use, in order of preference.
pub const CLIENTS: [&str; 5] = ["curl", "wget", "python3", "node", "bash"];

/// The first of [`CLIENTS`] the container can run. An exec of a missing program fails
/// to start (exit 126/127 or an OCI error), which is the answer.
pub async fn detect_client(
    client: &Docker,
    container: &str,
    deadline: Instant,
) -> Option<&'static str> {
    for name in CLIENTS {
        let probe = match name {
            "bash" => vec!["bash".to_string(), "-c".into(), "exit 0".into()],
            _ => vec![name.to_string(), "--version".into()],
        };
        if let Ok(out) = exec(client, container, probe, deadline).await {
            if out.exit_code == Some(0) {
                return Some(name);
            }
        }
    }
    None
}
