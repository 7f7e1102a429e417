//! [`Sink`]: applies a discovered member set to its pool.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::MemberSet;
use crate::config::PoolConfig;
use crate::pool::{MemberState, MemberStats, Pool, PoolCommand};
use crate::rate_limit::RateLimit;

/// At most one `discovery_error` event per pool in this interval: 60 s.
pub const ERROR_EVENT_INTERVAL: Duration = Duration::from_secs(60);
/// How often a draining member's in-flight count is looked at: 50 ms.
const DRAIN_POLL: Duration = Duration::from_millis(50);

/// Where a [`super::Discovery`] sends what it found for one pool.
pub struct Sink {
    pool: Weak<Pool>,
    name: String,
    kind: &'static str,
    errors: RateLimit,
    answered: tokio::sync::watch::Sender<bool>,
}

impl Sink {
    pub(super) fn new(
        pool: &Arc<Pool>,
        kind: &'static str,
        answered: tokio::sync::watch::Sender<bool>,
    ) -> Sink {
        Sink {
            pool: Arc::downgrade(pool),
            name: pool.name.clone(),
            kind,
            errors: RateLimit::new(ERROR_EVENT_INTERVAL),
            answered,
        }
    }

    /// The pool's name.
    pub fn pool_name(&self) -> &str {
        &self.name
    }

    /// The pool's config in force (read it at each round: a reload may change
    /// it), or `None` once the pool is gone and the watch should end.
    pub fn config(&self) -> Option<Arc<PoolConfig>> {
        self.pool.upgrade().map(|p| p.snapshot().config.clone())
    }

    /// Makes the pool's discovered members equal to `found`: new addresses
    /// join (`starting` when the pool has a health check, else `healthy`), a
    /// draining one that is found again returns, and members not in `found`
    /// drain, with `gone` as the reason. Returns `false` when the pool is gone.
    pub fn set(&self, found: &MemberSet, gone: &str) -> bool {
        let Some(pool) = self.pool.upgrade() else {
            return false;
        };
        let snap = pool.snapshot_arc();
        let initial = if snap.config.health.is_some() {
            MemberState::Starting
        } else {
            MemberState::Healthy
        };
        // A vanished member drains for the pool's `drain_timeout` (30 s when
        // the pool has no `[instances]`: backends given by host name).
        let drain_for = snap.config.drain_timeout();
        for m in snap.members.iter().filter(|m| m.managed) {
            if found.contains_key(&m.address) || m.state == MemberState::Draining {
                continue;
            }
            let drain = PoolCommand::Transition {
                address: m.address,
                from: vec![m.state],
                to: MemberState::Draining,
                reason: gone.to_string(),
            };
            if let Ok(change) = pool.apply(drain) {
                change.record(
                    &self.name,
                    crate::events::EventKind::Draining,
                    format!("{}: {gone}; no new requests", self.kind),
                );
                tokio::spawn(drain_then_remove(
                    self.pool.clone(),
                    m.address,
                    m.stats.clone(),
                    drain_for,
                ));
            }
        }
        for (addr, f) in found {
            let cmd = match snap.position(*addr).map(|i| &snap.members[i]) {
                None => PoolCommand::Add {
                    address: *addr,
                    weight: f.weight,
                    managed: true,
                    state: initial,
                },
                Some(m) if m.managed && m.state == MemberState::Draining => {
                    PoolCommand::Transition {
                        address: *addr,
                        from: vec![MemberState::Draining],
                        to: initial,
                        reason: f.origin.clone(),
                    }
                }
                Some(m) if m.managed && m.weight != f.weight => {
                    let weight = PoolCommand::Add {
                        address: *addr,
                        weight: f.weight,
                        managed: true,
                        state: m.state,
                    };
                    let _ = pool.apply(weight);
                    continue;
                }
                Some(_) => continue,
            };
            if let Ok(change) = pool.apply(cmd) {
                change.record(
                    &self.name,
                    crate::events::EventKind::Added,
                    format!("{}: {}", self.kind, f.origin),
                );
            }
        }
        self.answered.send_replace(true);
        true
    }

    /// A round that found nothing usable: the members stay as they are; an
    /// event (`discovery_error`) at most every [`ERROR_EVENT_INTERVAL`].
    pub fn failed(&self, why: &str) {
        if let Some(held_back) = self.errors.allow() {
            let more = match held_back {
                0 => String::new(),
                n => format!(" ({n} more failures since the last report)"),
            };
            crate::events::record(
                &self.name,
                crate::events::EventKind::DiscoveryError,
                None,
                format!("{}: {why}; the members stay as they are{more}", self.kind),
            );
        }
        self.answered.send_replace(true);
    }
}

/// Waits until the draining member has no request in flight (or `limit`
/// passed), then removes it, unless it was found again meanwhile.
async fn drain_then_remove(
    pool: Weak<Pool>,
    address: SocketAddr,
    stats: Arc<MemberStats>,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while stats.load.inflight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let Some(p) = pool.upgrade() else { return };
    let draining = {
        let snap = p.snapshot();
        snap.position(address)
            .is_some_and(|i| snap.members[i].state == MemberState::Draining)
    };
    if !draining {
        return;
    }
    if let Ok(change) = p.apply(PoolCommand::Remove { address }) {
        let why = match stats.load.inflight() {
            0 => "drained".to_string(),
            n => format!("drain_timeout reached with {n} requests in flight"),
        };
        change.record(&p.name, crate::events::EventKind::Removed, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::Found;

    fn pool(name: &str) -> Arc<Pool> {
        let src = format!(
            "[pools.{name}.instances]\nprovider = \"dns\"\nname = \"x.test\"\nport = 80\ndrain_timeout = \"10s\"\n"
        );
        let cfg = crate::config::load_str(&src, None).unwrap();
        Arc::new(Pool::new(Arc::new(cfg.pools[name].clone())))
    }

    fn sink(p: &Arc<Pool>) -> Sink {
        Sink::new(p, "dns", tokio::sync::watch::channel(false).0)
    }

    fn found(addrs: &[&str]) -> MemberSet {
        addrs
            .iter()
            .map(|a| {
                let f = Found {
                    weight: 1,
                    origin: format!("x.test answers {a}"),
                };
                (a.parse().unwrap(), f)
            })
            .collect()
    }

    fn members(p: &Pool) -> Vec<(String, &'static str)> {
        p.snapshot()
            .members
            .iter()
            .map(|m| (m.address.to_string(), m.state.as_str()))
            .collect()
    }

    fn kinds(pool: &str) -> Vec<String> {
        crate::events::log()
            .since(0, usize::MAX)
            .into_iter()
            .filter(|e| e.pool == pool)
            .map(|e| format!("{} {}", e.kind, e.backend.unwrap_or_default()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_vanished_member_drains_until_its_requests_end_then_leaves() {
        let p = pool("sink_drain");
        let s = sink(&p);
        assert!(s.set(&found(&["10.0.0.1:80", "10.0.0.2:80"]), "gone"));
        assert_eq!(
            members(&p),
            [
                ("10.0.0.1:80".into(), "healthy"),
                ("10.0.0.2:80".into(), "healthy")
            ]
        );
        let busy = p.snapshot().members[1].stats.try_begin(0).unwrap();
        s.set(&found(&["10.0.0.1:80"]), "no longer in the DNS answer");
        assert_eq!(members(&p)[1], ("10.0.0.2:80".into(), "draining"));
        // A second round with the same answer changes nothing.
        s.set(&found(&["10.0.0.1:80"]), "no longer in the DNS answer");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            members(&p).len(),
            2,
            "still draining: a request is in flight"
        );
        drop(busy);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(members(&p), [("10.0.0.1:80".into(), "healthy")]);
        assert_eq!(
            kinds("sink_drain"),
            [
                "added 10.0.0.1:80",
                "added 10.0.0.2:80",
                "draining 10.0.0.2:80",
                "removed 10.0.0.2:80"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_draining_member_found_again_returns_and_the_drain_timeout_bounds_the_wait() {
        let p = pool("sink_return");
        let s = sink(&p);
        s.set(&found(&["10.0.0.1:80"]), "gone");
        let _stuck = p.snapshot().members[0].stats.try_begin(0).unwrap();
        s.set(&found(&[]), "gone");
        assert_eq!(members(&p), [("10.0.0.1:80".into(), "draining")]);
        s.set(&found(&["10.0.0.1:80"]), "gone");
        assert_eq!(members(&p), [("10.0.0.1:80".into(), "healthy")]);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(members(&p).len(), 1, "the returned member is not removed");
        s.set(&found(&[]), "gone");
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(members(&p).len(), 1, "drain_timeout (10s) not reached yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(members(&p).is_empty(), "removed at drain_timeout");
    }

    #[tokio::test]
    async fn failures_keep_the_members_and_report_once_per_interval() {
        let p = pool("sink_fail");
        let s = sink(&p);
        s.set(&found(&["10.0.0.1:80"]), "gone");
        s.failed("timed out");
        s.failed("timed out");
        assert_eq!(members(&p), [("10.0.0.1:80".into(), "healthy")]);
        assert_eq!(
            kinds("sink_fail"),
            ["added 10.0.0.1:80", "discovery_error "]
        );
        drop(p);
        assert!(!s.set(&found(&[]), "gone"), "the pool is gone");
        assert!(s.config().is_none());
    }
}
