//! When a certificate expires: the `notAfter` of each X.509 certificate in a PEM file, read
//! with a few lines of DER (a certificate is SEQUENCE { tbsCertificate SEQUENCE { [0]
//! version, serial, algorithm, issuer, validity SEQUENCE { notBefore, notAfter }, ...}}),
//! so that no X.509 crate is needed for one field. Every length is checked: a damaged or
//! hostile file gives an error, never a panic.

use chrono::{DateTime, NaiveDate, Utc};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    #[error("no certificate in the file")]
    Empty,
    #[error("not a PEM certificate file: {0}")]
    Pem(String),
    #[error("malformed certificate: {0}")]
    Der(&'static str),
}

/// One DER element: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let (&tag, rest) = input.split_first().ok_or(CertError::Der("truncated"))?;
    let (&first, rest) = rest.split_first().ok_or(CertError::Der("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(CertError::Der("unsupported length"));
        }
        let bytes = rest.get(..n).ok_or(CertError::Der("truncated"))?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    let content = rest
        .get(..len)
        .ok_or(CertError::Der("length beyond the data"))?;
    Ok((tag, content, &rest[len..]))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (tag, content, rest) = tlv(input)?;
    if tag != want {
        return Err(CertError::Der("unexpected element"));
    }
    Ok((content, rest))
}

/// `notAfter` of one DER certificate.
pub fn not_after_der(der: &[u8]) -> Result<DateTime<Utc>, CertError> {
    const SEQUENCE: u8 = 0x30;
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after; // [0] version
    }
    let (_, rest) = expect(rest, 0x02)?; // serialNumber
    let (_, rest) = expect(rest, SEQUENCE)?; // signature algorithm
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    parse_time(tag, time)
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let s = std::str::from_utf8(text).map_err(|_| CertError::Der("time is not text"))?;
    let digits = s
        .strip_suffix('Z')
        .ok_or(CertError::Der("time is not UTC"))?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CertError::Der("time is not digits"));
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i32 = digits[..2].parse().map_err(|_| CertError::Der("year"))?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (0x18, 14) => (
            digits[..4].parse().map_err(|_| CertError::Der("year"))?,
            &digits[4..],
        ),
        _ => return Err(CertError::Der("unsupported time")),
    };
    let n = |i: usize| {
        rest[i..i + 2]
            .parse::<u32>()
            .map_err(|_| CertError::Der("time"))
    };
    let (month, day, hour, minute, second) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .map(|t| t.and_utc())
        .ok_or(CertError::Der("time out of range"))
}

/// The earliest `notAfter` of the certificates in a PEM text (a chain expires with its first
/// certificate to expire).
pub fn earliest_not_after(pem: &[u8]) -> Result<DateTime<Utc>, CertError> {
    let mut earliest: Option<DateTime<Utc>> = None;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| CertError::Pem(e.to_string()))?;
        let t = not_after_der(cert.as_ref())?;
        earliest = Some(earliest.map_or(t, |e| e.min(t)));
    }
    earliest.ok_or(CertError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed EC P-256 certificate made with `openssl req -x509 -days 400`;
    /// `openssl x509 -noout -enddate` says `notAfter=Jan 11 09:10:52 2028 GMT`.
    const PEM: &str = include_str!("testdata/cert-test.pem");

    #[test]
    fn reads_not_after_of_a_real_certificate() {
        let t = earliest_not_after(PEM.as_bytes()).expect("parsed");
        assert_eq!(t.to_rfc3339(), "2028-01-11T09:10:52+00:00");
    }

    #[test]
    fn damaged_input_is_an_error_not_a_panic() {
        assert_eq!(earliest_not_after(b""), Err(CertError::Empty));
        assert!(earliest_not_after(
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        let der = CertificateDer::pem_slice_iter(PEM.as_bytes())
            .next()
            .expect("one")
            .expect("pem");
        let der = der.as_ref().to_vec();
        // Every truncation and every single-byte change parses or fails cleanly.
        for cut in 0..der.len() {
            let _ = not_after_der(&der[..cut]);
        }
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = not_after_der(&d);
        }
        assert_eq!(
            parse_time(0x17, b"491231235959Z").map(|t| t.to_rfc3339()),
            Ok("2049-12-31T23:59:59+00:00".into())
        );
        assert_eq!(
            parse_time(0x17, b"500101000000Z").map(|t| t.to_rfc3339()),
            Ok("1950-01-01T00:00:00+00:00".into())
        );
        assert!(parse_time(0x17, b"501301000000Z").is_err());
    }
}
