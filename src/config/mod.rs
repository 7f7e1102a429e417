//! Configuration: the TOML file -> validated [`Config`].
//!
//! The document is parsed with spans kept ([`toml::de::DeTable`]), `${NAME}`
//! references are expanded, then every section is read by typed getters that
//! record an error (key path, line, column) and go on, so one run reports every
//! problem in a file. Cross-section checks run last.

mod defaults;
mod duration;
mod env;
mod error;
pub mod hosts;
mod keys;
mod keys_route;
mod keys_server;
mod load;
mod policy_keys;
mod pool;
mod protocol;
mod reader;
mod resolver;
mod route_rules;
mod route_types;
mod scaling;
mod scaling_ahead;
pub mod schedule;
mod schema;
mod sections;
mod spelled;
mod starter;
mod summary;
mod tls_client;
mod types;
mod upstream_tls;
mod validate;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ahead;
#[cfg(test)]
mod tests_defaults;
#[cfg(test)]
mod tests_dns;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_protocol;
#[cfg(test)]
mod tests_route_rules;
#[cfg(test)]
mod tests_rules;

pub use duration::{parse_duration, parse_size};
pub use error::{ConfigError, ConfigErrors};
pub(crate) use load::load_with_env;
pub use load::{load_file, load_str};
pub use policy_keys::{LoadPolicy, SameSite, SlowStart, StickyConfig};
pub use protocol::valid_grpc_method;
pub use resolver::parse_nameserver;
pub use schema::json_schema;
pub use starter::{demo_autoscaled, demo_config, DEMO_TOML, STARTER_CONFIG};
pub use summary::summary_lines;
pub use tls_client::{parse_server_name, BuildError, TlsSettings, UpstreamTls};
pub use types::*;
pub use upstream_tls::{log_warnings, strip_https, warnings};
pub(crate) use values::without_resolver;
pub use values::{
    is_valid_name, parse_addr, parse_backend_address, parse_dns_name, parse_hash_key, parse_host,
    parse_status_ranges, BackendAddress, MAX_NAME_LEN,
};
