//! A backend's response body, from one of the clients: hyper's HTTP/1.1 one
//! (TLS, request bodies, upgrades), the native HTTP/1.1 one
//! ([`super::native`]), or the HTTP/2 one ([`super::h2_client`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::{h2_client, native};

/// The body of a backend's response.
pub enum UpBody {
    Hyper(Incoming),
    Native(native::body::Body),
    H2(h2_client::RespBody),
}

/// Why reading a backend's response body failed.
#[derive(Debug)]
pub enum UpError {
    Hyper(hyper::Error),
    Native(native::Error),
    H2(h2_client::RespError),
}

impl std::fmt::Display for UpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpError::Hyper(e) => e.fmt(f),
            UpError::Native(e) => e.fmt(f),
            UpError::H2(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for UpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpError::Hyper(e) => Some(e),
            UpError::Native(e) => Some(e),
            UpError::H2(e) => Some(e),
        }
    }
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = UpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpError>>> {
        match self.get_mut() {
            UpBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(UpError::Hyper))),
            UpBody::Native(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(UpError::Native))),
            UpBody::H2(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(UpError::H2))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Hyper(b) => b.is_end_stream(),
            UpBody::Native(b) => b.is_end_stream(),
            UpBody::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Hyper(b) => b.size_hint(),
            UpBody::Native(b) => b.size_hint(),
            UpBody::H2(b) => b.size_hint(),
        }
    }
}
