//! The connection's task: it owns the socket, reads frames into one buffer
//! and hands them to [`Conn::on_bytes`], and writes what requests and
//! replies queued in `Conn::out` — one write (and flush) per poll round for
//! everything queued since the last, however many streams queued it.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::conn::{lock, Conn, Shared};
use super::error::{H2Error, Kind};
use super::MAX_SEND_BUFFER;
use crate::h2wire::frame::{self, Reason};

/// Read calls per poll before the driver yields to other tasks: 32 (it is
/// unconstrained by tokio's budget; a backend streaming frames that need no
/// answer would otherwise hold the thread).
const READS_PER_POLL: u32 = 32;
/// The read buffer grows by this much when it runs out of room: 32 KiB.
const READ_CHUNK: usize = 32 * 1024;
/// Queued output above which the driver stops reading until it has written
/// some: a backend that sends PINGs or SETTINGS to answer but does not read
/// the answers is not read either. [`MAX_SEND_BUFFER`] + 256 KiB.
pub(super) const READ_PAUSE: usize = MAX_SEND_BUFFER + 256 * 1024;
/// How long the last frames (GOAWAY, RST_STREAM) get to go out when the
/// connection closes: 1 s.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

struct Driver<IO> {
    io: IO,
    rbuf: BytesMut,
    shared: Shared,
    /// Bytes written since the last flush.
    unflushed: bool,
    /// The socket failed: nothing more is written.
    broken: bool,
}

/// Runs the connection until it ends, then `on_close`.
pub(super) async fn run<IO>(io: IO, shared: Shared, addr: SocketAddr, on_close: impl FnOnce())
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let _guard = EndGuard(shared.clone());
    let mut d = Driver {
        io,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        shared,
        unflushed: false,
        broken: false,
    };
    poll_fn(|cx| d.poll(cx)).await;
    if !d.broken {
        let _ = tokio::time::timeout(CLOSE_WAIT, d.finish()).await;
    }
    if let Some(e) = &lock(&d.shared).closed {
        tracing::debug!(backend = %addr, error = %e, "upstream h2 connection ended");
    }
    on_close();
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared.clone();
        let mut conn = lock(&shared);
        let mut reads = READS_PER_POLL;
        loop {
            let mut busy = false;
            while conn.closed.is_none() && conn.out.len() < READ_PAUSE {
                if reads == 0 {
                    // Yield (and come back): others' turn.
                    cx.waker().wake_by_ref();
                    break;
                }
                reads -= 1;
                if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                    self.rbuf.reserve(READ_CHUNK);
                }
                match pin!(self.io.read_buf(&mut self.rbuf)).poll(cx) {
                    Poll::Ready(Ok(0)) => {
                        let eof = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the backend closed the connection",
                        );
                        conn.close(H2Error::io(eof));
                    }
                    Poll::Ready(Ok(_)) => {
                        busy = true;
                        if let Err(f) = conn.on_bytes(&mut self.rbuf) {
                            conn.connection_error(f.0, f.1);
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        self.broken = true;
                        conn.close(H2Error::io(e));
                    }
                    Poll::Pending => break,
                }
            }
            busy |= self.write(cx, &mut conn);
            if conn.out.len() < MAX_SEND_BUFFER {
                for w in conn.buffer_waiters.drain(..) {
                    w.wake();
                }
            }
            if self.broken || conn.closed.is_some() {
                // What is left to write (GOAWAY, RST_STREAM), `finish` writes
                // within CLOSE_WAIT.
                return Poll::Ready(());
            }
            if conn.active == 0 && (conn.senders == 0 || conn.goaway.is_some()) {
                if conn.goaway.is_none() {
                    frame::write_goaway(&mut conn.out, 0, Reason::NO_ERROR, b"");
                }
                conn.close(H2Error::new(Kind::Closed, "no longer used"));
                continue;
            }
            if !busy {
                conn.driver = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
    }

    /// Writes what is queued, flushes what was written; whether it wrote.
    fn write(&mut self, cx: &mut Context<'_>, conn: &mut Conn) -> bool {
        let mut wrote = false;
        while !conn.out.is_empty() && !self.broken {
            match Pin::new(&mut self.io).poll_write(cx, &conn.out) {
                Poll::Ready(Ok(0)) => self.fail(conn, io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    conn.out.advance(n);
                    self.unflushed = true;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => self.fail(conn, e),
                Poll::Pending => break,
            }
        }
        if self.unflushed && !self.broken {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => self.fail(conn, e),
                Poll::Pending => {}
            }
        }
        wrote
    }

    fn fail(&mut self, conn: &mut Conn, e: io::Error) {
        self.broken = true;
        conn.out.clear();
        conn.close(H2Error::io(e));
    }

    /// Writes the last frames and closes the write side.
    async fn finish(&mut self) {
        let out = std::mem::take(&mut lock(&self.shared).out);
        if self.io.write_all(&out).await.is_ok() {
            let _ = self.io.shutdown().await;
        }
    }
}

/// Fails what is left if the driver's task is dropped before its end (its
/// runtime shut down): no request waits for a connection that is gone.
struct EndGuard(Shared);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let mut conn = lock(&self.0);
        if conn.closed.is_none() {
            conn.close(H2Error::new(Kind::Closed, "its task ended"));
        }
        conn.fail_all(&H2Error::new(Kind::Closed, "its task ended"));
    }
}
