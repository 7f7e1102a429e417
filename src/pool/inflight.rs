//! The in-flight token: one request on one member, from
//! [`MemberStats::try_begin`] until the token is dropped.
//!
//! least_conn, `max_connections_per_backend`, drain and autoscaling all read a
//! member's in-flight count; the token makes it impossible to leave a slot
//! taken. It moves with the request (into the response body's completion, or
//! into an upgrade tunnel), and dropping it — wherever that happens, on any
//! return or cancellation — ends the request exactly once and wakes one
//! queued request (modelled on tower's `load::PendingRequests` handle). It is
//! one `Arc` wide: the member's stats carry their pool's queue.

use std::sync::Arc;

use super::MemberStats;

/// One request in flight on a member; dropping it ends the request.
#[must_use = "dropping the token ends the request at once"]
#[derive(Debug)]
pub struct Inflight(Arc<MemberStats>);

impl MemberStats {
    /// Starts a request on this member if it is below `limit` in-flight
    /// requests (0 = no limit); `None` = the member is at its limit.
    pub fn try_begin(self: &Arc<Self>, limit: u64) -> Option<Inflight> {
        self.load
            .try_begin_raw(limit)
            .then(|| Inflight(self.clone()))
    }
}

impl Inflight {
    /// The member's stats.
    pub fn stats(&self) -> &MemberStats {
        &self.0
    }

    /// Whether this token is for the member with these stats.
    pub fn is_for(&self, stats: &Arc<MemberStats>) -> bool {
        Arc::ptr_eq(&self.0, stats)
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.load.end();
        self.0.queue.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn drop_ends_the_request_once() {
        let s = Arc::new(MemberStats::default());
        let t = s.try_begin(0).unwrap();
        assert_eq!(s.load.inflight(), 1);
        drop(t);
        assert_eq!(s.load.inflight(), 0);
    }

    #[test]
    fn the_limit_holds_and_a_dropped_token_frees_its_slot() {
        let s = Arc::new(MemberStats::default());
        let a = s.try_begin(2).unwrap();
        let _b = s.try_begin(2).unwrap();
        assert!(s.try_begin(2).is_none());
        assert_eq!(s.load.inflight(), 2);
        drop(a);
        assert!(s.try_begin(2).is_some());
        assert_eq!(
            s.load.inflight(),
            1,
            "the temporary token was dropped at once"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Begin,
        /// Drops the token at this position (modulo the live ones).
        End(usize),
        /// Moves a token into a spawned-like owner (a Vec elsewhere) and drops it there.
        MoveAndDrop(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Begin),
            2 => any::<usize>().prop_map(Op::End),
            1 => any::<usize>().prop_map(Op::MoveAndDrop),
        ]
    }

    proptest! {
        /// Over any sequence of begins and ends (with a limit or none), the
        /// in-flight count equals the live tokens and never exceeds the limit;
        /// when every token is gone it is 0.
        #[test]
        fn inflight_equals_live_tokens(ops in prop::collection::vec(op(), 0..200), limit in 0u64..6) {
            let s = Arc::new(MemberStats::default());
            let mut live: Vec<Inflight> = Vec::new();
            for o in ops {
                match o {
                    Op::Begin => {
                        let t = s.try_begin(limit);
                        let full = limit != 0 && live.len() as u64 >= limit;
                        prop_assert_eq!(t.is_none(), full);
                        live.extend(t);
                    }
                    Op::End(i) if !live.is_empty() => {
                        let i = i % live.len();
                        drop(live.swap_remove(i));
                    }
                    Op::MoveAndDrop(i) if !live.is_empty() => {
                        let i = i % live.len();
                        let moved = vec![live.swap_remove(i)];
                        drop(moved);
                    }
                    _ => {}
                }
                prop_assert_eq!(s.load.inflight(), live.len() as u64);
                if limit != 0 {
                    prop_assert!(s.load.inflight() <= limit);
                }
            }
            drop(live);
            prop_assert_eq!(s.load.inflight(), 0);
        }
    }
}
