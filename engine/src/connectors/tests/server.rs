//! A real HTTP/1.1 server on 127.0.0.1 standing for an external system: each connection gets
//! one canned answer chosen from the request, and every request is recorded for the test
//! to inspect. Answering `None` holds the connection open without a word (a hung backend).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Debug)]
pub(super) struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(super) struct Server {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<Request>,
}

impl Server {
    pub(super) async fn next_request(&mut self) -> Request {
        self.requests
            .recv()
            .await
            .expect("the server recorded a request")
    }
}

type Reply = dyn Fn(&Request) -> Option<(u16, String)> + Send + Sync;

/// Starts a server answering each request with `reply(request)`: `(status, JSON body)`.
pub(super) async fn serve(
    reply: impl Fn(&Request) -> Option<(u16, String)> + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    let (tx, requests) = mpsc::unbounded_channel();
    let reply: Arc<Reply> = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (tx, reply) = (tx.clone(), reply.clone());
            tokio::spawn(async move {
                let _ = answer(socket, tx, &*reply).await;
            });
        }
    });
    Server { addr, requests }
}

async fn answer(
    mut socket: TcpStream,
    tx: mpsc::UnboundedSender<Request>,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (
        start.next().unwrap_or_default().to_string(),
        start.next().unwrap_or_default().to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    let answer = reply(&request);
    let _ = tx.send(request);
    match answer {
        Some((status, body)) => {
            let response = format!(
                "HTTP/1.1 {status} Canned\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await?;
            socket.shutdown().await
        }
        None => {
            // A backend that accepted the connection and hangs: keep it open, say nothing.
            std::future::pending::<()>().await;
            Ok(())
        }
    }
}
