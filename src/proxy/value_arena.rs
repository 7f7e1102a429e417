//! Small header values made per request (`X-Request-Id`, `X-Forwarded-For`)
//! carved out of one per-thread 4 KiB chunk instead of an allocation each.
//!
//! A value made with `HeaderValue::from_bytes` costs a copy into a new
//! allocation, and a second allocation the first time it is cloned (the
//! request id goes upstream, into the response and into the replay copy of the
//! head). A value cut from a shared chunk is reference-counted from the start:
//! one allocation per ~100 requests. Measured with callgrind's cache
//! simulation: see `bench/RESULTS.md`.

use std::cell::RefCell;

use bytes::BytesMut;
use http::HeaderValue;

/// Size of one chunk. Default 4 KiB.
const CHUNK: usize = 4096;
/// Longest value made here (an IPv6 address is at most 45 bytes).
pub const MAX_VALUE: usize = 64;

thread_local! {
    static CHUNK_BUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A header value written by `write` (at most 64 bytes of visible ASCII);
/// empty if `write` produced bytes a header value cannot hold.
pub fn header_value(write: impl FnOnce(&mut BytesMut)) -> HeaderValue {
    CHUNK_BUF.with(|c| {
        let mut buf = c.borrow_mut();
        if buf.capacity() - buf.len() < MAX_VALUE {
            *buf = BytesMut::with_capacity(CHUNK);
        }
        write(&mut buf);
        HeaderValue::from_maybe_shared(buf.split().freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn values_are_independent_across_chunks() {
        let vals: Vec<HeaderValue> = (0..1000)
            .map(|i| header_value(|b| b.put_slice(format!("v{i}").as_bytes())))
            .collect();
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(v.to_str().unwrap(), format!("v{i}"));
        }
    }

    #[test]
    fn an_invalid_value_becomes_empty_not_a_panic() {
        let v = header_value(|b| b.put_slice(b"a\nb"));
        assert_eq!(v.as_bytes(), b"");
        // The chunk stays usable.
        assert_eq!(header_value(|b| b.put_slice(b"ok")).as_bytes(), b"ok");
    }
}
