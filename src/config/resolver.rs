//! `[resolver]`: where DNS discovery sends its queries.

use std::net::{IpAddr, SocketAddr};

use toml::de::DeValue;

use super::error::Errors;
use super::reader::{describe, Tbl};
use super::types::ResolverConfig;

/// The port a name server given without one listens on: 53.
pub const DNS_PORT: u16 = 53;

/// `"IP"` (port 53) or `"IP:port"`: a name server is given by address, not by name.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    Err(format!(
        "expected a name server address like \"10.0.0.2\" or \"127.0.0.1:5353\" (an IP, not a name), got \"{}\"",
        s.escape_default()
    ))
}

fn nameservers(v: &DeValue<'_>) -> Result<Vec<SocketAddr>, String> {
    let DeValue::Array(items) = v else {
        return Err(format!(
            "expected a list like [\"127.0.0.1:5353\"], got {}",
            describe(v)
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let DeValue::String(s) = item.get_ref() else {
            return Err(format!(
                "item {i}: expected a string like \"127.0.0.1:5353\", got {}",
                describe(item.get_ref())
            ));
        };
        let a = parse_nameserver(s).map_err(|e| format!("item {i}: {e}"))?;
        if out.contains(&a) {
            return Err(format!("item {i}: duplicate name server {a}"));
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err(
            "must not be empty; leave [resolver] out to use the system's name servers".to_string(),
        );
    }
    Ok(out)
}

/// Reads `[resolver]`; absent = the system's resolver.
pub(crate) fn resolver(t: Option<Tbl<'_, '_>>, errs: &mut Errors<'_>) -> ResolverConfig {
    let mut cfg = ResolverConfig::default();
    let Some(t) = t else { return cfg };
    t.check_section(errs, &super::keys::RESOLVER);
    if let Some(g) = t.get(errs, "nameservers", nameservers) {
        cfg.nameservers = g.v;
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nameserver_is_an_ip_with_port_53_unless_given() {
        assert_eq!(
            parse_nameserver("10.0.0.2"),
            Ok(SocketAddr::from(([10, 0, 0, 2], 53)))
        );
        assert_eq!(
            parse_nameserver("127.0.0.1:5353"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 5353)))
        );
        assert_eq!(
            parse_nameserver("::1"),
            Ok("[::1]:53".parse::<SocketAddr>().unwrap())
        );
        assert!(parse_nameserver("dns.example:53")
            .unwrap_err()
            .contains("not a name"));
    }
}
