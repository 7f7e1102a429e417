//! TLS to backends: the handshake on a connected `TcpStream` with a pool's
//! TLS client ([`UpstreamTls`], loaded with the config: a reload loads a new
//! one) and the ALPN list the caller asks for (`http/1.1` for HTTP/1.1
//! pools, `h2` for HTTP/2 ones).
//!
//! The name verified, and sent as SNI, is `tls_server_name`, else the host
//! name the backend was written with (`"https://api.internal:443"` →
//! `api.internal`), else the member's IP address: then no SNI is sent
//! (RFC 6066 §3 forbids IP literals) and the certificate must carry that IP
//! as a subject alternative name.
//!
//! Sessions are resumed (rustls' in-memory cache, shared by every connection
//! made with one load), which saves a round trip and the certificate check
//! on reconnects.

use std::io;
use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use crate::config::UpstreamTls;

/// ALPN offered by HTTP/1.1 pools.
pub const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];
/// ALPN offered by `protocol = "h2"` pools and gRPC health checks.
pub const ALPN_H2: &[&[u8]] = &[b"h2"];
/// ALPN offered by `protocol = "auto"` pools: HTTP/2 preferred.
pub const ALPN_AUTO: &[&[u8]] = &[b"h2", b"http/1.1"];

impl UpstreamTls {
    /// The name verified (and sent as SNI unless an IP) for the member at `addr`.
    pub fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .or_else(|| self.names.get(&addr).cloned())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }

    /// The TLS handshake on `tcp` (connected to `addr`), offering `alpn`.
    /// The connector shares the loaded client config (an `Arc`: nothing is
    /// re-read or rebuilt here). A verification failure is an `io::Error`
    /// whose text says why (`invalid peer certificate: ...`).
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        alpn: &[&[u8]],
    ) -> io::Result<TlsStream<TcpStream>> {
        let alpn = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(self.client.clone())
            .with_alpn(alpn)
            .connect(self.server_name(addr), tcp)
            .await
    }
}

/// Why a handshake failed, in words: rustls' error, with a hint for the
/// common certificate problems.
pub fn describe(e: &io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e.to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "invalid peer certificate: signed by an unknown authority (not in ca_file or the system roots)".to_string()
        }
        rustls::Error::InvalidCertificate(C::NotValidForName) => {
            "invalid peer certificate: not valid for the name verified (see tls_server_name)".to_string()
        }
        other => other.to_string(),
    }
}

/// The TLS error somewhere in `e`'s causes, in words: what a backend's alert
/// said after the handshake (`received fatal alert: CertificateRequired`
/// when it wants a client certificate drover did not send), or a
/// verification error; `None` when TLS is not involved.
pub fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
            {
                return Some(describe(io));
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsSettings;
    use rustls::pki_types::PrivateKeyDer;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn built(settings: TlsSettings) -> UpstreamTls {
        UpstreamTls::load(TlsSettings {
            insecure_skip_verify: true,
            ..settings
        })
        .unwrap()
    }

    #[test]
    fn the_name_is_the_override_then_the_written_host_then_the_ip() {
        let a = addr("10.0.0.1:443");
        let b = addr("[::1]:8443");
        let t = built(TlsSettings {
            names: vec![(a, "api.internal".into())],
            ..Default::default()
        });
        assert_eq!(
            t.server_name(a),
            ServerName::try_from("api.internal").unwrap()
        );
        assert_eq!(t.server_name(b), ServerName::IpAddress(b.ip().into()));
        let t = built(TlsSettings {
            server_name: Some("svc.example".into()),
            names: vec![(a, "api.internal".into())],
            ..Default::default()
        });
        assert_eq!(
            t.server_name(a),
            ServerName::try_from("svc.example").unwrap()
        );
        assert_eq!(
            t.server_name(b),
            ServerName::try_from("svc.example").unwrap()
        );
    }

    /// A TLS server in this process for `localhost` from a fresh CA; returns
    /// its address and the CA's PEM file (in `dir`).
    async fn server(dir: &std::path::Path) -> (SocketAddr, PathBuf) {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            // Bounded: this test connects three times.
            for _ in 0..3 {
                let (s, _) = l.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        // TLS 1.3 tickets go out after the handshake: write, then close.
                        let _ = tls.write_all(b"x").await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        (addr, ca_file)
    }

    #[tokio::test]
    async fn a_second_connection_resumes_the_session() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let (addr, ca_file) = server(dir.path()).await;
        let t = UpstreamTls::load(TlsSettings {
            server_name: Some("localhost".into()),
            ca_file: Some(ca_file),
            ..Default::default()
        })
        .unwrap();
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = t.handshake(tcp, addr, ALPN_HTTP1).await.unwrap();
            kinds.push(tls.get_ref().1.handshake_kind());
            let mut buf = Vec::new();
            let _ = tls.read_to_end(&mut buf).await;
        }
        assert_eq!(
            kinds,
            [
                Some(rustls::HandshakeKind::Full),
                Some(rustls::HandshakeKind::Resumed)
            ]
        );
        // A name the certificate does not carry fails, with the reason.
        let wrong = UpstreamTls::load(TlsSettings {
            server_name: Some("other.example".into()),
            ca_file: t.settings.ca_file.clone(),
            ..Default::default()
        })
        .unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let e = wrong.handshake(tcp, addr, ALPN_HTTP1).await.unwrap_err();
        assert!(
            describe(&e).contains("not valid for name"),
            "{}",
            describe(&e)
        );
    }
}
