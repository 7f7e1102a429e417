//! The member set of a pool: members with their state, swapped atomically.
//!
//! The request path reads a [`PoolSnapshot`] without a lock (`ArcSwap`); every
//! change (config reload, admin API, health checks, instances) goes through
//! [`Pool::apply`] with a typed [`PoolCommand`], which builds the new snapshot —
//! members and their state together — and swaps it in.

mod budget;
mod cause;
mod change;
pub mod ejection;
mod inflight;
mod member;
mod metrics;
mod queue;
mod sticky_hits;
pub mod tasks;
#[cfg(test)]
mod tests_policy;

pub use budget::{RetryBudget, Window as BudgetWindow};
pub use cause::{Cause, ClientFault, CLIENT_CLOSED_REQUEST};
pub use change::Change;
pub use inflight::Inflight;
pub use member::{LastCheck, Member, MemberState, MemberStats, Verdict};
pub use metrics::{per_bucket, quantile, Histogram, PoolMetrics, BUCKETS};
pub use queue::{QueueError, QueueSlot, WaitQueue};
pub use sticky_hits::{sticky_id, StickyHits, STICKY_QUIET};

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};
use tokio::sync::Notify;

use crate::balance::slow_start::{self, Ramp};
use crate::balance::{self, LoadStats, MemberSet, Selector};
use crate::config::{BackendConfig, PoolConfig};

/// An immutable view of a pool: its config, members and selector.
pub struct PoolSnapshot {
    pub config: Arc<PoolConfig>,
    pub members: Vec<Member>,
    pub selector: Box<dyn Selector>,
    /// The pool's slow start, if configured.
    ramp: Option<Ramp>,
    /// When the last slow-start window of a healthy member ends (`None`: none runs).
    ramp_until: Option<Instant>,
    /// Each member's sticky-cookie id (see [`crate::proxy::sticky`]), same order as `members`.
    pub sticky_ids: Vec<u64>,
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
    fn effective_weight(&self, i: usize, now: Option<Instant>) -> u64 {
        let m = &self.members[i];
        match (self.ramp, now) {
            (Some(r), Some(now)) => r.weight(m.weight, m.healthy_since, now),
            _ => slow_start::scaled(m.weight, 1.0),
        }
    }
}

impl PoolSnapshot {
    fn build(config: Arc<PoolConfig>, members: Vec<Member>) -> PoolSnapshot {
        let weights: Vec<u32> = members.iter().map(|m| m.weight).collect();
        let seeds: Vec<u64> = members
            .iter()
            .map(|m| balance::hash_key_bytes(m.address.to_string().as_bytes()))
            .collect();
        let selector = balance::build(config.balance, &weights, &seeds, config.policy.bounded_load);
        let ramp = config.policy.slow_start.map(|s| Ramp {
            window: s.window,
            aggression: s.aggression,
        });
        let ramp_until = ramp.and_then(|r| {
            members
                .iter()
                .filter(|m| m.state.routable())
                .filter_map(|m| m.healthy_since)
                .max()
                .map(|s| s + r.window)
        });
        let sticky_ids = match &config.policy.sticky {
            Some(_) => members
                .iter()
                .map(|m| sticky_id(&config.name, m.address))
                .collect(),
            None => Vec::new(),
        };
        PoolSnapshot {
            config,
            members,
            selector,
            ramp,
            ramp_until,
            sticky_ids,
        }
    }

    /// The time selection needs while a slow-start window runs (`None` = every
    /// member at full weight; then no clock is read).
    pub fn slow_start_now(&self) -> Option<Instant> {
        let until = self.ramp_until?;
        let now = slow_start::now();
        (now < until).then_some(now)
    }

    /// Effective weight of member `i` now, in weight units (0 when it takes
    /// no requests), as the admin API shows it.
    pub fn effective_weight_now(&self, i: usize) -> f64 {
        match self.members.get(i) {
            Some(m) if m.state.routable() => {
                self.effective_weight(i, Some(slow_start::now())) as f64
                    / slow_start::WEIGHT_SCALE as f64
            }
            _ => 0.0,
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
    /// Set a member's state only if it is in one of `from` now (health
    /// transitions, so they never override e.g. `draining` set meanwhile).
    Transition {
        address: SocketAddr,
        from: Vec<MemberState>,
        to: MemberState,
        reason: String,
    },
    /// Passive ejection of a healthy member for `eject_for` (doubled on a
    /// quick relapse, see [`ejection`]); refused when it would
    /// take out more than half of the members.
    Eject {
        address: SocketAddr,
        eject_for: Duration,
        reason: String,
    },
}

/// Why a command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("pool {pool} has no member {address}")]
    NoSuchMember { pool: String, address: SocketAddr },
    #[error("member {address} of pool {pool} is {state}; not changed")]
    StateChanged {
        pool: String,
        address: SocketAddr,
        state: &'static str,
    },
    #[error("member {address} of pool {pool} not ejected: {why}")]
    EjectRefused {
        pool: String,
        address: SocketAddr,
        why: String,
    },
}

/// A pool: its current snapshot and the single path that changes it.
pub struct Pool {
    pub name: String,
    /// Counters kept across snapshots and reloads.
    pub metrics: PoolMetrics,
    /// Retries allowed per 10 s window (see [`RetryBudget`]).
    pub budget: RetryBudget,
    /// Requests waiting for a member below `max_connections_per_backend`, and
    /// requests held for a cold start (both bounded by `max_queue`).
    pub queue: Arc<WaitQueue>,
    /// Notified on every snapshot swap (the health task waits on it).
    pub changed: Notify,
    /// Notified (all waiters) on every snapshot swap: requests held for a cold start wait on it.
    pub swapped: Notify,
    /// Instances the pool should run (managed pools; set by the instance controller).
    pub desired: std::sync::atomic::AtomicU32,
    /// Requests held while an instance starts (scale from zero).
    pub held: std::sync::atomic::AtomicU32,
    /// Notified when a request finds no routable member (wakes the instance controller).
    pub demand: Notify,
    snapshot: ArcSwap<PoolSnapshot>,
    write: Mutex<()>,
}

impl Pool {
    /// A pool with the config's static backends, in the state the config implies
    /// (`unhealthy` until checks pass when a health check with
    /// `initial_state = "unhealthy"` is configured, else `healthy`).
    pub fn new(config: Arc<PoolConfig>) -> Pool {
        let queue = Arc::new(WaitQueue::default());
        let members = Self::configured_members(&config, &[], &queue, true);
        Pool {
            name: config.name.clone(),
            metrics: PoolMetrics::default(),
            budget: RetryBudget::default(),
            queue,
            changed: Notify::new(),
            swapped: Notify::new(),
            desired: std::sync::atomic::AtomicU32::new(config.instances.as_ref().map_or(0, |i| {
                match &config.autoscale {
                    Some(a) => a.min.max(i.count.min(a.max)),
                    None => i.count,
                }
            })),
            held: std::sync::atomic::AtomicU32::new(0),
            demand: Notify::new(),
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

    /// The config's static members, keeping the state of those in `old`;
    /// `initial`: the pool is being created (no slow start for them).
    fn configured_members(
        config: &PoolConfig,
        old: &[Member],
        queue: &Arc<WaitQueue>,
        initial: bool,
    ) -> Vec<Member> {
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
                    None => Member::new(
                        b.address,
                        b.weight,
                        false,
                        state,
                        reason.to_string(),
                        Arc::new(MemberStats::new(queue.clone())),
                        initial,
                    ),
                },
            )
            .collect();
        // Managed members are not in the config; they stay.
        members.extend(old.iter().filter(|m| m.managed).cloned());
        members
    }

    /// Applies one command: builds the new snapshot and swaps it in; returns
    /// what changed (the event comes from it: [`Change::record`]).
    pub fn apply(&self, cmd: PoolCommand) -> Result<Change, PoolError> {
        let _w = self.write.lock();
        let cur = self.snapshot.load_full();
        let mut config = cur.config.clone();
        let mut members = cur.members.clone();
        let change = match cmd {
            PoolCommand::Configure(new) => {
                members = Self::configured_members(&new, &members, &self.queue, false);
                config = new;
                Change::Configured
            }
            PoolCommand::Add {
                address,
                weight,
                managed,
                state,
            } => match members.iter_mut().find(|m| m.address == address) {
                Some(m) => {
                    m.weight = weight;
                    Change::Reweighted { address }
                }
                None => {
                    members.push(Member::new(
                        address,
                        weight,
                        managed,
                        state,
                        "added".to_string(),
                        Arc::new(MemberStats::new(self.queue.clone())),
                        false,
                    ));
                    Change::Added { address }
                }
            },
            PoolCommand::Remove { address } => {
                let before = members.len();
                members.retain(|m| m.address != address);
                if members.len() == before {
                    return Err(self.no_such(address));
                }
                Change::Removed { address }
            }
            PoolCommand::SetState {
                address,
                state,
                reason,
            } => {
                let m = self.member_mut(&mut members, address)?;
                let from = m.state;
                set_state(m, state, reason);
                Change::State {
                    address,
                    from,
                    to: state,
                }
            }
            PoolCommand::Transition {
                address,
                from,
                to,
                reason,
            } => {
                let m = self.member_mut(&mut members, address)?;
                if !from.contains(&m.state) {
                    return Err(PoolError::StateChanged {
                        pool: self.name.clone(),
                        address,
                        state: m.state.as_str(),
                    });
                }
                let from = m.state;
                set_state(m, to, reason);
                Change::State { address, from, to }
            }
            PoolCommand::Eject {
                address,
                eject_for,
                reason,
            } => {
                let i = members
                    .iter()
                    .position(|m| m.address == address)
                    .ok_or_else(|| self.no_such(address))?;
                let now = tokio::time::Instant::now();
                let e = ejection::plan(&members, i, eject_for, now).map_err(|why| {
                    PoolError::EjectRefused {
                        pool: self.name.clone(),
                        address,
                        why,
                    }
                })?;
                let m = &mut members[i];
                m.enter(MemberState::Ejected);
                m.reason = reason;
                m.ejection = e;
                Change::Ejected {
                    address,
                    eject_for: e.last_for,
                    streak: e.streak,
                }
            }
        };
        if config.protocol.kind.may_use_h2() {
            retire_h2(&cur.members, &members);
        }
        self.snapshot
            .store(Arc::new(PoolSnapshot::build(config, members)));
        self.changed.notify_one();
        self.swapped.notify_waiters();
        self.queue.wake_all();
        Ok(change)
    }

    fn member_mut<'m>(
        &self,
        members: &'m mut [Member],
        address: SocketAddr,
    ) -> Result<&'m mut Member, PoolError> {
        members
            .iter_mut()
            .find(|m| m.address == address)
            .ok_or_else(|| self.no_such(address))
    }

    fn no_such(&self, address: SocketAddr) -> PoolError {
        PoolError::NoSuchMember {
            pool: self.name.clone(),
            address,
        }
    }
}

/// Sets a member's state; leaving `ejected` ends the ejection (its history stays
/// for the back-off of the next one).
fn set_state(m: &mut Member, state: MemberState, reason: String) {
    if m.state == MemberState::Ejected && state != MemberState::Ejected {
        m.ejection = ejection::returned(m.ejection, tokio::time::Instant::now());
    }
    m.enter(state);
    m.reason = reason;
}

impl Pool {
    /// Instances the pool should run: for a pool with `[instances]` the count
    /// its controller keeps ([`Pool::desired`], set by the controller and the
    /// autoscaler; before that `instances.count` within the autoscale bounds);
    /// for a static pool its member count. The API, the metrics and the
    /// dashboard's history all show this one.
    pub fn desired_instances(&self) -> u32 {
        let snap = self.snapshot();
        match snap.config.instances {
            Some(_) => self.desired.load(std::sync::atomic::Ordering::Relaxed),
            None => snap.members.len() as u32,
        }
    }

    /// Whether requests finding no member are held while an instance starts
    /// (pools with managed instances), and for how long: `autoscale.hold_timeout`,
    /// else `instances.start_timeout`.
    pub fn hold_timeout(&self) -> Option<std::time::Duration> {
        let snap = self.snapshot();
        let inst = snap.config.instances.as_ref()?;
        if inst.provider.discovers() {
            return None;
        }
        Some(
            snap.config
                .autoscale
                .as_ref()
                .map_or(inst.start_timeout, |a| a.hold_timeout),
        )
    }
}

/// What is done with a member that drains or leaves a pool that may use
/// HTTP/2: set once by the upstream client's user (the proxy workers set
/// `upstream::http2::retire`, so that its shared connections take no new
/// stream and close with GOAWAY once their streams end). The pool sits below
/// the upstream client and cannot name it.
static ON_RETIRE: OnceLock<fn(SocketAddr)> = OnceLock::new();

/// Sets the hook called for members that drain or leave a pool that may use
/// HTTP/2 (the first call wins; later ones change nothing).
pub fn on_member_retired(hook: fn(SocketAddr)) {
    let _ = ON_RETIRE.set(hook);
}

/// Calls the retire hook for members now draining or gone.
fn retire_h2(old: &[Member], new: &[Member]) {
    let Some(retire) = ON_RETIRE.get() else {
        return;
    };
    for m in old {
        let now = new.iter().find(|n| n.address == m.address);
        if now.is_none_or(|n| n.state == MemberState::Draining) {
            retire(m.address);
        }
    }
}

/// How the reason of a member that joined from the warm pool starts.
pub const WARM_START: &str = "warm start";
