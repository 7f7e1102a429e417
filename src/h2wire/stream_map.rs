//! A map keyed by stream id, with a hash made for them: ids are odd and
//! increasing, so the ordinal (`id >> 1`) times a 64-bit odd constant
//! spreads consecutive ids over the buckets, for the price of a multiply.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Streams of one connection by id.
pub type StreamMap<V> = HashMap<u32, V, BuildHasherDefault<IdHash>>;

/// The hasher of [`StreamMap`].
#[derive(Debug, Default)]
pub struct IdHash(u64);

const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(SPREAD);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n >> 1).wrapping_mul(SPREAD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_land_in_different_buckets() {
        let mut m: StreamMap<u32> = StreamMap::default();
        for id in (1..2000).step_by(2) {
            m.insert(id, id);
        }
        assert!((1..2000).step_by(2).all(|id| m[&id] == id));
        let low_bits: std::collections::HashSet<u64> = (1u32..129)
            .step_by(2)
            .map(|id| {
                let mut h = IdHash::default();
                h.write_u32(id);
                h.finish() >> 58
            })
            .collect();
        assert!(
            low_bits.len() > 32,
            "{} distinct top-6-bit values",
            low_bits.len()
        );
    }
}
