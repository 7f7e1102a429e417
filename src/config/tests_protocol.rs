//! The upstream protocol keys and the health check kinds.

use super::tests::{assert_error, errors, load};
use super::*;

const B: &str = "backends = [\"127.0.0.1:8001\"]";

fn pool(body: &str) -> String {
    format!("[pools.api]\n{B}\n{body}\n")
}

#[test]
fn protocol_defaults_and_spellings() {
    let p = &load(&pool("")).pools["api"].protocol;
    assert_eq!(*p, ProtocolConfig::default());
    assert_eq!(p.kind, Protocol::Http1);
    assert_eq!(p.max_streams_per_connection, 100);
    for (s, k) in Protocol::TABLE {
        assert_eq!(
            load(&pool(&format!("protocol = \"{s}\""))).pools["api"]
                .protocol
                .kind,
            *k
        );
        assert_eq!(k.as_str(), *s);
    }
    let c = load(&pool(
        "protocol = \"h2c\"\nmax_streams_per_connection = 7\ngrpc_retry_methods = [\"/a.B/C\"]",
    ));
    let p = &c.pools["api"].protocol;
    assert_eq!(p.max_streams_per_connection, 7);
    assert_eq!(p.grpc_retry_methods, ["/a.B/C"]);
}

#[test]
fn protocol_errors_name_the_key_and_position() {
    assert_error(
        &pool("protocol = \"http2\""),
        "pools.api.protocol",
        "unknown \"http2\"; expected one of http1, h2c, h2, auto",
    );
    assert_error(
        &pool("protocol = \"h2c\"\nmax_streams_per_connection = 0"),
        "pools.api.max_streams_per_connection",
        "at least 1",
    );
    assert_error(
        &pool("max_streams_per_connection = 10"),
        "pools.api.max_streams_per_connection",
        "only used by HTTP/2 pools",
    );
    let errs = errors(&pool("grpc_retry_methods = [\"/ok.Svc/M\", \"Svc.M\"]"));
    let e = errs
        .iter()
        .find(|e| e.key == "pools.api.grpc_retry_methods")
        .expect("an error at grpc_retry_methods");
    assert!(e.message.contains("\"Svc.M\" is not a gRPC method"), "{e}");
    assert_eq!((e.line, e.column), (Some(3), Some(22)), "{e}");
}

#[test]
fn health_kinds() {
    let h = |body: &str| {
        load(&pool(&format!("[pools.api.health]\n{body}"))).pools["api"]
            .health
            .clone()
            .unwrap()
    };
    assert_eq!(h("path = \"/h\"").kind, HealthKind::Http);
    assert_eq!(h("interval = \"1s\"").kind, HealthKind::Tcp);
    let g = h("kind = \"grpc\"\nservice = \"pkg.Svc\"");
    assert_eq!((g.kind, g.service.as_str()), (HealthKind::Grpc, "pkg.Svc"));
    assert_eq!(h("kind = \"grpc\"").service, "");
    let health = |body: &str| pool(&format!("[pools.api.health]\n{body}"));
    assert_error(
        &health("kind = \"http\""),
        "pools.api.health.kind",
        "needs a path",
    );
    assert_error(
        &health("kind = \"grpc\"\npath = \"/h\""),
        "pools.api.health.path",
        "not used by kind = \"grpc\" checks",
    );
    assert_error(
        &health("path = \"/h\"\nservice = \"x\""),
        "pools.api.health.service",
        "only used by gRPC checks",
    );
    assert_error(
        &health("kind = \"grpc\"\nexpect_status = \"200\""),
        "pools.api.health.expect_status",
        "only used by HTTP checks",
    );
    assert_error(
        &health("kind = \"udp\""),
        "pools.api.health.kind",
        "expected one of http, tcp, grpc",
    );
}

#[test]
fn the_summary_names_protocol_and_grpc_checks() {
    let c = load(&pool(
        "protocol = \"h2c\"\n[pools.api.health]\nkind = \"grpc\"\nservice = \"S\"",
    ));
    let line = &summary_lines(&c)[0];
    assert!(line.contains(", h2c, health gRPC S every 2s"), "{line}");
}

#[test]
fn h2c_over_tls_is_an_error_at_the_protocol_key() {
    assert_error(
        "[pools.api]\nbackends = [\"https://127.0.0.1:8443\"]\ntls_insecure_skip_verify = true\nprotocol = \"h2c\"\n",
        "pools.api.protocol",
        "\"h2c\" is HTTP/2 on plain TCP, but this pool uses TLS",
    );
    // h2 and auto over TLS are fine.
    for p in ["h2", "auto"] {
        let c = load(&format!(
            "[pools.api]\nbackends = [\"https://127.0.0.1:8443\"]\ntls_insecure_skip_verify = true\nprotocol = \"{p}\"\n"
        ));
        assert!(c.pools["api"].tls.is_some());
    }
}
