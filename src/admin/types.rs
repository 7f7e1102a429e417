//! The admin API's bodies, typed: the server builds them, `drover ctl` reads
//! them, and the OpenAPI document's schemas are generated from them
//! ([`super::openapi`]). Field names and values are the wire format; renaming
//! one changes the API (SPEC.md fixes the documented ones).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pool::MemberState;

/// A member's state (`GET /api/v1/pools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Starting,
    Healthy,
    Unhealthy,
    Ejected,
    Draining,
}

impl From<MemberState> for State {
    fn from(s: MemberState) -> State {
        match s {
            MemberState::Starting => State::Starting,
            MemberState::Healthy => State::Healthy,
            MemberState::Unhealthy => State::Unhealthy,
            MemberState::Ejected => State::Ejected,
            MemberState::Draining => State::Draining,
        }
    }
}

impl State {
    /// The wire name (`healthy`), as [`MemberState::as_str`].
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
            State::Ejected => "ejected",
            State::Draining => "draining",
        }
    }
}

/// The latest active health check of a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `pass` or `fail`.
    pub result: String,
    /// `status 200`, `connection refused`, `timed out after 1s`, ...
    pub detail: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// One member of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Backend {
    /// `ip:port`.
    pub address: String,
    pub state: State,
    /// Why it is in that state.
    pub reason: String,
    pub inflight: u64,
    /// Requests answered with a response head from it.
    pub requests: u64,
    /// Connection failures, timeouts and 502/503/504.
    pub failures: u64,
    pub consecutive_failures: u64,
    /// The latest active check (`null` before the first or without `[health]`).
    pub last_check: Option<Check>,
    pub consecutive_check_failures: u64,
    /// Passive ejections so far.
    pub ejections: u64,
    /// Response-time EWMA, milliseconds (3 decimals).
    pub ewma_ms: f64,
    pub weight: u32,
    /// Weight now: lower during slow start, 0 while the member takes no requests (3 decimals).
    pub effective_weight: f64,
    /// Sticky-cookie requests to this member in the last 1-2 minutes.
    pub sticky_sessions: u64,
    /// Started by drover (an instance), not a static backend.
    pub managed: bool,
}

/// The warm pool of a managed pool (as the autoscaler explains it).
pub use crate::autoscale::explain::WarmView as Warm;

/// `GET /api/v1/pools/{pool}/autoscale`: the pool and what its autoscaler saw and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutoscaleView {
    pub pool: String,
    #[serde(flatten)]
    pub explain: crate::autoscale::explain::Explain,
}

/// One pool (`GET /api/v1/pools/{pool}`; `GET /api/v1/pools` is a list of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PoolView {
    pub name: String,
    /// The balance algorithm (`round_robin`, `least_conn`, ...).
    pub balance: String,
    /// Instances the pool should run: the count the controller keeps for a pool
    /// with `[instances]`, the member count for a static pool.
    pub desired: u32,
    /// Managed members (instances drover started).
    pub instances: u64,
    /// Members taking requests (healthy).
    pub ready: u32,
    /// Whether `PUT .../scale` applies (the pool has `[instances]`).
    pub scalable: bool,
    /// Bounds of `PUT .../scale` (`null` when not scalable).
    pub min: Option<u32>,
    pub max: Option<u32>,
    /// Whether `[autoscale]` is configured.
    pub autoscaled: bool,
    /// The warm pool (only for pools whose instance controller runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Warm>,
    /// Retries since start.
    pub retries: u64,
    /// Requests waiting for a member now.
    pub queued: u64,
    pub backends: Vec<Backend>,
}

/// `DELETE /api/v1/pools/{pool}/backends/{address}`: the member, now draining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Removal {
    pub member: Backend,
    /// When it goes: `once nothing is in flight, at most 30s`.
    pub removal: String,
}

/// `PUT /api/v1/pools/{pool}/scale`: the count now desired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scaled {
    pub pool: String,
    pub desired: u32,
}

/// `POST /api/v1/reload`: the pools of the new config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reloaded {
    /// Always `true`.
    pub reloaded: bool,
    pub pools: Vec<String>,
}

/// A route's rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateLimitView {
    pub requests: u32,
    /// The period `requests` are allowed in, milliseconds.
    pub per_ms: u64,
    pub burst: u32,
    /// `client_ip`, `route` or `header:NAME`.
    pub key: String,
    /// Keys tracked at most.
    pub max_keys: u64,
}

/// One route (`GET /api/v1/routes`, in match order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteView {
    /// `name`, else the index in `[[routes]]`.
    pub name: String,
    /// `api.example.com` or `*.example.com`; `null` = any.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    /// Empty = any method.
    pub methods: Vec<String>,
    /// `null` for a redirect.
    pub pool: Option<String>,
    /// The redirect's status, for a redirect route.
    pub redirect: Option<u16>,
    pub rate_limit: Option<RateLimitView>,
    /// 429 answers since start.
    pub rate_limited: u64,
    /// Keys the limiter tracks now.
    pub tracked_keys: u64,
}

/// Every error answer: `{"error": "...", "detail": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, in words.
    pub error: String,
    /// More: a string, a list of errors, or an object (e.g. `{"min", "max"}`).
    pub detail: serde_json::Value,
}

/// `POST /api/v1/pools/{pool}/backends`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddBackend {
    /// `ip:port`, or `https://ip:port` in a pool with `tls = true`.
    #[schema(example = "127.0.0.1:8003")]
    pub address: String,
    /// 1 to 1000000. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub weight: Option<u32>,
}

/// `PUT /api/v1/pools/{pool}/scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScaleTo {
    pub instances: u32,
}
