//! `svi health`: a check for Nagios/Centreon/Shinken-style monitors. It sends a SIP OPTIONS
//! to the engine and prints one status line; the exit code is the plugin convention:
//! 0 OK (an answer in time, or the standby's 503), 1 WARNING (slow answer, or 503 from a node
//! shutting down), 2 CRITICAL (no or bad answer), 3 UNKNOWN (cannot check).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::message::{parse_datagram, SipMessage};
use tokio::net::UdpSocket;

pub const OK: u8 = 0;
pub const WARNING: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const UNKNOWN: u8 = 3;

/// Probes `target`; returns the exit code and the status line.
pub async fn check(target: SocketAddr, warn: Duration, timeout: Duration) -> (u8, String) {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal address");
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            return (
                UNKNOWN,
                format!("SVI UNKNOWN - cannot open a UDP socket: {e}"),
            )
        }
    };
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => return (UNKNOWN, format!("SVI UNKNOWN - {e}")),
    };
    let call_id = format!("health-{:016x}@svi", rand_id());
    let msg = format!(
        "OPTIONS sip:svi@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKhealth{id:x};rport\r\nMax-Forwards: 70\r\nFrom: <sip:health@{local}>;tag=h{id:x}\r\nTo: <sip:svi@{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        id = rand_id()
    );
    let started = Instant::now();
    if let Err(e) = socket.send_to(msg.as_bytes(), target).await {
        return (
            CRITICAL,
            format!("SVI CRITICAL - cannot send to {target}: {e}"),
        );
    }
    let mut buf = vec![0u8; 65_535];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
        let n = match got {
            Err(_) => {
                return (
                    CRITICAL,
                    format!("SVI CRITICAL - no SIP answer from {target} within {timeout:?}"),
                )
            }
            Ok(Err(e)) => return (CRITICAL, format!("SVI CRITICAL - {target}: {e}")),
            Ok(Ok((n, _))) => n,
        };
        let Ok(SipMessage::Response(r)) = parse_datagram(&buf[..n]) else {
            continue;
        };
        if r.headers.call_id() != Some(call_id.as_str()) {
            continue;
        }
        let ms = started.elapsed().as_millis();
        let perf = format!(
            "| response_time={}s;{};{}",
            started.elapsed().as_secs_f64(),
            warn.as_secs_f64(),
            timeout.as_secs_f64()
        );
        return match r.status {
            200 if started.elapsed() > warn => (
                WARNING,
                format!("SVI WARNING - SIP answered in {ms} ms {perf}"),
            ),
            200 => (OK, format!("SVI OK - SIP answered in {ms} ms {perf}")),
            // The standby of an HA pair refuses new work as it should (its OPTIONS gets the
            // answer an INVITE would): up, not a warning.
            503 if standby(&r) => (
                OK,
                format!("SVI OK - standby node, SIP answered 503 in {ms} ms {perf}"),
            ),
            503 => (
                WARNING,
                format!("SVI WARNING - {target} answered 503 (standby or shutting down) {perf}"),
            ),
            s => (
                CRITICAL,
                format!("SVI CRITICAL - {target} answered {s} {} {perf}", r.reason),
            ),
        };
    }
}

/// A 503 with the engine's `Warning: 399 svi "standby node"`.
fn standby(r: &sip::message::Response) -> bool {
    r.headers
        .get(&sip::message::HeaderName::Warning)
        .is_some_and(|w| w.contains("svi \"standby node\""))
}

fn rand_id() -> u64 {
    // Uniqueness per probe is all that matters: time and process id are enough.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}
