//! One module per probe kind. A probe reads facts and returns a [`Finding`](crate::model::Finding);
//! it never prints and never changes anything. `dispatch` picks the probe of a check by
//! its [`ProbeKind`](crate::probe_kind::ProbeKind); no probe imports it.

mod approval;
mod auth;
mod claude_json;
pub mod dispatch;
pub(crate) mod docker;
mod generic;
mod host_mcp_json;
mod hub;
mod isolation;
mod listen;
mod marker;
mod mcp;
mod mcp_json;
mod oauth;
mod permissions;
mod pidfile;
mod scope_conflict;
mod server_entry;
mod transport;
mod trust;
