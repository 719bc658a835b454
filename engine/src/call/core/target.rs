//! Where a leg goes: a SIP URI as given, an extension at its registered phone, or a number
//! through the PBX (the first trunk, with its credentials; without a trunk, back to the
//! PBX the call came from). Hosts must be IP literals in `sip.allowed_networks`: the
//! engine resolves no names a peer or a flow wrote.

use serde::{Deserialize, Serialize};
use sip::endpoint::{NextHop, Peer};
use sip::message::Uri;

use super::env::CallEnv;
use super::io::TargetError;
use crate::config::REGISTERED;

/// The request URI and next hop of a leg, and the trunk whose credentials answer a
/// challenge (the PBX may challenge the INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegTarget {
    pub uri: Uri,
    pub peer: Peer,
    pub trunk: Option<String>,
    /// The number dialled through the trunk or the PBX (not a URI or an agent's phone).
    #[serde(default)]
    pub number: Option<String>,
}

impl CallEnv {
    /// A transfer or supervision target: a SIP URI as given; an agent's extension at its
    /// registered phone; any other number through the PBX.
    pub(super) fn transfer_target(
        &self,
        target: &str,
        pbx: Peer,
    ) -> Result<LegTarget, TargetError> {
        if let Some(to) = self.sip_uri_target(target) {
            return to;
        }
        if target.starts_with("tel:") {
            return Err(TargetError::Tel);
        }
        if let Some(uri) = self.contacts.contact(target) {
            return self.direct_target(uri);
        }
        self.via_pbx(target, pbx)
    }

    /// Where to ring an agent: its registered phone, its SIP URI, or its extension on the
    /// PBX (a bare number: through the first trunk, with its credentials).
    pub(super) fn agent_target(
        &self,
        agent: &str,
        contact: &str,
        pbx: Peer,
    ) -> Result<LegTarget, TargetError> {
        if contact == REGISTERED {
            let uri = self
                .contacts
                .contact(agent)
                .ok_or(TargetError::Unregistered)?;
            return self.direct_target(uri);
        }
        self.sip_uri_target(contact)
            .unwrap_or_else(|| self.via_pbx(contact, pbx))
    }

    /// A target written as a SIP URI (None: not a `sip:`/`sips:` URI).
    fn sip_uri_target(&self, text: &str) -> Option<Result<LegTarget, TargetError>> {
        (text.starts_with("sip:") || text.starts_with("sips:")).then(|| {
            Uri::parse(text)
                .map_err(|e| TargetError::NotSip(format!("`{text}` ({e})")))
                .and_then(|uri| self.direct_target(uri))
        })
    }

    /// A leg sent straight to `uri`, no credentials.
    fn direct_target(&self, uri: Uri) -> Result<LegTarget, TargetError> {
        let peer = self.leg_peer(&uri)?;
        Ok(LegTarget {
            uri,
            peer,
            trunk: None,
            number: None,
        })
    }

    /// A number dialled through the PBX: `sip:<number>@<first trunk's registrar>` with that
    /// trunk's credentials; without a trunk, back to the PBX the call came from.
    pub(super) fn via_pbx(&self, number: &str, pbx: Peer) -> Result<LegTarget, TargetError> {
        if number.is_empty()
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#-._".contains(c))
        {
            return Err(TargetError::NotANumber(number.to_string()));
        }
        let Some(trunk) = self.config.trunks.first() else {
            let text = format!(
                "sip:{number}@{}:{}",
                crate::call::host(pbx.addr.ip()),
                pbx.addr.port()
            );
            let uri = Uri::parse(&text).map_err(|e| TargetError::NotSip(e.to_string()))?;
            return Ok(LegTarget {
                uri,
                peer: pbx,
                trunk: None,
                number: Some(number.to_string()),
            });
        };
        let trunk_error = |error: String| TargetError::Trunk {
            trunk: trunk.name.clone(),
            error,
        };
        let registrar =
            Uri::parse(&trunk.registrar).map_err(|e| trunk_error(format!("registrar: {e}")))?;
        let peer = self
            .leg_peer(&registrar)
            .map_err(|e| trunk_error(e.to_string()))?;
        let host = registrar
            .as_sip()
            .map(|u| u.host.clone())
            .unwrap_or_default();
        let uri = Uri::parse(&format!("sip:{number}@{host}:{}", peer.addr.port()))
            .map_err(|e| TargetError::NotSip(e.to_string()))?;
        Ok(LegTarget {
            uri,
            peer,
            trunk: Some(trunk.name.clone()),
            number: Some(number.to_string()),
        })
    }

    /// Where a SIP URI given as contact or target is sent: its host must be an IP literal
    /// (no DNS for contacts) inside `sip.allowed_networks`; `sips:` or `;transport=tls` go
    /// over TLS (port 5061 by default), `;transport=tcp` over TCP.
    fn leg_peer(&self, uri: &Uri) -> Result<Peer, TargetError> {
        let hop = NextHop::from_uri(uri).ok_or_else(|| TargetError::NotSip(uri.to_string()))?;
        let peer = hop
            .peer()
            .ok_or_else(|| TargetError::NotAnIp(hop.host.clone()))?;
        if !self.config.sip.allowed.allows(peer.addr.ip()) {
            return Err(TargetError::NotAllowed(peer.addr.ip()));
        }
        Ok(peer)
    }
}
