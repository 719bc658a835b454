//! Framing SIP messages out of a byte stream (RFC 3261 §18.3), sans-IO.
//!
//! Bytes come in as they arrive; [`Framer::next`] gives back whole messages. The head of a
//! message is parsed once, when its blank line has arrived, and the frame length it gives is
//! remembered: the reads that bring the body in only compare lengths. The search for the
//! blank line resumes where the last one stopped, so a head trickling in byte by byte costs
//! linear time, not quadratic.
//!
//! A double CRLF between messages is a keep-alive ping (RFC 5626 §4.4.1), which the caller
//! answers with a single CRLF (the pong).

use bytes::{Bytes, BytesMut};

use crate::message::{stream_message_len, MAX_HEAD};

/// Most bytes one message may take (head and body) before the connection is closed.
pub const MAX_FRAME: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Bytes),
    /// CRLF CRLF outside a message.
    Ping,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no end of headers within {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("a message of {0} bytes is larger than {MAX_FRAME}")]
    TooLarge(usize),
    #[error("unframeable head: {0}")]
    BadHead(String),
}

#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
    /// Bytes at the front of `buf` already searched for the end of the head.
    scanned: usize,
    /// The length of the message at the front of `buf`, once its head was read.
    expected: Option<usize>,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Part of a message is buffered (the head timeout runs).
    pub fn in_message(&self) -> bool {
        self.buf.iter().any(|b| *b != b'\r' && *b != b'\n')
    }

    /// The next whole frame; `Ok(None)` when more bytes are needed.
    pub fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.expected.is_none() {
            let crlfs = self
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            if self.buf[..crlfs].windows(4).any(|w| w == b"\r\n\r\n") {
                let _ = self.buf.split_to(crlfs);
                self.scanned = 0;
                return Ok(Some(Frame::Ping));
            }
            if crlfs == self.buf.len() {
                return Ok(None);
            }
            if crlfs > 0 {
                let _ = self.buf.split_to(crlfs);
                self.scanned = 0;
            }
            let from = self.scanned.saturating_sub(3);
            if !has_blank_line(&self.buf[from..]) {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_HEAD {
                    return Err(FrameError::HeadTooLarge);
                }
                return Ok(None);
            }
            let len = stream_message_len(&self.buf)
                .map_err(|e| FrameError::BadHead(e.to_string()))?
                .ok_or(FrameError::HeadTooLarge)?;
            if len > MAX_FRAME {
                return Err(FrameError::TooLarge(len));
            }
            self.expected = Some(len);
        }
        match self.expected {
            Some(len) if self.buf.len() >= len => {
                self.expected = None;
                self.scanned = 0;
                Ok(Some(Frame::Message(self.buf.split_to(len).freeze())))
            }
            _ => Ok(None),
        }
    }
}

/// CRLF CRLF, or (leniently, like the datagram parser) LF LF.
fn has_blank_line(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: f1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello";

    fn drain(f: &mut Framer) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(frame) = f.next().expect("frames") {
            out.push(frame);
        }
        out
    }

    #[test]
    fn byte_by_byte_and_back_to_back() {
        let mut f = Framer::default();
        let two = format!("{OPTIONS}{OPTIONS}");
        let mut frames = Vec::new();
        for b in two.as_bytes() {
            f.push(&[*b]);
            frames.extend(drain(&mut f));
        }
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from(OPTIONS)),
                Frame::Message(Bytes::from(OPTIONS))
            ]
        );
        assert!(!f.in_message());
    }

    #[test]
    fn the_head_is_parsed_once_and_the_length_remembered() {
        let mut f = Framer::default();
        let (head, body) = OPTIONS.split_at(OPTIONS.len() - 5);
        f.push(head.as_bytes());
        assert_eq!(f.next(), Ok(None));
        assert_eq!(f.expected, Some(OPTIONS.len()));
        assert!(f.in_message());
        f.push(&body.as_bytes()[..2]);
        assert_eq!(f.next(), Ok(None));
        f.push(&body.as_bytes()[2..]);
        assert_eq!(f.next(), Ok(Some(Frame::Message(Bytes::from(OPTIONS)))));
    }

    #[test]
    fn keep_alive_pings_and_stray_crlf() {
        let mut f = Framer::default();
        f.push(b"\r\n");
        assert_eq!(f.next(), Ok(None));
        assert!(!f.in_message(), "a lone CRLF is no message");
        f.push(b"\r\n");
        assert_eq!(f.next(), Ok(Some(Frame::Ping)));
        f.push(format!("\r\n{OPTIONS}").as_bytes());
        assert_eq!(drain(&mut f), vec![Frame::Message(Bytes::from(OPTIONS))]);
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused() {
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\n");
        let filler = format!("X-Filler: {}\r\n", "y".repeat(1000));
        let mut result = Ok(None);
        for _ in 0..70 {
            f.push(filler.as_bytes());
            result = f.next();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FrameError::HeadTooLarge));

        let mut f = Framer::default();
        f.push(
            OPTIONS
                .replace("Content-Length: 5", "Content-Length: 999999")
                .as_bytes(),
        );
        assert!(matches!(f.next(), Err(FrameError::TooLarge(_))));
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(f.next(), Err(FrameError::BadHead(_))));
    }
}
