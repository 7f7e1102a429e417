//! Forwarding one request: route, select a member, send, retry where safe,
//! stream the response back.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

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
use crate::config::{Balance, HashKey};
use crate::pool::{Member, Pool, PoolSnapshot};

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
pub async fn handle(
    router: &Router,
    req: Request<Incoming>,
    down: Downstream,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .cloned()
        .unwrap_or_else(super::request_id::generate);
    let mut done = Completion::new(started);
    if access_log::enabled() {
        done.log = Some(AccessRecord {
            ts: SystemTime::now(),
            request_id: request_id.to_str().unwrap_or("").to_string(),
            client: down.client.ip(),
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string()),
            status: 0,
            bytes: 0,
            duration: Default::default(),
            pool: String::new(),
            backend: None,
            retries: 0,
        });
    }
    let host = request_host(&req);
    let Some(m) = router.find(host, req.uri().path()) else {
        let why = format!(
            "no route for host {:?} path {:?}",
            host.unwrap_or(""),
            req.uri().path()
        );
        return local_done(StatusCode::NOT_FOUND, &why, &request_id, done, 0);
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
    Forward::new(&pool, &snap, req, strip.as_deref(), down, request_id, done)
        .run()
        .await
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

/// The state of one request across its attempts.
struct Forward<'a> {
    pool: &'a Arc<Pool>,
    snap: &'a PoolSnapshot,
    ctx: SelectContext,
    head: Option<Head>,
    body: Option<RequestBody>,
    on_upgrade: Option<OnUpgrade>,
    replayable: bool,
    request_id: HeaderValue,
    done: Completion,
    tried: Vec<usize>,
    retries: u32,
}

impl<'a> Forward<'a> {
    fn new(
        pool: &'a Arc<Pool>,
        snap: &'a PoolSnapshot,
        mut req: Request<Incoming>,
        strip: Option<&str>,
        down: Downstream,
        request_id: HeaderValue,
        done: Completion,
    ) -> Forward<'a> {
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
                host: host.as_ref().and_then(|v| v.to_str().ok()),
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
        }
    }

    /// Picks a member not tried yet, else any eligible one.
    fn pick(&self) -> Option<usize> {
        let cfg = &self.snap.config;
        let eligible = |i: usize, skip_tried: bool| {
            let m = &self.snap.members[i];
            m.state.routable()
                && !(skip_tried && self.tried.contains(&i))
                && (cfg.max_connections_per_backend == 0
                    || m.stats.load.inflight() < u64::from(cfg.max_connections_per_backend))
        };
        let sel = &self.snap.selector;
        sel.select(self.snap, &self.ctx, &|i| eligible(i, true))
            .or_else(|| {
                if self.tried.is_empty() {
                    None
                } else {
                    sel.select(self.snap, &self.ctx, &|i| eligible(i, false))
                }
            })
    }

    fn fail(self, status: StatusCode, why: &str) -> Response<ProxyBody> {
        local_done(status, why, &self.request_id, self.done, self.retries)
    }

    /// Whether another attempt is allowed; counts it.
    fn retry(&mut self) -> bool {
        if self.retries >= self.snap.config.retries {
            return false;
        }
        self.retries += 1;
        self.pool.metrics.retries.fetch_add(1, Ordering::Relaxed);
        true
    }

    async fn run(mut self) -> Response<ProxyBody> {
        loop {
            let Some(idx) = self.pick() else {
                let why = format!("no healthy member available in pool {}", self.pool.name);
                return self.fail(StatusCode::SERVICE_UNAVAILABLE, &why);
            };
            let member = &self.snap.members[idx];
            let addr = member.address;
            member.stats.load.begin_raw();
            let t0 = Instant::now();
            let attempt = self.attempt(member).await;
            match attempt {
                Attempt::Response(resp, sender) => {
                    let code = resp.status().as_u16();
                    member.stats.count_status(code);
                    if matches!(code, 502..=504) {
                        member.stats.count_failure();
                    } else {
                        member
                            .stats
                            .consecutive_failures
                            .store(0, Ordering::Relaxed);
                    }
                    if matches!(code, 502 | 503) && self.replayable && self.retry() {
                        member.stats.load.end();
                        self.tried.push(idx);
                        // Put the empty body back for the replay.
                        self.body = Some(RequestBody::Empty);
                        continue;
                    }
                    member.stats.load.observe(t0.elapsed());
                    return self.respond(resp, sender, member);
                }
                Attempt::NotSent(req, why) => {
                    member.stats.load.end();
                    member.stats.count_failure();
                    self.tried.push(idx);
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend connect failed");
                    let (head, body) = Head::from_request(req);
                    self.head = Some(head);
                    self.body = Some(body);
                    if !self.retry() {
                        return self.fail(StatusCode::BAD_GATEWAY, &why);
                    }
                }
                Attempt::Sent(why) => {
                    member.stats.load.end();
                    member.stats.count_failure();
                    self.tried.push(idx);
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend request failed");
                    if !(self.replayable && self.retry()) {
                        return self.fail(StatusCode::BAD_GATEWAY, &why);
                    }
                    self.body = Some(RequestBody::Empty);
                }
                Attempt::TimedOut => {
                    member.stats.load.end();
                    member.stats.count_failure();
                    let why = format!(
                        "backend {addr} did not answer within {:?}",
                        self.snap.config.request_timeout
                    );
                    tracing::warn!(pool = %self.pool.name, backend = %addr, reason = %why, "backend timed out");
                    return self.fail(StatusCode::GATEWAY_TIMEOUT, &why);
                }
            }
        }
    }

    /// One attempt on `member`: connect (or reuse), send, wait for the response head.
    async fn attempt(&mut self, member: &Member) -> Attempt {
        let cfg = &self.snap.config;
        let addr = member.address;
        let body = self.body.take().expect("body present between attempts");
        // Keep the head when a replay may follow; otherwise move it.
        let head = if self.replayable && self.retries < cfg.retries {
            self.head.clone().expect("head present")
        } else {
            self.head.take().expect("head present")
        };
        let mut request = head.into_request(body);
        let (mut sender, mut reused) = match upstream::checkout(addr, cfg.connect_timeout).await {
            Ok(s) => s,
            Err(e) => return Attempt::NotSent(request, format!("backend {addr}: {e}")),
        };
        loop {
            let fut = sender.try_send_request(request);
            match tokio::time::timeout(cfg.request_timeout, fut).await {
                Err(_) => return Attempt::TimedOut,
                Ok(Ok(resp)) => return Attempt::Response(resp, sender),
                Ok(Err(mut e)) => match e.take_message() {
                    // A pooled connection closed under us before the request went out:
                    // try a fresh connection to the same member (not a retry).
                    Some(r) if reused => match upstream::connect(addr, cfg.connect_timeout).await {
                        Ok(s) => {
                            sender = s;
                            reused = false;
                            request = r;
                        }
                        Err(ce) => return Attempt::NotSent(r, format!("backend {addr}: {ce}")),
                    },
                    Some(r) => {
                        return Attempt::NotSent(r, format!("backend {addr}: {}", e.into_error()))
                    }
                    None => return Attempt::Sent(format!("backend {addr}: {}", e.into_error())),
                },
            }
        }
    }

    /// Turns the backend's response into the downstream response.
    fn respond(
        mut self,
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
        if switching {
            if let Some(client) = self.on_upgrade.take() {
                let backend = hyper::upgrade::on(&mut resp);
                upgrade::tunnel(client, backend, self.done, member.address);
                return resp.map(|_| ProxyBody::empty());
            }
        }
        let conn = Some((member.address, sender));
        let done = self.done;
        resp.map(|b| ProxyBody::upstream(b, conn, done))
    }
}
