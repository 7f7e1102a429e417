//! drover's own HTTP/1.1 codec for the plain listeners (issue 17).
//!
//! A connection starts on the native path ([`conn::serve`]): request heads
//! are parsed with `httparse` from a per-thread pooled read buffer
//! ([`buf`]), routed and forwarded by the same code as hyper's path
//! ([`super::prepare`]), and the response is written by [`write`]. The
//! native path serves the common case only; a request it does not handle
//! (HTTP/1.0, `Transfer-Encoding`, `Expect`, upgrades, gRPC, anything
//! malformed or too large, …) hands the whole connection to
//! hyper, with the bytes already read replayed first ([`rewind::Rewind`]), so
//! correctness never depends on what the native path covers. Hand-offs are
//! counted ([`handoffs`]). `server.http1_codec = "hyper"` turns the native
//! path off. TLS listeners and HTTP/2 always use hyper.

#![forbid(unsafe_code)]

pub mod buf;
pub mod conn;
pub mod parse;
pub mod rewind;
pub mod write;

pub use crate::upstream::client_in as body;
pub use crate::upstream::client_in::ClientIn;

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a connection left the native path (the `reason` label of
/// `drover_http1_handoffs_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// Not HTTP/1.1 (HTTP/1.0, HTTP/2's preface, HTTP/0.9).
    Version,
    /// `Transfer-Encoding`, `Expect`, an upgrade, `CONNECT`, gRPC or a URI not in origin form.
    Feature,
    /// A head that does not parse, or fields the native path does not accept.
    Malformed,
    /// A head larger than `server.max_header_bytes` or with too many fields.
    TooLarge,
}

impl HandOff {
    /// Every reason, in label order.
    pub const ALL: [HandOff; 4] = [
        HandOff::Version,
        HandOff::Feature,
        HandOff::Malformed,
        HandOff::TooLarge,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            HandOff::Version => "version",
            HandOff::Feature => "feature",
            HandOff::Malformed => "malformed",
            HandOff::TooLarge => "too_large",
        }
    }
}

static HANDOFFS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static NATIVE_REQUESTS: AtomicU64 = AtomicU64::new(0);

fn count_handoff(why: HandOff) {
    HANDOFFS[why as usize].fetch_add(1, Ordering::Relaxed);
}

fn count_native_request() {
    NATIVE_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Connections handed to hyper so far, by reason (`drover_http1_handoffs_total`).
pub fn handoffs() -> impl Iterator<Item = (&'static str, u64)> {
    HandOff::ALL
        .into_iter()
        .map(|h| (h.label(), HANDOFFS[h as usize].load(Ordering::Relaxed)))
}

/// Requests served by the native codec so far (`drover_http1_native_requests_total`).
pub fn native_requests() -> u64 {
    NATIVE_REQUESTS.load(Ordering::Relaxed)
}
