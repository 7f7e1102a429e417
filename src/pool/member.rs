//! One member of a pool: its address, state and live counters.

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::ejection::Ejection;
use super::WaitQueue;
use crate::balance::LoadStats;

/// A member's state as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// A managed instance that has not passed its health check yet.
    Starting,
    /// Takes requests.
    Healthy,
    /// Failed its active health checks; takes no requests.
    Unhealthy,
    /// Taken out by passive outlier detection for a while.
    Ejected,
    /// Takes no new requests; in-flight ones finish.
    Draining,
}

impl MemberState {
    /// The API spelling (`healthy`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberState::Starting => "starting",
            MemberState::Healthy => "healthy",
            MemberState::Unhealthy => "unhealthy",
            MemberState::Ejected => "ejected",
            MemberState::Draining => "draining",
        }
    }

    /// Whether new requests may be sent to a member in this state.
    pub fn routable(&self) -> bool {
        matches!(self, MemberState::Healthy)
    }
}

/// Number of exact status codes counted per member (100..=599).
const CODES: usize = 500;

/// Live counters of one member; kept across snapshot swaps and reloads for as
/// long as the member's address stays in the pool.
#[derive(Debug)]
pub struct MemberStats {
    /// In-flight requests and latency EWMA (what selection reads).
    pub load: LoadStats,
    /// Requests answered with a response head from this member.
    pub requests: AtomicU64,
    /// Connection failures, timeouts and 502/503/504 from this member.
    pub failures: AtomicU64,
    /// Consecutive connection failures (reset by a success or a return from ejection).
    pub consecutive_failures: AtomicU32,
    /// Active health checks passed (`drover_health_checks_total{result="pass"}`).
    pub checks_passed: AtomicU64,
    /// Active health checks failed (`drover_health_checks_total{result="fail"}`).
    pub checks_failed: AtomicU64,
    /// Active health checks that could not run for a local reason
    /// (`drover_health_checks_total{result="unknown"}`).
    pub checks_unknown: AtomicU64,
    /// Consecutive failed health checks (reset by a pass).
    pub check_failures: AtomicU32,
    /// Passive ejections so far (`drover_backend_ejections_total`).
    pub ejections: AtomicU64,
    /// Recent sticky-session requests (pools with `sticky`).
    pub sticky: super::StickyHits,
    /// The pool's wait queue, woken when one of this member's requests ends
    /// (see [`super::Inflight`]).
    pub(super) queue: Arc<WaitQueue>,
    /// The latest health check (written by the health task, read by the API).
    last_check: Mutex<Option<LastCheck>>,
    codes: Box<[AtomicU64]>,
}

/// What one active health check says about the member (`health/counter.rs`
/// turns a run of them into state changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The member answered as expected.
    Pass,
    /// The member refused, timed out or answered with an unexpected status.
    Fail,
    /// The check could not run for a reason on drover's side (no file
    /// descriptor, no buffer space, no ephemeral port): says nothing about the member.
    Unknown,
}

/// The result of a member's latest active health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    pub pass: bool,
    /// `status 200`, `connection refused`, `timed out after 1s`, ...
    pub detail: String,
    pub at: SystemTime,
}

impl Default for MemberStats {
    /// Stats with a queue of their own (tests); a pool's members share the pool's.
    fn default() -> Self {
        MemberStats::new(Arc::default())
    }
}

impl MemberStats {
    /// Zeroed stats of a member whose ended requests wake `queue`.
    pub fn new(queue: Arc<WaitQueue>) -> Self {
        MemberStats {
            load: LoadStats::default(),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            checks_passed: AtomicU64::new(0),
            checks_failed: AtomicU64::new(0),
            checks_unknown: AtomicU64::new(0),
            check_failures: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
            sticky: Default::default(),
            queue,
            last_check: Mutex::new(None),
            codes: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl MemberStats {
    /// Counts one response with this status code.
    pub fn count_status(&self, code: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = code
            .checked_sub(100)
            .and_then(|i| self.codes.get(i as usize))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one failure of the connection to this member; returns the
    /// consecutive failures including this one.
    pub fn count_failure(&self) -> u32 {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records one active health check. An unknown one (it could not run for a
    /// local reason) is only counted: it is not the member's latest check.
    pub fn record_check(&self, verdict: Verdict, detail: String) {
        let pass = match verdict {
            Verdict::Unknown => {
                self.checks_unknown.fetch_add(1, Ordering::Release);
                return;
            }
            Verdict::Pass => {
                self.check_failures.store(0, Ordering::Relaxed);
                self.checks_passed.fetch_add(1, Ordering::Release);
                true
            }
            Verdict::Fail => {
                self.check_failures.fetch_add(1, Ordering::Relaxed);
                self.checks_failed.fetch_add(1, Ordering::Release);
                false
            }
        };
        let rec = LastCheck {
            pass,
            detail,
            at: SystemTime::now(),
        };
        *self.last_check.lock() = Some(rec);
    }

    /// Whether an active check of this member has finished (passed, failed or unknown).
    pub fn checked(&self) -> bool {
        [
            &self.checks_passed,
            &self.checks_failed,
            &self.checks_unknown,
        ]
        .iter()
        .any(|c| c.load(Ordering::Acquire) > 0)
    }

    /// The latest health check, if any ran.
    pub fn last_check(&self) -> Option<LastCheck> {
        self.last_check.lock().clone()
    }

    /// Non-zero per-status counters as `(code, count)`.
    pub fn status_counts(&self) -> Vec<(u16, u64)> {
        self.codes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((i as u16 + 100, n))
            })
            .collect()
    }
}

/// One member in a pool snapshot (immutable; a change builds a new snapshot).
#[derive(Debug, Clone)]
pub struct Member {
    pub address: SocketAddr,
    /// >= 1.
    pub weight: u32,
    /// Started by drover (an instance) rather than listed in the config.
    pub managed: bool,
    pub state: MemberState,
    /// Why the member is in its state (last transition's reason).
    pub reason: String,
    pub stats: Arc<MemberStats>,
    /// Passive ejection: until when (while `Ejected`) and the back-off history.
    pub ejection: Ejection,
    /// When the member last became healthy (its slow-start window starts
    /// there); `None` = it takes its full weight.
    pub healthy_since: Option<Instant>,
    /// When the member started draining (sticky sessions follow it until
    /// the pool's drain timeout has passed from there).
    pub draining_since: Option<Instant>,
    /// Listed in the config when the pool was created and not healthy yet:
    /// becoming healthy the first time (drover starting) does not ramp.
    pub initial: bool,
}

impl Member {
    /// A new member in `state`. `initial`: listed when the pool was created
    /// (no slow start on its first turn to healthy); otherwise a member that
    /// starts healthy starts its slow-start window now.
    pub fn new(
        address: SocketAddr,
        weight: u32,
        managed: bool,
        state: MemberState,
        reason: String,
        stats: Arc<MemberStats>,
        initial: bool,
    ) -> Member {
        let healthy_since =
            (!initial && state == MemberState::Healthy).then(crate::balance::slow_start::now);
        Member {
            address,
            weight,
            managed,
            state,
            reason,
            stats,
            ejection: Default::default(),
            healthy_since,
            draining_since: None,
            initial: initial && state != MemberState::Healthy,
        }
    }

    /// Sets the state; entering `healthy` starts the slow-start window (unless
    /// the member is [`Member::initial`]).
    pub(super) fn enter(&mut self, state: MemberState) {
        if state == MemberState::Healthy && self.state != MemberState::Healthy {
            self.healthy_since = (!self.initial).then(crate::balance::slow_start::now);
            self.initial = false;
        }
        if state == MemberState::Draining && self.state != MemberState::Draining {
            self.draining_since = Some(crate::balance::slow_start::now());
        }
        self.state = state;
    }
}
