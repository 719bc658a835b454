//! SIP over TCP: accept and connect, frame messages by Content-Length (RFC 3261 §18.3), one
//! reader and one writer task per connection. Connections are keyed by the peer address, so
//! a response goes back on the connection its request came in on.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::message::stream_frame_len;

/// Most bytes buffered for one message before the connection is closed as abusive.
const MAX_FRAME: usize = 256 * 1024;

enum Inbound {
    Frame(SocketAddr, Bytes),
    Connected(SocketAddr, mpsc::UnboundedSender<Bytes>),
    Closed(SocketAddr),
}

pub(super) struct Tcp {
    pub(super) local_addr: SocketAddr,
    listener: TcpListener,
    writers: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>,
    inbound_tx: mpsc::UnboundedSender<Inbound>,
    inbound_rx: mpsc::UnboundedReceiver<Inbound>,
}

impl Tcp {
    pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<Tcp> {
        let listener = TcpListener::bind(addr).await?;
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        Ok(Tcp {
            local_addr: listener.local_addr()?,
            listener,
            writers: HashMap::new(),
            inbound_tx,
            inbound_rx,
        })
    }

    /// The next framed message from any connection; accepts new connections meanwhile.
    pub(super) async fn next_frame(&mut self) -> Option<(SocketAddr, Bytes)> {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let w = spawn_connection(stream, peer, self.inbound_tx.clone());
                        self.writers.insert(peer, w);
                    }
                    Err(e) => tracing::debug!(error = %e, "TCP accept failed"),
                },
                msg = self.inbound_rx.recv() => match msg? {
                    Inbound::Frame(peer, bytes) => return Some((peer, bytes)),
                    Inbound::Connected(peer, w) => { self.writers.insert(peer, w); }
                    Inbound::Closed(peer) => { self.writers.remove(&peer); }
                },
            }
        }
    }

    /// Sends on the peer's connection, connecting first when there is none.
    pub(super) fn send(&mut self, peer: SocketAddr, bytes: Bytes) {
        if let Some(w) = self.writers.get(&peer) {
            if w.send(bytes.clone()).is_ok() {
                return;
            }
            self.writers.remove(&peer);
        }
        let inbound = self.inbound_tx.clone();
        tokio::spawn(async move {
            match TcpStream::connect(peer).await {
                Ok(stream) => {
                    let w = spawn_connection(stream, peer, inbound.clone());
                    let _ = w.send(bytes);
                    let _ = inbound.send(Inbound::Connected(peer, w));
                }
                Err(e) => tracing::debug!(%peer, error = %e, "TCP connect failed"),
            }
        });
    }
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
) -> mpsc::UnboundedSender<Bytes> {
    let (mut rd, mut wr) = stream.into_split();
    let (w_tx, mut w_rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        while let Some(b) = w_rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(8192);
        'conn: loop {
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match stream_frame_len(&buf) {
                    Ok(Some(n)) => {
                        let frame = buf.split_to(n).freeze();
                        if inbound.send(Inbound::Frame(peer, frame)).is_err() {
                            break 'conn;
                        }
                    }
                    Ok(None) if buf.len() <= MAX_FRAME => break,
                    _ => {
                        tracing::debug!(%peer, "unframeable SIP over TCP; closing the connection");
                        break 'conn;
                    }
                }
            }
        }
        let _ = inbound.send(Inbound::Closed(peer));
    });
    w_tx
}
