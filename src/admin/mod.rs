//! The admin listener: JSON API, `/metrics`, `/healthz`, `/readyz`, the
//! OpenAPI document and the dashboard. Routes are listed once, in [`routes::ROUTES`].

pub mod api;
mod dashboard;
pub mod guard;
pub mod handlers;
pub mod history;
mod listener;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod scale;
pub mod types;

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{Config, ConfigErrors};
use crate::proxy::server::Shared;
use history::History;
use routes::{Match, RouteId};
use scale::ScaleControl;
use types::{PoolView, Reloaded};

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

pub(crate) type Resp = Response<Full<Bytes>>;

/// `v` as a JSON answer.
pub(crate) fn json_resp<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Resp {
    // Our bodies are structs, lists and string-keyed maps: serializing cannot fail.
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
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

/// `{"error": "...", "detail": ...}` ([`types::ErrorBody`]).
pub fn error(status: StatusCode, msg: &str, detail: Value) -> Resp {
    let body = types::ErrorBody {
        error: msg.to_string(),
        detail,
    };
    json_resp(status, &body)
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
        if let Err(refused) = admit(&*app, &req, &found, addrs) {
            return *refused;
        }
    }
    match found {
        Match::Found(id, params) => dispatch(&*app, &history, id, &params, req)
            .await
            .unwrap_or_else(|e| *e),
        Match::MethodNotAllowed(allowed) => {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{} is not allowed on {}", req.method(), req.uri().path()),
                json!({"allowed": allowed}),
            );
            if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                r.headers_mut().insert(http::header::ALLOW, v);
            }
            r
        }
        Match::NotFound => error(
            StatusCode::NOT_FOUND,
            "no such admin endpoint",
            json!({"method": req.method().as_str(), "path": req.uri().path(),
                   "see": "/api/v1/openapi.json"}),
        ),
    }
}

/// The request guard ([`guard::check`]): token, Host, Origin, content type.
fn admit(
    app: &dyn Drover,
    req: &Request<Incoming>,
    found: &Match,
    addrs: guard::Addrs,
) -> ApiResult<()> {
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
    guard::check(&facts, &policy).map_err(|refusal| {
        let (status, msg, detail) = refusal.answer();
        fail(status, msg, json!(detail))
    })
}

/// Runs the handler of a matched route; `params` are its path parameters in order.
async fn dispatch(
    app: &dyn Drover,
    history: &History,
    id: RouteId,
    params: &[String],
    req: Request<Incoming>,
) -> ApiResult<Resp> {
    let p = |i: usize| params.get(i).map(String::as_str).unwrap_or("");
    match id {
        RouteId::Dashboard => Ok(dashboard::page()),
        RouteId::Healthz => Ok(text(StatusCode::OK, "text/plain", "ok\n".into())),
        RouteId::Readyz => Ok(match app.is_ready() {
            true => text(StatusCode::OK, "text/plain", "ready\n".into()),
            false => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "not ready\n".into(),
            ),
        }),
        RouteId::Metrics => Ok(text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(sorted_pools(app).iter().map(|p| p.as_ref()), |p| {
                p.desired_instances()
            }),
        )),
        RouteId::OpenApi => Ok(text(
            StatusCode::OK,
            "application/json",
            openapi::json().to_string(),
        )),
        RouteId::Pools => {
            let pools: Vec<PoolView> = sorted_pools(app)
                .iter()
                .map(|p| api::pool_view(app, p))
                .collect();
            ok(&pools)
        }
        RouteId::Routes => ok(&api::routes(&app.shared().router.load())),
        RouteId::Pool => {
            let pool = handlers::find_pool(app, p(0))?;
            ok(&api::pool_view(app, &pool))
        }
        RouteId::AllHistory => ok(&history.all()),
        RouteId::History => {
            let pool = handlers::find_pool(app, p(0))?;
            ok(&history.pool(&pool.name).unwrap_or_default())
        }
        RouteId::AddBackend => handlers::add_backend(app, p(0), &read_body(req.into_body()).await?),
        RouteId::RemoveBackend => handlers::remove_backend(app, p(0), p(1)),
        RouteId::DrainBackend => handlers::drain_backend(app, p(0), p(1)),
        RouteId::Scale => handlers::scale(app, p(0), &read_body(req.into_body()).await?),
        RouteId::Autoscale => {
            let pool = handlers::find_pool(app, p(0))?;
            handlers::autoscale(app, &pool)
        }
        RouteId::Events => handlers::events(req.uri().query()),
        RouteId::Reload => match app.reload() {
            Ok(()) => ok(&Reloaded {
                reloaded: true,
                pools: app.config().pools.keys().cloned().collect(),
            }),
            Err(e) => Err(fail(
                StatusCode::BAD_REQUEST,
                "invalid config; the running one stays",
                json!(e.to_string().lines().collect::<Vec<_>>()),
            )),
        },
    }
}

/// `v` as a `200` JSON answer.
fn ok<T: Serialize + ?Sized>(v: &T) -> ApiResult<Resp> {
    Ok(json_resp(StatusCode::OK, v))
}

/// The pools in force, by name.
fn sorted_pools(app: &dyn Drover) -> Vec<Arc<crate::pool::Pool>> {
    let router = app.shared().router.load_full();
    let mut pools: Vec<Arc<crate::pool::Pool>> = router.pools.values().cloned().collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    pools
}

/// The answer to a request whose handler panicked.
pub(crate) fn panicked() -> Resp {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the admin API failed while handling this request (logged)",
        Value::Null,
    )
}
