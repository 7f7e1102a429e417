#![forbid(unsafe_code)]
//! drover: reverse proxy, load balancer, health checker and autoscaler.

pub mod access_log;
pub mod admin;
pub mod app;
pub mod autoscale;
pub mod backend_app;
pub mod balance;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod discovery;
pub mod docker;
pub mod events;
#[doc(hidden)]
pub mod fuzz_api;
pub mod h2wire;
pub mod health;
pub mod instances;
pub mod notify;
pub mod pool;
pub mod proxy;
pub mod rate_limit;
pub mod upstream;
pub mod watch;
