//! The response body of a native exchange: read from its connection as it
//! is polled (in the polling task: no connection task, no channel), cut by
//! the [`Decoder`](super::decode::Decoder); at its end the connection goes
//! back to the idle pool, unless the response said it would close or left
//! bytes that are not its own. Dropped before its end, it closes the
//! connection (a half-read body cannot be resumed).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use super::decode::{Decoder, Step};
use super::head;
use super::{put_idle, Conn, Error, ErrorKind, Key, READ_MAX, READ_START};

/// A body read asking for more room than this (16 KiB) marks the buffer as
/// grown: an idle connection does not keep it.
const KEEP_BUF: usize = 16 * 1024;

/// A response body streamed from a native connection.
pub struct Body {
    conn: Option<Conn>,
    decoder: Decoder,
    /// The backend closed its side.
    eof: bool,
    /// Where the connection goes at the end; `None` when it cannot be reused.
    back_to: Option<(Key, Duration)>,
}

/// The response for `head`, with its body reading from `conn`.
pub fn response(
    head: head::Response,
    conn: Conn,
    key: Key,
    idle_for: Duration,
) -> http::Response<Body> {
    let mut body = Body {
        conn: Some(conn),
        decoder: Decoder::new(head.framing),
        eof: false,
        back_to: head.reusable.then_some((key, idle_for)),
    };
    if body.decoder.is_done() {
        body.release();
    }
    let mut resp = http::Response::new(body);
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
    *resp.headers_mut() = head.headers;
    if let Some(r) = head.reason {
        // A phrase that is not the canonical one, kept as hyper's client does.
        if let Ok(r) = hyper::ext::ReasonPhrase::try_from(r) {
            resp.extensions_mut().insert(r);
        }
    }
    resp
}

impl Body {
    /// The body is over: the connection goes back to the pool if it can
    /// carry another exchange (nothing beyond the body was read).
    fn release(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if let (Some((key, idle_for)), true, false) =
                (self.back_to, conn.buf.is_empty(), self.eof)
            {
                if conn.grown {
                    // Grown for a large body: an idle connection keeps no more
                    // than a small buffer (RSS with many idle connections).
                    conn.buf = BytesMut::new();
                    conn.grown = false;
                }
                put_idle(key, conn, idle_for);
            }
        }
    }

    fn fail(&mut self, kind: ErrorKind) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.conn = None;
        Poll::Ready(Some(Err(Error::new(kind, true, true))))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.step(&mut conn.buf, this.eof) {
                Err(e) => return this.fail(ErrorKind::Body(e)),
                Ok(Step::Data(d)) => {
                    if this.decoder.is_done() {
                        this.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Ok(Step::Trailers(t)) => {
                    this.release();
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                Ok(Step::End) => {
                    this.release();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
            }
            // Room for what the framing says is coming (at most READ_MAX).
            let want = this
                .decoder
                .exact_left()
                .map_or(READ_START, |n| n.clamp(1024, READ_MAX as u64) as usize);
            if conn.buf.capacity() - conn.buf.len() < want.min(READ_START) {
                conn.buf.reserve(want);
                conn.grown |= want > KEEP_BUF;
            }
            loop {
                if let Err(e) = ready!(conn.io.poll_read_ready(cx)) {
                    return this.fail(ErrorKind::Io(e));
                }
                match conn.io.try_read_buf(&mut conn.buf) {
                    Ok(0) => {
                        this.eof = true;
                        break;
                    }
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return this.fail(ErrorKind::Io(e)),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.exact_left() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
