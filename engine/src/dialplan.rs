//! Which numbers the engine dials on a caller's behalf (toll-fraud protection).
//!
//! Callbacks dial the caller's From number, which the caller chose; transfer targets may
//! come from digits the caller keyed. Either could send the engine's trunk to a premium or
//! international number. So a number goes out through a trunk (or back to the PBX the call
//! came from) only when that route's policy allows it: digits only (an optional leading
//! `+`, no `*` or `#` that a PBX would read as a feature code), no more than `max_digits`,
//! and starting with one of `allowed_prefixes`. Nothing configured: nothing dialled.
//!
//! Agents' own contacts and SIP URIs written in a flow are the configuration's, not the
//! caller's, and are not checked here. The refusal's text is for the call record and logs:
//! it shows only the number's length (`Pii`).

use crate::config::EngineConfig;
use pii::Pii;

/// What numbers a route may dial (`[[trunks]] dial_prefixes`, `dial_max_digits`; for the PBX
/// the call came from, the same keys in `[sip]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialPolicy {
    pub allowed_prefixes: Vec<String>,
    pub max_digits: usize,
}

/// Why the engine dials a number for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Callback,
    Transfer,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Callback => "callback",
            Purpose::Transfer => "transfer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialRefused {
    #[error("{purpose} to {number} refused: not a number (digits, an optional leading +)")]
    NotANumber {
        purpose: &'static str,
        number: Pii<String>,
    },
    #[error("{purpose} to {number} refused: {route} allows no number (set dial_prefixes)")]
    NothingAllowed {
        purpose: &'static str,
        number: Pii<String>,
        route: String,
    },
    #[error("{purpose} to {number} refused: more than the {max} digits {route} allows")]
    TooLong {
        purpose: &'static str,
        number: Pii<String>,
        route: String,
        max: usize,
    },
    #[error("{purpose} to {number} refused: no prefix {route} allows ({prefixes})")]
    PrefixNotAllowed {
        purpose: &'static str,
        number: Pii<String>,
        route: String,
        prefixes: String,
    },
}

/// The check of a number dialled for a caller, against the policy of the route it takes:
/// the first trunk (as `via_pbx` dials), else the PBX the call came from (`[sip]`).
pub fn check(config: &EngineConfig, purpose: Purpose, number: &str) -> Result<(), DialRefused> {
    match config.trunks.first() {
        Some(t) => t
            .dial
            .check(purpose, &format!("trunk `{}`", t.name), number),
        None => config
            .sip
            .dial
            .check(purpose, "the PBX the call came from", number),
    }
}

/// Parses a prefix or a number as written in the configuration: `+`? then digits.
pub fn is_dialable(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

impl DialPolicy {
    /// Whether `number` may be dialled through `route` (a name for the refusal's text).
    pub fn check(&self, purpose: Purpose, route: &str, number: &str) -> Result<(), DialRefused> {
        let purpose = purpose.as_str();
        let masked = || Pii::new(number.to_string());
        if !is_dialable(number) {
            return Err(DialRefused::NotANumber {
                purpose,
                number: masked(),
            });
        }
        if self.allowed_prefixes.is_empty() || self.max_digits == 0 {
            return Err(DialRefused::NothingAllowed {
                purpose,
                number: masked(),
                route: route.to_string(),
            });
        }
        let digits = number.trim_start_matches('+').len();
        if digits > self.max_digits {
            return Err(DialRefused::TooLong {
                purpose,
                number: masked(),
                route: route.to_string(),
                max: self.max_digits,
            });
        }
        if !self.allowed_prefixes.iter().any(|p| number.starts_with(p)) {
            return Err(DialRefused::PrefixNotAllowed {
                purpose,
                number: masked(),
                route: route.to_string(),
                prefixes: self.allowed_prefixes.join(", "),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> DialPolicy {
        DialPolicy {
            allowed_prefixes: vec!["0".into(), "+331".into()],
            max_digits: 11,
        }
    }

    #[test]
    fn allowed_numbers_pass() {
        let p = policy();
        for n in ["0123456789", "+33123456789", "0"] {
            assert_eq!(p.check(Purpose::Callback, "trunk `ipbx`", n), Ok(()), "{n}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_the_number_redacted() {
        let p = policy();
        let refused = |n: &str| {
            p.check(Purpose::Callback, "trunk `ipbx`", n)
                .expect_err(n)
                .to_string()
        };
        assert_eq!(
            refused("+881234567"),
            "callback to <redacted: 10 chars> refused: no prefix trunk `ipbx` allows (0, +331)"
        );
        assert_eq!(
            refused("012345678901"),
            "callback to <redacted: 12 chars> refused: more than the 11 digits trunk `ipbx` allows"
        );
        for n in ["*72+8812345", "01#", "", "+", "caller", "0 1", "٠١٢"] {
            assert!(refused(n).contains("refused: not a number"), "{n}");
        }
        let e = DialPolicy::default()
            .check(Purpose::Transfer, "the PBX", "0123")
            .expect_err("nothing")
            .to_string();
        assert_eq!(
            e,
            "transfer to <redacted: 4 chars> refused: the PBX allows no number (set dial_prefixes)"
        );
    }
}
