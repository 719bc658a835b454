//! Blind transfer with REFER (RFC 3515): the engine asks the PBX to call the target and
//! replace the caller's leg; the PBX reports progress in NOTIFYs whose body is a SIP
//! fragment (`SIP/2.0 200 OK`, RFC 3420). A 2xx in a NOTIFY means the target answered.

use sip::dialog::Dialog;

/// A target written as a URI (`sip:`, `sips:`, `tel:`) rather than a number.
pub fn is_uri(target: &str) -> bool {
    target.starts_with("sip:") || target.starts_with("sips:") || target.starts_with("tel:")
}

/// The Refer-To URI: a SIP URI as given, or a number at the host the call came from.
pub fn refer_target(target: &str, dialog: &Dialog) -> String {
    if is_uri(target) {
        return target.to_string();
    }
    let host = match dialog.remote_uri.uri.as_sip() {
        Some(u) => match u.port {
            Some(p) => format!("{}:{p}", u.host),
            None => u.host.clone(),
        },
        None => "invalid".to_string(),
    };
    format!("sip:{target}@{host}")
}

/// The status code of a `message/sipfrag` body.
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(
            sipfrag_status(b"SIP/2.0 486 Busy Here\r\nX: y\r\n"),
            Some(486)
        );
        assert_eq!(sipfrag_status(b"garbage"), None);
    }
}
