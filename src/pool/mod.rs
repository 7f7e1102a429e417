//! The member set of a pool: members with their state, swapped atomically.
//!
//! The request path reads a [`PoolSnapshot`] without a lock (`ArcSwap`); every
//! change (config reload, admin API, health checks, instances) goes through
//! [`Pool::apply`] with a typed [`PoolCommand`], which builds the new snapshot —
//! members and their state together — and swaps it in.

mod member;
mod metrics;

pub use member::{Member, MemberState, MemberStats};
pub use metrics::{Histogram, PoolMetrics, BUCKETS};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};

use crate::balance::{self, LoadStats, MemberSet, Selector};
use crate::config::{BackendConfig, PoolConfig};

/// An immutable view of a pool: its config, members and selector.
pub struct PoolSnapshot {
    pub config: Arc<PoolConfig>,
    pub members: Vec<Member>,
    pub selector: Box<dyn Selector>,
}

impl MemberSet for PoolSnapshot {
    fn len(&self) -> usize {
        self.members.len()
    }
    fn weight(&self, i: usize) -> u32 {
        self.members[i].weight
    }
    fn load(&self, i: usize) -> &LoadStats {
        &self.members[i].stats.load
    }
}

impl PoolSnapshot {
    fn build(config: Arc<PoolConfig>, members: Vec<Member>) -> PoolSnapshot {
        let weights: Vec<u32> = members.iter().map(|m| m.weight).collect();
        let seeds: Vec<u64> = members
            .iter()
            .map(|m| balance::hash_key_bytes(m.address.to_string().as_bytes()))
            .collect();
        let selector = balance::build(config.balance, &weights, &seeds);
        PoolSnapshot {
            config,
            members,
            selector,
        }
    }

    /// Index of the member with this address.
    pub fn position(&self, address: SocketAddr) -> Option<usize> {
        self.members.iter().position(|m| m.address == address)
    }
}

/// A change to a pool's member set or state.
#[derive(Debug, Clone)]
pub enum PoolCommand {
    /// New pool config (reload): static members are set to the config's
    /// backends; members the new config still has keep their state and stats.
    Configure(Arc<PoolConfig>),
    /// Add a member (201 in the API); an existing address only has its weight updated.
    Add {
        address: SocketAddr,
        weight: u32,
        managed: bool,
        state: MemberState,
    },
    /// Remove a member at once.
    Remove { address: SocketAddr },
    /// Set a member's state, with the reason shown in the API.
    SetState {
        address: SocketAddr,
        state: MemberState,
        reason: String,
    },
}

/// Why a command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("pool {pool} has no member {address}")]
    NoSuchMember { pool: String, address: SocketAddr },
}

/// A pool: its current snapshot and the single path that changes it.
pub struct Pool {
    pub name: String,
    /// Counters kept across snapshots and reloads.
    pub metrics: PoolMetrics,
    snapshot: ArcSwap<PoolSnapshot>,
    write: Mutex<()>,
}

impl Pool {
    /// A pool with the config's static backends, in the state the config implies
    /// (`unhealthy` until checks pass when a health check with
    /// `initial_state = "unhealthy"` is configured, else `healthy`).
    pub fn new(config: Arc<PoolConfig>) -> Pool {
        let members = Self::configured_members(&config, &[]);
        Pool {
            name: config.name.clone(),
            metrics: PoolMetrics::default(),
            snapshot: ArcSwap::from_pointee(PoolSnapshot::build(config, members)),
            write: Mutex::new(()),
        }
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Guard<Arc<PoolSnapshot>> {
        self.snapshot.load()
    }

    /// The current snapshot as an owned `Arc`.
    pub fn snapshot_arc(&self) -> Arc<PoolSnapshot> {
        self.snapshot.load_full()
    }

    fn initial_state(config: &PoolConfig) -> (MemberState, &'static str) {
        match &config.health {
            Some(h) if !h.initial_healthy => (
                MemberState::Unhealthy,
                "waiting for the first health checks",
            ),
            _ => (MemberState::Healthy, "configured"),
        }
    }

    fn configured_members(config: &PoolConfig, old: &[Member]) -> Vec<Member> {
        let (state, reason) = Self::initial_state(config);
        let mut members: Vec<Member> = config
            .backends
            .iter()
            .map(
                |b: &BackendConfig| match old.iter().find(|m| m.address == b.address) {
                    Some(m) => Member {
                        weight: b.weight,
                        managed: false,
                        ..m.clone()
                    },
                    None => Member {
                        address: b.address,
                        weight: b.weight,
                        managed: false,
                        state,
                        reason: reason.to_string(),
                        stats: Arc::new(MemberStats::default()),
                    },
                },
            )
            .collect();
        // Managed members are not in the config; they stay.
        members.extend(old.iter().filter(|m| m.managed).cloned());
        members
    }

    /// Applies one command: builds the new snapshot and swaps it in.
    pub fn apply(&self, cmd: PoolCommand) -> Result<(), PoolError> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let cur = self.snapshot.load_full();
        let mut config = cur.config.clone();
        let mut members = cur.members.clone();
        match cmd {
            PoolCommand::Configure(new) => {
                members = Self::configured_members(&new, &members);
                config = new;
            }
            PoolCommand::Add {
                address,
                weight,
                managed,
                state,
            } => match members.iter_mut().find(|m| m.address == address) {
                Some(m) => m.weight = weight,
                None => members.push(Member {
                    address,
                    weight,
                    managed,
                    state,
                    reason: "added".to_string(),
                    stats: Arc::new(MemberStats::default()),
                }),
            },
            PoolCommand::Remove { address } => {
                let before = members.len();
                members.retain(|m| m.address != address);
                if members.len() == before {
                    return Err(self.no_such(address));
                }
            }
            PoolCommand::SetState {
                address,
                state,
                reason,
            } => {
                let m = members
                    .iter_mut()
                    .find(|m| m.address == address)
                    .ok_or_else(|| self.no_such(address))?;
                m.state = state;
                m.reason = reason;
            }
        }
        self.snapshot
            .store(Arc::new(PoolSnapshot::build(config, members)));
        Ok(())
    }

    fn no_such(&self, address: SocketAddr) -> PoolError {
        PoolError::NoSuchMember {
            pool: self.name.clone(),
            address,
        }
    }
}
