//! Configuration: raw serde structs -> validated [`Config`].

mod types;
pub use types::*;
