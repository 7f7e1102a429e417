//! A route's rate limit: [`Gcra`] state per key, with bounded memory and no
//! global lock on the request path.
//!
//! - `key = "route"`: one `AtomicU64` updated by compare-and-swap.
//! - `key = "client_ip"` / `"header:NAME"`: the key is hashed (SipHash with a
//!   random per-limiter key, so clients cannot aim collisions) to a `u64`; the
//!   hash picks one of [`SHARDS`] small maps, each behind its own mutex, held
//!   for one lookup and the arithmetic (never across an await). Worker threads
//!   contend only when two requests hash to the same shard at the same instant.
//! - Memory: at most `max_keys` entries (split evenly over the shards). A key
//!   whose `tat` is past is exactly as good as a key never seen, so expired
//!   entries are dropped whenever a shard is full (at most once per
//!   [`PURGE_EVERY`] per shard). When a shard is still full of live keys, new
//!   keys share the shard's one overflow allowance until room frees up: a
//!   flood of distinct keys is limited together instead of unlimited.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::gcra::{ceil_secs, Gcra, Verdict};
use crate::config::{RateKey, RateLimitConfig};

/// Shards of a keyed limiter. 16.
pub const SHARDS: usize = 16;

/// Smallest time between two purges of expired keys in one shard. 100 ms.
pub const PURGE_EVERY: Duration = Duration::from_millis(100);

/// What a limited request is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `Retry-After`: whole seconds until a request would pass (>= 1).
    pub retry_after: u64,
    /// `RateLimit-Limit`: the burst.
    pub limit: u32,
    /// `RateLimit-Reset`: whole seconds until the key's allowance is full.
    pub reset: u64,
}

/// Identity hasher for keys that are already SipHash outputs.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Shard {
    /// Key hash -> tat (ns since the limiter's epoch).
    tats: HashMap<u64, u64, BuildHasherDefault<Prehashed>>,
    /// The tat shared by new keys while the shard is full.
    overflow: u64,
    /// No purge before this (ns since the epoch).
    next_purge: u64,
}

enum Store {
    Route(AtomicU64),
    Keyed {
        shards: Box<[Mutex<Shard>]>,
        per_shard: usize,
        hasher: RandomState,
    },
}

/// One route's limiter.
pub struct RouteLimiter {
    pub config: RateLimitConfig,
    gcra: Gcra,
    store: Store,
    epoch: Instant,
    /// `drover_rate_limited_total{route}`; shared by every limiter of the same
    /// route label, across reloads.
    pub limited: Arc<AtomicU64>,
}

/// Requests refused by rate limits, per route label, since start (every
/// label that ever had a limit; counters survive reloads).
pub fn limited_counters() -> Vec<(String, u64)> {
    registry()
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
        .collect()
}

type Registry = Mutex<std::collections::BTreeMap<String, Arc<AtomicU64>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

fn counter(label: &str) -> Arc<AtomicU64> {
    registry()
        .lock()
        .entry(label.to_string())
        .or_default()
        .clone()
}

impl RouteLimiter {
    /// A limiter for the route labelled `label`.
    pub fn new(config: &RateLimitConfig, label: &str) -> RouteLimiter {
        let gcra = Gcra::new(config.requests, config.per, config.burst);
        let store = match config.key {
            RateKey::Route => Store::Route(AtomicU64::new(0)),
            _ => Store::Keyed {
                shards: (0..SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            tats: HashMap::default(),
                            overflow: 0,
                            next_purge: 0,
                        })
                    })
                    .collect(),
                per_shard: config.max_keys.div_ceil(SHARDS).max(1),
                hasher: RandomState::new(),
            },
        };
        RouteLimiter {
            config: config.clone(),
            gcra,
            store,
            epoch: Instant::now(),
            limited: counter(label),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Decides for one request from `client` with `headers`; counts a refusal.
    pub fn check(&self, client: IpAddr, headers: &HeaderMap) -> Result<(), Limited> {
        let r = self.check_at(client, headers, self.now());
        if r.is_err() {
            self.limited.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// [`RouteLimiter::check`] at `now` (ns since the limiter's epoch), not counted.
    pub fn check_at(&self, client: IpAddr, headers: &HeaderMap, now: u64) -> Result<(), Limited> {
        match &self.store {
            Store::Route(tat) => self.check_atomic(tat, now),
            Store::Keyed {
                shards,
                per_shard,
                hasher,
            } => {
                let h = match &self.config.key {
                    RateKey::Header(name) => {
                        hasher.hash_one(headers.get(name.as_str()).map(|v| v.as_bytes()))
                    }
                    _ => match client {
                        IpAddr::V4(a) => hasher.hash_one(a.octets()),
                        IpAddr::V6(a) => hasher.hash_one(a.octets()),
                    },
                };
                let idx = usize::try_from(h % SHARDS as u64).unwrap_or(0);
                let Some(shard) = shards.get(idx) else {
                    return Ok(());
                };
                let mut s = shard.lock();
                self.check_shard(&mut s, h, *per_shard, now)
            }
        }
    }

    fn check_atomic(&self, cell: &AtomicU64, now: u64) -> Result<(), Limited> {
        let mut tat = cell.load(Ordering::Relaxed);
        loop {
            match self.gcra.check(tat, now) {
                Verdict::Allow { tat: new } => {
                    match cell.compare_exchange_weak(tat, new, Ordering::Relaxed, Ordering::Relaxed)
                    {
                        Ok(_) => return Ok(()),
                        Err(seen) => tat = seen,
                    }
                }
                Verdict::Deny { wait } => return Err(self.limited_at(tat, now, wait)),
            }
        }
    }

    fn check_shard(&self, s: &mut Shard, h: u64, cap: usize, now: u64) -> Result<(), Limited> {
        if !s.tats.contains_key(&h) && s.tats.len() >= cap && now >= s.next_purge {
            s.tats.retain(|_, tat| *tat > now);
            if s.tats.capacity() > 4 * cap.max(s.tats.len()) {
                s.tats.shrink_to(cap);
            }
            s.next_purge = now.saturating_add(PURGE_EVERY.as_nanos() as u64);
        }
        let room = s.tats.len() < cap;
        let slot = if room || s.tats.contains_key(&h) {
            s.tats.entry(h).or_insert(0)
        } else {
            &mut s.overflow
        };
        match self.gcra.check(*slot, now) {
            Verdict::Allow { tat } => {
                *slot = tat;
                Ok(())
            }
            Verdict::Deny { wait } => Err(self.limited_at(*slot, now, wait)),
        }
    }

    fn limited_at(&self, tat: u64, now: u64, wait: u64) -> Limited {
        Limited {
            retry_after: ceil_secs(wait).max(1),
            limit: self.gcra.burst,
            reset: ceil_secs(self.gcra.reset(tat, now)),
        }
    }

    /// Keys tracked now (0 for `key = "route"`).
    pub fn tracked(&self) -> usize {
        match &self.store {
            Store::Route(_) => 0,
            Store::Keyed { shards, .. } => shards.iter().map(|s| s.lock().tats.len()).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn cfg(key: RateKey, max_keys: usize) -> RateLimitConfig {
        RateLimitConfig {
            requests: 1,
            per: Duration::from_secs(10),
            burst: 2,
            key,
            max_keys,
        }
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn each_client_ip_has_its_own_allowance() {
        let l = RouteLimiter::new(&cfg(RateKey::ClientIp, 1000), "t-ip");
        let h = HeaderMap::new();
        for _ in 0..2 {
            assert!(l.check_at(ip(1), &h, SEC).is_ok());
        }
        let e = l.check_at(ip(1), &h, SEC).unwrap_err();
        assert_eq!(
            e,
            Limited {
                retry_after: 10,
                limit: 2,
                reset: 20
            }
        );
        assert!(l.check_at(ip(2), &h, SEC).is_ok());
        assert!(l.check_at(ip(1), &h, 11 * SEC).is_ok());
    }

    #[test]
    fn header_keys_and_the_route_key() {
        let l = RouteLimiter::new(&cfg(RateKey::Header("x-user".into()), 1000), "t-h");
        let mut a = HeaderMap::new();
        a.insert("x-user", "a".parse().unwrap());
        let mut b = HeaderMap::new();
        b.insert("x-user", "b".parse().unwrap());
        assert!(l.check_at(ip(1), &a, SEC).is_ok());
        assert!(l.check_at(ip(2), &a, SEC).is_ok());
        assert!(
            l.check_at(ip(3), &a, SEC).is_err(),
            "same header value, any ip"
        );
        assert!(l.check_at(ip(1), &b, SEC).is_ok());
        let r = RouteLimiter::new(&cfg(RateKey::Route, 1), "t-r");
        assert!(r.check_at(ip(1), &a, SEC).is_ok());
        assert!(r.check_at(ip(2), &b, SEC).is_ok());
        assert!(r.check_at(ip(3), &b, SEC).is_err());
        assert_eq!(r.tracked(), 0);
    }

    #[test]
    fn tracked_keys_are_bounded_and_expire() {
        let max = 64;
        let l = RouteLimiter::new(&cfg(RateKey::ClientIp, max), "t-cap");
        let h = HeaderMap::new();
        let mut refused = 0;
        for n in 0..10_000 {
            if l.check_at(ip(n), &h, SEC).is_err() {
                refused += 1;
            }
        }
        let per_shard = max.div_ceil(SHARDS);
        assert!(l.tracked() <= per_shard * SHARDS, "{}", l.tracked());
        // Past the cap new keys share each shard's overflow allowance.
        assert!(refused > 9_000, "{refused}");
        // Once their tat is past, keys are dropped for new ones: of 100 new
        // keys (~6 a shard) each shard tracks 4 again, the rest share its overflow.
        let later = 100 * SEC;
        let ok = (20_000..20_100)
            .filter(|n| l.check_at(ip(*n), &h, later).is_ok())
            .count();
        assert!(ok >= 50, "{ok}");
        assert!(l.tracked() <= per_shard * SHARDS);
    }

    #[test]
    fn refusals_are_counted_under_the_route_label() {
        let l = RouteLimiter::new(&cfg(RateKey::Route, 1), "t-count");
        let h = HeaderMap::new();
        let results: Vec<bool> = (0..5).map(|_| l.check(ip(1), &h).is_ok()).collect();
        assert_eq!(results, [true, true, false, false, false]);
        let n = limited_counters()
            .into_iter()
            .find(|(k, _)| k == "t-count")
            .map(|(_, v)| v);
        assert_eq!(n, Some(3));
    }

    #[test]
    fn threads_share_one_route_allowance() {
        let l = Arc::new(RouteLimiter::new(
            &RateLimitConfig {
                requests: 1,
                per: Duration::from_secs(3600),
                burst: 100,
                key: RateKey::Route,
                max_keys: 1,
            },
            "t-threads",
        ));
        let ok = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (l, ok) = (l.clone(), ok.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if l.check_at(ip(1), &HeaderMap::new(), SEC).is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::Relaxed), 100);
    }
}
