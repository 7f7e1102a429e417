//! A pool's TLS client loaded from its settings (`tls`, `ca_file`,
//! `client_cert`, `client_key`, `tls_server_name`,
//! `tls_insecure_skip_verify`): the PEM files read and the rustls client
//! config built while the config is read, so `drover check` reports a bad
//! file at its key. Only settings and rustls types live here; the
//! handshake is the upstream client's.
//!
//! Trust: the certificates of `ca_file` when it is set, else the system's
//! root store (`rustls-native-certs`: the same store curl and the OS use, so
//! a company CA installed there is trusted too). Sessions are resumed
//! (rustls' in-memory cache of 256 sessions, shared by every connection made
//! with one load).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

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

/// A pool's TLS client as loaded: its settings, the rustls client config
/// (certificates and key read, trust store built), the names parsed. Loaded
/// once per config (a reload loads it again, re-reading the files); the
/// upstream client makes its handshakes with it.
pub struct UpstreamTls {
    pub settings: TlsSettings,
    /// The rustls client config (ALPN empty: each handshake names its own).
    pub client: Arc<ClientConfig>,
    /// `tls_server_name`, parsed.
    pub server_name: Option<ServerName<'static>>,
    /// The written host names of `settings.names`, parsed, by address.
    pub names: HashMap<SocketAddr, ServerName<'static>>,
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

/// Two loads of the same settings are the same configuration.
impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

/// Ids of loaded clients; 0 is left for plain connections.
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
    pub fn load(settings: TlsSettings) -> Result<UpstreamTls, BuildError> {
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
            client: Arc::new(config),
            server_name,
            names,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            settings,
        })
    }

    /// Identifies this load: idle connections are pooled per (address, id),
    /// so a reload with other certificates never reuses an old connection.
    pub fn id(&self) -> u64 {
        self.id
    }
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

    #[test]
    fn bad_names_and_files_name_their_key() {
        let e = UpstreamTls::load(TlsSettings {
            server_name: Some("not a name".into()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "tls_server_name");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = UpstreamTls::load(TlsSettings {
            ca_file: Some(empty.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "ca_file");
        assert!(e.message.contains("holds no PEM certificate"), "{e:?}");
        let e = UpstreamTls::load(TlsSettings {
            client_cert: Some(empty.clone()),
            insecure_skip_verify: true,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.key, "client_cert");
    }

    #[test]
    fn every_load_has_its_own_id_and_equal_settings_compare_equal() {
        let load = || {
            UpstreamTls::load(TlsSettings {
                insecure_skip_verify: true,
                ..Default::default()
            })
            .unwrap()
        };
        let (a, b) = (load(), load());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), 0);
        assert_eq!(a, b);
    }
}
