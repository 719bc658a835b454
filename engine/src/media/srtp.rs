//! SRTP (RFC 3711) for one call leg, keyed by SDES (RFC 4568, negotiated in `sip::sdp`).
//!
//! The transform is `rtc-srtp` (the sans-IO SRTP of the webrtc-rs `rtc` stack, on ring and
//! RustCrypto primitives; why this crate: ADR 0006); this module is the only place that names
//! it. A session holds two contexts: ours, which protects what the stream sends with our key,
//! and the peer's, which authenticates and decrypts what arrives with its key. The crate keeps
//! per-SSRC rollover counters (RFC 3711 section 3.3.1: SDES starts them at 0) and a 64-packet
//! replay window, checked before and committed only after authentication, so a forged or
//! replayed packet changes nothing.
//!
//! Keys never reach a log: [`MasterKey`] has a redacted `Debug`, and errors name no key.

use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use sip::sdp::{CryptoSuite, MasterKey, SrtpKeys};

/// Packets remembered by the replay window of each direction.
pub const REPLAY_WINDOW: usize = 64;

/// Why a packet could not be protected or unprotected.
#[derive(Debug, thiserror::Error)]
pub enum SrtpError {
    /// A context could not be created (a crypto provider without the suite's primitives).
    #[error("cannot set up SRTP: {0}")]
    Setup(String),
    /// A packet failed authentication, was replayed, or is too short.
    #[error("SRTP packet refused: {0}")]
    Refused(String),
}

/// The two directions of one stream's SRTP.
pub struct SrtpSession {
    keys: SrtpKeys,
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.keys.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    pub fn new(keys: &SrtpKeys) -> Result<Self, SrtpError> {
        Ok(SrtpSession {
            outbound: context(keys.suite, &keys.local)?,
            inbound: context(keys.suite, &keys.remote)?,
            keys: keys.clone(),
        })
    }

    /// The keys this session runs on.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// New keys from a re-INVITE: a direction whose key changed starts a new context (its
    /// rollover counter from 0); a direction whose key did not keeps its state.
    pub fn rekey(&mut self, keys: &SrtpKeys) -> Result<(), SrtpError> {
        if keys.suite != self.keys.suite || keys.local != self.keys.local {
            self.outbound = context(keys.suite, &keys.local)?;
        }
        if keys.suite != self.keys.suite || keys.remote != self.keys.remote {
            self.inbound = context(keys.suite, &keys.remote)?;
        }
        self.keys = keys.clone();
        Ok(())
    }

    /// An RTP packet we send, encrypted and with its authentication tag.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }

    /// An SRTP packet received: authenticated, checked against replay, decrypted.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }

    /// An SRTCP packet received: authenticated, checked against replay, decrypted.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtcp(packet)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Refused(e.to_string()))
    }
}

fn context(suite: CryptoSuite, key: &MasterKey) -> Result<Context, SrtpError> {
    let profile = match suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    Context::new(
        key.key(),
        key.salt(),
        profile,
        Some(srtp_replay_protection(REPLAY_WINDOW)),
        Some(srtcp_replay_protection(REPLAY_WINDOW)),
        &RingCrypto,
    )
    .map_err(|e| SrtpError::Setup(e.to_string()))
}

/// A fresh SDES master key and salt from the operating system's CSPRNG.
pub fn new_master_key() -> MasterKey {
    use rand::RngCore;
    let mut bytes = [0u8; sip::sdp::crypto::MASTER_KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    MasterKey::new(bytes)
}

#[cfg(test)]
mod tests {
    use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

    use super::*;

    fn keys(suite: CryptoSuite) -> (SrtpKeys, SrtpKeys) {
        let (a, b) = (new_master_key(), new_master_key());
        (
            SrtpKeys {
                suite,
                local: a.clone(),
                remote: b.clone(),
            },
            SrtpKeys {
                suite,
                local: b,
                remote: a,
            },
        )
    }

    fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(8)
            .sequence(Seq::from(seq))
            .timestamp(u32::from(seq) * 160)
            .ssrc(0xC0FFEE)
            .payload(payload)
            .build()
            .expect("valid packet")
    }

    #[test]
    fn both_suites_protect_and_unprotect_across_a_sequence_wrap() {
        for (suite, tag) in [
            (CryptoSuite::AesCm128HmacSha1_80, 10),
            (CryptoSuite::AesCm128HmacSha1_32, 4),
        ] {
            let (ours, theirs) = keys(suite);
            let mut engine = SrtpSession::new(&ours).expect("session");
            let mut phone = SrtpSession::new(&theirs).expect("session");
            for seq in (65_530..=u16::MAX).chain(0..6) {
                let plain = packet(seq, &[0xD5; 160]);
                let wire = engine.protect_rtp(&plain).expect("protect");
                assert_eq!(wire.len(), plain.len() + tag);
                assert_ne!(&wire[12..172], &plain[12..], "the payload is encrypted");
                assert_eq!(phone.unprotect_rtp(&wire).expect("authentic"), plain);
            }
        }
    }

    #[test]
    fn forged_replayed_and_wrongly_keyed_packets_are_refused() {
        let (ours, theirs) = keys(CryptoSuite::AesCm128HmacSha1_80);
        let mut engine = SrtpSession::new(&ours).expect("session");
        let mut phone = SrtpSession::new(&theirs).expect("session");
        let wire = engine.protect_rtp(&packet(7, &[1; 160])).expect("protect");
        let mut forged = wire.clone();
        forged[20] ^= 1;
        assert!(phone.unprotect_rtp(&forged).is_err(), "payload changed");
        assert!(
            phone.unprotect_rtp(&wire).is_ok(),
            "the forgery changed no state"
        );
        assert!(phone.unprotect_rtp(&wire).is_err(), "replayed");
        // A plain packet, or one under another key, is not authentic.
        assert!(phone.unprotect_rtp(&packet(8, &[1; 170])).is_err());
        let (stranger, _) = keys(CryptoSuite::AesCm128HmacSha1_80);
        let other = SrtpSession::new(&stranger)
            .expect("session")
            .protect_rtp(&packet(9, &[1; 160]))
            .expect("protect");
        assert!(phone.unprotect_rtp(&other).is_err());
        let header = RtpReader::new(&wire).expect("the header stays in clear");
        assert_eq!(u16::from(header.sequence_number()), 7);
    }

    #[test]
    fn rekeying_one_direction_keeps_the_other() {
        let (ours, theirs) = keys(CryptoSuite::AesCm128HmacSha1_80);
        let mut engine = SrtpSession::new(&ours).expect("session");
        let mut phone = SrtpSession::new(&theirs).expect("session");
        let from_phone = phone.protect_rtp(&packet(1, &[2; 160])).expect("protect");
        assert!(engine.unprotect_rtp(&from_phone).is_ok());
        // The phone re-INVITEs with a new key of its own.
        let new_phone_key = new_master_key();
        let rekeyed = SrtpKeys {
            remote: new_phone_key.clone(),
            ..ours.clone()
        };
        engine.rekey(&rekeyed).expect("rekey");
        let mut phone = SrtpSession::new(&SrtpKeys {
            local: new_phone_key,
            ..theirs
        })
        .expect("session");
        let again = phone.protect_rtp(&packet(2, &[2; 160])).expect("protect");
        assert!(engine.unprotect_rtp(&again).is_ok());
        // Our direction carries on: the phone still reads what we send.
        let to_phone = engine.protect_rtp(&packet(3, &[3; 160])).expect("protect");
        assert!(phone.unprotect_rtp(&to_phone).is_ok());
        assert!(!format!("{engine:?}").contains("MasterKey(["));
    }
}
