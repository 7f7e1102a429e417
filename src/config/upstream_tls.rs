//! A pool's TLS keys: `tls`, `https://` backends, `tls_server_name`,
//! `ca_file`, `client_cert`, `client_key`, `tls_insecure_skip_verify`.
//! The certificates are loaded here, once per config (so `drover check`
//! finds a bad PEM file too), into the [`UpstreamTls`] the pool uses
//! (`tls_client.rs`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use toml::de::DeValue;

use super::error::Errors;
use super::reader::{boolean, nonempty_string, string, Tbl};
use super::sections::existing_file;
use super::tls_client::{parse_server_name, TlsSettings, UpstreamTls};
use super::types::Config;
use super::values::parse_addr;

/// The TLS keys of a pool (`tls` first: the others need it).
pub(crate) const TLS_KEYS: &[&str] = &[
    "tls",
    "tls_server_name",
    "ca_file",
    "client_cert",
    "client_key",
    "tls_insecure_skip_verify",
];

/// `https://host:port` → `(true, "host:port")`; anything else unchanged.
pub fn strip_https(s: &str) -> (bool, &str) {
    let t = s.trim();
    match t.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("https://") => (true, t.get(8..).unwrap_or("")),
        _ => (false, t),
    }
}

/// The host name an address was written with (`api.internal:443` →
/// `api.internal`), `None` for an IP literal.
pub(crate) fn host_name(addr: &str) -> Option<String> {
    let (host, _) = strip_https(addr).1.rsplit_once(':')?;
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || host.is_empty() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// The address strings of `backends` (plain or `{ address = ... }`), with their spans.
fn backend_strings<'a>(t: &Tbl<'a, '_>) -> Vec<(String, std::ops::Range<usize>)> {
    let Some(DeValue::Array(items)) = t.raw("backends").map(|v| v.get_ref()) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item.get_ref() {
            DeValue::String(s) => Some((s.to_string(), item.span())),
            DeValue::Table(tab) => tab
                .get("address")
                .and_then(|a| string(a.get_ref()).ok().map(|s| (s, a.span()))),
            _ => None,
        })
        .collect()
}

/// Reads the pool's TLS keys; `None` for a plain pool or on errors (recorded).
pub(crate) fn upstream_tls(
    t: &Tbl<'_, '_>,
    errs: &mut Errors<'_>,
    base: Option<&Path>,
) -> Option<Arc<UpstreamTls>> {
    let written = backend_strings(t);
    let https: Vec<bool> = written.iter().map(|(s, _)| strip_https(s).0).collect();
    let tls_key = t.get(errs, "tls", boolean).map(|g| g.v);
    let any_https = https.iter().any(|h| *h);
    let on = match tls_key {
        Some(false) if any_https => {
            t.error_at(
                errs,
                "tls",
                "tls = false, but backends are written with https://; remove one of them",
            );
            return None;
        }
        Some(on) => on,
        None if any_https && !https.iter().all(|h| *h) => {
            if let Some((s, span)) = written.iter().find(|(s, _)| !strip_https(s).0) {
                errs.push(
                    &t.key("backends"),
                    span.clone(),
                    format!(
                        "\"{}\" is plain but other backends use https://; a pool is TLS or not: write every backend with https:// or set tls = true",
                        s.escape_default()
                    ),
                );
            }
            return None;
        }
        None => any_https,
    };
    if !on {
        for key in TLS_KEYS.iter().skip(1).filter(|k| t.has(k)) {
            t.error_at(
                errs,
                key,
                "only used with tls = true (or https:// backends); set tls = true",
            );
        }
        return None;
    }
    let before = errs.list.len();
    let mut settings = TlsSettings::default();
    if let Some(g) = t.get(errs, "tls_server_name", |v| {
        let s = nonempty_string(v)?;
        parse_server_name(&s).map(|_| s)
    }) {
        settings.server_name = Some(g.v);
    }
    if let Some(g) = t.get(errs, "tls_insecure_skip_verify", boolean) {
        settings.insecure_skip_verify = g.v;
    }
    let file = |key: &str, errs: &mut Errors<'_>| {
        t.get(errs, key, nonempty_string)
            .and_then(|g| existing_file(t, errs, key, g, base))
    };
    settings.ca_file = file("ca_file", errs);
    settings.client_cert = file("client_cert", errs);
    settings.client_key = file("client_key", errs);
    match (t.has("client_cert"), t.has("client_key")) {
        (true, false) => t.error_at(
            errs,
            "client_cert",
            "needs client_key (the PEM private key of client_cert)",
        ),
        (false, true) => t.error_at(
            errs,
            "client_key",
            "needs client_cert (the PEM certificate chain client_key belongs to)",
        ),
        _ => {}
    }
    if settings.insecure_skip_verify && t.has("ca_file") {
        t.error_at(
            errs,
            "ca_file",
            "not used with tls_insecure_skip_verify = true (nothing is verified); remove one of them",
        );
    }
    settings.names = written
        .iter()
        .filter_map(|(s, _)| {
            let name = host_name(s)?;
            let addr: SocketAddr = parse_addr(strip_https(s).1).ok()?;
            Some((addr, name))
        })
        .collect();
    if errs.list.len() != before {
        return None;
    }
    match UpstreamTls::load(settings) {
        Ok(built) => Some(Arc::new(built)),
        Err(e) => {
            t.error_at(errs, e.key, e.message);
            None
        }
    }
}

/// `TLS verified with ca_file, client certificate` for `drover check`'s pool line.
pub(crate) fn summary(t: &UpstreamTls) -> String {
    let s = &t.settings;
    let mut out = if s.insecure_skip_verify {
        "TLS NOT verified".to_string()
    } else if s.ca_file.is_some() {
        "TLS verified with ca_file".to_string()
    } else {
        "TLS verified with the system roots".to_string()
    };
    if let Some(name) = &s.server_name {
        out.push_str(&format!(" as {name}"));
    }
    if s.client_cert.is_some() {
        out.push_str(", client certificate");
    }
    out
}

/// What a valid config does that users should know about: every pool with
/// `tls_insecure_skip_verify = true`.
pub fn warnings(cfg: &Config) -> Vec<String> {
    cfg.pools
        .values()
        .filter(|p| p.tls.as_ref().is_some_and(|t| t.settings.insecure_skip_verify))
        .map(|p| {
            format!(
                "pools.{}.tls_insecure_skip_verify = true: backend certificates are not verified; anyone between drover and the backends can read and change the traffic",
                p.name
            )
        })
        .collect()
}

/// Logs [`warnings`] (at start and on every reload).
pub fn log_warnings(cfg: &Config) {
    for w in warnings(cfg) {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_prefix_and_host_names() {
        assert_eq!(strip_https("https://a:1"), (true, "a:1"));
        assert_eq!(strip_https("HTTPS://a:1"), (true, "a:1"));
        assert_eq!(strip_https("a:1"), (false, "a:1"));
        assert_eq!(strip_https("http"), (false, "http"));
        assert_eq!(
            host_name("https://Api.Internal:443").as_deref(),
            Some("api.internal")
        );
        assert_eq!(host_name("localhost:80").as_deref(), Some("localhost"));
        assert_eq!(host_name("10.0.0.1:443"), None);
        assert_eq!(host_name("[::1]:443"), None);
        assert_eq!(host_name("nonsense"), None);
    }

    fn ca_pem(dir: &Path) -> std::path::PathBuf {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, p.self_signed(&key).unwrap().pem()).unwrap();
        path
    }

    #[test]
    fn a_tls_pool_loads_its_settings_names_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        ca_pem(dir.path());
        let src = r#"
[[routes]]
pool = "a"
[pools.a]
backends = ["https://localhost:8443", { address = "https://127.0.0.1:8444", weight = 2 }]
ca_file = "ca.pem"
[pools.b]
backends = ["127.0.0.1:8001"]
tls = true
tls_server_name = "svc.internal"
tls_insecure_skip_verify = true
[pools.c]
backends = ["127.0.0.1:8001"]
"#;
        let cfg = crate::config::load_str(src, Some(&dir.path().join("drover.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let a = cfg.pools["a"].tls.as_ref().expect("https:// means TLS");
        assert_eq!(a.settings.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(
            a.settings.names,
            vec![("127.0.0.1:8443".parse().unwrap(), "localhost".to_string())]
        );
        assert_eq!(cfg.pools["a"].backends[1].weight, 2);
        assert_eq!(summary(a), "TLS verified with ca_file");
        let b = cfg.pools["b"].tls.as_ref().unwrap();
        assert_eq!(summary(b), "TLS NOT verified as svc.internal");
        assert!(cfg.pools["c"].tls.is_none());
        let w = warnings(&cfg);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("pools.b.tls_insecure_skip_verify = true"),
            "{w:?}"
        );
    }

    #[test]
    fn tls_key_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.pem"), "junk\n").unwrap();
        let cases = [
            (
                "ca_file = \"junk.pem\"",
                "pools.a.ca_file",
                "holds no PEM certificate",
            ),
            (
                "client_key = \"junk.pem\"",
                "pools.a.client_key",
                "needs client_cert",
            ),
            (
                "tls_server_name = \"a b\"",
                "pools.a.tls_server_name",
                "not a DNS name or IP address",
            ),
            ("tls = \"yes\"", "pools.a.tls", "expected"),
            (
                "tls_insecure_skip_verify = true\nca_file = \"junk.pem\"",
                "pools.a.ca_file",
                "not used with tls_insecure_skip_verify",
            ),
        ];
        for (extra, key, want) in cases {
            let src = format!("[pools.a]\nbackends = [\"https://127.0.0.1:1\"]\n{extra}\n");
            let e = crate::config::load_str(&src, Some(&dir.path().join("d.toml"))).unwrap_err();
            assert!(
                e.errors
                    .iter()
                    .any(|x| x.key == key && x.message.contains(want)),
                "{extra}: {e}"
            );
        }
    }

    proptest::proptest! {
        /// Admin API and config input: never panics, and a prefix is only ever removed.
        #[test]
        fn strip_https_and_host_name_take_any_input(s in "\\PC{0,40}") {
            let (https, rest) = strip_https(&s);
            proptest::prop_assert!(s.trim().ends_with(rest));
            proptest::prop_assert_eq!(https, rest.len() + 8 == s.trim().len());
            let _ = host_name(&s);
        }
    }
}
