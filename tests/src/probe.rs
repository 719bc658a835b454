//! Raw SIP over UDP from the test: OPTIONS pings and collecting answers with deadlines.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub struct Probe {
    socket: UdpSocket,
    target: SocketAddr,
    counter: u32,
}

impl Probe {
    pub fn new(target: SocketAddr) -> Probe {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind probe socket");
        Probe {
            socket,
            target,
            counter: 0,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("local addr")
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.target).expect("send");
    }

    /// Receives one datagram before `deadline`, or `None`.
    pub fn recv_until(&self, deadline: Instant) -> Option<String> {
        let mut buf = vec![0u8; 65_535];
        let left = deadline.checked_duration_since(Instant::now())?;
        self.socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// An OPTIONS with a fresh Call-ID; returns that Call-ID.
    pub fn send_options(&mut self) -> String {
        self.counter += 1;
        let call_id = format!("probe-{}-{}@test", std::process::id(), self.counter);
        let local = self.local_addr();
        let msg = format!(
            "OPTIONS sip:svi@{t} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p{n}\r\nTo: <sip:svi@{t}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            t = self.target,
            n = self.counter,
        );
        self.send_raw(msg.as_bytes());
        call_id
    }

    /// Sends OPTIONS and collects every datagram until its 200 arrives (a barrier: the engine
    /// answers in order, so whatever it sent before is in the returned list).
    pub fn barrier(&mut self, timeout: Duration) -> Option<Vec<String>> {
        let call_id = self.send_options();
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        while let Some(m) = self.recv_until(deadline) {
            if m.starts_with("SIP/2.0 200") && m.contains(&call_id) {
                return Some(before);
            }
            before.push(m);
        }
        None
    }

    /// Pings with OPTIONS until a 200 arrives or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        self.wait_answer(timeout) == Some(200)
    }

    /// Pings with OPTIONS until a final answer arrives or `timeout` passes; returns its
    /// status, or `None`. A node of an HA pair that is not active answers 503 (the answer
    /// an INVITE would get), and is up all the same.
    pub fn wait_answer(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let call_id = self.send_options();
            let step = Instant::now() + Duration::from_millis(100);
            while let Some(m) = self.recv_until(step.min(deadline)) {
                match status_of(&m) {
                    Some(s) if s >= 200 && m.contains(&call_id) => return Some(s),
                    _ => {}
                }
            }
        }
        None
    }
}

/// Status code of a response text, if it is one.
pub fn status_of(msg: &str) -> Option<u16> {
    msg.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}
