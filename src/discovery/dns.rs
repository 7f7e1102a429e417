//! DNS discovery: a pool's members are the addresses its host names answer
//! (A and AAAA; no SRV), on the port given with each name. Backends written
//! `"api.internal:8080"` and `provider = "dns"` (`name`, `port`) both use it:
//! a compose or Swarm service with `endpoint_mode: dnsrr` answers one address
//! per replica, so its name becomes a pool that follows the replicas.
//!
//! Each round asks the resolver afresh (its cache is cleared), then waits
//! [`next_round`]: the pool's `resolve_interval`, or less when the answer's
//! TTL ends first. A name that fails (timeout, unreachable server, SERVFAIL)
//! keeps its last good addresses and the failure is reported; a name the
//! server says has no addresses (NXDOMAIN, no A/AAAA records) has none.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig as Servers};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

use super::{Discovery, Found, MemberSet, Sink};
use crate::config::{NamedBackend, PoolConfig, ResolverConfig};

/// How long one query waits for an answer before the next attempt: 2 s.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// DNS discovery with one resolver configuration.
pub struct Dns {
    config: ResolverConfig,
}

impl Dns {
    pub fn new(config: ResolverConfig) -> Dns {
        Dns { config }
    }
}

impl Discovery for Dns {
    fn kind(&self) -> &'static str {
        "dns"
    }

    fn identity(&self) -> String {
        format!("dns {:?}", self.config.nameservers)
    }

    fn watch(self: Arc<Self>, out: Sink) -> BoxFuture<'static, ()> {
        Box::pin(async move { watch(&self.config, out).await })
    }
}

/// The resolver asked: the configured name servers (UDP, TCP for truncated
/// answers), else the system's (`/etc/resolv.conf`, `/etc/hosts` first).
pub fn resolver(config: &ResolverConfig) -> Result<TokioResolver, String> {
    let mut builder = if config.nameservers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|a| {
                let mut udp = ConnectionConfig::udp();
                udp.port = a.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = a.port();
                NameServerConfig::new(a.ip(), true, vec![udp, tcp])
            })
            .collect();
        hickory_resolver::Resolver::builder_with_config(
            Servers::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let opts = builder.options_mut();
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = 1;
    builder
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
}

/// When to resolve again: after `interval`, or when the answer's `ttl` ends
/// if that is sooner, but not before [`PoolConfig::MIN_RESOLVE_INTERVAL`].
pub fn next_round(interval: Duration, ttl: Option<Duration>) -> Duration {
    ttl.map_or(interval, |t| t.min(interval))
        .max(PoolConfig::MIN_RESOLVE_INTERVAL)
}

/// One name's answer: its addresses and shortest TTL, `Ok(None)` when the
/// name has no addresses, or why the lookup failed.
type Answer = Result<Option<(Vec<std::net::IpAddr>, Duration)>, String>;

async fn lookup(resolver: &TokioResolver, host: &str) -> Answer {
    // A trailing dot: the name as written, not tried under search domains first
    // (`ndots`), unless it is a single label (a compose service name).
    let fqdn = if host.contains('.') {
        format!("{host}.")
    } else {
        host.to_string()
    };
    match resolver.lookup_ip(fqdn.as_str()).await {
        Ok(found) => {
            let ttl = found
                .as_lookup()
                .answers()
                .iter()
                .map(|r| r.ttl)
                .min()
                .map(|s| Duration::from_secs(u64::from(s)));
            let ips: Vec<_> = found.iter().collect();
            match ips.is_empty() {
                true => Ok(None),
                false => Ok(Some((ips, ttl.unwrap_or(Duration::MAX)))),
            }
        }
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(None),
        Err(e) => Err(format!("resolving {host} failed: {e}")),
    }
}

/// The member set from each name's latest good answer.
pub fn member_set(
    names: &[NamedBackend],
    answers: &BTreeMap<String, Vec<std::net::IpAddr>>,
) -> MemberSet {
    let mut set = MemberSet::new();
    for n in names {
        for ip in answers.get(&n.host).into_iter().flatten() {
            set.entry(SocketAddr::new(*ip, n.port)).or_insert(Found {
                weight: n.weight,
                origin: format!("{} answers {ip}", n.host),
            });
        }
    }
    set
}

async fn watch(config: &ResolverConfig, out: Sink) {
    let resolver = match resolver(config) {
        Ok(r) => r,
        Err(why) => {
            out.failed(&why);
            return;
        }
    };
    // The latest good answer of each name.
    let mut last: BTreeMap<String, Vec<std::net::IpAddr>> = BTreeMap::new();
    loop {
        // Read at each round: a reload may change the names or the interval.
        let Some(cfg) = out.config() else { return };
        let names = cfg.dns_names();
        resolver.clear_cache();
        let mut ttl: Option<Duration> = None;
        let mut failures = Vec::new();
        let mut hosts: Vec<&str> = names.iter().map(|n| n.host.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        for host in &hosts {
            match lookup(&resolver, host).await {
                Ok(Some((ips, t))) => {
                    ttl = Some(ttl.map_or(t, |old| old.min(t)));
                    last.insert(host.to_string(), ips);
                }
                Ok(None) => {
                    last.insert(host.to_string(), Vec::new());
                }
                Err(why) => failures.push(why),
            }
        }
        last.retain(|h, _| hosts.contains(&h.as_str()));
        let set = member_set(&names, &last);
        out.set(&set, "no longer in the DNS answer");
        if !failures.is_empty() {
            out.failed(&failures.join("; "));
        }
        drop(cfg);
        let wait = next_round(
            out.config()
                .map_or(PoolConfig::DEFAULT_RESOLVE_INTERVAL, |c| c.resolve_interval),
            ttl,
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_ttl_shortens_the_interval_but_never_below_a_second() {
        assert_eq!(next_round(S(30), None), S(30));
        assert_eq!(next_round(S(30), Some(S(5))), S(5));
        assert_eq!(next_round(S(30), Some(S(600))), S(30));
        assert_eq!(next_round(S(30), Some(S(0))), S(1));
        assert_eq!(next_round(Duration::from_millis(200), None), S(1));
    }

    proptest! {
        #[test]
        fn next_round_is_within_the_floor_and_the_interval(i in 1u64..100_000, t in proptest::option::of(0u64..1_000_000)) {
            let interval = Duration::from_millis(i);
            let d = next_round(interval, t.map(Duration::from_millis));
            prop_assert!(d >= PoolConfig::MIN_RESOLVE_INTERVAL);
            prop_assert!(d <= interval.max(PoolConfig::MIN_RESOLVE_INTERVAL));
            if let Some(t) = t {
                prop_assert!(d <= Duration::from_millis(t).max(PoolConfig::MIN_RESOLVE_INTERVAL));
            }
        }
    }

    #[test]
    fn every_name_adds_its_addresses_on_its_port_with_its_weight() {
        let names = vec![
            NamedBackend {
                host: "a.test".into(),
                port: 80,
                weight: 2,
            },
            NamedBackend {
                host: "b.test".into(),
                port: 81,
                weight: 1,
            },
            NamedBackend {
                host: "gone.test".into(),
                port: 82,
                weight: 1,
            },
        ];
        let answers = BTreeMap::from([
            (
                "a.test".to_string(),
                vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            ),
            ("b.test".to_string(), vec!["::1".parse().unwrap()]),
        ]);
        let set = member_set(&names, &answers);
        let addrs: Vec<String> = set.keys().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:80", "10.0.0.2:80", "[::1]:81"]);
        assert_eq!(set[&"10.0.0.1:80".parse().unwrap()].weight, 2);
        assert_eq!(
            set[&"[::1]:81".parse().unwrap()].origin,
            "b.test answers ::1"
        );
    }
}
