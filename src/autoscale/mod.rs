//! Autoscaling: the pure policy and the sampler of what drover measures.

pub mod cpu;
pub mod policy;
pub mod sampler;
#[cfg(test)]
mod tests;
