//! The reverse proxy: listeners and workers, forwarding, header rules, upgrades.

pub mod attempt;
pub mod body;
pub mod client_conns;
pub mod conn_activity;
pub mod errors;
pub mod forward;
pub mod framing;
pub mod gcra;
pub mod grpc;
pub mod h1;
pub mod headers;
pub mod isolate;
pub mod limits;
pub mod listen;
pub mod prepare;
pub mod rate_limiter;
pub mod request_id;
pub mod route_rules;
pub mod router;
pub mod server;
pub mod sticky;
pub mod tls;
pub mod trace_context;
pub mod upgrade;
pub mod value_arena;
pub mod watched;
