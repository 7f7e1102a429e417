//! The admin listener: JSON API, `/metrics`, `/healthz`, `/readyz`.

pub mod api;
pub mod metrics;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app::App;

type Resp = Response<Full<Bytes>>;

fn json_resp(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"error": "...", "detail": ...}`
pub fn error(status: StatusCode, msg: &str, detail: Value) -> Resp {
    json_resp(status, &json!({"error": msg, "detail": detail}))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Constant-time comparison of the bearer token.
fn token_ok(req: &Request<Incoming>, token: &str) -> bool {
    let Some(got) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| {
            req.uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")))
        })
    else {
        return false;
    };
    let (a, b) = (got.as_bytes(), token.as_bytes());
    let mut diff = (a.len() ^ b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Resp {
    if let Some(token) = app.config().admin.token.as_deref() {
        if !token_ok(&req, token) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                json!("send Authorization: Bearer <admin.token>"),
            );
        }
    }
    let path = req.uri().path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let router = app.shared.router.load_full();
    match (req.method(), segs.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, ["readyz"]) => {
            if app.is_ready() {
                text(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "starting\n".into(),
                )
            }
        }
        (&Method::GET, ["metrics"]) => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics::render(router.pools.values().map(|p| p.as_ref())),
        ),
        (&Method::GET, ["api", "v1", "pools"]) => {
            let pools: Vec<Value> = router.pools.values().map(|p| api::pool_json(p)).collect();
            json_resp(StatusCode::OK, &json!(pools))
        }
        (&Method::GET, ["api", "v1", "pools", name]) => match router.pools.get(*name) {
            Some(p) => json_resp(StatusCode::OK, &api::pool_json(p)),
            None => error(
                StatusCode::NOT_FOUND,
                "no such pool",
                json!({"pool": name, "pools": router.pools.keys().collect::<Vec<_>>()}),
            ),
        },
        (&Method::GET, ["api", "v1", "events"]) => {
            let since = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("since=")))
                .map(|v| v.parse::<u64>());
            match since {
                Some(Err(_)) => error(
                    StatusCode::BAD_REQUEST,
                    "since must be an event id (a whole number)",
                    json!(null),
                ),
                other => {
                    let since = other.and_then(Result::ok).unwrap_or(0);
                    json_resp(
                        StatusCode::OK,
                        &json!(crate::events::log().since(since, 1000)),
                    )
                }
            }
        }
        (&Method::POST, ["api", "v1", "reload"]) => match app.reload() {
            Ok(()) => json_resp(StatusCode::OK, &json!({"reloaded": true})),
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                "invalid config; the running one stays",
                json!(e.to_string().lines().collect::<Vec<_>>()),
            ),
        },
        _ => error(
            StatusCode::NOT_FOUND,
            "no such admin endpoint",
            json!({"method": req.method().as_str(), "path": req.uri().path()}),
        ),
    }
}

/// Serves the admin API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(app, req).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
