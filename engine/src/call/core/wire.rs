//! serde for the SIP values a call's state holds that `sip` does not make serialisable
//! itself: URIs as their SIP text (what the wire carries, so nothing is lost), peers as
//! transport and address.

/// A URI as its text.
pub(super) mod uri {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use sip::message::Uri;

    pub(in crate::call::core) fn serialize<S: Serializer>(
        u: &Uri,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(u)
    }

    pub(in crate::call::core) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Uri, D::Error> {
        let text = String::deserialize(d)?;
        Uri::parse(&text).map_err(D::Error::custom)
    }
}

/// A peer as `{"transport": "udp", "addr": "192.0.2.1:5060"}`.
pub(super) mod peer {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use sip::endpoint::{Peer, Transport};

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Udp,
        Tcp,
    }

    #[derive(Serialize, Deserialize)]
    struct Plain {
        transport: Kind,
        addr: SocketAddr,
    }

    pub(in crate::call::core) fn serialize<S: Serializer>(
        p: &Peer,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let transport = match p.transport {
            Transport::Udp => Kind::Udp,
            Transport::Tcp => Kind::Tcp,
        };
        Plain {
            transport,
            addr: p.addr,
        }
        .serialize(s)
    }

    pub(in crate::call::core) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Peer, D::Error> {
        let p = Plain::deserialize(d)?;
        let transport = match p.transport {
            Kind::Udp => Transport::Udp,
            Kind::Tcp => Transport::Tcp,
        };
        Ok(Peer {
            transport,
            addr: p.addr,
        })
    }
}
