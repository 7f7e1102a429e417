//! Autoscaling: the pure policy and the sampler of what drover measures.

pub mod cpu;
pub mod explain;
pub mod forecast;
pub mod policy;
pub mod sampler;
pub mod schedule;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forecast;
