//! The admin API client of `drover ctl` (hyper-util's client, plain HTTP).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Time allowed for one admin request. 10 s.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call failed, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The admin API could not be reached.
    #[error("cannot reach drover admin at {url}: {why} — is drover running? set --admin or DROVER_ADMIN")]
    Unreachable { url: String, why: String },
    /// The API answered with an error status.
    #[error("drover refused: {status} {message}{detail}")]
    Refused {
        status: StatusCode,
        message: String,
        detail: String,
    },
    /// Bad `--admin` value or an unreadable answer.
    #[error("{0}")]
    Other(String),
}

/// A client for one admin base URL.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// `127.0.0.1:9090` -> `http://127.0.0.1:9090`; trailing `/` removed.
pub fn normalize_base(admin: &str) -> Result<String, CtlError> {
    let admin = admin.trim().trim_end_matches('/');
    if admin.starts_with("https://") {
        return Err(CtlError::Other(format!(
            "--admin {admin}: https is not supported by drover ctl; the admin API serves plain HTTP (use http:// or an SSH tunnel)"
        )));
    }
    let url = if admin.starts_with("http://") {
        admin.to_string()
    } else {
        format!("http://{admin}")
    };
    url.parse::<http::Uri>()
        .ok()
        .filter(|u| u.host().is_some())
        .ok_or_else(|| {
            CtlError::Other(format!(
                "--admin {admin:?} is not a URL; expected something like http://127.0.0.1:9090"
            ))
        })?;
    Ok(url)
}

/// The innermost cause, phrased like "connection refused".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if let Some(io) = cur.downcast_ref::<std::io::Error>() {
        return match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::TimedOut => "connection timed out".into(),
            _ => io.to_string(),
        };
    }
    cur.to_string()
}

impl AdminClient {
    /// A client for `admin` (URL or host:port) with an optional bearer token.
    pub fn new(admin: &str, token: Option<String>) -> Result<AdminClient, CtlError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Ok(AdminClient {
            base: normalize_base(admin)?,
            token,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The base URL in use.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; a JSON (or text) answer on 2xx, [`CtlError`] otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CtlError> {
        // Writes carry the JSON type even without a body: the API requires it.
        let write = !matches!(method, Method::GET | Method::HEAD);
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header(
                "user-agent",
                concat!("drover-ctl/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if write || body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let bytes = body.map_or_else(Bytes::new, |v| Bytes::from(v.to_string()));
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| CtlError::Other(format!("bad request to {}{path}: {e}", self.base)))?;
        let unreachable = |why: String| CtlError::Unreachable {
            url: self.base.clone(),
            why,
        };
        let resp = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| unreachable(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| unreachable(root_cause(&e)))?;
        let status = resp.status();
        let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("the answer stalled".into()))?
            .map_err(|e| unreachable(root_cause(&e)))?
            .to_bytes();
        let value = serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.as_str().unwrap_or("").trim().to_string());
        let detail = match &value["detail"] {
            Value::Null => String::new(),
            Value::String(s) => format!(": {s}"),
            Value::Array(a) => format!(
                ":\n  {}",
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
            other => format!(" ({other})"),
        };
        Err(CtlError::Refused {
            status,
            message: if message.is_empty() {
                status.canonical_reason().unwrap_or("").to_string()
            } else {
                message
            },
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_urls_are_normalized() {
        assert_eq!(
            normalize_base("127.0.0.1:9090").unwrap(),
            "http://127.0.0.1:9090"
        );
        assert_eq!(normalize_base("http://h:1/").unwrap(), "http://h:1");
        assert!(normalize_base("https://h:1").is_err());
        assert!(normalize_base("not a url").is_err());
    }
}
