//! The event log: health, membership and scaling events with their reasons,
//! kept in a bounded ring ([`CAPACITY`]) and served by `GET /api/v1/events?since=ID`.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde::Serialize;

/// Events kept in memory. Default 10,000; older ones are dropped.
pub const CAPACITY: usize = 10_000;

/// One event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Increasing from 1.
    pub id: u64,
    /// RFC 3339 UTC.
    pub ts: String,
    pub pool: String,
    /// e.g. `healthy`, `unhealthy`, `ejected`, `added`, `removed`, `draining`,
    /// `scale_up`, `scale_down`, `instance_started`, `instance_exited`, `reload`,
    /// `discovery_error`.
    pub kind: String,
    /// Member address, when the event is about one.
    pub backend: Option<String>,
    /// Why, in words (`"3 failed checks: connection refused"`).
    pub reason: String,
}

/// A bounded, append-only log of events.
#[derive(Debug, Default)]
pub struct EventLog {
    inner: Mutex<(u64, VecDeque<Event>)>,
}

impl EventLog {
    /// Appends an event, logs it, and returns its id; `scale_up` / `scale_down`
    /// events also count in `drover_scale_events_total`.
    pub fn record(
        &self,
        pool: &str,
        kind: &str,
        backend: Option<String>,
        reason: impl Into<String>,
    ) -> u64 {
        let reason = reason.into();
        tracing::info!(pool, kind, backend = backend.as_deref().unwrap_or(""), reason = %reason, "event");
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let id = g.0;
        if g.1.len() == CAPACITY {
            g.1.pop_front();
        }
        g.1.push_back(Event {
            id,
            ts: crate::access_log::rfc3339(SystemTime::now()),
            pool: pool.to_string(),
            kind: kind.to_string(),
            backend,
            reason,
        });
        id
    }

    /// Events with `id > since`, oldest first, at most `limit`.
    pub fn since(&self, since: u64, limit: usize) -> Vec<Event> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter()
            .filter(|e| e.id > since)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The id of the newest event (0 if none).
    pub fn last_id(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

/// The process-wide event log.
pub fn log() -> &'static EventLog {
    static LOG: OnceLock<EventLog> = OnceLock::new();
    LOG.get_or_init(EventLog::default)
}

/// Shorthand for `log().record(...)`.
pub fn record(pool: &str, kind: &str, backend: Option<String>, reason: impl Into<String>) -> u64 {
    log().record(pool, kind, backend, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_pages_by_id_and_the_ring_is_bounded() {
        let l = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            l.record("p", "k", None, format!("r{i}"));
        }
        assert_eq!(l.last_id(), (CAPACITY + 5) as u64);
        let first = l.since(0, 3);
        assert_eq!(first[0].id, 6, "oldest five dropped");
        let tail = l.since(CAPACITY as u64 + 3, 100);
        assert_eq!(
            tail.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![CAPACITY as u64 + 4, CAPACITY as u64 + 5]
        );
    }
}
