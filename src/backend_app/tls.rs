//! `drover backend --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]
//! [--tls-http1-only]`: the built-in backend over TLS (ALPN `h2` and
//! `http/1.1`, or `http/1.1` only), optionally
//! requiring a client certificate signed by `--tls-client-ca` (mTLS). For
//! trying and testing drover's TLS to backends.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;

/// The TLS flags of `drover backend`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackendTls {
    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mTLS; needs --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Offer only `http/1.1` by ALPN, not `h2` (a backend that speaks
    /// HTTP/1.1 only over TLS, for trying `protocol = "auto"`; needs --tls-cert).
    #[arg(long, requires = "tls_cert")]
    pub tls_http1_only: bool,
}

fn certs(path: &PathBuf) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

impl BackendTls {
    /// The acceptor the flags ask for; `None` without `--tls-cert`.
    pub fn acceptor(&self) -> anyhow::Result<Option<TlsAcceptor>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.tls_client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in certs(ca)? {
                    roots
                        .add(c)
                        .with_context(|| format!("a certificate in {}", ca.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .context("client certificate verifier")?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
        let mut config = builder
            .with_single_cert(certs(cert)?, key)
            .context("--tls-key does not fit --tls-cert")?;
        config.alpn_protocols = if self.tls_http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        Ok(Some(TlsAcceptor::from(Arc::new(config))))
    }
}
