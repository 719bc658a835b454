//! The authenticated channel between two members: handshake, then MAC'd frames.
//!
//! Handshake (both sides prove they know the shared secret, nothing else is sent before):
//! 1. client -> server: `MAGIC`, a 32-byte random nonce `cn`, the client's node id;
//! 2. server -> client: `MAGIC`, nonce `sn`, server id, `HMAC(secret, "server" cn sn ids)`;
//! 3. client -> server: `HMAC(secret, "client" cn sn ids)`.
//!
//! Each side checks the other's proof in constant time (`verify_slice`) and closes on a
//! mismatch. The fresh nonces make every proof single-use (no replay). Afterwards each
//! direction has its own key `HMAC(secret, "c2s"|"s2c" cn sn)` and every frame carries
//! `HMAC(key, seq header json attachment)` with a per-direction sequence number, so an
//! outsider can neither inject, replay, reorder nor alter a message on an established
//! connection. The channel itself does not encrypt: with pinned member certificates it runs
//! inside TLS (`tls`); without, call records cross the cluster link in clear.
//!
//! Frame: `json_len: u32 BE`, `bin_len: u32 BE`, JSON, binary attachment (snapshot
//! chunks travel raw instead of as a JSON array of numbers), 32-byte tag. Lengths are
//! checked against limits before anything is allocated.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Secret;
use crate::types::NodeId;

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 8] = b"SVIHA\x001\x00";
const TAG: usize = 32;
/// Large enough for a full append-entries batch of call records.
const MAX_JSON: u32 = 32 * 1024 * 1024;
/// A snapshot chunk is 1 MiB; leave room.
const MAX_BIN: u32 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer is not an svi cluster member (bad handshake)")]
    BadMagic,
    #[error("authentication failed: wrong shared secret")]
    BadProof,
    #[error("peer dropped the handshake after our proof (it does not share our secret)")]
    Aborted,
    #[error("peer claims node id {0}, which is not expected here")]
    UnexpectedPeer(NodeId),
    #[error("frame too large ({0} bytes)")]
    TooLarge(u32),
    #[error("frame authentication failed (altered or injected)")]
    BadTag,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
}

impl WireError {
    /// The peer was refused (a bad secret, certificate or id), rather than the connection
    /// failing: what the authentication-failure counter counts.
    pub(crate) fn is_refusal(&self) -> bool {
        match self {
            WireError::Io(_) => false,
            // rustls reports a refused certificate as invalid data.
            WireError::Tls(e) => e.kind() == std::io::ErrorKind::InvalidData,
            _ => true,
        }
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for HMAC.
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m
}

fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; TAG] {
    mac(key, parts).finalize().into_bytes().into()
}

/// An authenticated connection.
pub(crate) struct Channel<S> {
    stream: S,
    send_key: [u8; TAG],
    recv_key: [u8; TAG],
    send_seq: u64,
    recv_seq: u64,
}

struct Nonces {
    cn: [u8; 32],
    sn: [u8; 32],
    client: NodeId,
    server: NodeId,
}

impl Nonces {
    fn proof(&self, secret: &Secret, label: &[u8]) -> HmacSha256 {
        mac(
            secret.bytes(),
            &[
                label,
                &self.cn,
                &self.sn,
                &self.client.to_be_bytes(),
                &self.server.to_be_bytes(),
            ],
        )
    }

    fn key(&self, secret: &Secret, label: &[u8]) -> [u8; TAG] {
        tag(secret.bytes(), &[label, &self.cn, &self.sn])
    }
}

/// Client side: connects as `me` to a server that must be `expect`.
pub(crate) async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    secret: &Secret,
    me: NodeId,
    expect: NodeId,
) -> Result<Channel<S>, WireError> {
    let cn: [u8; 32] = rand::random();
    let mut hello = Vec::with_capacity(48);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&cn);
    hello.extend_from_slice(&me.to_be_bytes());
    stream.write_all(&hello).await?;

    let mut answer = [0u8; 8 + 32 + 8 + TAG];
    stream.read_exact(&mut answer).await?;
    if &answer[..8] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let mut sn = [0u8; 32];
    sn.copy_from_slice(&answer[8..40]);
    let server = NodeId::from_be_bytes(answer[40..48].try_into().map_err(|_| WireError::BadMagic)?);
    let n = Nonces {
        cn,
        sn,
        client: me,
        server,
    };
    n.proof(secret, b"server")
        .verify_slice(&answer[48..])
        .map_err(|_| WireError::BadProof)?;
    if server != expect {
        return Err(WireError::UnexpectedPeer(server));
    }
    let proof = n.proof(secret, b"client").finalize().into_bytes();
    stream.write_all(&proof).await?;
    Ok(Channel {
        stream,
        send_key: n.key(secret, b"c2s"),
        recv_key: n.key(secret, b"s2c"),
        send_seq: 0,
        recv_seq: 0,
    })
}

/// Server side: accepts a client whose id passes `allowed`; returns the channel and its id.
pub(crate) async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    secret: &Secret,
    me: NodeId,
    allowed: impl Fn(NodeId) -> bool,
) -> Result<(Channel<S>, NodeId), WireError> {
    let mut hello = [0u8; 8 + 32 + 8];
    stream.read_exact(&mut hello).await?;
    if &hello[..8] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let mut cn = [0u8; 32];
    cn.copy_from_slice(&hello[8..40]);
    let client = NodeId::from_be_bytes(hello[40..48].try_into().map_err(|_| WireError::BadMagic)?);
    let n = Nonces {
        cn,
        sn: rand::random(),
        client,
        server: me,
    };
    let mut answer = Vec::with_capacity(8 + 32 + 8 + TAG);
    answer.extend_from_slice(MAGIC);
    answer.extend_from_slice(&n.sn);
    answer.extend_from_slice(&me.to_be_bytes());
    answer.extend_from_slice(&n.proof(secret, b"server").finalize().into_bytes());
    stream.write_all(&answer).await?;

    let mut proof = [0u8; TAG];
    stream
        .read_exact(&mut proof)
        .await
        .map_err(|_| WireError::Aborted)?;
    n.proof(secret, b"client")
        .verify_slice(&proof)
        .map_err(|_| WireError::BadProof)?;
    if !allowed(client) {
        return Err(WireError::UnexpectedPeer(client));
    }
    Ok((
        Channel {
            stream,
            send_key: n.key(secret, b"s2c"),
            recv_key: n.key(secret, b"c2s"),
            send_seq: 0,
            recv_seq: 0,
        },
        client,
    ))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Channel<S> {
    pub(crate) async fn send(&mut self, json: &[u8], bin: &[u8]) -> Result<(), WireError> {
        let (jl, bl) = (json.len() as u32, bin.len() as u32);
        if jl > MAX_JSON || json.len() > u32::MAX as usize {
            return Err(WireError::TooLarge(jl));
        }
        if bl > MAX_BIN || bin.len() > u32::MAX as usize {
            return Err(WireError::TooLarge(bl));
        }
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&jl.to_be_bytes());
        header[4..].copy_from_slice(&bl.to_be_bytes());
        let t = tag(
            &self.send_key,
            &[&self.send_seq.to_be_bytes(), &header, json, bin],
        );
        self.send_seq += 1;
        let mut buf = Vec::with_capacity(8 + json.len() + bin.len() + TAG);
        buf.extend_from_slice(&header);
        buf.extend_from_slice(json);
        buf.extend_from_slice(bin);
        buf.extend_from_slice(&t);
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    pub(crate) async fn recv(&mut self) -> Result<(Vec<u8>, Vec<u8>), WireError> {
        let mut header = [0u8; 8];
        self.stream.read_exact(&mut header).await?;
        let jl = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let bl = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if jl > MAX_JSON {
            return Err(WireError::TooLarge(jl));
        }
        if bl > MAX_BIN {
            return Err(WireError::TooLarge(bl));
        }
        let mut json = vec![0u8; jl as usize];
        self.stream.read_exact(&mut json).await?;
        let mut bin = vec![0u8; bl as usize];
        self.stream.read_exact(&mut bin).await?;
        let mut t = [0u8; TAG];
        self.stream.read_exact(&mut t).await?;
        mac(
            &self.recv_key,
            &[&self.recv_seq.to_be_bytes(), &header, &json, &bin],
        )
        .verify_slice(&t)
        .map_err(|_| WireError::BadTag)?;
        self.recv_seq += 1;
        Ok((json, bin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(
        client_secret: &str,
        server_secret: &str,
    ) -> (
        Result<Channel<tokio::io::DuplexStream>, WireError>,
        Result<NodeId, WireError>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let cs = Secret::new(client_secret);
        let ss = Secret::new(server_secret);
        let (c, s) = tokio::join!(client(a, &cs, 1, 2), server(b, &ss, 2, |id| id == 1));
        (c, s.map(|(_, id)| id))
    }

    #[tokio::test]
    async fn same_secret_authenticates_both_ways() {
        let (c, s) = pair("0123456789abcdef", "0123456789abcdef").await;
        assert!(c.is_ok());
        assert_eq!(s.expect("server side"), 1);
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_by_both_sides() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let cs = Secret::new("0123456789abcdef");
        let ss = Secret::new("another secret!!");
        let server_side =
            tokio::spawn(async move { server(b, &ss, 2, |_| true).await.map(|_| ()) });
        let c = client(a, &cs, 1, 2).await;
        assert!(
            matches!(c, Err(WireError::BadProof)),
            "client must reject the server's proof"
        );
        // The client closed without a proof: the server never accepts it.
        assert!(server_side.await.expect("join").is_err());
    }

    #[tokio::test]
    async fn altered_frame_is_rejected() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let secret = Secret::new("0123456789abcdef");
        let s2 = secret.clone();
        let srv = tokio::spawn(async move {
            let (mut ch, _) = server(b, &s2, 2, |_| true).await.expect("server");
            ch.recv().await
        });
        let mut ch = client(a, &secret, 1, 2).await.expect("client");
        // Forge a frame with the right layout but a tag made without the session key.
        let json = br#"{"Hello":null}"#;
        let mut frame = Vec::new();
        frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
        frame.extend_from_slice(&0u32.to_be_bytes());
        frame.extend_from_slice(json);
        frame.extend_from_slice(&[0u8; TAG]);
        ch.stream.write_all(&frame).await.expect("write");
        assert!(matches!(srv.await.expect("join"), Err(WireError::BadTag)));
    }

    #[tokio::test]
    async fn frames_round_trip_with_attachment() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let secret = Secret::new("0123456789abcdef");
        let s2 = secret.clone();
        let srv = tokio::spawn(async move {
            let (mut ch, _) = server(b, &s2, 2, |_| true).await.expect("server");
            let (j, b) = ch.recv().await.expect("recv");
            ch.send(&j, &b).await.expect("echo");
        });
        let mut ch = client(a, &secret, 1, 2).await.expect("client");
        ch.send(b"{}", &[7u8; 5000]).await.expect("send");
        let (j, b) = ch.recv().await.expect("recv");
        assert_eq!((j.as_slice(), b.len()), (&b"{}"[..], 5000));
        srv.await.expect("join");
    }
}
