//! Serde for the protocol types a call's saved state holds (URIs, name-addrs, methods, CSeq,
//! session descriptions): each is written in its text form and read back with its parser,
//! so a saved call is readable, and a value that would not parse on the wire is refused when
//! read back too.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::message::{CSeq, HeaderName, Method, NameAddr, Uri};
use crate::sdp::SessionDescription;

/// Reads a string and hands it to `parse`, reporting its error as serde's.
struct TextVisitor<F>(&'static str, F);

impl<T, E: fmt::Display, F: FnOnce(&str) -> Result<T, E>> Visitor<'_> for TextVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<R: de::Error>(self, v: &str) -> Result<T, R> {
        (self.1)(v).map_err(R::custom)
    }
}

macro_rules! as_text {
    ($ty:ty, $what:literal, $parse:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(TextVisitor($what, $parse))
            }
        }
    };
}

as_text!(Uri, "a SIP URI", Uri::parse);
as_text!(
    NameAddr,
    "a name-addr (`\"Name\" <sip:user@host>;param`)",
    |v: &str| { NameAddr::parse(&HeaderName::Contact, v) }
);
as_text!(CSeq, "a CSeq value (`2 INVITE`)", CSeq::parse);
as_text!(Method, "a SIP method token", |v: &str| {
    Method::parse(v).ok_or("not a method token")
});
as_text!(SessionDescription, "an SDP body", SessionDescription::parse);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug>(v: &T) {
        let text = serde_json::to_string(v).expect("serialise");
        let back: T = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(&back, v, "{text}");
    }

    #[test]
    fn text_forms_round_trip() {
        for u in [
            "sip:alice@192.0.2.1:5070;transport=tcp",
            "sips:[2001:db8::1]:5061;lr",
            "sip:%61lice@example.com?Subject=x",
            "tel:+33123456789;phone-context=example.com",
            "urn:service:sos",
        ] {
            round_trip(&Uri::parse(u).expect("uri"));
        }
        let na = NameAddr::parse(
            &HeaderName::From,
            "\"Agent \\\"7\\\"\" <sip:7@pbx.example.com>;tag=a1;x",
        )
        .expect("name-addr");
        round_trip(&na);
        round_trip(&CSeq::parse("42 INVITE").expect("cseq"));
        round_trip(&Method::parse("NEWMETHOD").expect("method"));
        let sdp = SessionDescription::parse(
            "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\na=x-unknown:kept\r\n",
        )
        .expect("sdp");
        round_trip(&sdp);
    }

    #[test]
    fn unparseable_text_is_refused() {
        assert!(serde_json::from_str::<Uri>("\"sip:\"").is_err());
        assert!(serde_json::from_str::<NameAddr>("\"<sip:a@b\"").is_err());
        assert!(serde_json::from_str::<CSeq>("\"4294967295 INVITE\"").is_err());
        assert!(serde_json::from_str::<Method>("\"IN VITE\"").is_err());
        assert!(serde_json::from_str::<Uri>("42").is_err());
        assert!(serde_json::from_str::<SessionDescription>("\"v=1\"").is_err());
    }
}
