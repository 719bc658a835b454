//! Reading one HTTP/1.1 request off a socket, for the test servers that stand for external
//! systems: the connectors' canned backend (`connectors::tests::server`) and the reference
//! access-control server of the end-to-end tests (`svi_tests::acs`, through the
//! `test-servers` feature). Never used for the engine's own traffic.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head read (a larger one is dropped).
const MAX_HEAD: usize = 64 * 1024;

/// A request as received: nothing decoded.
#[derive(Debug)]
pub struct RawRequest {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The next request on `socket`, its body as long as `content-length` says (or until the
/// peer closes); None when the peer closed first or sent a head over 64 KiB.
pub async fn read_request<S: AsyncRead + Unpin>(
    socket: &mut S,
) -> std::io::Result<Option<RawRequest>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_HEAD {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or_default().split(' ');
    let method = start.next().unwrap_or_default().to_string();
    let target = start.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut request = RawRequest {
        method,
        target,
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while request.body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        request.body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_reads_with_its_body_and_a_closed_peer_reads_as_none() {
        let wire = b"POST /alarms/a-7/ack?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n{\"by\":\"42\"}";
        let r = read_request(&mut &wire[..])
            .await
            .expect("io")
            .expect("a request");
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/alarms/a-7/ack?x=1")
        );
        assert_eq!(r.header("content-length"), Some("11"));
        assert_eq!(r.body, br#"{"by":"42"}"#);
        assert!(read_request(&mut &b"GET / HTTP/1.1\r\n"[..])
            .await
            .expect("io")
            .is_none());
    }
}
