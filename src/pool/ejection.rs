//! Passive outlier detection: the ejection rules as pure functions.
//!
//! A member whose connection failed `consecutive_failures` times in a row
//! (connect errors, resets, timeouts, 502/503/504) is ejected for `eject_for`;
//! an ejection that follows soon after the previous one lasts twice as long
//! (see [`next_streak`]), up to [`cap`]. At most half of a pool's members
//! may be ejected at once ([`within_limit`]). The per-pool health task returns
//! ejected members to rotation when their time is up.
//!
//! Pool bookkeeping, below both users: the proxy reports failures
//! ([`on_failure`]), [`super::Pool::apply`] plans and ends ejections.

use std::time::Duration;

use tokio::time::Instant;

use std::net::SocketAddr;

use crate::pool::{Change, Member, MemberState, MemberStats, Pool, PoolCommand};

/// Longest ejection, whatever the streak: 5 minutes, but never less than
/// `eject_for` itself; and never more than 10 × `eject_for`.
pub const MAX_EJECTION: Duration = Duration::from_secs(300);

/// Doublings are capped at 10 × `eject_for`.
pub const MAX_FACTOR: u32 = 10;

/// A member's ejection history (kept in the member, swapped with its state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ejection {
    /// When the current ejection ends (`Some` only while `Ejected`).
    pub until: Option<Instant>,
    /// Ejections in a row (1 = first); 0 = never ejected.
    pub streak: u32,
    /// How long the latest ejection lasted.
    pub last_for: Duration,
    /// When the member last came back from an ejection.
    pub returned_at: Option<Instant>,
}

/// The longest ejection for this `eject_for`: `min(10 × base, 5 min)`, at least `base`.
pub fn cap(base: Duration) -> Duration {
    base.saturating_mul(MAX_FACTOR).min(MAX_EJECTION).max(base)
}

/// How long ejection number `streak` (1-based) lasts: `base × 2^(streak-1)`, capped.
pub fn duration_for(base: Duration, streak: u32) -> Duration {
    let doublings = streak.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << doublings).min(cap(base))
}

/// The streak of a new ejection at `now`: one more than before when the
/// member came back less than its last ejection's length ago (it failed again
/// quickly), else 1 (it had served a while; start over at `eject_for`).
pub fn next_streak(prev: &Ejection, now: Instant) -> u32 {
    match prev.returned_at {
        Some(back) if now.saturating_duration_since(back) < prev.last_for => {
            prev.streak.saturating_add(1)
        }
        _ => 1,
    }
}

/// Whether one more member may be ejected when `ejected` of `total` are out:
/// never more than half (a single-member pool never ejects).
pub fn within_limit(ejected: usize, total: usize) -> bool {
    (ejected + 1) * 2 <= total
}

/// The ejection of `members[idx]` at `now` with base `eject_for`, or why not.
pub fn plan(
    members: &[Member],
    idx: usize,
    base: Duration,
    now: Instant,
) -> Result<Ejection, String> {
    let m = &members[idx];
    if m.state != MemberState::Healthy {
        return Err(format!("member is {}, not healthy", m.state.as_str()));
    }
    let ejected = members
        .iter()
        .filter(|m| m.state == MemberState::Ejected)
        .count();
    if !within_limit(ejected, members.len()) {
        return Err(format!(
            "{ejected} of {} members are ejected already; at most half may be",
            members.len()
        ));
    }
    let streak = next_streak(&m.ejection, now);
    let d = duration_for(base, streak);
    Ok(Ejection {
        until: Some(now + d),
        streak,
        last_for: d,
        returned_at: m.ejection.returned_at,
    })
}

/// The history after the member came back at `now`.
pub fn returned(e: Ejection, now: Instant) -> Ejection {
    Ejection {
        until: None,
        returned_at: Some(now),
        ..e
    }
}

/// Called on the request path after a failure of the member at `address`
/// (`consecutive` failures in a row, this one included): ejects it when the
/// pool's `[passive]` threshold is reached. No I/O and no waiting: one short
/// snapshot swap under the pool's writer lock.
pub fn on_failure(
    pool: &Pool,
    address: SocketAddr,
    stats: &MemberStats,
    consecutive: u32,
    why: &str,
) {
    let snap = pool.snapshot();
    let Some(p) = snap.config.passive.as_ref() else {
        return;
    };
    // Only the failure that crosses the threshold, or a later one while the
    // member is still healthy (an earlier ejection was refused by the limit).
    let healthy_now = snap
        .position(address)
        .is_some_and(|i| snap.members[i].state == MemberState::Healthy);
    if consecutive < p.consecutive_failures || !healthy_now {
        return;
    }
    let reason = format!("{consecutive} consecutive failures: {why}");
    let cmd = PoolCommand::Eject {
        address,
        eject_for: p.eject_for,
        reason: reason.clone(),
    };
    drop(snap);
    match pool.apply(cmd) {
        Ok(change) => {
            stats
                .ejections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Change::Ejected {
                eject_for, streak, ..
            } = change
            {
                change.record(
                    &pool.name,
                    crate::events::EventKind::Ejected,
                    format!("{reason}; ejected for {eject_for:?} (ejection {streak} in a row)"),
                );
            }
        }
        Err(e) => {
            tracing::debug!(pool = %pool.name, backend = %address, error = %e, "not ejected")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn member(state: MemberState) -> Member {
        Member::new(
            "127.0.0.1:1".parse().unwrap(),
            1,
            false,
            state,
            String::new(),
            Arc::new(Default::default()),
            false,
        )
    }

    #[test]
    fn durations_double_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(duration_for(s(30), 1), s(30));
        assert_eq!(duration_for(s(30), 2), s(60));
        assert_eq!(duration_for(s(30), 4), s(240));
        assert_eq!(duration_for(s(30), 5), s(300));
        assert_eq!(duration_for(s(30), 50), s(300));
        assert_eq!(duration_for(s(1), 9), s(10), "10x the base");
        assert_eq!(duration_for(s(600), 3), s(600), "never below the base");
    }

    #[test]
    fn a_quick_relapse_doubles_and_a_long_good_spell_starts_over() {
        let t0 = Instant::now();
        let prev = Ejection {
            until: None,
            streak: 2,
            last_for: Duration::from_secs(60),
            returned_at: Some(t0),
        };
        assert_eq!(next_streak(&prev, t0 + Duration::from_secs(5)), 3);
        assert_eq!(next_streak(&prev, t0 + Duration::from_secs(61)), 1);
        assert_eq!(next_streak(&Ejection::default(), t0), 1);
    }

    #[test]
    fn plan_refuses_beyond_half_and_non_healthy_members() {
        let now = Instant::now();
        let base = Duration::from_secs(1);
        let mut ms: Vec<Member> = (0..4).map(|_| member(MemberState::Healthy)).collect();
        assert!(plan(&ms, 0, base, now).is_ok());
        ms[0].state = MemberState::Ejected;
        assert!(plan(&ms, 1, base, now).is_ok());
        ms[1].state = MemberState::Ejected;
        let err = plan(&ms, 2, base, now).unwrap_err();
        assert!(err.contains("2 of 4"), "{err}");
        assert!(plan(&ms, 0, base, now).is_err(), "already ejected");
        assert!(
            plan(&[member(MemberState::Healthy)], 0, base, now).is_err(),
            "single member"
        );
    }

    proptest! {
        #[test]
        fn ejecting_in_any_order_never_takes_out_more_than_half(
            total in 1usize..20,
            order in proptest::collection::vec(0usize..20, 0..60),
        ) {
            let now = Instant::now();
            let mut ms: Vec<Member> = (0..total).map(|_| member(MemberState::Healthy)).collect();
            for i in order.into_iter().filter(|i| *i < total) {
                if let Ok(e) = plan(&ms, i, Duration::from_secs(1), now) {
                    ms[i].state = MemberState::Ejected;
                    ms[i].ejection = e;
                }
            }
            let out = ms.iter().filter(|m| m.state == MemberState::Ejected).count();
            prop_assert!(out * 2 <= total);
            // Whatever happened before, trying every member once more ends at exactly half.
            for i in 0..total {
                if plan(&ms, i, Duration::from_secs(1), now).is_ok() {
                    ms[i].state = MemberState::Ejected;
                }
            }
            let out = ms.iter().filter(|m| m.state == MemberState::Ejected).count();
            prop_assert_eq!(out, total / 2);
        }

        #[test]
        fn duration_is_monotone_and_bounded(base_ms in 1u64..1_000_000, streak in 1u32..100) {
            let base = Duration::from_millis(base_ms);
            let d = duration_for(base, streak);
            prop_assert!(d >= base);
            prop_assert!(d <= cap(base));
            prop_assert!(duration_for(base, streak + 1) >= d);
            prop_assert!(cap(base) <= base.max(MAX_EJECTION));
        }
    }
}
