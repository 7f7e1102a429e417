//! The reverse proxy: listeners and workers, forwarding, header rules, upgrades.

pub mod attempt;
pub mod body;
pub mod conn_activity;
pub mod errors;
pub mod forward;
pub mod headers;
pub mod isolate;
pub mod limits;
pub mod listen;
pub mod request_id;
pub mod router;
pub mod server;
pub mod tls;
pub mod trace_context;
pub mod upgrade;
pub mod upload;
pub mod upstream;
pub mod value_arena;
pub mod watched;
