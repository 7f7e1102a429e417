//! Why an HTTP/2 exchange failed: [`H2Error`] (a stream or its connection),
//! [`Error`] (that or the request body), [`Failed`] (a failed
//! [`super::send`]) and [`RespError`] (a response body).

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use http::Request;

use crate::h2wire::frame::Reason;

/// What ended a stream, or the connection it was on.
#[derive(Debug, Clone)]
pub struct H2Error {
    kind: Kind,
    /// What went wrong, in words (for protocol errors and local ends).
    why: &'static str,
}

/// Who ended the stream, and how.
#[derive(Debug, Clone)]
pub enum Kind {
    /// The backend reset the stream (RST_STREAM with this reason).
    Reset(Reason),
    /// The backend's GOAWAY (with this reason). `refused`: the stream was
    /// above its last stream id, so the backend did not process it
    /// (RFC 9113 §6.8); else the connection closed after the GOAWAY before
    /// the stream's end.
    GoAway { reason: Reason, refused: bool },
    /// The backend broke the protocol: drover reset the stream with this
    /// reason, or closed the connection with it (`connection`, GOAWAY).
    Protocol { reason: Reason, connection: bool },
    /// drover cancelled the stream (its request or response was dropped).
    Cancelled,
    /// The connection closed on drover's side (no longer used).
    Closed,
    /// Reading or writing the connection failed, or the backend closed it.
    Io(Arc<io::Error>),
}

impl H2Error {
    pub(super) fn new(kind: Kind, why: &'static str) -> H2Error {
        H2Error { kind, why }
    }

    pub(super) fn io(e: io::Error) -> H2Error {
        H2Error::new(Kind::Io(Arc::new(e)), "")
    }

    /// How the stream ended.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The HTTP/2 error code, when one was sent or received (none for I/O
    /// failures and drover's own ends).
    pub fn reason(&self) -> Option<Reason> {
        match self.kind {
            Kind::Reset(r) => Some(r),
            Kind::GoAway { reason, .. } => Some(reason),
            Kind::Protocol { reason, .. } => Some(reason),
            Kind::Cancelled => Some(Reason::CANCEL),
            Kind::Closed | Kind::Io(_) => None,
        }
    }

    /// Whether the backend sent the reason (RST_STREAM or GOAWAY).
    pub fn is_remote(&self) -> bool {
        matches!(self.kind, Kind::Reset(_) | Kind::GoAway { .. })
    }

    /// Whether the backend's GOAWAY ended the stream.
    pub fn is_go_away(&self) -> bool {
        matches!(self.kind, Kind::GoAway { .. })
    }

    /// Whether the connection's I/O failed (or the backend closed it).
    pub fn is_io(&self) -> bool {
        matches!(self.kind, Kind::Io(_))
    }

    /// Whether the backend certainly did not process the request: its
    /// stream refused by GOAWAY (above the last stream id the backend
    /// accepted, RFC 9113 §6.8) or reset with REFUSED_STREAM (§8.7).
    pub fn unprocessed(&self) -> bool {
        matches!(
            self.kind,
            Kind::Reset(Reason::REFUSED_STREAM) | Kind::GoAway { refused: true, .. }
        )
    }

    /// The backend ended the stream with NO_ERROR (a reset, or GOAWAY and
    /// close): before the response's end, a cut response.
    fn no_error_from_backend(&self) -> bool {
        self.is_remote() && self.reason() == Some(Reason::NO_ERROR)
    }
}

impl std::fmt::Display for H2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Reset(r) => write!(f, "stream reset by the backend: {r}"),
            Kind::GoAway {
                reason,
                refused: true,
            } => write!(
                f,
                "stream refused by the backend's GOAWAY ({reason}): not processed"
            ),
            Kind::GoAway { reason, .. } => {
                write!(f, "connection closed after the backend's GOAWAY ({reason})")
            }
            Kind::Protocol {
                reason,
                connection: false,
            } => write!(
                f,
                "the backend broke HTTP/2 ({}): stream reset with {reason}",
                self.why
            ),
            Kind::Protocol { reason, .. } => write!(
                f,
                "the backend broke HTTP/2 ({}): connection closed with {reason}",
                self.why
            ),
            Kind::Cancelled => write!(f, "stream cancelled ({})", self.why),
            Kind::Closed => write!(f, "connection closed ({})", self.why),
            Kind::Io(e) => write!(f, "connection error: {e}"),
        }
    }
}

impl StdError for H2Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            Kind::Io(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum Error {
    /// The connection or the stream: reset, GOAWAY, a protocol error, I/O.
    H2(H2Error),
    /// Reading the request body failed (the client's fault: the error is the
    /// body's own, e.g. [`crate::upstream::body::BodyError`]).
    Body(Box<dyn StdError + Send + Sync>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::H2(e) => write!(f, "http2 error: {e}"),
            Error::Body(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::H2(e) => Some(e),
            Error::Body(e) => Some(&**e),
        }
    }
}

impl Error {
    /// Whether the backend certainly did not process the request
    /// ([`H2Error::unprocessed`]).
    pub fn unprocessed(&self) -> bool {
        match self {
            Error::H2(e) => e.unprocessed(),
            Error::Body(_) => false,
        }
    }
}

/// A failed [`super::send`].
pub struct Failed<B> {
    pub error: Error,
    /// Whether the request's head went out (a stream was opened).
    pub sent: bool,
    /// The request, when nothing of it was sent (the connection was closed
    /// or going away before the stream opened).
    pub request: Option<Request<B>>,
}

impl<B> std::fmt::Debug for Failed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Failed")
            .field("error", &self.error)
            .field("sent", &self.sent)
            .finish()
    }
}

/// Why an HTTP/2 response body failed.
#[derive(Debug)]
pub enum RespError {
    /// The stream or the connection failed (a reset, GOAWAY, a protocol
    /// error, I/O).
    H2(H2Error),
    /// The backend ended the stream with NO_ERROR (a reset, or GOAWAY and
    /// close) before the response's end. It carries no reason: a client's
    /// stream reset for it must not say NO_ERROR (that would tell an HTTP/2
    /// client that the shorter response was whole).
    Cut,
}

impl RespError {
    /// The HTTP/2 error code behind it (none for [`RespError::Cut`] and I/O).
    pub fn reason(&self) -> Option<Reason> {
        match self {
            RespError::H2(e) => e.reason(),
            RespError::Cut => None,
        }
    }
}

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RespError::H2(e) => write!(f, "http2 error: {e}"),
            RespError::Cut => f.write_str(
                "the backend ended the stream (NO_ERROR) before the end of its response",
            ),
        }
    }
}

impl StdError for RespError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RespError::H2(e) => Some(e),
            RespError::Cut => None,
        }
    }
}

impl From<H2Error> for RespError {
    fn from(e: H2Error) -> Self {
        if e.no_error_from_backend() {
            RespError::Cut
        } else {
            RespError::H2(e)
        }
    }
}
