//! The UAS core's checks before a request reaches a call (RFC 3261 §8.2), as a pure
//! function: given a request outside any transaction the engine already handles, either an
//! error response to send or "go on". Ordered as §8.2 orders them: method, URI scheme,
//! headers (Require), content (Content-Type, Accept), then Max-Forwards for INVITE.

use sip::message::{HeaderName, Method, Request, Response, Uri};

/// Methods the engine serves; the Allow header of every 405/501/OPTIONS answer.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY, REFER";

/// Option tags the engine supports (none required of peers yet).
pub const SUPPORTED: &[&str] = &[];

/// Methods that only make sense inside a call dialog.
pub fn is_dialog_method(m: &Method) -> bool {
    matches!(
        m,
        Method::Bye
            | Method::Info
            | Method::Update
            | Method::Notify
            | Method::Refer
            | Method::Prack
    )
}

fn with_allow(mut r: Response) -> Response {
    r.headers.push(HeaderName::Allow, ALLOW);
    r
}

/// Accept values that admit SDP.
fn accepts_sdp(req: &Request) -> bool {
    let values = req.headers.tokens(&HeaderName::Accept);
    values.is_empty()
        || values.iter().any(|v| {
            let v = v.to_ascii_lowercase();
            v == "application/sdp" || v == "application/*" || v == "*/*"
        })
}

/// Returns the error answer for a request the engine cannot serve, or `None`.
pub fn screen(req: &Request) -> Option<Response> {
    match &req.method {
        Method::Invite
        | Method::Ack
        | Method::Bye
        | Method::Cancel
        | Method::Options
        | Method::Info
        | Method::Update
        | Method::Notify
        | Method::Refer => {}
        Method::Extension(_) => return Some(with_allow(Response::for_request(req, 501))),
        _ => return Some(with_allow(Response::for_request(req, 405))),
    }
    if req.method == Method::Ack {
        return None;
    }
    match &req.uri {
        Uri::Sip(_) | Uri::Tel(_) => {}
        Uri::Other { .. } => return Some(Response::for_request(req, 416)),
    }
    if req.method != Method::Cancel {
        let unsupported: Vec<String> = req
            .headers
            .tokens(&HeaderName::Require)
            .into_iter()
            .filter(|t| !SUPPORTED.contains(&t.as_str()))
            .collect();
        if !unsupported.is_empty() {
            let mut r = Response::for_request(req, 420);
            r.headers
                .push(HeaderName::Unsupported, unsupported.join(", "));
            return Some(r);
        }
    }
    if matches!(req.method, Method::Invite | Method::Update) && !req.body.is_empty() {
        match req.headers.content_type().as_deref() {
            Some("application/sdp") => {}
            _ => {
                let mut r = Response::for_request(req, 415);
                r.headers.push(HeaderName::Accept, "application/sdp");
                return Some(r);
            }
        }
    }
    if matches!(req.method, Method::Invite | Method::Options) && !accepts_sdp(req) {
        let mut r = Response::for_request(req, 406);
        r.headers.push(HeaderName::Accept, "application/sdp");
        return Some(r);
    }
    // A UAS answers OPTIONS itself even at Max-Forwards 0 (RFC 3261 §11); an INVITE that
    // arrives with no hops left is a loop somewhere upstream.
    if req.method == Method::Invite && req.headers.max_forwards().ok().flatten() == Some(0) {
        return Some(Response::for_request(req, 483));
    }
    None
}

/// The 200 answer to an OPTIONS (capabilities, RFC 3261 §11.2).
pub fn options_answer(req: &Request, user_agent: &str) -> Response {
    let mut r = with_allow(Response::for_request(req, 200));
    r.headers.push(HeaderName::Accept, "application/sdp");
    r.headers
        .push(HeaderName::Other("Accept-Language".into()), "en, fr");
    r.headers.push(HeaderName::Server, user_agent);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::message::{parse_datagram, SipMessage};

    fn req(text: &str) -> Request {
        let text = text.replace('\n', "\r\n");
        match parse_datagram(text.as_bytes()) {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    const HEAD: &str = "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: c1\nMax-Forwards: 70\n";

    #[test]
    fn methods() {
        let r = screen(&req(&format!(
            "REGISTER sip:y SIP/2.0\n{HEAD}CSeq: 1 REGISTER\n\n"
        )))
        .expect("405");
        assert_eq!(r.status, 405);
        assert_eq!(r.headers.get(&HeaderName::Allow), Some(ALLOW));
        let r = screen(&req(&format!("FOO sip:y SIP/2.0\n{HEAD}CSeq: 1 FOO\n\n"))).expect("501");
        assert_eq!(r.status, 501);
        assert!(screen(&req(&format!(
            "OPTIONS sip:y SIP/2.0\n{HEAD}CSeq: 1 OPTIONS\n\n"
        )))
        .is_none());
    }

    #[test]
    fn scheme_require_content() {
        let r = screen(&req(&format!(
            "INVITE nobody:x SIP/2.0\n{HEAD}CSeq: 1 INVITE\n\n"
        )))
        .expect("416");
        assert_eq!(r.status, 416);
        let r = screen(&req(&format!(
            "INVITE sip:y SIP/2.0\n{HEAD}CSeq: 1 INVITE\nRequire: nothingyet, 100rel\n\n"
        )))
        .expect("420");
        assert_eq!(
            (r.status, r.headers.get(&HeaderName::Unsupported)),
            (420, Some("nothingyet, 100rel"))
        );
        let r = screen(&req(&format!("INVITE sip:y SIP/2.0\n{HEAD}CSeq: 1 INVITE\nContent-Type: application/unknown\nContent-Length: 3\n\nabc"))).expect("415");
        assert_eq!(
            (r.status, r.headers.get(&HeaderName::Accept)),
            (415, Some("application/sdp"))
        );
        let r = screen(&req(&format!(
            "INVITE sip:y SIP/2.0\n{HEAD}CSeq: 1 INVITE\nAccept: text/nobodyKnowsThis\n\n"
        )))
        .expect("406");
        assert_eq!(r.status, 406);
    }

    #[test]
    fn max_forwards_zero() {
        let head = HEAD.replace("Max-Forwards: 70", "Max-Forwards: 0");
        assert_eq!(
            screen(&req(&format!(
                "INVITE sip:y SIP/2.0\n{head}CSeq: 1 INVITE\n\n"
            )))
            .map(|r| r.status),
            Some(483)
        );
        assert!(screen(&req(&format!(
            "OPTIONS sip:y SIP/2.0\n{head}CSeq: 1 OPTIONS\n\n"
        )))
        .is_none());
    }
}
