//! `Upgrade` (WebSocket and others): after a `101`, bytes are copied both ways
//! between the client and the backend until either side closes.

use std::net::SocketAddr;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::Completion;

/// Spawns the tunnel; `done` (the member's in-flight count, the access log)
/// completes when the tunnel closes.
pub fn tunnel(client: OnUpgrade, backend: OnUpgrade, done: Completion, addr: SocketAddr) {
    tokio::spawn(async move {
        let _done = done;
        let (c, b) = match tokio::try_join!(client, backend) {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(backend = %addr, error = %e, "upgrade failed");
                return;
            }
        };
        let mut c = TokioIo::new(c);
        let mut b = TokioIo::new(b);
        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
            tracing::debug!(backend = %addr, error = %e, "upgraded connection ended");
        }
    });
}
