//! pd-doctor: diagnoses Pipe Dream's agent containers and the MCP servers they need.
//! `cli` drives; `project` and `catalogue` say what to check; `engine` runs `probes` over
//! shared `facts`; `report` renders. Only `fixes` will ever change anything, and every
//! file in the project tree is read and written through `safefs`. The modules form
//! layers that import only downward (README, "Layout of this repository";
//! `tests/layers.rs` holds them to it).

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod causes;
pub mod claude_config;
pub mod cli;
pub mod debuglog;
pub mod dockerfile;
pub mod engine;
pub mod expand;
pub mod facts;
pub mod fixes;
pub mod model;
pub mod paths;
pub mod plan;
pub mod printable;
pub mod probe_kind;
pub mod probes;
pub mod progress;
pub mod project;
#[cfg(test)]
mod proptests;
pub mod redact;
pub mod report;
pub mod run;
pub mod safefs;
