//! Request routing and the small endpoints (see the module docs for the list).

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::body::{self, Body};
use super::{echo, upgrade, State};

/// `"hello drover\n"` compressed with gzip (mtime 0), served by `/gzip`.
pub(super) const GZIP_HELLO: [u8; 33] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
    0x48, 0x29, 0xca, 0x2f, 0x4b, 0x2d, 0xe2, 0x02, 0x00, 0xca, 0xb8, 0x29, 0xdf, 0x0d, 0x00, 0x00,
    0x00,
];

/// Header naming the backend instance on every response.
const BACKEND_NAME: &str = "x-backend-name";

/// Entry point for every request: routes it and adds `X-Backend-Name`.
pub(super) async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    // One line per request at debug level (`drover -v backend`), written before
    // the response: the chaos tests count the requests a backend saw even when
    // it is SIGKILLed right after, to prove no POST was sent twice.
    tracing::debug!(
        method = %req.method(),
        path = req.uri().path(),
        request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or(""),
        "backend request"
    );
    let mut resp = route(req, &state).await;
    if let Some(name) = &state.name_header {
        resp.headers_mut().insert(BACKEND_NAME, name.clone());
    }
    Ok(resp)
}

async fn route(req: Request<Incoming>, state: &State) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/health" {
        echo::drain(req.into_body()).await;
        return health(state);
    }
    if path == "/admin" || path.starts_with("/admin/") {
        return admin(req, &path, state).await;
    }
    state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(w) = &state.warmup {
        w.wait().await;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["delay", ms] => delay(req, ms, state).await,
        ["status", code] => drained(req, status(code)).await,
        ["bytes", n] => {
            let chunked = query_flag(req.uri().query(), "chunked");
            drained(req, bytes(n, chunked)).await
        }
        ["stream", n, ms] => drained(req, stream(n, ms)).await,
        ["cookies"] => drained(req, cookies()).await,
        ["gzip"] => drained(req, gzip()).await,
        ["redirect"] => drained(req, redirect()).await,
        ["ws"] => upgrade::websocket(req),
        ["upgrade", "echo"] => upgrade::raw_echo(req),
        _ => echo::respond(req, &state.name).await,
    }
}

/// Discards the request body, then returns `resp`.
async fn drained(req: Request<Incoming>, resp: Response<Body>) -> Response<Body> {
    echo::drain(req.into_body()).await;
    resp
}

/// A `text/plain` response.
pub(super) fn text(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body::full(text.into()))
        .expect("static response parts are valid")
}

/// Parses a path segment as a number, or says why not (for a `400`).
fn number<T: FromStr>(segment: &str, what: &str) -> Result<T, String> {
    segment
        .parse()
        .map_err(|_| format!("{what} must be a non-negative integer, got {segment:?}\n"))
}

/// `400 Bad Request` with `msg` as the body.
fn bad_request(msg: String) -> Response<Body> {
    text(StatusCode::BAD_REQUEST, msg)
}

/// Whether the query has `NAME=1` or `NAME=true`.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query.unwrap_or("").split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(k, v)| k == name && (v == "1" || v == "true"))
    })
}

/// `/health`: `200 ok`, or `503 failing` while failed via `/admin/fail`.
fn health(state: &State) -> Response<Body> {
    if state.healthy.load(Ordering::Relaxed) {
        text(StatusCode::OK, "ok")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "failing")
    }
}

/// `POST /admin/fail`, `POST /admin/recover`, `GET /admin/stats`.
async fn admin(req: Request<Incoming>, path: &str, state: &State) -> Response<Body> {
    let method = req.method().clone();
    echo::drain(req.into_body()).await;
    let expected = match path {
        "/admin/fail" | "/admin/recover" | "/admin/goaway" => Method::POST,
        "/admin/stats" => Method::GET,
        _ => return text(StatusCode::NOT_FOUND, "unknown admin endpoint\n"),
    };
    if method != expected {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {expected}\n"));
        let allow = http::HeaderValue::from_str(expected.as_str()).expect("method is a token");
        resp.headers_mut().insert(header::ALLOW, allow);
        return resp;
    }
    match path {
        "/admin/fail" => {
            state.healthy.store(false, Ordering::Relaxed);
            text(StatusCode::OK, "failing\n")
        }
        "/admin/recover" => {
            state.healthy.store(true, Ordering::Relaxed);
            text(StatusCode::OK, "recovered\n")
        }
        "/admin/goaway" => {
            state.goaway.send_modify(|n| *n += 1);
            text(StatusCode::OK, "goaway sent\n")
        }
        _ => {
            let stats = serde_json::json!({
                "requests": state.requests.load(Ordering::Relaxed),
                "connections": state.connections.load(Ordering::Relaxed),
                "open_connections": state.open.load(Ordering::Relaxed),
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(body::full(stats.to_string()))
                .expect("static response parts are valid")
        }
    }
}

/// `/delay/MS`: the echo response after MS milliseconds.
async fn delay(req: Request<Incoming>, ms: &str, state: &State) -> Response<Body> {
    let ms: u64 = match number(ms, "delay milliseconds") {
        Ok(ms) => ms,
        Err(msg) => return drained(req, bad_request(msg)).await,
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    echo::respond(req, &state.name).await
}

/// `/status/CODE`: that status with a short text body (none for 204, 205, 304).
fn status(code: &str) -> Response<Body> {
    let code: u16 = match number(code, "status code") {
        Ok(code) => code,
        Err(msg) => return bad_request(msg),
    };
    let status = match StatusCode::from_u16(code) {
        Ok(status) if (200..=599).contains(&code) => status,
        _ => {
            let msg = format!("status {code} cannot be sent as a final response; use 200..=599\n");
            return text(StatusCode::BAD_REQUEST, msg);
        }
    };
    if matches!(code, 204 | 205 | 304) {
        let mut resp = Response::new(body::empty());
        *resp.status_mut() = status;
        return resp;
    }
    let reason = status.canonical_reason().unwrap_or("");
    text(status, format!("{code} {reason}\n"))
}

/// `/bytes/N`: N pattern bytes, with `Content-Length` unless `chunked`.
fn bytes(n: &str, chunked: bool) -> Response<Body> {
    let len: u64 = match number(n, "byte count") {
        Ok(len) => len,
        Err(msg) => return bad_request(msg),
    };
    let mut builder = Response::builder().header(header::CONTENT_TYPE, "application/octet-stream");
    if !chunked {
        builder = builder.header(header::CONTENT_LENGTH, len);
    }
    builder
        .body(body::pattern(len))
        .expect("static response parts are valid")
}

/// `/stream/N/MS`: N lines, one every MS milliseconds, chunked.
fn stream(n: &str, ms: &str) -> Response<Body> {
    let parsed = number::<u64>(n, "line count")
        .and_then(|n| number::<u64>(ms, "interval milliseconds").map(|ms| (n, ms)));
    let (count, ms) = match parsed {
        Ok(parsed) => parsed,
        Err(msg) => return bad_request(msg),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body::timed_lines(count, Duration::from_millis(ms)))
        .expect("static response parts are valid")
}

/// `/cookies`: two separate `Set-Cookie` headers.
fn cookies() -> Response<Body> {
    Response::builder()
        .header(header::SET_COOKIE, "a=1; Path=/")
        .header(header::SET_COOKIE, "b=2; Path=/")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body::full("cookies set\n"))
        .expect("static response parts are valid")
}

/// `/gzip`: [`GZIP_HELLO`] with `Content-Encoding: gzip`.
fn gzip() -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(body::full(&GZIP_HELLO[..]))
        .expect("static response parts are valid")
}

/// `/redirect`: `302` to `/target`.
fn redirect() -> Response<Body> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, "/target")
        .body(body::empty())
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flag_matches_exact_name() {
        assert!(query_flag(Some("chunked=1"), "chunked"));
        assert!(query_flag(Some("a=b&chunked=true"), "chunked"));
        assert!(!query_flag(Some("chunked=0"), "chunked"));
        assert!(!query_flag(Some("xchunked=1"), "chunked"));
        assert!(!query_flag(None, "chunked"));
    }

    #[test]
    fn informational_and_out_of_range_statuses_are_rejected() {
        for code in ["100", "101", "199", "600", "99", "abc"] {
            assert_eq!(status(code).status(), StatusCode::BAD_REQUEST, "{code}");
        }
        assert_eq!(status("418").status(), StatusCode::IM_A_TEAPOT);
    }
}
