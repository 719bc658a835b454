//! Requests relayed by a trusted SIP proxy (Kamailio in front of several pairs): whose
//! address a request stands for.
//!
//! Behind a proxy every request comes from the proxy's address, so a guard that counts
//! failures per source would ban the proxy (and every phone behind it) for one phone's
//! wrong password, and a check that compares sources could not tell two phones apart. A
//! proxy that relays a request adds its own Via on top and records, in the Via below it,
//! where the request came from (`received`, RFC 3261 §18.2.1; otherwise its sent-by was
//! right). That record is believed only when the request comes from a configured trusted
//! proxy: anyone else can write anything in a Via (docs/adr/0009-trusted-proxies.md).

use std::net::IpAddr;

use crate::acl::Acl;
use crate::message::Request;

/// The address `req`, received from `source`, stands for: the client's address as the
/// trusted proxy recorded it in the second Via (`received`, else sent-by when it is an
/// IP address), or `source` itself when `source` is not a trusted proxy, or the Via is
/// missing, malformed or names no IP address.
pub fn client_address(req: &Request, source: IpAddr, trusted: &Acl) -> IpAddr {
    if !trusted.allows(source) {
        return source;
    }
    let Ok(vias) = req.headers.vias() else {
        return source;
    };
    let Some(client) = vias.get(1) else {
        // One Via: the proxy itself sent the request (its OPTIONS probe, for one).
        return source;
    };
    let named = client.received().unwrap_or(&client.host);
    ip_of(named).unwrap_or(source)
}

fn ip_of(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Network;
    use crate::message::{parse_datagram, SipMessage};

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn proxies() -> Acl {
        Acl::new(vec![Network::parse("192.0.2.10/32").expect("network")])
    }

    fn register(vias: &[&str]) -> Request {
        let mut text = String::from("REGISTER sip:svi.test SIP/2.0\r\n");
        for v in vias {
            text.push_str(&format!("Via: {v}\r\n"));
        }
        text.push_str(
            "From: <sip:1001@svi.test>;tag=a\r\nTo: <sip:1001@svi.test>\r\n\
             Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        );
        match parse_datagram(text.as_bytes()).expect("request") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("not a request"),
        }
    }

    const PROXY_VIA: &str = "SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKp1";

    #[test]
    fn behind_a_trusted_proxy_the_received_of_the_second_via_is_the_client() {
        let req = register(&[
            PROXY_VIA,
            "SIP/2.0/UDP 10.0.0.5:5062;received=198.51.100.7;rport=40000;branch=z9hG4bKc1",
        ]);
        assert_eq!(
            client_address(&req, ip("192.0.2.10"), &proxies()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn without_received_the_sent_by_is_the_client() {
        let req = register(&[PROXY_VIA, "SIP/2.0/UDP 198.51.100.8:5062;branch=z9hG4bKc1"]);
        assert_eq!(
            client_address(&req, ip("192.0.2.10"), &proxies()),
            ip("198.51.100.8")
        );
        let v6 = register(&[PROXY_VIA, "SIP/2.0/UDP [2001:db8::7]:5062;branch=z9hG4bKc1"]);
        assert_eq!(
            client_address(&v6, ip("192.0.2.10"), &proxies()),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn an_untrusted_source_is_itself_whatever_its_vias_say() {
        let req = register(&[
            "SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKx1",
            "SIP/2.0/UDP 198.51.100.7;received=198.51.100.7;branch=z9hG4bKc1",
        ]);
        assert_eq!(
            client_address(&req, ip("203.0.113.9"), &proxies()),
            ip("203.0.113.9")
        );
        // Nobody is trusted by default (fail closed).
        assert_eq!(
            client_address(&req, ip("192.0.2.10"), &Acl::default()),
            ip("192.0.2.10")
        );
    }

    #[test]
    fn a_missing_or_useless_client_via_leaves_the_proxy_address() {
        let proxy = ip("192.0.2.10");
        // The proxy's own request (one Via).
        assert_eq!(
            client_address(&register(&[PROXY_VIA]), proxy, &proxies()),
            proxy
        );
        // A host name tells no address.
        let named = register(&[PROXY_VIA, "SIP/2.0/UDP phone.example;branch=z9hG4bKc1"]);
        assert_eq!(client_address(&named, proxy, &proxies()), proxy);
        // A received that is no address.
        let bad = register(&[
            PROXY_VIA,
            "SIP/2.0/UDP 198.51.100.7;received=nowhere;branch=z9hG4bKc1",
        ]);
        assert_eq!(client_address(&bad, proxy, &proxies()), proxy);
        // A malformed Via (the parser refuses one on the wire; a header added later): nothing
        // is read from any of them.
        let mut malformed = register(&[PROXY_VIA]);
        malformed
            .headers
            .push(crate::message::HeaderName::Via, "SIP/2.0 198.51.100.7");
        assert_eq!(client_address(&malformed, proxy, &proxies()), proxy);
    }
}
