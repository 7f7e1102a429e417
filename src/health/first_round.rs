//! The first round of active checks: until every member listed in the config
//! has had its first check, a request that finds no healthy member waits for
//! it instead of being answered 503 because drover has not looked yet.
//!
//! The round is read from the members themselves (a member whose counters show
//! no finished check awaits its first one), so a pool added by a reload, or a
//! backend a reload adds, is covered the same way as the pools at start. The
//! health task checks new members at once, each bounded by the check's
//! `timeout`; a waiting request is bounded by `timeout` + [`FIRST_ROUND_SLACK`].

use std::time::Duration;

use crate::pool::{Member, MemberState, Pool};

/// Added to the check's `timeout` to bound how long a request waits for the
/// first round (the round itself is bounded by `timeout`; this only covers
/// scheduling on a busy machine). 1 s.
pub const FIRST_ROUND_SLACK: Duration = Duration::from_secs(1);

/// Whether `m` is a configured (not managed) member that has not had its first check.
fn awaits_first_check(m: &Member) -> bool {
    !m.managed && m.state != MemberState::Draining && !m.stats.checked()
}

impl Pool {
    /// Whether the pool has an active health check and a configured member
    /// still awaits its first check. Managed instances are not part of the
    /// round: requests wait for them through the cold-start hold.
    pub fn first_checks_pending(&self) -> bool {
        let snap = self.snapshot();
        snap.config.health.is_some() && snap.members.iter().any(awaits_first_check)
    }

    /// Calls `take` until it succeeds, the first round is over, or
    /// `timeout` + [`FIRST_ROUND_SLACK`] have passed; `take` is called again
    /// after every member change and every finished check. Returns its last result.
    pub async fn await_first_checks<T, E>(
        &self,
        mut take: impl FnMut() -> Result<T, E>,
    ) -> Result<T, E> {
        let bound = self
            .snapshot()
            .config
            .health
            .as_ref()
            .map_or(Duration::ZERO, |h| h.timeout)
            + FIRST_ROUND_SLACK;
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let woken = self.swapped.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let r = take();
            if r.is_ok() || !self.first_checks_pending() || tokio::time::Instant::now() >= deadline
            {
                return r;
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::config::load_str;
    use crate::health::Verdict;
    use crate::pool::PoolCommand;

    fn pool(health: &str) -> Arc<Pool> {
        let cfg = load_str(
            &format!("[pools.p]\nbackends = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n{health}"),
            None,
        )
        .unwrap();
        Arc::new(Pool::new(Arc::new(cfg.pools["p"].clone())))
    }

    fn routable(pool: &Pool) -> Result<(), ()> {
        let snap = pool.snapshot();
        match snap.members.iter().any(|m| m.state.routable()) {
            true => Ok(()),
            false => Err(()),
        }
    }

    #[test]
    fn pending_until_every_configured_member_is_checked() {
        assert!(!pool("").first_checks_pending(), "no health check");
        let p = pool("[pools.p.health]\ntimeout = \"1s\"\n");
        assert!(p.first_checks_pending());
        let snap = p.snapshot_arc();
        snap.members[0]
            .stats
            .record_check(Verdict::Fail, "refused".into());
        assert!(p.first_checks_pending());
        snap.members[1]
            .stats
            .record_check(Verdict::Unknown, "EMFILE".into());
        assert!(!p.first_checks_pending(), "an unknown check ends the wait");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_gets_the_first_member_that_passes() {
        let p = pool("[pools.p.health]\ntimeout = \"5s\"\n");
        let calls = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (p, calls) = (p.clone(), calls.clone());
            tokio::spawn(async move {
                let t0 = tokio::time::Instant::now();
                let r = p
                    .await_first_checks(|| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        routable(&p)
                    })
                    .await;
                (r, t0.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let addr = p.snapshot().members[1].address;
        p.apply(PoolCommand::Transition {
            address: addr,
            from: vec![MemberState::Unhealthy],
            to: MemberState::Healthy,
            reason: "1 passed checks".into(),
        })
        .unwrap();
        let (r, waited) = waiter.await.unwrap();
        assert_eq!(r, Ok(()));
        assert_eq!(waited, Duration::from_secs(2));
        assert!(calls.load(Ordering::Relaxed) >= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_when_the_round_ends_or_at_timeout_plus_slack() {
        // Every member failed its first check: no reason to wait longer.
        let p = pool("[pools.p.health]\ntimeout = \"5s\"\n");
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                let t0 = tokio::time::Instant::now();
                let r = p.await_first_checks(|| routable(&p)).await;
                (r, t0.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        for m in p.snapshot().members.iter() {
            m.stats.record_check(Verdict::Fail, "refused".into());
        }
        p.swapped.notify_waiters();
        assert_eq!(waiter.await.unwrap(), (Err(()), Duration::from_secs(1)));

        // Nobody checks (no health task): bounded.
        let p = pool("[pools.p.health]\ntimeout = \"5s\"\n");
        let t0 = tokio::time::Instant::now();
        assert_eq!(p.await_first_checks(|| routable(&p)).await, Err(()));
        assert_eq!(t0.elapsed(), Duration::from_secs(5) + FIRST_ROUND_SLACK);
    }
}
