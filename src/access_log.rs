//! The access log: one line per request on stdout or in a file
//! ([`configure`]), as JSON (default), Apache/nginx "combined", or a compact
//! text format ([`set_text`], for `--log-format pretty` / a terminal, stdout only).
//!
//! A file is appended to and reopened by [`reopen`] (SIGUSR1, logrotate's
//! `postrotate`): the one writer thread writes whole lines, so every line
//! lands whole in either the renamed file or the new one.
//!
//! Records are handed to a writer thread through a bounded channel
//! ([`CAPACITY`]); the request path never blocks on it, and records that do
//! not fit are dropped and counted ([`dropped`]). The writer wakes every
//! [`WRITE_EVERY`] rather than on each record, so a request never pays for
//! waking it (a futex call per request measured +70% instructions per
//! request); [`flush`] writes what is queued at shutdown.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BufMut;
use http::{HeaderValue, Method, Uri, Version};

use crate::config::{AccessFormat, AccessTarget, LogConfig};
use crate::rate_limit::RateLimit;

/// Appends `ip` in its standard text form; IPv4 digit by digit (no `fmt`),
/// since this runs for every request (`X-Forwarded-For`, access log).
pub fn write_ip(out: &mut impl BufMut, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.put_u8(b'.');
                }
                if o >= 100 {
                    out.put_u8(b'0' + o / 100);
                }
                if o >= 10 {
                    out.put_u8(b'0' + (o / 10) % 10);
                }
                out.put_u8(b'0' + o % 10);
            }
        }
        IpAddr::V6(_) => out.put_slice(ip.to_string().as_bytes()),
    }
}

/// Records buffered between the request path and the writer. Default 16384.
pub const CAPACITY: usize = 16384;
/// How often the writer looks for records when it found none. Default 10 ms.
pub const WRITE_EVERY: Duration = Duration::from_millis(10);

/// What the writer thread receives.
// Records are nearly every message: boxing them would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(AccessRecord),
    /// Write everything queued before this, then answer.
    Flush(std::sync::mpsc::Sender<()>),
    /// Write what is queued, then write to this output.
    Output(Output),
    /// Write what is queued, then reopen the file (by path), then answer.
    Reopen(std::sync::mpsc::Sender<()>),
}

/// Where the writer writes.
enum Output {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Output {
    fn write(&mut self, buf: &[u8]) {
        let r = match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(buf).and_then(|()| out.flush())
            }
            Output::File { file, .. } => file.write_all(buf),
        };
        if let Err(e) = r {
            static WARN: LazyLock<RateLimit> =
                LazyLock::new(|| RateLimit::new(Duration::from_secs(30)));
            if let Some(suppressed) = WARN.allow() {
                tracing::error!(suppressed, "cannot write the access log: {e}");
            }
        }
    }
}

/// Opens `path` for appending (created when missing).
fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
}

static SENDER: OnceLock<SyncSender<Msg>> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static TEXT: AtomicBool = AtomicBool::new(false);
static COMBINED: AtomicBool = AtomicBool::new(false);
static TO_STDOUT: AtomicBool = AtomicBool::new(true);

/// One finished request. Built on the request path from cheap clones
/// (reference-counted header value and URI); turned into text on the writer thread.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub ts: SystemTime,
    pub request_id: HeaderValue,
    pub client: IpAddr,
    pub method: Method,
    pub version: Version,
    /// The request target as received (path and query).
    pub uri: Uri,
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    pub duration: Duration,
    pub pool: String,
    pub backend: Option<SocketAddr>,
    pub retries: u32,
    /// Why drover failed the request (a `Cause` label: `client`, `connect`,
    /// `upstream`, `timeout`, `limit`, `no_route`, `no_member`, `cold_start`);
    /// `None` when the backend's response was passed on.
    pub error: Option<&'static str>,
    /// The gRPC status drover answered a gRPC call with when it failed the
    /// call itself (`error` is set; `status` is the HTTP status the cause
    /// stands for, the client saw 200 and this in `grpc-status`).
    pub grpc_status: Option<u32>,
    /// The W3C trace id sent upstream (the client's, or a new one).
    pub trace_id: Option<[u8; 16]>,
    /// `Referer` and `User-Agent`, kept for the combined format only.
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
}

impl AccessRecord {
    /// Queues the record for the writer; drops it (counted) if the buffer is full.
    pub fn send(self) {
        if let Some(tx) = SENDER.get() {
            if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Record(self)) {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The request target as logged: path and query, or the path alone.
    fn path(&self) -> &str {
        self.uri
            .path_and_query()
            .map_or_else(|| self.uri.path(), |p| p.as_str())
    }

    fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("")
    }

    /// The compact text line (without newline):
    /// `2026-11-28T15:04:05.123Z 127.0.0.1 "GET /x" 200 1234B 1.5ms app->127.0.0.1:8001 retries=0 id=...`,
    /// then ` error=CAUSE` when drover failed the request (and ` grpc_status=N`
    /// for a gRPC call).
    pub fn to_text(&self) -> String {
        let backend = self
            .backend
            .map_or_else(|| "-".to_string(), |b| b.to_string());
        let pool = if self.pool.is_empty() {
            "-"
        } else {
            &self.pool
        };
        let mut line = format!(
            "{} {} \"{} {}\" {} {}B {:.1}ms {pool}->{backend} retries={} id={}",
            rfc3339(self.ts),
            self.client,
            self.method,
            self.path().escape_debug(),
            self.status,
            self.bytes,
            self.duration.as_secs_f64() * 1e3,
            self.retries,
            self.request_id()
        );
        if let Some(e) = self.error {
            line.push_str(" error=");
            line.push_str(e);
        }
        if let Some(g) = self.grpc_status {
            line.push_str(" grpc_status=");
            line.push_str(itoa::Buffer::new().format(g));
        }
        line
    }

    /// Appends the line in the configured format, with its newline.
    fn write_line(&self, out: &mut Vec<u8>) {
        if COMBINED.load(Ordering::Relaxed) {
            self.write_combined(out);
        } else if TEXT.load(Ordering::Relaxed) && TO_STDOUT.load(Ordering::Relaxed) {
            out.extend_from_slice(self.to_text().as_bytes());
        } else {
            self.write_json(out);
        }
        out.push(b'\n');
    }

    /// The combined line (without newline).
    pub fn to_combined(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_combined(&mut out);
        String::from_utf8(out).expect("the combined line is ASCII")
    }

    /// Apache/nginx "combined", exactly (so GoAccess and other analysers read it):
    /// `client - - [28/Nov/2026:15:04:05 +0000] "GET /x HTTP/1.1" 200 1234 "referer" "user-agent"`.
    /// Bytes `-` when none were sent; quoted values escape `"`, `\` and
    /// non-printable bytes as Apache does (`\"`, `\\`, `\xhh`). Nothing is
    /// appended: the request id and trace id are in the JSON format only.
    fn write_combined(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        write_ip(out, self.client);
        out.extend_from_slice(b" - - [");
        write_clf_time(out, self.ts);
        out.extend_from_slice(b"] \"");
        escape_quoted(out, self.method.as_str().as_bytes());
        out.push(b' ');
        escape_quoted(out, self.path().as_bytes());
        out.push(b' ');
        out.extend_from_slice(match self.version {
            Version::HTTP_09 => b"HTTP/0.9",
            Version::HTTP_10 => b"HTTP/1.0",
            Version::HTTP_2 => b"HTTP/2.0",
            Version::HTTP_3 => b"HTTP/3.0",
            _ => b"HTTP/1.1",
        });
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(num.format(self.status).as_bytes());
        out.push(b' ');
        if self.bytes == 0 {
            out.push(b'-');
        } else {
            out.extend_from_slice(num.format(self.bytes).as_bytes());
        }
        for h in [&self.referer, &self.user_agent] {
            out.extend_from_slice(b" \"");
            match h {
                Some(v) => escape_quoted(out, v.as_bytes()),
                None => out.push(b'-'),
            }
            out.push(b'"');
        }
    }

    /// The JSON line (without newline).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// Appends the JSON object, written field by field (no intermediate
    /// `serde_json::Value`: this runs once per request). `duration_ms` has
    /// microsecond precision.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(b"{\"ts\":\"");
        write_rfc3339(out, self.ts);
        out.extend_from_slice(b"\",\"request_id\":");
        json_str(out, self.request_id());
        out.extend_from_slice(b",\"client\":\"");
        write_ip(out, self.client);
        out.extend_from_slice(b"\",\"method\":");
        json_str(out, self.method.as_str());
        out.extend_from_slice(b",\"path\":");
        json_str(out, self.path());
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(num.format(self.status).as_bytes());
        out.extend_from_slice(b",\"bytes\":");
        out.extend_from_slice(num.format(self.bytes).as_bytes());
        out.extend_from_slice(b",\"duration_ms\":");
        let us = self.duration.as_micros();
        out.extend_from_slice(num.format(us / 1000).as_bytes());
        out.push(b'.');
        let frac = (us % 1000) as u16;
        out.extend_from_slice(&[
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
        out.extend_from_slice(b",\"pool\":");
        json_str(out, &self.pool);
        out.extend_from_slice(b",\"backend\":");
        match self.backend {
            Some(SocketAddr::V4(b)) => {
                out.push(b'"');
                write_ip(out, IpAddr::V4(*b.ip()));
                out.push(b':');
                out.extend_from_slice(num.format(b.port()).as_bytes());
                out.push(b'"');
            }
            Some(b) => {
                let _ = write!(out, "\"{b}\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"retries\":");
        out.extend_from_slice(num.format(self.retries).as_bytes());
        out.extend_from_slice(b",\"error\":");
        match self.error {
            Some(e) => json_str(out, e),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(g) = self.grpc_status {
            out.extend_from_slice(b",\"grpc_status\":");
            out.extend_from_slice(num.format(g).as_bytes());
        }
        if let Some(t) = &self.trace_id {
            out.extend_from_slice(b",\"trace_id\":\"");
            for b in t {
                out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            out.push(b'"');
        }
        out.push(b'}');
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` for a quoted field of the combined format, escaped as Apache
/// escapes it: `"` and `\\` with a backslash, other bytes outside 0x20..0x7e as `\\xhh`.
fn escape_quoted(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]),
        }
    }
}

/// Appends `s` as a JSON string: copied as is when it needs no escaping
/// (the common case), else quoted and escaped by serde_json.
fn json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes()
        .all(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    }
}

/// Whether access logging is on (checked on the request path).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Applies `[log]` (at start and on reload): where the log goes and its
/// format. A file is opened here, so that an unusable path is reported at
/// once; on error nothing changes.
pub fn configure(log: &LogConfig) -> Result<(), String> {
    let output = match &log.access {
        AccessTarget::Off => None,
        AccessTarget::Stdout => Some(Output::Stdout),
        AccessTarget::File(path) => Some(Output::File {
            file: open_append(path)
                .map_err(|e| format!("cannot open the access log {}: {e}", path.display()))?,
            path: path.clone(),
        }),
    };
    COMBINED.store(
        log.access_format == AccessFormat::Combined,
        Ordering::Relaxed,
    );
    let Some(output) = output else {
        ENABLED.store(false, Ordering::Relaxed);
        return Ok(());
    };
    if SENDER.get().is_none() {
        let (tx, rx) = sync_channel(CAPACITY);
        if SENDER.set(tx).is_ok() {
            std::thread::Builder::new()
                .name("drover-access-log".into())
                .spawn(move || writer(rx))
                .expect("spawn access log writer");
        }
    }
    if let Some(tx) = SENDER.get() {
        let _ = tx.send(Msg::Output(output));
    }
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether lines are written in the combined format (the request path then
/// keeps `Referer` and `User-Agent`).
pub fn combined() -> bool {
    COMBINED.load(Ordering::Relaxed)
}

/// Reopens the access log file by its path (SIGUSR1, after logrotate renamed
/// it); lines queued before are written to the old file first. Waits at most 2 s.
pub fn reopen() {
    let Some(tx) = SENDER.get() else {
        return;
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    if tx.send(Msg::Reopen(done_tx)).is_ok() {
        let _ = done_rx.recv_timeout(Duration::from_secs(2));
    }
}

/// Writes the compact text format instead of JSON lines (default JSON).
pub fn set_text(text: bool) {
    TEXT.store(text, Ordering::Relaxed);
}

/// Records dropped because the buffer was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Writes every record queued so far to stdout (waits at most 2 s); called at shutdown.
pub fn flush() {
    let Some(tx) = SENDER.get() else {
        return;
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    if tx.send(Msg::Flush(done_tx)).is_ok() {
        let _ = done_rx.recv_timeout(Duration::from_secs(2));
    }
}

fn writer(rx: Receiver<Msg>) {
    let mut output = Output::Stdout;
    // Lines are gathered here and written with one call per batch.
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let mut flushed = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(Msg::Record(rec)) => rec.write_line(&mut buf),
                Ok(Msg::Flush(ack)) => flushed.push(ack),
                Ok(Msg::Output(new)) => {
                    output.write(&buf);
                    buf.clear();
                    TO_STDOUT.store(matches!(new, Output::Stdout), Ordering::Relaxed);
                    output = new;
                }
                Ok(Msg::Reopen(ack)) => {
                    output.write(&buf);
                    buf.clear();
                    if let Output::File { path, file } = &mut output {
                        match open_append(path) {
                            Ok(f) => *file = f,
                            Err(e) => tracing::error!(
                                path = %path.display(),
                                "cannot reopen the access log, still writing to the old file: {e}"
                            ),
                        }
                    }
                    flushed.push(ack);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
            if buf.len() >= 60 * 1024 {
                output.write(&buf);
                buf.clear();
            }
        }
        if !buf.is_empty() {
            output.write(&buf);
            buf.clear();
        }
        for ack in flushed {
            let _ = ack.send(());
        }
        std::thread::sleep(WRITE_EVERY);
    }
}

/// `2026-11-28T15:04:05.123Z`
pub fn rfc3339(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339(&mut out, t);
    String::from_utf8(out).expect("digits are UTF-8")
}

/// `(year, month, day, seconds of the day, milliseconds)` of `t` in UTC.
fn civil(t: SystemTime) -> (u64, u64, u64, u64, u64) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year.clamp(0, 9999) as u64,
        month as u64,
        day as u64,
        rem,
        u64::from(d.subsec_millis()),
    )
}

fn digits(out: &mut Vec<u8>, v: u64, n: u32) {
    for i in (0..n).rev() {
        out.push(b'0' + (v / 10u64.pow(i) % 10) as u8);
    }
}

/// Appends `t` as `2026-11-28T15:04:05.123Z` (UTC, milliseconds).
pub fn write_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    let (year, month, day, rem, ms) = civil(t);
    digits(out, year, 4);
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
    out.push(b'T');
    digits(out, rem / 3600, 2);
    out.push(b':');
    digits(out, rem % 3600 / 60, 2);
    out.push(b':');
    digits(out, rem % 60, 2);
    out.push(b'.');
    digits(out, ms, 3);
    out.push(b'Z');
}

/// Appends `t` in the Common Log Format: `28/Nov/2026:15:04:05 +0000` (UTC).
fn write_clf_time(out: &mut Vec<u8>, t: SystemTime) {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let (year, month, day, rem, _) = civil(t);
    digits(out, day, 2);
    out.push(b'/');
    let m = MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or(b"Jan");
    out.extend_from_slice(m);
    out.push(b'/');
    digits(out, year, 4);
    out.push(b':');
    digits(out, rem / 3600, 2);
    out.push(b':');
    digits(out, rem % 3600 / 60, 2);
    out.push(b':');
    digits(out, rem % 60, 2);
    out.extend_from_slice(b" +0000");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_878_245_123);
        assert_eq!(rfc3339(t), "2026-11-28T15:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_escapes_what_needs_it_and_formats_ipv6_backends() {
        let r = AccessRecord {
            ts: UNIX_EPOCH,
            request_id: HeaderValue::from_static("a\"b"),
            client: "::1".parse().unwrap(),
            method: Method::from_bytes(b"PURGE").unwrap(),
            uri: Uri::from_static("/caf%C3%A9?q=%22x%22"),
            status: 502,
            bytes: 0,
            duration: Duration::from_micros(12_345_678),
            pool: "p\\q".into(),
            backend: Some("[::1]:8080".parse().unwrap()),
            retries: 0,
            error: Some("client"),
            grpc_status: Some(1),
            version: Version::HTTP_11,
            trace_id: None,
            referer: None,
            user_agent: None,
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["request_id"], "a\"b");
        assert_eq!(v["client"], "::1");
        assert_eq!(v["method"], "PURGE");
        assert_eq!(v["path"], "/caf%C3%A9?q=%22x%22");
        assert_eq!(v["pool"], "p\\q");
        assert_eq!(v["backend"], "[::1]:8080");
        assert_eq!(v["duration_ms"], 12345.678);
        assert_eq!(v["error"], "client");
        assert_eq!(v["grpc_status"], 1);
        assert!(
            r.to_text().ends_with(" error=client grpc_status=1"),
            "{}",
            r.to_text()
        );
        let none = AccessRecord { backend: None, ..r };
        let v: serde_json::Value = serde_json::from_str(&none.to_json()).unwrap();
        assert!(v["backend"].is_null());
    }

    #[test]
    fn record_has_every_spec_field() {
        let r = AccessRecord {
            ts: UNIX_EPOCH,
            request_id: HeaderValue::from_static("r1"),
            client: "127.0.0.1".parse().unwrap(),
            method: Method::GET,
            uri: Uri::from_static("/x?y"),
            status: 200,
            bytes: 5,
            duration: Duration::from_micros(1500),
            pool: "api".into(),
            backend: Some("127.0.0.1:8001".parse().unwrap()),
            retries: 1,
            error: None,
            grpc_status: None,
            version: Version::HTTP_11,
            trace_id: Some([0xab; 16]),
            referer: Some(HeaderValue::from_static("http://a/\"q\"")),
            user_agent: Some(HeaderValue::from_bytes(b"curl/8 \\ \xff").unwrap()),
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for k in [
            "ts",
            "request_id",
            "client",
            "method",
            "path",
            "status",
            "bytes",
            "duration_ms",
            "pool",
            "backend",
            "retries",
            "error",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["path"], "/x?y");
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["backend"], "127.0.0.1:8001");
        assert!(v["error"].is_null());
        assert!(v.get("grpc_status").is_none());
        assert_eq!(v["trace_id"], "abababababababababababababababab");
        assert_eq!(
            r.to_combined(),
            r#"127.0.0.1 - - [01/Jan/1970:00:00:00 +0000] "GET /x?y HTTP/1.1" 200 5 "http://a/\"q\"" "curl/8 \\ \xff""#
        );
        let empty = AccessRecord {
            bytes: 0,
            referer: None,
            user_agent: None,
            ..r.clone()
        };
        assert!(
            empty.to_combined().ends_with(r#" 200 - "-" "-""#),
            "{}",
            empty.to_combined()
        );
        assert_eq!(
            r.to_text(),
            "1970-01-01T00:00:00.000Z 127.0.0.1 \"GET /x?y\" 200 5B 1.5ms api->127.0.0.1:8001 retries=1 id=r1"
        );
    }
}
