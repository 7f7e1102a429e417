//! Parsers for the string-typed values: addresses, host patterns, hash keys, status ranges.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::types::{HashKey, HostMatch, StatusRanges};

/// `"IP:port"`, `"[v6]:port"`, `"localhost:port"` (127.0.0.1) or `"host:port"` resolved
/// with the system resolver (the first address wins).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    match parse_backend_address(s)? {
        BackendAddress::Addr(a) => Ok(a),
        BackendAddress::Name { host, port } => resolve_now(&host, port),
    }
}

/// A backend as written: an address, or a host name for DNS discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAddress {
    /// `"IP:port"`, `"[v6]:port"`, or `"localhost:port"` (127.0.0.1).
    Addr(SocketAddr),
    /// `"host:port"`: the host lower-case, without a trailing dot.
    Name { host: String, port: u16 },
}

/// Reads `"IP:port"`, `"[v6]:port"`, `"localhost:port"` or `"host:port"` without resolving.
pub fn parse_backend_address(s: &str) -> Result<BackendAddress, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(BackendAddress::Addr(a));
    }
    let bad = || {
        format!(
            "expected an address like \"127.0.0.1:8001\" or \"localhost:8001\", got \"{}\"",
            s.escape_default()
        )
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(BackendAddress::Addr(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port,
        ))));
    }
    let host = parse_dns_name(host).map_err(|why| format!("{} ({why})", bad()))?;
    Ok(BackendAddress::Name { host, port })
}

/// A host name to look up: labels of letters, digits, `-` and `_` (1 to 63
/// characters, not starting or ending with `-`), 253 characters at most.
/// Returned lower-case, without a trailing dot.
pub fn parse_dns_name(s: &str) -> Result<String, String> {
    let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty host name".to_string());
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".to_string());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label has 1 to 63 characters".to_string());
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("a host name has only letters, digits, \"-\", \"_\" and dots".to_string());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label cannot start or end with \"-\"".to_string());
        }
    }
    Ok(name)
}

/// Resolves `host` now with the system resolver (the first address wins).
pub(crate) fn resolve_now(host: &str, port: u16) -> Result<SocketAddr, String> {
    if OFFLINE.with(std::cell::Cell::get) {
        return Err(format!("cannot resolve \"{host}\": name resolution is off"));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve \"{host}\": {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("cannot resolve \"{host}\": no addresses"))
}

thread_local! {
    /// Set by [`without_resolver`]: names are not looked up (fuzzing must send no DNS query).
    static OFFLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with name resolution off on this thread: a host name in an address is
/// an error instead of a DNS query. For the fuzz entry points.
pub(crate) fn without_resolver<R>(f: impl FnOnce() -> R) -> R {
    OFFLINE.with(|o| o.set(true));
    let r = f();
    OFFLINE.with(|o| o.set(false));
    r
}

/// A route's `host`: `api.example.com` or `*.example.com` (case-insensitive; a `:port` is ignored).
pub fn parse_host(s: &str) -> Result<HostMatch, String> {
    let bad = |why: &str| {
        format!(
            "bad host pattern \"{}\" ({why}); use an exact name like \"api.example.com\" or a wildcard like \"*.example.com\"",
            s.escape_default()
        )
    };
    let lower = s.trim().to_ascii_lowercase();
    let host = if let Some(rest) = lower.strip_prefix('[') {
        // [v6] or [v6]:port
        let end = rest.find(']').ok_or_else(|| bad("unclosed \"[\""))?;
        let ip = &rest[..end];
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| bad("not an IPv6 address"))?;
        return Ok(HostMatch::Exact(format!("[{ip}]")));
    } else {
        match lower.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h.to_string(),
            Some(_) => return Err(bad("unexpected \":\"")),
            None => lower.clone(),
        }
    };
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host.as_str()),
    };
    if name.is_empty() {
        return Err(bad("empty name"));
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("label longer than 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "only letters, digits, \"-\" and a leading \"*.\" are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label cannot start or end with \"-\""));
        }
    }
    Ok(if wildcard {
        HostMatch::Wildcard(format!(".{name}"))
    } else {
        HostMatch::Exact(name.to_string())
    })
}

/// `client_ip | header:NAME | cookie:NAME | path`.
pub fn parse_hash_key(s: &str) -> Result<HashKey, String> {
    let expected = "expected one of client_ip, header:NAME, cookie:NAME, path";
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c))
    };
    match s {
        "client_ip" => Ok(HashKey::ClientIp),
        "path" => Ok(HashKey::Path),
        _ => {
            if let Some(name) = s.strip_prefix("header:") {
                if valid_name(name) {
                    return Ok(HashKey::Header(name.to_ascii_lowercase()));
                }
                return Err(format!("bad header name in \"{s}\"; {expected}"));
            }
            if let Some(name) = s.strip_prefix("cookie:") {
                if valid_name(name) {
                    return Ok(HashKey::Cookie(name.to_string()));
                }
                return Err(format!("bad cookie name in \"{s}\"; {expected}"));
            }
            Err(format!("unknown \"{}\"; {expected}", s.escape_default()))
        }
    }
}

/// `"200-399"`, `"200,204"`, `"200-299,304"` (statuses 100..=599).
pub fn parse_status_ranges(s: &str) -> Result<StatusRanges, String> {
    let bad = || {
        format!(
            "expected status codes like \"200-399\" or \"200-299,304\", got \"{}\"",
            s.escape_default()
        )
    };
    let code = |t: &str| -> Result<u16, String> {
        let c: u16 = t.trim().parse().map_err(|_| bad())?;
        if (100..=599).contains(&c) {
            Ok(c)
        } else {
            Err(format!("status {c} is outside 100-599"))
        }
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad());
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let c = code(part)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("range \"{part}\" is backwards"));
        }
        out.push((lo, hi));
    }
    Ok(StatusRanges(out))
}

/// Header names as in RFC 9110 §5.1 (a token).
pub fn valid_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Longest top-level `name`: 63 characters (a DNS label, short enough for a label value and a file name).
pub const MAX_NAME_LEN: usize = 63;

/// Whether `s` may be a top-level `name` (see [`owner_name`]); the default hash owner is one too.
pub fn is_valid_name(s: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let starts_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    starts_ok && s.len() <= MAX_NAME_LEN && s.chars().all(ok_char)
}

/// The top-level `name`: 1 to 63 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit
/// (it becomes a Docker label value and a claim file's name).
pub fn owner_name(v: &toml::de::DeValue<'_>) -> Result<String, String> {
    let s = super::reader::string(v)?;
    if !is_valid_name(&s) {
        return Err(format!(
            "expected a name of 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-' starting with a letter or digit, like \"shop-prod\", got \"{}\"",
            s.escape_default()
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_addr("127.0.0.1:8001").unwrap().to_string(),
            "127.0.0.1:8001"
        );
        assert_eq!(
            parse_addr("localhost:8002").unwrap().to_string(),
            "127.0.0.1:8002"
        );
        assert_eq!(
            parse_addr("LOCALHOST:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(parse_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        for bad in [
            "127.0.0.1",
            "127.0.0.1:99999",
            ":80",
            "a b:80",
            "http://x:80",
            "",
        ] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
        assert!(parse_addr("no-such-host.invalid:80")
            .unwrap_err()
            .starts_with("cannot resolve \"no-such-host.invalid\""));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("API.Example.com").unwrap(),
            HostMatch::Exact("api.example.com".into())
        );
        assert_eq!(
            parse_host("api.example.com:8080").unwrap(),
            HostMatch::Exact("api.example.com".into())
        );
        assert_eq!(
            parse_host("*.example.com").unwrap(),
            HostMatch::Wildcard(".example.com".into())
        );
        assert_eq!(
            parse_host("127.0.0.1").unwrap(),
            HostMatch::Exact("127.0.0.1".into())
        );
        assert_eq!(
            parse_host("[::1]:80").unwrap(),
            HostMatch::Exact("[::1]".into())
        );
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "a*.example.com",
            "api.*.com",
            "http://x",
            "a b",
            "-a.com",
            "x:y",
        ] {
            let e = parse_host(bad).unwrap_err();
            assert!(e.starts_with("bad host pattern"), "{bad}: {e}");
        }
    }

    #[test]
    fn hash_keys() {
        assert_eq!(parse_hash_key("client_ip").unwrap(), HashKey::ClientIp);
        assert_eq!(parse_hash_key("path").unwrap(), HashKey::Path);
        assert_eq!(
            parse_hash_key("header:X-User").unwrap(),
            HashKey::Header("x-user".into())
        );
        assert_eq!(
            parse_hash_key("cookie:sid").unwrap(),
            HashKey::Cookie("sid".into())
        );
        assert!(parse_hash_key("header:").is_err());
        assert!(parse_hash_key("ip")
            .unwrap_err()
            .contains("client_ip, header:NAME, cookie:NAME, path"));
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_ranges("200-399").unwrap().0, vec![(200, 399)]);
        assert_eq!(
            parse_status_ranges("200,204").unwrap().0,
            vec![(200, 200), (204, 204)]
        );
        let r = parse_status_ranges("200-299, 304").unwrap();
        assert!(r.contains(304) && r.contains(250) && !r.contains(301));
        for bad in ["", "ok", "200-", "399-200", "200,,204", "99", "600", "2xx"] {
            assert!(parse_status_ranges(bad).is_err(), "{bad}");
        }
    }
}
