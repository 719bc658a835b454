//! Secrets in the configuration (connector passwords, API keys), encrypted at rest.
//!
//! A secret setting is written `enc:v1:<base64>`, produced by `svi secret encrypt`: a
//! random 96-bit nonce followed by the AES-256-GCM ciphertext and tag of the value, under a
//! 256-bit key kept in `DATA_DIR/secrets.key` (created on first use, mode 0600). The
//! configuration file can then be copied, versioned and shown without revealing anything;
//! the key file stays on the node (each node of an HA pair needs a copy of it). `${VAR}`
//! (an environment variable, read at start-up) remains possible for sites that inject
//! secrets through systemd or a vault agent.
//!
//! A decrypted value is a [`Secret`]: its `Debug` and `Display` print `***`, so it cannot
//! reach a log line or a configuration dump by accident; `expose()` gives it to the code
//! that sends it (an HTTP header, a database login).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

/// The prefix of an encrypted setting (format version 1: AES-256-GCM, 12-byte nonce).
pub const PREFIX: &str = "enc:v1:";
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no key file {0}: encrypted settings need the key they were encrypted with (copy it from the node that made them)")]
    NoKey(PathBuf),
    #[error("key file {path}: {problem}")]
    BadKey { path: PathBuf, problem: String },
    #[error("cannot write the key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("is not an `enc:v1:` value (base64 of nonce and ciphertext)")]
    Malformed,
    #[error("cannot be decrypted with {0} (another key, or the text was changed)")]
    Undecryptable(PathBuf),
    #[error("the environment variable `{0}` is not set")]
    NoVariable(String),
}

/// A secret value: redacted in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the code that sends it; never for a log macro.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The data directory's secret key.
pub struct SecretKey {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.path.display())
    }
}

impl SecretKey {
    /// The key of `data_dir`, which must exist (the engine never makes one up at start:
    /// values encrypted elsewhere would then fail with a less helpful message).
    pub fn load(data_dir: &Path) -> Result<SecretKey, SecretError> {
        let path = data_dir.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SecretError::NoKey(path))
            }
            Err(e) => {
                return Err(SecretError::BadKey {
                    path,
                    problem: e.to_string(),
                })
            }
        };
        if bytes.len() != 32 {
            return Err(SecretError::BadKey {
                path,
                problem: format!("holds {} bytes, not 32", bytes.len()),
            });
        }
        let key = Key::<Aes256Gcm>::from_slice(&bytes);
        Ok(SecretKey {
            cipher: Aes256Gcm::new(key),
            path,
        })
    }

    /// The key of `data_dir`, created (32 random bytes, mode 0600) when there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretKey, SecretError> {
        let path = data_dir.join(KEY_FILE);
        if !path.exists() {
            let write = |source| SecretError::Write {
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(data_dir).map_err(write)?;
            let key = Aes256Gcm::generate_key(aes_gcm::aead::OsRng);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(write)?;
            file.write_all(&key).map_err(write)?;
            file.sync_all().map_err(write)?;
        }
        SecretKey::load(data_dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `enc:v1:...` for `plain`, with a fresh random nonce.
    pub fn encrypt(&self, plain: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(aes_gcm::aead::OsRng);
        // Encryption with a valid key and nonce cannot fail for inputs under 64 GiB.
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    /// The value of an `enc:v1:` text.
    pub fn decrypt(&self, text: &str) -> Result<Secret, SecretError> {
        let b64 = text.strip_prefix(PREFIX).ok_or(SecretError::Malformed)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| SecretError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| SecretError::Undecryptable(self.path.clone()))?;
        String::from_utf8(plain)
            .map(Secret)
            .map_err(|_| SecretError::Undecryptable(self.path.clone()))
    }
}

/// Whether a setting's text is an encrypted value.
pub fn is_encrypted(text: &str) -> bool {
    text.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces_and_a_private_key_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = SecretKey::load_or_create(dir.path()).expect("key");
        let a = key.encrypt("s3cret-api-key");
        let b = key.encrypt("s3cret-api-key");
        assert!(a.starts_with(PREFIX) && is_encrypted(&a));
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.contains("s3cret"));
        assert_eq!(key.decrypt(&a).expect("decrypt").expose(), "s3cret-api-key");
        // The same key file next time.
        let again = SecretKey::load_or_create(dir.path()).expect("key");
        assert_eq!(
            again.decrypt(&b).expect("decrypt").expose(),
            "s3cret-api-key"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn tampering_another_key_and_garbage_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = SecretKey::load_or_create(dir.path()).expect("key");
        let other_dir = tempfile::tempdir().expect("tmp");
        let other = SecretKey::load_or_create(other_dir.path()).expect("key");
        let sealed = key.encrypt("password");
        assert!(matches!(
            other.decrypt(&sealed),
            Err(SecretError::Undecryptable(_))
        ));
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed[PREFIX.len()..])
            .expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        );
        assert!(matches!(
            key.decrypt(&tampered),
            Err(SecretError::Undecryptable(_))
        ));
        for bad in ["password", "enc:v1:", "enc:v1:!!!", "enc:v1:AAAA"] {
            assert!(
                matches!(key.decrypt(bad), Err(SecretError::Malformed)),
                "{bad}"
            );
        }
        assert!(matches!(
            SecretKey::load(other_dir.path().join("none").as_path()),
            Err(SecretError::NoKey(_))
        ));
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
