//! What the autoscaler measures, from drover's own counters: in-flight
//! requests sampled every [`SAMPLE_EVERY`] and time-averaged, requests per
//! second and 5xx share from the pool's counters, p95 latency from its
//! time-to-response-head histogram (`drover_upstream_response_seconds`), so
//! upgrade tunnels and long streams do not count as slow responses.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::policy::Window;
use crate::pool::{per_bucket, quantile, MemberState, Pool};

/// Sampling period. Default 250 ms.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Samples kept (10 minutes at 250 ms).
pub const KEEP: usize = 2400;
/// The burst guard's short window. Default 1 s.
pub const SHORT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    /// In flight on ready members plus requests held for a cold start.
    inflight: f64,
    requests: u64,
    errors: u64,
    /// Cumulative bucket counts of the response-head histogram.
    buckets: Vec<u64>,
    /// Responses counted by that histogram.
    responses: u64,
}

/// Rolling samples of one pool.
#[derive(Debug, Default)]
pub struct Sampler {
    samples: VecDeque<Sample>,
    last_request_at: Option<Instant>,
}

fn counts(pool: &Pool) -> (u32, u32, f64, u64) {
    let snap = pool.snapshot();
    let (mut ready, mut starting, mut inflight, mut errors) = (0, 0, 0.0, 0);
    for m in snap.members.iter() {
        match m.state {
            MemberState::Healthy => {
                ready += 1;
                inflight += m.stats.load.inflight() as f64;
            }
            MemberState::Starting => starting += 1,
            _ => {}
        }
        errors += m
            .stats
            .status_counts()
            .iter()
            .filter(|(c, _)| *c >= 500)
            .map(|(_, n)| n)
            .sum::<u64>();
    }
    inflight += f64::from(pool.held.load(Ordering::Relaxed));
    (ready, starting, inflight, errors)
}

impl Sampler {
    /// Takes one sample.
    pub fn sample(&mut self, pool: &Pool, now: Instant) {
        let (_, _, inflight, errors) = counts(pool);
        let (_, requests, _) = pool.metrics.duration.read();
        let (buckets, responses, _) = pool.metrics.response.read();
        if self.samples.back().is_none_or(|s| s.requests != requests) || inflight > 0.0 {
            // (the first sample also starts the idle clock)
            self.last_request_at = Some(now);
        }
        self.samples.push_back(Sample {
            at: now,
            inflight,
            requests,
            errors,
            buckets: buckets.into_iter().map(|(_, n)| n).collect(),
            responses,
        });
        while self.samples.len() > KEEP {
            self.samples.pop_front();
        }
    }

    /// Mean in-flight demand over the last [`SHORT`].
    pub fn short_demand(&self, _pool: &Pool) -> f64 {
        let Some(last) = self.samples.back() else {
            return 0.0;
        };
        let recent: Vec<f64> = self
            .samples
            .iter()
            .rev()
            .take_while(|s| last.at.duration_since(s.at) <= SHORT)
            .map(|s| s.inflight)
            .collect();
        recent.iter().sum::<f64>() / recent.len().max(1) as f64
    }

    /// Ready plus starting instances now.
    pub fn capacity(&self, pool: &Pool) -> u32 {
        let (ready, starting, _, _) = counts(pool);
        ready + starting
    }

    /// The measurements over the last `span`.
    pub fn window(&self, pool: &Pool, span: Duration) -> Window {
        let (ready, starting, _, _) = counts(pool);
        let Some(last) = self.samples.back() else {
            return Window {
                ready,
                starting,
                ..Window::default()
            };
        };
        let in_span: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| last.at.duration_since(s.at) <= span)
            .collect();
        let first = in_span[0];
        let dt = last.at.duration_since(first.at).as_secs_f64();
        let requests = last.requests.saturating_sub(first.requests);
        let errors = last.errors.saturating_sub(first.errors);
        let deltas: Vec<u64> = last
            .buckets
            .iter()
            .zip(&first.buckets)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let responses = last.responses.saturating_sub(first.responses);
        let p95_ms = quantile(&per_bucket(&deltas), responses, 0.95).map(|s| s * 1000.0);
        Window {
            ready,
            starting,
            inflight: in_span.iter().map(|s| s.inflight).sum::<f64>() / in_span.len() as f64,
            inflight_short: self.short_demand(pool),
            rps: if dt > 0.0 { requests as f64 / dt } else { 0.0 },
            p95_ms,
            error_rate: if requests > 0 {
                errors as f64 / requests as f64
            } else {
                0.0
            },
            cpu_percent: None,
            idle_for: self
                .last_request_at
                .map_or(Duration::MAX, |t| last.at.duration_since(t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pool() -> Pool {
        let cfg = crate::config::load_str("[pools.p]\nbackends = [\"127.0.0.1:1\"]\n", None)
            .expect("valid config");
        Pool::new(Arc::new(cfg.pools["p"].clone()))
    }

    #[test]
    fn p95_is_time_to_response_head_interpolated_in_its_bucket() {
        let p = pool();
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.sample(&p, t0);
        // 100 responses whose heads came in 100..250 ms; their bodies (a
        // stream, a tunnel) lasted a minute each.
        for _ in 0..100 {
            p.metrics.response.observe(Duration::from_millis(200));
            p.metrics.duration.observe(Duration::from_secs(60));
        }
        s.sample(&p, t0 + Duration::from_secs(1));
        let w = s.window(&p, Duration::from_secs(10));
        let p95 = w.p95_ms.expect("requests seen");
        // 95% of the way through (100 ms, 250 ms], not the bucket's edge, nor 60 s.
        assert!((p95 - 242.5).abs() < 1e-6, "{p95}");
        assert!((w.rps - 100.0).abs() < 1e-6, "{}", w.rps);
    }

    #[test]
    fn no_responses_no_p95() {
        let p = pool();
        let mut s = Sampler::default();
        let t0 = Instant::now();
        s.sample(&p, t0);
        s.sample(&p, t0 + Duration::from_secs(1));
        assert_eq!(s.window(&p, Duration::from_secs(10)).p95_ms, None);
    }
}
