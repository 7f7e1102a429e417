//! TLS to backends: a pool's TLS settings turned into a rustls client config
//! once per pool config (a reload builds a new one), and the handshake on a
//! connected `TcpStream` with the ALPN list the caller asks for (`http/1.1`
//! for HTTP/1.1 pools, `h2` for HTTP/2 ones).
//!
//! Trust: the certificates of `ca_file` when it is set, else the system's
//! root store (`rustls-native-certs`: the same store curl and the OS use, so
//! a company CA installed there is trusted too). The name verified, and sent
//! as SNI, is `tls_server_name`, else the host name the backend was written
//! with (`"https://api.internal:443"` → `api.internal`), else the member's IP
//! address: then no SNI is sent (RFC 6066 §3 forbids IP literals) and the
//! certificate must carry that IP as a subject alternative name.
//!
//! Sessions are resumed (rustls' in-memory cache of 256 sessions, shared by
//! every connection of the pool config), which saves a round trip and the
//! certificate check on reconnects.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// ALPN offered by HTTP/1.1 pools.
pub const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];
/// ALPN offered by `protocol = "h2"` pools and gRPC health checks.
pub const ALPN_H2: &[&[u8]] = &[b"h2"];
/// ALPN offered by `protocol = "auto"` pools: HTTP/2 preferred.
pub const ALPN_AUTO: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A pool's TLS settings, as configured (`[pools.NAME]` keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `tls_server_name`: the name sent as SNI and verified for every member.
    /// Default: the backend's host name as written in `backends`, else its IP.
    pub server_name: Option<String>,
    /// `ca_file`: PEM certificates trusted instead of the system roots. Default none.
    pub ca_file: Option<PathBuf>,
    /// `client_cert`: PEM chain presented to backends that ask (mTLS). Default none.
    pub client_cert: Option<PathBuf>,
    /// `client_key`: the PEM private key of `client_cert`. Default none.
    pub client_key: Option<PathBuf>,
    /// `tls_insecure_skip_verify`: accept any certificate. Default `false`.
    pub insecure_skip_verify: bool,
    /// Host names of backends written with one (`backends`), by resolved address.
    pub names: Vec<(SocketAddr, String)>,
}

/// A setting that could not be loaded: the key at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// `ca_file`, `client_cert`, `client_key`, `tls_server_name` or `tls`.
    pub key: &'static str,
    pub message: String,
}

fn err(key: &'static str, message: impl Into<String>) -> BuildError {
    BuildError {
        key,
        message: message.into(),
    }
}

/// A pool's built TLS client: certificates loaded, names parsed.
pub struct UpstreamTls {
    pub settings: TlsSettings,
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
    names: HashMap<SocketAddr, ServerName<'static>>,
    id: u64,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("settings", &self.settings)
            .field("id", &self.id)
            .finish()
    }
}

/// Two builds of the same settings are the same configuration.
impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

/// Ids of built clients; 0 is left for plain connections.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn read_certs(
    path: &PathBuf,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(key, format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(err(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn roots(settings: &TlsSettings) -> Result<RootCertStore, BuildError> {
    let mut store = RootCertStore::empty();
    if let Some(path) = &settings.ca_file {
        for (i, c) in read_certs(path, "ca_file")?.into_iter().enumerate() {
            store.add(c).map_err(|e| {
                err(
                    "ca_file",
                    format!("certificate {} in {}: {e}", i + 1, path.display()),
                )
            })?;
        }
        return Ok(store);
    }
    let found = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(err(
            "tls",
            format!("no trusted root certificates found in the system store{why}; install ca-certificates or set ca_file"),
        ));
    }
    Ok(store)
}

/// A name to verify: a DNS name or an IP address.
pub fn parse_server_name(s: &str) -> Result<ServerName<'static>, String> {
    let t = s.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(t.to_string())
        .map_err(|_| format!("\"{}\" is not a DNS name or IP address", s.escape_default()))
}

impl UpstreamTls {
    /// Loads the certificates and keys the settings name; errors say which
    /// key is at fault and why.
    pub fn build(settings: TlsSettings) -> Result<UpstreamTls, BuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err("tls", e.to_string()))?;
        let builder = if settings.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
        } else {
            builder.with_root_certificates(roots(&settings)?)
        };
        let config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "client_cert")?;
                let pk = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    err(
                        "client_key",
                        format!("cannot read a PEM private key from {}: {e}", key.display()),
                    )
                })?;
                builder.with_client_auth_cert(chain, pk).map_err(|e| {
                    err(
                        "client_key",
                        format!("{} does not fit {}: {e}", key.display(), cert.display()),
                    )
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err(err("client_cert", "needs client_key")),
            (None, Some(_)) => return Err(err("client_key", "needs client_cert")),
        };
        let server_name = match &settings.server_name {
            Some(s) => Some(parse_server_name(s).map_err(|m| err("tls_server_name", m))?),
            None => None,
        };
        let names = settings
            .names
            .iter()
            .filter_map(|(a, n)| parse_server_name(n).ok().map(|s| (*a, s)))
            .collect();
        Ok(UpstreamTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            names,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
        })
    }

    /// Identifies this build: idle connections are pooled per (address, id),
    /// so a reload with other certificates never reuses an old connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The name verified (and sent as SNI unless an IP) for the member at `addr`.
    pub fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        self.server_name
            .clone()
            .or_else(|| self.names.get(&addr).cloned())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }

    /// The TLS handshake on `tcp` (connected to `addr`), offering `alpn`.
    /// A verification failure is an `io::Error` whose text says why
    /// (`invalid peer certificate: ...`).
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        alpn: &[&[u8]],
    ) -> io::Result<TlsStream<TcpStream>> {
        let alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self.connector
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

/// `tls_insecure_skip_verify = true`: any certificate is accepted; the
/// handshake signatures are still checked (they prove nothing without a
/// trusted certificate, but the handshake needs them).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn built(settings: TlsSettings) -> UpstreamTls {
        UpstreamTls::build(TlsSettings {
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

    #[test]
    fn bad_names_and_files_name_their_key() {
        let e = UpstreamTls::build(TlsSettings {
            server_name: Some("not a name".into()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "tls_server_name");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = UpstreamTls::build(TlsSettings {
            ca_file: Some(empty.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "ca_file");
        assert!(e.message.contains("holds no PEM certificate"), "{e:?}");
        let e = UpstreamTls::build(TlsSettings {
            client_cert: Some(empty.clone()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "client_cert");
    }

    #[test]
    fn every_build_has_its_own_id_and_equal_settings_compare_equal() {
        let (a, b) = (built(Default::default()), built(Default::default()));
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), 0);
        assert_eq!(a, b);
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
        let t = UpstreamTls::build(TlsSettings {
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
        let wrong = UpstreamTls::build(TlsSettings {
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
