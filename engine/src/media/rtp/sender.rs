//! The sending half of an RTP session (RFC 3550 section 5.1).
//!
//! SSRC, first sequence number and first timestamp are random so that a restarted stream is
//! not mistaken for the old one and known-plaintext guesses are harder (RFC 3550 5.1). The
//! media clock (`clock`) advances by the samples of every 20 ms slot, whether or not a packet
//! is sent in it: a receiver then places audio after a pause or a DTMF event at the right
//! time. The marker bit flags the first packet of a talk spurt (RFC 3551 section 4.1): here,
//! the first packet of the stream and the first audio packet after a DTMF event.

use rtp_rs::{RtpPacketBuilder, Seq};

/// Sequence numbers, media clock and counters of the stream we send.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_seq: u16,
    clock: u32,
    spurt_start: bool,
    packets_sent: u64,
    octets_sent: u64,
}

impl Default for RtpSender {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpSender {
    /// A sender with random SSRC, initial sequence number and timestamp.
    pub fn new() -> Self {
        Self::with_initial(rand::random(), rand::random(), rand::random())
    }

    /// A sender with chosen initial values, for tests and reproducible traces.
    pub fn with_initial(ssrc: u32, first_seq: u16, first_timestamp: u32) -> Self {
        RtpSender {
            ssrc,
            next_seq: first_seq,
            clock: first_timestamp,
            spurt_start: true,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// RTP timestamp of the current 20 ms slot.
    pub fn clock(&self) -> u32 {
        self.clock
    }

    /// Moves the media clock on by `samples`, at the end of every slot.
    pub fn advance(&mut self, samples: u32) {
        self.clock = self.clock.wrapping_add(samples);
    }

    /// Marks the next audio packet as the start of a talk spurt.
    pub fn start_talk_spurt(&mut self) {
        self.spurt_start = true;
    }

    /// Builds an audio packet for the current slot; the marker is set on a talk-spurt start.
    pub fn audio(&mut self, payload_type: u8, payload: &[u8]) -> Vec<u8> {
        let marker = std::mem::take(&mut self.spurt_start);
        self.packet(payload_type, marker, self.clock, payload)
    }

    /// Builds a packet with an explicit marker and timestamp (RFC 4733 events keep the
    /// timestamp of the event start), taking the next sequence number.
    pub fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let header = RtpPacketBuilder::new()
            .payload_type(payload_type & 0x7F)
            .marked(marker)
            .sequence(Seq::from(seq))
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .payload(payload);
        let mut bytes = vec![0u8; header.target_length()];
        // Building is infallible here: the buffer has the target length and the payload type
        // was masked to 7 bits, the only two conditions `build_into` checks.
        let len = header.build_into_unchecked(&mut bytes);
        bytes.truncate(len);
        self.packets_sent += 1;
        self.octets_sent += payload.len() as u64;
        bytes
    }

    /// Packets built so far (the RTCP sender's packet count).
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Payload octets built so far (the RTCP sender's octet count).
    pub fn octets_sent(&self) -> u64 {
        self.octets_sent
    }
}

#[cfg(test)]
mod tests {
    use rtp_rs::RtpReader;

    use super::*;

    #[test]
    fn audio_packets_progress_and_mark_only_the_spurt_start() {
        let mut sender = RtpSender::with_initial(0x1234_5678, u16::MAX, u32::MAX - 100);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let bytes = sender.audio(8, &[0xD5; 160]);
            sender.advance(160);
            let packet = RtpReader::new(&bytes).expect("built packets parse");
            seen.push((
                u16::from(packet.sequence_number()),
                packet.timestamp(),
                packet.mark(),
                packet.payload_type(),
                packet.ssrc(),
                packet.payload().len(),
            ));
        }
        assert_eq!(
            seen[0],
            (u16::MAX, u32::MAX - 100, true, 8, 0x1234_5678, 160)
        );
        assert_eq!(seen[1], (0, 59, false, 8, 0x1234_5678, 160));
        assert_eq!(seen[2], (1, 219, false, 8, 0x1234_5678, 160));
        assert_eq!(sender.packets_sent(), 3);
        assert_eq!(sender.octets_sent(), 480);

        sender.start_talk_spurt();
        let bytes = sender.audio(8, &[0xD5; 160]);
        assert!(RtpReader::new(&bytes).expect("parses").mark());
    }

    #[test]
    fn random_senders_differ() {
        let a = RtpSender::new();
        let b = RtpSender::new();
        assert!(a.ssrc() != b.ssrc() || a.clock() != b.clock());
    }
}
