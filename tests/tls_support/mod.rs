//! Test certificates (rcgen) and `drover backend --tls-cert` processes,
//! shared by the TLS-to-backend tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::common::Proc;

/// A CA that signs test certificates.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `dns` names and `ips`, for a server or a client; writes
    /// `NAME.pem` and `NAME.key` into `dir`.
    pub fn issue(
        &self,
        dir: &Path,
        name: &str,
        dns: &[&str],
        ips: &[&str],
        client: bool,
    ) -> (PathBuf, PathBuf) {
        let mut p =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        for ip in ips {
            p.subject_alt_names
                .push(SanType::IpAddress(ip.parse().unwrap()));
        }
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.cert.pem()).unwrap();
        p
    }
}

/// Certificates of one test: the backend's CA and leaf (for `localhost` and
/// 127.0.0.1), a second CA that signed nothing the backend shows, and a client
/// certificate from a client CA.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server: (PathBuf, PathBuf),
    /// For `localhost` only / for 127.0.0.1 only.
    pub by_name: (PathBuf, PathBuf),
    pub by_ip: (PathBuf, PathBuf),
    pub client_ca: PathBuf,
    pub client: (PathBuf, PathBuf),
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca, other, clients) = (
        Ca::new("test CA"),
        Ca::new("other CA"),
        Ca::new("client CA"),
    );
    let server = ca.issue(dir.path(), "server", &["localhost"], &["127.0.0.1"], false);
    let by_name = ca.issue(dir.path(), "by-name", &["localhost"], &[], false);
    let by_ip = ca.issue(dir.path(), "by-ip", &[], &["127.0.0.1"], false);
    let client = clients.issue(dir.path(), "client", &["drover.client"], &[], true);
    Pki {
        ca: ca.write(dir.path(), "ca.pem"),
        other_ca: other.write(dir.path(), "other-ca.pem"),
        client_ca: clients.write(dir.path(), "client-ca.pem"),
        server,
        by_name,
        by_ip,
        client,
        _dir: dir,
    }
}

/// A `drover backend` serving TLS with `cert`/`key`, mTLS with `client_ca`.
pub struct TlsBackend {
    pub _proc: Proc,
    pub addr: SocketAddr,
}

pub fn tls_backend(name: &str, pki: &Pki, client_ca: bool) -> TlsBackend {
    tls_backend_with(name, pki, &pki.server, client_ca)
}

pub fn tls_backend_with(
    name: &str,
    pki: &Pki,
    leaf: &(PathBuf, PathBuf),
    client_ca: bool,
) -> TlsBackend {
    let extra: &[&str] = if client_ca {
        &["--tls-client-ca", pki.client_ca.to_str().unwrap()]
    } else {
        &[]
    };
    tls_backend_args(name, leaf, extra)
}

/// A `drover backend` serving TLS with `leaf`, with more `extra` flags.
pub fn tls_backend_args(name: &str, leaf: &(PathBuf, PathBuf), extra: &[&str]) -> TlsBackend {
    let (cert, key) = (leaf.0.to_str().unwrap(), leaf.1.to_str().unwrap());
    let mut args = vec![
        "--log-format",
        "json",
        "backend",
        "--listen",
        "127.0.0.1:0",
        "--name",
        name,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    args.extend(extra);
    let proc = Proc::spawn(&args, None);
    let addr = proc.stderr.addr_of("backend listening");
    TlsBackend { _proc: proc, addr }
}
