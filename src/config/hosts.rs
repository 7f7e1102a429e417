//! Host names as the admin API's guard compares them: `admin.allowed_hosts`
//! entries (read by the config) and `Host` / `Origin` authorities (from
//! requests: hostile input, never sliced unchecked; fuzzed through
//! `admin::guard`). Pure functions, here at the bottom so that both the
//! config reader and the admin API use one rule.

/// `host[:port]` (IPv6 in brackets) -> lower-case host without brackets and
/// the port; `None` when malformed (empty, bad port, stray characters).
pub fn split_authority(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let name_ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    };
    if !name_ok(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// An `admin.allowed_hosts` entry, normalized; `None` if it is not a host
/// without port (or `"*"`).
pub fn normalize_allowed_host(s: &str) -> Option<String> {
    if s == "*" {
        return Some(s.to_string());
    }
    let bare = s.parse::<std::net::Ipv6Addr>().map(|_| format!("[{s}]"));
    match split_authority(bare.as_deref().unwrap_or(s))? {
        (h, None) => Some(h),
        (_, Some(_)) => None,
    }
}
