//! The admin listener: JSON API, `/metrics`, `/healthz`, `/readyz`, the
//! OpenAPI document and the dashboard. Routes are listed once, in [`routes::ROUTES`].

pub mod api;
mod dashboard;
pub mod guard;
pub mod handlers;
pub mod history;
mod listener;
pub mod metrics;
pub mod routes;
pub mod scale;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::config::{Config, ConfigErrors};
use crate::proxy::server::Shared;
use history::History;
use routes::{Match, RouteId};
use scale::ScaleControl;

pub use listener::serve;

/// What the admin API reads and does in the running drover. Implemented by
/// `app::App`, the application layer above, so that the admin API names
/// none of its types.
pub trait Drover: Send + Sync + 'static {
    /// The config in force.
    fn config(&self) -> Arc<Config>;
    /// The proxy's shared state: the router in force.
    fn shared(&self) -> &Shared;
    /// Whether drover is ready (`/readyz`).
    fn is_ready(&self) -> bool;
    /// Re-reads the config file; an invalid one changes nothing (`POST /api/v1/reload`).
    fn reload(&self) -> Result<(), ConfigErrors>;
    /// The desired-instance control behind `PUT .../scale`, if any.
    fn scale_control(&self) -> Option<Arc<dyn ScaleControl>>;
}

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

/// Answers one admin request; `addrs` are the API's own addresses (a `Host`
/// naming one of them is accepted).
async fn route(
    app: Arc<dyn Drover>,
    history: Arc<History>,
    addrs: guard::Addrs,
    req: Request<Incoming>,
) -> Resp {
    let found = routes::find(req.method().as_str(), req.uri().path());
    // Probes need neither a token nor a particular Host: the answers reveal nothing.
    let open = matches!(found, Match::Found(RouteId::Healthz | RouteId::Readyz, _));
    if !open {
        let cfg = app.config();
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let facts = guard::Facts {
            method: req.method().as_str(),
            host: header(HOST).or_else(|| req.uri().authority().map(|a| a.as_str())),
            origin: header(ORIGIN),
            content_type: header(CONTENT_TYPE),
            authorization: header(AUTHORIZATION),
            query: req.uri().query(),
            query_token_ok: matches!(found, Match::Found(RouteId::Dashboard, _)),
        };
        let policy = guard::Policy {
            token: cfg.admin.token.as_deref(),
            allowed_hosts: &cfg.admin.allowed_hosts,
            addrs,
        };
        if let Err(refusal) = guard::check(&facts, &policy) {
            let (status, msg, detail) = refusal.answer();
            return error(status, msg, json!(detail));
        }
    }
    let (id, params) = match found {
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
            let router = app.shared().router.load_full();
            let mut pools: Vec<&crate::pool::Pool> =
                router.pools.values().map(|p| p.as_ref()).collect();
            pools.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics::render(pools.into_iter(), |p| history::desired(&*app, p)),
            ))
        }
        RouteId::OpenApi => Ok(text(
            StatusCode::OK,
            "application/json",
            OPENAPI.to_string(),
        )),
        RouteId::Pools => {
            let router = app.shared().router.load_full();
            let mut pools: Vec<Value> = router
                .pools
                .values()
                .map(|p| handlers::pool_view(&*app, p))
                .collect();
            pools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            Ok(json_resp(StatusCode::OK, &json!(pools)))
        }
        RouteId::Routes => {
            let router = app.shared().router.load_full();
            Ok(json_resp(StatusCode::OK, &handlers::routes_view(&router)))
        }
        RouteId::Pool => handlers::find_pool(&*app, p(0))
            .map(|pool| json_resp(StatusCode::OK, &handlers::pool_view(&*app, &pool))),
        RouteId::AllHistory => Ok(json_resp(StatusCode::OK, &json!(history.all()))),
        RouteId::History => handlers::find_pool(&*app, p(0)).map(|pool| {
            json_resp(
                StatusCode::OK,
                &json!(history.pool(&pool.name).unwrap_or_default()),
            )
        }),
        RouteId::AddBackend => match read_body(req.into_body()).await {
            Ok(body) => handlers::add_backend(&*app, p(0), &body),
            Err(e) => Err(e),
        },
        RouteId::RemoveBackend => handlers::remove_backend(&*app, p(0), p(1)),
        RouteId::DrainBackend => handlers::drain_backend(&*app, p(0), p(1)),
        RouteId::Scale => match read_body(req.into_body()).await {
            Ok(body) => handlers::scale(&*app, p(0), &body),
            Err(e) => Err(e),
        },
        RouteId::Autoscale => {
            handlers::find_pool(&*app, p(0)).and_then(|pool| handlers::autoscale(&*app, &pool))
        }
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

/// The answer to a request whose handler panicked.
pub(crate) fn panicked() -> Resp {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the admin API failed while handling this request (logged)",
        Value::Null,
    )
}
