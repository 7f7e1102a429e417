//! Connection upgrades: `/ws` (WebSocket echo) and `/upgrade/echo` (raw byte echo).

use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::body;
use super::body::Body;
use super::routes::text;

/// `/ws`: answers the WebSocket handshake (RFC 6455 §4.2) and echoes messages.
///
/// Only the HTTP/1.1 upgrade is supported (not RFC 8441 over HTTP/2).
pub(super) fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let headers = req.headers();
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let (true, Some(key), true) = (wants_upgrade(headers, "websocket"), key, version_ok) else {
        return upgrade_required("websocket");
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Some(io) = upgraded(on_upgrade).await {
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            ws_echo(ws).await;
        }
    });
    switching("websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(body::empty())
        .expect("static response parts are valid")
}

/// `/upgrade/echo`: switches to protocol `echo` and echoes raw bytes.
pub(super) fn raw_echo(mut req: Request<Incoming>) -> Response<Body> {
    if !wants_upgrade(req.headers(), "echo") {
        return upgrade_required("echo");
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Some(io) = upgraded(on_upgrade).await {
            let (mut reader, mut writer) = tokio::io::split(io);
            if let Err(err) = tokio::io::copy(&mut reader, &mut writer).await {
                tracing::debug!(error = %err, "upgraded echo connection failed");
            }
        }
    });
    switching("echo")
        .body(body::empty())
        .expect("static response parts are valid")
}

/// Echoes text and binary messages until the peer closes or errors.
async fn ws_echo(mut ws: WebSocketStream<TokioIo<Upgraded>>) {
    while let Some(msg) = ws.next().await {
        let msg = match msg {
            Ok(msg) => msg,
            Err(err) => {
                tracing::debug!(error = %err, "websocket read failed");
                return;
            }
        };
        // Ping/pong and close replies are handled inside tungstenite.
        if matches!(msg, Message::Text(_) | Message::Binary(_)) {
            if let Err(err) = ws.send(msg).await {
                tracing::debug!(error = %err, "websocket write failed");
                return;
            }
        }
    }
}

/// Waits for hyper to hand over the upgraded connection.
async fn upgraded(on_upgrade: OnUpgrade) -> Option<TokioIo<Upgraded>> {
    match on_upgrade.await {
        Ok(io) => Some(TokioIo::new(io)),
        Err(err) => {
            tracing::debug!(error = %err, "connection upgrade failed");
            None
        }
    }
}

/// Whether the request asks to upgrade to `protocol` (`Connection: upgrade`
/// and `Upgrade: PROTOCOL`, both case-insensitive, RFC 9110 §7.8).
fn wants_upgrade(headers: &HeaderMap, protocol: &str) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade_matches = headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(protocol));
    connection_upgrade && upgrade_matches
}

/// The start of a `101 Switching Protocols` response to `protocol`.
fn switching(protocol: &'static str) -> http::response::Builder {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, protocol)
}

/// `426 Upgrade Required` naming the protocol the endpoint expects.
fn upgrade_required(protocol: &'static str) -> Response<Body> {
    let msg = format!("this endpoint needs Connection: upgrade and Upgrade: {protocol}\n");
    let mut resp = text(StatusCode::UPGRADE_REQUIRED, msg);
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(protocol));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_tokens_are_case_insensitive_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        headers.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        assert!(wants_upgrade(&headers, "websocket"));
        assert!(!wants_upgrade(&headers, "echo"));
        headers.remove(header::CONNECTION);
        assert!(!wants_upgrade(&headers, "websocket"));
    }
}
