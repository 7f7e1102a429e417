use super::*;
use crate::config::hosts::normalize_allowed_host;
use proptest::prelude::*;

fn policy<'a>(token: Option<&'a str>, allowed: &'a [String]) -> Policy<'a> {
    Policy {
        token,
        allowed_hosts: allowed,
        addrs: Addrs {
            local: Some("10.1.2.3".parse().unwrap()),
            listen: Some("0.0.0.0".parse().unwrap()),
        },
    }
}

fn get(host: &str) -> Facts<'_> {
    Facts {
        method: "GET",
        host: Some(host),
        ..Facts::default()
    }
}

#[test]
fn authorities_split_into_host_and_port() {
    let s = |x: &str| split_authority(x);
    assert_eq!(s("LocalHost:9090"), Some(("localhost".into(), Some(9090))));
    assert_eq!(s("[::1]:80"), Some(("::1".into(), Some(80))));
    assert_eq!(s("[::1]"), Some(("::1".into(), None)));
    assert_eq!(s("127.0.0.1"), Some(("127.0.0.1".into(), None)));
    for bad in [
        "", "[", "[::1", "[::1]x", "[::1]:", "::1", "a:", "a:99999", "a:1:2", "a b", "a/b", "a@b",
        ":80", "[zz]:1",
    ] {
        assert_eq!(s(bad), None, "{bad:?}");
    }
}

#[test]
fn allowed_host_entries_are_normalized() {
    assert_eq!(
        normalize_allowed_host("Admin.Example"),
        Some("admin.example".into())
    );
    assert_eq!(normalize_allowed_host("::1"), Some("::1".into()));
    assert_eq!(normalize_allowed_host("[::1]"), Some("::1".into()));
    assert_eq!(normalize_allowed_host("*"), Some("*".into()));
    assert_eq!(normalize_allowed_host("a:80"), None);
    assert_eq!(normalize_allowed_host(""), None);
}

#[test]
fn hosts_loopback_the_dialled_ip_and_listed_names_pass() {
    let none: Vec<String> = vec![];
    let p = policy(None, &none);
    for ok in [
        "localhost:9090",
        "127.0.0.1:9090",
        "127.0.0.1",
        "[::1]:1",
        "10.1.2.3:9090",
        "[::ffff:10.1.2.3]:9090",
        "0.0.0.0:9090",
    ] {
        assert_eq!(check(&get(ok), &p), Ok(()), "{ok}");
    }
    for bad in [
        "evil.example:9090",
        "10.1.2.4:9090",
        "localhost.evil.com",
        "",
        "[",
    ] {
        assert!(
            matches!(check(&get(bad), &p), Err(Refusal::Host(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        check(
            &Facts {
                host: None,
                ..get("")
            },
            &p
        ),
        Err(Refusal::Host(_))
    ));
    let listed = vec!["admin.example".to_string()];
    assert_eq!(
        check(&get("ADMIN.example:9090"), &policy(None, &listed)),
        Ok(())
    );
    let any = vec!["*".to_string()];
    assert_eq!(check(&get("whatever.example"), &policy(None, &any)), Ok(()));
}

#[test]
fn origin_must_be_the_host_itself() {
    let none: Vec<String> = vec![];
    let p = policy(None, &none);
    let with = |origin: &'static str, host: &'static str| Facts {
        origin: Some(origin),
        ..get(host)
    };
    assert_eq!(
        check(&with("http://localhost:9090", "localhost:9090"), &p),
        Ok(())
    );
    assert_eq!(check(&with("http://[::1]", "[::1]:80"), &p), Ok(()));
    for (o, h) in [
        ("http://evil.example", "localhost:9090"),
        ("http://localhost:3000", "localhost:9090"),
        ("https://localhost:9090", "localhost:9090"),
        ("null", "localhost:9090"),
        ("http://127.0.0.1:9090", "localhost:9090"),
        ("http://localhost:9090/x", "localhost:9090"),
        ("http:/", "localhost:9090"),
    ] {
        assert!(
            matches!(check(&with(o, h), &p), Err(Refusal::Origin(_))),
            "{o} {h}"
        );
    }
}

#[test]
fn the_query_token_opens_only_the_dashboard() {
    let none: Vec<String> = vec![];
    let p = policy(Some("s3cret"), &none);
    let q = Facts {
        query: Some("token=s3cret"),
        ..get("localhost")
    };
    assert_eq!(check(&q, &p), Err(Refusal::Token));
    assert_eq!(
        check(
            &Facts {
                query_token_ok: true,
                ..q
            },
            &p
        ),
        Ok(())
    );
    let h = Facts {
        authorization: Some("Bearer s3cret"),
        ..get("localhost")
    };
    assert_eq!(check(&h, &p), Ok(()));
    let wrong = Facts {
        authorization: Some("Bearer s3cres"),
        ..get("localhost")
    };
    assert_eq!(check(&wrong, &p), Err(Refusal::Token));
}

#[test]
fn writes_need_json_even_without_a_body() {
    let none: Vec<String> = vec![];
    let p = policy(None, &none);
    let w = |method: &'static str, ct: Option<&'static str>| Facts {
        method,
        content_type: ct,
        ..get("localhost")
    };
    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        assert!(
            matches!(check(&w(m, None), &p), Err(Refusal::NotJson(_))),
            "{m}"
        );
        assert!(matches!(
            check(&w(m, Some("text/plain")), &p),
            Err(Refusal::NotJson(_))
        ));
        assert_eq!(check(&w(m, Some("application/json")), &p), Ok(()));
        assert_eq!(
            check(&w(m, Some("Application/JSON; charset=utf-8")), &p),
            Ok(())
        );
    }
    assert!(matches!(
        check(&w("POST", Some("application/jsonx")), &p),
        Err(Refusal::NotJson(_))
    ));
    assert_eq!(check(&w("GET", None), &p), Ok(()));
}

#[test]
fn token_comparison_is_exact() {
    assert!(tokens_equal(b"s3cret", b"s3cret"));
    assert!(!tokens_equal(b"s3cret", b"s3cres"));
    assert!(!tokens_equal(b"s3c", b"s3cret"));
    let mut padded = b"abc".to_vec();
    padded.extend(std::iter::repeat_n(0u8, 256));
    assert!(
        !tokens_equal(&padded, b"abc"),
        "256 NULs must not wrap the length check"
    );
}

#[test]
fn a_reload_may_not_drop_the_token_of_an_open_listener() {
    let open: SocketAddr = "0.0.0.0:9090".parse().unwrap();
    let lo: SocketAddr = "[::1]:9090".parse().unwrap();
    assert!(reload_keeps_token(open, None).is_err());
    assert!(reload_keeps_token(open, Some("t")).is_ok());
    assert!(reload_keeps_token(lo, None).is_ok());
}

proptest! {
    #[test]
    fn hostile_header_values_never_panic(
        host in "\\PC{0,40}", origin in "\\PC{0,40}", ct in "\\PC{0,20}",
        auth in "\\PC{0,20}", query in "\\PC{0,20}", method in "[A-Z]{0,7}",
    ) {
        let allowed = vec!["a.example".to_string()];
        let req = Facts {
            method: &method,
            host: Some(&host),
            origin: Some(&origin),
            content_type: Some(&ct),
            authorization: Some(&auth),
            query: Some(&query),
            query_token_ok: true,
        };
        let _ = check(&req, &policy(Some("t"), &allowed));
        let _ = normalize_allowed_host(&host);
    }

    #[test]
    fn a_host_and_its_own_origin_always_agree(name in "[a-z][a-z0-9-]{0,20}", port in 1u16..) {
        let host = format!("{name}:{port}");
        let origin = format!("http://{host}");
        let allowed = vec![name.clone()];
        let req = Facts { origin: Some(&origin), ..get(&host) };
        prop_assert_eq!(check(&req, &policy(None, &allowed)), Ok(()));
        let foreign = format!("http://{name}x:{port}");
        let req = Facts { origin: Some(&foreign), ..get(&host) };
        prop_assert!(matches!(check(&req, &policy(None, &allowed)), Err(Refusal::Origin(_))));
    }
}
