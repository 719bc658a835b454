//! TLS on the cluster link: every member has its own certificate (generated at first start,
//! or by `svi ha cert`, self-signed, in `<data dir>/cluster-tls/`), and every member's
//! certificate is **pinned** in the configuration by its SHA-256 fingerprint
//! (`[[ha.members]] fingerprint`, one or several: several while a key is being rotated).
//! Both sides present their certificate (TLS 1.3, mutual): a connection is accepted only
//! from a certificate pinned for a member, and a client talks only to a certificate pinned
//! for the member it called. The member a connection comes from is known from its
//! certificate, not from what it claims, which is what per-member rights rest on (a witness
//! votes but cannot fetch recordings or write: `server`).
//!
//! The handshake signatures are checked with the crypto provider's algorithms, so a peer
//! must hold the private key of the pinned certificate; there is no CA, no name, no expiry
//! to check (the pin is the trust). Rotating a key: see `docs/ha.md`.
//!
//! Only this module names rustls.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::types::NodeId;

/// The directory of a member's key and certificate, under its data directory.
pub const TLS_DIR: &str = "cluster-tls";
/// The name every member's certificate carries (and a client asks for; the pin decides).
const SERVER_NAME: &str = "svi-cluster-member";
const CERT: &str = "member.crt";
const KEY: &str = "member.key";

/// Why the cluster link's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cluster certificate {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cluster certificate {path}: {problem}")]
    Bad { path: PathBuf, problem: String },
    #[error("cannot generate the cluster certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("this node's cluster certificate ({found}) is not pinned for member {member}: add it to `fingerprint` of member {member} in every member's configuration")]
    NotPinned { member: NodeId, found: Fingerprint },
}

/// A certificate's pin: `sha256:` and 64 hex digits of the SHA-256 of its DER form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(cert_der).into())
    }

    /// Parses `sha256:<64 hex digits>` (colons between bytes are accepted too).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let hex_part: String = s
            .trim()
            .strip_prefix("sha256:")?
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let bytes = hex::decode(hex_part).ok()?;
        Some(Fingerprint(bytes.try_into().ok()?))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

/// This member's certificate and key.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

impl Identity {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert)
    }

    /// Loads the member's certificate from `dir`, generating it (and its key, readable by
    /// the owner only) on first use.
    pub fn load_or_generate(dir: &Path) -> Result<Identity, TlsError> {
        let (cert_path, key_path) = (dir.join(CERT), dir.join(KEY));
        if !cert_path.exists() && !key_path.exists() {
            generate(dir)?;
        }
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let bad = |p: &Path, e: rustls::pki_types::pem::Error| TlsError::Bad {
            path: p.to_path_buf(),
            problem: e.to_string(),
        };
        let cert =
            CertificateDer::from_pem_slice(&read(&cert_path)?).map_err(|e| bad(&cert_path, e))?;
        let key =
            PrivateKeyDer::from_pem_slice(&read(&key_path)?).map_err(|e| bad(&key_path, e))?;
        Ok(Identity { cert, key })
    }
}

/// The fingerprint of the cluster certificate of the member whose data directory is
/// `data_dir`, generated there first if it has none (`svi ha cert`).
pub fn member_fingerprint(data_dir: &Path) -> Result<Fingerprint, TlsError> {
    Identity::load_or_generate(&data_dir.join(TLS_DIR)).map(|i| i.fingerprint())
}

fn generate(dir: &Path) -> Result<(), TlsError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let key_path = dir.join(KEY);
    engine::files::write_private(&key_path, ck.signing_key.serialize_pem().as_bytes())
        .map_err(io(&key_path))?;
    let cert_path = dir.join(CERT);
    std::fs::write(&cert_path, ck.cert.pem()).map_err(io(&cert_path))?;
    tracing::warn!(
        dir = %dir.display(),
        fingerprint = %Fingerprint::of(ck.cert.der()),
        "cluster certificate generated: pin this fingerprint in every member's configuration"
    );
    Ok(())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks certificates against the pins and handshake signatures with the provider.
#[derive(Debug)]
struct Pins {
    /// Accepted certificates (by fingerprint) and the member each belongs to.
    members: BTreeMap<Fingerprint, NodeId>,
    provider: Arc<CryptoProvider>,
}

impl Pins {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
        self.members
            .get(&Fingerprint::of(cert))
            .copied()
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for Pins {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Pins {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

/// Both sides' TLS configurations for one member.
#[derive(Clone)]
pub(crate) struct ClusterTls {
    server: Arc<rustls::ServerConfig>,
    /// One client configuration per member (the pin of that member only).
    clients: BTreeMap<NodeId, Arc<rustls::ClientConfig>>,
    pins: BTreeMap<Fingerprint, NodeId>,
}

impl ClusterTls {
    /// `me`'s configuration: its identity must be pinned for it in `pins`.
    pub(crate) fn new(
        me: NodeId,
        identity: &Identity,
        pins: &BTreeMap<NodeId, Vec<Fingerprint>>,
    ) -> Result<ClusterTls, TlsError> {
        let cfg = |e: rustls::Error| TlsError::Config(e.to_string());
        let found = identity.fingerprint();
        if !pins.get(&me).is_some_and(|p| p.contains(&found)) {
            return Err(TlsError::NotPinned { member: me, found });
        }
        let by_print: BTreeMap<Fingerprint, NodeId> = pins
            .iter()
            .flat_map(|(id, prints)| prints.iter().map(|f| (*f, *id)))
            .collect();
        let verifier = Arc::new(Pins {
            members: by_print.clone(),
            provider: provider(),
        });
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(cfg)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
            .map_err(cfg)?;
        let mut clients = BTreeMap::new();
        for (id, prints) in pins {
            let only = Arc::new(Pins {
                members: prints.iter().map(|f| (*f, *id)).collect(),
                provider: provider(),
            });
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(cfg)?
                .dangerous()
                .with_custom_certificate_verifier(only)
                .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())
                .map_err(cfg)?;
            clients.insert(*id, Arc::new(client));
        }
        Ok(ClusterTls {
            server: Arc::new(server),
            clients,
            pins: by_print,
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// A connector to member `id` (None: no pin for it).
    pub(crate) fn connector(
        &self,
        id: NodeId,
    ) -> Option<(tokio_rustls::TlsConnector, ServerName<'static>)> {
        let cfg = self.clients.get(&id)?.clone();
        let name = ServerName::try_from(SERVER_NAME).ok()?;
        Some((tokio_rustls::TlsConnector::from(cfg), name))
    }

    /// The member whose pinned certificate a peer presented.
    pub(crate) fn member_of(&self, cert: &CertificateDer<'_>) -> Option<NodeId> {
        self.pins.get(&Fingerprint::of(cert)).copied()
    }

    /// Accepts a TLS connection: the stream and the member whose pinned certificate the
    /// peer proved it holds.
    pub(crate) async fn accept<S>(
        &self,
        stream: S,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<S>, NodeId)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = self.acceptor().accept(stream).await?;
        let member = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| self.member_of(c))
            .ok_or_else(|| std::io::Error::other("no pinned client certificate"))?;
        Ok((tls, member))
    }

    /// Opens TLS to member `id` over `stream`: the peer must prove it holds a certificate
    /// pinned for `id`.
    pub(crate) async fn connect<S>(
        &self,
        id: NodeId,
        stream: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (connector, name) = self.connector(id).ok_or_else(|| {
            std::io::Error::other(format!("no certificate pinned for member {id}"))
        })?;
        connector.connect(name, stream).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Fresh identities in their own directories (kept alive with the returned guard).
    fn identities(n: usize) -> (tempfile::TempDir, Vec<Identity>) {
        let dir = tempfile::tempdir().expect("tmp");
        let ids = (0..n)
            .map(|i| Identity::load_or_generate(&dir.path().join(i.to_string())).expect("id"))
            .collect();
        (dir, ids)
    }

    /// A TLS handshake over an in-memory stream: `client` calls member `call` on `server`,
    /// which sends one byte once it accepted. The server's side gives the member it
    /// authenticated; the client's, whether that byte arrived (TLS 1.3: a refused client
    /// certificate shows on the client's first read).
    async fn handshake(
        server: &ClusterTls,
        client: &ClusterTls,
        call: NodeId,
    ) -> (std::io::Result<NodeId>, std::io::Result<()>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (a, b) = tokio::io::duplex(1 << 16);
        let both = async {
            tokio::join!(
                async {
                    let (mut tls, id) = server.accept(b).await?;
                    tls.write_all(b"k").await?;
                    tls.flush().await?;
                    Ok(id)
                },
                async {
                    let mut tls = client.connect(call, a).await?;
                    let mut byte = [0u8; 1];
                    tls.read_exact(&mut byte).await.map(|_| ())
                }
            )
        };
        tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .expect("the handshake ends")
    }

    #[tokio::test]
    async fn pinned_members_meet_and_the_server_knows_which_member_called() {
        let (_d, ids) = identities(2);
        let pins = BTreeMap::from([
            (1, vec![ids[0].fingerprint()]),
            (3, vec![ids[1].fingerprint()]),
        ]);
        let one = ClusterTls::new(1, &ids[0], &pins).expect("member 1");
        let witness = ClusterTls::new(3, &ids[1], &pins).expect("member 3");
        let (server, client) = handshake(&one, &witness, 1).await;
        assert_eq!(server.expect("accepted"), 3);
        client.expect("connected");
    }

    #[tokio::test]
    async fn an_unpinned_certificate_is_refused_by_the_server() {
        let (_d, ids) = identities(3);
        let pins = BTreeMap::from([
            (1, vec![ids[0].fingerprint()]),
            (2, vec![ids[1].fingerprint()]),
        ]);
        let one = ClusterTls::new(1, &ids[0], &pins).expect("member 1");
        // A stranger that knows the pins (it pins itself as member 2 in its own copy).
        let forged = BTreeMap::from([
            (1, vec![ids[0].fingerprint()]),
            (2, vec![ids[2].fingerprint()]),
        ]);
        let stranger = ClusterTls::new(2, &ids[2], &forged).expect("stranger");
        let (server, client) = handshake(&one, &stranger, 1).await;
        assert!(
            server.is_err(),
            "the server accepted an unpinned certificate"
        );
        assert!(client.is_err(), "the stranger was not told");
    }

    #[tokio::test]
    async fn a_client_talks_only_to_the_certificate_pinned_for_the_member_it_calls() {
        let (_d, ids) = identities(3);
        let pins = BTreeMap::from([
            (1, vec![ids[0].fingerprint()]),
            (2, vec![ids[1].fingerprint()]),
            (3, vec![ids[2].fingerprint()]),
        ]);
        let one = ClusterTls::new(1, &ids[0], &pins).expect("member 1");
        let witness = ClusterTls::new(3, &ids[2], &pins).expect("member 3");
        // Member 1 calls member 2, but the witness answers (a member's address taken over):
        // no log entry may go to it.
        let (_, client) = handshake(&witness, &one, 2).await;
        assert!(client.is_err(), "member 1 spoke TLS with the wrong member");
    }

    #[test]
    fn a_node_whose_own_certificate_is_not_pinned_does_not_start() {
        let (_d, ids) = identities(2);
        let pins = BTreeMap::from([(1, vec![ids[1].fingerprint()])]);
        let refused = ClusterTls::new(1, &ids[0], &pins);
        assert!(
            matches!(refused, Err(TlsError::NotPinned { member: 1, found }) if found == ids[0].fingerprint())
        );
    }

    #[test]
    fn generated_once_then_loaded_with_a_stable_fingerprint() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Identity::load_or_generate(dir.path()).expect("generate");
        let again = Identity::load_or_generate(dir.path()).expect("load");
        assert_eq!(a.fingerprint(), again.fingerprint());
        let text = a.fingerprint().to_string();
        assert_eq!(Fingerprint::parse(&text), Some(a.fingerprint()));
        assert!(
            text.starts_with("sha256:") && text.len() == 7 + 64,
            "{text}"
        );
        assert_eq!(Fingerprint::parse("sha256:00"), None);
        assert_eq!(Fingerprint::parse("md5:00"), None);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(KEY))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key is the owner's only");
    }
}
