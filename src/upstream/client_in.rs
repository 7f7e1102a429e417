//! The client's request body as forwarding receives it ([`ClientIn`]): read
//! by hyper's server, or by drover's own HTTP/1 codec (`proxy::h1`), whole or
//! streamed ([`NativeBody`]). Here, below the proxy, because the body sent
//! upstream ([`super::body`]) reads it.
//!
//! A request body the native codec streams from the client connection: the
//! connection's task reads the socket and hands `Content-Length` bytes over
//! a one-slot channel (so the backend's pace holds the client back), the
//! upstream exchange polls them as a [`http_body::Body`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use hyper::body::Incoming;

use super::body::BodyError;

/// Chunks in flight between the connection and the upstream exchange.
pub const SLOTS: usize = 1;

/// The receiving end (in the request).
#[derive(Debug)]
pub struct NativeBody {
    rx: mpsc::Receiver<Bytes>,
    /// Bytes still to come.
    left: u64,
}

/// A body of `len` bytes and the sender the connection feeds it through.
pub fn channel(len: u64) -> (mpsc::Sender<Bytes>, NativeBody) {
    let (tx, rx) = mpsc::channel(SLOTS);
    (tx, NativeBody { rx, left: len })
}

impl Body for NativeBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(b)) => {
                // The connection never sends past the length.
                self.left = self.left.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Poll::Ready(None) => Poll::Ready(Some(Err(BodyError::Cut))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn ends_at_its_length_or_fails_when_cut() {
        let (tx, mut body) = channel(5);
        assert_eq!(body.size_hint().exact(), Some(5));
        let feed = tokio::spawn(async move {
            tx.send(Bytes::from_static(b"he")).await.unwrap();
            tx.send(Bytes::from_static(b"llo")).await.unwrap();
        });
        let mut got = Vec::new();
        while let Some(f) = body.frame().await {
            got.extend_from_slice(&f.unwrap().into_data().unwrap());
        }
        assert_eq!(got, b"hello");
        assert!(body.is_end_stream());
        feed.await.unwrap();
        let (tx, mut body) = channel(5);
        tx.send(Bytes::from_static(b"he")).await.unwrap();
        drop(tx);
        assert!(body.frame().await.unwrap().is_ok());
        let e = body.frame().await.unwrap().unwrap_err();
        assert_eq!(e.fault(), crate::proxy::errors::ClientFault::Gone);
    }
}

/// A client's request body as the forwarding code receives it.
#[derive(Debug)]
pub enum ClientIn {
    /// Read by hyper's server.
    Hyper(Incoming),
    /// Read whole by the native codec (empty when the request has no body).
    Full(Bytes),
    /// Streamed by the native codec from the client connection.
    Stream(NativeBody),
    /// Streamed by drover's own HTTP/2 server from the client's stream.
    H2(super::client_in_h2::H2In),
}

impl Body for ClientIn {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ClientIn::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(BodyError::Client),
            ClientIn::Full(b) if b.is_empty() => Poll::Ready(None),
            ClientIn::Full(b) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(b))))),
            ClientIn::Stream(b) => Pin::new(b).poll_frame(cx),
            ClientIn::H2(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientIn::Hyper(b) => b.is_end_stream(),
            ClientIn::Full(b) => b.is_empty(),
            ClientIn::Stream(b) => b.is_end_stream(),
            ClientIn::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientIn::Hyper(b) => b.size_hint(),
            ClientIn::Full(b) => SizeHint::with_exact(b.len() as u64),
            ClientIn::Stream(b) => b.size_hint(),
            ClientIn::H2(b) => b.size_hint(),
        }
    }
}
