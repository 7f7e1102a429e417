//! The instance controller's decisions, pure: [`reconcile`] compares what runs
//! (the [`Book`] of tracked instances and what was [`Observed`] of them) with
//! what is [`Desired`], updates the book and returns the [`Action`]s that bring
//! one to the other. The executor ([`super::controller`]) observes, runs the
//! actions through the [`super::Provider`] and the pool, and reports starts
//! back ([`Book::started`], [`Book::failed_start`]).
//!
//! At start, instances a previous drover left running are adopted ([`adopt`]).
//! Then per round, in this order:
//! 1. an instance seen healthy for the first time is ready ([`Action::Ready`]),
//!    which ends a crash loop (the failure count is reset);
//! 2. an instance that exited on its own, was not healthy within
//!    `start_timeout` of its start, or stayed unhealthy for `start_timeout`
//!    after having been healthy is replaced ([`Action::Replace`]): each failure
//!    pushes the next start back by [`backoff`] (1 s doubling to 60 s);
//! 3. an instance being stopped whose end was seen is forgotten;
//! 4. with fewer in rotation than desired, one start ([`Action::Start`]) once
//!    the back-off is over and unless closing; with more, one drain
//!    ([`Action::Drain`]) of the member that hurts least (fewest recent sticky
//!    sessions, then fewest requests in flight, newest on ties).
//!
//! One start or one drain per round: the executor looks again before the next.
//! Instances being stopped (failed or draining) do not count toward desired.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::pool::MemberState;

/// First back-off after a failed instance. Default 1 s.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest back-off. Default 60 s.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Back-off after `failures` consecutive failures: 1 s, 2 s, 4 s, ... 60 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    BACKOFF_MIN
        .saturating_mul(1u32 << (failures - 1).min(16))
        .min(BACKOFF_MAX)
}

/// One instance the controller tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub address: SocketAddr,
    pub started_at: Instant,
    /// It passed its health check at least once.
    pub healthy_once: bool,
    /// Since when it is not healthy (from its start until it first is).
    pub unhealthy_since: Option<Instant>,
    /// Being stopped (failed, or draining on scale-down): out of the count.
    pub stopping: bool,
}

/// The controller's state between rounds.
#[derive(Debug, Clone)]
pub struct Book {
    /// Tracked instances by provider id.
    pub tracked: BTreeMap<String, Tracked>,
    /// Consecutive failures (reset when an instance becomes healthy).
    pub failures: u32,
    /// No instance is started before this.
    pub next_start: Instant,
}

impl Book {
    /// An empty book: the first start may happen at `now`.
    pub fn new(now: Instant) -> Book {
        Book {
            tracked: BTreeMap::new(),
            failures: 0,
            next_start: now,
        }
    }

    /// Instances in rotation or on their way (not being stopped).
    pub fn active(&self) -> usize {
        self.tracked.values().filter(|t| !t.stopping).count()
    }

    /// Whether the back-off allows a start at `now`.
    pub fn may_start(&self, now: Instant) -> bool {
        now >= self.next_start
    }

    /// A start succeeded: the instance waits for its health check.
    pub fn started(&mut self, id: String, address: SocketAddr, now: Instant) {
        self.tracked.insert(id, Tracked::new(address, now, false));
    }

    /// A warm instance joined the pool: it has passed its health check already.
    pub fn joined_warm(&mut self, id: String, address: SocketAddr, now: Instant) {
        self.tracked.insert(id, Tracked::new(address, now, true));
    }

    /// A start failed at `now`: one more failure; returns the wait before the next.
    pub fn failed_start(&mut self, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = backoff(self.failures);
        self.next_start = now + wait;
        wait
    }
}

impl Tracked {
    fn new(address: SocketAddr, now: Instant, healthy_once: bool) -> Tracked {
        Tracked {
            address,
            started_at: now,
            healthy_once,
            unhealthy_since: None,
            stopping: false,
        }
    }
}

/// What the executor saw of one tracked instance this round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// It exited since the last look, with why.
    pub exited: Option<String>,
    /// Its end has been seen (now or before; the provider's signal is spent).
    pub ended: bool,
    /// Its state in the pool (`None`: not a member).
    pub state: Option<MemberState>,
    /// Requests of recent sticky sessions (pools with `sticky`; else 0).
    pub sticky: u64,
    /// Requests in flight.
    pub inflight: u64,
}

/// What the executor saw this round.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Tracked instances by id (missing: nothing seen, not a member).
    pub seen: HashMap<String, Seen>,
}

/// What the pool should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// Instances in rotation (`Pool::desired`).
    pub count: usize,
    /// `instances.start_timeout`.
    pub start_timeout: Duration,
    /// Drover is shutting down or the pool is gone: start nothing.
    pub closing: bool,
}

/// What the executor is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A running instance was taken over: add it to the pool as starting.
    Adopt { id: String, address: SocketAddr },
    /// First healthy, `took` after its start (the forecast's start time).
    Ready { id: String, took: Duration },
    /// It failed (`why`): remove it from the pool and stop it; the next start
    /// waits `wait`.
    Replace {
        id: String,
        address: SocketAddr,
        why: String,
        wait: Duration,
    },
    /// Its end was seen after it was stopped: forgotten.
    Forget { id: String },
    /// Start one instance, then report back to the book.
    Start,
    /// Scale down: drain it (no new requests), then stop it ([`drain_over`]).
    Drain { id: String, address: SocketAddr },
}

/// Takes over `running` instances (id, address) the book does not know yet:
/// they wait for their health check like fresh starts.
pub fn adopt(book: &mut Book, running: &[(String, SocketAddr)], now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    for (id, address) in running {
        if !book.tracked.contains_key(id) {
            book.tracked
                .insert(id.clone(), Tracked::new(*address, now, false));
            out.push(Action::Adopt {
                id: id.clone(),
                address: *address,
            });
        }
    }
    out
}

/// One round of the controller (see the module doc).
pub fn reconcile(book: &mut Book, seen: &Observed, want: &Desired, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    let none = Seen::default();
    let mut failed = Vec::new();
    for (id, t) in book.tracked.iter_mut() {
        let s = seen.seen.get(id).unwrap_or(&none);
        match look(t, s, want.start_timeout, now) {
            Look::Same => {}
            Look::Ready => {
                let took = now.saturating_duration_since(t.started_at);
                out.push(Action::Ready {
                    id: id.clone(),
                    took,
                });
            }
            Look::Failed(why) => failed.push((id.clone(), why)),
        }
    }
    if out.iter().any(|a| matches!(a, Action::Ready { .. })) {
        book.failures = 0;
    }
    for (id, why) in failed {
        let Some(t) = book.tracked.get_mut(&id) else {
            continue;
        };
        t.stopping = true;
        let address = t.address;
        let wait = book.failed_start(now);
        out.push(Action::Replace {
            id,
            address,
            why,
            wait,
        });
    }
    let ended: Vec<String> = book
        .tracked
        .iter()
        .filter(|(id, t)| t.stopping && seen.seen.get(*id).is_some_and(|s| s.ended))
        .map(|(id, _)| id.clone())
        .collect();
    for id in ended {
        book.tracked.remove(&id);
        out.push(Action::Forget { id });
    }
    let active = book.active();
    if active < want.count {
        if book.may_start(now) && !want.closing {
            out.push(Action::Start);
        }
    } else if active > want.count {
        if let Some((id, address)) = victim(book, seen) {
            if let Some(t) = book.tracked.get_mut(&id) {
                t.stopping = true;
            }
            out.push(Action::Drain { id, address });
        }
    }
    out
}

/// What one look at a tracked instance found.
enum Look {
    Same,
    /// Healthy for the first time.
    Ready,
    /// Exited on its own, or unhealthy past `start_timeout`: why.
    Failed(String),
}

/// One tracked instance this round: updates its health record.
fn look(t: &mut Tracked, s: &Seen, start_timeout: Duration, now: Instant) -> Look {
    if let Some(why) = &s.exited {
        let was_stopping = std::mem::replace(&mut t.stopping, true);
        return if was_stopping {
            Look::Same
        } else {
            Look::Failed(format!("instance exited: {why}"))
        };
    }
    if t.stopping {
        return Look::Same;
    }
    match s.state {
        Some(MemberState::Healthy) => {
            let first = !t.healthy_once;
            t.healthy_once = true;
            t.unhealthy_since = None;
            if first {
                Look::Ready
            } else {
                Look::Same
            }
        }
        Some(MemberState::Starting | MemberState::Unhealthy) => {
            let fallback = if t.healthy_once { now } else { t.started_at };
            let since = *t.unhealthy_since.get_or_insert(fallback);
            if now.saturating_duration_since(since) <= start_timeout {
                Look::Same
            } else if t.healthy_once {
                Look::Failed(format!(
                    "unhealthy for longer than start_timeout {start_timeout:?}"
                ))
            } else {
                Look::Failed(format!(
                    "not healthy within start_timeout {start_timeout:?}"
                ))
            }
        }
        _ => Look::Same,
    }
}

/// The member a scale-down hurts least: fewest recent sticky sessions, then
/// fewest requests in flight, newest on ties.
fn victim(book: &Book, seen: &Observed) -> Option<(String, SocketAddr)> {
    let none = Seen::default();
    book.tracked
        .iter()
        .filter(|(_, t)| !t.stopping)
        .min_by_key(|(id, t)| {
            let s = seen.seen.get(*id).unwrap_or(&none);
            (s.sticky, s.inflight, std::cmp::Reverse(t.started_at))
        })
        .map(|(id, t)| (id.clone(), t.address))
}

/// Whether a draining member may be stopped: nothing in flight and its sticky
/// sessions quiet, or its drain deadline reached.
pub fn drain_over(inflight: u64, sticky_quiet: bool, now: Instant, deadline: Instant) -> bool {
    (inflight == 0 && sticky_quiet) || now >= deadline
}
