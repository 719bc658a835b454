//! DTMF carried in SIP INFO bodies: `application/dtmf-relay` (`Signal=5`, Cisco/Asterisk
//! style) and `application/dtmf` (the digit alone). A keyed digit may be part of a PIN or a
//! card number: it comes out as personal data ([`Pii`]), redacted in any log line.

use pii::Pii;

/// The digit in an INFO body of the given content type, if it carries one.
pub fn dtmf_from_info(content_type: Option<&str>, body: &[u8]) -> Option<Pii<char>> {
    let text = std::str::from_utf8(body).ok()?;
    let digit = match content_type? {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| v.trim().to_string())
        })?,
        "application/dtmf" => text.trim().to_string(),
        _ => return None,
    };
    let mut chars = digit.chars();
    let c = chars.next()?.to_ascii_uppercase();
    // RFC 4733 event numbers are sometimes sent instead of characters (10 = *, 11 = #).
    let c = match (c, digit.as_str()) {
        (_, "10") => '*',
        (_, "11") => '#',
        (c, _) if chars.next().is_none() => c,
        _ => return None,
    };
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(Pii::new(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_and_plain() {
        assert_eq!(
            dtmf_from_info(
                Some("application/dtmf-relay"),
                b"Signal=1\r\nDuration=160\r\n"
            ),
            Some(Pii::new('1'))
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Signal= #\r\n"),
            Some(Pii::new('#'))
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Signal=11\r\n"),
            Some(Pii::new('#'))
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf"), b"7"),
            Some(Pii::new('7'))
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Duration=160"),
            None
        );
        assert_eq!(
            dtmf_from_info(Some("application/dtmf-relay"), b"Signal=X"),
            None
        );
        assert_eq!(dtmf_from_info(Some("text/plain"), b"Signal=1"), None);
        assert_eq!(dtmf_from_info(None, b"1"), None);
    }
}
