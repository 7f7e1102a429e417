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
#[derive(Debug)]
pub struct HashSelector {
    /// Per-member seeds (stable identity, e.g. a hash of the address).
    seeds: Vec<u64>,
    fallback: AtomicUsize,
}

impl HashSelector {
    /// `seeds[i]` identifies member `i` (use [`hash_key_bytes`] of its address).
    pub fn new(seeds: Vec<u64>) -> Self {
        HashSelector {
            seeds,
            fallback: AtomicUsize::new(0),
        }
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
            return RoundRobin::rotate(&self.fallback, members.len(), eligible);
        };
        let mut best: Option<(usize, f64)> = None;
        for i in (0..members.len()).filter(|&i| eligible(i)) {
            let seed = self.seeds.get(i).copied().unwrap_or(i as u64);
            let h = mix(key ^ mix(seed));
            // u in (0, 1): 53 high bits, never 0.
            let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            let score = -f64::from(members.weight(i).max(1)) / u.ln();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}
