//! Forwarding one request: route, select a member, send, retry where safe,
//! stream the response back.

use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderValue, EXPECT, HOST};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;

use super::attempt::{attempt, Attempt};
use super::body::{Completion, ProxyBody, RequestBody};
use super::errors::{self, Cause, ProxyError};
use super::grpc;
use super::h1::ClientIn;
use super::headers::{self, ForwardInfo, X_REQUEST_ID};
use super::prepare::{local_done, Downstream};
use super::route_rules::{self, Fill};
use super::router::{upstream_uri_rewritten, RouteOpts};
use super::trace_context;
use super::upgrade;
use crate::balance::SelectContext;
use crate::config::{Balance, HashKey, HeaderRules};
use crate::pool::{Inflight, Member, Pool, PoolSnapshot, QueueError};
use crate::upstream::body::Capture;
use crate::upstream::http1::{self, Conn, Pooled};
use crate::upstream::response::UpBody;

/// Methods that may be sent twice (RFC 9110 §9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Hash of the request's `hash_key` for `balance = "hash"`.
fn hash_of(key: &HashKey, req: &Request<ClientIn>, client: SocketAddr) -> Option<u64> {
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
pub(super) struct Forward {
    pool: Arc<Pool>,
    /// Re-read while the request waits in the queue.
    snap: Arc<PoolSnapshot>,
    ctx: SelectContext,
    /// The member id in the request's sticky cookie (pools with `sticky`).
    sticky: Option<u64>,
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
    /// The warm start that served a held request (`warm start ID`), if one did.
    warm_start: Option<String>,
    /// Held after a connection to its member failed (see [`Forward::hold_after_connect`]):
    /// selection skips the members tried, never falling back to them.
    untried_only: bool,
    /// How long an attempt waits for the response head: `request_timeout`
    /// (the route's, else the pool's), or less for a gRPC call ([`Self::grpc_deadline`]).
    timeout: Duration,
    /// A gRPC call's deadline (arrival + its `grpc-timeout`): each attempt
    /// waits and tells the backend only what is left of it ([`grpc::remaining`]).
    grpc_deadline: Option<Instant>,
    /// A gRPC call to a method in `grpc_retry_methods`: the copy of its body
    /// that lets it be sent again after UNAVAILABLE.
    grpc_replay: Option<Arc<Mutex<Capture>>>,
    /// The route's `retries`, over the pool's.
    route_retries: Option<u32>,
    /// The route's `response_headers`, with what their placeholders need.
    response_rules: Option<Box<ResponseRules>>,
}

/// A route's `response_headers` and the request values they may name.
struct ResponseRules {
    rules: Arc<HeaderRules>,
    client_ip: std::net::IpAddr,
    host: Option<HeaderValue>,
}

/// Counts a request held for a cold start in `Pool::held` while it lives.
struct Held<'a>(&'a AtomicU32);

impl<'a> Held<'a> {
    pub(super) fn new(n: &'a AtomicU32) -> Held<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Held(n)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Forward {
    pub(super) fn new(
        pool: Arc<Pool>,
        mut req: Request<ClientIn>,
        opts: RouteOpts<'_>,
        down: Downstream,
        request_id: HeaderValue,
        done: Completion,
        body_read_timeout: Duration,
    ) -> Forward {
        let snap = pool.snapshot_arc();
        let cfg = &snap.config;
        let ctx = SelectContext {
            hash: (cfg.balance == Balance::Hash)
                .then(|| hash_of(&cfg.hash_key, &req, down.client))
                .flatten(),
            now: snap.slow_start_now(),
        };
        // The route's request_timeout over the pool's; a gRPC deadline may shorten it.
        let timeout = opts.request_timeout.unwrap_or(cfg.request_timeout);
        let grpc_deadline = done
            .grpc
            .then(|| grpc::client_deadline(req.headers(), done.started))
            .flatten();
        let sticky = cfg
            .policy
            .sticky
            .as_ref()
            .and_then(|s| super::sticky::from_request(req.headers(), &s.cookie));
        let is_upgrade = req.version() <= Version::HTTP_11 && headers::is_upgrade(req.headers());
        let on_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut req));
        let body_empty = http_body::Body::is_end_stream(req.body());
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
        let fill = Fill {
            client_ip: down.client.ip(),
            request_id: &request_id,
            host: host.as_ref(),
        };
        if let Some(hop) = &done.trace {
            trace_context::write(&mut h, hop);
        }
        if let Some(v) = &host {
            h.insert(HOST, v.clone());
        }
        if let Some(rules) = opts.request_headers {
            route_rules::apply(rules, &mut h, &fill);
        }
        let response_rules = opts.response_headers.map(|rules| {
            Box::new(ResponseRules {
                rules,
                client_ip: down.client.ip(),
                host: host.clone(),
            })
        });
        let retry_listed =
            done.grpc && grpc::retry_allowed(parts.uri.path(), &cfg.protocol.grpc_retry_methods);
        let mut grpc_replay = None;
        let body = match body {
            _ if body_empty => RequestBody::Empty,
            // Read whole with its head (native HTTP/1 or HTTP/2 server).
            ClientIn::Full(b) => {
                if retry_listed {
                    grpc_replay = Some(Arc::new(Mutex::new(Capture::whole(b.clone()))));
                }
                RequestBody::Replay([b].into())
            }
            body if retry_listed => {
                let (b, capture) = RequestBody::client_captured(body, body_read_timeout);
                grpc_replay = Some(capture);
                b
            }
            body => RequestBody::client(body, body_read_timeout),
        };
        Forward {
            pool,
            snap,
            ctx,
            sticky,
            head: Some(Head {
                method: parts.method,
                uri: upstream_uri_rewritten(&parts.uri, opts.rewrite),
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
            warm_start: None,
            untried_only: false,
            timeout,
            grpc_deadline,
            grpc_replay,
            route_retries: opts.retries,
            response_rules,
        }
    }

    /// `retries` of the route, else of the pool.
    fn max_retries(&self) -> u32 {
        self.route_retries.unwrap_or(self.snap.config.retries)
    }

    /// Picks a member not tried yet, else any eligible one (below its connection
    /// limit); only one not tried while `untried_only`.
    fn pick(&self) -> Pick {
        let snap = &*self.snap;
        let limit = u64::from(snap.config.max_connections_per_backend);
        let routable = |i: usize, skip_tried: bool| {
            let m = &snap.members[i];
            m.state.routable() && !(skip_tried && self.tried.contains(&m.address))
        };
        let below = |i: usize| limit == 0 || snap.members[i].stats.load.inflight() < limit;
        // A sticky session's member first (draining ones too, for a while).
        if let Some(i) = self
            .sticky
            .and_then(|id| super::sticky::preferred(snap, id))
        {
            if !self.tried.contains(&snap.members[i].address) && below(i) {
                return Pick::Member(i);
            }
        }
        let sel = &snap.selector;
        let pass = |skip_tried: bool| {
            sel.select(snap, &self.ctx, &|i| routable(i, skip_tried) && below(i))
        };
        let fall_back = !self.tried.is_empty() && !self.untried_only;
        let found = pass(true).or_else(|| fall_back.then(|| pass(false)).flatten());
        match found {
            Some(i) => Pick::Member(i),
            None if (0..snap.members.len()).any(|i| routable(i, self.untried_only)) => Pick::Busy,
            None => Pick::Nothing,
        }
    }

    /// Picks a member and starts the request on it (its in-flight token);
    /// `None` = every routable member is at its limit; `Err` = none is routable.
    fn take(&self) -> Result<Option<(usize, Inflight)>, ProxyError> {
        let limit = u64::from(self.snap.config.max_connections_per_backend);
        // Another thread may take the last slot between look and take: look again.
        for _ in 0..8 {
            match self.pick() {
                Pick::Member(i) => {
                    if let Some(t) = self.snap.members[i].stats.try_begin(limit) {
                        return Ok(Some((i, t)));
                    }
                }
                Pick::Busy => return Ok(None),
                Pick::Nothing => {
                    return Err(ProxyError::new(
                        Cause::NoMember,
                        format!("no healthy member available in pool {}", self.pool.name),
                    ))
                }
            }
        }
        Ok(None)
    }

    /// A member for the next attempt; waits in the pool's queue (FIFO, up to
    /// `queue_timeout`, at most `max_queue` waiting) while all are at their limit.
    async fn acquire(&mut self) -> Result<(usize, Inflight), ProxyError> {
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
            Err(e) => match self.pool.hold_timeout() {
                Some(limit) => Box::pin(self.hold(limit, e.detail)).await?,
                None => return Err(e),
            },
            Ok(t) => t,
        };
        if let Some(t) = taken {
            return Ok(t);
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
            Err(QueueError::Full(n)) => Err(ProxyError::new(
                Cause::Limit,
                format!(
                    "every member of pool {} is at max_connections_per_backend and the queue is full ({n} waiting)",
                    pool.name
                ),
            )),
            Err(QueueError::TimedOut(t)) => Err(ProxyError::new(
                Cause::Limit,
                format!(
                    "no member of pool {} was free within queue_timeout ({t:?})",
                    pool.name
                ),
            )),
        }
    }

    /// No member is routable in a pool with managed instances (scaled to zero,
    /// or all starting): holds the request up to `limit` while an instance
    /// starts, and takes it the moment one passes its health check. A held
    /// request takes a place in the pool's queue: beyond `max_queue` waiting,
    /// it gets 503 at once.
    async fn hold(
        &mut self,
        limit: Duration,
        why: String,
    ) -> Result<Option<(usize, Inflight)>, ProxyError> {
        let pool = self.pool.clone();
        let max = self.snap.config.max_queue;
        let _slot = pool.queue.enter(max).map_err(|_| {
            ProxyError::new(
                Cause::Limit,
                format!(
                    "{why}; the queue of pool {} is full ({max} waiting, max_queue) while an instance starts",
                    pool.name
                ),
            )
        })?;
        let _held = Held::new(&pool.held);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + limit;
        pool.demand.notify_one();
        let got = loop {
            let swapped = pool.swapped.notified();
            tokio::pin!(swapped);
            swapped.as_mut().enable();
            self.snap = pool.snapshot_arc();
            if self.untried_only {
                self.forget_gone();
            }
            match self.take() {
                Ok(t) => break Ok(t),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    break Err(ProxyError::new(
                        Cause::ColdStart,
                        format!("{why}; no instance became healthy within {limit:?}"),
                    ))
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = swapped => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        };
        if let Ok(Some((i, _))) = &got {
            let warm = crate::pool::WARM_START;
            self.warm_start = self
                .snap
                .members
                .get(*i)
                .and_then(|m| m.reason.split(':').next())
                .filter(|r| r.starts_with(warm))
                .map(str::to_string);
        }
        if got.is_ok() {
            let waited = started.elapsed();
            pool.metrics.cold_start.observe(waited);
            self.cold_start = Some(waited);
        }
        self.untried_only = false;
        got
    }

    /// After a failed connection (the request was not sent, so it may wait
    /// whatever its method): in a pool with managed instances where no member
    /// that was not tried is routable — its only instance died and is not
    /// removed yet — holds the request (as [`Forward::hold`]; not a retry; a
    /// request held once is not held again) for a member that was not tried,
    /// instead of failing it on the dead one. `false`: the request goes on as before.
    fn hold_after_connect(&mut self) -> bool {
        if self.cold_start.is_some() || self.head.is_none() || self.pool.hold_timeout().is_none() {
            return false;
        }
        self.snap = self.pool.snapshot_arc();
        self.untried_only = true;
        if matches!(self.pick(), Pick::Nothing) {
            return true;
        }
        self.untried_only = false;
        false
    }

    /// Forgets the tried members that are gone or no longer routable: one
    /// routable again at the same address is a new instance (the port reused)
    /// or one that passed its checks since, and may be tried.
    fn forget_gone(&mut self) {
        let snap = &*self.snap;
        self.tried.retain(|a| {
            snap.position(*a)
                .and_then(|i| snap.members.get(i))
                .is_some_and(|m| m.state.routable())
        });
    }

    fn fail(&mut self, mut err: ProxyError) -> Response<ProxyBody> {
        if self.over_budget {
            err.detail = format!(
                "{} (not retried: retry budget of pool {} exhausted)",
                err.detail, self.pool.name
            );
        }
        let done = self.take_done();
        local_done(&err, &self.request_id, done, self.retries)
    }

    /// Whether another attempt is allowed (by `retries` and the pool's retry budget); counts it.
    fn retry(&mut self) -> bool {
        if self.retries >= self.max_retries() {
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

    /// Books a failure of `member` (its own, as the cause decided): counts it
    /// and lets passive ejection judge it.
    fn blame(&self, member: &Member, why: &str) {
        let n = member.stats.count_failure();
        crate::pool::ejection::on_failure(&self.pool, member.address, &member.stats, n, why);
    }

    /// The completion, moved out (into the response body); the Forward keeps
    /// an empty one, which does nothing when dropped.
    fn take_done(&mut self) -> Completion {
        let started = self.done.started;
        std::mem::replace(&mut self.done, Completion::new(started))
    }

    pub(super) async fn run(&mut self) -> Response<ProxyBody> {
        self.pool.budget.request();
        loop {
            // The token ends the member's in-flight request wherever it is
            // dropped: a failed attempt, a retry, or this future cancelled
            // (the client went away); on success it moves into the response.
            let (idx, token) = match self.acquire().await {
                Ok(t) => t,
                Err(e) => return self.fail(e),
            };
            let snap = self.snap.clone();
            let member = &snap.members[idx];
            let addr = member.address;
            let t0 = Instant::now();
            let timeout = match self.grpc_deadline {
                None => self.timeout,
                Some(at) => match grpc::remaining(at, t0, self.timeout) {
                    Some(left) => left,
                    None => return self.fail(grpc::deadline_passed(self.retries)),
                },
            };
            let mut request = self.next_request();
            if self.grpc_deadline.is_some() {
                let h = request.headers_mut();
                h.insert(grpc::GRPC_TIMEOUT, grpc::format_timeout(timeout));
            }
            match attempt(member, request, &snap.config, timeout).await {
                Attempt::Response(mut resp, conn, sent) => {
                    // A request the client only borrowed: its head serves a
                    // retry, or (answered) its map serves another request.
                    if let Some(req) = sent {
                        let (head, _) = Head::from_request(req);
                        self.head = Some(head);
                    }
                    let code = resp.status().as_u16();
                    member.stats.count_status(code);
                    // A response that does not blame the member at its head is
                    // judged when its body ends (the completion), not here.
                    if errors::response_blames_backend(code) {
                        self.blame(member, &format!("status {code} from the backend"));
                    }
                    if self.done.grpc && grpc::head_unavailable(resp.headers()) {
                        if let Some(body) = self.grpc_replay() {
                            if self.retry() {
                                drop(token);
                                self.tried.push(addr);
                                self.body = Some(body);
                                continue;
                            }
                        }
                    }
                    if errors::response_retryable(code, self.replayable) && self.retry() {
                        drop(token);
                        self.tried.push(addr);
                        // Put the empty body back for the replay.
                        self.body = Some(RequestBody::Empty);
                        continue;
                    }
                    // One clock read for both latencies (member, response head).
                    let now = Instant::now();
                    member.stats.load.observe(now.saturating_duration_since(t0));
                    if let Some(head) = self.head.take() {
                        crate::upstream::maps::give(head.headers);
                    }
                    if let Some(c) = super::sticky::on_chosen(&snap, self.sticky, idx) {
                        resp.headers_mut().append(http::header::SET_COOKIE, c);
                    }
                    return self.respond(resp, conn, member, token, now);
                }
                Attempt::Failed(err, returned) => {
                    drop(token);
                    if err.cause.blames_backend() {
                        self.blame(member, &err.detail);
                        self.tried.push(addr);
                        tracing::warn!(pool = %self.pool.name, backend = %addr, cause = err.cause.label(), reason = %err.detail, "backend failed");
                    } else {
                        tracing::debug!(pool = %self.pool.name, backend = %addr, cause = err.cause.label(), reason = %err.detail, "request failed");
                    }
                    match returned {
                        Some(req) => {
                            let (head, body) = Head::from_request(req);
                            self.head = Some(head);
                            self.body = Some(body);
                        }
                        None => self.body = Some(RequestBody::Empty),
                    }
                    if err.cause == Cause::Connect && self.hold_after_connect() {
                        continue;
                    }
                    // A listed gRPC method lost after it was sent: UNAVAILABLE to
                    // its client, so it may be sent again, like a status 14.
                    if err.cause == Cause::Upstream {
                        if let Some(body) = self.grpc_replay() {
                            if self.retry() {
                                self.body = Some(body);
                                continue;
                            }
                        }
                    }
                    if !(err.cause.retryable(self.replayable) && self.retry()) {
                        return self.fail(err);
                    }
                }
            }
        }
    }

    /// The body of a listed gRPC call again, when it was read whole and kept
    /// (within [`crate::upstream::body::MAX_CAPTURE`]) and its head is still here.
    fn grpc_replay(&self) -> Option<RequestBody> {
        let c = self.grpc_replay.as_ref()?;
        self.head.as_ref()?;
        c.lock().replay()
    }

    /// The upstream request for the next attempt. The head is kept when a
    /// replay may follow, otherwise moved.
    fn next_request(&mut self) -> Request<RequestBody> {
        let body = self.body.take().expect("body present between attempts");
        let may_replay = self.replayable || self.grpc_replay.is_some();
        // The attempt gives the request back (native client, h2 without a body).
        let given_back = self.head.as_ref().is_some_and(|h| {
            super::attempt::gives_back(&self.snap.config, &h.method, &h.headers, &body)
        });
        let head = if may_replay && self.retries < self.max_retries() && !given_back {
            self.head.clone().expect("head present")
        } else {
            self.head.take().expect("head present")
        };
        head.into_request(body)
    }

    /// Turns the backend's response into the downstream response; the
    /// in-flight token goes with it (ended when the response ends).
    fn respond(
        &mut self,
        mut resp: Response<UpBody>,
        conn: Option<Conn>,
        member: &Member,
        token: Inflight,
        now: Instant,
    ) -> Response<ProxyBody> {
        let status = resp.status();
        self.done.inflight = Some(token);
        self.done.answered = true;
        if let Some(rec) = self.done.log.as_mut() {
            rec.status = status.as_u16();
            rec.backend = Some(member.address);
            rec.retries = self.retries;
        }
        self.pool
            .metrics
            .response
            .observe(now.saturating_duration_since(self.done.started));
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        let version = resp.version();
        headers::clean_response(resp.headers_mut(), switching && self.on_upgrade.is_some());
        headers::add_via(resp.headers_mut(), version);
        resp.headers_mut()
            .insert(&X_REQUEST_ID, self.request_id.clone());
        if let Some(r) = &self.response_rules {
            let fill = Fill {
                client_ip: r.client_ip,
                request_id: &self.request_id,
                host: r.host.as_ref(),
            };
            route_rules::apply(&r.rules, resp.headers_mut(), &fill);
        }
        if let Some(waited) = self.cold_start {
            // Seconds held, and `; warm start ID` when a warm instance served it.
            let v = match &self.warm_start {
                Some(w) => format!("{:.3}; {w}", waited.as_secs_f64()),
                None => format!("{:.3}", waited.as_secs_f64()),
            };
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert("x-drover-cold-start", v);
            }
        }
        if switching {
            if let Some(client) = self.on_upgrade.take() {
                // The exchange is over: the tunnel is established.
                member
                    .stats
                    .consecutive_failures
                    .store(0, Ordering::Relaxed);
                let backend = hyper::upgrade::on(&mut resp);
                upgrade::tunnel(client, backend, self.take_done(), member.address);
                return resp.map(|_| ProxyBody::empty());
            }
        }
        let conn = conn.map(|conn| Pooled {
            key: (
                member.address,
                http1::tls_id(self.snap.config.tls.as_deref()),
            ),
            conn,
            idle_for: self.snap.config.upstream_idle_timeout,
        });
        let mut done = self.take_done();
        done.judge = !errors::response_blames_backend(status.as_u16());
        resp.map(|b| ProxyBody::upstream(b, conn, done))
    }
}
