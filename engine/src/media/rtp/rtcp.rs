//! Just enough RTCP: recognise it, read sender and receiver reports, build a receiver report.
//!
//! RTCP may arrive on the RTCP port (RTP port + 1) or, with `a=rtcp-mux`, on the RTP port
//! itself; RFC 5761 section 4 tells them apart by the second byte, which for RTCP is a packet
//! type in 200..=204 (RTP payload types 72..=76 with the marker bit are avoided for that
//! reason). Reports are counted and logged for diagnostics; nothing here ever fails a call,
//! so parsing stops quietly at the first malformed packet of a compound datagram.

use super::receiver::SourceReport;

/// RTCP packet types (RFC 3550 section 12.1).
const SR: u8 = 200;
const RR: u8 = 201;
const BYE: u8 = 203;
const APP: u8 = 204;

/// Whether a datagram is RTCP rather than RTP (RFC 5761 section 4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (SR..=APP).contains(&datagram[1])
}

/// One report block of an SR or RR: how the sender of the report receives `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on (normally our SSRC).
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24 bits on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report: the remote is sending media.
    SenderReport {
        /// The reporting sender.
        ssrc: u32,
        /// NTP timestamp of the report (for LSR/DLSR round-trip estimation).
        ntp: u64,
        /// Packets the remote sent.
        packet_count: u32,
        /// Payload octets the remote sent.
        octet_count: u32,
        /// How the remote receives other sources.
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// How the remote receives other sources.
        reports: Vec<ReportBlock>,
    },
    /// The remote is leaving the session.
    Bye {
        /// Sources leaving.
        ssrcs: Vec<u32>,
    },
    /// SDES (202), APP (204) or an unknown type, only counted.
    Other {
        /// The RTCP packet type.
        packet_type: u8,
    },
}

/// What a datagram held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtcpSummary {
    /// Packets parsed, in order.
    pub packets: Vec<RtcpPacket>,
    /// Bytes were left that did not form a valid packet.
    pub truncated: bool,
}

/// Reads a compound RTCP datagram, keeping every well-formed packet before any damage.
pub fn parse(datagram: &[u8]) -> RtcpSummary {
    let mut summary = RtcpSummary::default();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some(header) = rest.get(..4) else {
            summary.truncated = true;
            break;
        };
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let Some(packet) = rest.get(..len).filter(|_| header[0] >> 6 == 2) else {
            summary.truncated = true;
            break;
        };
        rest = &rest[len..];
        let count = usize::from(header[0] & 0x1F);
        let body = &packet[4..];
        let parsed = match header[1] {
            SR => sender_report(body, count),
            RR => receiver_report(body, count),
            BYE => Some(RtcpPacket::Bye {
                ssrcs: (0..count).map_while(|i| be32(body, 4 * i)).collect(),
            }),
            packet_type => Some(RtcpPacket::Other { packet_type }),
        };
        match parsed {
            Some(packet) => summary.packets.push(packet),
            None => {
                summary.truncated = true;
                break;
            }
        }
    }
    summary
}

fn sender_report(body: &[u8], count: usize) -> Option<RtcpPacket> {
    let ssrc = be32(body, 0)?;
    let ntp = (u64::from(be32(body, 4)?) << 32) | u64::from(be32(body, 8)?);
    Some(RtcpPacket::SenderReport {
        ssrc,
        ntp,
        packet_count: be32(body, 16)?,
        octet_count: be32(body, 20)?,
        reports: report_blocks(body.get(24..)?, count)?,
    })
}

fn receiver_report(body: &[u8], count: usize) -> Option<RtcpPacket> {
    Some(RtcpPacket::ReceiverReport {
        ssrc: be32(body, 0)?,
        reports: report_blocks(body.get(4..)?, count)?,
    })
}

fn report_blocks(bytes: &[u8], count: usize) -> Option<Vec<ReportBlock>> {
    (0..count)
        .map(|i| {
            let block = bytes.get(24 * i..24 * (i + 1))?;
            let lost = be32(block, 4)?;
            // Sign-extend the 24-bit cumulative loss.
            let cumulative_lost = ((lost << 8) as i32) >> 8;
            Some(ReportBlock {
                ssrc: be32(block, 0)?,
                fraction_lost: block[4],
                cumulative_lost,
                highest_seq: be32(block, 8)?,
                jitter: be32(block, 12)?,
            })
        })
        .collect()
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Builds an RR from `own_ssrc`, with a report block about the remote source if there is one.
/// `lsr`/`dlsr` are the middle 32 bits of the last SR's NTP time and the delay since it in
/// 1/65536 s (RFC 3550 6.4.1), 0 when no SR was received.
pub fn build_receiver_report(own_ssrc: u32, source: Option<(SourceReport, u32, u32)>) -> Vec<u8> {
    let blocks = usize::from(source.is_some());
    let words = 1 + 6 * blocks; // length field: 32-bit words after the first, minus one
    let mut out = Vec::with_capacity(8 + 24 * blocks);
    out.push(0x80 | blocks as u8);
    out.push(RR);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&own_ssrc.to_be_bytes());
    if let Some((report, lsr, dlsr)) = source {
        out.extend_from_slice(&report.ssrc.to_be_bytes());
        let lost = (u32::from(report.fraction_lost) << 24) | (report.cumulative_lost & 0xFF_FFFF);
        out.extend_from_slice(&lost.to_be_bytes());
        out.extend_from_slice(&report.extended_highest_seq.to_be_bytes());
        out.extend_from_slice(&report.jitter.to_be_bytes());
        out.extend_from_slice(&lsr.to_be_bytes());
        out.extend_from_slice(&dlsr.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender_report_bytes() -> Vec<u8> {
        let mut sr = vec![0x81, SR, 0, 12];
        sr.extend_from_slice(&0xAABB_CCDDu32.to_be_bytes()); // sender SSRC
        sr.extend_from_slice(&[0, 0, 0, 1, 0x80, 0, 0, 0]); // NTP
        sr.extend_from_slice(&160u32.to_be_bytes()); // RTP timestamp
        sr.extend_from_slice(&50u32.to_be_bytes()); // packets
        sr.extend_from_slice(&8000u32.to_be_bytes()); // octets
        sr.extend_from_slice(&0x1111_2222u32.to_be_bytes()); // block: source
        sr.extend_from_slice(&[0x10, 0xFF, 0xFF, 0xFF]); // 1/16 lost, cumulative -1
        sr.extend_from_slice(&65_600u32.to_be_bytes());
        sr.extend_from_slice(&12u32.to_be_bytes());
        sr.extend_from_slice(&[0; 8]); // LSR, DLSR
        sr
    }

    #[test]
    fn recognises_rtcp_types_only() {
        assert!(is_rtcp(&sender_report_bytes()));
        assert!(!is_rtcp(&[0x80, 0x08, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])); // RTP PCMA
        assert!(!is_rtcp(&[0x80, 0xE5, 0, 1, 0, 0, 0, 0])); // RTP marker + PT 101
        assert!(!is_rtcp(&[0x80, SR, 0])); // too short
    }

    #[test]
    fn parses_compound_sr_sdes_bye() {
        let mut datagram = sender_report_bytes();
        datagram.extend_from_slice(&[0x81, 202, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD]);
        datagram.extend_from_slice(&[0x81, BYE, 0, 1, 0xAA, 0xBB, 0xCC, 0xDD]);
        let summary = parse(&datagram);
        assert!(!summary.truncated);
        assert_eq!(summary.packets.len(), 3);
        let RtcpPacket::SenderReport {
            ssrc,
            packet_count,
            octet_count,
            reports,
            ..
        } = &summary.packets[0]
        else {
            panic!("first packet is the SR");
        };
        assert_eq!(
            (*ssrc, *packet_count, *octet_count),
            (0xAABB_CCDD, 50, 8000)
        );
        assert_eq!(reports[0].cumulative_lost, -1);
        assert_eq!(reports[0].fraction_lost, 0x10);
        assert_eq!(reports[0].highest_seq, 65_600);
        assert_eq!(summary.packets[1], RtcpPacket::Other { packet_type: 202 });
        assert_eq!(
            summary.packets[2],
            RtcpPacket::Bye {
                ssrcs: vec![0xAABB_CCDD]
            }
        );
    }

    #[test]
    fn damage_never_fails() {
        let good = sender_report_bytes();
        for cut in 0..good.len() {
            let summary = parse(&good[..cut]);
            assert!(summary.packets.is_empty());
            assert_eq!(summary.truncated, cut > 0);
        }
        // Report count larger than the packet holds.
        let mut lying = good.clone();
        lying[0] = 0x85;
        assert!(parse(&lying).truncated);
    }

    #[test]
    fn built_receiver_report_parses_back() {
        let report = SourceReport {
            ssrc: 9,
            fraction_lost: 3,
            cumulative_lost: 17,
            extended_highest_seq: 70_000,
            jitter: 40,
        };
        let bytes = build_receiver_report(5, Some((report, 0, 0)));
        assert!(is_rtcp(&bytes));
        assert_eq!(bytes.len(), 32);
        let summary = parse(&bytes);
        assert_eq!(
            summary.packets,
            vec![RtcpPacket::ReceiverReport {
                ssrc: 5,
                reports: vec![ReportBlock {
                    ssrc: 9,
                    fraction_lost: 3,
                    cumulative_lost: 17,
                    highest_seq: 70_000,
                    jitter: 40
                }]
            }]
        );
        assert_eq!(build_receiver_report(5, None).len(), 8);
    }
}
