//! What the media fuzz targets do with their input, shared by the coverage-guided targets in
//! `fuzz/` (`scripts/fuzz.sh`) and the regression tests that replay every input they found
//! (this module's tests, through `sip::fuzzing::replay`). Each function must return normally
//! for any input.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::Codec;
use super::dtmf::rfc4733::{EventPayload, Rfc4733Receiver};
use super::rtp::rtcp;
use super::stream::{MediaCommand, MediaParams, MediaStream};
use super::DtmfDigit;
use crate::acl::{Acl, Network};

/// A sequence of datagrams into one call leg's media stream, the way the media worker
/// feeds it: RTP (header, sequence tracking, G.711 decoding, in-band and RFC 4733 DTMF,
/// latching), RTCP, and garbage, with ticks in between.
///
/// Input layout: byte 0 picks the codec and the telephone-event payload type; then each
/// datagram is a length byte, a source byte (one of four sources, allowed or not) and that
/// many bytes; a zero length is a 20 ms tick.
pub fn rtp_stream(data: &[u8]) {
    let Some((&setup, mut rest)) = data.split_first() else {
        return;
    };
    let allowed = Arc::new(Acl::new(vec![
        Network::parse("192.0.2.0/24").expect("valid network")
    ]));
    let sources: [SocketAddr; 4] = [
        ([192, 0, 2, 1], 4000).into(),
        ([192, 0, 2, 1], 4002).into(),
        ([192, 0, 2, 9], 4000).into(),
        ([198, 51, 100, 1], 4000).into(),
    ];
    let params = MediaParams {
        codec: if setup & 1 == 0 {
            Codec::Pcma
        } else {
            Codec::Pcmu
        },
        remote: (setup & 2 == 0).then_some(sources[0]),
        telephone_event_pt: (setup & 4 == 0).then_some(96 + (setup >> 3) % 32),
        rtp_timeout: Duration::from_secs(1),
        srtp: None,
    };
    let mut now = Instant::now();
    let mut stream = MediaStream::new(now, params, allowed);
    if let Some(digit) = DtmfDigit::from_event_code(setup % 16) {
        stream.handle_command(
            now,
            MediaCommand::SendDtmf {
                digit,
                duration: Duration::from_millis(60),
            },
        );
    }
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            now += Duration::from_millis(20);
            stream.tick(now);
            rest = tail;
            continue;
        }
        let Some((&source, tail)) = tail.split_first() else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        stream.handle_datagram(now, sources[usize::from(source % 4)], datagram);
        rest = tail;
    }
    now += Duration::from_millis(20);
    stream.tick(now);
    while stream.poll_transmit().is_some() {}
    while stream.poll_event().is_some() {}
    while stream.poll_inbound_audio().is_some() {}
    let stats = stream.stats();
    assert!(stats.remote.is_none_or(|r| r.ip() != sources[3].ip()));
}

/// An RTCP datagram: the compound parser keeps every well-formed packet before any damage,
/// and never claims more packets than the datagram has 4-byte words.
pub fn rtcp(data: &[u8]) {
    let _ = rtcp::is_rtcp(data);
    let summary = rtcp::parse(data);
    assert!(summary.packets.len() <= data.len() / 4);
}

/// RFC 4733 telephone-event payloads: each record is a 4-byte RTP timestamp and a 4-byte
/// payload, fed to one receiver; a payload that parses prints back to the same bytes, less
/// the reserved bit (which receivers ignore, RFC 4733 section 2.3).
pub fn rfc4733(data: &[u8]) {
    let mut receiver = Rfc4733Receiver::new();
    for record in data.chunks(8) {
        let (ts, payload) = record.split_at(record.len().min(4));
        let mut timestamp = [0u8; 4];
        timestamp[..ts.len()].copy_from_slice(ts);
        if let (Some(event), Some(wire)) = (EventPayload::parse(payload), payload.get(..4)) {
            let expected = [wire[0], wire[1] & !0x40, wire[2], wire[3]];
            assert_eq!(event.to_bytes(), expected);
        }
        let _ = receiver.on_packet(u32::from_be_bytes(timestamp), payload);
    }
}

#[cfg(test)]
mod tests {
    use sip::fuzzing::replay;

    #[test]
    fn rtp_stream_recorded_inputs() {
        replay("rtp_stream", super::rtp_stream);
    }

    #[test]
    fn rtcp_recorded_inputs() {
        replay("rtcp", super::rtcp);
    }

    #[test]
    fn rfc4733_recorded_inputs() {
        replay("rfc4733", super::rfc4733);
    }
}
