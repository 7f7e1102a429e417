//! The admin listener: JSON API, `/metrics`, `/healthz`, `/readyz`, the
//! OpenAPI document and the dashboard. Routes are listed once, in [`routes::ROUTES`].

pub mod api;
mod dashboard;
pub mod handlers;
pub mod history;
pub mod metrics;
pub mod routes;
pub mod scale;

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::app::App;
use history::History;
use routes::{Match, RouteId};

/// The OpenAPI 3 document served at `GET /api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

pub(crate) type Resp = Response<Full<Bytes>>;

pub(crate) fn json_resp(status: StatusCode, v: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A handler's result; the error is a ready response (boxed: responses are large).
pub(crate) type ApiResult<T> = Result<T, Box<Resp>>;

/// [`error`], boxed for [`ApiResult`].
pub(crate) fn fail(status: StatusCode, msg: &str, detail: Value) -> Box<Resp> {
    Box::new(error(status, msg, detail))
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
        .map(str::to_string)
        .or_else(|| routes::query_param(req.uri().query(), "token"))
    else {
        return false;
    };
    tokens_equal(got.as_bytes(), token.as_bytes())
}

/// Compares in time depending only on the lengths (a length difference never
/// wraps to "equal", whatever the padding bytes are).
fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Largest request body the API reads (JSON commands). 64 KiB.
const MAX_BODY: usize = 64 * 1024;

async fn read_body(body: Incoming) -> ApiResult<Bytes> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(fail(
            StatusCode::BAD_REQUEST,
            "could not read the request body",
            json!(format!("{e} (at most {MAX_BODY} bytes)")),
        )),
    }
}

async fn route(app: Arc<App>, history: Arc<History>, req: Request<Incoming>) -> Resp {
    if let Some(token) = app.config().admin.token.as_deref() {
        if !token_ok(&req, token) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                json!("send Authorization: Bearer <admin.token> (or ?token=<admin.token>)"),
            );
        }
    }
    let (id, params) = match routes::find(req.method().as_str(), req.uri().path()) {
        Match::Found(id, params) => (id, params),
        Match::MethodNotAllowed(allowed) => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed on {}", req.method(), req.uri().path()),
                json!({"allowed": allowed}),
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            return r;
        }
        Match::NotFound => {
            return error(
                StatusCode::NOT_FOUND,
                "no such admin endpoint",
                json!({"method": req.method().as_str(), "path": req.uri().path(),
                       "see": "/api/v1/openapi.json"}),
            )
        }
    };
    let p = |i: usize| params.get(i).map(String::as_str).unwrap_or("");
    let query = req.uri().query().map(str::to_string);
    let result: ApiResult<Resp> = match id {
        RouteId::Dashboard => Ok(dashboard::page()),
        RouteId::Healthz => Ok(text(StatusCode::OK, "text/plain", "ok\n".into())),
        RouteId::Readyz => Ok(if app.is_ready() {
            text(StatusCode::OK, "text/plain", "ready\n".into())
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "not ready\n".into(),
            )
        }),
        RouteId::Metrics => {
            let router = app.shared.router.load_full();
            let mut pools: Vec<&crate::pool::Pool> =
                router.pools.values().map(|p| p.as_ref()).collect();
            pools.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(pools.into_iter(), |p| history::desired(&app, p)),
            ))
        }
        RouteId::OpenApi => Ok(text(
            StatusCode::OK,
            "application/json",
            OPENAPI.to_string(),
        )),
        RouteId::Pools => {
            let router = app.shared.router.load_full();
            let mut pools: Vec<Value> = router
                .pools
                .values()
                .map(|p| handlers::pool_view(&app, p))
                .collect();
            pools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(json_resp(StatusCode::OK, &json!(pools)))
        }
        RouteId::Pool => handlers::find_pool(&app, p(0))
            .map(|pool| json_resp(StatusCode::OK, &handlers::pool_view(&app, &pool))),
        RouteId::AllHistory => Ok(json_resp(StatusCode::OK, &json!(history.all()))),
        RouteId::History => handlers::find_pool(&app, p(0)).map(|pool| {
            json_resp(
                StatusCode::OK,
                &json!(history.pool(&pool.name).unwrap_or_default()),
            )
        }),
        RouteId::AddBackend => match read_body(req.into_body()).await {
            Ok(body) => handlers::add_backend(&app, p(0), &body),
            Err(e) => Err(e),
        },
        RouteId::RemoveBackend => handlers::remove_backend(&app, p(0), p(1)),
        RouteId::DrainBackend => handlers::drain_backend(&app, p(0), p(1)),
        RouteId::Scale => match read_body(req.into_body()).await {
            Ok(body) => handlers::scale(&app, p(0), &body),
            Err(e) => Err(e),
        },
        RouteId::Events => handlers::events(query.as_deref()),
        RouteId::Reload => match app.reload() {
            Ok(()) => Ok(json_resp(
                StatusCode::OK,
                &json!({"reloaded": true, "pools": app.config().pools.keys().collect::<Vec<_>>()}),
            )),
            Err(e) => Err(fail(
                StatusCode::BAD_REQUEST,
                "invalid config; the running one stays",
                json!(e.to_string().lines().collect::<Vec<_>>()),
            )),
        },
    };
    result.unwrap_or_else(|e| *e)
}

/// Serves the admin API on `listener` until the task is dropped; also runs
/// the history sampler for the dashboard.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    let history = Arc::new(History::default());
    let sampler = tokio::spawn(history::run(history.clone(), app.clone()));
    let _stop_sampler = AbortOnDrop(sampler);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (app, history) = (app.clone(), history.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let (app, history) = (app.clone(), history.clone());
                // A panic ends this request with a 500 (the hook logs it), not the admin API.
                async move {
                    let r = AssertUnwindSafe(route(app, history, req))
                        .catch_unwind()
                        .await;
                    Ok::<_, Infallible>(r.unwrap_or_else(|_| panicked()))
                }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The answer to a request whose handler panicked.
fn panicked() -> Resp {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the admin API failed while handling this request (logged)",
        Value::Null,
    )
}

/// Aborts the task when dropped (the sampler stops with the admin server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_is_exact() {
        assert!(tokens_equal(b"s3cret", b"s3cret"));
        assert!(!tokens_equal(b"s3cret", b"s3cres"));
        assert!(!tokens_equal(b"s3c", b"s3cret"));
        let mut padded = b"abc".to_vec();
        padded.extend(std::iter::repeat_n(0u8, 256));
        assert!(
            !tokens_equal(&padded, b"abc"),
            "256 NULs must not wrap the length check"
        );
    }
}
