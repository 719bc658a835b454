//! The INVITE client (`sip::uac`) against a scripted phone, both sides real endpoints wired
//! back to back in virtual time (see `uac/harness.rs`): one test per rule of the module.

#[path = "uac/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{udp, Net, PHONE_TAG};
use sip::auth::{AuthError, DigestRequest, DigestServer, UserSecret};
use sip::endpoint::EndpointEvent;
use sip::message::{CSeq, HeaderName, Method, Request, Response, SipMessage};
use sip::sdp::{Codec, Direction, SessionDescription};
use sip::uac::{
    Credentials, EndCause, InDialogRequest, MediaError, Reason, RefusalReason, Uac, UacError,
    UacEvent, UacSnapshot, UacState,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn cseq_of(r: &Request) -> CSeq {
    r.headers.cseq().expect("cseq")
}

fn to_tag(r: &Request) -> Option<String> {
    r.headers
        .to_addr()
        .ok()
        .and_then(|t| t.tag().map(str::to_string))
}

fn answered_media(events: &[UacEvent]) -> sip::sdp::Negotiated {
    match events {
        [.., UacEvent::Answered { media: Ok(m) }] => m.clone(),
        other => panic!("expected Answered with media, got {other:?}"),
    }
}

/// Rings, answers, and checks the dialog is up.
fn answered_net() -> (Net, sip::dialog::Dialog) {
    let mut net = Net::new();
    let (_, phone_dialog) = net.ring_and_answer();
    assert_eq!(net.uac.state(), &UacState::Confirmed);
    net.take_events();
    (net, phone_dialog)
}

#[test]
fn invite_carries_what_a_pbx_needs() {
    let net = Net::new();
    let invites = net.sent(Method::Invite);
    let [invite] = invites.as_slice() else {
        panic!("one INVITE, got {invites:?}");
    };
    let h = &invite.headers;
    assert_eq!(invite.uri.to_string(), "sip:agent7@192.0.2.20:5060");
    let from = h.from_addr().expect("from");
    assert_eq!(from.uri.to_string(), "sip:+33123456789@192.0.2.10");
    assert!(
        from.tag().is_some_and(|t| !t.is_empty()),
        "From has our tag"
    );
    let to = h.to_addr().expect("to");
    assert_eq!(
        (to.uri.to_string(), to.tag()),
        ("sip:agent7@192.0.2.20:5060".into(), None)
    );
    assert_eq!(h.call_id(), Some(net.uac.call_id()));
    assert_eq!(cseq_of(invite).to_string(), "1 INVITE");
    assert_eq!(
        h.get(&HeaderName::Contact),
        Some("<sip:svi@192.0.2.10:5060>")
    );
    assert_eq!(h.get(&HeaderName::MaxForwards), Some("70"));
    assert_eq!(h.get(&HeaderName::UserAgent), Some("svi"));
    assert_eq!(h.get(&HeaderName::Allow), Some(sip::uac::DEFAULT_ALLOW));
    assert_eq!(h.get(&HeaderName::ContentType), Some("application/sdp"));
    let offer = SessionDescription::parse_bytes(&invite.body).expect("SDP offer");
    assert_eq!(offer.media[0].port, 40_000);
    assert!(h.vias().expect("via")[0].branch().is_some());
}

#[test]
fn ringing_then_answer_confirms_the_dialog_and_acks() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    net.reply(tx, &invite, 180, None);
    assert_eq!(
        net.uac.state(),
        &UacState::Calling {
            progress: Some(180)
        }
    );
    let sdp = net.answer(&invite);
    net.reply(tx, &invite, 200, Some(sdp));

    let events = net.take_events();
    assert!(
        matches!(
            events.as_slice(),
            [
                UacEvent::Progress { status: 100, .. },
                UacEvent::Progress {
                    status: 180,
                    early_media: None,
                    ..
                },
                UacEvent::Answered { .. }
            ]
        ),
        "{events:?}"
    );
    let media = answered_media(&events);
    assert_eq!(media.codec.codec, Codec::Pcma);
    assert_eq!(media.telephone_event, Some(101));
    assert_eq!(
        media.remote_rtp,
        Some("192.0.2.20:30000".parse().expect("addr"))
    );

    let acks = net.sent(Method::Ack);
    let [ack] = acks.as_slice() else {
        panic!("one ACK, got {acks:?}")
    };
    assert_eq!(cseq_of(ack).to_string(), "1 ACK");
    assert_eq!(to_tag(ack).as_deref(), Some(PHONE_TAG));
    assert_eq!(
        ack.uri.to_string(),
        "sip:agent7@192.0.2.20:5060",
        "to the remote target"
    );
    let dialog = net.uac.dialog().expect("dialog");
    assert_eq!(dialog.id.remote_tag, PHONE_TAG);
    assert_eq!(net.uac.sdp().negotiated(), Some(&media));
    // The phone got its ACK: no 2xx retransmission left, no ACK timeout.
    net.run_for(secs(40));
    assert!(net.phone_events.is_empty(), "{:?}", net.phone_events);
    assert_eq!(net.sent(Method::Ack).len(), 1);
}

#[test]
fn a_retransmitted_2xx_is_acked_again() {
    let mut net = Net::new();
    // The network loses our first ACK.
    let mut lost = 0;
    net.lose = Some(Box::new(move |m| {
        let ack = matches!(m, SipMessage::Request(r) if r.method == Method::Ack);
        lost += usize::from(ack);
        ack && lost == 1
    }));
    net.ring_and_answer();
    assert_eq!(net.sent(Method::Ack).len(), 1);
    // The phone retransmits its 2xx after T1; we ACK it again, and it stops.
    net.run_for(secs(40));
    let acks = net.sent(Method::Ack);
    assert_eq!(acks.len(), 2, "{acks:?}");
    let without_via = |r: &Request| {
        let mut r = r.clone();
        r.headers.remove(&HeaderName::Via);
        r
    };
    assert_eq!(
        without_via(&acks[0]),
        without_via(&acks[1]),
        "the same ACK again"
    );
    assert_eq!(net.phone_acks.len(), 1, "the second one got through");
    let answered = net
        .events
        .iter()
        .filter(|e| matches!(e, UacEvent::Answered { .. }))
        .count();
    assert_eq!(answered, 1, "answered once: {:?}", net.events);
    assert!(
        !net.phone_events
            .iter()
            .any(|e| matches!(e, EndpointEvent::AckTimeout { .. })),
        "the phone got the second ACK"
    );
}

/// A proxy that challenges INVITEs (407) and checks the credentials of the next ones.
struct Proxy {
    digest: DigestServer,
    password: String,
}

impl Proxy {
    fn new(password: &str) -> Proxy {
        Proxy {
            digest: DigestServer::new("pbx.example.com", vec![9u8; 32]),
            password: password.into(),
        }
    }

    fn challenge(&mut self, net: &mut Net, tx: Option<sip::endpoint::ServerTxId>, req: &Request) {
        let mut r = Response::for_request(req, 407).with_to_tag("proxy");
        for c in self.digest.challenges(1_700_000_000, false) {
            r.headers.push(HeaderName::ProxyAuthenticate, c.to_string());
        }
        net.phone.send_response(net.now, tx.expect("tx"), r);
        net.pump();
    }

    fn verify(&mut self, req: &Request) -> Result<String, AuthError> {
        let values: Vec<&str> = req
            .headers
            .get_all(&HeaderName::ProxyAuthorization)
            .collect();
        let uri = req.uri.to_string();
        let dreq = DigestRequest {
            method: req.method.as_str(),
            uri: &uri,
            body: None,
        };
        let password = self.password.clone();
        self.digest.verify(&values, &dreq, 1_700_000_001, |_, _| {
            Some(UserSecret::Password(password))
        })
    }
}

fn trunk() -> Option<Credentials> {
    Some(Credentials {
        username: "trunk".into(),
        password: "s3cret".into(),
    })
}

#[test]
fn a_407_is_answered_with_credentials_in_a_new_transaction() {
    let mut net = Net::build(harness::config(), trunk(), None);
    let mut proxy = Proxy::new("s3cret");
    let (tx, first) = net.take(Method::Invite);
    assert!(first.headers.get(&HeaderName::ProxyAuthorization).is_none());
    proxy.challenge(&mut net, tx, &first);

    let (tx, second) = net.take(Method::Invite);
    assert_eq!(cseq_of(&second).to_string(), "2 INVITE");
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        second.headers.from_addr().expect("from"),
        first.headers.from_addr().expect("from"),
        "same From tag"
    );
    assert_ne!(
        second.headers.top_via().expect("via").branch(),
        first.headers.top_via().expect("via").branch(),
        "a new transaction"
    );
    assert_eq!(second.body, first.body, "the same offer");
    assert_eq!(proxy.verify(&second).as_deref(), Ok("trunk"));

    let sdp = net.answer(&second);
    net.reply(tx, &second, 200, Some(sdp));
    answered_media(&net.events);
    // The ACK of the first INVITE's 407 is the transaction's; the 2xx's ACK carries the
    // credentials of the INVITE it acknowledges (RFC 3261 §13.2.2.4).
    let acks = net.sent(Method::Ack);
    let [ack_407, ack_200] = acks.as_slice() else {
        panic!("two ACKs, got {acks:?}")
    };
    assert_eq!(cseq_of(ack_407).seq, 1);
    assert_eq!(cseq_of(ack_200).seq, 2);
    assert_eq!(
        ack_200.headers.get(&HeaderName::ProxyAuthorization),
        second.headers.get(&HeaderName::ProxyAuthorization)
    );
}

#[test]
fn a_wrong_password_fails_after_the_second_challenge() {
    let mut net = Net::build(harness::config(), trunk(), None);
    let mut proxy = Proxy::new("other");
    for _ in 0..2 {
        let (tx, invite) = net.take(Method::Invite);
        assert!(proxy.verify(&invite).is_err());
        proxy.challenge(&mut net, tx, &invite);
    }
    assert!(net.inbox.is_empty(), "no third INVITE");
    assert_eq!(net.sent(Method::Invite).len(), 2);
    let failed = net.events.last().expect("an event");
    assert!(
        matches!(
            failed,
            UacEvent::Failed {
                status: 407,
                error: UacError::Auth(AuthError::CredentialsRejected { .. })
            }
        ),
        "{failed:?}"
    );
    assert!(net.uac.is_done());
}

#[test]
fn a_challenge_without_credentials_fails() {
    let mut net = Net::new();
    let mut proxy = Proxy::new("s3cret");
    let (tx, invite) = net.take(Method::Invite);
    proxy.challenge(&mut net, tx, &invite);
    assert!(matches!(
        net.events.last(),
        Some(UacEvent::Failed {
            status: 407,
            error: UacError::NoCredentials { status: 407 }
        })
    ));
}

#[test]
fn busy_is_a_failure_with_status_and_reason() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    net.reply(tx, &invite, 486, None);
    let last = net.events.last().expect("event");
    assert_eq!(
        last,
        &UacEvent::Failed {
            status: 486,
            error: UacError::Rejected {
                status: 486,
                reason: "Busy Here".into()
            }
        }
    );
    assert_eq!(net.uac.state(), &UacState::Terminated);
    assert!(net.uac.is_done());
    // The transaction ACKed the 486 itself: one ACK, in the INVITE's transaction.
    assert_eq!(net.sent(Method::Ack).len(), 1);
}

/// Nothing is reported before 64*T1 (32 s), then one `Failed` with 408 and `error`.
fn fails_after_64_t1(net: &mut Net, error: UacError) {
    net.run_for(secs(31));
    assert!(net.events.is_empty(), "{:?}", net.events);
    net.run_for(secs(2));
    assert_eq!(net.events, vec![UacEvent::Failed { status: 408, error }]);
}

#[test]
fn no_answer_at_all_fails_with_408_after_64_t1() {
    let mut net = Net::build(harness::config(), None, Some(Box::new(|_| true)));
    fails_after_64_t1(&mut net, UacError::Timeout);
    // Timer A retransmitted the INVITE meanwhile (UDP).
    assert!(net.sent(Method::Invite).len() > 3);
}

#[test]
fn cancel_after_ringing_ends_with_487() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    net.reply(tx, &invite, 180, None);
    net.uac.hang_up(net.now, None);
    net.pump();
    let cancels = net.sent(Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cseq_of(&cancels[0]).to_string(), "1 CANCEL");
    phone_cancelled(&mut net, tx, &invite);
    assert!(net.uac.is_done());
}

/// The phone got our CANCEL and ends the INVITE with 487: the leg fails as cancelled.
fn phone_cancelled(net: &mut Net, tx: Option<sip::endpoint::ServerTxId>, invite: &Request) {
    assert!(net
        .phone_events
        .iter()
        .any(|e| matches!(e, EndpointEvent::Cancelled { .. })));
    net.reply(tx, invite, 487, None);
    assert_eq!(
        net.events.last(),
        Some(&UacEvent::Failed {
            status: 487,
            error: UacError::Cancelled
        })
    );
}

fn is_invite(m: &SipMessage) -> bool {
    matches!(m, SipMessage::Request(r) if r.method == Method::Invite)
}

#[test]
fn a_cancel_before_any_provisional_waits_for_one() {
    // The INVITE is lost: no 100 Trying, nothing to CANCEL yet (RFC 3261 §9.1).
    let mut net = Net::build(harness::config(), None, Some(Box::new(is_invite)));
    net.uac.hang_up(net.now, None);
    net.pump();
    assert!(net.sent(Method::Cancel).is_empty());
    assert!(matches!(net.uac.state(), UacState::Cancelling { .. }));
    // Timer A's retransmission gets through: the phone's 100 releases the CANCEL.
    net.lose = None;
    net.run_for(Duration::from_millis(600));
    assert_eq!(net.sent(Method::Cancel).len(), 1);
    let (tx, invite) = net.take(Method::Invite);
    phone_cancelled(&mut net, tx, &invite);
}

#[test]
fn a_cancel_without_any_provisional_is_given_up_after_64_t1() {
    let mut net = Net::build(harness::config(), None, Some(Box::new(|_| true)));
    net.uac.hang_up(net.now, None);
    fails_after_64_t1(&mut net, UacError::Cancelled);
    assert!(net.sent(Method::Cancel).is_empty(), "never sent");
    assert!(net.uac.is_done());
}

#[test]
fn a_200_crossing_our_cancel_is_acked_then_byed() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    net.reply(tx, &invite, 180, None);
    // We cancel; the phone answers before our CANCEL reaches it.
    net.uac
        .hang_up(net.now, Some(Reason::sip(200, "Call completed elsewhere")));
    let sdp = net.answer(&invite);
    let mut ok = Response::for_request(&invite, 200).with_to_tag(PHONE_TAG);
    ok.headers
        .push(HeaderName::Contact, "<sip:agent7@192.0.2.20:5060>");
    ok.headers.push(HeaderName::ContentType, "application/sdp");
    ok.body = sdp.into_bytes().into();
    net.phone.send_response(net.now, tx.expect("tx"), ok);
    net.pump();

    assert_eq!(net.sent(Method::Ack).len(), 1, "the 2xx is ACKed");
    let (bye_tx, bye) = net
        .inbox
        .iter()
        .find(|(_, r)| r.method == Method::Bye)
        .cloned()
        .expect("then ended with a BYE");
    assert_eq!(to_tag(&bye).as_deref(), Some(PHONE_TAG));
    assert_eq!(
        bye.headers.get(&HeaderName::Reason),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    assert_eq!(
        net.events.last(),
        Some(&UacEvent::Failed {
            status: 200,
            error: UacError::Cancelled
        })
    );
    assert!(!net
        .events
        .iter()
        .any(|e| matches!(e, UacEvent::Answered { .. })));
    assert!(!net.uac.is_done(), "its BYE is still out");
    net.reply(bye_tx, &bye, 200, None);
    assert!(net.uac.is_done());
}

#[test]
fn a_second_fork_2xx_is_acked_and_byed() {
    let (mut net, _) = answered_net();
    let invite = net.sent(Method::Invite)[0].clone();
    // A forking proxy delivers a 2xx from another phone for the same INVITE.
    let mut fork = Response::for_request(&invite, 200).with_to_tag("fork2");
    fork.headers
        .push(HeaderName::Contact, "<sip:agent8@192.0.2.30:5060>");
    let bytes = fork.to_bytes();
    net.ours
        .handle_datagram(net.now, udp(harness::PHONE), &bytes);
    net.pump();

    let acks = net.sent(Method::Ack);
    assert_eq!(acks.len(), 2);
    assert_eq!(to_tag(&acks[1]).as_deref(), Some("fork2"));
    assert_eq!(acks[1].uri.to_string(), "sip:agent8@192.0.2.30:5060");
    let byes = net.sent(Method::Bye);
    let [bye] = byes.as_slice() else {
        panic!("one BYE, got {byes:?}")
    };
    assert_eq!(to_tag(bye).as_deref(), Some("fork2"));
    assert_eq!(cseq_of(bye).seq, 2, "the client's next CSeq");
    assert!(
        net.events.is_empty(),
        "the leg is unaffected: {:?}",
        net.events
    );
    assert_eq!(net.uac.state(), &UacState::Confirmed);
    assert_eq!(net.uac.dialog().expect("dialog").id.remote_tag, PHONE_TAG);

    // The same fork's 2xx again: ACKed again, not BYEd again.
    net.ours
        .handle_datagram(net.now, udp(harness::PHONE), &bytes);
    net.pump();
    assert_eq!(net.sent(Method::Ack).len(), 3);
    assert_eq!(net.sent(Method::Bye).len(), 1);

    // Our own BYE later takes the next number after the fork's.
    net.uac.hang_up(net.now, None);
    net.pump();
    let byes = net.sent(Method::Bye);
    assert_eq!(cseq_of(&byes[1]).seq, 3);
    assert_eq!(to_tag(&byes[1]).as_deref(), Some(PHONE_TAG));
}

#[test]
fn our_bye_carries_the_reason_and_ends_when_answered() {
    let (mut net, _) = answered_net();
    net.uac
        .hang_up(net.now, Some(Reason::q850(16, "Normal call clearing")));
    net.pump();
    assert!(matches!(net.uac.state(), UacState::Terminating { .. }));
    let (tx, bye) = net.take(Method::Bye);
    assert_eq!(cseq_of(&bye).to_string(), "2 BYE");
    assert_eq!(
        bye.headers.get(&HeaderName::Reason),
        Some("Q.850;cause=16;text=\"Normal call clearing\"")
    );
    net.reply(tx, &bye, 200, None);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::LocalBye { status: Some(200) }
        }]
    );
    assert!(net.uac.is_done());
    // Hanging up again does nothing.
    net.uac.hang_up(net.now, None);
    net.pump();
    assert_eq!(net.sent(Method::Bye).len(), 1);
}

#[test]
fn our_bye_unanswered_ends_after_the_transaction_timeout() {
    let (mut net, _) = answered_net();
    net.lose = Some(Box::new(
        |m| matches!(m, SipMessage::Request(r) if r.method == Method::Bye),
    ));
    net.uac.hang_up(net.now, None);
    net.pump();
    net.run_for(secs(31));
    assert!(net.events.is_empty());
    net.run_for(secs(2));
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::LocalBye { status: None }
        }]
    );
}

#[test]
fn their_bye_is_answered_and_ends_the_dialog() {
    let (mut net, mut phone_dialog) = answered_net();
    let bye = phone_dialog.create_request(Method::Bye);
    net.phone_sends(bye);
    assert_eq!(net.in_dialog, vec![Ok(InDialogRequest::Bye)]);
    assert_eq!(net.phone_answers(), vec![200]);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::RemoteBye
        }]
    );
    assert!(net.uac.is_done());
    // Anything after it is outside the dialog.
    let info = phone_dialog.create_request(Method::Info);
    net.phone_sends(info);
    assert_eq!(net.in_dialog.last(), Some(&Err(RefusalReason::NoDialog)));
    assert_eq!(net.phone_answers(), vec![200, 481]);
}

#[test]
fn their_requests_out_of_order_or_outside_the_dialog_are_refused() {
    let (mut net, mut phone_dialog) = answered_net();
    let info = phone_dialog.create_request(Method::Info);
    net.phone_sends(info.clone());
    assert_eq!(net.in_dialog, vec![Ok(InDialogRequest::Other)]);
    // An older CSeq: 500 (RFC 3261 §12.2.2).
    let mut old = info;
    let seq = cseq_of(&old).seq - 1;
    old.headers.set(HeaderName::CSeq, format!("{seq} INFO"));
    net.phone_sends(old);
    assert_eq!(net.in_dialog[1], Err(RefusalReason::OutOfOrder));
    // Another dialog's tags: 481.
    let mut stranger = phone_dialog.create_request(Method::Info);
    stranger
        .headers
        .set(HeaderName::To, "<sip:+33123456789@192.0.2.10>;tag=nope");
    net.phone_sends(stranger);
    assert_eq!(net.in_dialog[2], Err(RefusalReason::NoDialog));
    assert_eq!(net.phone_answers(), vec![200, 500, 481]);
    assert_eq!(net.uac.state(), &UacState::Confirmed);
}

fn answer_direction(offer: &Request) -> Direction {
    let sdp = SessionDescription::parse_bytes(&offer.body).expect("sdp");
    sdp.media[0].direction().unwrap_or(Direction::SendRecv)
}

#[test]
fn our_reinvite_holds_and_resumes() {
    let (mut net, _) = answered_net();
    let first_offer =
        SessionDescription::parse_bytes(&net.sent(Method::Invite)[0].body).expect("sdp");
    net.uac.hold(net.now).expect("hold");
    net.pump();
    let (tx, reinvite) = net.take(Method::Invite);
    assert_eq!(cseq_of(&reinvite).to_string(), "2 INVITE");
    assert_eq!(to_tag(&reinvite).as_deref(), Some(PHONE_TAG));
    assert_eq!(answer_direction(&reinvite), Direction::SendOnly);
    let offer = SessionDescription::parse_bytes(&reinvite.body).expect("sdp");
    assert_eq!(
        offer.origin.session_version,
        first_offer.origin.session_version + 1
    );
    let sdp = net.answer(&reinvite);
    net.reply(tx, &reinvite, 200, Some(sdp));
    match net.take_events().as_slice() {
        [UacEvent::MediaUpdated { media }] => assert_eq!(media.direction, Direction::SendOnly),
        other => panic!("{other:?}"),
    }
    let acks = net.sent(Method::Ack);
    assert_eq!(cseq_of(acks.last().expect("ack")).to_string(), "2 ACK");

    net.uac.resume(net.now).expect("resume");
    net.pump();
    let (tx, reinvite) = net.take(Method::Invite);
    assert_eq!(cseq_of(&reinvite).seq, 3);
    assert_eq!(answer_direction(&reinvite), Direction::SendRecv);
    let sdp = net.answer(&reinvite);
    net.reply(tx, &reinvite, 200, Some(sdp));
    match net.take_events().as_slice() {
        [UacEvent::MediaUpdated { media }] => assert_eq!(media.direction, Direction::SendRecv),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_reinvite_leaves_the_dialog_and_media_as_they_were() {
    let (mut net, _) = answered_net();
    let before = net.uac.sdp().negotiated().cloned();
    let target = net.uac.dialog().expect("dialog").remote_target.clone();
    net.uac.hold(net.now).expect("hold");
    net.pump();
    let (tx, reinvite) = net.take(Method::Invite);
    net.reply(tx, &reinvite, 488, None);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::ReofferFailed {
            status: 488,
            error: UacError::Rejected {
                status: 488,
                reason: "Not Acceptable Here".into()
            }
        }]
    );
    assert_eq!(net.uac.state(), &UacState::Confirmed);
    assert_eq!(net.uac.sdp().negotiated().cloned(), before);
    assert_eq!(net.uac.dialog().expect("dialog").remote_target, target);
    // The next offer is possible at once, and keeps the version rule: the refused offer
    // was seen by the peer, so an identical one keeps its version.
    net.uac.hold(net.now).expect("hold again");
    net.pump();
    let (_, again) = net.take(Method::Invite);
    assert_eq!(again.body, reinvite.body);
}

#[test]
fn a_reinvite_without_answer_fails_and_keeps_the_dialog() {
    let (mut net, _) = answered_net();
    net.lose = Some(Box::new(
        |m| matches!(m, SipMessage::Request(r) if r.method == Method::Invite),
    ));
    net.uac.hold(net.now).expect("hold");
    net.pump();
    assert_eq!(net.uac.hold(net.now), Err(UacError::OfferPending));
    net.run_for(secs(33));
    assert_eq!(
        net.take_events(),
        vec![UacEvent::ReofferFailed {
            status: 408,
            error: UacError::Timeout
        }]
    );
    assert_eq!(net.uac.state(), &UacState::Confirmed);
}

#[test]
fn glare_491_is_retried_after_2_1_to_4_seconds() {
    let (mut net, mut phone_dialog) = answered_net();
    net.uac.hold(net.now).expect("hold");
    net.pump();
    let (tx, ours) = net.take(Method::Invite);
    // The phone's own re-INVITE crosses ours: we refuse it 491 (§14.2)...
    let mut theirs = phone_dialog.create_request(Method::Invite);
    theirs
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    theirs.body = net.phone_sdp.hold().to_string().into_bytes().into();
    net.phone_sends(theirs);
    assert_eq!(net.in_dialog, vec![Err(RefusalReason::Glare)]);
    assert_eq!(net.phone_answers(), vec![491]);
    // ...and it refuses ours 491.
    let sent_at = net.elapsed();
    net.reply(tx, &ours, 491, None);
    assert!(net.events.is_empty(), "no failure yet: {:?}", net.events);
    net.run_for(secs(5));
    let invites = net.sent(Method::Invite);
    assert_eq!(invites.len(), 3, "the retry");
    let retry_at = net
        .wire
        .iter()
        .filter(|(_, m)| matches!(m, SipMessage::Request(r) if r.method == Method::Invite))
        .map(|(at, _)| *at)
        .nth(2)
        .expect("retry time");
    let waited = retry_at - sent_at;
    assert!(
        waited >= Duration::from_millis(2100) && waited <= secs(4),
        "waited {waited:?}"
    );
    let (tx, retry) = net.take(Method::Invite);
    assert_eq!(cseq_of(&retry).seq, 3);
    assert_eq!(answer_direction(&retry), Direction::SendOnly);
    let sdp = net.answer(&retry);
    net.reply(tx, &retry, 200, Some(sdp));
    assert!(matches!(
        net.take_events().as_slice(),
        [UacEvent::MediaUpdated { .. }]
    ));
}

#[test]
fn their_reinvite_is_answered_from_the_sdp_session() {
    let (mut net, mut phone_dialog) = answered_net();
    let mut hold = phone_dialog.create_request(Method::Invite);
    hold.headers
        .set(HeaderName::Contact, "<sip:agent7@192.0.2.21:5062>");
    hold.headers
        .push(HeaderName::ContentType, "application/sdp");
    hold.body = net.phone_sdp.hold().to_string().into_bytes().into();
    net.phone_sends(hold);
    assert_eq!(net.in_dialog, vec![Ok(InDialogRequest::Offer)]);
    let answer = net
        .phone_events
        .iter()
        .find_map(|e| match e {
            EndpointEvent::Response { response, .. } if response.status == 200 => {
                Some(response.clone())
            }
            _ => None,
        })
        .expect("200 to their re-INVITE");
    assert_eq!(
        answer.headers.get(&HeaderName::Contact),
        Some("<sip:svi@192.0.2.10:5060>")
    );
    let sdp = SessionDescription::parse_bytes(&answer.body).expect("our answer");
    assert_eq!(sdp.media[0].direction(), Some(Direction::RecvOnly));
    match net.take_events().as_slice() {
        [UacEvent::MediaUpdated { media }] => assert_eq!(media.direction, Direction::RecvOnly),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        net.uac.dialog().expect("dialog").remote_target.to_string(),
        "sip:agent7@192.0.2.21:5062",
        "a target refresh"
    );
}

#[test]
fn an_unacceptable_offer_from_them_gets_488_and_changes_nothing() {
    let (mut net, mut phone_dialog) = answered_net();
    let before = net.uac.sdp().negotiated().cloned();
    let mut video = phone_dialog.create_request(Method::Update);
    video
        .headers
        .push(HeaderName::ContentType, "application/sdp");
    video.body = "v=0\r\no=- 1 9 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 30000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n"
        .as_bytes()
        .to_vec()
        .into();
    net.phone_sends(video);
    assert_eq!(net.phone_answers(), vec![488]);
    assert!(net.events.is_empty());
    assert_eq!(net.uac.sdp().negotiated().cloned(), before);
    // The offer is over: the next one is answered.
    let info = phone_dialog.create_request(Method::Info);
    net.phone_sends(info);
    assert_eq!(net.phone_answers(), vec![488, 200]);
}

#[test]
fn an_answer_without_usable_sdp_is_reported() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    net.reply(tx, &invite, 200, None);
    assert!(matches!(
        net.events.last(),
        Some(UacEvent::Answered {
            media: Err(MediaError::NoSdp)
        })
    ));
    assert_eq!(
        net.uac.state(),
        &UacState::Confirmed,
        "ACKed; the TU hangs up"
    );
    assert_eq!(net.sent(Method::Ack).len(), 1);
}

#[test]
fn early_media_from_a_183_is_reported_and_used_when_the_2xx_has_none() {
    let mut net = Net::new();
    let (tx, invite) = net.take(Method::Invite);
    let sdp = net.answer(&invite);
    net.reply(tx, &invite, 183, Some(sdp));
    match net.events.last() {
        Some(UacEvent::Progress {
            status: 183,
            early_media: Some(m),
            ..
        }) => assert_eq!(m.codec.codec, Codec::Pcma),
        other => panic!("{other:?}"),
    }
    assert!(net.uac.sdp().negotiated().is_none(), "not the answer yet");
    net.reply(tx, &invite, 200, None);
    answered_media(&net.events);
}

#[test]
fn an_offerless_invite_answers_in_the_ack() {
    let mut config = harness::config();
    config.offer_in_invite = false;
    let mut net = Net::build(config, None, None);
    let (tx, invite) = net.take(Method::Invite);
    assert!(invite.body.is_empty());
    let offer = net.phone_sdp.offer(Direction::SendRecv).to_string();
    net.reply(tx, &invite, 200, Some(offer));
    let media = answered_media(&net.events);
    assert_eq!(
        media.remote_rtp,
        Some("192.0.2.20:30000".parse().expect("addr"))
    );
    let ack = net.sent(Method::Ack).pop().expect("ACK");
    let answer = SessionDescription::parse_bytes(&ack.body).expect("answer in the ACK");
    assert_eq!(answer.media[0].port, 40_000);
}

/// Snapshot through JSON and back, as the engine's call snapshot does.
fn through_json(net: &mut Net) -> Uac {
    let snap = net.uac.snapshot(net.now);
    let text = serde_json::to_string(&snap).expect("serialise");
    assert!(!text.contains("s3cret"), "no secret in a snapshot");
    let back: UacSnapshot = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back, snap);
    Uac::restore(back, trunk(), net.now)
}

#[test]
fn a_snapshot_mid_dialog_restores_a_client_that_carries_on() {
    let (mut net, mut phone_dialog) = answered_net();
    net.uac.hold(net.now).expect("hold");
    net.pump();
    let (tx, hold) = net.take(Method::Invite);
    let sdp = net.answer(&hold);
    net.reply(tx, &hold, 200, Some(sdp));
    net.take_events();

    let restored = through_json(&mut net);
    assert_eq!(restored.state(), net.uac.state());
    assert_eq!(restored.dialog(), net.uac.dialog());
    assert_eq!(restored.sdp(), net.uac.sdp());
    assert_eq!(restored.call_id(), net.uac.call_id());
    net.uac = restored;

    // The restored leg goes on: resume with the next CSeq and SDP version...
    net.uac.resume(net.now).expect("resume");
    net.pump();
    let (tx, resume) = net.take(Method::Invite);
    assert_eq!(cseq_of(&resume).seq, 3);
    let v = |r: &Request| {
        SessionDescription::parse_bytes(&r.body)
            .expect("sdp")
            .origin
            .session_version
    };
    assert_eq!(v(&resume), v(&hold) + 1);
    let sdp = net.answer(&resume);
    net.reply(tx, &resume, 200, Some(sdp));
    assert!(matches!(
        net.take_events().as_slice(),
        [UacEvent::MediaUpdated { .. }]
    ));
    // ...the peer's requests match the restored dialog, and their BYE ends it.
    let bye = phone_dialog.create_request(Method::Bye);
    net.phone_sends(bye);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::RemoteBye
        }]
    );
}

#[test]
fn a_snapshot_keeps_the_time_left_on_a_glare_retry() {
    let (mut net, _) = answered_net();
    net.uac.hold(net.now).expect("hold");
    net.pump();
    let (tx, ours) = net.take(Method::Invite);
    net.reply(tx, &ours, 491, None);
    let due = net.uac.poll_timeout().expect("glare timer") - net.now;
    net.run_for(Duration::from_millis(1000));
    let restored = through_json(&mut net);
    assert_eq!(
        restored.poll_timeout().map(|at| at - net.now),
        Some(due - Duration::from_millis(1000))
    );
}

#[test]
fn their_bye_crossing_ours_ends_the_dialog_once() {
    let (mut net, mut phone_dialog) = answered_net();
    // Our BYE is on its way (lost here) when theirs arrives.
    net.lose = Some(Box::new(
        |m| matches!(m, SipMessage::Request(r) if r.method == Method::Bye),
    ));
    net.uac.hang_up(net.now, None);
    net.pump();
    let bye = phone_dialog.create_request(Method::Bye);
    net.phone_sends(bye);
    assert_eq!(net.phone_answers(), vec![200]);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::RemoteBye
        }]
    );
    assert!(!net.uac.is_done(), "our BYE is still out");
    net.run_for(secs(33));
    assert!(
        net.events.is_empty(),
        "no second terminal event: {:?}",
        net.events
    );
    assert!(net.uac.is_done());
}

/// The phone sends an offerless re-INVITE; returns our 2xx (with our offer in it).
fn offerless_reinvite(net: &mut Net, phone_dialog: &mut sip::dialog::Dialog) -> Response {
    let reinvite = phone_dialog.create_request(Method::Invite);
    net.phone_sends(reinvite);
    assert_eq!(net.in_dialog, vec![Ok(InDialogRequest::Offer)]);
    net.phone_events
        .iter()
        .find_map(|e| match e {
            EndpointEvent::Response { response, .. } if response.status == 200 => {
                Some(response.clone())
            }
            _ => None,
        })
        .expect("our 200")
}

#[test]
fn their_offerless_reinvite_gets_our_offer_and_the_answer_comes_in_the_ack() {
    let (mut net, mut phone_dialog) = answered_net();
    let ok = offerless_reinvite(&mut net, &mut phone_dialog);
    let offer = SessionDescription::parse_bytes(&ok.body).expect("our offer in the 200");
    assert!(net.events.is_empty(), "nothing negotiated before the ACK");
    // While it is unanswered, another offer from them waits (500 + Retry-After, §14.2).
    let early = phone_dialog.create_request(Method::Update);
    net.phone_sends(early);
    assert_eq!(net.in_dialog[1], Err(RefusalReason::OfferInProgress));
    let refused = net.phone_events.iter().rev().find_map(|e| match e {
        EndpointEvent::Response { response, .. } if response.status == 500 => Some(response),
        _ => None,
    });
    let after: u64 = refused
        .and_then(|r| r.headers.get(&HeaderName::RetryAfter))
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(after <= 10);

    let answer = net
        .phone_sdp
        .answer(&offer)
        .expect("answer")
        .sdp
        .to_string();
    let mut ack = phone_dialog.create_ack(&ok);
    ack.headers.push(HeaderName::ContentType, "application/sdp");
    ack.body = answer.into_bytes().into();
    ack.headers
        .push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.20:5060;rport");
    net.phone
        .send_stateless(net.now, SipMessage::Request(ack), udp(harness::OURS));
    net.pump();
    assert!(matches!(
        net.take_events().as_slice(),
        [UacEvent::MediaUpdated { .. }]
    ));
    // The exchange is over: we may offer again.
    net.uac.hold(net.now).expect("hold");
}

#[test]
fn our_2xx_to_their_reinvite_never_acked_ends_the_call() {
    let (mut net, mut phone_dialog) = answered_net();
    offerless_reinvite(&mut net, &mut phone_dialog);
    // No ACK: our endpoint retransmits the 2xx for 64*T1, then the session ends (§13.3.1.4).
    net.run_for(secs(33));
    let (tx, bye) = net.take(Method::Bye);
    net.reply(tx, &bye, 200, None);
    assert_eq!(
        net.take_events(),
        vec![UacEvent::Ended {
            cause: EndCause::LocalBye { status: Some(200) }
        }]
    );
}
