//! Writes pcap files of an RTP stream (Ethernet/IPv4/UDP/RTP) for sipp's `play_pcap_audio`.
//! Used to send in-band DTMF: two sine tones, A-law or µ-law encoded, as a PBX would.

use std::path::Path;

/// ITU-T G.711 A-law encoding of one sample (independent of the engine's codec on purpose).
pub fn alaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let s = (s >> 3).min(0xFFF);
    let (exp, mant) = if s < 32 {
        (0, s >> 1)
    } else {
        let exp = 31 - (s as u32).leading_zeros() as i32 - 4;
        (exp, (s >> exp) & 0x0F)
    };
    ((sign | (exp << 4) | mant) as u8) ^ 0x55
}

/// G.711 µ-law encoding of one sample.
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    let s = (s + BIAS).min(32_635 + BIAS);
    let exp = 31 - (s as u32).leading_zeros() as i32 - 7;
    let mant = (s >> (exp + 3)) & 0x0F;
    !((sign | (exp << 4) | mant) as u8)
}

/// DTMF frequencies (low, high) of a key.
pub fn dtmf_freqs(digit: char) -> (f64, f64) {
    let low = match digit {
        '1' | '2' | '3' | 'A' => 697.0,
        '4' | '5' | '6' | 'B' => 770.0,
        '7' | '8' | '9' | 'C' => 852.0,
        _ => 941.0,
    };
    let high = match digit {
        '1' | '4' | '7' | '*' => 1209.0,
        '2' | '5' | '8' | '0' => 1336.0,
        '3' | '6' | '9' | '#' => 1477.0,
        _ => 1633.0,
    };
    (low, high)
}

/// 8 kHz PCM: `silence_ms` of silence, the tone for `tone_ms`, then silence again.
pub fn dtmf_pcm(digit: char, tone_ms: u32, silence_ms: u32) -> Vec<i16> {
    let (lo, hi) = dtmf_freqs(digit);
    let mut out = vec![0i16; (silence_ms * 8) as usize];
    for n in 0..(tone_ms * 8) {
        let t = n as f64 / 8000.0;
        let v = 6000.0 * (2.0 * std::f64::consts::PI * lo * t).sin()
            + 6000.0 * (2.0 * std::f64::consts::PI * hi * t).sin();
        out.push(v as i16);
    }
    out.extend(std::iter::repeat_n(0i16, (silence_ms * 8) as usize));
    out
}

/// Writes `pcm` as 20 ms RTP packets with payload type `pt` (8 = PCMA, 0 = PCMU).
pub fn write_rtp_pcap(path: &Path, pcm: &[i16], pt: u8) -> std::io::Result<()> {
    let mut out = Vec::new();
    // Global header: magic, v2.4, tz 0, sigfigs 0, snaplen 65535, linktype 1 (Ethernet).
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, frame) in pcm.chunks(160).enumerate() {
        let mut rtp = vec![0x80, pt | if i == 0 { 0x80 } else { 0 }];
        rtp.extend_from_slice(&(1000u16.wrapping_add(i as u16)).to_be_bytes());
        rtp.extend_from_slice(&(160u32 * i as u32).to_be_bytes());
        rtp.extend_from_slice(&0x5356_4931u32.to_be_bytes());
        rtp.extend(
            frame
                .iter()
                .map(|s| if pt == 0 { ulaw(*s) } else { alaw(*s) }),
        );
        rtp.resize(12 + 160, if pt == 0 { 0xFF } else { 0xD5 });
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut pkt = vec![0u8; 12];
        pkt.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
            127,
            0,
            0,
            1,
            127,
            0,
            0,
            1,
        ];
        let sum = ip
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xFFFF) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        pkt.extend_from_slice(&ip);
        pkt.extend_from_slice(&40000u16.to_be_bytes());
        pkt.extend_from_slice(&40002u16.to_be_bytes());
        pkt.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pkt.extend_from_slice(&[0, 0]);
        pkt.extend_from_slice(&rtp);
        let ms = 20 * i as u32;
        out.extend_from_slice(&(1_700_000_000u32 + ms / 1000).to_le_bytes());
        out.extend_from_slice(&((ms % 1000) * 1000).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        out.extend_from_slice(&pkt);
    }
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_reference_values() {
        assert_eq!(alaw(0), 0xD5);
        assert_eq!(ulaw(0), 0xFF);
        assert_eq!(alaw(i16::MAX), 0xAA);
        assert_eq!(ulaw(i16::MAX), 0x80);
    }
}
