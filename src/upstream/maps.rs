//! Per-thread recycled `HeaderMap`s for the native HTTP/1.1 paths: the
//! native server takes one for each request head and the native client one
//! for each response head; each goes back (cleared, its memory kept) once
//! its message has been written. A `HeaderMap` costs two allocations (its
//! index table and its entries), so a proxied request on the native paths
//! allocates none for its heads in steady state. Each worker thread has its
//! own runtime, so a thread-local list needs no lock.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: 256. Every request in flight holds two (its head,
/// its response's), and completions come in bursts: with 64 kept, a thread
/// carrying 80 HTTP/2 streams made a new map for almost every request
/// (bench/RESULTS.md, 2026-12-01). The list only grows to what the peak load
/// had in flight; at most 256 maps of at most [`KEEP_MAX`] fields, ~1.7 MiB
/// per thread in the worst case (~0.6 MiB with 16-field heads).
const KEEP: usize = 256;
/// A map that grew beyond this many fields (a huge head) is not kept: 64.
const KEEP_MAX: usize = 64;

/// Fields forwarding may add to a request head (`x-forwarded-*`, `via`,
/// `x-request-id`, `traceparent`, ...): room reserved up front by the
/// servers that build request heads: 8.
pub const FORWARD_ADDS: usize = 8;

thread_local! {
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map with room for `fields`, from this thread's list when it has one.
pub fn take(fields: usize) -> HeaderMap {
    match MAPS.try_with(|m| m.borrow_mut().pop()).ok().flatten() {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// Gives a map back to this thread's list (cleared; dropped when the list is
/// full or the map is oversized).
pub fn give(mut map: HeaderMap) {
    if map.capacity() > KEEP_MAX {
        return;
    }
    map.clear();
    let _ = MAPS.try_with(|m| {
        let mut m = m.borrow_mut();
        if m.len() < KEEP {
            m.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_given_map_comes_back_empty_with_its_room() {
        let mut m = take(8);
        m.insert("x-a", HeaderValue::from_static("1"));
        let cap = m.capacity();
        give(m);
        let again = take(4);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), cap);
        let mut big = HeaderMap::with_capacity(KEEP_MAX * 2);
        big.insert("x-b", HeaderValue::from_static("2"));
        give(big);
        assert!(take(1).capacity() <= KEEP_MAX);
    }
}
