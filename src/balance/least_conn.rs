//! `least_conn`: fewest in-flight requests relative to weight; ties rotate.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{MemberSet, SelectContext, Selector};

/// Picks the member with the lowest `inflight / weight` (compared as
/// `inflight_a * weight_b < inflight_b * weight_a`, no floats). Among equally
/// loaded members a rotating counter chooses, so they share evenly.
#[derive(Debug, Default)]
pub struct LeastConn {
    next: AtomicUsize,
}

impl Selector for LeastConn {
    fn select(
        &self,
        members: &dyn MemberSet,
        _ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let ratio = |i: usize| {
            (
                u128::from(members.load(i).inflight()),
                u128::from(members.weight(i).max(1)),
            )
        };
        // Pass 1: the lowest ratio and how many members share it.
        let mut best: Option<(u128, u128)> = None;
        let mut ties = 0usize;
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            let (l, w) = ratio(i);
            match best {
                Some((bl, bw)) if l * bw > bl * w => {}
                Some((bl, bw)) if l * bw == bl * w => ties += 1,
                _ => {
                    best = Some((l, w));
                    ties = 1;
                }
            }
        }
        let (bl, bw) = best?;
        // Pass 2: the n-th of the tied members, n rotating.
        let n = self.next.fetch_add(1, Ordering::Relaxed) % ties;
        (0..members.len())
            .filter(|&i| eligible(i))
            .filter(|&i| {
                let (l, w) = ratio(i);
                l * bw == bl * w
            })
            .nth(n)
            // Loads may change between the passes (other threads): any eligible member then.
            .or_else(|| (0..members.len()).find(|&i| eligible(i)))
    }
}
