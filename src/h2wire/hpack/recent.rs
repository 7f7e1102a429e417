//! A small cache of Huffman strings recently decoded, keyed by their coded
//! bytes: a backend such as nginx sends the same response fields (`server`,
//! `content-type`, `etag`, ...) as Huffman literals in every answer, and
//! decoding them again cost about a tenth of a proxied request's
//! instructions (bench/RESULTS.md, 2026-12-01).
//!
//! Fully associative: [`SLOTS`] entries, looked up by a 64-bit tag of the
//! coded bytes (length, first and last 8 bytes) and then compared whole, so
//! a hit gives exactly what decoding gives; a miss replaces the entries in
//! turn (round robin). A direct-mapped first cut lost a third of its hits to
//! collisions among a response's 8 strings. Bounded memory: only strings of
//! at most [`MAX_CODED`] coded bytes are kept, so a cache holds at most
//! `SLOTS * (MAX_CODED + MAX_CODED * 8 / 5)` bytes (~2.6 KiB), allocated as
//! strings arrive.

use super::huffman;
use super::HpackError;

/// Entries of the cache: 16 (a response from nginx has 8 Huffman strings).
pub const SLOTS: usize = 16;
/// The longest coded string kept: 64 bytes (dates, types, lengths, tags and
/// server names fit; longer values are decoded every time).
pub const MAX_CODED: usize = 64;

#[derive(Debug, Default, Clone)]
struct Slot {
    tag: u64,
    coded: Vec<u8>,
    decoded: Vec<u8>,
}

/// The cache; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct Recent {
    slots: Vec<Slot>,
    /// The entry the next miss replaces.
    next: usize,
}

impl Recent {
    /// Decodes the Huffman string `coded` onto the end of `dst`, from the
    /// cache when the same coded bytes are in it.
    pub fn decode(&mut self, coded: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
        if coded.len() > MAX_CODED || coded.is_empty() {
            return huffman::decode(coded, dst);
        }
        let tag = tag_of(coded);
        if let Some(hit) = self.slots.iter().find(|s| s.tag == tag && s.coded == coded) {
            dst.extend_from_slice(&hit.decoded);
            return Ok(());
        }
        let start = dst.len();
        huffman::decode(coded, dst)?;
        if self.slots.len() < SLOTS {
            self.slots.push(Slot::default());
        }
        let at = self.next % self.slots.len().max(1);
        self.next = (at + 1) % SLOTS;
        if let Some(slot) = self.slots.get_mut(at) {
            slot.tag = tag;
            slot.coded.clear();
            slot.coded.extend_from_slice(coded);
            slot.decoded.clear();
            slot.decoded
                .extend_from_slice(dst.get(start..).unwrap_or_default());
        }
        Ok(())
    }
}

/// The tag of a coded string: its length and its first and last 8 bytes
/// (dates of one backend differ in their last bytes), mixed.
fn tag_of(coded: &[u8]) -> u64 {
    let n = coded.len();
    let word = |b: &[u8]| match <[u8; 8]>::try_from(b) {
        Ok(w) => u64::from_le_bytes(w),
        Err(_) => b.iter().fold(0u64, |w, &x| (w << 8) | u64::from(x)),
    };
    let head = word(coded.get(..n.min(8)).unwrap_or_default());
    let tail = word(coded.get(n.saturating_sub(8)..).unwrap_or_default());
    head ^ tail.rotate_left(29) ^ (n as u64).rotate_right(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coded(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        huffman::encode(s, &mut out);
        out
    }

    #[test]
    fn a_hit_gives_what_decoding_gives_and_misses_replace_the_slot() {
        let mut r = Recent::default();
        for _ in 0..3 {
            for v in [
                &b"nginx/1.22.1"[..],
                b"text/html",
                b"\"674a1c2b-64\"",
                b"100",
            ] {
                let mut dst = b"prefix".to_vec();
                r.decode(&coded(v), &mut dst).unwrap();
                assert_eq!(&dst[6..], v);
                assert_eq!(&dst[..6], b"prefix");
            }
        }
    }

    #[test]
    fn a_response_worth_of_strings_all_hit_after_the_first_round() {
        let fields: Vec<Vec<u8>> = [
            &b"nginx/1.22.1"[..],
            b"Tue, 01 Dec 2026 07:05:12 GMT",
            b"Tue, 01 Dec 2026 05:50:01 GMT",
            b"application/octet-stream",
            b"100",
            b"\"674a1c2b-64\"",
            b"bytes",
            b"text/html",
            b"2 drover",
        ]
        .iter()
        .map(|v| coded(v))
        .collect();
        let mut r = Recent::default();
        for f in &fields {
            r.decode(f, &mut Vec::new()).unwrap();
        }
        let filled = r.next;
        for _ in 0..5 {
            for f in &fields {
                r.decode(f, &mut Vec::new()).unwrap();
            }
        }
        assert_eq!(r.next, filled, "a miss replaced an entry");
    }

    #[test]
    fn bad_huffman_is_an_error_every_time_and_is_not_kept() {
        let mut r = Recent::default();
        // 0xff 0xff 0xff 0xff: EOS inside the string.
        for _ in 0..2 {
            let mut dst = Vec::new();
            assert_eq!(r.decode(&[0xff; 4], &mut dst), Err(HpackError::BadHuffman));
        }
        assert!(r.slots.iter().all(|s| s.coded.is_empty()));
    }

    proptest! {
        /// Whatever the sequence of strings (valid or not, colliding or
        /// not), the cache answers exactly what the decoder answers.
        #[test]
        fn same_as_decoding(strings in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80).prop_map(|v| coded(&v)),
                proptest::collection::vec(any::<u8>(), 0..80),
            ], 1..60), repeat in 1usize..4) {
            let mut r = Recent::default();
            for _ in 0..repeat {
                for s in &strings {
                    let mut want = Vec::new();
                    let want_r = huffman::decode(s, &mut want);
                    let mut got = Vec::new();
                    let got_r = r.decode(s, &mut got);
                    prop_assert_eq!(&got_r, &want_r);
                    if want_r.is_ok() {
                        prop_assert_eq!(&got, &want);
                    }
                }
            }
            prop_assert!(r.slots.iter().all(|s| s.coded.len() <= MAX_CODED));
        }
    }
}
