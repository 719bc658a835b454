//! The call half of the SIP actor: placing a call (with one digest retry), ringing and
//! answering, in-dialog requests (re-INVITE, BYE, INFO), and ending a call every way.
//! One call at a time; [`CallState`] says where it stands.

use std::time::Instant;

use sip::auth::{parse_challenges, random_cnonce, ChallengeKind, DigestClient, DigestRequest};
use sip::dialog::Dialog;
use sip::endpoint::{new_call_id, new_tag, ClientTxId, NextHop, Peer, ServerTxId};
use sip::message::{CSeq, HeaderName, Method, NameAddr, Request, Response, SipMessage, Uri};
use sip::sdp::{Direction, Negotiated, SdpSession, SessionDescription};

use super::super::media::{dtmf_event, MediaCommand, MediaParams};
use super::super::{AnswerMode, DtmfVia, Ended, PhoneError, PhoneEvent};
use super::{with_via, Ua, ALLOW, SDP};

#[derive(Debug)]
pub(super) enum CallState {
    /// An incoming INVITE we answered 180.
    Ringing {
        tx: ServerTxId,
        invite: Box<Request>,
        answer_at: Option<Instant>,
    },
    /// We sent 200; the ACK confirms the call.
    Answered {
        tx: ServerTxId,
    },
    /// Our INVITE awaits its final response.
    Calling {
        invite: Box<Request>,
        auth_tried: bool,
        cancelled: bool,
        rang: bool,
    },
    Confirmed,
    /// We sent BYE; its answer (or timeout) ends the call as `why`.
    Ending {
        tx: ClientTxId,
        why: Ended,
    },
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) number: u32,
    pub(super) sdp: SdpSession,
    pub(super) dialog: Option<Dialog>,
    /// Where the INVITE came from or went: in-dialog requests go there when the remote
    /// target is not an IP address.
    pub(super) peer: Peer,
    pub(super) state: CallState,
    /// Our latest INVITE's transaction, to ACK retransmitted 2xx.
    pub(super) invite_tx: Option<ClientTxId>,
    /// We put an offer in a 2xx (the INVITE had none): the answer comes in the ACK.
    pub(super) answer_in_ack: bool,
}

impl Call {
    /// Where in-dialog requests go: the dialog's target if it is an address, else `peer`.
    pub(super) fn target(&self) -> Peer {
        self.dialog
            .as_ref()
            .and_then(Dialog::target_addr)
            .and_then(|hop| hop.peer())
            .filter(|p| !p.addr.ip().is_unspecified())
            .unwrap_or(self.peer)
    }
}

pub(super) fn media_params(n: &Negotiated) -> MediaParams {
    MediaParams {
        remote: n.remote_rtp,
        codec: n.codec.codec,
        payload_type: n.codec.payload_type,
        telephone_event: n.telephone_event,
        send: n.direction.sends(),
    }
}

/// The digit of an INFO body: `Signal=5` (application/dtmf-relay) or a bare `5`
/// (application/dtmf).
fn info_digit(request: &Request) -> Option<char> {
    let body = std::str::from_utf8(&request.body).ok()?;
    let value = match request.headers.content_type()?.as_str() {
        "application/dtmf-relay" => body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v)
        })?,
        "application/dtmf" => body,
        _ => return None,
    };
    let mut chars = value.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => dtmf_event(c).map(|_| c.to_ascii_uppercase()),
        _ => None,
    }
}

impl Ua {
    // ---- outgoing calls ----

    pub(super) async fn place_call(&mut self, uri: &str) -> Result<u32, PhoneError> {
        let bad = || PhoneError::BadUri(uri.to_string());
        let target = Uri::parse(uri).map_err(|_| bad())?;
        let peer = NextHop::from_uri(&target)
            .and_then(|hop| hop.peer())
            .ok_or_else(bad)?;
        if self.call.is_some() {
            return Err(PhoneError::Busy);
        }
        let host = self
            .config
            .domain
            .clone()
            .unwrap_or_else(|| peer.addr.ip().to_string());
        let from = Uri::parse(&format!("sip:{}@{host}", self.config.user)).map_err(|_| bad())?;
        let mut sdp = SdpSession::new(self.local_media());
        let offer = sdp.offer(Direction::SendRecv);
        let mut invite = Request::new(Method::Invite, target.clone());
        let h = &mut invite.headers;
        h.push(
            HeaderName::From,
            NameAddr::new(from).with_tag(&new_tag()).to_string(),
        );
        h.push(HeaderName::To, NameAddr::new(target).to_string());
        h.push(HeaderName::CallId, new_call_id());
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(
            HeaderName::Contact,
            NameAddr::new(self.contact.clone()).to_string(),
        );
        h.push(HeaderName::Allow, ALLOW);
        h.push(HeaderName::ContentType, SDP);
        invite.body = offer.to_string().into();
        let invite = with_via(self.local, invite);
        let tx = self.sip.send_request(invite.clone(), peer).await?;
        self.calls += 1;
        self.call = Some(Call {
            number: self.calls,
            sdp,
            dialog: None,
            peer,
            state: CallState::Calling {
                invite: Box::new(invite),
                auth_tried: false,
                cancelled: false,
                rang: false,
            },
            invite_tx: Some(tx),
            answer_in_ack: false,
        });
        Ok(self.calls)
    }

    pub(super) async fn invite_response(&mut self, response: Response) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let status = response.status;
        match status {
            100 => {}
            101..=199 => {
                if let CallState::Calling { rang, .. } = &mut call.state {
                    if !*rang {
                        *rang = true;
                        let number = call.number;
                        self.emit(PhoneEvent::Ringing { call: number });
                    }
                }
            }
            200..=299 => self.invite_ok(response).await,
            401 | 407 => {
                if !self.retry_with_credentials(&response).await {
                    self.invite_failed(status);
                }
            }
            _ => self.invite_failed(status),
        }
    }

    pub(super) fn invite_failed(&mut self, status: u16) {
        let cancelled = matches!(
            self.call,
            Some(Call {
                state: CallState::Calling {
                    cancelled: true,
                    ..
                },
                ..
            })
        );
        self.end_call(if cancelled && status == 487 {
            Ended::LocalCancel
        } else {
            Ended::Rejected { status }
        });
    }

    /// A 2xx to our INVITE: the dialog, the answer, the ACK (again for every retransmission).
    pub(super) async fn invite_ok(&mut self, response: Response) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let mut cancelled = false;
        if call.dialog.is_none() {
            let CallState::Calling {
                invite,
                cancelled: c,
                ..
            } = &call.state
            else {
                return;
            };
            cancelled = *c;
            let Ok(dialog) = Dialog::new_uac(invite, &response) else {
                self.end_call(Ended::Rejected {
                    status: response.status,
                });
                return;
            };
            call.dialog = Some(dialog);
            let negotiated = SessionDescription::parse_bytes(&response.body)
                .ok()
                .and_then(|answer| call.sdp.process_answer(&answer).ok());
            if let Some(n) = negotiated {
                let _ = self.media.send(MediaCommand::Start(media_params(&n)));
            }
            if !cancelled {
                call.state = CallState::Confirmed;
                let number = call.number;
                self.emit(PhoneEvent::Answered { call: number });
            }
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let Some(dialog) = &call.dialog else {
            return;
        };
        let ack = with_via(self.local, dialog.create_ack(&response));
        self.sip
            .send_stateless(SipMessage::Request(ack), call.target());
        if cancelled {
            // Answered while our CANCEL crossed it: the call exists, so end it with BYE.
            self.send_bye(Ended::LocalCancel).await;
        }
    }

    /// Answers a 401/407 once, with the configured password; false when we cannot.
    pub(super) async fn retry_with_credentials(&mut self, response: &Response) -> bool {
        let Some(password) = self.config.password.clone() else {
            return false;
        };
        let Some(call) = self.call.as_mut() else {
            return false;
        };
        let CallState::Calling {
            invite, auth_tried, ..
        } = &mut call.state
        else {
            return false;
        };
        if *auth_tried {
            return false;
        }
        let (kind, header) = if response.status == 407 {
            (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
        } else {
            (ChallengeKind::Www, HeaderName::WwwAuthenticate)
        };
        let challenges: Vec<_> = response
            .headers
            .get_all(&header)
            .filter_map(|v| parse_challenges(v).ok())
            .flatten()
            .collect();
        let mut digest = DigestClient::new(self.config.user.clone(), password);
        if digest.on_challenge(kind, &challenges).is_err() {
            return false;
        }
        let mut next = (**invite).clone();
        let seq = next.headers.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        next.headers.set(
            HeaderName::CSeq,
            CSeq {
                seq,
                method: Method::Invite,
            }
            .to_string(),
        );
        let uri = next.uri.to_string();
        let request = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: Some(&next.body),
        };
        let Ok(authorizations) = digest.authorize(&request, &random_cnonce()) else {
            return false;
        };
        for a in authorizations {
            next.headers
                .push(HeaderName::parse(a.header_name()), a.header_value());
        }
        // A fresh Via without branch: a new transaction.
        let next = with_via(self.local, next);
        let Ok(tx) = self.sip.send_request(next.clone(), call.peer).await else {
            return false;
        };
        **invite = next;
        *auth_tried = true;
        call.invite_tx = Some(tx);
        true
    }

    // ---- incoming calls ----

    pub(super) fn incoming(&mut self, tx: ServerTxId, request: Request, from: Peer) {
        if self.call.is_some() {
            let busy = Response::for_request(&request, 486).with_to_tag(&new_tag());
            self.sip.send_response(tx, busy);
            return;
        }
        let dialog = match Dialog::new_uas(&request, &new_tag(), self.contact.clone()) {
            Ok(d) => d,
            Err(_) => {
                let bad = Response::for_request(&request, 400).with_to_tag(&new_tag());
                self.sip.send_response(tx, bad);
                return;
            }
        };
        let mut ringing = Response::for_request(&request, 180);
        dialog.prepare_response(&mut ringing);
        self.sip.send_response(tx, ringing);
        self.calls += 1;
        let caller = request
            .headers
            .from_addr()
            .map(|a| a.uri.to_string())
            .unwrap_or_default();
        let answer_at = match self.config.answer {
            AnswerMode::Auto { ring } => Some(Instant::now() + ring),
            AnswerMode::Manual => None,
        };
        self.call = Some(Call {
            number: self.calls,
            sdp: SdpSession::new(self.local_media()),
            dialog: Some(dialog),
            peer: from,
            state: CallState::Ringing {
                tx,
                invite: Box::new(request),
                answer_at,
            },
            invite_tx: None,
            answer_in_ack: false,
        });
        self.emit(PhoneEvent::Incoming {
            call: self.calls,
            from: caller,
        });
    }

    /// 200 to the ringing INVITE: our answer, or our offer when it had none.
    pub(super) fn answer(&mut self) -> Result<(), PhoneError> {
        let Some(call) = self.call.as_mut() else {
            return Err(PhoneError::NoCall);
        };
        let CallState::Ringing { tx, invite, .. } = &call.state else {
            return Err(PhoneError::NoCall);
        };
        let tx = *tx;
        let mut ok = Response::for_request(invite, 200);
        let (body, answer_in_ack) = if invite.body.is_empty() {
            (call.sdp.offer(Direction::SendRecv), true)
        } else {
            let answer = SessionDescription::parse_bytes(&invite.body)
                .ok()
                .and_then(|offer| call.sdp.answer(&offer).ok());
            let Some(answer) = answer else {
                return self.reject(488);
            };
            let _ = self
                .media
                .send(MediaCommand::Start(media_params(&answer.negotiated)));
            (answer.sdp, false)
        };
        if let Some(d) = &call.dialog {
            d.prepare_response(&mut ok);
        }
        ok.headers.push(HeaderName::Allow, ALLOW);
        ok.headers.push(HeaderName::ContentType, SDP);
        ok.body = body.to_string().into();
        self.sip.send_response(tx, ok);
        call.state = CallState::Answered { tx };
        call.answer_in_ack = answer_in_ack;
        Ok(())
    }

    pub(super) fn reject(&mut self, status: u16) -> Result<(), PhoneError> {
        let Some(Call {
            state: CallState::Ringing { tx, invite, .. },
            dialog,
            ..
        }) = &self.call
        else {
            return Err(PhoneError::NoCall);
        };
        let tag = dialog
            .as_ref()
            .map(|d| d.id.local_tag.clone())
            .unwrap_or_else(new_tag);
        let response = Response::for_request(invite, status).with_to_tag(&tag);
        self.sip.send_response(*tx, response);
        self.end_call(Ended::LocalReject { status });
        Ok(())
    }

    pub(super) fn ack(&mut self, request: &Request) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if !call.dialog.as_ref().is_some_and(|d| d.matches(request)) {
            return;
        }
        if call.answer_in_ack {
            call.answer_in_ack = false;
            let negotiated = SessionDescription::parse_bytes(&request.body)
                .ok()
                .and_then(|answer| call.sdp.process_answer(&answer).ok());
            if let Some(n) = negotiated {
                let _ = self.media.send(MediaCommand::Start(media_params(&n)));
            }
        }
        if matches!(call.state, CallState::Answered { .. }) {
            call.state = CallState::Confirmed;
            let number = call.number;
            self.emit(PhoneEvent::Answered { call: number });
        }
    }

    // ---- in-dialog requests ----

    pub(super) async fn request(&mut self, tx: Option<ServerTxId>, request: Request, from: Peer) {
        if request.method == Method::Ack {
            self.ack(&request);
            return;
        }
        let Some(tx) = tx else {
            return;
        };
        let to_tag = request
            .headers
            .to_addr()
            .ok()
            .is_some_and(|to| to.tag().is_some());
        if !to_tag {
            match request.method {
                Method::Invite => self.incoming(tx, request, from),
                Method::Options => {
                    let mut ok = Response::for_request(&request, 200).with_to_tag(&new_tag());
                    ok.headers.push(HeaderName::Allow, ALLOW);
                    self.sip.send_response(tx, ok);
                }
                Method::Bye | Method::Info => {
                    let gone = Response::for_request(&request, 481).with_to_tag(&new_tag());
                    self.sip.send_response(tx, gone);
                }
                _ => {
                    let mut no = Response::for_request(&request, 405).with_to_tag(&new_tag());
                    no.headers.push(HeaderName::Allow, ALLOW);
                    self.sip.send_response(tx, no);
                }
            }
            return;
        }
        let Some(call) = self.call.as_mut() else {
            self.sip
                .send_response(tx, Response::for_request(&request, 481));
            return;
        };
        let Some(dialog) = call.dialog.as_mut().filter(|d| d.matches(&request)) else {
            self.sip
                .send_response(tx, Response::for_request(&request, 481));
            return;
        };
        if dialog.handle_request(&request).is_err() {
            // Out-of-order CSeq (RFC 3261 §12.2.2) or unreadable headers.
            self.sip
                .send_response(tx, Response::for_request(&request, 500));
            return;
        }
        match request.method {
            Method::Invite => self.reinvite(tx, &request),
            Method::Bye => {
                self.sip
                    .send_response(tx, Response::for_request(&request, 200));
                self.end_call(Ended::RemoteBye);
            }
            Method::Info => {
                self.sip
                    .send_response(tx, Response::for_request(&request, 200));
                if let Some(digit) = info_digit(&request) {
                    self.emit(PhoneEvent::Dtmf {
                        digit,
                        via: DtmfVia::SipInfo,
                    });
                }
            }
            Method::Options => {
                let mut ok = Response::for_request(&request, 200);
                ok.headers.push(HeaderName::Allow, ALLOW);
                self.sip.send_response(tx, ok);
            }
            _ => {
                self.sip
                    .send_response(tx, Response::for_request(&request, 501));
            }
        }
    }

    /// A re-INVITE: answer its offer (media follow), or offer our current media when it has
    /// none (the answer comes in the ACK).
    pub(super) fn reinvite(&mut self, tx: ServerTxId, request: &Request) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let (body, answer_in_ack) = if request.body.is_empty() {
            (call.sdp.offer(Direction::SendRecv), true)
        } else {
            let answer = SessionDescription::parse_bytes(&request.body)
                .ok()
                .and_then(|offer| call.sdp.answer(&offer).ok());
            let Some(answer) = answer else {
                // The previous media stay in force (RFC 3261 §14.2).
                self.sip
                    .send_response(tx, Response::for_request(request, 488));
                return;
            };
            let _ = self
                .media
                .send(MediaCommand::Start(media_params(&answer.negotiated)));
            (answer.sdp, false)
        };
        let mut ok = Response::for_request(request, 200);
        if let Some(d) = &call.dialog {
            d.prepare_response(&mut ok);
        }
        ok.headers.push(HeaderName::Allow, ALLOW);
        ok.headers.push(HeaderName::ContentType, SDP);
        ok.body = body.to_string().into();
        self.sip.send_response(tx, ok);
        call.answer_in_ack = answer_in_ack;
    }

    // ---- ending ----

    pub(super) async fn hangup(&mut self) -> Result<(), PhoneError> {
        let Some(call) = self.call.as_mut() else {
            return Err(PhoneError::NoCall);
        };
        match &mut call.state {
            CallState::Ringing { .. } => self.reject(603),
            CallState::Calling { cancelled, .. } => {
                *cancelled = true;
                if let Some(tx) = call.invite_tx {
                    self.sip.cancel(tx);
                }
                Ok(())
            }
            CallState::Answered { .. } | CallState::Confirmed => {
                self.send_bye(Ended::LocalBye).await;
                Ok(())
            }
            CallState::Ending { .. } => Ok(()),
        }
    }

    pub(super) async fn send_bye(&mut self, why: Ended) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        let target = call.target();
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        let bye = with_via(self.local, dialog.create_request(Method::Bye));
        let _ = self.media.send(MediaCommand::Stop);
        match self.sip.send_request(bye, target).await {
            Ok(tx) => call.state = CallState::Ending { tx, why },
            Err(_) => self.end_call(why),
        }
    }

    pub(super) async fn send_info(&mut self, digit: char) -> Result<(), PhoneError> {
        let call = self
            .call
            .as_mut()
            .filter(|c| matches!(c.state, CallState::Confirmed | CallState::Answered { .. }))
            .ok_or(PhoneError::NoCall)?;
        let target = call.target();
        let dialog = call.dialog.as_mut().ok_or(PhoneError::NoCall)?;
        let mut info = dialog.create_request(Method::Info);
        info.headers
            .push(HeaderName::ContentType, "application/dtmf-relay");
        info.body = format!("Signal={digit}\r\nDuration=160\r\n").into();
        self.sip
            .send_request(with_via(self.local, info), target)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn info(content_type: &str, body: &str) -> Request {
        let mut r = Request::new(Method::Info, Uri::parse("sip:a@127.0.0.1").expect("uri"));
        r.headers.push(HeaderName::ContentType, content_type);
        r.body = body.to_string().into();
        r
    }

    #[test]
    pub(super) fn info_bodies() {
        assert_eq!(
            info_digit(&info(
                "application/dtmf-relay",
                "Signal=5\r\nDuration=160\r\n"
            )),
            Some('5')
        );
        assert_eq!(
            info_digit(&info("application/dtmf-relay", "Signal= #\r\n")),
            Some('#')
        );
        assert_eq!(info_digit(&info("application/dtmf", "a")), Some('A'));
        assert_eq!(
            info_digit(&info("application/dtmf-relay", "Signal=55")),
            None
        );
        assert_eq!(info_digit(&info("text/plain", "Signal=5")), None);
    }
}
