//! Where messages go.
//!
//! Responses (RFC 3261 §18.2.1, §18.2.2 and RFC 3581): when a request arrives, its top Via is
//! stamped with `received` (the source IP, when it differs from the sent-by host, which may
//! be a name or an address behind NAT) and, when the client asked with a bare `;rport`, with
//! `rport` (the source port) plus `received` in any case. The responses then go:
//! - over TCP, back on the connection the request came from;
//! - over UDP, with rport, to the source IP and port (what lets a UA behind NAT hear us);
//! - over UDP, without rport, to the source IP (the `received` address) and the sent-by port,
//!   5060 by default. `maddr` (multicast) is not supported and is ignored.
//!
//! Requests: [`NextHop`] reads host, port and transport from the URI a request is sent to
//! (the first Route, or the Request-URI). Resolving names (RFC 3263) is the driver's job; an
//! IP literal gives a [`Peer`] directly.

use std::net::{IpAddr, SocketAddr};

use crate::message::{HeaderName, Headers, Uri, Via};

use super::{Peer, Transport};

/// Copies `headers` with the first value of `name` replaced (the other lines kept in place).
pub(crate) fn replace_first(headers: &Headers, name: &HeaderName, value: String) -> Headers {
    let mut out = Headers::new();
    let mut value = Some(value);
    for h in headers.iter() {
        match value.take_if(|_| &h.name == name) {
            Some(v) => out.push(h.name.clone(), v),
            None => out.push(h.name.clone(), h.value.clone()),
        }
    }
    out
}

fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Stamps `received`/`rport` on the top Via of a request that came from `from` and returns
/// the peer its responses must go to. Headers whose Via cannot be read are left alone and
/// answered to the source address. With `force_rport`, every request is treated as if it
/// carried `;rport` (Asterisk's `force_rport`): answers go to the source port even when the
/// peer did not ask, which is what a PBX behind NAT or a load balancer needs.
pub(crate) fn stamp_received(headers: &mut Headers, from: Peer, force_rport: bool) -> Peer {
    let Some(first_line) = headers.get(&HeaderName::Via) else {
        return from;
    };
    let Ok(mut vias) = Via::parse_list(first_line) else {
        return from;
    };
    let Some(top) = vias.first_mut() else {
        return from;
    };
    let source_ip = from.addr.ip();
    let wants_rport = force_rport || top.rport().is_some();
    let sent_by_is_source = host_ip(&top.host) == Some(source_ip);
    let sent_by_port = top.port.unwrap_or(5060);
    let mut changed = false;
    if !sent_by_is_source || wants_rport {
        top.set_param("received", Some(source_ip.to_string()));
        changed = true;
    }
    if wants_rport {
        top.set_param("rport", Some(from.addr.port().to_string()));
    }
    if changed {
        let line = vias
            .iter()
            .map(Via::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        *headers = replace_first(headers, &HeaderName::Via, line);
    }
    match from.transport {
        Transport::Tcp | Transport::Tls => from,
        Transport::Udp if wants_rport => from,
        Transport::Udp => Peer {
            transport: Transport::Udp,
            addr: SocketAddr::new(source_ip, sent_by_port),
        },
    }
}

/// The next hop of a request, read from a SIP URI (RFC 3261 §8.1.2, §19.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Host without IPv6 brackets: an IP literal or a name to resolve.
    pub host: String,
    pub port: Option<u16>,
    pub transport: Transport,
    /// `sips:` or `transport=tls`: sent over TLS.
    pub secure: bool,
}

impl NextHop {
    /// `None` for non-SIP URIs (tel:, others), which cannot be sent to.
    pub fn from_uri(uri: &Uri) -> Option<NextHop> {
        let sip = uri.as_sip()?;
        let transport_param = sip.transport();
        let secure = sip.secure || transport_param.as_deref() == Some("tls");
        let transport = match transport_param.as_deref() {
            _ if secure => Transport::Tls,
            Some("tcp") => Transport::Tcp,
            _ => Transport::Udp,
        };
        let host = match sip.param("maddr").flatten() {
            Some(maddr) => maddr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            None => sip.host_unbracketed().to_string(),
        };
        Some(NextHop {
            host,
            port: sip.port,
            transport,
            secure,
        })
    }

    /// The socket address when the host is an IP literal (default port 5060, 5061 for TLS).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(
            ip,
            self.port.unwrap_or(if self.secure { 5061 } else { 5060 }),
        ))
    }

    pub fn peer(&self) -> Option<Peer> {
        Some(Peer {
            transport: self.transport,
            addr: self.socket_addr()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via_headers(via: &str) -> Headers {
        let mut h = Headers::new();
        h.push(HeaderName::Via, via);
        h.push(HeaderName::Via, "SIP/2.0/UDP other;branch=z9hG4bK2");
        h
    }

    fn udp(s: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: s.parse().expect("addr"),
        }
    }

    #[test]
    fn rport_answers_to_the_source_port() {
        let mut h = via_headers("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport");
        let to = stamp_received(&mut h, udp("203.0.113.9:40000"), false);
        assert_eq!(to, udp("203.0.113.9:40000"));
        let top = h.top_via().expect("via");
        assert_eq!(top.received(), Some("203.0.113.9"));
        assert_eq!(top.rport(), Some(Some("40000")));
        assert_eq!(h.vias().expect("vias").len(), 2);
    }

    #[test]
    fn received_without_rport_uses_the_sent_by_port() {
        let mut h = via_headers("SIP/2.0/UDP pc33.example.com:5070;branch=z9hG4bK1");
        assert_eq!(
            stamp_received(&mut h, udp("192.0.2.4:6000"), false),
            udp("192.0.2.4:5070")
        );
        assert_eq!(h.top_via().expect("via").received(), Some("192.0.2.4"));
        let mut h = via_headers("SIP/2.0/UDP 192.0.2.4;branch=z9hG4bK1");
        assert_eq!(
            stamp_received(&mut h, udp("192.0.2.4:6000"), false),
            udp("192.0.2.4:5060")
        );
        assert_eq!(h.top_via().expect("via").received(), None);
    }

    #[test]
    fn next_hop_from_uris() {
        let hop =
            NextHop::from_uri(&Uri::parse("sip:pbx.example.com;transport=TCP;lr").expect("uri"))
                .expect("hop");
        assert_eq!(
            (hop.host.as_str(), hop.transport, hop.socket_addr()),
            ("pbx.example.com", Transport::Tcp, None)
        );
        let hop =
            NextHop::from_uri(&Uri::parse("sip:u@[2001:db8::1]:5080").expect("uri")).expect("hop");
        assert_eq!(hop.peer().map(|p| p.addr.port()), Some(5080));
        assert!(NextHop::from_uri(&Uri::parse("tel:+331234").expect("uri")).is_none());
    }
}
