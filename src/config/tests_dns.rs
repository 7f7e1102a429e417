//! `[resolver]`, `resolve_interval`, backends given by host name and `provider = "dns"`.

use super::tests::{assert_error, errors, load};
use super::*;
use std::time::Duration;

const RESOLVER: &str = "[resolver]\nnameservers = [\"127.0.0.1:5353\"]\n";

fn dns_pool(extra: &str) -> String {
    format!(
        "[pools.api.instances]\nprovider = \"dns\"\nname = \"API.internal.\"\nport = 8080\n{extra}"
    )
}

#[test]
fn a_dns_pool_has_a_name_and_a_port() {
    let c = load(&dns_pool(""));
    let p = &c.pools["api"];
    let i = p.instances.as_ref().unwrap();
    assert_eq!(i.provider, ProviderKind::Dns);
    assert_eq!(
        (i.name.as_deref(), i.port),
        (Some("api.internal"), Some(8080))
    );
    assert_eq!(
        p.dns_names(),
        vec![NamedBackend {
            host: "api.internal".into(),
            port: 8080,
            weight: 1
        }]
    );
    assert_eq!(p.resolve_interval, Duration::from_secs(30));
    assert_eq!(c.resolver, ResolverConfig::default());
    assert!(p.backends.is_empty());
}

#[test]
fn a_dns_pool_checks_its_keys() {
    let only = "[pools.api.instances]\nprovider = \"dns\"\n";
    assert_error(
        only,
        "pools.api.instances.name",
        "required for provider \"dns\"",
    );
    assert_error(
        only,
        "pools.api.instances.port",
        "required for provider \"dns\"",
    );
    assert_error(
        &dns_pool("").replace("8080", "0"),
        "pools.api.instances.port",
        "at least 1",
    );
    assert_error(
        &dns_pool("").replace("API.internal.", "api internal"),
        "pools.api.instances.name",
        "only letters, digits",
    );
    assert_error(
        &dns_pool("image = \"x\""),
        "pools.api.instances.image",
        "not used with provider \"dns\"",
    );
    assert_error(
        &format!("{}[pools.api.autoscale]\n", dns_pool("")),
        "pools.api.autoscale",
        "drover does not start or stop the members a DNS name answers",
    );
    assert_error(
        "[pools.api.instances]\nprovider = \"process\"\ncommand = [\"./app\"]\nname = \"x\"\n",
        "pools.api.instances.name",
        "only with dns",
    );
}

#[test]
fn backends_by_host_name_are_kept_as_names_when_a_resolver_is_given() {
    let c = load(&format!(
        "{RESOLVER}[pools.api]\nresolve_interval = \"5s\"\nbackends = [\"127.0.0.1:1\", {{ address = \"Web.test:81\", weight = 3 }}, \"localhost:2\"]\n"
    ));
    let p = &c.pools["api"];
    assert_eq!(
        c.resolver.nameservers,
        vec!["127.0.0.1:5353".parse().unwrap()]
    );
    assert_eq!(p.backends.len(), 2, "addresses and localhost stay static");
    assert_eq!(
        p.named_backends,
        vec![NamedBackend {
            host: "web.test".into(),
            port: 81,
            weight: 3
        }]
    );
    assert_eq!(p.resolve_interval, Duration::from_secs(5));
}

#[test]
fn names_are_checked_with_the_system_resolver_only_without_a_resolver_section() {
    let src = "[pools.api]\nbackends = [\"no-such-host.invalid:80\"]\n";
    assert_error(src, "pools.api.backends[0]", "cannot resolve");
    load(&format!("{RESOLVER}{src}"));
}

#[test]
fn dns_rules_name_the_key_line_and_column() {
    let src = format!("{RESOLVER}[pools.api]\nbackends = [\"web.test:80\", \"WEB.test.:80\"]\n");
    assert_error(
        &src,
        "pools.api.backends[1]",
        "duplicate backend web.test:80",
    );
    let errs = errors("[pools.api]\nbackends = [\"127.0.0.1:1\"]\nresolve_interval = \"5s\"\n");
    let e = &errs[0];
    assert_eq!(e.key, "pools.api.resolve_interval");
    assert!(
        e.message
            .contains("only used when a backend is given by host name"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (Some(3), Some(20)));
    assert_error(
        &format!("{RESOLVER}[pools.api]\nbackends = [\"web.test:80\"]\n[pools.api.instances]\nprovider = \"process\"\ncommand = [\"./app\"]\n"),
        "pools.api.backends",
        "cannot share a pool with provider \"process\"",
    );
}

#[test]
fn resolver_checks() {
    assert_error(
        "[resolver]\nnameservers = []\n",
        "resolver.nameservers",
        "must not be empty",
    );
    assert_error(
        "[resolver]\nnameservers = [\"dns.example\"]\n",
        "resolver.nameservers",
        "an IP, not a name",
    );
    assert_error(
        "[resolver]\nnameservers = \"10.0.0.2\"\n",
        "resolver.nameservers",
        "expected a list",
    );
    assert_error(
        "[resolver]\nservers = []\n",
        "resolver.servers",
        "unknown key",
    );
    let c = load(&format!(
        "[resolver]\nnameservers = [\"10.0.0.2\", \"::1\"]\n{}",
        dns_pool("")
    ));
    assert_eq!(
        c.resolver.nameservers,
        vec!["10.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
    );
}
