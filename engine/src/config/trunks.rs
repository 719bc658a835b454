//! `[[trunks]]`: the engine's SIP user registered with an IPBX, and the credentials used for
//! calls the engine places through it.

use std::net::IpAddr;

use serde::Deserialize;
use sip::sdp::SrtpPolicy;

use super::{ConfigError, Ctx};
use crate::acl::Network;
use crate::dialplan::{is_dialable, DialPolicy};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunk {
    name: String,
    registrar: String,
    username: String,
    password: String,
    auth_username: Option<String>,
    domain: Option<String>,
    expires: Option<u32>,
    register: Option<bool>,
    srtp: Option<String>,
    networks: Option<Vec<String>>,
    clear_bindings: Option<bool>,
    instance_id: Option<String>,
    reg_id: Option<u32>,
    dial_prefixes: Option<Vec<String>>,
    dial_max_digits: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct TrunkConfig {
    pub name: String,
    /// Registrar as a SIP URI (`sip:pbx.example.com:5060`).
    pub registrar: String,
    pub username: String,
    pub auth_username: String,
    pub password: String,
    pub domain: String,
    pub expires: u32,
    pub register: bool,
    /// SRTP policy of calls with this trunk's PBX (`None`: `rtp.srtp`).
    pub srtp: Option<SrtpPolicy>,
    /// Where the PBX's calls come from: `networks`, else the registrar when it is an IP
    /// literal (see `config/srtp.rs`).
    pub networks: Vec<Network>,
    /// Remove every binding of the user (`Contact: *`) before adding ours; `None`: on with
    /// an `[ha]` section (the other node's binding must go first), off without.
    pub clear_bindings: Option<bool>,
    /// RFC 5626 instance (`urn:uuid:...`) in our Contact, the same on both nodes of a pair.
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    /// Numbers callbacks and transfers may dial through this trunk.
    pub dial: DialPolicy,
}

/// `dial_prefixes` and `dial_max_digits` (of a trunk, or of `[sip]` for the PBX calls come
/// from): nothing is dialled on a caller's behalf without them.
pub(super) fn parse_dial(
    cx: &Ctx<'_>,
    key: &dyn Fn(&str) -> String,
    prefixes: Option<Vec<String>>,
    max_digits: Option<usize>,
) -> Result<DialPolicy, ConfigError> {
    let prefixes = prefixes.unwrap_or_default();
    for (i, p) in prefixes.iter().enumerate() {
        if !is_dialable(p) {
            return Err(cx.err(
                &key(&format!("dial_prefixes[{i}]")),
                format!("`{p}` is not digits with an optional leading +"),
            ));
        }
    }
    let max_digits = max_digits.unwrap_or(15);
    if !(1..=32).contains(&max_digits) {
        return Err(cx.err(
            &key("dial_max_digits"),
            format!("{max_digits} is outside 1..=32"),
        ));
    }
    Ok(DialPolicy {
        allowed_prefixes: prefixes,
        max_digits,
    })
}

pub(super) fn parse(cx: &Ctx<'_>, raw: Vec<RawTrunk>) -> Result<Vec<TrunkConfig>, ConfigError> {
    let mut trunks = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("trunks[{i}].{k}");
        if !t.registrar.starts_with("sip:") && !t.registrar.starts_with("sips:") {
            return Err(cx.err(
                &key("registrar"),
                format!("`{}` is not a sip: URI", t.registrar),
            ));
        }
        if t.username.is_empty() {
            return Err(cx.err(&key("username"), "must not be empty"));
        }
        if let Some(id) = &t.instance_id {
            let ok = id.starts_with("urn:")
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"\"<>".contains(&b));
            if !ok {
                return Err(cx.err(
                    &key("instance_id"),
                    format!("`{id}` is not a URN (urn:uuid:...)"),
                ));
            }
        }
        if t.reg_id.is_some() && t.instance_id.is_none() {
            return Err(cx.err(&key("reg_id"), "needs trunks.instance_id"));
        }
        let expires = t.expires.unwrap_or(3600);
        if !(60..=86_400).contains(&expires) {
            return Err(cx.err(
                &key("expires"),
                format!("{expires} is outside 60..=86400 seconds"),
            ));
        }
        let domain = t.domain.unwrap_or_else(|| {
            let rest = t
                .registrar
                .trim_start_matches("sips:")
                .trim_start_matches("sip:");
            rest.split([';', '?']).next().unwrap_or(rest).to_string()
        });
        let networks = match t.networks {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(n, s)| {
                    Network::parse(s).ok_or_else(|| {
                        cx.err(
                            &key(&format!("networks[{n}]")),
                            format!("`{s}` is not an address or ADDRESS/PREFIX"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => registrar_ip(&domain)
                .and_then(|ip| Network::parse(&ip.to_string()))
                .into_iter()
                .collect(),
        };
        let srtp = super::srtp::parse_policy(cx, &key("srtp"), t.srtp.as_deref())?;
        let dial = parse_dial(cx, &key, t.dial_prefixes, t.dial_max_digits)?;
        trunks.push(TrunkConfig {
            dial,
            auth_username: t.auth_username.unwrap_or_else(|| t.username.clone()),
            name: t.name,
            registrar: t.registrar,
            username: t.username,
            password: t.password,
            domain,
            expires,
            register: t.register.unwrap_or(true),
            srtp,
            networks,
            clear_bindings: t.clear_bindings,
            instance_id: t.instance_id,
            reg_id: t.reg_id,
        });
    }
    Ok(trunks)
}

/// The registrar's address when its host is an IP literal (`192.0.2.1:5060`, `[2001:db8::1]`).
fn registrar_ip(host_port: &str) -> Option<IpAddr> {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    host.parse().ok()
}
