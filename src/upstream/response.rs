//! A backend's response body, from either client: hyper's (HTTP/2, TLS,
//! request bodies, upgrades) or the native HTTP/1.1 one ([`super::native`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::native;

/// The body of a backend's response.
pub enum UpBody {
    Hyper(Incoming),
    Native(native::body::Body),
}

/// Why reading a backend's response body failed.
#[derive(Debug)]
pub enum UpError {
    Hyper(hyper::Error),
    Native(native::Error),
}

impl std::fmt::Display for UpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpError::Hyper(e) => e.fmt(f),
            UpError::Native(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for UpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpError::Hyper(e) => Some(e),
            UpError::Native(e) => Some(e),
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
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpBody::Hyper(b) => b.is_end_stream(),
            UpBody::Native(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpBody::Hyper(b) => b.size_hint(),
            UpBody::Native(b) => b.size_hint(),
        }
    }
}
