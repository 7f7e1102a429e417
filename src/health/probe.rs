//! One active health check of one member: an HTTP `GET path` (over the
//! pool's protocol: HTTP/1.1; HTTP/2 for h2c and h2 pools; over TLS, what
//! ALPN picks for auto pools), a TCP connect, or a gRPC health check
//! ([`super::grpc`], over TLS in TLS pools), bounded by the check's `timeout`.

use std::net::SocketAddr;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, USER_AGENT};
use http::{Method, Request};

use super::counter::Verdict;
use super::local;
use crate::config::{HealthConfig, HealthKind, Protocol};
use crate::upstream::body::RequestBody;
use crate::upstream::h2_client;
use crate::upstream::http1::{self, ConnectError};
use crate::upstream::http2::{self, Opened};
use crate::upstream::tls::{UpstreamTls, ALPN_AUTO, ALPN_H2};

/// `User-Agent` of probes (unless `headers` sets one).
pub const PROBE_USER_AGENT: &str = "drover-health-check";

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub verdict: Verdict,
    /// Short words for events and the API: `status 200`, `connection refused`,
    /// `timed out after 1s`, `status 503 (expected 200-399)`; for an unknown
    /// result, the local error (`connect failed: Too many open files (os error 24)`).
    pub detail: String,
}

impl ProbeResult {
    pub(super) fn pass(detail: impl Into<String>) -> ProbeResult {
        ProbeResult {
            verdict: Verdict::Pass,
            detail: detail.into(),
        }
    }

    pub(super) fn fail(detail: impl Into<String>) -> ProbeResult {
        ProbeResult {
            verdict: Verdict::Fail,
            detail: detail.into(),
        }
    }

    /// A failure if the member is to blame; unknown if `local` (the error was ours).
    pub(super) fn failed(local: bool, detail: impl Into<String>) -> ProbeResult {
        ProbeResult {
            verdict: if local {
                Verdict::Unknown
            } else {
                Verdict::Fail
            },
            detail: detail.into(),
        }
    }

    /// Whether the member passed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Pass
    }
}

/// Checks `addr` once as `cfg` says, over HTTP/1.1. See [`probe_over`].
pub async fn probe(addr: SocketAddr, cfg: &HealthConfig, tls: Option<&UpstreamTls>) -> ProbeResult {
    probe_over(addr, cfg, Protocol::Http1, tls).await
}

/// Checks `addr` once as `cfg` says; an HTTP check goes over `protocol` (the
/// pool's) and, in a TLS pool, over TLS (`tls`); a TCP check stays a connect.
/// The whole check (connect, request, response head) must finish within
/// `cfg.timeout`.
pub async fn probe_over(
    addr: SocketAddr,
    cfg: &HealthConfig,
    protocol: Protocol,
    tls: Option<&UpstreamTls>,
) -> ProbeResult {
    let check = async {
        match (cfg.kind, &cfg.path) {
            (HealthKind::Grpc, _) => super::grpc::check(addr, cfg, tls).await,
            (HealthKind::Http, Some(path)) => match alpn(protocol, tls) {
                Some(alpn) => http2(addr, path, cfg, tls, alpn).await,
                None => http(addr, path, cfg, tls).await,
            },
            (HealthKind::Http | HealthKind::Tcp, _) => tcp(addr).await,
        }
    };
    match tokio::time::timeout(cfg.timeout, check).await {
        Ok(r) => r,
        Err(_) => ProbeResult::fail(format!("timed out after {:?}", cfg.timeout)),
    }
}

/// The ALPN list of an HTTP check that may go over HTTP/2: h2c and h2
/// pools (`h2`; no ALPN on plain TCP), auto pools over TLS (`h2, http/1.1`).
/// `None`: HTTP/1.1.
fn alpn(protocol: Protocol, tls: Option<&UpstreamTls>) -> Option<&'static [&'static [u8]]> {
    match (protocol, tls) {
        (Protocol::H2c | Protocol::H2, _) => Some(ALPN_H2),
        (Protocol::Auto, Some(_)) => Some(ALPN_AUTO),
        _ => None,
    }
}

async fn tcp(addr: SocketAddr) -> ProbeResult {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => ProbeResult::pass("connected"),
        Err(e) => ProbeResult::failed(local::is_local(&e), ConnectError::Io(e).to_string()),
    }
}

/// The probe request: `GET path` with `Host` (from `headers` or the member
/// address), `Connection: close`, a `User-Agent`, and the configured headers.
fn request(
    addr: SocketAddr,
    path: &str,
    cfg: &HealthConfig,
) -> Result<Request<RequestBody>, String> {
    let mut req = Request::new(RequestBody::Empty);
    *req.method_mut() = Method::GET;
    *req.uri_mut() = path
        .parse()
        .map_err(|e| format!("bad path {path:?}: {e}"))?;
    let h = req.headers_mut();
    h.insert(
        HOST,
        HeaderValue::from_str(&addr.to_string()).map_err(|e| e.to_string())?,
    );
    h.insert(USER_AGENT, HeaderValue::from_static(PROBE_USER_AGENT));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in &cfg.headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name}: {e}"))?;
        let value = HeaderValue::from_str(value).map_err(|e| format!("header {name}: {e}"))?;
        h.insert(name, value);
    }
    Ok(req)
}

async fn http(
    addr: SocketAddr,
    path: &str,
    cfg: &HealthConfig,
    tls: Option<&UpstreamTls>,
) -> ProbeResult {
    let req = match request(addr, path, cfg) {
        Ok(r) => r,
        Err(e) => return ProbeResult::fail(e),
    };
    // The outer timeout bounds the connect too.
    let mut sender = match http1::connect(addr, tls, cfg.timeout).await {
        Ok(s) => s,
        Err(e) => {
            let local = matches!(&e, ConnectError::Io(io) if local::is_local(io));
            return ProbeResult::failed(local, e.to_string());
        }
    };
    judge(sender.send_request(req).await, cfg)
}

/// The HTTP check over HTTP/2 (h2c, or TLS offering `alpn`), on a
/// connection of its own; over HTTP/1.1 when an auto member selects it.
async fn http2(
    addr: SocketAddr,
    path: &str,
    cfg: &HealthConfig,
    tls: Option<&UpstreamTls>,
    alpn: &[&[u8]],
) -> ProbeResult {
    let mut req = match request(addr, path, cfg) {
        Ok(r) => r,
        Err(e) => return ProbeResult::fail(e),
    };
    match http2::connect(addr, tls, alpn, cfg.timeout).await {
        Ok(Opened::H2(mut conn)) => {
            req.headers_mut().remove(CONNECTION);
            http2::to_h2(&mut req, addr, tls.is_some());
            match h2_client::send(&mut conn.sender, req).await {
                Ok(resp) => judge_status(resp.status(), cfg),
                Err(failed) => request_failed(&failed.error),
            }
        }
        Ok(Opened::Http1(mut sender)) => judge(sender.send_request(req).await, cfg),
        Err(e) => {
            let local = matches!(&e, ConnectError::Io(io) if local::is_local(io));
            ProbeResult::failed(local, e.to_string())
        }
    }
}

/// A failed probe request: the member's fault unless ours, with the TLS cause.
pub(super) fn request_failed(e: &(dyn std::error::Error + 'static)) -> ProbeResult {
    let why = match crate::upstream::tls::tls_cause(e) {
        Some(tls) => format!("request failed: {e} (TLS: {tls})"),
        None => format!("request failed: {e}"),
    };
    ProbeResult::failed(local::caused_locally(e), why)
}

/// The verdict on a probe's response head.
fn judge(
    r: Result<http::Response<hyper::body::Incoming>, hyper::Error>,
    cfg: &HealthConfig,
) -> ProbeResult {
    match r {
        Ok(resp) => judge_status(resp.status(), cfg),
        Err(e) => request_failed(&e),
    }
}

/// The verdict on a probe's response status.
fn judge_status(status: http::StatusCode, cfg: &HealthConfig) -> ProbeResult {
    let code = status.as_u16();
    if cfg.expect_status.contains(code) {
        ProbeResult::pass(format!("status {code}"))
    } else {
        ProbeResult::fail(format!("status {code} (expected {})", ranges(cfg)))
    }
}

fn ranges(cfg: &HealthConfig) -> String {
    cfg.expect_status
        .0
        .iter()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StatusRanges;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn cfg(path: Option<&str>) -> HealthConfig {
        HealthConfig {
            path: path.map(str::to_string),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 1,
            fall: 1,
            expect_status: StatusRanges(vec![(200, 299), (418, 418)]),
            initial_healthy: false,
            headers: vec![
                ("Host".into(), "app.internal".into()),
                ("X-Probe".into(), "1".into()),
            ],
            kind: if path.is_some() {
                crate::config::HealthKind::Http
            } else {
                crate::config::HealthKind::Tcp
            },
            service: String::new(),
        }
    }

    /// A one-shot server answering `status`; returns its address and the request head it saw.
    async fn server(status: u16) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn http_check_sends_host_and_headers_and_judges_the_status() {
        let (addr, seen) = server(418).await;
        let r = probe(addr, &cfg(Some("/healthz?full=1")), None).await;
        assert_eq!(r, ProbeResult::pass("status 418"));
        let head = seen.await.unwrap().to_ascii_lowercase();
        assert!(
            head.starts_with("get /healthz?full=1 http/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("host: app.internal\r\n"), "{head}");
        assert!(head.contains("x-probe: 1\r\n"), "{head}");

        let (addr, _) = server(503).await;
        let r = probe(addr, &cfg(Some("/health")), None).await;
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(r.detail, "status 503 (expected 200-299,418)");
    }

    #[tokio::test]
    async fn host_defaults_to_the_member_address() {
        let (addr, seen) = server(200).await;
        let mut c = cfg(Some("/health"));
        c.headers.clear();
        assert!(probe(addr, &c, None).await.passed());
        let head = seen.await.unwrap().to_ascii_lowercase();
        assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");
    }

    #[tokio::test]
    async fn refused_and_silent_members_fail() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let r = probe(dead, &cfg(None), None).await;
        assert_eq!(r, ProbeResult::fail("connection refused"));

        // Accepts (the kernel backlog does) but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = probe(silent.local_addr().unwrap(), &cfg(Some("/health")), None).await;
        assert_eq!(r, ProbeResult::fail("timed out after 500ms"));
        // A TCP check passes on the same socket.
        assert!(probe(silent.local_addr().unwrap(), &cfg(None), None)
            .await
            .passed());
    }
}
