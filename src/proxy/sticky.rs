//! Sticky sessions: a cookie naming the member that served a client.
//!
//! The cookie's value is an opaque member id: 16 hex digits of a keyed hash
//! (SipHash with a random key per process) of the pool name and the member's
//! address, never the address itself. A request whose cookie names a member
//! that is healthy — or draining, until the pool's drain timeout has passed
//! since it began — goes to it; otherwise to the one the balancer picks, and
//! the response replaces the cookie. The cookie is client input: it is parsed
//! from bytes, without panics, and an id no member has is simply ignored.

use std::time::{Duration, Instant};

use http::header::{HeaderMap, HeaderValue, COOKIE};

use crate::config::{PoolConfig, StickyConfig};
use crate::pool::{MemberState, PoolSnapshot};

/// Length of the cookie value: 16 lowercase hex digits.
pub const ID_LEN: usize = 16;

/// `id` as the cookie value.
pub fn format_id(id: u64) -> String {
    format!("{id:016x}")
}

/// A cookie value back to an id: exactly 16 lowercase hex digits, else `None`.
pub fn parse_id(value: &[u8]) -> Option<u64> {
    if value.len() != ID_LEN {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

/// Trims optional whitespace (SP / HTAB) around a cookie pair or value.
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The id in the first `name=value` pair of the request's `Cookie` headers
/// whose value parses (RFC 6265 §5.4 syntax, `"`-quoted values accepted).
pub fn from_request(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = trim(pair);
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (k, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            if trim(k) != name.as_bytes() {
                return None;
            }
            let v = trim(v);
            let v = match v {
                [b'"', inner @ .., b'"'] => inner,
                _ => v,
            };
            parse_id(v)
        })
        .next()
}

/// The `Set-Cookie` value naming member `id`.
pub fn set_cookie(cfg: &StickyConfig, id: u64) -> HeaderValue {
    let mut s = format!("{}={}; Path=/", cfg.cookie, format_id(id));
    if let Some(ttl) = cfg.ttl {
        s.push_str(&format!("; Max-Age={}", ttl.as_secs().max(1)));
    }
    if cfg.secure {
        s.push_str("; Secure");
    }
    if cfg.http_only {
        s.push_str("; HttpOnly");
    }
    s.push_str("; SameSite=");
    s.push_str(cfg.same_site.as_str());
    // The cookie name is a validated token and the rest is ASCII we wrote.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("drover_sticky=; Path=/"))
}

/// How long a draining member keeps its sticky sessions: the pool's
/// drain timeout ([`PoolConfig::drain_timeout`]).
pub fn drain_timeout(cfg: &PoolConfig) -> Duration {
    cfg.drain_timeout()
}

/// Whether a member in `state` (draining since `draining_since`) still takes
/// its sticky sessions at `now`.
pub fn honours(
    state: MemberState,
    draining_since: Option<Instant>,
    drain_timeout: Duration,
    now: Instant,
) -> bool {
    match state {
        MemberState::Healthy => true,
        MemberState::Draining => {
            draining_since.is_some_and(|s| now.saturating_duration_since(s) < drain_timeout)
        }
        _ => false,
    }
}

/// The member the request's sticky `id` names, if it takes the session now.
pub fn preferred(snap: &PoolSnapshot, id: u64) -> Option<usize> {
    let i = snap.sticky_ids.iter().position(|&m| m == id)?;
    let m = snap.members.get(i)?;
    let now = match m.state {
        MemberState::Healthy => return Some(i),
        MemberState::Draining => crate::balance::slow_start::now(),
        _ => return None,
    };
    honours(m.state, m.draining_since, drain_timeout(&snap.config), now).then_some(i)
}

/// After member `i` was chosen for a request that came with sticky id `had`:
/// counts the sticky request and returns the `Set-Cookie` to add when the
/// cookie must be set or replaced (`None` also when the pool is not sticky).
pub fn on_chosen(snap: &PoolSnapshot, had: Option<u64>, i: usize) -> Option<HeaderValue> {
    let cfg = snap.config.policy.sticky.as_ref()?;
    let id = *snap.sticky_ids.get(i)?;
    if let Some(m) = snap.members.get(i) {
        m.stats.sticky.hit(crate::balance::slow_start::now());
    }
    (had != Some(id)).then(|| set_cookie(cfg, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite;
    use proptest::prelude::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn ids_round_trip_and_hide_the_address() {
        let a: std::net::SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let id = crate::pool::sticky_id("api", a);
        assert_eq!(crate::pool::sticky_id("api", a), id);
        assert_ne!(crate::pool::sticky_id("web", a), id, "keyed by pool too");
        let v = format_id(id);
        assert_eq!(v.len(), ID_LEN);
        assert_eq!(parse_id(v.as_bytes()), Some(id));
        assert_eq!(parse_id(b"0123456789abcdeF"), None, "upper case");
        assert_eq!(parse_id(b"0123456789abcde"), None, "short");
        assert_eq!(parse_id(b"0123456789abcdef0"), None, "long");
        assert_eq!(parse_id(b"ffffffffffffffff"), Some(u64::MAX));
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let id = "00000000000000ff";
        let h = headers(&[
            "a=b; drover_sticky=zz",
            &format!(" drover_sticky = \"{id}\" ;x=1"),
        ]);
        assert_eq!(from_request(&h, "drover_sticky"), Some(255));
        assert_eq!(from_request(&h, "other"), None);
        assert_eq!(
            from_request(&headers(&["drover_sticky"]), "drover_sticky"),
            None
        );
        assert_eq!(from_request(&HeaderMap::new(), "drover_sticky"), None);
    }

    #[test]
    fn set_cookie_has_the_configured_attributes() {
        let cfg = StickyConfig {
            cookie: "s".into(),
            ttl: Some(Duration::from_secs(3600)),
            secure: true,
            http_only: true,
            same_site: SameSite::Strict,
        };
        assert_eq!(
            set_cookie(&cfg, 1),
            "s=0000000000000001; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            set_cookie(&StickyConfig::default(), 2),
            "drover_sticky=0000000000000002; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn draining_members_keep_sessions_until_the_drain_timeout() {
        let t = Instant::now();
        let d = Duration::from_secs(30);
        assert!(honours(MemberState::Healthy, None, d, t));
        assert!(honours(
            MemberState::Draining,
            Some(t),
            d,
            t + Duration::from_secs(29)
        ));
        assert!(!honours(MemberState::Draining, Some(t), d, t + d));
        assert!(!honours(MemberState::Draining, None, d, t));
        for s in [
            MemberState::Unhealthy,
            MemberState::Ejected,
            MemberState::Starting,
        ] {
            assert!(!honours(s, None, d, t));
        }
    }

    proptest! {
        #[test]
        fn any_cookie_header_parses_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(v) = HeaderValue::from_bytes(&raw) {
                let mut h = HeaderMap::new();
                h.insert(COOKIE, v);
                let _ = from_request(&h, "drover_sticky");
            }
            let _ = parse_id(&raw);
        }

        #[test]
        fn a_formatted_id_is_found_wherever_it_sits(
            id: u64,
            before in "[a-z]{1,8}=[a-z0-9]{0,8}",
            after in "[a-z]{1,8}=[a-z0-9]{0,8}",
        ) {
            let h = headers(&[&format!("{before}; drover_sticky={}; {after}", format_id(id))]);
            prop_assert_eq!(from_request(&h, "drover_sticky"), Some(id));
        }

        #[test]
        fn parse_accepts_exactly_the_formatted_ids(raw in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Some(id) = parse_id(&raw) {
                prop_assert_eq!(format_id(id).into_bytes(), raw);
            }
        }
    }
}
