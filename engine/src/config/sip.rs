//! `[sip]` and `[rtp]`: where the engine listens, whom it talks to, and its media ports.
//! The edge's own settings (TLS, connection limits, digest and bans) are in `edge`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::edge::{self, RawTls};
use super::{ConfigError, Ctx};
use crate::acl::{Acl, Network};

pub use super::edge::TlsSettings;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSip {
    listen: Option<String>,
    transports: Option<Vec<String>>,
    public_address: Option<String>,
    user_agent: Option<String>,
    t1_ms: Option<u64>,
    allowed_networks: Option<Vec<String>>,
    force_rport: Option<bool>,
    max_calls: Option<usize>,
    max_calls_per_second: Option<u32>,
    refusal: Option<String>,
    tls: Option<RawTls>,
    tcp_max_connections: Option<usize>,
    tcp_max_per_source: Option<usize>,
    tcp_head_timeout_secs: Option<u64>,
    tcp_idle_timeout_secs: Option<u64>,
    digest_algorithms: Option<Vec<String>>,
    auth_max_failures: Option<u32>,
    auth_window_secs: Option<u64>,
    auth_ban_secs: Option<u64>,
    auth_max_ban_secs: Option<u64>,
    trusted_proxies: Option<Vec<String>>,
    dial_prefixes: Option<Vec<String>>,
    dial_max_digits: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRtp {
    ports: Option<String>,
    ip: Option<String>,
    timeout_secs: Option<u64>,
    workers: Option<usize>,
    srtp: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Clone)]
pub struct SipConfig {
    pub listen: SocketAddr,
    pub transports: Vec<SipTransport>,
    /// Address written in Via, Contact and SDP (defaults to the listen address).
    pub public_ip: IpAddr,
    pub user_agent: String,
    pub t1: Duration,
    /// Peers the engine takes requests from and sends SIP/RTP to (never empty).
    pub allowed: Acl,
    /// What a request from outside `allowed` gets (nothing, or one stateless 403).
    pub refusal: sip::transport::Refusal,
    /// SIP over TLS, when `tls` is among the transports.
    pub tls: Option<TlsSettings>,
    /// Connection caps and timeouts of TCP and TLS.
    pub stream_limits: sip::transport::StreamLimits,
    /// Digest algorithms offered to agents' phones, and the brute-force bans.
    pub agent_auth: crate::agents::AgentAuth,
    /// Numbers callbacks and transfers may dial back through the PBX a call came from
    /// (when no trunk is configured).
    pub dial: crate::dialplan::DialPolicy,
    /// Answer UDP requests to their source port even without `;rport` (NAT-friendly).
    pub force_rport: bool,
    /// Calls in progress beyond which new INVITEs get 503 (overload protection).
    pub max_calls: usize,
    /// New calls per second beyond which INVITEs get 503, with a burst of one second's
    /// worth (overload protection against a flood, like FreeSWITCH's sessions-per-second);
    /// 0: no limit.
    pub max_calls_per_second: u32,
}

#[derive(Debug, Clone)]
pub struct RtpConfig {
    pub ip: IpAddr,
    pub port_low: u16,
    pub port_high: u16,
    pub timeout: Duration,
    /// Media workers pacing the streams; 0 means one per CPU.
    pub workers: usize,
    /// SRTP policy of calls no trunk or agent policy covers (see `config/srtp.rs`).
    pub srtp: ::sip::sdp::SrtpPolicy,
}

/// Why a configuration without `sip.allowed_networks` cannot serve SIP.
pub(super) const ALLOWED_NETWORKS_NEEDED: &str = "must list the networks allowed to send SIP \
     (your PBX, phones), e.g. [\"192.0.2.0/24\"]; to allow everyone, write \
     [\"0.0.0.0/0\", \"::/0\"]";

pub(super) fn parse_sip(cx: &Ctx<'_>, raw: RawSip) -> Result<SipConfig, ConfigError> {
    let listen_s = raw.listen.as_deref().unwrap_or("127.0.0.1:5060");
    let listen: SocketAddr = listen_s.parse().map_err(|_| {
        cx.err(
            "sip.listen",
            format!("`{listen_s}` is not IP:PORT (e.g. 127.0.0.1:5060)"),
        )
    })?;
    let mut transports = Vec::new();
    for t in raw
        .transports
        .unwrap_or_else(|| vec!["udp".into(), "tcp".into()])
    {
        transports.push(match t.to_ascii_lowercase().as_str() {
            "udp" => SipTransport::Udp,
            "tcp" => SipTransport::Tcp,
            "tls" => SipTransport::Tls,
            other => {
                return Err(cx.err(
                    "sip.transports",
                    format!("`{other}` is not a transport (udp, tcp, tls)"),
                ))
            }
        });
    }
    if transports.is_empty() {
        return Err(cx.err("sip.transports", "at least one transport is needed"));
    }
    let public_ip = match raw.public_address.as_deref() {
        None => listen.ip(),
        Some(s) => s
            .parse()
            .map_err(|_| cx.err("sip.public_address", format!("`{s}` is not an IP address")))?,
    };
    let t1_ms = raw.t1_ms.unwrap_or(500);
    if !(50..=10_000).contains(&t1_ms) {
        return Err(cx.err("sip.t1_ms", format!("{t1_ms} is outside 50..=10000")));
    }
    let mut networks = Vec::new();
    for (i, n) in raw.allowed_networks.iter().flatten().enumerate() {
        networks.push(Network::parse(n).ok_or_else(|| {
            cx.err(
                &format!("sip.allowed_networks[{i}]"),
                format!("`{n}` is not an address or ADDRESS/PREFIX"),
            )
        })?);
    }
    // Fail closed: who may talk to the engine is written down. A missing list is refused
    // when the engine starts (`EngineConfig::check_serving`: a witness has no SIP to guard),
    // an empty one here.
    if raw.allowed_networks.as_ref().is_some_and(Vec::is_empty) {
        return Err(cx.err("sip.allowed_networks", ALLOWED_NETWORKS_NEEDED));
    }
    let refusal = match raw.refusal.as_deref() {
        None | Some("silent") => sip::transport::Refusal::Silent,
        Some("403") => sip::transport::Refusal::Forbidden,
        Some(other) => {
            return Err(cx.err(
                "sip.refusal",
                format!("`{other}` is not \"silent\" or \"403\""),
            ))
        }
    };
    let tls = match (transports.contains(&SipTransport::Tls), raw.tls) {
        (true, tls) => Some(edge::parse_tls(cx, tls.unwrap_or_default(), listen)?),
        (false, Some(_)) => {
            return Err(cx.err("sip.tls", "is set but `tls` is not in sip.transports"))
        }
        (false, None) => None,
    };
    let stream_limits = edge::parse_stream_limits(
        cx,
        edge::RawStreamLimits {
            max_connections: raw.tcp_max_connections,
            max_per_source: raw.tcp_max_per_source,
            head_timeout_secs: raw.tcp_head_timeout_secs,
            idle_timeout_secs: raw.tcp_idle_timeout_secs,
        },
    )?;
    let mut agent_auth = edge::parse_agent_auth(
        cx,
        edge::RawAgentAuth {
            digest_algorithms: raw.digest_algorithms,
            max_failures: raw.auth_max_failures,
            window_secs: raw.auth_window_secs,
            ban_secs: raw.auth_ban_secs,
            max_ban_secs: raw.auth_max_ban_secs,
        },
    )?;
    // Whose Via record of the client's address is believed (docs/adr/0009-trusted-proxies.md);
    // none by default.
    let mut proxies = Vec::new();
    for (i, n) in raw.trusted_proxies.iter().flatten().enumerate() {
        proxies.push(Network::parse(n).ok_or_else(|| {
            cx.err(
                &format!("sip.trusted_proxies[{i}]"),
                format!("`{n}` is not an address or ADDRESS/PREFIX"),
            )
        })?);
    }
    agent_auth.trusted_proxies = Acl::new(proxies);
    let dial = super::trunks::parse_dial(
        cx,
        &|k: &str| format!("sip.{k}"),
        raw.dial_prefixes,
        raw.dial_max_digits,
    )?;
    Ok(SipConfig {
        dial,
        listen,
        transports,
        public_ip,
        user_agent: raw
            .user_agent
            .unwrap_or_else(|| format!("svi/{}", env!("CARGO_PKG_VERSION"))),
        t1: Duration::from_millis(t1_ms),
        allowed: Acl::new(networks),
        refusal,
        tls,
        stream_limits,
        agent_auth,
        force_rport: raw.force_rport.unwrap_or(true),
        max_calls: raw.max_calls.unwrap_or(1000),
        max_calls_per_second: raw.max_calls_per_second.unwrap_or(300),
    })
}

/// `[rtp]`; the media address defaults to the SIP listen address.
pub(super) fn parse_rtp(
    cx: &Ctx<'_>,
    raw: RawRtp,
    listen: SocketAddr,
) -> Result<RtpConfig, ConfigError> {
    let ports = raw.ports.as_deref().unwrap_or("20000-29999");
    let (port_low, port_high) = parse_port_range(ports).ok_or_else(|| {
        cx.err("rtp.ports", format!("`{ports}` is not LOW-HIGH with 1024 <= LOW < HIGH <= 65535 and room for two RTP/RTCP pairs"))
    })?;
    let ip = match raw.ip.as_deref() {
        None => listen.ip(),
        Some(s) => s
            .parse()
            .map_err(|_| cx.err("rtp.ip", format!("`{s}` is not an IP address")))?,
    };
    let timeout_secs = raw.timeout_secs.unwrap_or(30);
    if !(1..=3600).contains(&timeout_secs) {
        return Err(cx.err(
            "rtp.timeout_secs",
            format!("{timeout_secs} is outside 1..=3600"),
        ));
    }
    Ok(RtpConfig {
        ip,
        port_low,
        port_high,
        timeout: Duration::from_secs(timeout_secs),
        workers: raw.workers.unwrap_or(0),
        srtp: super::srtp::parse_policy(cx, "rtp.srtp", raw.srtp.as_deref())?.unwrap_or_default(),
    })
}

/// `LOW-HIGH`, both within 1024..=65535, with room for at least two RTP/RTCP pairs.
pub fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (low, high): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (low >= 1024 && high > low && high - low >= 3).then_some((low, high))
}
