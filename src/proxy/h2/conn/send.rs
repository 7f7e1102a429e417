//! The sending half of a client HTTP/2 connection: response heads, bodies
//! under the client's windows, trailers, and the window given back for the
//! request bodies the backends took.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use bytes::Buf;
use http::{Request, Response};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{inq, response, Conn, In, Out, CONN_WINDOW, IDLE_FRAME_BUDGET, OUT_HIGH, RESET_BUDGET};
use crate::h2wire::frame::{self, Reason};
use crate::proxy::body::ProxyBody;
use crate::upstream::client_in::ClientIn;

impl<S, F, Fut> Conn<S, F, Fut>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request<ClientIn>) -> Fut,
    Fut: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    /// A request's response: its head is written, its body is sent by [`Self::pump`].
    pub(super) fn respond(&mut self, id: u32, resp: Response<ProxyBody>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let (parts, body) = resp.into_parts();
        let empty = s.head_request || body.is_end_stream();
        let length = if body.is_end_stream() {
            None
        } else {
            body.size_hint().exact()
        };
        response::head(
            &mut self.out,
            id,
            parts.status,
            &parts.headers,
            length,
            empty,
            self.peer.max_frame_size,
        );
        crate::upstream::maps::give(parts.headers);
        if empty {
            s.out = Out::Done;
            drop(body);
            self.finish_send(id);
        } else {
            s.out = Out::Body {
                body: Box::pin(body),
                held: None,
                last: false,
            };
        }
    }

    /// The stream's response has been sent whole.
    pub(super) fn finish_send(&mut self, id: u32) {
        self.resets = (self.resets + 1).min(RESET_BUDGET);
        self.idle_frames = (self.idle_frames + 100).min(IDLE_FRAME_BUDGET);
        if let Some(s) = self.streams.get(&id) {
            if s.recv_open {
                // The request is over for us (§8.1): stop the client's body.
                frame::write_rst(&mut self.out, id, Reason::NO_ERROR);
                self.forget(id);
            } else {
                self.streams.remove(&id);
            }
        }
    }

    /// Gives window back for the request body bytes the backends took, and
    /// sends a `100 Continue` when a body that asked for one is first read.
    pub(super) fn give_back(&mut self, cx: &mut Context<'_>) {
        for (&id, s) in self.streams.iter_mut() {
            let In::Queue(q) = &s.body else { continue };
            let mut q = inq::lock(q);
            let n = q.take_consumed(cx.waker());
            if s.expects_continue && q.polled() {
                s.expects_continue = false;
                response::status_only(&mut self.out, id, 100, false, self.peer.max_frame_size);
            }
            drop(q);
            if n == 0 {
                continue;
            }
            self.conn_credit = self.conn_credit.saturating_add(n);
            if s.recv_open {
                s.recv_window += i64::from(n);
                frame::write_window_update(&mut self.out, id, n);
            }
        }
        if self.conn_credit >= CONN_WINDOW / 4 || (self.conn_credit > 0 && self.quiet()) {
            let n = std::mem::take(&mut self.conn_credit);
            self.conn_recv += i64::from(n);
            frame::write_window_update(&mut self.out, 0, n);
        }
    }

    /// Sends response body data as the windows allow. Returns whether it
    /// stopped because the write buffer was full.
    pub(super) fn pump(&mut self, cx: &mut Context<'_>) -> bool {
        let max_frame = self.peer.max_frame_size as usize;
        let mut done = Vec::new();
        let mut full = false;
        for (&id, s) in self.streams.iter_mut() {
            let Out::Body { body, held, last } = &mut s.out else {
                continue;
            };
            loop {
                if self.out.len() >= OUT_HIGH {
                    full = true;
                    break;
                }
                if let Some(chunk) = held {
                    let window = s.send_window.min(self.conn_send);
                    if window <= 0 {
                        break;
                    }
                    let n = chunk.len().min(max_frame).min(window as usize);
                    let end = *last && n == chunk.len();
                    frame::write_data_head(&mut self.out, id, n, end);
                    self.out.extend_from_slice(&chunk[..n]);
                    chunk.advance(n);
                    s.send_window -= n as i64;
                    self.conn_send -= n as i64;
                    if chunk.is_empty() {
                        *held = None;
                        if *last {
                            done.push(id);
                            break;
                        }
                    }
                    continue;
                }
                match body.as_mut().poll_frame(cx) {
                    Poll::Pending => break,
                    Poll::Ready(None) => {
                        frame::write_data_head(&mut self.out, id, 0, true);
                        done.push(id);
                        break;
                    }
                    Poll::Ready(Some(Ok(f))) => match f.into_data() {
                        Ok(d) => {
                            *last = body.is_end_stream();
                            if d.is_empty() {
                                if *last {
                                    frame::write_data_head(&mut self.out, id, 0, true);
                                    done.push(id);
                                    break;
                                }
                            } else {
                                *held = Some(d);
                            }
                        }
                        Err(f) => {
                            if let Ok(t) = f.into_trailers() {
                                response::trailers(&mut self.out, id, &t, self.peer.max_frame_size);
                                done.push(id);
                                break;
                            }
                        }
                    },
                    Poll::Ready(Some(Err(e))) => {
                        tracing::debug!(stream = id, error = %e, "response body failed; resetting the client's stream");
                        frame::write_rst(&mut self.out, id, Reason::INTERNAL_ERROR);
                        s.out = Out::Done;
                        s.recv_open = false;
                        done.push(id);
                        break;
                    }
                }
            }
        }
        for id in done {
            if let Some(s) = self.streams.get_mut(&id) {
                // The body is dropped here: its completion runs.
                s.out = Out::Done;
            }
            self.finish_send(id);
        }
        full
    }
}
