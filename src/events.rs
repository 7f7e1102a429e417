//! The event log: health, membership and scaling events with their reasons,
//! kept in a bounded ring ([`CAPACITY`]) and served by `GET /api/v1/events?since=ID`.
//!
//! An event's kind is an [`EventKind`]; [`KINDS`] is the one table of kinds and
//! their wire names (the admin API, the logs and README's list all use it).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Events kept in memory. Default 10,000; older ones are dropped.
pub const CAPACITY: usize = 10_000;

macro_rules! kinds {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// What an event is about. Serialized as its wire name (`"scale_up"`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $($(#[$doc])* $v,)*
        }

        /// Every kind with its wire name, in the order README lists them.
        pub const KINDS: &[(EventKind, &str)] = &[$((EventKind::$v, $s),)*];

        impl EventKind {
            /// The wire name (`"scale_up"`), as the API and the logs show it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$v => $s,)*
                }
            }
        }
    };
}

kinds! {
    /// A member passed `rise` checks (or its port accepts connections).
    Healthy = "healthy",
    /// A member failed `fall` checks.
    Unhealthy = "unhealthy",
    /// Passive ejection after consecutive failures in live traffic.
    Ejected = "ejected",
    /// An ejected member's time is up; it takes requests again.
    Uneject = "uneject",
    /// A static or discovered member joined.
    Added = "added",
    /// A member takes no new requests.
    Draining = "draining",
    /// A member left the pool after draining.
    Removed = "removed",
    /// The desired instance count was set (admin API, or at start).
    ScaleSet = "scale_set",
    /// The autoscaler raised the desired count.
    ScaleUp = "scale_up",
    /// The autoscaler lowered the desired count.
    ScaleDown = "scale_down",
    /// A managed instance was started.
    InstanceStarted = "instance_started",
    /// An instance found running at start was adopted.
    InstanceAdopted = "instance_adopted",
    /// A managed instance failed to start, or exited; it is replaced after a back-off.
    InstanceFailed = "instance_failed",
    /// A stopped leftover container was removed.
    InstanceRemoved = "instance_removed",
    /// A managed instance was stopped (after draining, or at shutdown).
    Stopped = "stopped",
    /// A warm-pool instance was started.
    WarmStarted = "warm_started",
    /// A warm-pool instance passed its health check.
    WarmReady = "warm_ready",
    /// A warm-pool instance joined the pool.
    WarmJoined = "warm_joined",
    /// A warm-pool instance exited.
    WarmFailed = "warm_failed",
    /// A warm-pool instance could not be frozen.
    WarmFreezeFailed = "warm_freeze_failed",
    /// A warm-pool instance was stopped.
    WarmStopped = "warm_stopped",
    /// A scheduled scaling window opened.
    ScheduleOpen = "schedule_open",
    /// A scheduled scaling window closed.
    ScheduleClose = "schedule_close",
    /// Discovery (DNS) failed; the members stay as they are.
    DiscoveryError = "discovery_error",
    /// The config file was reloaded.
    Reload = "reload",
}

impl EventKind {
    /// The kind with this wire name.
    pub fn parse(s: &str) -> Option<EventKind> {
        KINDS.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for EventKind {
    /// A string, one of the wire names in [`KINDS`].
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{Object, Type};
        Object::builder()
            .schema_type(Type::String)
            .enum_values(Some(KINDS.iter().map(|(_, n)| *n)))
            .into()
    }
}

impl utoipa::ToSchema for EventKind {}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        EventKind::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event kind {s:?}")))
    }
}

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Event {
    /// Increasing from 1.
    pub id: u64,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub ts: String,
    /// The pool's name (`""` for a `reload`).
    pub pool: String,
    pub kind: EventKind,
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
    /// Appends an event, logs it, and returns its id.
    pub fn record(
        &self,
        pool: &str,
        kind: EventKind,
        backend: Option<String>,
        reason: impl Into<String>,
    ) -> u64 {
        let reason = reason.into();
        tracing::info!(pool, kind = kind.as_str(), backend = backend.as_deref().unwrap_or(""), reason = %reason, "event");
        let mut g = self.inner.lock();
        g.0 += 1;
        let id = g.0;
        if g.1.len() == CAPACITY {
            g.1.pop_front();
        }
        g.1.push_back(Event {
            id,
            ts: crate::access_log::rfc3339(SystemTime::now()),
            pool: pool.to_string(),
            kind,
            backend,
            reason,
        });
        id
    }

    /// Events with `id > since`, oldest first, at most `limit`.
    pub fn since(&self, since: u64, limit: usize) -> Vec<Event> {
        let g = self.inner.lock();
        g.1.iter()
            .filter(|e| e.id > since)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The id of the newest event (0 if none).
    pub fn last_id(&self) -> u64 {
        self.inner.lock().0
    }
}

/// The process-wide event log.
pub fn log() -> &'static EventLog {
    static LOG: OnceLock<EventLog> = OnceLock::new();
    LOG.get_or_init(EventLog::default)
}

/// Shorthand for `log().record(...)`.
pub fn record(
    pool: &str,
    kind: EventKind,
    backend: Option<String>,
    reason: impl Into<String>,
) -> u64 {
    log().record(pool, kind, backend, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_one_unique_wire_name_each_and_round_trip() {
        let mut names: Vec<&str> = KINDS.iter().map(|(_, n)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "a wire name used twice");
        for (k, n) in KINDS {
            assert_eq!(k.as_str(), *n);
            assert_eq!(EventKind::parse(n), Some(*k));
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{n}\""));
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), *k);
        }
        assert!(serde_json::from_str::<EventKind>("\"nope\"").is_err());
    }

    #[test]
    fn since_pages_by_id_and_the_ring_is_bounded() {
        let l = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            l.record("p", EventKind::Reload, None, format!("r{i}"));
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
