//! The listeners: HTTPS (rustls; handshakes run in their own tasks with a deadline, so a
//! slow or silent client never holds the accept loop), and optionally a plain-HTTP port
//! that only redirects to HTTPS. Nothing else is ever served in clear.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::Peer;
use crate::tls::{Identity, TlsError};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; past it, new connections wait in the kernel's backlog.
const HANDSHAKES_IN_FLIGHT: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("admin listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Accepted and handshaken TLS connections, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    _accept: AbortOnDrop,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_IN_FLIGHT));
        let accept = tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and the like: wait a little rather than spin.
                        tracing::warn!(error = %e, "admin: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "admin: TLS handshake refused")
                        }
                        Err(_) => tracing::debug!(%peer, "admin: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            _accept: AbortOnDrop(accept),
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task ended (the runtime is stopping): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The running listeners.
pub struct Server {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    identity: Arc<Identity>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Server {
    /// Binds and serves `app` over HTTPS on `listen`, and the redirect on `redirect`.
    pub async fn start(
        app: Router,
        listen: SocketAddr,
        redirect: Option<SocketAddr>,
        identity: Arc<Identity>,
    ) -> Result<Server, ServeError> {
        let tcp = TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: listen,
                source,
            })?;
        let acceptor = TlsAcceptor::from(identity.server_config()?);
        let listener = TlsListener::new(tcp, acceptor).map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
        let https = listener.local;
        let mut tasks = vec![tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<Peer>();
            if let Err(e) = axum::serve(listener, service).await {
                tracing::error!(error = %e, "admin: HTTPS server stopped");
            }
        })
        .abort_handle()];
        let mut http = None;
        if let Some(addr) = redirect {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?;
            http = tcp.local_addr().ok();
            let port = https.port();
            let to_https = Router::new().fallback(move |req: axum::extract::Request| async move {
                redirect_to_https(req.headers().get(header::HOST), req.uri(), port)
            });
            tasks.push(
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(tcp, to_https).await {
                        tracing::error!(error = %e, "admin: HTTP redirect stopped");
                    }
                })
                .abort_handle(),
            );
        }
        tracing::info!(%https, http = ?http, "admin API ready");
        Ok(Server {
            https,
            http,
            identity,
            tasks,
        })
    }

    /// Reads the certificate and key files again (SIGHUP).
    pub fn reload_certificate(&self) -> Result<(), TlsError> {
        self.identity.reload()
    }

    /// Stops listening (connections in progress end with the process).
    pub fn shutdown(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// 308 to the same host and path over HTTPS. The host is the one the client asked for
/// (without its port), kept only if it is a plain host name or address.
fn redirect_to_https(host: Option<&header::HeaderValue>, uri: &Uri, port: u16) -> Response {
    let host = host
        .and_then(|h| h.to_str().ok())
        .map(|h| match h.rsplit_once(':') {
            Some((name, p)) if !name.ends_with(']') || h.starts_with('[') => {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    h
                }
            }
            _ => h,
        })
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        });
    let Some(host) = host else {
        return (StatusCode::BAD_REQUEST, "HTTPS only; no usable Host header").into_response();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("https://{host}:{port}{path}");
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(host: &str, path: &str) -> Option<String> {
        let h = header::HeaderValue::from_str(host).ok();
        let r = redirect_to_https(h.as_ref(), &path.parse().expect("uri"), 8443);
        r.headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_string())
    }

    #[test]
    fn redirects_keep_host_and_path_and_refuse_odd_hosts() {
        assert_eq!(
            loc("svi.example:8080", "/api/v1/queues?x=1").as_deref(),
            Some("https://svi.example:8443/api/v1/queues?x=1")
        );
        assert_eq!(
            loc("127.0.0.1", "/").as_deref(),
            Some("https://127.0.0.1:8443/")
        );
        assert_eq!(loc("[::1]:80", "/").as_deref(), Some("https://[::1]:8443/"));
        assert_eq!(loc("evil.example/x?", "/"), None);
        assert_eq!(loc("", "/"), None);
    }
}
