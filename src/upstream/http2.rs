//! HTTP/2 upstream connections (`protocol = "h2c"`, and `"h2"` on a plain
//! connection): requests multiplexed as streams over a small set of
//! connections per member *and worker thread*.
//!
//! Each worker thread keeps its own connections (a [`Shard`]), like the
//! HTTP/1.1 pool: a connection's driver task runs on the runtime of the worker
//! that opened it, and only that worker sends streams on it, so a request
//! never wakes another thread, and its shard's lock is uncontended (other
//! threads take it only to [`retire`] a member or count connections). With
//! one set shared by all workers, a request's stream was handed to a
//! connection task on whichever thread opened it (a cross-thread wake-up
//! each way) under one process-wide lock.
//!
//! A request takes a *stream slot* on the oldest connection with fewer than
//! `max_streams_per_connection` requests in flight; when every connection is
//! full, one new connection is opened (one at a time per member: requests that
//! arrive meanwhile wait for it instead of opening their own). The slot is an
//! RAII [`Stream`]: it is given back when the response body ends or is
//! dropped, so the count is exactly the requests in flight. With
//! `max_connections_per_backend` bounding the requests in flight, a member
//! gets at most `ceil(limit / max_streams_per_connection)` connections per
//! worker thread (a worker opens one only for requests it has in flight).
//!
//! Streams are sent with [`super::h2_client`] (drover's own HTTP/2 client:
//! a driver task per connection, the exchange in the request's own task).
//!
//! GOAWAY from the backend (RFC 9113 §6.8): the client lets the streams the
//! backend accepted finish; a stream it refused (above its last stream id,
//! or reset with REFUSED_STREAM, §8.7) was not processed: the connection is
//! marked dead and the request goes to a fresh connection ([`unprocessed`],
//! [`super::attempt`]). A draining or removed member is [`retire`]d: its
//! connections take no new stream and close (the h2 client sends GOAWAY)
//! as soon as their last stream ends (in every worker's shard). Idle
//! connections are closed after the pool's `upstream_idle_timeout` ([`sweep`],
//! run by each worker's sweeper on its own shard).
//!
//! Over TLS ([`connect`]), `h2` pools offer ALPN `h2` only (a backend that
//! selects anything else is a connect failure saying so); `auto` pools offer
//! `h2, http/1.1` and, when the backend selects HTTP/1.1, use that connection
//! as an HTTP/1.1 one and remember the member's choice ([`Checkout::Http1`]):
//! its next requests take the HTTP/1.1 pool, with no new handshake, until the
//! member is retired (drained, removed) or the pool reloaded with other TLS
//! settings (each worker learns the choice on its first request).
//! Connections are kept per (member address, TLS client), so a TLS and a
//! plain pool to the same address never share one.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::h2_client::{self, Sender};
use super::http1::{self as upstream, ConnectError, Key, Wire};
use super::tls::{UpstreamTls, ALPN_AUTO, ALPN_H2};

/// What every holder of a connection shares: its streams in flight, and
/// whether it may take new ones.
#[derive(Debug, Default)]
struct ConnState {
    streams: AtomicU32,
    /// Refused a stream (GOAWAY), retired, or ended (set by its driver task):
    /// takes no new stream.
    dead: AtomicBool,
}

/// A new HTTP/2 connection: its sender and the state its holders share.
pub struct H2Conn {
    pub sender: Sender,
    state: Arc<ConnState>,
}

/// One request's stream slot on an HTTP/2 connection; the slot is given back
/// when this is dropped (the response ended, failed, or was dropped).
pub struct Stream {
    pub sender: Sender,
    conn: Arc<ConnState>,
}

impl Stream {
    /// The connection refused a stream or is going away: no new stream goes to it.
    pub fn mark_dead(&self) {
        self.conn.dead.store(true, Ordering::Relaxed);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.conn.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Conn {
    sender: Sender,
    state: Arc<ConnState>,
    /// When a stream was last taken (for `upstream_idle_timeout`).
    last_used: Instant,
    idle_for: Duration,
}

impl Conn {
    fn usable(&self) -> bool {
        !self.state.dead.load(Ordering::Relaxed)
    }
}

/// A connection being opened; its outcome is published once.
type Pending = watch::Sender<Option<Result<(), String>>>;

#[derive(Default)]
struct MemberConns {
    conns: Vec<Conn>,
    connecting: Option<Arc<Pending>>,
    /// An `auto` member that selected HTTP/1.1 by ALPN.
    http1: bool,
}

/// One worker thread's connections, by (member address, TLS client).
#[derive(Default)]
struct Shard(Mutex<HashMap<Key, MemberConns>>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, MemberConns>> {
        self.0.lock()
    }
}

/// Every thread's shard, for [`retire`] and [`open_to`]; a thread's shard
/// (and its connections) goes when the thread ends.
static SHARDS: LazyLock<Mutex<Vec<Weak<Shard>>>> = LazyLock::new(|| Mutex::new(Vec::new()));

thread_local! {
    static SHARD: Arc<Shard> = {
        let s = Arc::new(Shard::default());
        let mut all = SHARDS.lock();
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&s));
        s
    };
}

/// This thread's shard (a fresh, unshared one while the thread is ending).
fn shard() -> Arc<Shard> {
    SHARD
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::new(Shard::default()))
}

/// Every live thread's shard.
fn all_shards() -> Vec<Arc<Shard>> {
    let all = SHARDS.lock();
    all.iter().filter_map(Weak::upgrade).collect()
}

/// The connection a new stream goes to: the first (oldest) usable one with
/// fewer than `max` streams in flight. Pure, for tests.
pub fn choose(loads: impl IntoIterator<Item = (u32, bool)>, max: u32) -> Option<usize> {
    loads
        .into_iter()
        .position(|(streams, usable)| usable && streams < max)
}

/// What a request does after looking at a member's connections.
enum Step {
    Got(Stream),
    /// An `auto` member that speaks HTTP/1.1.
    Http1,
    Wait(watch::Receiver<Option<Result<(), String>>>),
    Open(Arc<Pending>),
    /// No connection has room, and the caller did not offer to open or wait.
    Busy,
}

/// `may_open`: whether the caller opens a connection (or waits for the one
/// being opened) when none has room; `Step::Busy` otherwise.
fn look(shard: &Shard, key: Key, max: u32, now: Instant, may_open: bool) -> Step {
    let mut map = shard.lock();
    let m = map.entry(key).or_default();
    if m.http1 {
        return Step::Http1;
    }
    m.conns.retain(Conn::usable);
    let loads = m
        .conns
        .iter()
        .map(|c| (c.state.streams.load(Ordering::Relaxed), true));
    if let Some(i) = choose(loads, max) {
        let c = &mut m.conns[i];
        c.state.streams.fetch_add(1, Ordering::Relaxed);
        c.last_used = now;
        return Step::Got(Stream {
            sender: c.sender.clone(),
            conn: c.state.clone(),
        });
    }
    if !may_open {
        return Step::Busy;
    }
    match &m.connecting {
        Some(p) => Step::Wait(p.subscribe()),
        None => {
            let p = Arc::new(watch::channel(None).0);
            m.connecting = Some(p.clone());
            Step::Open(p)
        }
    }
}

/// What [`checkout`] got.
pub enum Checkout {
    /// A stream slot; whether its connection was there already.
    H2(Stream, bool),
    /// An `auto` member speaks HTTP/1.1: the connection this request opened
    /// (the backend selected `http/1.1` by ALPN), or none when the choice
    /// was known already (take one from the HTTP/1.1 pool).
    Http1(Option<upstream::Sender>),
}

/// Whether the `auto` member at `addr` (with TLS client `tls`) is known, on
/// this thread, to speak HTTP/1.1 (it selected `http/1.1` by ALPN).
pub fn speaks_http1(addr: SocketAddr, tls: Option<&UpstreamTls>) -> bool {
    shard()
        .lock()
        .get(&(addr, upstream::tls_id(tls)))
        .is_some_and(|m| m.http1)
}

/// A stream slot on a connection to `addr` of this thread's shard: on one
/// with room, else on a new connection (opened within `connect_timeout`, kept
/// `idle_for` when idle): h2c without `tls`; over `tls`, ALPN `h2`, or
/// `h2, http/1.1` when `auto`.
pub async fn checkout(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    auto: bool,
    max: u32,
    connect_timeout: Duration,
    idle_for: Duration,
) -> Result<Checkout, ConnectError> {
    let key = (addr, upstream::tls_id(tls));
    // Kept: the opener publishes to this shard even if the future moved threads.
    let shard = shard();
    loop {
        match look(&shard, key, max, Instant::now(), true) {
            Step::Got(s) => return Ok(Checkout::H2(s, true)),
            Step::Http1 => return Ok(Checkout::Http1(None)),
            Step::Wait(mut rx) => {
                // The opener publishes its outcome, then everyone looks again;
                // its failure is theirs too (no stampede on a dead member).
                let outcome = rx.wait_for(Option::is_some).await.map(|v| v.clone());
                if let Ok(Some(Err(why))) = outcome {
                    return Err(ConnectError::Io(std::io::Error::other(why)));
                }
            }
            // Not answered when opening is allowed; an error rather than a loop.
            Step::Busy => {
                let why = "no connection with room and none opened";
                return Err(ConnectError::Io(std::io::Error::other(why)));
            }
            Step::Open(pending) => {
                let opening = Opening {
                    shard: shard.clone(),
                    key,
                    pending,
                };
                let alpn = if auto && tls.is_some() {
                    ALPN_AUTO
                } else {
                    ALPN_H2
                };
                let opened = connect(addr, tls, alpn, connect_timeout).await;
                return opening.finish(opened, idle_for);
            }
        }
    }
}

/// The fast path of [`checkout`], for the common case: a stream slot on a
/// connection that has room, or the knowledge that an `auto` member speaks
/// HTTP/1.1; `None` when [`checkout`] must wait for a connection or open
/// one. Not async: a request that gets its stream here never builds (nor
/// carries in its future) the connecting state machine, which is ~2 KiB.
pub fn checkout_ready(addr: SocketAddr, tls: Option<&UpstreamTls>, max: u32) -> Option<Checkout> {
    let key = (addr, upstream::tls_id(tls));
    match look(&shard(), key, max, Instant::now(), false) {
        Step::Got(s) => Some(Checkout::H2(s, true)),
        Step::Http1 => Some(Checkout::Http1(None)),
        Step::Wait(_) | Step::Open(_) | Step::Busy => None,
    }
}

/// The one connection attempt to a member in progress. Dropped unfinished
/// (the request that opened it was cancelled), it steps aside so that a
/// waiting request opens the connection instead.
struct Opening {
    shard: Arc<Shard>,
    key: Key,
    pending: Arc<Pending>,
}

impl Opening {
    /// Publishes the outcome; a new connection comes with the first stream on it.
    fn finish(
        self,
        opened: Result<Opened, ConnectError>,
        idle_for: Duration,
    ) -> Result<Checkout, ConnectError> {
        let mut map = self.shard.lock();
        let m = map.entry(self.key).or_default();
        m.connecting = None;
        match opened {
            Ok(Opened::Http1(sender)) => {
                m.http1 = true;
                self.pending.send_replace(Some(Ok(())));
                Ok(Checkout::Http1(Some(sender)))
            }
            Ok(Opened::H2(H2Conn { sender, state })) => {
                state.streams.fetch_add(1, Ordering::Relaxed);
                m.conns.push(Conn {
                    sender: sender.clone(),
                    state: state.clone(),
                    last_used: Instant::now(),
                    idle_for,
                });
                self.pending.send_replace(Some(Ok(())));
                Ok(Checkout::H2(
                    Stream {
                        sender,
                        conn: state,
                    },
                    false,
                ))
            }
            Err(e) => {
                self.pending.send_replace(Some(Err(e.to_string())));
                Err(e)
            }
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if self.pending.borrow().is_some() {
            return;
        }
        let mut map = self.shard.lock();
        if let Some(m) = map.get_mut(&self.key) {
            if m.connecting
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, &self.pending))
            {
                m.connecting = None;
            }
        }
        // Waiters look again (and one of them opens the connection).
        self.pending.send_replace(Some(Ok(())));
    }
}

/// A new connection: HTTP/2, or HTTP/1.1 when an `auto` member selected it.
pub enum Opened {
    H2(H2Conn),
    Http1(upstream::Sender),
}

/// Opens a connection to `addr` within `timeout` (connect and TLS handshake
/// each): h2c (prior knowledge) without `tls`; over `tls`, offering `alpn`,
/// HTTP/2 when the backend selects `h2`, HTTP/1.1 when it selects something
/// else and `alpn` offered `http/1.1`, else a connect failure saying what the
/// backend selected.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    alpn: &[&[u8]],
    timeout: Duration,
) -> Result<Opened, ConnectError> {
    let wire = upstream::open(addr, tls, alpn, timeout).await?;
    let picked = wire.alpn().map(<[u8]>::to_vec);
    match wire {
        Wire::Plain(s) => handshake(s, addr).await.map(Opened::H2),
        Wire::Tls(s) if picked.as_deref() == Some(b"h2") => {
            handshake(s, addr).await.map(Opened::H2)
        }
        Wire::Tls(s) if alpn.contains(&b"http/1.1".as_slice()) => {
            upstream::http1_on(Wire::Tls(s), addr)
                .await
                .map(Opened::Http1)
        }
        Wire::Tls(_) => Err(ConnectError::NoH2(not_h2(picked.as_deref()))),
    }
}

/// Why a TLS connection that should speak HTTP/2 cannot.
pub fn not_h2(picked: Option<&[u8]>) -> String {
    let what = match picked {
        Some(p) => format!(
            "selected \"{}\"",
            String::from_utf8_lossy(p).escape_default()
        ),
        None => "selected no protocol".into(),
    };
    format!(
        "the backend {what} by ALPN, not h2 (HTTP/2); protocol = \"auto\" falls back to HTTP/1.1"
    )
}

/// An HTTP/2 connection to `addr` (h2c, or TLS with ALPN `h2`), as [`connect`].
pub async fn connect_h2(
    addr: SocketAddr,
    tls: Option<&UpstreamTls>,
    timeout: Duration,
) -> Result<Sender, ConnectError> {
    match connect(addr, tls, ALPN_H2, timeout).await? {
        Opened::H2(c) => Ok(c.sender),
        Opened::Http1(_) => Err(ConnectError::NoH2(not_h2(Some(b"http/1.1")))),
    }
}

/// The HTTP/2 handshake on a connected transport (plain TCP, or TLS that
/// negotiated `h2`); the connection is marked dead when its driver ends.
async fn handshake<IO>(io: IO, addr: SocketAddr) -> Result<H2Conn, ConnectError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::default());
    let on_close = state.clone();
    let sender = h2_client::handshake(io, addr, move || {
        on_close.dead.store(true, Ordering::Relaxed);
    })
    .await?;
    Ok(H2Conn { sender, state })
}

/// Turns an HTTP/1.1-shaped upstream request (origin-form target, `Host`)
/// into an HTTP/2 one (a request that has an authority already is left so):
/// `:scheme` `http` (`https` over TLS), `:authority` from `Host` (RFC 9113
/// §8.3.1; the member's address when `Host` is missing or not an authority)
/// and no `Host` header.
pub fn to_h2<B>(req: &mut http::Request<B>, addr: SocketAddr, tls: bool) {
    use http::uri::{Authority, PathAndQuery, Uri};
    if req.uri().authority().is_some() {
        // Made for HTTP/2 already (a request sent again to another member).
        *req.version_mut() = http::Version::HTTP_2;
        return;
    }
    let from_host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok());
    let authority = match from_host {
        Some(a) => a,
        None => match addr.to_string().parse::<Authority>() {
            Ok(a) => a,
            Err(_) => return,
        },
    };
    let pq = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if let Ok(uri) = Uri::builder()
        .scheme(if tls { "https" } else { "http" })
        .authority(authority)
        .path_and_query(pq)
        .build()
    {
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_2;
        req.headers_mut().remove(http::header::HOST);
    }
    // Connection-specific headers are malformed in HTTP/2 (RFC 9113 §8.2.2):
    // an `Upgrade` kept for an HTTP/1.1 upgrade cannot go to an HTTP/2 pool.
    let h = req.headers_mut();
    h.remove(http::header::UPGRADE);
    h.remove(http::header::CONNECTION);
}

/// Undoes [`to_h2`] for a request that goes over HTTP/1.1 after all (an
/// `auto` member that selected it): `Host` from `:authority` and an
/// origin-form target. A request not made for HTTP/2 is left as it is.
pub fn to_h1<B>(req: &mut http::Request<B>) {
    if req.version() != http::Version::HTTP_2 {
        return;
    }
    *req.version_mut() = http::Version::HTTP_11;
    let Some(authority) = req.uri().authority().cloned() else {
        return;
    };
    if !req.headers().contains_key(http::header::HOST) {
        if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(http::header::HOST, host);
        }
    }
    let pq = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = http::Uri::from(pq);
}

/// The member at `addr` is draining or gone: its connections (in every
/// thread's shard) take no new stream, and each closes (with GOAWAY) once its
/// last stream has ended. An `auto` member's remembered protocol is forgotten.
pub fn retire(addr: SocketAddr) {
    for shard in all_shards() {
        shard.lock().retain(|key, m| {
            if key.0 != addr {
                return true;
            }
            for c in &m.conns {
                c.state.dead.store(true, Ordering::Relaxed);
            }
            false
        });
    }
}

/// Closes this thread's connections idle (no stream) past their `idle_for`,
/// and forgets members left with none.
pub fn sweep(now: Instant) {
    shard().lock().retain(|_, m| {
        m.conns.retain(|c| {
            c.usable()
                && (c.state.streams.load(Ordering::Relaxed) > 0 || now < c.last_used + c.idle_for)
        });
        !m.conns.is_empty() || m.connecting.is_some() || m.http1
    });
}

/// Open HTTP/2 connections to `addr`, all threads together (for tests and
/// the admin view).
pub fn open_to(addr: SocketAddr) -> usize {
    all_shards()
        .iter()
        .map(|s| {
            s.lock()
                .iter()
                .filter(|(key, _)| key.0 == addr)
                .map(|(_, m)| m.conns.len())
                .sum::<usize>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An h2c stream slot (the plain pool of tests).
    async fn h2c(
        addr: SocketAddr,
        max: u32,
        s: Duration,
        idle: Duration,
    ) -> Result<(Stream, bool), ConnectError> {
        match checkout(addr, None, false, max, s, idle).await? {
            Checkout::H2(stream, reused) => Ok((stream, reused)),
            Checkout::Http1(_) => panic!("h2c never falls back to HTTP/1.1"),
        }
    }

    #[test]
    fn the_oldest_connection_with_room_takes_the_stream() {
        assert_eq!(choose([(100, true), (3, true), (0, true)], 100), Some(1));
        assert_eq!(choose([(2, false), (3, true)], 100), Some(1));
        assert_eq!(choose([(100, true), (100, true)], 100), None);
        assert_eq!(choose([], 100), None);
    }

    /// 300 requests at once with 100 streams per connection: 3 connections,
    /// opened one at a time; idle ones are closed by the sweep.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_fill_connections_before_another_is_opened() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(crate::backend_app::serve(l, "t".into()));
        let s = Duration::from_secs(1);
        let got = futures_util::future::join_all(
            (0..300).map(|_| h2c(addr, 100, s, Duration::from_secs(50))),
        )
        .await;
        let streams: Vec<(Stream, bool)> = got.into_iter().map(Result::unwrap).collect();
        let opened = streams.iter().filter(|(_, reused)| !reused).count();
        assert_eq!(opened, 3);
        assert_eq!(open_to(addr), 3);
        // All full: a 301st stream needs a fourth connection; with room, it does not.
        let (extra, reused) = h2c(addr, 100, s, Duration::from_secs(50)).await.unwrap();
        assert!(!reused);
        drop(extra);
        drop(streams);
        let (one, reused) = h2c(addr, 100, s, Duration::from_secs(50)).await.unwrap();
        assert!(reused);
        drop(one);
        sweep(Instant::now() + Duration::from_secs(51));
        assert_eq!(open_to(addr), 0);
        server.abort();
    }

    #[tokio::test]
    async fn a_dead_member_fails_every_waiting_request() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let s = Duration::from_secs(1);
        let got = futures_util::future::join_all((0..20).map(|_| h2c(addr, 100, s, s))).await;
        for r in got {
            let e = r.err().expect("refused");
            assert!(e.to_string().contains("refused"), "{e}");
        }
        assert_eq!(open_to(addr), 0);
    }

    /// Connections and an `auto` member's remembered HTTP/1.1 choice are kept
    /// per (address, TLS client): the plain pool to the same address is not
    /// affected; retiring the member forgets both.
    #[tokio::test]
    async fn pools_to_one_address_are_kept_apart_and_retire_forgets_the_choice() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(crate::backend_app::serve(l, "t".into()));
        let s = Duration::from_secs(5);
        // A TLS client (id 7) whose member chose HTTP/1.1.
        shard().lock().entry((addr, 7)).or_default().http1 = true;
        assert!(!speaks_http1(addr, None));
        let (stream, reused) = h2c(addr, 100, s, s).await.unwrap();
        assert!(!reused);
        assert_eq!(open_to(addr), 1);
        assert!(shard()
            .lock()
            .get(&(addr, 7))
            .is_some_and(|m| m.http1 && m.conns.is_empty()));
        // Kept by the sweep while remembered; gone with the member.
        sweep(Instant::now());
        assert!(shard().lock().get(&(addr, 7)).is_some_and(|m| m.http1));
        retire(addr);
        assert!(shard().lock().keys().all(|k| k.0 != addr));
        assert!(stream.conn.dead.load(Ordering::Relaxed));
        drop(stream);
        server.abort();
    }

    #[test]
    fn to_h1_undoes_to_h2() {
        let mut r = http::Request::get("/a/b?c=1")
            .header("host", "api.example:8443")
            .header("x-kept", "1")
            .body(())
            .unwrap();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        to_h2(&mut r, addr, true);
        assert_eq!(r.uri(), "https://api.example:8443/a/b?c=1");
        assert!(r.headers().get("host").is_none());
        to_h1(&mut r);
        assert_eq!(r.version(), http::Version::HTTP_11);
        assert_eq!(r.uri(), "/a/b?c=1");
        assert_eq!(r.headers()["host"], "api.example:8443");
        assert_eq!(r.headers()["x-kept"], "1");
        // Not made for HTTP/2: left alone.
        let mut plain = http::Request::get("/x").body(()).unwrap();
        to_h1(&mut plain);
        assert_eq!(plain.uri(), "/x");
        assert!(plain.headers().is_empty());
    }

    #[test]
    fn the_reason_names_what_the_backend_selected() {
        assert!(not_h2(Some(b"http/1.1")).contains("selected \"http/1.1\" by ALPN, not h2"));
        assert!(not_h2(None).contains("selected no protocol by ALPN"));
    }

    proptest! {
        /// Never a full or unusable connection; never skips an earlier one with room.
        #[test]
        fn choose_is_the_first_with_room(loads in prop::collection::vec((0u32..5, any::<bool>()), 0..8), max in 1u32..5) {
            match choose(loads.clone(), max) {
                Some(i) => {
                    prop_assert!(loads[i].1 && loads[i].0 < max);
                    prop_assert!(loads[..i].iter().all(|(s, u)| !u || *s >= max));
                }
                None => prop_assert!(loads.iter().all(|(s, u)| !u || *s >= max)),
            }
        }
    }
}
