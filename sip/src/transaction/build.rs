//! The two requests the transaction layer builds by itself from an INVITE it sent.
//!
//! - The ACK for a non-2xx final response (RFC 3261 §17.1.1.3) is part of the INVITE
//!   transaction: same branch, so that the server transaction it reaches stops retransmitting.
//!   (The ACK for a 2xx is a new transaction of the dialog, built by the TU: see
//!   `dialog::Dialog::create_ack`.)
//! - A CANCEL (§9.1) is its own transaction but copies the INVITE's identity, top Via included,
//!   so that every hop can match it to the INVITE it cancels.

use crate::message::{CSeq, HeaderName, Method, Request, Response};

use super::TxError;

/// Request-URI, top Via (only), Max-Forwards, Route set, From, Call-ID and a CSeq with the same
/// number and `method`: the part ACK-for-non-2xx and CANCEL share. To is left to the caller.
fn copy_identity(invite: &Request, method: Method) -> Result<Request, TxError> {
    let h = &invite.headers;
    let via = h.top_via()?;
    let cseq = h.cseq()?;
    let call_id = h.call_id().ok_or(TxError::MissingCallId)?;
    let from = h
        .get(&HeaderName::From)
        .ok_or(TxError::MissingHeader("From"))?;
    let mut req = Request::new(method.clone(), invite.uri.clone());
    req.headers.push(HeaderName::Via, via.to_string());
    req.headers.push(HeaderName::MaxForwards, "70");
    req.headers.copy_from(h, &HeaderName::Route);
    req.headers.push(HeaderName::From, from);
    req.headers.push(HeaderName::CallId, call_id);
    req.headers.push(
        HeaderName::CSeq,
        CSeq {
            seq: cseq.seq,
            method,
        }
        .to_string(),
    );
    Ok(req)
}

/// RFC 3261 §17.1.1.3: the ACK for a 300-699 answer to `invite`. Its To is the response's
/// (with the tag the UAS added), everything else comes from the INVITE; no body.
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Result<Request, TxError> {
    let mut ack = copy_identity(invite, Method::Ack)?;
    let to = response
        .headers
        .get(&HeaderName::To)
        .ok_or(TxError::MissingHeader("To"))?;
    ack.headers.push(HeaderName::To, to);
    Ok(ack)
}

/// RFC 3261 §9.1: a CANCEL for `invite`: same Request-URI, Call-ID, From, To (without any tag
/// a response added), CSeq number and top Via as the INVITE, and its Route headers.
pub fn cancel_for(invite: &Request) -> Result<Request, TxError> {
    let mut cancel = copy_identity(invite, Method::Cancel)?;
    let to = invite
        .headers
        .get(&HeaderName::To)
        .ok_or(TxError::MissingHeader("To"))?;
    cancel.headers.push(HeaderName::To, to);
    Ok(cancel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse_datagram, SipMessage};

    #[test]
    fn ack_copies_the_invite_and_the_response_to() {
        let text = "INVITE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx1, SIP/2.0/UDP proxy;branch=z9hG4bKp\r\nRoute: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\nFrom: <sip:a@example.com>;tag=aa\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:a@192.0.2.1>\r\n\r\n";
        let Ok(SipMessage::Request(invite)) = parse_datagram(text.as_bytes()) else {
            panic!("parse")
        };
        let mut resp = Response::for_request(&invite, 486);
        resp.headers
            .set(HeaderName::To, "<sip:bob@example.com>;tag=bb");
        let ack = ack_for_non_2xx(&invite, &resp).expect("ack");
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        assert_eq!(ack.headers.get_all(&HeaderName::Via).count(), 1);
        assert_eq!(
            ack.headers.top_via().expect("via").branch(),
            Some("z9hG4bKx1")
        );
        assert_eq!(ack.headers.get_all(&HeaderName::Route).count(), 2);
        assert_eq!(ack.headers.to_addr().expect("to").tag(), Some("bb"));
        assert_eq!(ack.headers.cseq().expect("cseq").to_string(), "7 ACK");
        assert_eq!(ack.headers.get(&HeaderName::Contact), None);
        let cancel = cancel_for(&invite).expect("cancel");
        assert_eq!(cancel.headers.cseq().expect("cseq").to_string(), "7 CANCEL");
        assert_eq!(cancel.headers.to_addr().expect("to").tag(), None);
    }
}
