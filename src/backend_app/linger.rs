//! A lingering close for the backend's connections.
//!
//! Closing a socket that still has unread input makes the kernel send RST,
//! and an RST can destroy response bytes the peer has received but not read
//! yet. After a graceful shutdown (GOAWAY) the client still sends a few
//! frames (WINDOW_UPDATE, streams it opened before it saw the GOAWAY), so a
//! plain close would cut the last responses. As RFC 9112 §9.6 and RFC 9113
//! §6.8 advise, the connection here is half-closed first (FIN after the
//! last response), then read until the client closes (or [`LINGER`]
//! passes), then closed. hyper owns the stream while it serves, so it gets a
//! shared handle ([`Shared`]) and the socket outlives hyper's end of it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Longest wait for the client to close after the backend has. 2 s.
pub const LINGER: Duration = Duration::from_secs(2);

/// A TCP stream shared with the code that closes it.
pub struct Shared(pub Arc<TcpStream>);

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(half_close(&self.0))
    }
}

fn half_close(s: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(s).shutdown(std::net::Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        r => r,
    }
}

/// Half-closes `s`, then reads and discards until the peer closes or
/// [`LINGER`] passes; the socket closes when the last handle is dropped.
pub async fn close(s: Arc<TcpStream>) {
    let _ = half_close(&s);
    let mut buf = [0u8; 4096];
    let drain = async {
        loop {
            if s.readable().await.is_err() {
                return;
            }
            match s.try_read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
