//! The OpenAPI document served at `GET /api/v1/openapi.json`, generated: the
//! schemas from the typed bodies ([`super::types`], utoipa's `ToSchema`), the
//! paths from the route table ([`super::routes::ROUTES`]) with one summary and
//! answer list per route ([`doc`]), and the guard's answers (401, 403, 421, 415)
//! from the rules [`super::guard`] applies, so the document cannot drift.

use std::sync::OnceLock;

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Array, Object, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    Content, HttpMethod, OpenApi, Paths, Ref, RefOr, Required, Response, Schema,
    SecurityRequirement,
};
use utoipa::OpenApi as _;

use super::routes::{RouteId, ROUTES};
use super::types;

const DESCRIPTION: &str = "Pools, members, scaling, events, reload, metrics and the dashboard of a running drover. When admin.token is set, every request but /healthz and /readyz needs 'Authorization: Bearer TOKEN' (?token=TOKEN is accepted only by GET /, the dashboard page); otherwise 401. Every request but /healthz and /readyz needs a Host that names this API (localhost, a loopback IP, the address dialled or the listener's, or an admin.allowed_hosts entry), else 421; an Origin header, when sent, must be this API's own origin, else 403. Writes (POST, PUT, DELETE) need 'Content-Type: application/json', also without a body, else 415. Errors are JSON: {\"error\": \"...\", \"detail\": ...}.";

/// The schemas, from the types (utoipa collects the ones they use).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    types::PoolView,
    types::AutoscaleView,
    types::Backend,
    types::Removal,
    types::Scaled,
    types::Reloaded,
    types::RouteView,
    types::ErrorBody,
    types::AddBackend,
    types::ScaleTo,
    crate::events::Event,
    super::history::Point,
)))]
struct Schemas;

/// What a route answers on success.
enum Body {
    /// No JSON body (text, HTML), described in words.
    Text,
    /// One `#/components/schemas/NAME`.
    One(&'static str),
    /// A list of them.
    List(&'static str),
    /// An object of lists of them (pool name -> points).
    MapOfLists(&'static str),
}

/// One route's documentation.
struct Doc {
    summary: &'static str,
    /// The request body's schema, for writes that take one.
    request: Option<&'static str>,
    /// Success status, its description and body.
    ok: (&'static str, &'static str, Body),
    /// Error statuses the handler itself answers (the guard's are added by rule).
    errors: &'static [&'static str],
}

/// The documentation of each route.
fn doc(id: RouteId) -> Doc {
    use Body::*;
    let d = |summary, request, ok, errors| Doc {
        summary,
        request,
        ok,
        errors,
    };
    match id {
        RouteId::Dashboard => d("The dashboard (HTML); pass ?token=TOKEN when a token is set (the only endpoint that accepts it; the page then sends the header)", None, ("200", "text/html", Text), &[]),
        RouteId::Healthz => d("Liveness; needs no token and accepts any Host", None, ("200", "ok", Text), &[]),
        RouteId::Readyz => d("Readiness: 200 while the proxy listeners are up, 503 while starting or shutting down; needs no token and accepts any Host", None, ("200", "ready", Text), &["503"]),
        RouteId::Metrics => d("Prometheus text exposition (format 0.0.4)", None, ("200", "text/plain", Text), &[]),
        RouteId::OpenApi => d("This document", None, ("200", "OpenAPI 3 document", Text), &[]),
        RouteId::Pools => d("Every pool with its members, state and counters", None, ("200", "pools", List("PoolView")), &[]),
        RouteId::Pool => d("One pool", None, ("200", "pool", One("PoolView")), &["404"]),
        RouteId::AllHistory => d("The last 15 minutes of every pool, one point per 5 s", None, ("200", "pool name -> points", MapOfLists("Point")), &[]),
        RouteId::History => d("The last 15 minutes of one pool: requests/s, p50/p95 latency, desired and ready instances, one point per 5 s", None, ("200", "points, oldest first", List("Point")), &["404"]),
        RouteId::AddBackend => d("Add a static member; it is dropped again by a reload whose file does not list it", Some("AddBackend"), ("201", "added", One("Backend")), &["400", "404", "409"]),
        RouteId::RemoveBackend => d("Drain, then remove once nothing is in flight (or after the pool's drain_timeout, default 30 s)", None, ("202", "draining; removal follows", One("Removal")), &["400", "404"]),
        RouteId::DrainBackend => d("Stop sending new requests to the member; in-flight ones finish. Kept across reloads", None, ("202", "draining", One("Backend")), &["400", "404"]),
        RouteId::Scale => d("Set the desired instance count now (400 outside [autoscale.min, autoscale.max], or [0, 100] without autoscale; 409 for a pool without [instances])", Some("ScaleTo"), ("202", "accepted; the controller starts or drains instances", One("Scaled")), &["400", "404", "409", "503"]),
        RouteId::Autoscale => d("Explain the autoscaler: the inputs of its last evaluation (metrics, forecast, schedule window, bounds), each rule's recommendation, the limit that held the result back (scale_up_cooldown, rate_limit, stabilization, starting, burst, hold, min, max), the warm pool, and the last 20 decisions", None, ("200", "the explanation", One("AutoscaleView")), &["404", "409", "503"]),
        RouteId::Events => d("Health, membership, scaling and reload events, oldest first", None, ("200", "events", List("Event")), &["400"]),
        RouteId::Routes => d("The routes in force, in match order, with their rate-limit counters", None, ("200", "routes", List("RouteView")), &[]),
        RouteId::Reload => d("Reload the config file; an invalid file changes nothing (400, also for a file without admin.token while the running admin listener is not on loopback)", None, ("200", "reloaded", One("Reloaded")), &["400"]),
    }
}

fn schema(body: &Body) -> Option<RefOr<Schema>> {
    let one = |name: &str| RefOr::Ref(Ref::from_schema_name(name));
    Some(match *body {
        Body::Text => return None,
        Body::One(name) => one(name),
        Body::List(name) => Array::new(one(name)).into(),
        Body::MapOfLists(name) => Object::builder()
            .schema_type(Type::Object)
            .additional_properties(Some(Schema::from(Array::new(one(name)))))
            .into(),
    })
}

fn json_response(description: &str, body: Option<RefOr<Schema>>) -> Response {
    let mut r = Response::new(description);
    if let Some(s) = body {
        r.content
            .insert("application/json".to_string(), Content::new(Some(s)).into());
    }
    r
}

/// The guard's answers, by name in `#/components/responses`.
const GUARD: &[(&str, &str, &str)] = &[
    (
        "401",
        "Unauthorized",
        "admin.token is set and the request has no (or a wrong) Authorization: Bearer",
    ),
    (
        "403",
        "ForeignOrigin",
        "the Origin header is not this API's origin (cross-site request)",
    ),
    (
        "415",
        "NotJson",
        "a write without Content-Type: application/json",
    ),
    (
        "421",
        "MisdirectedHost",
        "the Host is not a name of this API (DNS-rebinding guard; see admin.allowed_hosts)",
    ),
];

fn operation(method: &str, path: &str, id: RouteId) -> Operation {
    let d = doc(id);
    let mut op = Operation::new();
    op.summary = Some(d.summary.to_string());
    for name in path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    {
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::Ref(Ref::new(format!(
                "#/components/parameters/{name}"
            ))));
    }
    if let Some(name) = d.request {
        let mut body = RequestBody::new();
        body.required = Some(Required::True);
        body.content.insert(
            "application/json".to_string(),
            Content::new(Some(Ref::from_schema_name(name))).into(),
        );
        op.request_body = Some(body.into());
    }
    let responses = &mut op.responses.responses;
    let (code, description, body) = &d.ok;
    responses.insert(
        code.to_string(),
        json_response(description, schema(body)).into(),
    );
    for code in d.errors {
        let answer = match *code {
            "503" if id == RouteId::Readyz => json_response("not ready", None).into(),
            _ => RefOr::Ref(Ref::from_response_name("Error")),
        };
        responses.insert(code.to_string(), answer);
    }
    // The guard's rules (super::guard): probes are open; writes need the JSON type.
    let probe = matches!(id, RouteId::Healthz | RouteId::Readyz);
    let write = matches!(method, "POST" | "PUT" | "DELETE");
    for (code, name, _) in GUARD {
        if !probe && (*code != "415" || write) {
            responses.insert(code.to_string(), RefOr::Ref(Ref::from_response_name(*name)));
        }
    }
    op.security = match id {
        RouteId::Healthz | RouteId::Readyz => Some(Vec::new()),
        RouteId::Dashboard => Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("query", Vec::<String>::new()),
        ]),
        _ => Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]),
    };
    op
}

fn http_method(method: &str) -> HttpMethod {
    match method {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The document, built from the types and the route table.
pub fn document() -> OpenApi {
    let mut doc = Schemas::openapi();
    doc.info.title = "drover admin API".to_string();
    doc.info.version = "1".to_string();
    doc.info.description = Some(DESCRIPTION.to_string());
    doc.info.license = None;
    doc.info.contact = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    components.add_security_scheme(
        "query",
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
    );
    let string = || Some(Object::with_type(Type::String));
    let pool = ParameterBuilder::new()
        .name("pool")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(string())
        .description(Some("Pool name as in [pools.NAME]"))
        .build();
    let address = ParameterBuilder::new()
        .name("address")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(string())
        .description(Some(
            "Member address ip:port, like 127.0.0.1:8001 (IPv6 percent-encoded: %5B%3A%3A1%5D%3A8001)",
        ))
        .build();
    components.parameters.insert("pool".into(), pool.into());
    components
        .parameters
        .insert("address".into(), address.into());
    let error = || Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")));
    components
        .responses
        .insert("Error".into(), json_response("error", error()).into());
    for (_, name, description) in GUARD {
        components
            .responses
            .insert(name.to_string(), json_response(description, error()).into());
    }
    doc.security = Some(vec![SecurityRequirement::new(
        "bearer",
        Vec::<String>::new(),
    )]);
    let mut paths = Paths::new();
    for r in ROUTES {
        let item = PathItem::new(http_method(r.method), operation(r.method, r.path, r.id));
        match paths.paths.get_mut(r.path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                paths.paths.insert(r.path.to_string(), item);
            }
        }
    }
    doc.paths = paths;
    doc
}

/// [`document`] as JSON, built once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_pretty_json().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_the_types_are_the_schemas() {
        let doc: Value = serde_json::from_str(super::json()).expect("valid JSON");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 40, "{} refs", found.len());
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        let schemas = &doc["components"]["schemas"];
        // Nested types are collected from the fields.
        for name in [
            "PoolView",
            "Backend",
            "State",
            "Check",
            "WarmView",
            "Event",
            "EventKind",
            "Point",
        ] {
            assert!(schemas.get(name).is_some(), "schema {name} missing");
        }
        let kinds = schemas["EventKind"]["enum"].as_array().expect("kinds");
        assert_eq!(kinds.len(), crate::events::KINDS.len());
        let backend = &schemas["Backend"]["properties"];
        for key in [
            "address", "state", "inflight", "requests", "failures", "ewma_ms", "weight", "managed",
        ] {
            assert!(backend.get(key).is_some(), "Backend.{key} missing");
        }
    }
}
