//! The Docker engine as the container checks see it: connected the way the docker CLI
//! connects, every agent container found and inspected once, and `docker exec` with an
//! argv array, a deadline and a cap on what it reads. One room per job:
//!
//! - `config`, `connect`, `tls`, `wire`: the connection (local socket, TCP and TLS,
//!   contexts; the traced, capped transport under bollard);
//! - `discover`: finding and inspecting the agent containers;
//! - `exec`: `docker exec`;
//! - `archive`: a file out of a container, and its logs.
//!
//! This module is their face: it only names the rooms and what callers outside use, and
//! no room imports it (each imports the room it needs), so the rooms form no loop.

pub mod archive;
mod config;
pub mod connect;
pub mod discover;
pub mod exec;
mod tls;
mod wire;

pub use archive::{last_log_lines, read_file, MAX_TAR};
pub use connect::{endpoint, Endpoint, EngineError};
pub use discover::{
    entrypoint_script, gather, mounted_at, pid1_command, Container, DockerFacts, Engine, MountInfo,
    NetSetup, NetworkInfo,
};
pub use exec::{
    detect_client, exec, exec_env, exec_until, exec_until_env, ExecError, ExecOutput, ExecRun,
    CLIENTS,
};
