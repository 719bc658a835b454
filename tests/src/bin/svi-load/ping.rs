//! `svi-load ping`: sends OPTIONS every 200 ms until a 200 comes back or the timeout passes
//! (exit 0 or 1), so a script can wait for an engine to be ready without sleeping blindly.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::args::Args;

pub const USAGE: &str = "svi-load ping --target IP:PORT [--timeout 30s]";

pub fn main(argv: &[String]) -> Result<()> {
    let a = Args::parse(argv, &["target", "timeout"], &[])?;
    let target: SocketAddr = a
        .str("target")
        .ok_or_else(|| anyhow!("--target is required\n{USAGE}"))?
        .parse()?;
    let timeout = a.duration("timeout", Duration::from_secs(30))?;
    if wait_ready(target, timeout)? {
        Ok(())
    } else {
        bail!("{target} did not answer OPTIONS within {timeout:?}")
    }
}

pub fn wait_ready(target: SocketAddr, timeout: Duration) -> Result<bool> {
    let socket = UdpSocket::bind(SocketAddr::new(target.ip(), 0))?;
    let local = socket.local_addr()?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    let mut n = 0u32;
    while Instant::now() < deadline {
        n += 1;
        let call_id = format!("ping-{}-{n}@svi-load", std::process::id());
        let msg = format!(
            "OPTIONS sip:ping@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKping{n};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:load@{local}>;tag=p{n}\r\nTo: <sip:ping@{target}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        socket.send_to(msg.as_bytes(), target)?;
        let step = (Instant::now() + Duration::from_millis(200)).min(deadline);
        loop {
            let left = step.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv_from(&mut buf) {
                Ok((len, _)) => {
                    let text = String::from_utf8_lossy(&buf[..len]);
                    if text.starts_with("SIP/2.0 200") && text.contains(&call_id) {
                        return Ok(true);
                    }
                }
                // Timeout, or the port is not open yet (ICMP unreachable): try again.
                Err(_) => {
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
            }
        }
    }
    Ok(false)
}
