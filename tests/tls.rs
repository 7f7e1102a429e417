//! End to end: the `[server.tls]` listener (rustls, ALPN h2/http1.1, SNI).

mod common;

use common::{curl, write_cert, Backend, Drover};

#[test]
fn tls_listener_serves_h1_and_h2_and_picks_the_certificate_by_sni() {
    let b = Backend::start("b");
    let certs = tempfile::tempdir().unwrap();
    let (c1, k1) = write_cert(certs.path(), "localhost");
    let (c2, k2) = write_cert(certs.path(), "other.test");
    let cfg = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[server.tls]
listen = ["127.0.0.1:0"]
certs = [{{ cert = "{c1}", key = "{k1}" }}, {{ cert = "{c2}", key = "{k2}" }}]
[admin]
listen = "127.0.0.1:0"
[pools.app]
backends = ["{}"]
"#,
        b.addr
    );
    let d = Drover::start(&cfg);
    let port = d.proc.stderr.addr_of("tls listening").port();
    for (host, ca, proto) in [
        ("localhost", &c1, "--http1.1"),
        ("localhost", &c1, "--http2"),
        ("other.test", &c2, "--http2"),
    ] {
        let url = format!("https://{host}:{port}/secure?x=1");
        let resolve = format!("{host}:{port}:127.0.0.1");
        let out = curl(&[
            proto,
            "--cacert",
            ca,
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version}",
            &url,
        ]);
        let (body, version) = out.rsplit_once('\n').unwrap();
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|_| panic!("{host} {proto}: {out}"));
        assert_eq!(v["path"], "/secure");
        assert_eq!(v["headers"]["x-forwarded-proto"], "https");
        assert_eq!(version, if proto == "--http2" { "2" } else { "1.1" });
    }
    // The plain listener still serves http.
    let out = curl(&[&d.url("/plain")]);
    assert!(out.contains("\"x-forwarded-proto\":\"http\""), "{out}");
}
