//! drover's own HTTP/1.1 client for plain (non-TLS) keep-alive connections
//! to backends (issue 17): the upstream half of the native codec, used when
//! `server.http1_codec = "native"`.
//!
//! Unlike hyper's client there is no connection task: the exchange is driven
//! in the task of the request (the client connection's task on the native
//! server path): the request head is written from the `Request`'s parts in
//! one write, the response head is parsed from the connection's own read
//! buffer ([`head`]), and the body is cut from that buffer as it arrives
//! ([`decode`], [`body`]); at the body's end the connection goes back to
//! this worker thread's idle pool. No channel, no oneshot, and in steady
//! state no allocation per request (the header maps are recycled,
//! [`super::maps`]; custom field names cached, [`super::names`]).
//!
//! It serves the common exchange only: requests without a body, not
//! upgrades, to plain members. Everything else (request bodies, upgrades,
//! TLS, HTTP/2) takes hyper's client ([`super::http1`], [`super::http2`]).

#![forbid(unsafe_code)]

pub mod body;
pub mod decode;
pub mod head;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{Method, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http1::{ConnectError, Key, Wire, MAX_IDLE_PER_BACKEND};
use super::idle::IdleList;
use decode::DecodeError;
use head::HeadError;

/// A connection's first read buffer: 8 KiB (grown for large bodies, up to [`READ_MAX`]).
const READ_START: usize = 8 * 1024;
/// The most a body read asks for at once: 64 KiB.
pub const READ_MAX: usize = 64 * 1024;

/// A keep-alive connection to a backend.
pub struct Conn {
    io: TcpStream,
    /// Bytes read and not yet handed on.
    buf: BytesMut,
    /// The request head being written (kept: its capacity is reused).
    out: Vec<u8>,
    /// `buf` was grown for a large body (dropped when the connection goes idle).
    grown: bool,
}

/// What went wrong in an exchange, and how far it had got.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    /// Some of the request reached the connection.
    pub sent: bool,
    /// Some of the response came back.
    pub answered: bool,
}

#[derive(Debug)]
pub enum ErrorKind {
    Io(io::Error),
    /// The backend closed before (all of) the response head.
    Closed,
    Head(HeadError),
    Body(DecodeError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ErrorKind::Io(e) if self.sent => write!(f, "connection error: {e}"),
            ErrorKind::Io(e) => write!(f, "connection error before the request was sent: {e}"),
            ErrorKind::Closed if self.answered => {
                f.write_str("connection closed in the middle of the response head")
            }
            ErrorKind::Closed => f.write_str("connection closed before a response"),
            ErrorKind::Head(e) => e.fmt(f),
            ErrorKind::Body(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    fn new(kind: ErrorKind, sent: bool, answered: bool) -> Error {
        Error {
            kind,
            sent,
            answered,
        }
    }
}

/// Exchanges started on the native client (`drover_upstream_native_exchanges_total`).
static EXCHANGES: AtomicU64 = AtomicU64::new(0);

/// Exchanges started on the native client so far.
pub fn exchanges() -> u64 {
    EXCHANGES.load(Ordering::Relaxed)
}

thread_local! {
    static IDLE: RefCell<HashMap<Key, IdleList<Conn>>> = RefCell::new(HashMap::new());
}

impl Conn {
    fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            grown: false,
        }
    }

    /// Whether an idle connection may take a request: nothing arrived on it
    /// (no close, no stray bytes). Costs a syscall only when the socket has
    /// been readable since the last read.
    fn idle_usable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the head of `req` (which has no body) and reads the final
    /// response head; the body follows in `self.buf`.
    async fn exchange<B>(&mut self, req: &Request<B>) -> Result<head::Response, Error> {
        self.out.clear();
        head::write_request(&mut self.out, req.method(), req.uri(), req.headers());
        self.io
            .write_all(&self.out)
            .await
            .map_err(|e| Error::new(ErrorKind::Io(e), false, false))?;
        let head_request = req.method() == Method::HEAD;
        let mut answered = false;
        loop {
            if !self.buf.is_empty() {
                answered = true;
                match head::response(&mut self.buf, head_request) {
                    Ok(head::Parsed::Final(r)) => return Ok(r),
                    Ok(head::Parsed::Interim) => continue,
                    Ok(head::Parsed::Partial) => {}
                    Err(e) => return Err(Error::new(ErrorKind::Head(e), true, true)),
                }
            }
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(READ_START);
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) => return Err(Error::new(ErrorKind::Closed, true, answered)),
                Ok(_) => {}
                Err(e) => return Err(Error::new(ErrorKind::Io(e), true, answered)),
            }
        }
    }
}

/// Takes an idle connection to `key` from this thread's pool (newest
/// first), dropping those that closed or expired.
fn take_idle(key: Key) -> Option<Conn> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&key)?;
        list.pop_newest(Instant::now(), Conn::idle_usable)
    })
}

/// Puts a connection whose exchange ended cleanly back into this thread's
/// pool, idle for at most `idle_for`.
fn put_idle(key: Key, conn: Conn, idle_for: Duration) {
    let _ = IDLE.try_with(|idle| {
        let expires = Instant::now() + idle_for;
        idle.borrow_mut()
            .entry(key)
            .or_default()
            .push(conn, expires, MAX_IDLE_PER_BACKEND);
    });
}

/// Closes this thread's idle connections that expired or that the backend
/// closed; forgets backends left with none (run by [`super::http1::sweeper`]).
pub fn sweep(now: Instant) {
    IDLE.with(|idle| {
        idle.borrow_mut().retain(|_, list| {
            list.sweep(now, Conn::idle_usable);
            !list.is_empty()
        });
    })
}

/// A new plain connection to `addr` (connect bounded by `timeout`).
async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ConnectError> {
    match super::http1::open(addr, None, &[], timeout).await? {
        Wire::Plain(s) => Ok(Conn::new(s)),
        // No TLS client was given: never reached.
        Wire::Tls(_) => Err(ConnectError::Tls("unexpected TLS".into())),
    }
}

/// How an exchange ended.
#[allow(clippy::large_enum_variant)] // Once per request: boxing would allocate.
pub enum Exchanged {
    /// The response head; its body reads from the connection.
    Response(http::Response<body::Body>),
    /// Failed before a response; the error says how far it got.
    Failed(Error),
    /// No connection could be had.
    NoConnection(ConnectError),
    /// No response head within the request timeout.
    TimedOut,
}

/// One exchange of a request without a body with `addr` (plain HTTP/1.1):
/// a pooled connection (or a new one), the head written, the response
/// head read. A pooled connection the backend closed before answering
/// anything (the keep-alive race) is replaced by a new one and the request
/// written again: it cannot have been processed when it was never read, and
/// if it was read, an idempotent request may be sent again (RFC 9110 §9.2.2);
/// anything else is reported.
///
/// `request_timeout` bounds each write-and-read-the-head (not the connect,
/// which `connect_timeout` bounds).
pub async fn exchange<B>(
    addr: SocketAddr,
    req: &Request<B>,
    connect_timeout: Duration,
    request_timeout: Duration,
    idle_for: Duration,
) -> Exchanged {
    EXCHANGES.fetch_add(1, Ordering::Relaxed);
    let key = (addr, 0);
    let mut fresh = false;
    loop {
        let mut conn = match take_idle(key) {
            Some(c) => c,
            None => match connect(addr, connect_timeout).await {
                Ok(c) => {
                    fresh = true;
                    c
                }
                Err(e) => return Exchanged::NoConnection(e),
            },
        };
        let Ok(answer) = tokio::time::timeout(request_timeout, conn.exchange(req)).await else {
            return Exchanged::TimedOut;
        };
        match answer {
            Ok(head) => return Exchanged::Response(body::response(head, conn, key, idle_for)),
            Err(e) => {
                let raced = !e.answered
                    && (!e.sent || idempotent(req.method()))
                    && matches!(e.kind, ErrorKind::Closed | ErrorKind::Io(_));
                if fresh || !raced {
                    return Exchanged::Failed(e);
                }
            }
        }
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests;
