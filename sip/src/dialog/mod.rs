//! Dialogs: RFC 3261 §12, the peer-to-peer relationship an INVITE (or another dialog-creating
//! request) establishes, and which every later request of the call must follow.
//!
//! A dialog is identified by Call-ID, local tag and remote tag ([`DialogId`]); the tags are
//! swapped between the two sides, so "local" always means ours: the To tag of a request we
//! receive, the From tag of a request we send. Its state is plain data ([`Dialog`]'s fields
//! are public so the engine can snapshot and replicate a call):
//!
//! - **remote target**: the peer's Contact, where in-dialog requests go; replaced by target
//!   refresh requests (re-INVITE, UPDATE; SUBSCRIBE/NOTIFY per RFC 6665) and by the 2xx to
//!   ours (§12.2.1.2, §12.2.2);
//! - **route set**: the Record-Route of the dialog-creating exchange, in request order as the
//!   UAS received it, reversed by the UAC (who reads it from the response, §12.1.2). With a
//!   first route lacking `lr` (an RFC 2543 strict router), the Request-URI is that route and
//!   the remote target goes last in the Route header (§12.2.1.1);
//! - **CSeq**: ours increments for each request (ACK and CANCEL reuse their INVITE's number);
//!   the peer's must never go down, or the request is answered 500 (§12.2.2).
//!
//! Requests are built without a Via: the transaction user adds it with its local address,
//! and the endpoint adds the branch. Sending goes to [`Dialog::target_addr`], the first route
//! or the remote target.

#[cfg(test)]
mod tests;

use rand::Rng;

use crate::endpoint::NextHop;
use crate::message::{CSeq, HeaderError, HeaderName, Method, NameAddr, Request, Response, Uri};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("missing Call-ID")]
    MissingCallId,
    #[error("the {0} has no Contact, so the dialog has no remote target")]
    MissingContact(&'static str),
    #[error("CSeq {got} is lower than the remote CSeq {remote}: out of order (answer 500)")]
    CSeqOutOfOrder { got: u32, remote: u32 },
    #[error("the request does not belong to this dialog")]
    NotInDialog,
    #[error("the peer answered {status} to an in-dialog request: the dialog is gone (§12.2.1.2)")]
    Ended { status: u16 },
}

/// Call-ID plus both tags, local first (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    /// Empty when an RFC 2543 peer sent no tag (§12.1.1 allows it).
    pub remote_tag: String,
}

fn tag_of(addr: &NameAddr) -> String {
    addr.tag().unwrap_or_default().to_string()
}

impl DialogId {
    /// The dialog a received request belongs to: local tag = To tag, remote = From tag.
    /// `None` outside a dialog (no To tag) or with unreadable headers.
    pub fn of_incoming_request(request: &Request) -> Option<DialogId> {
        let h = &request.headers;
        let local_tag = h.to_addr().ok()?.tag()?.to_string();
        Some(DialogId {
            call_id: h.call_id()?.to_string(),
            local_tag,
            remote_tag: tag_of(&h.from_addr().ok()?),
        })
    }

    /// The dialog a response to one of our requests belongs to: local = From, remote = To tag.
    pub fn of_incoming_response(response: &Response) -> Option<DialogId> {
        let h = &response.headers;
        let local_tag = h.from_addr().ok()?.tag()?.to_string();
        Some(DialogId {
            call_id: h.call_id()?.to_string(),
            local_tag,
            remote_tag: tag_of(&h.to_addr().ok()?),
        })
    }
}

/// Requests whose Contact replaces the remote target (RFC 3261 §12.2, RFC 3311, RFC 6665).
fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

fn without_tag(mut addr: NameAddr) -> NameAddr {
    addr.params.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
    addr
}

fn first_contact(
    headers: &crate::message::Headers,
    what: &'static str,
) -> Result<Uri, DialogError> {
    headers
        .contacts()?
        .into_iter()
        .next()
        .map(|c| c.uri)
        .ok_or(DialogError::MissingContact(what))
}

/// A URI fit for a Request-URI: no `method` parameter, no headers (RFC 3261 §19.1.1 Table 1).
fn as_request_uri(uri: &Uri) -> Uri {
    match uri {
        Uri::Sip(sip) => {
            let mut sip = sip.clone();
            sip.params
                .retain(|(n, _)| !n.eq_ignore_ascii_case("method"));
            sip.headers = None;
            Uri::Sip(sip)
        }
        other => other.clone(),
    }
}

/// Serde writes URIs and name-addrs in their SIP text form (see `message`), so a saved
/// dialog reads like the headers it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialog {
    pub id: DialogId,
    /// Our address of record (From of our requests), without tag.
    pub local_uri: NameAddr,
    /// The peer's (To of our requests), without tag.
    pub remote_uri: NameAddr,
    /// Our Contact, sent in target refresh requests and dialog-creating responses.
    pub local_contact: Uri,
    pub remote_target: Uri,
    /// Route set in the order our requests list it.
    pub route_set: Vec<NameAddr>,
    /// The last CSeq number we used; the next request takes the one after it.
    pub local_cseq: u32,
    /// The highest CSeq number the peer used, once it sent a request.
    pub remote_cseq: Option<u32>,
    /// `sips:` Request-URI in the creating request (TLS end to end, §12.1).
    pub secure: bool,
}

impl Dialog {
    /// The UAS side, from a dialog-creating request we answer (§12.1.1) with a response
    /// carrying `local_tag` as To tag and `local_contact` as Contact (see
    /// [`Dialog::prepare_response`]).
    pub fn new_uas(
        request: &Request,
        local_tag: &str,
        local_contact: Uri,
    ) -> Result<Dialog, DialogError> {
        let h = &request.headers;
        let from = h.from_addr()?;
        let call_id = h.call_id().ok_or(DialogError::MissingCallId)?.to_string();
        // An RFC 2543 peer may send no Contact: its From URI is the best target left (the
        // engine sends in-dialog requests back to the request's source anyway when the
        // target is not a usable address).
        let remote_target = match first_contact(h, "request") {
            Ok(uri) => uri,
            Err(DialogError::MissingContact(_)) => from.uri.clone(),
            Err(e) => return Err(e),
        };
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_string(),
                remote_tag: tag_of(&from),
            },
            local_uri: without_tag(h.to_addr()?),
            remote_uri: without_tag(from),
            local_contact,
            remote_target,
            route_set: h.name_addrs(&HeaderName::RecordRoute)?,
            // §8.1.1.5: any start below 2^31; below 2^30 leaves room to never wrap.
            local_cseq: rand::thread_rng().gen_range(1..(1u32 << 30)),
            remote_cseq: Some(h.cseq()?.seq),
            secure: matches!(&request.uri, Uri::Sip(u) if u.secure),
        })
    }

    /// The UAC side, from the request we sent and the 2xx (or tagged 1xx, for an early
    /// dialog) that answered it (§12.1.2).
    pub fn new_uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        let (h, rh) = (&request.headers, &response.headers);
        let from = h.from_addr()?;
        let to = rh.to_addr()?;
        let call_id = h.call_id().ok_or(DialogError::MissingCallId)?.to_string();
        let mut route_set = rh.name_addrs(&HeaderName::RecordRoute)?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: tag_of(&from),
                remote_tag: tag_of(&to),
            },
            local_uri: without_tag(from),
            remote_uri: without_tag(to),
            local_contact: first_contact(h, "request")?,
            remote_target: first_contact(rh, "response")?,
            route_set,
            local_cseq: h.cseq()?.seq,
            remote_cseq: None,
            secure: matches!(&request.uri, Uri::Sip(u) if u.secure),
        })
    }

    /// Does a received request belong to this dialog?
    pub fn matches(&self, request: &Request) -> bool {
        DialogId::of_incoming_request(request).is_some_and(|id| id == self.id)
    }

    /// The dialog id of a received in-dialog request (local tag = To tag), to find its dialog.
    pub fn id_of_request(request: &Request) -> Option<DialogId> {
        DialogId::of_incoming_request(request)
    }

    /// A new request in the dialog (§12.2.1.1), with the next CSeq. Use
    /// [`Dialog::create_ack`] for the ACK of a 2xx; the endpoint builds CANCELs.
    pub fn create_request(&mut self, method: Method) -> Request {
        if !matches!(method, Method::Ack | Method::Cancel) {
            self.local_cseq = self.local_cseq.saturating_add(1);
        }
        let seq = self.local_cseq;
        self.request_with_cseq(method, seq)
    }

    /// The ACK for a 2xx to our (re-)INVITE (§13.2.2.4): the INVITE's CSeq number, the
    /// dialog's routing. The TU sends it with `Endpoint::send_stateless`, again for every
    /// retransmission of the 2xx.
    pub fn create_ack(&self, invite_2xx: &Response) -> Request {
        let seq = invite_2xx
            .headers
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(self.local_cseq);
        self.request_with_cseq(Method::Ack, seq)
    }

    fn request_with_cseq(&self, method: Method, seq: u32) -> Request {
        let strict_first = self
            .route_set
            .first()
            .filter(|r| !matches!(&r.uri, Uri::Sip(u) if u.param("lr").is_some()));
        let (uri, routes): (Uri, Vec<String>) = match strict_first {
            None => (
                self.remote_target.clone(),
                self.route_set.iter().map(NameAddr::to_string).collect(),
            ),
            // Strict routing: the first route becomes the Request-URI, the remote target the
            // last Route value.
            Some(first) => {
                let mut routes: Vec<String> = self
                    .route_set
                    .iter()
                    .skip(1)
                    .map(NameAddr::to_string)
                    .collect();
                routes.push(NameAddr::new(self.remote_target.clone()).to_string());
                (as_request_uri(&first.uri), routes)
            }
        };
        let mut req = Request::new(method.clone(), uri);
        let h = &mut req.headers;
        h.push(HeaderName::MaxForwards, "70");
        for r in routes {
            h.push(HeaderName::Route, r);
        }
        h.push(
            HeaderName::From,
            self.local_uri
                .clone()
                .with_tag(&self.id.local_tag)
                .to_string(),
        );
        let to = match self.id.remote_tag.as_str() {
            "" => self.remote_uri.clone(),
            tag => self.remote_uri.clone().with_tag(tag),
        };
        h.push(HeaderName::To, to.to_string());
        h.push(HeaderName::CallId, self.id.call_id.clone());
        h.push(
            HeaderName::CSeq,
            CSeq {
                seq,
                method: method.clone(),
            }
            .to_string(),
        );
        if is_target_refresh(&method) {
            h.push(
                HeaderName::Contact,
                NameAddr::new(self.local_contact.clone()).to_string(),
            );
        }
        req
    }

    /// Completes a response to the dialog-creating request (UAS side, §12.1.1): our To tag,
    /// our Contact, and the request's Record-Route copied back.
    pub fn prepare_response(&self, response: &mut Response) {
        if let Ok(to) = response.headers.to_addr() {
            if to.tag().is_none() {
                response
                    .headers
                    .set(HeaderName::To, to.with_tag(&self.id.local_tag).to_string());
            }
        }
        response.headers.set(
            HeaderName::Contact,
            NameAddr::new(self.local_contact.clone()).to_string(),
        );
        response.headers.remove(&HeaderName::RecordRoute);
        for r in &self.route_set {
            response
                .headers
                .push(HeaderName::RecordRoute, r.to_string());
        }
    }

    /// A request received in this dialog (§12.2.2): checks and advances the remote CSeq and
    /// applies a target refresh. `CSeqOutOfOrder` must be answered 500.
    pub fn handle_request(&mut self, request: &Request) -> Result<(), DialogError> {
        if !self.matches(request) {
            return Err(DialogError::NotInDialog);
        }
        // ACK and CANCEL repeat their INVITE's number: neither checked nor counted.
        if !matches!(request.method, Method::Ack | Method::Cancel) {
            let got = request.headers.cseq()?.seq;
            if let Some(remote) = self.remote_cseq.filter(|r| got < *r) {
                return Err(DialogError::CSeqOutOfOrder { got, remote });
            }
            self.remote_cseq = Some(got);
        }
        if is_target_refresh(&request.method) {
            if let Some(contact) = request.headers.contacts()?.into_iter().next() {
                self.remote_target = contact.uri;
            }
        }
        Ok(())
    }

    /// A response to one of our in-dialog requests (§12.2.1.2): a 2xx to a target refresh
    /// replaces the remote target; 481 and 408 end the dialog (`Ended`).
    pub fn handle_response(&mut self, response: &Response) -> Result<(), DialogError> {
        if matches!(response.status, 408 | 481) {
            return Err(DialogError::Ended {
                status: response.status,
            });
        }
        if (200..300).contains(&response.status)
            && is_target_refresh(&response.headers.cseq()?.method)
        {
            if let Some(contact) = response.headers.contacts()?.into_iter().next() {
                self.remote_target = contact.uri;
            }
        }
        Ok(())
    }

    /// Where the next request goes: the first route if any, else the remote target. The
    /// driver resolves names (RFC 3263); IP literals give a peer at once. `None` for a
    /// non-SIP URI.
    pub fn target_addr(&self) -> Option<NextHop> {
        let uri = self
            .route_set
            .first()
            .map(|r| &r.uri)
            .unwrap_or(&self.remote_target);
        NextHop::from_uri(uri)
    }
}
