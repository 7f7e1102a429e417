//! Configuration: the TOML file -> validated [`Config`].
//!
//! The document is parsed with spans kept ([`toml::de::DeTable`]), `${NAME}`
//! references are expanded, then every section is read by typed getters that
//! record an error (key path, line, column) and go on, so one run reports every
//! problem in a file. Cross-section checks run last.

mod duration;
mod env;
mod error;
mod keys;
mod load;
mod pool;
mod reader;
mod scaling;
mod schema;
mod sections;
mod starter;
mod summary;
mod types;
mod validate;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rules;

pub use duration::{parse_duration, parse_size};
pub use error::{ConfigError, ConfigErrors};
pub(crate) use load::load_with_env;
pub use load::{load_file, load_str};
pub use schema::json_schema;
pub use starter::{demo_autoscaled, demo_config, DEMO_TOML, STARTER_CONFIG};
pub use summary::summary_lines;
pub use types::*;
pub(crate) use values::without_resolver;
pub use values::{parse_addr, parse_hash_key, parse_host, parse_status_ranges};
