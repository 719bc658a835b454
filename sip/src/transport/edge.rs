//! The edge: what the driver checks before a message reaches the parser or any state.
//!
//! A datagram from outside `allowed` is refused on its source address alone: nothing is
//! parsed, no transaction is made, nothing is kept but a counter. By default the refusal is
//! silent, so a spoofed INVITE gets no packet back and the engine cannot be used as a
//! reflector; with [`Refusal::Forbidden`] a request (not an ACK, not a response) gets one
//! stateless `403` sent to the datagram's source, without `Server` and without
//! retransmission. Only then is the message parsed, to copy what a response needs.
//!
//! Stream transports (TCP, TLS) apply the same list when a connection is accepted.
//!
//! A flood would log a line per packet: refusals are logged at most once a second, with how
//! many there were since the last line and the latest source.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::acl::Acl;
use crate::message::{parse_datagram, Response, SipMessage};

/// What a request from outside the allow-list gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refusal {
    /// Nothing: the datagram is dropped (or the connection closed) unanswered.
    #[default]
    Silent,
    /// One stateless `403 Forbidden` to the source (requests over UDP only).
    Forbidden,
}

/// Who may talk to the SIP stack, and how the others are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdgeConfig {
    /// An empty list allows nobody.
    pub allowed: Acl,
    pub refusal: Refusal,
}

/// The driver's decision about one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// From an allowed peer: parse and handle it.
    Pass,
    /// Refused, unanswered.
    Drop,
    /// Refused with these bytes (a stateless 403) sent back to the source.
    Answer(Bytes),
}

const LOG_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Gate {
    config: EdgeConfig,
    /// Refusals since the driver started (datagrams and connections).
    refused: u64,
    /// Refusals not yet reported in a log line.
    unlogged: u64,
    last_log: Option<Instant>,
}

impl Gate {
    pub(crate) fn new(config: EdgeConfig) -> Gate {
        Gate {
            config,
            refused: 0,
            unlogged: 0,
            last_log: None,
        }
    }

    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    pub(crate) fn allows(&self, from: SocketAddr) -> bool {
        self.config.allowed.allows(from.ip())
    }

    /// A datagram from `from`, checked before it is parsed.
    pub(crate) fn check_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Verdict {
        if self.allows(from) {
            return Verdict::Pass;
        }
        self.note_refusal(now, from, "datagram");
        match self.config.refusal {
            Refusal::Silent => Verdict::Drop,
            Refusal::Forbidden => forbidden(bytes).map_or(Verdict::Drop, Verdict::Answer),
        }
    }

    /// A connection accepted from `from` (TCP, TLS): false when it must be closed at once.
    pub(crate) fn check_connection(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.allows(from) {
            return true;
        }
        self.note_refusal(now, from, "connection");
        false
    }

    fn note_refusal(&mut self, now: Instant, from: SocketAddr, what: &'static str) {
        self.refused += 1;
        self.unlogged += 1;
        if self
            .last_log
            .is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            refused = self.unlogged,
            last_source = %from.ip(),
            last = what,
            "SIP from outside sip.allowed_networks refused"
        );
        self.unlogged = 0;
        self.last_log = Some(now);
    }
}

/// The stateless 403 for a refused datagram: only for a request other than ACK, decided on
/// its first token before anything else is read.
fn forbidden(bytes: &[u8]) -> Option<Bytes> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let first = bytes[start..].split(|b| *b == b' ').next()?;
    if first.starts_with(b"SIP/") || first == b"ACK" {
        return None;
    }
    let Ok(SipMessage::Request(request)) = parse_datagram(bytes) else {
        return None;
    };
    let response = Response::for_request(&request, 403).with_to_tag(&crate::endpoint::new_tag());
    Some(Bytes::from(response.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Network;
    use crate::message::HeaderName;

    fn gate(refusal: Refusal) -> Gate {
        Gate::new(EdgeConfig {
            allowed: Acl::new(vec![Network::parse("127.0.0.1/32").expect("net")]),
            refusal,
        })
    }

    fn invite() -> Vec<u8> {
        b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKe1\r\nFrom: <sip:a@192.0.2.9>;tag=f\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: edge-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_vec()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn allowed_sources_pass_and_others_are_dropped_silently() {
        let mut g = gate(Refusal::Silent);
        let t0 = Instant::now();
        assert_eq!(
            g.check_datagram(t0, addr("127.0.0.1:5070"), &invite()),
            Verdict::Pass
        );
        assert_eq!(
            g.check_datagram(t0, addr("127.0.0.2:5070"), &invite()),
            Verdict::Drop
        );
        assert!(g.check_connection(t0, addr("127.0.0.1:40000")));
        assert!(!g.check_connection(t0, addr("[::1]:40000")));
        assert_eq!(g.refused(), 2);
    }

    #[test]
    fn forbidden_answers_requests_once_without_server() {
        let mut g = gate(Refusal::Forbidden);
        let t0 = Instant::now();
        let Verdict::Answer(bytes) = g.check_datagram(t0, addr("127.0.0.2:5070"), &invite()) else {
            panic!("a 403")
        };
        let Ok(SipMessage::Response(r)) = parse_datagram(&bytes) else {
            panic!("a response")
        };
        assert_eq!(r.status, 403);
        assert_eq!(r.headers.call_id(), Some("edge-1"));
        assert!(r.headers.get(&HeaderName::Server).is_none());
        assert!(r.headers.to_addr().expect("To").tag().is_some());
        // ACKs, responses and garbage get nothing.
        let ack = String::from_utf8(invite())
            .expect("utf8")
            .replace("INVITE", "ACK");
        for refused in [
            ack.into_bytes(),
            b"SIP/2.0 200 OK\r\n\r\n".to_vec(),
            b"\x00\x01garbage".to_vec(),
        ] {
            assert_eq!(
                g.check_datagram(t0, addr("127.0.0.2:5070"), &refused),
                Verdict::Drop
            );
        }
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second() {
        let mut g = gate(Refusal::Silent);
        let t0 = Instant::now();
        for i in 0..1000u64 {
            g.check_datagram(t0 + Duration::from_millis(i), addr("127.0.0.2:1"), b"x");
        }
        // One line at t0 (count 1), one at t0 + 1 s (the 1,000 since): the counter says so.
        assert_eq!(g.last_log, Some(t0));
        assert_eq!(g.unlogged, 999);
        g.check_datagram(t0 + Duration::from_secs(1), addr("127.0.0.2:1"), b"x");
        assert_eq!(
            (g.last_log, g.unlogged, g.refused()),
            (Some(t0 + Duration::from_secs(1)), 0, 1001)
        );
    }
}
