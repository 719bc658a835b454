//! SDES keying for SRTP (RFC 4568): the `a=crypto` attribute and the policy that decides
//! whether a stream is encrypted.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:length] [params]`.
//! The engine speaks `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32` (RFC 4568
//! section 6.2), one key per line, no MKI, no session parameters: a line with anything
//! else is not usable and is skipped, so an offer listing it next to a plain one still
//! matches on the plain one. A lifetime is accepted and not enforced (the peer rekeys with
//! a re-INVITE; the engine's calls end long before 2^31 packets).
//!
//! Key material is personal data's big brother: [`MasterKey`] prints as `MasterKey(..)` in
//! `Debug` and has no `Display`; only [`CryptoAttr::value`] writes it, into the SDP body.
//! The keys themselves are inputs (the engine draws them from a CSPRNG), so this module does
//! no I/O and reads no randomness.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::model::Attribute;

/// Bytes of SDES key material: a 16-byte master key then a 14-byte master salt.
pub const MASTER_KEY_LEN: usize = 30;
/// Bytes of the master key within [`MASTER_KEY_LEN`].
pub const KEY_LEN: usize = 16;

/// An SRTP crypto suite the engine implements (RFC 4568 section 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CryptoSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag: the one every SDES peer supports.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag.
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// In the order of our offers: the stronger tag first.
    pub const ALL: [CryptoSuite; 2] = [
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn parse(s: &str) -> Option<CryptoSuite> {
        CryptoSuite::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// SRTP master key and salt. Never printed: `Debug` is redacted, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey([u8; MASTER_KEY_LEN]);

impl MasterKey {
    pub fn new(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        MasterKey(bytes)
    }

    /// The 16-byte master key.
    pub fn key(&self) -> &[u8] {
        &self.0[..KEY_LEN]
    }

    /// The 14-byte master salt.
    pub fn salt(&self) -> &[u8] {
        &self.0[KEY_LEN..]
    }
}

/// Saved state (a call snapshot) keeps the key as base64 text: a call rebuilt on another
/// node must go on with the keys its peer knows. Whoever stores a snapshot stores a key.
impl serde::Serialize for MasterKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for MasterKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        let bytes: [u8; MASTER_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("an SRTP master key is 30 bytes"))?;
        Ok(MasterKey(bytes))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// One usable `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// Identifies the line within the media description; the answer echoes it.
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: MasterKey,
}

impl CryptoAttr {
    /// Reads an attribute value; `None` when it is malformed or uses anything the engine does
    /// not implement (other suites, several keys, MKI, session parameters).
    pub fn parse(value: &str) -> Option<CryptoAttr> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next()?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let suite = CryptoSuite::parse(fields.next()?)?;
        let key_params = fields.next()?;
        if fields.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params.strip_prefix("inline:")?;
        let mut parts = inline.split('|');
        let material = STANDARD.decode(parts.next()?).ok()?;
        for part in parts {
            // A lifetime (`2^31` or decimal) is fine; an MKI is not.
            let lifetime = part.strip_prefix("2^").unwrap_or(part);
            if part.contains(':')
                || lifetime.is_empty()
                || !lifetime.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
        }
        Some(CryptoAttr {
            tag: tag.parse().ok()?,
            suite,
            key: MasterKey(material.try_into().ok()?),
        })
    }

    /// The attribute value, key included: for the SDP body only.
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key.0)
        )
    }

    /// As an SDP attribute.
    pub fn attribute(&self) -> Attribute {
        Attribute::value("crypto", self.value())
    }
}

/// Whether a trunk, an agent or the default wants SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SrtpPolicy {
    /// Plain RTP only: encrypted offers (`RTP/SAVP`) are refused, `a=crypto` is ignored.
    Off,
    /// SRTP when the peer offers or accepts it, plain RTP otherwise. Our offers are
    /// `RTP/AVP` with `a=crypto` lines (best-effort SRTP, as FreeSWITCH and baresip do).
    #[default]
    Optional,
    /// SRTP only: a plain offer is refused (488), our offers are `RTP/SAVP`, an answer
    /// without a usable `a=crypto` fails the call leg.
    Required,
}

impl SrtpPolicy {
    pub fn parse(s: &str) -> Option<SrtpPolicy> {
        match s {
            "off" => Some(SrtpPolicy::Off),
            "optional" => Some(SrtpPolicy::Optional),
            "required" => Some(SrtpPolicy::Required),
            _ => None,
        }
    }
}

/// Our side of SDES for one call leg: the policy and the key we send with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LocalSrtp {
    pub policy: SrtpPolicy,
    pub key: MasterKey,
}

/// What offer/answer agreed for an encrypted stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SrtpKeys {
    pub suite: CryptoSuite,
    /// The key we protect with (ours, as written in our SDP).
    pub local: MasterKey,
    /// The key the peer protects with (its `a=crypto`).
    pub remote: MasterKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 section 9.1's example key.
    const EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn usable_lines_parse_and_print_back() {
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let attr = CryptoAttr::parse(line).expect("usable");
        assert_eq!(
            (attr.tag, attr.suite),
            (1, CryptoSuite::AesCm128HmacSha1_80)
        );
        assert_eq!(&attr.key.key()[..3], b"=-n");
        assert_eq!(attr.key.salt().len(), 14);
        let printed = attr.value();
        assert_eq!(
            printed,
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
        assert_eq!(CryptoAttr::parse(&printed), Some(attr));
        let short = "7 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert_eq!(
            CryptoAttr::parse(short).map(|a| (a.tag, a.suite)),
            Some((7, CryptoSuite::AesCm128HmacSha1_32))
        );
    }

    #[test]
    fn lines_the_engine_cannot_honour_are_skipped() {
        for line in [
            EXAMPLE, // an MKI
            "1 AES_256_CM_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP",
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR;inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=",
            "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
            "x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80 PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
            "1 AES_CM_128_HMAC_SHA1_80",
            "",
        ] {
            assert_eq!(CryptoAttr::parse(line), None, "{line}");
        }
    }

    #[test]
    fn keys_never_print() {
        let attr = CryptoAttr {
            tag: 1,
            suite: CryptoSuite::AesCm128HmacSha1_80,
            key: MasterKey::new([0x5a; MASTER_KEY_LEN]),
        };
        let debug = format!(
            "{attr:?} {:?}",
            SrtpKeys {
                suite: attr.suite,
                local: attr.key.clone(),
                remote: attr.key.clone(),
            }
        );
        assert!(debug.contains("MasterKey(..)"), "{debug}");
        assert!(
            !debug.contains("90") && !debug.contains("WlpaWlpa"),
            "{debug}"
        );
    }
}
