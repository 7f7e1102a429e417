//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): `traceparent`
//! and `tracestate` for the upstream request.
//!
//! - A valid incoming `traceparent` keeps its trace id and sampled flag; drover is a
//!   hop, so the upstream request gets a new parent id (span id) (§3.2.2.3)
//!   and `tracestate` passes through unchanged.
//! - Absent or invalid (or sent twice): drover starts a trace — a random trace
//!   id and parent id, flags `01` (sampled: drover records every request, with
//!   its trace id, in the access log) — and drops any `tracestate`, which
//!   belonged to the unusable parent (§3.3: not to be parsed without a valid
//!   `traceparent`).
//!
//! The parser reads client bytes: no indexing past what it checked.
//!
//! Ids are drawn from a per-thread `SmallRng` (xoshiro256++) seeded from the
//! OS through `rand`'s `ThreadRng`: trace and span ids need to be unique and
//! unguessable enough to not collide, not secret (they travel in clear in
//! headers and logs), and ChaCha cost ~1% of a proxied request's
//! instructions (bench/RESULTS.md, 2026-12-01).

use std::cell::RefCell;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A parsed `traceparent` (version 00 fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// Lowercase hex digits of `out.len() * 2` characters; `None` on anything else.
fn hex_into(s: &[u8], out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (pair.first().copied()?, pair.get(1).copied()?);
        *o = (digit(hi)? << 4) | digit(lo)?;
    }
    Some(())
}

/// Parses a `traceparent` value (§3.2). Version `00` must be exactly 55
/// characters; a later version may append `-...` after the four fields
/// (§3.2.4: read what version 00 defines); version `ff`, an all-zero trace id
/// or parent id, and uppercase hex are invalid.
pub fn parse(v: &[u8]) -> Option<TraceParent> {
    let v = v.trim_ascii();
    let head = v.get(..55)?;
    let rest = v.get(55..).unwrap_or_default();
    let mut parts = head.split(|&c| c == b'-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let mut ver = [0u8; 1];
    hex_into(version, &mut ver)?;
    match ver[0] {
        0xff => return None,
        0 if !rest.is_empty() => return None,
        _ if !rest.is_empty() && rest.first() != Some(&b'-') => return None,
        _ => {}
    }
    let mut tp = TraceParent {
        trace_id: [0; 16],
        parent_id: [0; 8],
        flags: 0,
    };
    hex_into(trace, &mut tp.trace_id)?;
    hex_into(parent, &mut tp.parent_id)?;
    let mut f = [0u8; 1];
    hex_into(flags, &mut f)?;
    tp.flags = f[0];
    if tp.trace_id == [0; 16] || tp.parent_id == [0; 8] {
        return None;
    }
    Some(tp)
}

impl TraceParent {
    /// The version-00 header value: `00-<trace id>-<parent id>-<flags>`, cut
    /// from the per-thread chunk of [`super::value_arena`] (no allocation per request).
    pub fn to_header(&self) -> HeaderValue {
        let mut s = [0u8; 55];
        s[..3].copy_from_slice(b"00-");
        hex_to(&mut s[3..35], &self.trace_id);
        s[35] = b'-';
        hex_to(&mut s[36..52], &self.parent_id);
        s[52] = b'-';
        hex_to(&mut s[53..55], &[self.flags]);
        let mut v = super::value_arena::header_value(|b| b.extend_from_slice(&s));
        // Unique per request: never indexed by HPACK (see `request_id::choose`).
        v.set_sensitive(true);
        v
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut s = [0u8; 32];
        hex_to(&mut s, &self.trace_id);
        String::from_utf8(s.to_vec()).expect("hex is UTF-8")
    }
}

/// Writes `bytes` as lowercase hex into `out` (two digits per byte, as many as fit).
fn hex_to(out: &mut [u8], bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
    }
}

thread_local! {
    static IDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// A random id that is not all zeros.
fn nonzero<const N: usize>() -> [u8; N] {
    loop {
        let id: [u8; N] = IDS
            .try_with(|r| r.borrow_mut().random())
            .unwrap_or_else(|_| rand::random());
        if id != [0; N] {
            return id;
        }
    }
}

/// The incoming context, if there is exactly one valid `traceparent`.
pub fn incoming(headers: &HeaderMap) -> Option<TraceParent> {
    let mut all = headers.get_all(&TRACEPARENT).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    parse(first.as_bytes())
}

/// The context of this hop, given the incoming one: same trace id and
/// sampled flag with a new parent id, or a new trace (flags `01`).
pub fn next_hop(incoming: Option<TraceParent>) -> TraceParent {
    match incoming {
        // Only the sampled bit is defined for version 00; the others are sent as 0 (§3.2.2.5).
        Some(tp) => TraceParent {
            parent_id: nonzero(),
            flags: tp.flags & 0x01,
            ..tp
        },
        None => TraceParent {
            trace_id: nonzero(),
            parent_id: nonzero(),
            flags: 0x01,
        },
    }
}

/// This hop's context: what the upstream request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The `traceparent` sent upstream.
    pub sent: TraceParent,
    /// The client's trace was continued (its `tracestate` passes through).
    pub continued: bool,
}

/// The hop for a request with these headers (see the module documentation).
pub fn hop(headers: &HeaderMap) -> Hop {
    let inc = incoming(headers);
    Hop {
        sent: next_hop(inc),
        continued: inc.is_some(),
    }
}

/// Sets the upstream request's `traceparent` (replacing the client's) and
/// drops `tracestate` when the trace was not continued.
pub fn write(headers: &mut HeaderMap, hop: &Hop) {
    if !hop.continued {
        headers.remove(&TRACESTATE);
    }
    headers.insert(&TRACEPARENT, hop.sent.to_header());
}

/// [`hop`] then [`write`]: rewrites `headers` for the upstream request and
/// returns the context sent.
pub fn apply(headers: &mut HeaderMap) -> TraceParent {
    let h = hop(headers);
    write(headers, &h);
    h.sent
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let tp = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.flags, 1);
        assert_eq!(tp.to_header(), EXAMPLE);
    }

    #[test]
    fn rejects_what_the_spec_calls_invalid() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        // A later version may carry more fields after the four it shares with 00.
        let v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert!(parse(v1.as_bytes()).is_some());
    }

    #[test]
    fn a_valid_parent_keeps_its_trace_and_state_an_invalid_one_loses_both() {
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        h.insert(&TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let tp = apply(&mut h);
        assert!(
            h.get(&TRACEPARENT).unwrap().is_sensitive(),
            "never indexed by HPACK"
        );
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(tp.parent_id, parse(EXAMPLE.as_bytes()).unwrap().parent_id);
        assert_eq!(h.get(&TRACESTATE).unwrap(), "congo=t61rcWkgMzE");
        assert_eq!(parse(h.get(&TRACEPARENT).unwrap().as_bytes()), Some(tp));

        let mut h = HeaderMap::new();
        h.insert(
            &TRACEPARENT,
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        );
        h.insert(&TRACESTATE, HeaderValue::from_static("congo=t61rcWkgMzE"));
        let tp = apply(&mut h);
        assert!(h.get(&TRACESTATE).is_none());
        assert_eq!(tp.flags, 1);
        assert_eq!(parse(h.get(&TRACEPARENT).unwrap().as_bytes()), Some(tp));
    }

    #[test]
    fn two_traceparents_start_a_new_trace() {
        let mut h = HeaderMap::new();
        h.append(&TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        h.append(&TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        let tp = apply(&mut h);
        assert_ne!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(h.get_all(&TRACEPARENT).iter().count(), 1);
    }
}
