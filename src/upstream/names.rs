//! Field names parsed once per worker thread: a small direct-mapped cache
//! from a name as it came on the wire to its `HeaderName`. A standard name
//! costs nothing to parse, but a custom one (`x-backend`, `x-request-id`, …)
//! is copied into a new allocation each time `HeaderName::from_bytes` sees
//! it; from the cache it is a reference count. Used by the native HTTP/1
//! paths for request and response heads.

use std::cell::RefCell;

use http::HeaderName;

/// Slots in the cache: 256 (a name that maps to a taken slot replaces it).
const SLOTS: usize = 256;
/// Names longer than this are not cached: 64 bytes.
const MAX_LEN: usize = 64;

/// A cached name: its bytes as they came, and the parsed name.
type Slot = Option<(Box<[u8]>, HeaderName)>;

thread_local! {
    static CACHE: RefCell<Vec<Slot>> = RefCell::new(vec![None; SLOTS]);
}

fn slot(raw: &[u8]) -> usize {
    let first = raw.first().copied().unwrap_or(0) as usize;
    let last = raw.last().copied().unwrap_or(0) as usize;
    let mid = raw.get(raw.len() / 2).copied().unwrap_or(0) as usize;
    (raw.len().wrapping_mul(31) ^ first ^ (last << 3) ^ (mid << 5)) % SLOTS
}

/// The `HeaderName` of `raw` (as `HeaderName::from_bytes`), from this
/// thread's cache when it was seen before.
pub fn parse(raw: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    if raw.len() > MAX_LEN {
        return HeaderName::from_bytes(raw);
    }
    let i = slot(raw);
    let hit = CACHE
        .try_with(|c| match c.borrow().get(i) {
            Some(Some((k, n))) if **k == *raw => Some(n.clone()),
            _ => None,
        })
        .ok()
        .flatten();
    if let Some(n) = hit {
        return Ok(n);
    }
    let name = HeaderName::from_bytes(raw)?;
    let _ = CACHE.try_with(|c| {
        if let Some(s) = c.borrow_mut().get_mut(i) {
            *s = Some((raw.into(), name.clone()));
        }
    });
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_come_back_as_parsed() {
        for raw in [
            "X-Backend",
            "x-backend",
            "Content-Length",
            "x-Backend",
            "a",
            "X-B",
        ] {
            for _ in 0..3 {
                assert_eq!(
                    parse(raw.as_bytes()).unwrap(),
                    HeaderName::from_bytes(raw.as_bytes()).unwrap()
                );
            }
        }
        assert!(parse(b"bad name").is_err());
        assert!(parse(b"").is_err());
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(parse(long.as_bytes()).unwrap().as_str(), long);
    }

    proptest! {
        /// Whatever the order and collisions, the cache answers as the parser.
        #[test]
        fn the_cache_agrees_with_the_parser(names in proptest::collection::vec("[A-Za-z0-9-]{0,8}|[ -~]{0,4}", 1..60)) {
            for raw in names.iter().chain(names.iter()) {
                let want = HeaderName::from_bytes(raw.as_bytes()).ok();
                prop_assert_eq!(parse(raw.as_bytes()).ok(), want);
            }
        }
    }
}
