//! The HTTP/2 client: drover's own, on [`crate::h2wire`]'s frames and HPACK.
//!
//! One connection is one driver task ([`handshake`] spawns it) that owns the
//! socket: it reads frames, handles them against the state it shares with
//! the requests (`conn::Conn`, behind one uncontended mutex: stream table,
//! windows, output buffer, HPACK decoder), and writes what was queued, once
//! per poll round for every stream together. A request never goes through a
//! channel: [`send`] encodes its head straight into the output buffer, sends
//! its body under the backend's windows and waits for the response head in
//! the caller's task; [`RespBody`] takes the DATA the driver queued (slices
//! of the read buffer, no copy) and gives the window back as it goes.
//!
//! A request body is sent by the same future that waits for the head. When
//! the head comes before the body has been sent in full (a streaming gRPC
//! call, an early answer), the rest of the body is sent by a task of its own
//! ([`Pipe`]), so the response is passed on while the client still sends.
//! Connection-specific fields are removed before the head goes out (RFC 9113
//! §8.2.2; `te` is kept only as `trailers`).
//!
//! Every byte from the backend may be crafted: frames are checked (RFC 9113
//! §5, §6, §8), a fault is a stream error (RST_STREAM) or a connection error
//! (GOAWAY; every stream fails); no panic, no unchecked slicing (fuzz target
//! `upstream_h2`).
//!
//! Files: `conn.rs` the shared state and stream bookkeeping, `recv.rs` the
//! frames received, `driver.rs` the task and its I/O, `send.rs` [`send`],
//! [`Sender`] and [`Pipe`], `body.rs` [`RespBody`], `head.rs` heads on the
//! wire, `error.rs` the errors.

mod body;
mod conn;
mod driver;
mod error;
mod head;
mod recv;
mod send;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::header::{CONNECTION, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName};
use tokio::io::{AsyncRead, AsyncWrite};

pub use body::RespBody;
pub use error::{Error, Failed, H2Error, Kind, RespError};
pub use send::{send, send_keeping, Pipe, Sender};

use super::http1::ConnectError;

/// How much of one response the backend may send before drover has passed it
/// on (the stream's flow-control window, RFC 9113 §6.9): 256 KiB, sent as
/// SETTINGS_INITIAL_WINDOW_SIZE. A response up to that size comes without a
/// WINDOW_UPDATE round trip, and a slow client holds at most that much of
/// its response in drover. The window is given back once half of it was
/// passed on.
pub const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's flow-control window: 16 MiB, so that 64 streams whose
/// clients read slowly still leave the connection room for the others
/// (given back once half of it was passed on).
pub const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
/// The largest response head or trailers (field section, decoded: names and
/// values + 32 bytes per field) taken from a backend: 64 KiB, sent as
/// SETTINGS_MAX_HEADER_LIST_SIZE; a larger one fails its stream.
pub const MAX_HEADER_LIST: u32 = 64 * 1024;
/// The largest field block (compressed, HEADERS + CONTINUATION) taken:
/// 256 KiB; a larger one is a connection error (ENHANCE_YOUR_CALM).
pub const MAX_BLOCK: usize = 256 * 1024;
/// The most frames of one field block (HEADERS + CONTINUATIONs): 64; more is
/// a connection error (ENHANCE_YOUR_CALM: empty CONTINUATIONs cost only time).
pub const MAX_BLOCK_FRAMES: u32 = 64;
/// Bytes queued for writing on a connection before a request body waits for
/// them to go out: 1 MiB.
pub const MAX_SEND_BUFFER: usize = 1024 * 1024;

/// Opens the HTTP/2 connection on a connected transport (plain TCP, or TLS
/// that negotiated `h2`) and spawns its driver task, which calls `on_close`
/// once, when the connection has ended. Nothing is awaited: the preface and
/// SETTINGS go out with the first write, the backend's SETTINGS are taken as
/// they come. (Never an error today: the `Result` keeps the callers' shape.)
pub async fn handshake<IO>(
    io: IO,
    addr: SocketAddr,
    on_close: impl FnOnce() + Send + 'static,
) -> Result<Sender, ConnectError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Mutex::new(conn::Conn::new()));
    // Unconstrained by tokio's cooperative budget: the driver of one connection
    // carries up to `max_streams_per_connection` requests' frames, and with the
    // budget it yielded after ~128 socket operations to the back of a run queue
    // holding every request's task (bench/RESULTS.md, h2 section). It yields
    // on its own after a bounded number of reads per poll.
    tokio::spawn(tokio::task::unconstrained(driver::run(
        io,
        shared.clone(),
        addr,
        on_close,
    )));
    Ok(Sender { shared })
}

/// Removes what HTTP/2 forbids in a request head (RFC 9113 §8.2.2): the
/// connection-specific fields, the fields `Connection` names, and `te` unless
/// it is `trailers`. One pass over the names first: a proxied request has
/// had its hop-by-hop fields removed already, so there is mostly nothing to do.
pub fn strip_connection_fields(h: &mut HeaderMap) {
    let forbidden = |(n, v): (&HeaderName, &http::HeaderValue)| {
        n == CONNECTION
            || (n == TE && v != "trailers")
            || n == TRANSFER_ENCODING
            || n == UPGRADE
            || n.as_str() == "keep-alive"
            || n.as_str() == "proxy-connection"
    };
    if !h.iter().any(forbidden) {
        return;
    }
    if let Some(listed) = h.remove(CONNECTION) {
        if let Ok(names) = listed.to_str() {
            for name in names.split(',') {
                if let Ok(n) = HeaderName::from_bytes(name.trim().as_bytes()) {
                    h.remove(n);
                }
            }
        }
    }
    for name in ["keep-alive", "proxy-connection"] {
        h.remove(name);
    }
    h.remove(TRANSFER_ENCODING);
    h.remove(UPGRADE);
    // Every `te` line counts: one that is not `trailers` removes them all,
    // then `trailers` goes back alone if a line said so.
    if h.get_all(TE).iter().any(|te| te != "trailers") {
        let trailers = h.get_all(TE).iter().any(|te| te == "trailers");
        h.remove(TE);
        if trailers {
            h.insert(TE, http::HeaderValue::from_static("trailers"));
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_garbage;
#[cfg(test)]
mod tests_peer;
#[cfg(test)]
mod tests_raw;
