//! The echo endpoint: describes the request as JSON, hashing the body as it streams.

use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::body::{self, Body};

/// Size and SHA-256 of a request body.
pub(super) struct BodySummary {
    /// Number of body bytes received.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the body.
    pub sha256: String,
}

/// Reads the body frame by frame, hashing each chunk, never holding the whole body.
pub(super) async fn summarize(mut body: Incoming) -> Result<BodySummary, hyper::Error> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            hasher.update(&data);
            bytes += data.len() as u64;
        }
    }
    Ok(BodySummary {
        bytes,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Reads and discards the request body so the connection can be reused.
pub(super) async fn drain(body: Incoming) {
    if let Err(err) = summarize(body).await {
        tracing::debug!(error = %err, "reading request body failed");
    }
}

/// `200 application/json` describing the request (see the module docs).
pub(super) async fn respond(req: Request<Incoming>, name: &str) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let summary = match summarize(incoming).await {
        Ok(summary) => summary,
        Err(err) => {
            let text = format!("cannot read request body: {err}\n");
            return super::routes::text(StatusCode::BAD_REQUEST, text);
        }
    };
    let doc = json!({
        "name": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "version": format!("{:?}", parts.version),
        "headers": headers_json(&parts.headers),
        "body_bytes": summary.bytes,
        "body_sha256": summary.sha256,
    });
    Response::builder()
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body::full(doc.to_string()))
        .expect("static response parts are valid")
}

/// Header name → value; repeated headers joined with `", "`.
fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect::<Vec<_>>()
            .join(", ");
        map.insert(name.as_str().to_string(), Value::String(joined));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_headers_are_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "1".parse().unwrap());
        headers.append("x-a", "2".parse().unwrap());
        headers.append("x-b", "3".parse().unwrap());
        let json = headers_json(&headers);
        assert_eq!(json["x-a"], "1, 2");
        assert_eq!(json["x-b"], "3");
    }
}
