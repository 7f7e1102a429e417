//! A stream wrapper that reports the bytes moving through it, for timeouts
//! that depend on activity (client connections, upgrade tunnels).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a [`Watched`] stream reports to.
pub trait Watch {
    /// `new` (never empty) was just read.
    fn read(&mut self, new: &[u8]);
    /// `n` (> 0) bytes were just written. Default: nothing.
    fn wrote(&mut self, _n: usize) {}
}

/// `io`, reporting every read and write to `watch`; writes are passed through
/// untouched (vectored writes included).
pub struct Watched<I, W> {
    io: I,
    watch: W,
}

impl<I, W> Watched<I, W> {
    pub fn new(io: I, watch: W) -> Watched<I, W> {
        Watched { io, watch }
    }
}

impl<I: AsyncRead + Unpin, W: Watch + Unpin> AsyncRead for Watched<I, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = buf.filled().get(before..).unwrap_or_default();
            if !new.is_empty() {
                this.watch.read(new);
            }
        }
        r
    }
}

impl<I: AsyncWrite + Unpin, W: Watch + Unpin> AsyncWrite for Watched<I, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                this.watch.wrote(n);
            }
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                this.watch.wrote(n);
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
