//! SIP over TLS (RFC 3261 §26.2; `sips:` URIs, port 5061): rustls with the ring provider
//! (aws-lc-rs would need cmake and nasm to build).
//!
//! One identity (certificate chain and key) serves both sides: the engine presents it to
//! phones and trunks that connect, and to servers that ask for a client certificate when the
//! engine connects (mutual TLS, common with CUCM trunks). Client certificates are checked
//! only when `client_ca` is given; then a client without a certificate signed by it is
//! refused at the handshake. Servers the engine connects to are verified against
//! `server_roots` when given, else against the operating system's trust store, with the
//! name the URI gave (a trunk's registrar host) or the IP address.
//!
//! [`self_signed`] makes a certificate at first start when none is configured.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM {what} in it")]
    Pem { path: PathBuf, what: &'static str },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration refused: {0}")]
    Rustls(String),
}

/// The TLS transport's settings (the listener's address is the driver's `tls_listen`).
#[derive(Clone)]
pub struct TlsConfig {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    /// When given, connecting clients must present a certificate signed by one of these.
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
    /// Trust anchors for servers the engine connects to; `None`: the system's.
    pub server_roots: Option<Vec<CertificateDer<'static>>>,
}

/// Never prints the key.
impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("certificates", &self.cert_chain.len())
            .field("client_ca", &self.client_ca.as_ref().map(Vec::len))
            .field("server_roots", &self.server_roots.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads PEM files: the certificate chain, its key, and optional CA bundles.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        server_roots: Option<&Path>,
    ) -> Result<TlsConfig, TlsError> {
        let cert_chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Pem {
            path: key.to_path_buf(),
            what: "private key",
        })?;
        Ok(TlsConfig {
            cert_chain,
            key: Arc::new(key),
            client_ca: client_ca.map(certificates).transpose()?,
            server_roots: server_roots.map(certificates).transpose()?,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The rustls sides the stream transport uses.
pub(crate) struct TlsSide {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn refused(e: impl std::fmt::Display) -> TlsError {
    TlsError::Rustls(e.to_string())
}

fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(refused)?;
    }
    Ok(roots)
}

impl TlsSide {
    pub(crate) fn new(config: &TlsConfig) -> Result<TlsSide, TlsError> {
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(refused)?;
        let server = match &config.client_ca {
            Some(cas) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(cas)?), provider())
                        .build()
                        .map_err(refused)?;
                server.with_client_cert_verifier(verifier)
            }
            None => server.with_no_client_auth(),
        }
        .with_single_cert(config.cert_chain.clone(), config.key.clone_key())
        .map_err(refused)?;

        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(refused)?;
        let client = match &config.server_roots {
            Some(cas) => client.with_root_certificates(roots(cas)?),
            None => client.with_platform_verifier().map_err(refused)?,
        }
        .with_client_auth_cert(config.cert_chain.clone(), config.key.clone_key())
        .map_err(refused)?;
        Ok(TlsSide {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a server's certificate is checked against: the host the URI named, else the
/// peer's IP address.
pub(crate) fn server_name(name: Option<&str>, peer: SocketAddr) -> Option<ServerName<'static>> {
    match name {
        Some(n) => ServerName::try_from(n.to_string()).ok(),
        None => Some(ServerName::IpAddress(peer.ip().into())),
    }
}

/// The certificate and key files made at first start in `dir` (`sip-tls.crt`,
/// `sip-tls.key`, the key readable by the owner only), for `names` (host names and IP
/// addresses the certificate is valid for). Existing files are kept as they are.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert_path = dir.join("sip-tls.crt");
    let key_path = dir.join("sip-tls.key");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key_path, generated.signing_key.serialize_pem().as_bytes()).map_err(
        |source| TlsError::Write {
            path: key_path.clone(),
            source,
        },
    )?;
    fs::write(&cert_path, generated.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.clone(),
        source,
    })?;
    Ok((cert_path, key_path))
}

/// Creates `path` with mode 0600 from the start (never readable by others, not even
/// briefly), writes `bytes` and syncs them: private keys. The engine's other key writers
/// use it too (`engine::files::write_private`).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_identity_is_made_once_and_loads() {
        let dir = tempfile::tempdir().expect("dir");
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let (cert, key) = self_signed(dir.path(), &names).expect("generated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
        }
        let first = fs::read(&cert).expect("cert");
        self_signed(dir.path(), &names).expect("kept");
        assert_eq!(fs::read(&cert).expect("cert"), first, "not regenerated");
        let config =
            TlsConfig::from_pem_files(&cert, &key, Some(&cert), Some(&cert)).expect("loads");
        assert_eq!(config.cert_chain.len(), 1);
        TlsSide::new(&config).expect("rustls accepts it");
        assert!(!format!("{config:?}").contains("PRIVATE"));
    }

    #[test]
    fn missing_or_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "").expect("write");
        let e = TlsConfig::from_pem_files(&empty, &empty, None, None)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("empty.pem") && e.contains("certificate"), "{e}");
        let (cert, _) = self_signed(dir.path(), &["localhost".to_string()]).expect("made");
        let e = TlsConfig::from_pem_files(&cert, &empty, None, None)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("empty.pem") && e.contains("private key"), "{e}");
        let e = TlsConfig::from_pem_files(&dir.path().join("none.pem"), &empty, None, None)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("none.pem"), "{e}");
    }
}
