//! The `Reason` header (RFC 3326) our BYE may carry: why we end the call, as a SIP status or
//! a Q.850 cause, so the PBX's records and the other party's phone can show it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A `Reason` header (RFC 3326) on our BYE: why we end the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub protocol: ReasonProtocol,
    pub cause: u16,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReasonProtocol {
    /// A SIP status code as cause.
    Sip,
    /// An ITU-T Q.850 cause (16: normal call clearing).
    Q850,
}

impl Reason {
    pub fn sip(cause: u16, text: &str) -> Self {
        Reason {
            protocol: ReasonProtocol::Sip,
            cause,
            text: Some(text.to_string()),
        }
    }

    pub fn q850(cause: u16, text: &str) -> Self {
        Reason {
            protocol: ReasonProtocol::Q850,
            cause,
            text: Some(text.to_string()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            ReasonProtocol::Sip => "SIP",
            ReasonProtocol::Q850 => "Q.850",
        };
        write!(f, "{protocol};cause={}", self.cause)?;
        if let Some(text) = &self.text {
            // A quoted-string: no quote, backslash or control character can break out of it.
            let clean: String = text
                .chars()
                .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
                .collect();
            write!(f, ";text=\"{clean}\"")?;
        }
        Ok(())
    }
}
