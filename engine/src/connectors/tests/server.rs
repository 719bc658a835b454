//! A real HTTP/1.1 server on 127.0.0.1 standing for an external system: each connection gets
//! one canned answer chosen from the request, and every request is recorded for the test
//! to inspect. Answering `None` holds the connection open without a word (a hung backend).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub(super) use crate::test_http::RawRequest as Request;

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
    let Some(request) = crate::test_http::read_request(&mut socket).await? else {
        return Ok(());
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
