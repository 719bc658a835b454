//! The HTTPS identity: a configured certificate and key (PEM files), or a self-signed pair
//! made at the first start in the data directory (`admin-tls.crt`, `admin-tls.key`, the key
//! readable by the owner only). [`Identity::reload`] reads the files again (SIGHUP): new
//! connections get the new certificate, open ones keep theirs; a reload that fails keeps
//! the old identity and says why.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Where the certificate and key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// The pair made at first start in `dir`, for `names` (host names and addresses);
    /// existing files are kept as they are.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<CertFiles, TlsError> {
        let files = CertFiles {
            cert: dir.join("admin-tls.crt"),
            key: dir.join("admin-tls.key"),
        };
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        fs::create_dir_all(dir).map_err(|e| TlsError::File {
            path: dir.to_path_buf(),
            problem: e.to_string(),
        })?;
        let made = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        engine::files::write_private(&files.key, made.signing_key.serialize_pem().as_bytes())
            .map_err(|e| TlsError::File {
                path: files.key.clone(),
                problem: e.to_string(),
            })?;
        fs::write(&files.cert, made.cert.pem()).map_err(|e| TlsError::File {
            path: files.cert.clone(),
            problem: e.to_string(),
        })?;
        tracing::info!(cert = %files.cert.display(), "admin: self-signed certificate made");
        Ok(files)
    }

    fn load(&self) -> Result<CertifiedKey, TlsError> {
        let err = |path: &Path, problem: String| TlsError::File {
            path: path.to_path_buf(),
            problem,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| err(&self.cert, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(&self.cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(err(&self.cert, "no certificate in the file".into()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| err(&self.key, format!("no usable private key: {e}")))?;
        let signer = any_supported_type(&key).map_err(|e| err(&self.key, e.to_string()))?;
        let certified = CertifiedKey::new(certs, signer);
        certified
            .keys_match()
            .map_err(|e| err(&self.key, format!("does not match the certificate: {e}")))?;
        Ok(certified)
    }
}

/// The certificate in use, swapped whole on reload. A lock, not a channel: the TLS
/// handshake asks for it synchronously (`ResolvesServerCert` is not async), reads vastly
/// outnumber the rare reloads, and the critical section is one `Arc` clone.
#[derive(Debug)]
pub struct Identity {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Identity {
    pub fn load(files: CertFiles) -> Result<Arc<Identity>, TlsError> {
        let key = files.load()?;
        Ok(Arc::new(Identity {
            files,
            current: RwLock::new(Arc::new(key)),
        }))
    }

    pub fn files(&self) -> &CertFiles {
        &self.files
    }

    /// Reads the files again; on error the identity in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = Arc::new(self.files.load()?);
        match self.current.write() {
            Ok(mut g) => *g = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }

    /// The DER of the leaf certificate in use (tests compare it).
    pub fn leaf(&self) -> Option<Vec<u8>> {
        self.current().cert.first().map(|c| c.as_ref().to_vec())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A rustls server configuration that asks this identity at each handshake.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

#[derive(Debug)]
struct Resolver(Arc<Identity>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_reloaded_from_the_files() {
        let dir = tempfile::tempdir().expect("dir");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let files = CertFiles::self_signed(dir.path(), &names).expect("made");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&files.key).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let identity = Identity::load(files.clone()).expect("loads");
        identity.server_config().expect("rustls takes it");
        let first = identity.leaf().expect("leaf");
        assert_eq!(
            CertFiles::self_signed(dir.path(), &names).expect("kept"),
            files
        );
        assert_eq!(identity.leaf(), Some(first.clone()));

        // A broken replacement is refused and the old identity stays.
        fs::write(&files.cert, "not a certificate").expect("write");
        let e = identity.reload().expect_err("refused").to_string();
        assert!(e.contains("admin-tls.crt"), "{e}");
        assert_eq!(identity.leaf(), Some(first.clone()));

        // A new pair is taken.
        fs::remove_file(&files.cert).expect("rm");
        fs::remove_file(&files.key).expect("rm");
        CertFiles::self_signed(dir.path(), &names).expect("remade");
        identity.reload().expect("reloaded");
        assert_ne!(identity.leaf(), Some(first));
    }
}
