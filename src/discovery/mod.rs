//! Discovery: pools whose members drover finds but never starts or stops.
//!
//! A [`Discovery`] watches the addresses of one pool (containers labelled for
//! it: `crate::docker::labels`; the answer of a DNS name: [`dns`]) and sends
//! every new set to its [`Sink`], the one place where a discovered set is
//! applied to the pool: new addresses join, vanished ones drain (no new
//! requests; removed when their in-flight requests are done or after the
//! pool's `drain_timeout`). [`Watchers`] keeps one watch task per pool in step
//! with the router's pools across reloads. Instances drover runs itself are
//! the other side: `crate::instances::Provider`.

pub mod dns;
mod sink;
mod watchers;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use sink::{Sink, ERROR_EVENT_INTERVAL};
pub use watchers::{Factory, Watchers};

/// One discovered address: its weight and where it came from (shown in events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Default 1.
    pub weight: u32,
    /// e.g. `"api.internal answers 10.0.0.7"`, `"labelled container 3f2a9c1d0b4e is running"`.
    pub origin: String,
}

/// A pool's discovered members by address.
pub type MemberSet = BTreeMap<SocketAddr, Found>;

/// Watches the set of addresses of one pool.
pub trait Discovery: Send + Sync {
    /// Its config spelling (`docker_labels`, `dns`), for logs and events.
    fn kind(&self) -> &'static str;
    /// What a watch depends on besides the pool (a changed identity restarts
    /// the watch on reload): e.g. the name servers asked.
    fn identity(&self) -> String {
        self.kind().to_string()
    }
    /// Runs until [`Sink::config`] says the pool is gone, sending every new
    /// member set ([`Sink::set`]) and every failure ([`Sink::failed`]) to `out`.
    fn watch(self: Arc<Self>, out: Sink) -> BoxFuture<'static, ()>;
}
