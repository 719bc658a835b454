//! SIP plumbing of a call: our Via and Contact, where in-dialog requests go, building the
//! final answer to the INVITE.

use std::net::{IpAddr, SocketAddr};

use sip::endpoint::{new_branch, NextHop, Peer, Transport};
use sip::message::{HeaderName, Request, SipUri, Uri};

use crate::acl::Acl;

/// Our SIP addresses as written in Via and Contact: the public IP with the UDP/TCP port,
/// and the TLS port when TLS is on. Which one a message names depends on its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSip {
    pub addr: SocketAddr,
    pub tls_port: Option<u16>,
}

impl LocalSip {
    /// The address a peer reaches us at over `transport`.
    pub fn over(&self, transport: Transport) -> SocketAddr {
        match (transport, self.tls_port) {
            (Transport::Tls, Some(port)) => SocketAddr::new(self.addr.ip(), port),
            _ => self.addr,
        }
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
}

impl From<SocketAddr> for LocalSip {
    fn from(addr: SocketAddr) -> Self {
        LocalSip {
            addr,
            tls_port: None,
        }
    }
}

impl std::fmt::Display for LocalSip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// A `Via` for a request we send from `local` over `transport`.
pub fn via(local: impl Into<LocalSip>, transport: Transport) -> String {
    format!(
        "SIP/2.0/{} {};branch={};rport",
        transport.via_token(),
        host_port(local.into().over(transport)),
        new_branch()
    )
}

fn host_port(a: SocketAddr) -> String {
    format!("{}:{}", host(a.ip()), a.port())
}

/// An IP as a SIP host: IPv6 addresses in brackets (RFC 3261 §25.1, RFC 5118).
pub fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Our Contact URI for dialogs over `transport`.
pub fn contact(local: impl Into<LocalSip>, transport: Transport) -> Uri {
    let local = local.into().over(transport);
    let host = host(local.ip());
    let params = transport
        .uri_param()
        .map(|t| vec![("transport".to_string(), Some(t.to_string()))])
        .unwrap_or_default();
    Uri::Sip(SipUri {
        secure: false,
        user: Some("svi".into()),
        password: None,
        host,
        port: Some(local.port()),
        params,
        headers: None,
    })
}

/// Where an in-dialog request goes: the dialog's next hop when it is an allowed IP literal,
/// else back where the INVITE came from (NAT-friendly; and no DNS for names a peer wrote).
pub fn next_hop(hop: Option<NextHop>, invite_from: Peer, acl: &Acl) -> Peer {
    // A peer that called over TCP keeps its connection for the whole dialog (its Contact
    // often names a port where nothing listens, e.g. behind NAT): reuse it (RFC 5923 spirit).
    if invite_from.transport.is_stream() {
        return invite_from;
    }
    if let Some(peer) = hop.and_then(|h| h.peer()) {
        if acl.allows(peer.addr.ip()) {
            return peer;
        }
    }
    invite_from
}

/// Adds Via and Max-Forwards to an in-dialog request built by the dialog.
pub fn finish_request(req: &mut Request, local: LocalSip, transport: Transport, user_agent: &str) {
    req.headers.set(HeaderName::Via, via(local, transport));
    if req.headers.get(&HeaderName::MaxForwards).is_none() {
        req.headers.push(HeaderName::MaxForwards, "70");
    }
    if !user_agent.is_empty() && req.headers.get(&HeaderName::UserAgent).is_none() {
        req.headers.push(HeaderName::UserAgent, user_agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Network;

    fn peer(s: &str) -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: s.parse().expect("addr"),
        }
    }

    #[test]
    fn next_hop_prefers_allowed_literals() {
        let acl = Acl::new(vec![Network::parse("127.0.0.0/8").expect("net")]);
        let from = peer("127.0.0.1:5070");
        let hop = |h: &str, p| {
            Some(NextHop {
                host: h.into(),
                port: p,
                transport: Transport::Udp,
                secure: false,
            })
        };
        assert_eq!(
            next_hop(hop("127.0.0.2", Some(5080)), from, &acl),
            peer("127.0.0.2:5080")
        );
        assert_eq!(next_hop(hop("192.0.2.9", Some(5080)), from, &acl), from);
        assert_eq!(next_hop(hop("pbx.example.com", None), from, &acl), from);
        assert_eq!(next_hop(None, from, &acl), from);
        let tcp = Peer {
            transport: Transport::Tcp,
            addr: "127.0.0.1:40000".parse().expect("addr"),
        };
        assert_eq!(
            next_hop(hop("127.0.0.2", Some(5080)), tcp, &acl),
            tcp,
            "TCP callers keep their connection"
        );
    }

    #[test]
    fn via_and_contact_forms() {
        let v = via(
            "127.0.0.1:5060".parse::<SocketAddr>().expect("a"),
            Transport::Tcp,
        );
        assert!(
            v.starts_with("SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK") && v.ends_with(";rport"),
            "{v}"
        );
        assert_eq!(
            contact(
                "[::1]:5070".parse::<SocketAddr>().expect("a"),
                Transport::Udp
            )
            .to_string(),
            "sip:svi@[::1]:5070"
        );
    }
}
