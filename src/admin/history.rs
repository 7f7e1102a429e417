//! Recent history per pool for the dashboard's charts: a task samples every
//! [`SAMPLE_INTERVAL`] into a ring of [`POINTS`] points per pool (15 minutes),
//! served by `GET /api/v1/pools/{pool}/history` and `GET /api/v1/history`.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Drover;
use crate::pool::{per_bucket, quantile};

/// Time between samples. 5 s.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Points kept per pool: 180 × 5 s = 15 minutes.
pub const POINTS: usize = 180;

/// One sample of a pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Point {
    /// Unix time in milliseconds.
    pub ts: u64,
    /// Requests per second over the interval before `ts`.
    pub rps: f64,
    /// Median time to the response head over the interval, milliseconds
    /// (`null` without responses; `drover_upstream_response_seconds`).
    pub p50_ms: Option<f64>,
    /// 95th percentile time to the response head over the interval, milliseconds.
    pub p95_ms: Option<f64>,
    /// Instances the pool should run (static pools: the member count).
    pub desired: u32,
    /// Members taking requests (healthy).
    pub ready: u32,
    /// Requests in flight at `ts`.
    pub inflight: u64,
}

#[derive(Default)]
struct Series {
    points: VecDeque<Point>,
    /// At the previous sample: the response-head histogram's cumulative
    /// bucket counts and total, and the request count.
    last: Option<(Instant, Vec<u64>, u64, u64)>,
}

/// Per-pool rings of samples.
#[derive(Default)]
pub struct History {
    pools: Mutex<BTreeMap<String, Series>>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl History {
    /// Takes one sample of every pool (a pool's first sample is only a baseline);
    /// pools no longer configured are forgotten.
    pub fn sample(&self, app: &dyn Drover) {
        let router = app.shared().router.load_full();
        let now = Instant::now();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut g = self.pools.lock();
        g.retain(|name, _| router.pools.contains_key(name));
        for (name, pool) in &router.pools {
            let series = g.entry(name.clone()).or_default();
            // Rates from every request; latency from the time to the response
            // head, so WebSockets and long streams do not read as slow responses.
            let (_, count, _) = pool.metrics.duration.read();
            let (cumulative, heads, _) = pool.metrics.response.read();
            let cum: Vec<u64> = cumulative.iter().map(|(_, n)| *n).collect();
            let (rps, p50, p95) = match &series.last {
                Some((t, prev, prev_heads, prev_count)) => {
                    let per: Vec<u64> = per_bucket(&cum)
                        .iter()
                        .zip(per_bucket(prev))
                        .map(|(c, p)| c.saturating_sub(p))
                        .collect();
                    let n = count.saturating_sub(*prev_count);
                    let h = heads.saturating_sub(*prev_heads);
                    let secs = now.duration_since(*t).as_secs_f64().max(0.001);
                    let ms = |q| quantile(&per, h, q).map(|s| round2(s * 1000.0));
                    (round2(n as f64 / secs), ms(0.5), ms(0.95))
                }
                None => {
                    // The first sample is only the baseline for the next one's rates.
                    series.last = Some((now, cum, heads, count));
                    continue;
                }
            };
            series.last = Some((now, cum, heads, count));
            if series.points.len() == POINTS {
                series.points.pop_front();
            }
            series.points.push_back(Point {
                ts,
                rps,
                p50_ms: p50,
                p95_ms: p95,
                desired: pool.desired_instances(),
                ready: super::api::ready(pool),
                inflight: pool
                    .snapshot()
                    .members
                    .iter()
                    .map(|m| m.stats.load.inflight())
                    .sum(),
            });
        }
    }

    /// The points of one pool, oldest first (`None` for an unknown pool).
    pub fn pool(&self, name: &str) -> Option<Vec<Point>> {
        let g = self.pools.lock();
        g.get(name).map(|s| s.points.iter().cloned().collect())
    }

    /// Every pool's points.
    pub fn all(&self) -> BTreeMap<String, Vec<Point>> {
        let g = self.pools.lock();
        g.iter()
            .map(|(k, s)| (k.clone(), s.points.iter().cloned().collect()))
            .collect()
    }
}

/// Samples now and then every [`SAMPLE_INTERVAL`], forever.
pub async fn run(history: Arc<History>, app: Arc<dyn Drover>) {
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        history.sample(&*app);
    }
}
