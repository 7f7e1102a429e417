//! drover's own HTTP/2 server for client connections (prior-knowledge h2c
//! on plain listeners, ALPN `h2` on TLS ones), on [`crate::h2wire`]: one task
//! per connection, no task per stream (see [`conn`]). `server.http2_codec =
//! "hyper"` serves HTTP/2 with hyper's server (the `h2` crate) instead.
//!
//! What it offers a client: SETTINGS_MAX_CONCURRENT_STREAMS 200, a 1 MiB
//! stream window and a 2 MiB connection window for request bodies,
//! SETTINGS_MAX_HEADER_LIST_SIZE = `server.max_header_bytes`, frames of at
//! most 16 KiB; no server push, no extended CONNECT.

pub mod conn;
pub mod request;
pub mod response;

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::proxy::body::ProxyBody;
use crate::proxy::conn_activity::ConnActivity;
use crate::proxy::server::stopped;
use crate::upstream::client_in::ClientIn;

pub use crate::proxy::conn_activity::Limits;

/// How long a connection that is over may take to write what it has left
/// (the answers already made, the GOAWAY): 5 s.
const LAST_WRITES: Duration = Duration::from_secs(5);

/// Serves an HTTP/2 connection whose first bytes (`read`: the preface, or
/// part of it, and maybe more) were read already. `dispatch` turns a request
/// into its response, as on the other paths.
pub async fn serve<S, F, Fut>(
    io: S,
    read: BytesMut,
    limits: Limits,
    activity: Arc<ConnActivity>,
    mut shutdown: watch::Receiver<bool>,
    dispatch: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientIn>) -> Fut,
    Fut: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    let mut conn = conn::Conn::new(io, read, limits, dispatch);
    let next = |a: &ConnActivity| Instant::now() + a.next_check(limits.idle, limits.head);
    let mut check = pin!(tokio::time::sleep_until(next(&activity)));
    let mut stop = pin!(stopped(&mut shutdown));
    let mut stopping = false;
    let mut last_writes = None;
    poll_fn(|cx| {
        if conn.finishing() {
            // The connection is over: its last bytes get a bounded time.
            let left = last_writes.get_or_insert_with(|| Box::pin(tokio::time::sleep(LAST_WRITES)));
            if left.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            return conn.poll_serve(cx);
        }
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            stopping = true;
            conn.close_gracefully();
        }
        while check.as_mut().poll(cx).is_ready() {
            if activity.head_time_left(limits.head) == Some(Duration::ZERO) {
                tracing::debug!("no HTTP/2 request within header_read_timeout; closing");
                return Poll::Ready(());
            }
            if conn.quiet() && activity.idle_for() >= limits.idle {
                conn.close_gracefully();
            }
            check.as_mut().reset(next(&activity));
        }
        conn.poll_serve(cx)
    })
    .await
}

#[cfg(test)]
mod tests;
