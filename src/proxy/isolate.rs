//! Panic isolation: a panic while handling one request ends that request
//! (answered `500` with its request id, the HTTP/1 connection closed), never
//! the worker or the process.
//!
//! The release profile unwinds (`panic = "unwind"` in `Cargo.toml`). The
//! request path runs inside [`guarded`] (routing, synchronously) and
//! [`Isolated`] (every poll of the forwarding future); a panic there is caught
//! and logged once, with the request id, by [`Isolated`]. Panics elsewhere (a
//! connection's or a background task, which tokio isolates per task; a
//! thread) are logged by the hook [`install_hook`] sets. What it costs per
//! request: `bench/RESULTS.md` (2026-11-30, panic isolation).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{HeaderMap, Response, StatusCode};

use super::body::ProxyBody;
use super::errors::{local, Cause};
use super::server::ConnActivity;

/// Environment variable naming a request header that makes a request panic
/// (tests only: `x-drover-test-panic: route` panics while routing, any other
/// value while forwarding). Read once at start; unset by default, and nothing
/// a client sends can turn it on.
pub const TEST_PANIC_ENV: &str = "DROVER_TEST_PANIC_HEADER";

static TEST_PANIC_HEADER: OnceLock<Option<HeaderName>> = OnceLock::new();

/// What a caught panic said.
#[derive(Debug, Clone)]
pub struct Panicked {
    pub message: String,
    /// `file:line:column` of the panic.
    pub location: String,
}

thread_local! {
    /// Depth of [`guarded`] calls on this thread: the hook leaves logging to them.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// What the hook saw of the last panic inside [`guarded`].
    static CAUGHT: RefCell<Option<Panicked>> = const { RefCell::new(None) };
}

/// Installs the process's panic hook: a panic inside [`guarded`] is recorded
/// for its caller to log; any other is logged here as a `tracing` error with
/// its thread, location and (with `RUST_BACKTRACE=1`) backtrace.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload_as_str()
            .unwrap_or("(panic payload is not text)");
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        // (Built with `panic = "abort"` nothing is caught: log it here.)
        if cfg!(panic = "unwind") && GUARDED.try_with(Cell::get).unwrap_or(0) > 0 {
            let note = Panicked {
                message: message.to_string(),
                location,
            };
            let _ = CAUGHT.try_with(|c| c.replace(Some(note)));
            return;
        }
        if !tracing::dispatcher::has_been_set() {
            // No logger (yet): the standard report on stderr.
            default(info);
            return;
        }
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::capture();
        let backtrace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => backtrace.to_string(),
            _ => String::new(),
        };
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            location = %location,
            panic = message,
            backtrace = %backtrace,
            "panic outside a request handler (the task or thread it hit ends)"
        );
    }));
}

/// Runs `f`, catching a panic (as [`Panicked`], which the hook filled in).
pub fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Panicked> {
    GUARDED.with(|g| g.set(g.get() + 1));
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    r.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| Panicked {
                message: payload_text(payload.as_ref()).to_string(),
                location: String::new(),
            })
    })
}

fn payload_text(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(panic payload is not text)")
}

/// Reads [`TEST_PANIC_ENV`] (once; later calls do nothing).
pub fn init_test_trigger() {
    TEST_PANIC_HEADER.get_or_init(|| {
        let name = std::env::var(TEST_PANIC_ENV).ok()?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        tracing::warn!(header = %name, "{TEST_PANIC_ENV} is set: requests carrying this header panic (for tests only)");
        Some(name)
    });
}

/// Where the test trigger makes a request panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestPanic {
    /// While routing (synchronously, before the forwarding future exists).
    Route,
    /// While the forwarding future is polled.
    Forward,
}

/// The test trigger's verdict for a request: `None` unless [`TEST_PANIC_ENV`]
/// was set at start and the request carries that header.
pub fn test_panic(headers: &HeaderMap) -> Option<TestPanic> {
    let name = TEST_PANIC_HEADER.get()?.as_ref()?;
    let v = headers.get(name)?;
    Some(if v == "route" {
        TestPanic::Route
    } else {
        TestPanic::Forward
    })
}

/// What [`Isolated`] needs to answer for a panic.
pub struct RequestInfo {
    pub request_id: HeaderValue,
    pub client: SocketAddr,
    /// HTTP/1: the connection is closed after the `500`.
    pub close: bool,
    /// Marked ended when the response does (taken by the response).
    pub activity: Option<Arc<ConnActivity>>,
    /// The test trigger fires on the first poll.
    pub panic_on_poll: bool,
}

pin_project_lite::pin_project! {
    /// The forwarding future, each poll run inside [`guarded`]: a panic
    /// becomes a `500` with the request id (and the future is dropped).
    pub struct Isolated<F> {
        #[pin]
        fut: Option<F>,
        // A panic while routing, before `fut` existed.
        early: Option<Box<Panicked>>,
        info: RequestInfo,
    }
}

impl<F> Isolated<F>
where
    F: Future<Output = Response<ProxyBody>>,
{
    /// Wraps the result of [`guarded`] routing: the future, or the panic it hit.
    pub fn new(routed: Result<F, Panicked>, info: RequestInfo) -> Isolated<F> {
        let (fut, early) = match routed {
            Ok(f) => (Some(f), None),
            Err(p) => (None, Some(Box::new(p))),
        };
        Isolated { fut, early, info }
    }
}

impl<F> Future for Isolated<F>
where
    F: Future<Output = Response<ProxyBody>>,
{
    type Output = Result<Response<ProxyBody>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let panicked = match this.fut.as_mut().as_pin_mut() {
            Some(fut) => {
                let trigger = std::mem::take(&mut this.info.panic_on_poll);
                match guarded(|| {
                    if trigger {
                        panic!("test panic ({TEST_PANIC_ENV}) while forwarding");
                    }
                    fut.poll(cx)
                }) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(mut resp)) => {
                        if let Some(a) = this.info.activity.take() {
                            resp.body_mut().on_end(a);
                        }
                        return Poll::Ready(Ok(resp));
                    }
                    Err(p) => {
                        // Its state is unknown after a panic: drop it now (a
                        // panic in its destructor is caught too).
                        let _ = guarded(|| this.fut.set(None));
                        p
                    }
                }
            }
            None => match this.early.take() {
                Some(p) => *p,
                None => Panicked {
                    message: "polled after completion".into(),
                    location: String::new(),
                },
            },
        };
        Poll::Ready(Ok(answer_panic(&panicked, this.info)))
    }
}

/// Logs the panic with the request id and makes the `500`.
fn answer_panic(p: &Panicked, info: &mut RequestInfo) -> Response<ProxyBody> {
    let id = info.request_id.to_str().unwrap_or("");
    tracing::error!(
        request_id = id,
        client = %info.client,
        location = %p.location,
        panic = %p.message,
        "request handler panicked; answered 500"
    );
    let mut resp = local(
        StatusCode::INTERNAL_SERVER_ERROR,
        "drover failed while handling this request (logged with this id)",
        &info.request_id,
        None,
        Some(Cause::Internal),
    );
    if info.close {
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(a) = info.activity.take() {
        resp.body_mut().on_end(a);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_catches_and_reports_the_message() {
        // (The hook is not installed here: it is process-wide, and the test
        // harness's own must stay to report failing tests.)
        let r: Result<(), Panicked> = guarded(|| panic!("boom {}", 7));
        assert_eq!(r.unwrap_err().message, "boom 7");
        assert_eq!(guarded(|| 5).unwrap(), 5);
        assert_eq!(GUARDED.with(Cell::get), 0);
    }
}
