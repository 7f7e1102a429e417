//! `X-Request-Id`: a client's id is kept when it looks like an id
//! ([`valid`]); otherwise drover makes one ([`generate`]).
//!
//! A generated id is 32 lowercase hex digits (128 bits): a 96-bit prefix drawn
//! from a CSPRNG (`rand`'s `ThreadRng`, ChaCha seeded from the OS) when a
//! thread makes its first id, then a 32-bit counter; when the counter wraps,
//! a new prefix is drawn. Ids of one prefix differ by the counter; ids of two
//! prefixes (threads, restarts, other drover instances) collide only if the
//! two 96-bit prefixes do: with 2^32 prefixes ever drawn, the chance of any
//! collision is about 2^-33. The id costs a counter increment and eight hex
//! digits (the prefix is formatted once), no random draw per request. The
//! value is cut from the per-thread chunk of [`super::value_arena`].

use std::cell::Cell;

use http::{HeaderMap, HeaderValue};

use super::headers::X_REQUEST_ID;

/// Longest client `X-Request-Id` kept. 128 characters.
pub const MAX_CLIENT_ID_LEN: usize = 128;

/// Hex digits of the random prefix (96 bits).
const PREFIX_HEX: usize = 24;
/// Hex digits of a generated id (128 bits).
pub const GENERATED_LEN: usize = PREFIX_HEX + 8;

/// The per-thread state: the prefix (as hex) and the next counter value.
type State = ([u8; PREFIX_HEX], u32);

thread_local! {
    static STATE: Cell<State> = Cell::new((fresh_prefix(), 0));
}

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_CLIENT_ID_LEN`]
/// characters of `[A-Za-z0-9._:-]`.
pub fn valid(id: &[u8]) -> bool {
    (1..=MAX_CLIENT_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The request's id: the client's first `X-Request-Id` if [`valid`], else a new one.
///
/// The value is marked sensitive: HTTP/2's HPACK then sends it as a never-indexed
/// literal (RFC 7541 §6.2.3) instead of inserting a value unique to this request
/// into the connection's dynamic table, where it would evict the entries that
/// repeat (`via`, `x-forwarded-*`). HTTP/1 ignores the mark.
pub fn choose(headers: &HeaderMap) -> HeaderValue {
    let mut id = match headers.get(&X_REQUEST_ID) {
        Some(v) if valid(v.as_bytes()) => v.clone(),
        _ => generate(),
    };
    id.set_sensitive(true);
    id
}

/// A new 32-hex-digit request id (see the module documentation).
pub fn generate() -> HeaderValue {
    let (prefix, n) = STATE.with(|s| {
        let (now, next) = step(s.get(), fresh_prefix);
        s.set(next);
        now
    });
    let mut buf = [0u8; GENERATED_LEN];
    let (head, tail) = buf.split_at_mut(PREFIX_HEX);
    head.copy_from_slice(&prefix);
    write_hex(tail, u64::from(n));
    super::value_arena::header_value(|b| b.extend_from_slice(&buf))
}

/// The id parts to use now and the state after: the counter advances; after
/// its last value the prefix is replaced by `fresh()` and the counter restarts.
fn step(state: State, fresh: impl FnOnce() -> [u8; PREFIX_HEX]) -> (State, State) {
    let (prefix, n) = state;
    let next = match n.checked_add(1) {
        Some(m) => (prefix, m),
        None => (fresh(), 0),
    };
    (state, next)
}

/// 96 bits from the thread's CSPRNG, as hex.
fn fresh_prefix() -> [u8; PREFIX_HEX] {
    let bits: [u8; PREFIX_HEX / 2] = rand::random();
    let mut out = [0u8; PREFIX_HEX];
    for (pair, b) in out.chunks_exact_mut(2).zip(bits) {
        write_hex(pair, u64::from(b));
    }
    out
}

fn write_hex(out: &mut [u8], mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chosen_ids_are_marked_never_indexed_for_hpack() {
        assert!(choose(&HeaderMap::new()).is_sensitive(), "a generated id");
        let mut h = HeaderMap::new();
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("client-1"));
        let kept = choose(&h);
        assert_eq!(kept, "client-1");
        assert!(kept.is_sensitive(), "a kept client id");
    }

    #[test]
    fn ids_are_unique_128_bit_hex() {
        let ids: std::collections::HashSet<HeaderValue> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(10) {
            assert_eq!(id.len(), GENERATED_LEN);
            assert!(id.as_bytes().iter().all(|c| c.is_ascii_hexdigit()));
            assert!(valid(id.as_bytes()), "a generated id is a valid client id");
        }
    }

    #[test]
    fn threads_draw_different_prefixes() {
        let prefix = |id: HeaderValue| id.as_bytes()[..PREFIX_HEX].to_vec();
        let here = prefix(generate());
        let there = std::thread::spawn(move || prefix(generate()))
            .join()
            .unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn the_prefix_is_replaced_when_the_counter_wraps() {
        let old = [b'a'; PREFIX_HEX];
        let new = [b'b'; PREFIX_HEX];
        let (now, next) = step((old, u32::MAX - 1), || new);
        assert_eq!((now, next), ((old, u32::MAX - 1), (old, u32::MAX)));
        let (now, next) = step(next, || new);
        assert_eq!(now, (old, u32::MAX));
        assert_eq!(next, (new, 0), "counter restarts under a fresh prefix");
    }

    #[test]
    fn client_ids_are_checked() {
        for ok in ["a", "abc-123", "A.b_c:d-e", &"x".repeat(128)] {
            assert!(valid(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "a\"b",
            "é",
            "a,b",
            "<script>",
            &"x".repeat(129),
        ] {
            assert!(!valid(bad.as_bytes()), "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("client-1"));
        assert_eq!(choose(&h), "client-1");
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("bad id"));
        assert_eq!(choose(&h).len(), GENERATED_LEN);
    }

    proptest! {
        #[test]
        fn choose_keeps_exactly_the_valid_ids(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                h.insert(&X_REQUEST_ID, v);
            }
            let id = choose(&h);
            prop_assert!(valid(id.as_bytes()));
            if valid(&raw) {
                prop_assert_eq!(id.as_bytes(), &raw[..]);
            }
        }
    }
}
