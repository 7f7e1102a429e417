//! `hash`: the same key goes to the same member (weighted rendezvous hashing).

use std::sync::atomic::AtomicUsize;

use super::round_robin::RoundRobin;
use super::{MemberSet, SelectContext, Selector};

/// 64-bit FNV-1a: fast, stable across Rust versions and platforms.
pub fn hash_key_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 finaliser: spreads key × member into a uniform 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Highest-random-weight hashing over eligible members: each (key, member)
/// pair scores `-weight / ln(u)` with `u` uniform from the pair's hash; the
/// highest score wins. Removing a member moves only the keys it held; adding
/// one takes about `1/n` of the keys. Members are identified by their index
/// seed (see [`HashSelector::new`]), so keys stay put across snapshot rebuilds
/// that keep the same member order. Without a key it falls back to round robin.
///
/// Bounded loads (Google's consistent hashing with bounded loads, Envoy's and
/// HAProxy's `hash-balance-factor`): with a factor `c`, a member whose
/// in-flight count has reached `ceil(c × (T + 1) × w / W)` (`T` the in-flight
/// total of the eligible members, `w / W` its share of their effective
/// weight) is passed over for the next member in the key's preference order;
/// so no member holds more than `c ×` its share of the load, plus one, and with
/// equal loads the mapping is the unbounded one. A member in its slow-start
/// window is bounded this way (with `c = 1` when no factor is set) by its
/// reduced weight.
#[derive(Debug)]
pub struct HashSelector {
    /// Per-member seeds (stable identity, e.g. a hash of the address).
    seeds: Vec<u64>,
    fallback: AtomicUsize,
    /// `bounded_load`; `None` = unbounded.
    factor: Option<f64>,
}

/// The in-flight capacity of a member with `weight` out of `total_weight`
/// when `inflight` requests run on the eligible members: `ceil(c × (inflight
/// + 1) × weight / total_weight)` (>= 1).
pub fn bounded_capacity(c: f64, inflight: u64, weight: u64, total_weight: u64) -> u64 {
    let share = weight as f64 / total_weight.max(1) as f64;
    let cap = (c * (inflight as f64 + 1.0) * share).ceil();
    if cap.is_finite() && cap >= 1.0 {
        cap as u64
    } else {
        1
    }
}

impl HashSelector {
    /// `seeds[i]` identifies member `i` (use [`hash_key_bytes`] of its address).
    pub fn new(seeds: Vec<u64>) -> Self {
        HashSelector {
            seeds,
            fallback: AtomicUsize::new(0),
            factor: None,
        }
    }

    /// With `bounded_load = c` (> 1), or unbounded (`None`).
    pub fn bounded(mut self, factor: Option<f64>) -> Self {
        self.factor = factor;
        self
    }

    /// The key's score for member `i` (higher = preferred).
    fn score(&self, members: &dyn MemberSet, key: u64, i: usize) -> f64 {
        let seed = self.seeds.get(i).copied().unwrap_or(i as u64);
        let h = mix(key ^ mix(seed));
        // u in (0, 1): 53 high bits, never 0.
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -f64::from(members.weight(i).max(1)) / u.ln()
    }
}

impl Selector for HashSelector {
    fn select(
        &self,
        members: &dyn MemberSet,
        ctx: &SelectContext,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let Some(key) = ctx.hash else {
            return RoundRobin::rotate_ramped(&self.fallback, members, ctx, eligible);
        };
        if self.factor.is_none() && ctx.now.is_none() {
            let mut best: Option<(usize, f64)> = None;
            for i in (0..members.len()).filter(|&i| eligible(i)) {
                let score = self.score(members, key, i);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((i, score));
                }
            }
            return best.map(|(i, _)| i);
        }
        // Bounded: the preferred member below its capacity. One pass for the
        // totals, one for the choice; the best over all is kept in case loads
        // moved between the passes (other threads).
        let (mut inflight, mut total_weight) = (0u64, 0u64);
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            inflight += members.load(i).inflight();
            total_weight += members.effective_weight(i, ctx.now);
        }
        let mut best: Option<(usize, f64)> = None;
        let mut best_any: Option<(usize, f64)> = None;
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            let score = self.score(members, key, i);
            if best_any.is_none_or(|(_, s)| score > s) {
                best_any = Some((i, score));
            }
            if best.is_some_and(|(_, s)| score <= s) {
                continue;
            }
            let eff = members.effective_weight(i, ctx.now);
            let ramping = eff < super::slow_start::scaled(members.weight(i), 1.0);
            let c = match self.factor {
                Some(c) => c,
                None if ramping => 1.0,
                None => f64::INFINITY,
            };
            let under = c.is_infinite()
                || members.load(i).inflight() < bounded_capacity(c, inflight, eff, total_weight);
            if under {
                best = Some((i, score));
            }
        }
        best.or(best_any).map(|(i, _)| i)
    }
}
