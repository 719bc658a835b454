//! Alarm mails over SMTP (`lettre`, rustls with the ring provider, the OS trust store plus an
//! optional CA file). Encryption is required: STARTTLS (port 587, the default) or implicit
//! TLS (port 465). A plain connection is accepted only to a relay on the loopback address
//! (a local MTA), and never with a password.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption: a relay on the loopback address only, without credentials.
    None,
}

/// `[alarms.mail]`, checked. (`Debug` leaves the password out.)
#[derive(Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub server: String,
    pub port: u16,
    pub tls: MailTls,
    pub username: Option<String>,
    /// The password itself, or the environment variable that holds it (read at start).
    pub password: Option<String>,
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// Extra trusted CA certificate(s), PEM (a site's own CA, or a test's).
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_env", &self.password_env)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("`{0}` is not a mail address")]
    Address(String),
    #[error("alarms.mail.password_env: environment variable `{0}` is not set")]
    MissingPassword(String),
    #[error("alarms.mail.ca_file {path}: {problem}")]
    Ca { path: PathBuf, problem: String },
    #[error("mail server {server}: {source}")]
    Smtp {
        server: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("cannot build the mail: {0}")]
    Message(String),
}

/// Checks a mail address (`svi@example.org` or `Alarms <svi@example.org>`).
pub fn check_address(a: &str) -> Result<(), MailError> {
    a.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|_| MailError::Address(a.to_string()))
}

/// Sends alarm mails to the configured recipients.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({} -> {} recipients)", self.server, self.to.len())
    }
}

impl Mailer {
    /// Builds the transport (no connection yet); `node` names this node in SMTP's EHLO.
    pub fn new(cfg: &MailConfig, node: &str) -> Result<Mailer, MailError> {
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|_| MailError::Address(a.to_string()))
        };
        let from = parse(&cfg.from)?;
        let to = cfg
            .to
            .iter()
            .map(|a| parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        let password = match (&cfg.password, &cfg.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => {
                Some(std::env::var(var).map_err(|_| MailError::MissingPassword(var.clone()))?)
            }
            (None, None) => None,
        };
        let smtp_err = |source| MailError::Smtp {
            server: cfg.server.clone(),
            source,
        };
        let tls = match cfg.tls {
            MailTls::None => Tls::None,
            MailTls::StartTls | MailTls::Tls => {
                // lettre's rustls uses the process-wide provider (as reqwest does).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let mut params = TlsParameters::builder(cfg.server.clone());
                if let Some(path) = &cfg.ca_file {
                    let ca_err = |problem: String| MailError::Ca {
                        path: path.clone(),
                        problem,
                    };
                    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| ca_err(e.to_string()))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(smtp_err)?;
                if cfg.tls == MailTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout))
            .hello_name(ClientId::Domain(hello_name(node)));
        if let (Some(user), Some(pass)) = (&cfg.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            to,
            server: format!("{}:{}", cfg.server, cfg.port),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one mail to every recipient.
    pub async fn send(&self, subject: &str, body: &str) -> Result<(), MailError> {
        let mut m = Message::builder().from(self.from.clone());
        for to in &self.to {
            m = m.to(to.clone());
        }
        let message = m
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|source| MailError::Smtp {
                server: self.server.clone(),
                source,
            })
    }
}

/// A host name for EHLO made of the node's name (letters, digits, dots and dashes).
fn hello_name(node: &str) -> String {
    let name: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "svi".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("svi@example.org").is_ok());
        assert!(check_address("Alarms <svi@example.org>").is_ok());
        for bad in ["", "svi", "a@", "<>"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert_eq!(hello_name("node a/1"), "node-a-1");
    }
}
