//! A small SMTP server for tests that receives the engine's mails: ESMTP with STARTTLS
//! (rustls, a certificate for 127.0.0.1 signed by a test CA, both made with the `openssl`
//! command), AUTH PLAIN and
//! LOGIN checked against one user, and every accepted message kept with how it came
//! (encrypted or not, who authenticated). It refuses AUTH before STARTTLS and MAIL before
//! AUTH, as a careful real server does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA: headers and body, CRLF line ends, dot-stuffing removed.
    pub data: String,
    /// STARTTLS was done before the message.
    pub tls: bool,
    /// The user that authenticated.
    pub user: Option<String>,
    pub received: Instant,
}

impl Mail {
    /// The body, decoded when it is quoted-printable (how mail programs show it).
    pub fn body(&self) -> String {
        let (head, body) = self.data.split_once("\r\n\r\n").unwrap_or(("", &self.data));
        if !head
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable")
        {
            return body.replace("\r\n", "\n");
        }
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    }

    /// The `Subject:` header (unfolded).
    pub fn subject(&self) -> String {
        let mut lines = self.data.split("\r\n");
        let mut out = String::new();
        while let Some(l) = lines.next() {
            if let Some(s) = l.strip_prefix("Subject: ") {
                out.push_str(s);
                for cont in lines.by_ref() {
                    match cont.strip_prefix(' ') {
                        Some(c) => out.push_str(c),
                        None => break,
                    }
                }
                break;
            }
        }
        out
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    /// The CA the engine must trust (the server's self-signed certificate).
    pub ca: PathBuf,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// Failed AUTH attempts, and commands refused for lack of TLS or AUTH.
    refusals: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

struct Account {
    user: String,
    password: String,
}

impl SmtpSink {
    /// Starts the sink on a free loopback port, accepting `user` / `password`.
    pub fn start(user: &str, password: &str) -> SmtpSink {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.pem");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (the test script installs it)");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        // A CA, and the server's certificate for 127.0.0.1 signed by it.
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=svi test CA"];
        args.extend(ec);
        args.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&args);
        let mut args = vec!["req", "-subj", "/CN=127.0.0.1"];
        args.extend(ec);
        args.extend(["-keyout", "key.pem", "-out", "leaf.csr"]);
        openssl(&args);
        std::fs::write(
            dir.path().join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .expect("cert")
            .collect::<Result<_, _>>()
            .expect("cert pem");
        let key = PrivateKeyDer::from_pem_file(&key).expect("key pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (runtime, listener) = crate::server_runtime();
        let addr = listener.local_addr().expect("addr");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let account = Arc::new(Account {
            user: user.into(),
            password: password.into(),
        });
        {
            let (mails, refusals) = (mails.clone(), refusals.clone());
            runtime.spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let s = Session {
                        acceptor: acceptor.clone(),
                        account: account.clone(),
                        mails: mails.clone(),
                        refusals: refusals.clone(),
                        user: None,
                    };
                    tokio::spawn(s.run(stream));
                }
            });
        }
        SmtpSink {
            addr,
            ca,
            mails,
            refusals,
            _dir: dir,
            _runtime: runtime,
        }
    }

    /// How many mails arrived so far (a mark for `wait_after`).
    pub fn count(&self) -> usize {
        self.mails.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Every mail so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits for a mail numbered `mark` or later that matches `pred`.
    pub fn wait_after(
        &self,
        mark: usize,
        timeout: Duration,
        pred: impl Fn(&Mail) -> bool,
    ) -> Option<Mail> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(m) = self.mails().into_iter().skip(mark).find(|m| pred(m)) {
                return Some(m);
            }
            if Instant::now() > end {
                return None;
            }
            // Mails arrive from the sink's runtime; poll on a short period under a deadline.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

struct Session {
    acceptor: tokio_rustls::TlsAcceptor,
    account: Arc<Account>,
    mails: Arc<Mutex<Vec<Mail>>>,
    refusals: Arc<Mutex<Vec<String>>>,
    user: Option<String>,
}

enum Next<S> {
    StartTls(S),
    Done,
}

impl Session {
    async fn run(mut self, stream: tokio::net::TcpStream) {
        let mut plain = BufReader::new(stream);
        if plain.write_all(b"220 sink ESMTP\r\n").await.is_err() {
            return;
        }
        if let Next::StartTls(s) = self.dialogue(plain, false).await {
            let Ok(tls) = self.acceptor.accept(s.into_inner()).await else {
                return;
            };
            self.dialogue(BufReader::new(tls), true).await;
        }
    }

    fn refuse(&self, what: String) {
        if let Ok(mut r) = self.refusals.lock() {
            r.push(what);
        }
    }

    async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut stream: BufReader<S>,
        tls: bool,
    ) -> Next<BufReader<S>> {
        let s = &mut stream;
        let mut from = String::new();
        let mut to = Vec::new();
        loop {
            let Some(line) = read_line(s).await else {
                return Next::Done;
            };
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                if tls {
                    "250-sink\r\n250 AUTH PLAIN LOGIN\r\n".into()
                } else {
                    "250-sink\r\n250 STARTTLS\r\n".into()
                }
            } else if upper == "STARTTLS" && !tls {
                if s.write_all(b"220 go ahead\r\n").await.is_err() {
                    return Next::Done;
                }
                // The caller takes the stream over; nothing else was sent meanwhile.
                return Next::StartTls(stream);
            } else if upper.starts_with("AUTH") && !tls {
                self.refuse(format!("AUTH before STARTTLS: {line}"));
                "538 encryption required\r\n".into()
            } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
                let arg = line[line.len() - rest.len()..].trim().to_string();
                let arg = if arg.is_empty() {
                    if s.write_all(b"334 \r\n").await.is_err() {
                        return Next::Done;
                    }
                    read_line(s).await.unwrap_or_default()
                } else {
                    arg
                };
                let decoded = decode(&arg);
                let parts: Vec<&str> = decoded.split('\0').collect();
                self.check(parts.get(1).copied(), parts.get(2).copied())
            } else if upper.starts_with("AUTH LOGIN") {
                let _ = s.write_all(b"334 VXNlcm5hbWU6\r\n").await;
                let user = decode(&read_line(s).await.unwrap_or_default());
                let _ = s.write_all(b"334 UGFzc3dvcmQ6\r\n").await;
                let pass = decode(&read_line(s).await.unwrap_or_default());
                self.check(Some(&user), Some(&pass))
            } else if upper.starts_with("MAIL FROM:") {
                if self.user.is_none() {
                    self.refuse(format!("MAIL without AUTH: {line}"));
                    "530 authentication required\r\n".into()
                } else {
                    from = addr(&line["MAIL FROM:".len()..]);
                    to.clear();
                    "250 ok\r\n".into()
                }
            } else if upper.starts_with("RCPT TO:") {
                to.push(addr(&line["RCPT TO:".len()..]));
                "250 ok\r\n".into()
            } else if upper == "DATA" {
                if s.write_all(b"354 end with .\r\n").await.is_err() {
                    return Next::Done;
                }
                let mut data = String::new();
                loop {
                    let Some(l) = read_line(s).await else {
                        return Next::Done;
                    };
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                if let Ok(mut m) = self.mails.lock() {
                    m.push(Mail {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                        tls,
                        user: self.user.clone(),
                        received: Instant::now(),
                    });
                }
                "250 queued\r\n".into()
            } else if upper == "QUIT" {
                let _ = s.write_all(b"221 bye\r\n").await;
                return Next::Done;
            } else if upper == "RSET" || upper == "NOOP" {
                "250 ok\r\n".into()
            } else {
                "502 not implemented\r\n".into()
            };
            if s.write_all(reply.as_bytes()).await.is_err() {
                return Next::Done;
            }
        }
    }

    fn check(&mut self, user: Option<&str>, pass: Option<&str>) -> String {
        if user == Some(self.account.user.as_str()) && pass == Some(self.account.password.as_str())
        {
            self.user = user.map(str::to_string);
            "235 authenticated\r\n".into()
        } else {
            self.refuse(format!("bad credentials for {user:?}"));
            "535 authentication failed\r\n".into()
        }
    }
}

async fn read_line<S: AsyncRead + Unpin>(s: &mut BufReader<S>) -> Option<String> {
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(30), s.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| line.trim_end_matches(['\r', '\n']).to_string())
}

fn decode(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn addr(s: &str) -> String {
    s.trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}
