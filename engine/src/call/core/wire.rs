//! serde for the SIP values a call's state holds that `sip` does not make serialisable
//! itself: a request (the INVITE a call has not answered yet) as its SIP text, what the wire
//! carried, so nothing is lost.

/// A request as its SIP text.
pub(super) mod request {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use sip::message::{parse_datagram, Request, SipMessage};

    pub(in crate::call::core) fn serialize<S: Serializer>(
        r: &Request,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(&r.to_bytes()))
    }

    pub(in crate::call::core) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Box<Request>, D::Error> {
        let text = String::deserialize(d)?;
        match parse_datagram(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => Ok(Box::new(r)),
            Ok(SipMessage::Response(_)) => Err(D::Error::custom("a response, not a request")),
            Err(e) => Err(D::Error::custom(e)),
        }
    }
}
