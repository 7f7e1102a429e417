//! The access log: one line per request on stdout, JSON (default) or a
//! compact text format ([`set_text`], for `--log-format pretty` / a terminal).
//!
//! Records are handed to a writer thread through a bounded channel
//! ([`CAPACITY`]); the request path never blocks on it, and records that do
//! not fit are dropped and counted ([`dropped`]).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records buffered between the request path and the writer. Default 16384.
pub const CAPACITY: usize = 16384;

static SENDER: OnceLock<SyncSender<AccessRecord>> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static TEXT: AtomicBool = AtomicBool::new(false);

/// One finished request.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub ts: SystemTime,
    pub request_id: String,
    pub client: IpAddr,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    pub duration: Duration,
    pub pool: String,
    pub backend: Option<SocketAddr>,
    pub retries: u32,
}

impl AccessRecord {
    /// Queues the record for the writer; drops it (counted) if the buffer is full.
    pub fn send(self) {
        if let Some(tx) = SENDER.get() {
            if let Err(TrySendError::Full(_)) = tx.try_send(self) {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The compact text line (without newline):
    /// `2026-11-28T15:04:05.123Z 127.0.0.1 "GET /x" 200 1234B 1.5ms app->127.0.0.1:8001 retries=0 id=...`
    pub fn to_text(&self) -> String {
        let backend = self
            .backend
            .map_or_else(|| "-".to_string(), |b| b.to_string());
        let pool = if self.pool.is_empty() {
            "-"
        } else {
            &self.pool
        };
        format!(
            "{} {} \"{} {}\" {} {}B {:.1}ms {pool}->{backend} retries={} id={}",
            rfc3339(self.ts),
            self.client,
            self.method,
            self.path.escape_debug(),
            self.status,
            self.bytes,
            self.duration.as_secs_f64() * 1e3,
            self.retries,
            self.request_id
        )
    }

    /// The line in the configured format.
    fn line(&self) -> String {
        if TEXT.load(Ordering::Relaxed) {
            self.to_text()
        } else {
            self.to_json()
        }
    }

    /// The JSON line (without newline).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "ts": rfc3339(self.ts),
            "request_id": self.request_id,
            "client": self.client.to_string(),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": (self.duration.as_secs_f64() * 1e6).round() / 1e3,
            "pool": self.pool,
            "backend": self.backend.map(|b| b.to_string()),
            "retries": self.retries,
        })
        .to_string()
    }
}

/// Whether access logging is on (checked on the request path).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns access logging on or off (on reload). Starts the writer thread the first time.
pub fn set_enabled(on: bool) {
    if on && SENDER.get().is_none() {
        let (tx, rx) = sync_channel(CAPACITY);
        if SENDER.set(tx).is_ok() {
            std::thread::Builder::new()
                .name("drover-access-log".into())
                .spawn(move || writer(rx))
                .expect("spawn access log writer");
        }
    }
    ENABLED.store(on, Ordering::Relaxed);
}

/// Writes the compact text format instead of JSON lines (default JSON).
pub fn set_text(text: bool) {
    TEXT.store(text, Ordering::Relaxed);
}

/// Records dropped because the buffer was full.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn writer(rx: Receiver<AccessRecord>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    while let Ok(rec) = rx.recv() {
        let _ = writeln!(out, "{}", rec.line());
        while let Ok(rec) = rx.try_recv() {
            let _ = writeln!(out, "{}", rec.line());
        }
        let _ = out.flush();
    }
}

/// `2026-11-28T15:04:05.123Z`
pub fn rfc3339(t: SystemTime) -> String {
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
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
    fn record_has_every_spec_field() {
        let r = AccessRecord {
            ts: UNIX_EPOCH,
            request_id: "r1".into(),
            client: "127.0.0.1".parse().unwrap(),
            method: "GET".into(),
            path: "/x?y".into(),
            status: 200,
            bytes: 5,
            duration: Duration::from_micros(1500),
            pool: "api".into(),
            backend: Some("127.0.0.1:8001".parse().unwrap()),
            retries: 1,
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
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["backend"], "127.0.0.1:8001");
        assert_eq!(
            r.to_text(),
            "1970-01-01T00:00:00.000Z 127.0.0.1 \"GET /x?y\" 200 5B 1.5ms api->127.0.0.1:8001 retries=1 id=r1"
        );
    }
}
