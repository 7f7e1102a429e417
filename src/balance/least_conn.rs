//! `least_conn`: fewest in-flight requests relative to weight; ties rotate.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::{MemberSet, SelectContext, Selector};

/// Picks the member with the lowest `inflight / weight` (compared as
/// `inflight_a * weight_b < inflight_b * weight_a`, no floats), on effective
/// weights (lower during slow start). Among equally loaded members a rotating
/// counter chooses, so they share evenly; while a slow-start window is active
/// the tie is broken at random by effective weight instead (idle members tie
/// at 0, and a member in its window takes its reduced share of them).
#[derive(Debug, Default)]
pub struct LeastConn {
    next: AtomicUsize,
}

impl Selector for LeastConn {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let ratio = |i: usize| {
            (
                u128::from(members.load(i).inflight()),
                u128::from(members.effective_weight(i, ctx.now)),
            )
        };
        // Pass 1: the lowest ratio, how many members share it and their total weight.
        let mut best: Option<(u128, u128)> = None;
        let mut ties = 0usize;
        let mut tied_weight = 0u128;
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            let (l, w) = ratio(i);
            match best {
                Some((bl, bw)) if l * bw > bl * w => {}
                Some((bl, bw)) if l * bw == bl * w => {
                    ties += 1;
                    tied_weight += w;
                }
                _ => {
                    best = Some((l, w));
                    ties = 1;
                    tied_weight = w;
                }
            }
        }
        let (bl, bw) = best?;
        let tied = |i: &usize| {
            let (l, w) = ratio(*i);
            l * bw == bl * w
        };
        let any = || (0..members.len()).find(|&i| eligible(i));
        // Pass 2: the n-th of the tied members, n rotating (or weighted random).
        if ctx.now.is_some() && ties > 1 {
            let mut x = rand::rng().random_range(0..tied_weight.max(1));
            // Loads may change between the passes (other threads): any eligible member then.
            return (0..members.len())
                .filter(|&i| eligible(i))
                .filter(tied)
                .find(|&i| {
                    let w = ratio(i).1;
                    if x < w {
                        return true;
                    }
                    x -= w;
                    false
                })
                .or_else(any);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % ties;
        (0..members.len())
            .filter(|&i| eligible(i))
            .filter(tied)
            .nth(n)
            // Loads may change between the passes (other threads): any eligible member then.
            .or_else(any)
    }
}
