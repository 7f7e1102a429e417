//! HTTP/1.1 framing conformance of the proxy path (issue 17): every framing
//! decision drover makes, pinned over raw sockets, so that a new codec can be
//! held to exactly the same behaviour. Requests are written byte for byte to
//! drover; the backend is either the built-in `drover backend` (which echoes
//! what it received: headers, body length and SHA-256) or a raw socket that
//! answers with fixed bytes.
//!
//! References: RFC 9112 (message syntax and framing), RFC 9110 (semantics).
//! Where RFC 9112 lets a recipient choose (bare LF, CL+TE), the comment says
//! which choice is pinned.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------
// Both codecs
// ---------------------------------------------------------------------------

thread_local! {
    /// The codec under test (`server.http1_codec`), set by each generated test.
    static CODEC: std::cell::Cell<&'static str> = const { std::cell::Cell::new("native") };
}

/// `config` with `server.http1_codec` set to the codec under test.
fn with_codec(config: String) -> String {
    let key = format!("[server]\nhttp1_codec = \"{}\"\n", CODEC.get());
    config.replacen("[server]\n", &key, 1)
}

/// Every test below runs twice: `native::NAME` on drover's own codec (with
/// its hand-off to hyper) and `hyper::NAME` on hyper's (the kill switch).
macro_rules! on_both_codecs {
    ($($t:ident),* $(,)?) => {
        mod native {
            $( #[tokio::test] async fn $t() { super::CODEC.set("native"); super::$t().await } )*
        }
        mod hyper {
            $( #[tokio::test] async fn $t() { super::CODEC.set("hyper"); super::$t().await } )*
        }
    };
}

on_both_codecs!(
    malformed_request_framing_gets_400,
    unknown_transfer_coding_is_refused,
    transfer_encoding_on_http10_is_refused,
    http09_request_is_not_served,
    oversized_request_head_gets_431,
    cl_and_te_request_is_reframed_as_chunked,
    request_bodies_arrive_intact,
    bare_lf_line_endings_are_accepted,
    huge_chunk_extension_is_bounded,
    pipelined_requests_are_answered_in_order,
    expect_100_continue,
    head_response_has_no_body_and_keeps_the_connection,
    no_body_statuses_pass_through,
    interim_1xx_response_before_the_final_one,
    close_delimited_response_is_read_to_the_end,
    cl_and_te_response_is_forwarded_as_chunked,
    malformed_upstream_responses_get_502,
    backend_closing_mid_body_is_not_a_complete_response,
);

// ---------------------------------------------------------------------------
// Raw client side
// ---------------------------------------------------------------------------

/// One parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// Reads what arrives until the peer closes, `want` responses parse
/// completely, or 10 s pass.
fn read_responses(s: &mut TcpStream, head_only: &[bool], want: usize) -> (Vec<Resp>, bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut closed = false;
    loop {
        let parsed = parse_responses(&buf, head_only, closed);
        if closed || parsed.len() >= want || Instant::now() > deadline {
            return (parsed, closed);
        }
        match s.read(&mut chunk) {
            Ok(0) => closed = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => closed = true,
        }
    }
}

/// Writes `req` on a new connection and reads until close (or one complete
/// response if the connection stays open).
fn exchange(addr: SocketAddr, req: &[u8]) -> Option<Resp> {
    let mut s = connect(addr);
    s.write_all(req).unwrap();
    let (mut r, _) = read_responses(&mut s, &[false], 1);
    if r.is_empty() {
        None
    } else {
        Some(r.remove(0))
    }
}

fn status_of(addr: SocketAddr, req: &[u8]) -> Option<u16> {
    exchange(addr, req).map(|r| r.status)
}

/// Parses as many complete responses as `buf` holds. `head_only[i]` says the
/// i-th final response answers a HEAD. With `eof`, a response without length
/// takes the rest of the bytes.
fn parse_responses(buf: &[u8], head_only: &[bool], eof: bool) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(end) = find(&buf[at..], b"\r\n\r\n") else {
            return out;
        };
        let head = String::from_utf8_lossy(&buf[at..at + end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let body_at = at + end + 4;
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let finals = out.iter().filter(|r: &&Resp| r.status >= 200).count();
        let is_head = head_only.get(finals).copied().unwrap_or(false);
        let no_body = (100..200).contains(&status) || status == 204 || status == 304 || is_head;
        let (body, next) = if no_body {
            (Vec::new(), body_at)
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            match dechunk(&buf[body_at..]) {
                Some((b, used)) => (b, body_at + used),
                None => return out,
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if buf.len() < body_at + n {
                return out;
            }
            (buf[body_at..body_at + n].to_vec(), body_at + n)
        } else if eof {
            (buf[body_at..].to_vec(), buf.len())
        } else {
            return out;
        };
        out.push(Resp {
            status,
            headers,
            body,
        });
        at = next;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete chunked body at the start of `b`: (data, bytes used).
fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        let line_end = find(&b[at..], b"\r\n")?;
        let line = std::str::from_utf8(&b[at..at + line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, then the empty line.
            let end = find(&b[at..], b"\r\n")?;
            if end == 0 {
                return Some((data, at + 2));
            }
            let t = find(&b[at..], b"\r\n\r\n")?;
            return Some((data, at + t + 4));
        }
        if b.len() < at + size + 2 {
            return None;
        }
        data.extend_from_slice(&b[at..at + size]);
        at += size + 2;
    }
}

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

/// drover in front of one built-in backend that echoes the request.
fn echo_proxy() -> (Backend, Drover) {
    let b = Backend::start("echo");
    let d = Drover::start(&with_codec(one_pool(&[b.addr], "")));
    (b, d)
}

/// A backend on a raw socket: reads one request head (and a body of the
/// announced Content-Length), answers `response` and closes. Keeps serving.
fn raw_backend(response: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while find(&got, b"\r\n\r\n").is_none() {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(response);
                let _ = s.flush();
            });
        }
    });
    addr
}

/// drover in front of a raw backend answering `response`.
fn raw_proxy(response: &'static [u8]) -> Drover {
    let addr = raw_backend(response);
    // No passive ejection: the malformed backend stays the only member.
    Drover::start(&with_codec(one_pool(
        &[addr],
        "retries = 0\n[pools.app.passive]\nconsecutive_failures = 1000\n",
    )))
}

const H: &str = "Host: conf.test\r\n";

fn req(lines: &str) -> Vec<u8> {
    lines.replace("{H}", H).into_bytes()
}

// ---------------------------------------------------------------------------
// Requests drover refuses (400 / 431 / 501)
// ---------------------------------------------------------------------------

/// Request framing that RFC 9112 makes an error: drover answers 400 and
/// never forwards the request.
async fn malformed_request_framing_gets_400() {
    let (_b, d) = echo_proxy();
    let cases: &[(&str, &str)] = &[
        (
            "two different Content-Lengths",
            "POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "Content-Length with a plus sign",
            "POST / HTTP/1.1\r\n{H}Content-Length: +5\r\n\r\nhello",
        ),
        (
            "negative Content-Length",
            "POST / HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n",
        ),
        (
            "Content-Length not a number",
            "POST / HTTP/1.1\r\n{H}Content-Length: 5x\r\n\r\nhello",
        ),
        (
            "chunked not the final transfer coding",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunked applied twice (two TE headers)",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "space between field name and colon",
            "GET / HTTP/1.1\r\n{H}X-Bad : 1\r\n\r\n",
        ),
        (
            "obs-fold (line folding)",
            "GET / HTTP/1.1\r\n{H}X-Folded: a\r\n b\r\n\r\n",
        ),
        ("NUL in a field value", "GET / HTTP/1.1\r\n{H}X-Nul: a\0b\r\n\r\n"),
        ("CR in a field value", "GET / HTTP/1.1\r\n{H}X-Cr: a\rb\r\n\r\n"),
        ("control byte in the method", "G\x01T / HTTP/1.1\r\n{H}\r\n"),
        ("space in the method", "GE T / HTTP/1.1\r\n{H}\r\n"),
        ("unknown HTTP version", "GET / HTTP/1.7\r\n{H}\r\n"),
        ("missing version", "GET / \r\n{H}\r\n"),
        (
            "chunk size that overflows",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunk size that is not hex",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "chunk data longer than its size",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, raw) in cases {
        let got = status_of(d.proxy, &req(raw));
        if got != Some(400) {
            wrong.push(format!("{what}: {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "expected 400 for: {wrong:#?}");
}

/// A transfer coding other than a final chunked: 400 (RFC 9112 §6.1 allows
/// 501 for a coding not understood; pinned choice: 400, as hyper does) —
/// never forwarded with a guessed framing.
async fn unknown_transfer_coding_is_refused() {
    let (_b, d) = echo_proxy();
    for te in ["xchunked", "gzip", "identity"] {
        let raw = format!(
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: {te}\r\nConnection: close\r\n\r\nhello"
        );
        let got = status_of(d.proxy, raw.as_bytes());
        assert_eq!(got, Some(400), "Transfer-Encoding: {te}");
    }
}

/// Transfer-Encoding on an HTTP/1.0 request: the framing is faulty (RFC 9112
/// §6.1): refused.
async fn transfer_encoding_on_http10_is_refused() {
    let (_b, d) = echo_proxy();
    let raw =
        req("POST / HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    let got = status_of(d.proxy, &raw);
    assert_eq!(got, Some(400));
}

/// HTTP/0.9 (a request line with no version) gets no HTTP/0.9 response: 400.
async fn http09_request_is_not_served() {
    let (_b, d) = echo_proxy();
    let mut s = connect(d.proxy);
    s.write_all(b"GET /\r\n\r\n").unwrap();
    let (r, _) = read_responses(&mut s, &[false], 1);
    assert_eq!(r.first().map(|r| r.status), Some(400));
}

/// A request head over `server.max_header_bytes` (64 KiB by default): 431.
async fn oversized_request_head_gets_431() {
    let (_b, d) = echo_proxy();
    let big = "a".repeat(70 * 1024);
    let raw = format!("GET / HTTP/1.1\r\n{H}X-Big: {big}\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(d.proxy, raw.as_bytes()), Some(431));
    // Many small headers adding up past the limit too.
    let many: String = (0..3000)
        .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(20)))
        .collect();
    let raw = format!("GET / HTTP/1.1\r\n{H}{many}Connection: close\r\n\r\n");
    assert_eq!(status_of(d.proxy, raw.as_bytes()), Some(431));
}

// ---------------------------------------------------------------------------
// Requests drover accepts, and what the backend receives
// ---------------------------------------------------------------------------

/// Content-Length and Transfer-Encoding together: Transfer-Encoding wins and
/// the request is forwarded as chunked with no Content-Length (RFC 9112 §6.3;
/// pinned choice: forward, not refuse), and the connection is closed after
/// the response, as §6.3 requires of a server that accepts it.
async fn cl_and_te_request_is_reframed_as_chunked() {
    let (_b, d) = echo_proxy();
    let raw = req(
        "POST /x HTTP/1.1\r\n{H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    let r = exchange(d.proxy, &raw).expect("a response");
    assert_eq!(r.status, 200, "{r:?}");
    let echo = r.json();
    assert_eq!(echo["body_bytes"], 5, "{echo}");
    let headers = &echo["headers"];
    assert!(headers.get("content-length").is_none(), "{headers}");
    assert_eq!(headers["transfer-encoding"], "chunked", "{headers}");
}

/// A body is forwarded byte for byte whichever way the client framed it, and
/// chunk extensions and trailers do not change it.
async fn request_bodies_arrive_intact() {
    let (_b, d) = echo_proxy();
    let cases: &[(&str, &str)] = &[
        (
            "content-length",
            "POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        ),
        (
            "chunked",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
        ),
        (
            "chunk extensions",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value;x\r\nhello\r\n0;last\r\n\r\n",
        ),
        (
            "trailers",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        (
            "upper-case chunk size",
            "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "Connection: content-length (a client naming a framing header hop-by-hop)",
            "POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nConnection: close, content-length\r\n\r\nhello",
        ),
    ];
    for (what, raw) in cases {
        let r = exchange(d.proxy, &req(raw)).unwrap_or_else(|| panic!("{what}: no response"));
        assert_eq!(r.status, 200, "{what}: {r:?}");
        let echo = r.json();
        assert_eq!(echo["body_bytes"], 5, "{what}: {echo}");
        // sha256("hello")
        assert_eq!(
            echo["body_sha256"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "{what}"
        );
    }
    // A large chunk (hex digits in both cases) and many small ones.
    let body = "x".repeat(0xABC);
    let raw = format!(
        "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nAbC\r\n{body}\r\n0\r\n\r\n"
    );
    let r = exchange(d.proxy, raw.as_bytes()).unwrap();
    assert_eq!(r.json()["body_bytes"], 0xABC);
}

/// Bare LF as a line terminator (RFC 9112 §2.2 lets a recipient accept it):
/// pinned choice is to accept it in the request line and header fields.
async fn bare_lf_line_endings_are_accepted() {
    let (_b, d) = echo_proxy();
    let r = exchange(
        d.proxy,
        b"GET /lf HTTP/1.1\nHost: conf.test\nX-A: 1\nConnection: close\n\n",
    )
    .expect("a response");
    assert_eq!(r.status, 200, "{r:?}");
    let echo = r.json();
    assert_eq!(echo["path"], "/lf");
    assert_eq!(echo["headers"]["x-a"], "1");
}

/// A chunk-size line with a huge extension does not make drover buffer it
/// without bound: the request is refused with 400, and drover keeps serving.
async fn huge_chunk_extension_is_bounded() {
    let (_b, d) = echo_proxy();
    let ext = "e".repeat(256 * 1024);
    let raw = format!(
        "POST / HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;{ext}\r\nhello\r\n0\r\n\r\n"
    );
    let mut s = connect(d.proxy);
    // The write may fail once drover has closed the connection.
    let _ = s.write_all(raw.as_bytes());
    let (r, _) = read_responses(&mut s, &[false], 1);
    assert_eq!(r.first().map(|r| r.status), Some(400));
    assert_eq!(
        status_of(
            d.proxy,
            &req("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n")
        ),
        Some(200)
    );
}

/// Pipelined requests are answered in order on the same connection.
async fn pipelined_requests_are_answered_in_order() {
    let (_b, d) = echo_proxy();
    let mut s = connect(d.proxy);
    let mut raw = Vec::new();
    for i in 0..5 {
        raw.extend(req(&format!("GET /p{i} HTTP/1.1\r\n{{H}}\r\n")));
    }
    raw.extend(req("POST /p5 HTTP/1.1\r\n{H}Content-Length: 3\r\n\r\nabc"));
    raw.extend(req("GET /p6 HTTP/1.1\r\n{H}Connection: close\r\n\r\n"));
    s.write_all(&raw).unwrap();
    let (r, _) = read_responses(&mut s, &[false; 7], 7);
    let paths: Vec<String> = r
        .iter()
        .map(|r| r.json()["path"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(paths, ["/p0", "/p1", "/p2", "/p3", "/p4", "/p5", "/p6"]);
    assert_eq!(r[5].json()["body_bytes"], 3);
}

/// `Expect: 100-continue`: the client gets `100 Continue` before it sends
/// the body, then the final response.
async fn expect_100_continue() {
    let (_b, d) = echo_proxy();
    let mut s = connect(d.proxy);
    s.write_all(&req(
        "POST / HTTP/1.1\r\n{H}Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while find(&got, b"\r\n\r\n").is_none() && Instant::now() < deadline {
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(b"hello").unwrap();
    let (r, _) = read_responses(&mut s, &[false], 1);
    let finals: Vec<&Resp> = r.iter().filter(|r| r.status >= 200).collect();
    assert_eq!(finals.len(), 1, "{r:?}");
    assert_eq!(finals[0].json()["body_bytes"], 5);
}

/// HEAD: the headers of the GET (Content-Length included) and no body; the
/// connection stays usable.
async fn head_response_has_no_body_and_keeps_the_connection() {
    let (_b, d) = echo_proxy();
    let mut s = connect(d.proxy);
    s.write_all(&req("HEAD /bytes/100 HTTP/1.1\r\n{H}\r\n"))
        .unwrap();
    s.write_all(&req(
        "GET /bytes/7 HTTP/1.1\r\n{H}Connection: close\r\n\r\n",
    ))
    .unwrap();
    let (r, _) = read_responses(&mut s, &[true, false], 2);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r[0].status, 200);
    assert!(r[0].body.is_empty());
    assert_eq!(r[1].status, 200);
    assert_eq!(r[1].body.len(), 7);
}

// ---------------------------------------------------------------------------
// Responses from the backend
// ---------------------------------------------------------------------------

/// 204 and 304 from the backend reach the client without a body, and the
/// client connection stays usable.
async fn no_body_statuses_pass_through() {
    for (status, raw) in [
        (
            204,
            &b"HTTP/1.1 204 No Content\r\nX-A: 1\r\nConnection: close\r\n\r\n"[..],
        ),
        (
            304,
            &b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nConnection: close\r\n\r\n"[..],
        ),
    ] {
        let d = raw_proxy(raw);
        let mut s = connect(d.proxy);
        s.write_all(&req("GET /a HTTP/1.1\r\n{H}\r\n")).unwrap();
        s.write_all(&req("GET /b HTTP/1.1\r\n{H}\r\n")).unwrap();
        let (r, _) = read_responses(&mut s, &[false, false], 2);
        assert_eq!(r.len(), 2, "{status}: {r:?}");
        for r in &r {
            assert_eq!(r.status, status);
            assert!(r.body.is_empty());
            assert!(r.header("transfer-encoding").is_none(), "{r:?}");
        }
    }
}

/// A 1xx interim response (103 Early Hints) before the final one: the client
/// gets the final response with its body; the interim one is not forwarded
/// (pinned: hyper's client consumes it).
async fn interim_1xx_response_before_the_final_one() {
    let d = raw_proxy(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
    );
    let mut s = connect(d.proxy);
    s.write_all(&req("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n"))
        .unwrap();
    let (all, closed) = read_responses(&mut s, &[false], 2);
    assert!(closed);
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200]);
    assert_eq!(all[0].body, b"body");
}

/// A response with no length, delimited by the backend closing: the client
/// gets all of it (re-framed chunked, or close-delimited).
async fn close_delimited_response_is_read_to_the_end() {
    let d = raw_proxy(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of the body until close");
    let r = exchange(
        d.proxy,
        &req("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n"),
    )
    .expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"all of the body until close");
}

/// A response with Content-Length and Transfer-Encoding: the chunked framing
/// wins and Content-Length is not passed on (RFC 9112 §6.3; pinned choice:
/// forward with TE, not 502).
async fn cl_and_te_response_is_forwarded_as_chunked() {
    let d = raw_proxy(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
    );
    let r = exchange(
        d.proxy,
        &req("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n"),
    )
    .expect("a response");
    assert_eq!(r.status, 200);
    assert!(r.header("content-length").is_none(), "{r:?}");
    assert_eq!(r.body, b"hello world");
}

/// Malformed response heads from the backend: 502 for the client, and the
/// client's connection stays usable for the next request.
async fn malformed_upstream_responses_get_502() {
    let cases: &[(&str, &'static [u8])] = &[
        (
            "two different Content-Lengths",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        (
            "NUL in a field value",
            b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok",
        ),
        (
            "obs-fold",
            b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
        ),
        ("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
        (
            "bad status code",
            b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        (
            "negative Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, raw) in cases {
        let d = raw_proxy(raw);
        let mut s = connect(d.proxy);
        s.write_all(&req("GET /a HTTP/1.1\r\n{H}\r\n")).unwrap();
        s.write_all(&req("GET /b HTTP/1.1\r\n{H}Connection: close\r\n\r\n"))
            .unwrap();
        let (r, _) = read_responses(&mut s, &[false, false], 2);
        let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
        if statuses != [502, 502] {
            wrong.push(format!("{what}: {statuses:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "expected [502, 502] on one connection: {wrong:#?}"
    );
}

/// The backend closes in the middle of a Content-Length body: the client
/// must not see a complete response (the connection is closed short).
async fn backend_closing_mid_body_is_not_a_complete_response() {
    let d = raw_proxy(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b");
    let mut s = connect(d.proxy);
    s.write_all(&req("GET / HTTP/1.1\r\n{H}\r\n")).unwrap();
    let (r, closed) = read_responses(&mut s, &[false], 1);
    assert!(r.is_empty(), "a complete response was parsed: {r:?}");
    assert!(closed, "drover must close the client connection");
    // Chunked too: the terminating chunk never comes.
    let d = raw_proxy(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    let mut s = connect(d.proxy);
    s.write_all(&req("GET / HTTP/1.1\r\n{H}\r\n")).unwrap();
    let (r, closed) = read_responses(&mut s, &[false], 1);
    assert!(r.is_empty(), "a complete response was parsed: {r:?}");
    assert!(closed, "drover must close the client connection");
}
