//! `server.max_connections_per_client`: open connections per client IP,
//! counted across every worker and listener. A connection beyond the limit is
//! closed as soon as it is accepted (before it takes a `max_connections` slot).
//!
//! The counts live in [`SHARDS`] maps, each behind its own mutex, picked by a
//! keyed hash of the IP: an accept touches one shard for one increment, a
//! close for one decrement; an IP whose count drops to 0 is removed, so memory
//! is bounded by the connections open.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Shards of the per-client counts. 16.
pub const SHARDS: usize = 16;

/// The per-client connection counts.
#[derive(Debug)]
pub struct ClientConns {
    max: usize,
    shards: Box<[Mutex<HashMap<IpAddr, usize>>]>,
    hasher: RandomState,
}

/// One open connection of a client; dropping it ends that.
#[derive(Debug)]
pub struct ClientConn {
    owner: Arc<ClientConns>,
    ip: IpAddr,
}

impl ClientConns {
    /// At most `max` (>= 1) connections per client IP.
    pub fn new(max: usize) -> Arc<ClientConns> {
        Arc::new(ClientConns {
            max: max.max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        })
    }

    fn shard(&self, ip: &IpAddr) -> Option<&Mutex<HashMap<IpAddr, usize>>> {
        let i = usize::try_from(self.hasher.hash_one(ip) % SHARDS as u64).unwrap_or(0);
        self.shards.get(i)
    }

    /// Counts a new connection from `ip`; `None` when it already has `max` open.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<ClientConn> {
        let mut map = self.shard(&ip)?.lock();
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientConn {
            owner: self.clone(),
            ip,
        })
    }

    /// Connections open now from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.shard(&ip)
            .map_or(0, |s| s.lock().get(&ip).copied().unwrap_or(0))
    }
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        let Some(shard) = self.owner.shard(&self.ip) else {
            return;
        };
        let mut map = shard.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_per_ip_and_freed_on_drop() {
        let c = ClientConns::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let one = c.try_open(a).unwrap();
        let _two = c.try_open(a).unwrap();
        assert!(c.try_open(a).is_none());
        let _other = c.try_open(b).unwrap();
        drop(one);
        assert_eq!(c.open(a), 1);
        let _three = c.try_open(a).unwrap();
        assert_eq!(c.open(a), 2);
        drop(_three);
        drop(_two);
        assert_eq!(c.open(a), 0);
        let entries: usize = c.shards.iter().map(|s| s.lock().len()).sum();
        assert_eq!(entries, 1, "an IP without connections is forgotten");
    }
}
