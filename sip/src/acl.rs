//! Network allow-lists (`192.0.2.0/24`, `::1/128`, a bare address). The engine accepts
//! requests only from allowed peers and sends SIP and RTP only to allowed addresses, so it
//! can never be turned into a reflector towards an address a message merely names.
//!
//! An empty list allows nobody (fail closed): allowing everyone is written explicitly as
//! `0.0.0.0/0` and `::/0`.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An allow-list; empty means "nobody".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl(Vec<Network>);

impl Acl {
    pub fn new(networks: Vec<Network>) -> Acl {
        Acl(networks)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn prefixes() {
        let lo = Network::parse("127.0.0.0/8").expect("net");
        assert!(lo.contains(ip("127.1.2.3")));
        assert!(!lo.contains(ip("192.0.2.4")));
        assert!(lo.contains(ip("::ffff:127.0.0.1")));
        assert!(Network::parse("::1/128").expect("v6").contains(ip("::1")));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("0.0.0.0/0")
            .expect("all")
            .contains(ip("198.51.100.1")));
        let acl = Acl::new(vec![lo]);
        assert!(acl.allows(ip("127.0.0.1")) && !acl.allows(ip("192.0.2.1")));
        assert!(
            !Acl::default().allows(ip("127.0.0.1")),
            "empty allows nobody"
        );
        let everyone = Acl::new(vec![
            Network::parse("0.0.0.0/0").expect("v4"),
            Network::parse("::/0").expect("v6"),
        ]);
        assert!(everyone.allows(ip("192.0.2.1")) && everyone.allows(ip("2001:db8::1")));
    }
}
