//! `p2c_ewma`: power of two choices on a latency-and-load cost.

use std::time::Instant;

use rand::Rng;

use super::slow_start::WEIGHT_SCALE;

use super::{MemberSet, SelectContext, Selector};

/// Latency assumed for a member with no sample yet, in ms. Default 1.
pub const DEFAULT_EWMA_MS: f64 = 1.0;

/// Picks two distinct eligible members at random and takes the one with the
/// lower cost = `ewma_ms × (inflight + 1) / weight` (the effective weight:
/// lower during slow start).
#[derive(Debug, Default)]
pub struct P2cEwma;

fn cost(members: &dyn MemberSet, i: usize, now: Option<Instant>) -> f64 {
    let l = members.load(i);
    let ewma = match l.ewma_ms() {
        e if e > 0.0 => e,
        _ => DEFAULT_EWMA_MS,
    };
    let weight = members.effective_weight(i, now) as f64 / WEIGHT_SCALE as f64;
    ewma * (l.inflight() as f64 + 1.0) / weight
}

/// Random probes tried before falling back to a full scan of eligible members.
const PROBES: usize = 8;

impl Selector for P2cEwma {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let n = members.len();
        let mut rng = rand::rng();
        // Fast path (O(1) when most members are eligible): two distinct random eligible members.
        if n >= 2 {
            let mut first = None;
            for _ in 0..PROBES {
                let i = rng.random_range(0..n);
                if !eligible(i) || first == Some(i) {
                    continue;
                }
                match first {
                    None => first = Some(i),
                    Some(a) => {
                        return Some(if cost(members, i, ctx.now) < cost(members, a, ctx.now) {
                            i
                        } else {
                            a
                        })
                    }
                }
            }
        }
        // Few eligible members: pick among them exactly.
        let count = (0..n).filter(|&i| eligible(i)).count();
        let nth = |k: usize| (0..n).filter(|&i| eligible(i)).nth(k);
        match count {
            0 => None,
            1 => nth(0),
            _ => {
                let a = rng.random_range(0..count);
                let mut b = rng.random_range(0..count - 1);
                if b >= a {
                    b += 1;
                }
                let (a, b) = (nth(a)?, nth(b)?);
                Some(if cost(members, b, ctx.now) < cost(members, a, ctx.now) {
                    b
                } else {
                    a
                })
            }
        }
    }
}
