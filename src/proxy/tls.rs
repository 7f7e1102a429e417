//! The optional TLS listener (`[server.tls]`): rustls with ALPN `h2` and
//! `http/1.1`; several certificates are chosen by SNI (the first one is the
//! default when the client sends no name or no certificate matches).

use std::sync::Arc;

use anyhow::Context;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsAcceptor;

use crate::config::{CertPair, TlsConfig};

/// One loaded certificate chain with its key.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The end-entity certificate (for SNI matching).
    leaf: CertificateDer<'static>,
}

/// Picks the certificate whose names match the SNI, else the first.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Loaded>,
}

impl SniResolver {
    fn matching(&self, sni: &str) -> Option<&Loaded> {
        let name = ServerName::try_from(sni).ok()?;
        self.certs.iter().find(|c| {
            webpki::EndEntityCert::try_from(&c.leaf)
                .map(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
                .unwrap_or(false)
        })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|sni| self.matching(sni))
            .or_else(|| self.certs.first());
        chosen.map(|c| c.key.clone())
    }
}

fn load_pair(pair: &CertPair, provider: &rustls::crypto::CryptoProvider) -> anyhow::Result<Loaded> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.cert)
        .with_context(|| format!("cannot read certificate {}", pair.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", pair.cert.display()))?;
    let leaf = chain
        .first()
        .cloned()
        .with_context(|| format!("{} holds no certificate", pair.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&pair.key)
        .with_context(|| format!("cannot read a PEM private key from {}", pair.key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("unsupported private key in {}", pair.key.display()))?;
    Ok(Loaded {
        key: Arc::new(CertifiedKey::new(chain, signing)),
        leaf,
    })
}

/// Builds the acceptor for `[server.tls]`; errors name the file at fault.
pub fn acceptor(cfg: &TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = cfg
        .certs
        .iter()
        .map(|p| load_pair(p, &provider))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { certs }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
