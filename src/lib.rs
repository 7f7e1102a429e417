#![forbid(unsafe_code)]
//! drover: reverse proxy, load balancer, health checker and autoscaler.

pub mod backend_app;
pub mod balance;
pub mod config;
pub mod access_log;
pub mod pool;
pub mod proxy;
