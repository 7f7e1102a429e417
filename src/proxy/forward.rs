//! Forwarding one request: route, select a member, send, retry where safe,
//! stream the response back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use http::header::{HeaderMap, HeaderValue, EXPECT, HOST};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use super::body::{Completion, ProxyBody, RequestBody};
use super::errors::local;
use super::headers::{self, ForwardInfo, X_REQUEST_ID};
use super::router::{self, Router};
use super::upgrade;
use super::upstream::{self, Sender};
use crate::access_log::{self, AccessRecord};
use crate::balance::SelectContext;
use crate::config::{Balance, HashKey, PoolConfig};
use crate::pool::{Member, Pool, PoolSnapshot, QueueError};

/// What a connection handler knows about its client.
#[derive(Debug, Clone, Copy)]
pub struct Downstream {
    pub client: SocketAddr,
    /// `http` or `https`.
    pub proto: &'static str,
}

/// Methods that may be sent twice (RFC 9110 §9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The host a request is for: `Host`, else the URI authority (HTTP/2).
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Handles one downstream request; never fails (errors become responses).
///
/// Routing and the upstream head are done at once, synchronously; the future
/// holds only what forwarding needs across its awaits. hyper copies this
/// future into the connection's slot for every request, so its size is paid
/// per request (4.5 KiB before this split, 1.4 KiB after: `bench/RESULTS.md`).
pub fn handle(
    router: &Router,
    req: Request<Incoming>,
    down: Downstream,
) -> impl Future<Output = Response<ProxyBody>> + Send + 'static {
    let mut prepared = prepare(router, req, down);
    async move {
        match prepared {
            Prepared::Done(resp) => resp,
            // By reference: binding by value would copy the state into a second slot.
            Prepared::Forward(ref mut fwd) => fwd.run().await,
        }
    }
}

/// A request routed and ready to forward, or the response already made.
enum Prepared {
    Forward(Forward),
    Done(Response<ProxyBody>),
}

fn prepare(router: &Router, req: Request<Incoming>, down: Downstream) -> Prepared {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .cloned()
        .unwrap_or_else(super::request_id::generate);
    let mut done = Completion::new(started);
    if access_log::enabled() {
        done.log = Some(Box::new(AccessRecord {
            ts: SystemTime::now(),
            request_id: request_id.clone(),
            client: down.client.ip(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            status: 0,
            bytes: 0,
            duration: Default::default(),
            pool: String::new(),
            backend: None,
            retries: 0,
        }));
    }
    let host = request_host(&req);
    let Some(m) = router.find(host, req.uri().path()) else {
        let why = format!(
            "no route for host {:?} path {:?}",
            host.unwrap_or(""),
            req.uri().path()
        );
        return Prepared::Done(local_done(
            StatusCode::NOT_FOUND,
            &why,
            &request_id,
            done,
            0,
        ));
    };
    let pool = m.pool.clone();
    if let Some(rec) = done.log.as_mut() {
        rec.pool = pool.name.clone();
    }
    done.pool = Some(pool.clone());
    let strip = m
        .route
        .strip_prefix
        .then(|| m.route.path_prefix.clone())
        .flatten();
    let snap = pool.snapshot_arc();
    Prepared::Forward(Forward::new(
        pool,
        snap,
        req,
        strip.as_deref(),
        down,
        request_id,
        done,
    ))
}

/// A local response with the completion attached (logged status, retries, local-code metric).
fn local_done(
    status: StatusCode,
    why: &str,
    id: &HeaderValue,
    mut done: Completion,
    retries: u32,
) -> Response<ProxyBody> {
    if let Some(p) = &done.pool {
        p.metrics.count_local(status.as_u16());
    }
    if let Some(rec) = done.log.as_mut() {
        rec.status = status.as_u16();
        rec.retries = retries;
    }
    local(status, why, id, Some(done))
}

/// Hash of the request's `hash_key` for `balance = "hash"`.
fn hash_of(key: &HashKey, req: &Request<Incoming>, client: SocketAddr) -> Option<u64> {
    let h = crate::balance::hash_key_bytes;
    match key {
        HashKey::ClientIp => Some(match client.ip() {
            std::net::IpAddr::V4(a) => h(&a.octets()),
            std::net::IpAddr::V6(a) => h(&a.octets()),
        }),
        HashKey::Path => Some(h(req.uri().path().as_bytes())),
        HashKey::Header(name) => req.headers().get(name.as_str()).map(|v| h(v.as_bytes())),
        HashKey::Cookie(name) => req
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| k == name)
            .map(|(_, v)| h(v.as_bytes())),
    }
}

/// The upstream request target (origin form): path, prefix stripped if asked, and query.
fn upstream_uri(uri: &Uri, strip: Option<&str>) -> Uri {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    match strip {
        None => uri
            .path_and_query()
            .cloned()
            .map_or_else(|| Uri::from_static("/"), Uri::from),
        Some(prefix) => {
            let (path, query) = match pq.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (pq, None),
            };
            let path = router::strip_prefix(path, prefix);
            let s = match query {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            };
            PathAndQuery::from_maybe_shared(s)
                .map(Uri::from)
                .unwrap_or_else(|_| Uri::from_static("/"))
        }
    }
}

/// The upstream request head, kept so an idempotent request can be replayed.
#[derive(Clone)]
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Head {
    fn into_request(self, body: RequestBody) -> Request<RequestBody> {
        let mut r = Request::new(body);
        *r.method_mut() = self.method;
        *r.uri_mut() = self.uri;
        *r.headers_mut() = self.headers;
        *r.version_mut() = Version::HTTP_11;
        r
    }

    fn from_request(r: Request<RequestBody>) -> (Head, RequestBody) {
        let (p, b) = r.into_parts();
        (
            Head {
                method: p.method,
                uri: p.uri,
                headers: p.headers,
            },
            b,
        )
    }
}

/// How one attempt ended.
enum Attempt {
    Response(Response<Incoming>, Sender),
    /// Failed before anything was sent: the request comes back.
    NotSent(Request<RequestBody>, String),
    /// Failed after sending.
    Sent(String),
    TimedOut,
}

/// What selection found.
enum Pick {
    /// This member may take the request.
    Member(usize),
    /// Members are routable, but every one is at `max_connections_per_backend`.
    Busy,
    /// No member is routable.
    Nothing,
}

/// The state of one request across its attempts.
struct Forward {
    pool: Arc<Pool>,
    /// Re-read while the request waits in the queue.
    snap: Arc<PoolSnapshot>,
    ctx: SelectContext,
    head: Option<Head>,
    body: Option<RequestBody>,
    on_upgrade: Option<OnUpgrade>,
    replayable: bool,
    request_id: HeaderValue,
    done: Completion,
    /// Members tried already (by address: the snapshot may change while queued).
    tried: Vec<SocketAddr>,
    retries: u32,
    /// A retry was wanted but the pool's retry budget had no room.
    over_budget: bool,
    /// How long the request was held for a cold start, if it was.
    cold_start: Option<Duration>,
}

impl Forward {
    fn new(
        pool: Arc<Pool>,
        snap: Arc<PoolSnapshot>,
        mut req: Request<Incoming>,
        strip: Option<&str>,
        down: Downstream,
        request_id: HeaderValue,
        done: Completion,
    ) -> Forward {
        let cfg = &snap.config;
        let ctx = SelectContext {
            hash: (cfg.balance == Balance::Hash)
                .then(|| hash_of(&cfg.hash_key, &req, down.client))
                .flatten(),
        };
        let is_upgrade = req.version() <= Version::HTTP_11 && headers::is_upgrade(req.headers());
        let on_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut req));
        let body_empty = hyper::body::Body::is_end_stream(req.body());
        let replayable = idempotent(req.method()) && body_empty && !is_upgrade;
        let (parts, body) = req.into_parts();
        let mut h = parts.headers;
        let host = h.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        headers::strip_hop_by_hop(&mut h, is_upgrade);
        h.remove(EXPECT);
        headers::add_forwarded(
            &mut h,
            &ForwardInfo {
                client_ip: down.client.ip(),
                proto: down.proto,
                host: host.as_ref(),
                version: parts.version,
                request_id: &request_id,
            },
        );
        if let Some(v) = host {
            h.insert(HOST, v);
        }
        let body = if body_empty {
            RequestBody::Empty
        } else {
            RequestBody::Stream { body }
        };
        Forward {
            pool,
            snap,
            ctx,
            head: Some(Head {
                method: parts.method,
                uri: upstream_uri(&parts.uri, strip),
                headers: h,
            }),
            body: Some(body),
            on_upgrade,
            replayable,
            request_id,
            done,
            tried: Vec::new(),
            retries: 0,
            over_budget: false,
            cold_start: None,
        }
    }

    /// Picks a member not tried yet, else any eligible one (below its connection limit).
    fn pick(&self) -> Pick {
        let snap = &*self.snap;
        let limit = u64::from(snap.config.max_connections_per_backend);
        let routable = |i: usize, skip_tried: bool| {
            let m = &snap.members[i];
            m.state.routable() && !(skip_tried && self.tried.contains(&m.address))
        };
        let below = |i: usize| limit == 0 || snap.members[i].stats.load.inflight() < limit;
        let sel = &snap.selector;
        let pass = |skip_tried: bool| {
            sel.select(snap, &self.ctx, &|i| routable(i, skip_tried) && below(i))
        };
        let found = pass(true).or_else(|| (!self.tried.is_empty()).then(|| pass(false)).flatten());
        match found {
            Some(i) => Pick::Member(i),
            None if (0..snap.members.len()).any(|i| routable(i, false)) => Pick::Busy,
            None => Pick::Nothing,
        }
    }

    /// Picks a member and starts the request on it (its in-flight count taken);
    /// `None` = every routable member is at its limit; `Err` = none is routable.
    fn take(&self) -> Result<Option<usize>, String> {
        let limit = u64::from(self.snap.config.max_connections_per_backend);
        // Another thread may take the last slot between look and take: look again.
        for _ in 0..8 {
            match self.pick() {
                Pick::Member(i) => {
                    if self.snap.members[i].stats.load.try_begin_raw(limit) {
                        return Ok(Some(i));
                    }
                }
                Pick::Busy => return Ok(None),
                Pick::Nothing => {
                    return Err(format!(
                        "no healthy member available in pool {}",
                        self.pool.name
                    ))
                }
            }
        }
        Ok(None)
    }

    /// A member for the next attempt; waits in the pool's queue (FIFO, up to
    /// `queue_timeout`, at most `max_queue` waiting) while all are at their limit.
    async fn acquire(&mut self) -> Result<usize, String> {
        let mut taken = self.take();
        if taken.is_err() && self.pool.first_checks_pending() {
            // drover has not looked yet: wait for the first checks, not 503.
            let pool = self.pool.clone();
            taken = Box::pin(pool.await_first_checks(|| {
                self.snap = pool.snapshot_arc();
                self.take()
            }))
            .await;
        }
        let taken = match taken {
            Err(why) => match self.pool.hold_timeout() {
                Some(limit) => Box::pin(self.hold(limit, why)).await?,
                None => return Err(why),
            },
            Ok(t) => t,
        };
        if let Some(i) = taken {
            return Ok(i);
        }
        let pool = self.pool.clone();
        let (max, timeout) = (self.snap.config.max_queue, self.snap.config.queue_timeout);
        let waited = Box::pin(pool.queue.wait(max, timeout, || {
            self.snap = pool.snapshot_arc();
            self.take().transpose()
        }))
        .await;
        match waited {
            Ok(r) => r,
            Err(QueueError::Full(n)) => Err(format!(
                "every member of pool {} is at max_connections_per_backend and the queue is full ({n} waiting)",
                pool.name
            )),
            Err(QueueError::TimedOut(t)) => Err(format!(
                "no member of pool {} was free within queue_timeout ({t:?})",
                pool.name
            )),
        }
    }

    /// No member is routable in a pool with managed instances (scaled to zero,
    /// or all starting): holds the request up to `limit` while an instance
    /// starts, and takes it the moment one passes its health check.
    async fn hold(&mut self, limit: Duration, why: String) -> Result<Option<usize>, String> {
        let pool = self.pool.clone();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        pool.held.fetch_add(1, Ordering::Relaxed);
        pool.demand.notify_one();
        let got = loop {
            let swapped = pool.swapped.notified();
            tokio::pin!(swapped);
            swapped.as_mut().enable();
            self.snap = pool.snapshot_arc();
            match self.take() {
                Ok(t) => break Ok(t),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    break Err(format!(
                        "{why}; no instance became healthy within {limit:?}"
                    ))
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = swapped => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        };
        pool.held.fetch_sub(1, Ordering::Relaxed);
        if got.is_ok() {
            let waited = started.elapsed();
            pool.metrics.cold_start.observe(waited);
            self.cold_start = Some(waited);
        }
        got
    }

    fn fail(&mut self, status: StatusCode, why: &str) -> Response<ProxyBody> {
        let why = if self.over_budget {
            format!(
                "{why} (not retried: retry budget of pool {} exhausted)",
                self.pool.name
            )
        } else {
            why.to_string()
        };
        let done = self.take_done();
        local_done(status, &why, &self.request_id, done, self.retries)
    }

    /// Whether another attempt is allowed (by `retries` and the pool's retry budget); counts it.
    fn retry(&mut self) -> bool {
        if self.retries >= self.snap.config.retries {
            return false;
        }
        if !self.pool.budget.try_retry() {
            self.over_budget = true;
            return false;
        }
        self.retries += 1;
        self.pool.metrics.retries.fetch_add(1, Ordering::Relaxed);
        // Members may have changed since the request arrived (an instance
        // replaced, one just healthy): retry against the current set.
        self.snap = self.pool.snapshot_arc();
        true
    }

    /// Books a failure of the connection to `member`: ends its in-flight
    /// request, counts it, and lets passive ejection judge it.
    fn failed(&mut self, member: &Member, why: &str) {
        self.pool.end_request(&member.stats);
        self.tried.push(member.address);
        let n = member.stats.count_failure();
        crate::health::passive::on_failure(&self.pool, member, n, why);
    }

    /// The completion, moved out (into the response body); the Forward keeps
    /// an empty one, which does nothing when dropped.
    fn take_done(&mut self) -> Completion {
        let started = self.done.started;
        std::mem::replace(&mut self.done, Completion::new(started))
    }

    async fn run(&mut self) -> Response<ProxyBody> {
        self.pool.budget.request();
        loop {
            let idx = match self.acquire().await {
                Ok(i) => i,
                Err(why) => return self.fail(StatusCode::SERVICE_UNAVAILABLE, &why),
            };
            let snap = self.snap.clone();
            let member = &snap.members[idx];
            let addr = member.address;
            let t0 = Instant::now();
            let request = self.next_request();
            // If the client goes away while we wait, the in-flight count must still end.
            let guard = InflightGuard {
                pool: &self.pool,
                stats: Some(&member.stats),
            };
            let attempt = attempt(member, request, &snap.config).await;
            guard.disarm();
            match attempt {
                Attempt::Response(resp, sender) => {
                    let code = resp.status().as_u16();
                    member.stats.count_status(code);
                    if matches!(code, 502..=504) {
                        let n = member.stats.count_failure();
                        let why = format!("status {code} from the backend");
                        crate::health::passive::on_failure(&self.pool, member, n, &why);
                    } else {
                        member
                            .stats
                            .consecutive_failures
                            .store(0, Ordering::Relaxed);
                    }
                    if matches!(code, 502 | 503) && self.replayable && self.retry() {
                        self.pool.end_request(&member.stats);
                        self.tried.push(addr);
                        // Put the empty body back for the replay.
                        self.body = Some(RequestBody::Empty);
                        continue;
                    }
                    member.stats.load.observe(t0.elapsed());
                    return self.respond(resp, sender, member);
                }
                Attempt::NotSent(req, why) => {
                    self.failed(member, &why);
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend connect failed");
                    let (head, body) = Head::from_request(req);
                    self.head = Some(head);
                    self.body = Some(body);
                    if !self.retry() {
                        return self.fail(StatusCode::BAD_GATEWAY, &why);
                    }
                }
                Attempt::Sent(why) => {
                    self.failed(member, &why);
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend request failed");
                    if !(self.replayable && self.retry()) {
                        return self.fail(StatusCode::BAD_GATEWAY, &why);
                    }
                    self.body = Some(RequestBody::Empty);
                }
                Attempt::TimedOut => {
                    let why = format!(
                        "backend {addr} did not answer within {:?}",
                        self.snap.config.request_timeout
                    );
                    self.failed(member, &why);
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend timed out");
                    return self.fail(StatusCode::GATEWAY_TIMEOUT, &why);
                }
            }
        }
    }

    /// The upstream request for the next attempt. The head is kept when a
    /// replay may follow, otherwise moved.
    fn next_request(&mut self) -> Request<RequestBody> {
        let body = self.body.take().expect("body present between attempts");
        let head = if self.replayable && self.retries < self.snap.config.retries {
            self.head.clone().expect("head present")
        } else {
            self.head.take().expect("head present")
        };
        head.into_request(body)
    }

    /// Turns the backend's response into the downstream response.
    fn respond(
        &mut self,
        mut resp: Response<Incoming>,
        sender: Sender,
        member: &Member,
    ) -> Response<ProxyBody> {
        let status = resp.status();
        self.done.member = Some(member.stats.clone());
        if let Some(rec) = self.done.log.as_mut() {
            rec.status = status.as_u16();
            rec.backend = Some(member.address);
            rec.retries = self.retries;
        }
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        headers::clean_response(resp.headers_mut(), switching && self.on_upgrade.is_some());
        resp.headers_mut()
            .insert(&X_REQUEST_ID, self.request_id.clone());
        if let Some(waited) = self.cold_start {
            if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", waited.as_secs_f64())) {
                resp.headers_mut().insert("x-drover-cold-start", v);
            }
        }
        if switching {
            if let Some(client) = self.on_upgrade.take() {
                let backend = hyper::upgrade::on(&mut resp);
                upgrade::tunnel(client, backend, self.take_done(), member.address);
                return resp.map(|_| ProxyBody::empty());
            }
        }
        let conn = Some((member.address, sender));
        let done = self.take_done();
        resp.map(|b| ProxyBody::upstream(b, conn, done))
    }
}

/// One attempt on `member`: connect (or reuse), send, wait for the response head.
/// A free function, so the request's state is not borrowed while it waits
/// (the in-flight guard borrows the pool meanwhile).
async fn attempt(member: &Member, request: Request<RequestBody>, cfg: &PoolConfig) -> Attempt {
    let (addr, connect_timeout, request_timeout) =
        (member.address, cfg.connect_timeout, cfg.request_timeout);
    let (sender, reused) = match upstream::checkout(addr, connect_timeout).await {
        Ok(s) => s,
        Err(e) => return Attempt::NotSent(request, format!("backend {addr}: {e}")),
    };
    match send(sender, request, request_timeout, addr).await {
        // A pooled connection closed under us before the request went out:
        // try a fresh connection to the same member (not a retry). Boxed:
        // rare, and it would double this future's size.
        Attempt::NotSent(r, _) if reused => {
            Box::pin(send_fresh(addr, r, connect_timeout, request_timeout)).await
        }
        a => a,
    }
}

/// Sends `request` on `sender` and waits up to `timeout` for the response head.
/// Not an `async fn`: the request is handed over at once, so the future does
/// not also keep a slot for it.
fn send(
    mut sender: Sender,
    request: Request<RequestBody>,
    timeout: Duration,
    addr: SocketAddr,
) -> impl Future<Output = Attempt> {
    // `map`, not `async move { response.await }`: awaiting a captured future
    // would give it a second slot in the state machine.
    let response = tokio::time::timeout(timeout, sender.try_send_request(request));
    response.map(move |r| match r {
        Err(_) => Attempt::TimedOut,
        Ok(Ok(resp)) => Attempt::Response(resp, sender),
        Ok(Err(mut e)) => match e.take_message() {
            Some(r) => Attempt::NotSent(r, format!("backend {addr}: {}", e.into_error())),
            None => Attempt::Sent(format!("backend {addr}: {}", e.into_error())),
        },
    })
}

/// [`send`] on a new connection to `addr`.
async fn send_fresh(
    addr: SocketAddr,
    request: Request<RequestBody>,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Attempt {
    match upstream::connect(addr, connect_timeout).await {
        Ok(s) => send(s, request, request_timeout, addr).await,
        Err(ce) => Attempt::NotSent(request, format!("backend {addr}: {ce}")),
    }
}

/// Ends a member's in-flight request if the request future is dropped
/// mid-attempt (client gone); disarmed once the attempt returns.
struct InflightGuard<'a> {
    pool: &'a Pool,
    stats: Option<&'a crate::pool::MemberStats>,
}

impl InflightGuard<'_> {
    fn disarm(mut self) {
        self.stats = None;
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.stats.take() {
            self.pool.end_request(s);
        }
    }
}
