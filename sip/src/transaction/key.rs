//! Transaction keys: which transaction a message belongs to.
//!
//! - A response matches a client transaction by the branch of its top Via and its CSeq method
//!   (RFC 3261 §17.1.3). The method is needed because a CANCEL shares its INVITE's branch.
//! - A request matches a server transaction (§17.2.3) by branch, sent-by and method, when the
//!   branch starts with the magic cookie `z9hG4bK`; an ACK matches its INVITE, a CANCEL has a
//!   transaction of its own (§9.2 then finds the INVITE the CANCEL targets with the INVITE key).
//!   We also compare Call-ID and CSeq number, which every retransmission, ACK and CANCEL
//!   repeats: narrower than §17.2.3 for no legitimate message, it keeps apart different
//!   requests from peers that reuse a branch (the RFC 4475 corpus does, e.g. cparam01/02).
//! - Without the cookie (RFC 2543 peers, and RFC 4475 §3.2.1's branch that *is* only the cookie),
//!   the request is matched by Request-URI, From tag, Call-ID, CSeq number and method, and the
//!   whole top Via. The To tag is left out of the key: an ACK carries the tag of our response,
//!   which its INVITE did not have, so the owner checks it separately (see [`ServerKey::to_tag`]).

use crate::message::{Method, Request, Response, Via, MAGIC_COOKIE};

use super::TxError;

/// An ACK belongs to the INVITE transaction it acknowledges; every other method to its own.
fn transaction_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        other => other.clone(),
    }
}

/// True when `branch` is an RFC 3261 branch: the magic cookie followed by something unique.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

/// Key of a client transaction: the branch we generated and the request method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    pub fn of_request(request: &Request) -> Result<ClientKey, TxError> {
        let via = request.headers.top_via()?;
        let branch = via.branch().ok_or(TxError::MissingBranch)?;
        Ok(ClientKey {
            branch: branch.to_string(),
            method: request.method.clone(),
        })
    }

    pub fn of_response(response: &Response) -> Result<ClientKey, TxError> {
        let via = response.headers.top_via()?;
        let branch = via.branch().ok_or(TxError::MissingBranch)?;
        let method = response.headers.cseq()?.method;
        Ok(ClientKey {
            branch: branch.to_string(),
            method,
        })
    }
}

/// Key of a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// RFC 3261 §17.2.3: branch, sent-by (`host:port`, host lower-cased, port defaulted) and
    /// method (INVITE for an ACK), plus Call-ID and CSeq number (see the module docs).
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
        call_id: String,
        cseq: u32,
    },
    /// RFC 2543 fallback: everything that identified a request before branches were unique.
    Rfc2543 {
        request_uri: String,
        from_tag: Option<String>,
        call_id: String,
        cseq: u32,
        method: Method,
        top_via: String,
    },
}

fn sent_by(via: &Via) -> String {
    let default = if via.transport == "TLS" { 5061 } else { 5060 };
    format!(
        "{}:{}",
        via.host.to_ascii_lowercase(),
        via.port.unwrap_or(default)
    )
}

impl ServerKey {
    /// The key of the server transaction `request` belongs to (an ACK: its INVITE's).
    pub fn of_request(request: &Request) -> Result<ServerKey, TxError> {
        Self::with_method(request, transaction_method(&request.method))
    }

    /// The key of the INVITE transaction a CANCEL targets (§9.2): the CANCEL's own key with
    /// the method INVITE, since it copies the INVITE's branch, Request-URI, From, Call-ID and
    /// CSeq number.
    pub fn cancelled_by(cancel: &Request) -> Result<ServerKey, TxError> {
        Self::with_method(cancel, Method::Invite)
    }

    fn with_method(request: &Request, method: Method) -> Result<ServerKey, TxError> {
        let via = request.headers.top_via()?;
        let call_id = request
            .headers
            .call_id()
            .ok_or(TxError::MissingCallId)?
            .to_string();
        let cseq = request.headers.cseq()?.seq;
        if let Some(branch) = via.branch().filter(|b| is_rfc3261_branch(b)) {
            return Ok(ServerKey::Branch {
                branch: branch.to_string(),
                sent_by: sent_by(&via),
                method,
                call_id,
                cseq,
            });
        }
        Ok(ServerKey::Rfc2543 {
            request_uri: request.uri.to_string(),
            from_tag: request.headers.from_addr()?.tag().map(str::to_string),
            call_id,
            cseq,
            method,
            top_via: via.to_string(),
        })
    }

    pub fn is_rfc2543(&self) -> bool {
        matches!(self, ServerKey::Rfc2543 { .. })
    }

    /// The To tag a request carries, for the RFC 2543 checks the key leaves out: a
    /// retransmitted request repeats the original's To tag, an ACK carries our response's.
    pub fn to_tag(request: &Request) -> Option<String> {
        request.headers.to_addr().ok()?.tag().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse_datagram, SipMessage};

    fn req(text: &str) -> Request {
        match parse_datagram(text.replace('\n', "\r\n").as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP Host.example.com;branch=z9hG4bKabc\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: x\nCSeq: 1 INVITE\nMax-Forwards: 70\n\n";

    #[test]
    fn ack_and_cancel_keys() {
        let invite = req(INVITE);
        let ack = req(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace("<sip:bob@example.com>\n", "<sip:bob@example.com>;tag=9\n"));
        let cancel = req(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL"));
        let k = ServerKey::of_request(&invite).expect("key");
        assert_eq!(ServerKey::of_request(&ack).expect("ack"), k);
        assert_ne!(ServerKey::of_request(&cancel).expect("cancel"), k);
        assert_eq!(ServerKey::cancelled_by(&cancel).expect("target"), k);
        // sent-by: host case-insensitive, port defaulted.
        let same = req(&INVITE.replace("Host.example.com", "host.example.com:5060"));
        assert_eq!(ServerKey::of_request(&same).expect("key"), k);
    }

    #[test]
    fn bare_cookie_falls_back_to_rfc2543() {
        let invite = req(&INVITE.replace("z9hG4bKabc", "z9hG4bK"));
        assert!(ServerKey::of_request(&invite).expect("key").is_rfc2543());
        let old = req(&INVITE.replace(";branch=z9hG4bKabc", ""));
        let k = ServerKey::of_request(&old).expect("key");
        assert!(k.is_rfc2543());
        let other_cseq = req(&INVITE
            .replace(";branch=z9hG4bKabc", "")
            .replace("1 INVITE", "2 INVITE"));
        assert_ne!(ServerKey::of_request(&other_cseq).expect("key"), k);
    }
}
