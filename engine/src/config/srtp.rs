//! SRTP policies (`rtp.srtp`, `trunks[].srtp`, `agents[].srtp`) and how a call finds its own.
//!
//! An inbound call, and a leg the engine places, is matched to a trunk by its peer's address:
//! the trunk's `networks`, by default the registrar's address when it is an IP literal; the
//! first trunk that matches and sets `srtp` gives the policy. A leg to an agent's phone takes
//! the agent's `srtp`. Anything else takes `rtp.srtp` (default `optional`).

use std::net::IpAddr;

use sip::sdp::SrtpPolicy;

use super::{ConfigError, Ctx, EngineConfig};

/// `off`, `optional` or `required`, for `key`.
pub(super) fn parse_policy(
    cx: &Ctx<'_>,
    key: &str,
    value: Option<&str>,
) -> Result<Option<SrtpPolicy>, ConfigError> {
    value
        .map(|v| {
            SrtpPolicy::parse(v).ok_or_else(|| {
                cx.err(
                    key,
                    format!("`{v}` is not an SRTP policy (off, optional, required)"),
                )
            })
        })
        .transpose()
}

impl EngineConfig {
    /// The SRTP policy of a call with the peer at `ip` (a PBX on a trunk, or anyone else).
    pub fn srtp_for_peer(&self, ip: IpAddr) -> SrtpPolicy {
        self.trunks
            .iter()
            .filter(|t| t.networks.iter().any(|n| n.contains(ip)))
            .find_map(|t| t.srtp)
            .unwrap_or(self.rtp.srtp)
    }

    /// The SRTP policy of a leg to agent `agent`'s phone.
    pub fn srtp_for_agent(&self, agent: &str) -> SrtpPolicy {
        self.agent_srtp.get(agent).copied().unwrap_or(self.rtp.srtp)
    }
}
