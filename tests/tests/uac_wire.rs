//! The INVITE client (`sip::uac`) over real UDP sockets against a third-party phone: the
//! crate's transport driver carries a `Uac`, driven the way the engine's call core drives
//! one, and sipp plays the called party. sipp challenges the INVITE and checks our digest
//! (`verifyauth`), rings, answers, takes our hold re-INVITE, and our BYE.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::endpoint::{ClientTxId, EndpointConfig, Peer, Transport};
use sip::message::{CSeq, HeaderName, NameAddr, SipMessage, Uri};
use sip::sdp::{Codec, Direction, LocalMedia, SdpSession};
use sip::transport::{start, DriverConfig, SipEvent, SipHandle};
use sip::uac::{
    Credentials, EndCause, InDialogRequest, Reason, Uac, UacConfig, UacEvent, UacOutput,
};
use svi_tests::ports::free_sip_port;
use svi_tests::sipp::Sipp;
use tokio::sync::mpsc::UnboundedReceiver;

/// The called phone: 401 with a digest challenge, the INVITE again checked by sipp, 180,
/// 200 with PCMA, then a re-INVITE answered `recvonly`, then our BYE.
fn phone_xml() -> String {
    let reply = |status: &str, tag: bool, sdp: Option<&str>| {
        let to = if tag {
            "[last_To:];tag=[pid]phone[call_number]"
        } else {
            "[last_To:]"
        };
        let (retrans, body) = match sdp {
            Some(direction) => (
                " retrans=\"500\"",
                format!(
                    "Content-Type: application/sdp\nContent-Length: [len]\n\nv=0\n\
o=phone 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n\
m=audio [media_port] RTP/AVP 8\na=rtpmap:8 PCMA/8000\na={direction}\n"
                ),
            ),
            None => ("", "Content-Length: 0\n\n".to_string()),
        };
        format!(
            r#"  <send{retrans}><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
{to}
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:phone@[local_ip]:[local_port]>
{body}]]></send>
"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="svi uac phone">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=[pid]auth[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="pbx.example", nonce="[pid]n[clock_tick]", algorithm=MD5, qop="auth"
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <recv request="INVITE">
    <action>
      <verifyauth assign_to="authvalid" username="trunk" password="s3cret"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <nop hide="true" next="bad"/>
  <label id="good"/>
{ringing}{answer}  <recv request="ACK"/>
  <recv request="INVITE"/>
{hold}  <recv request="ACK"/>
  <recv request="BYE"/>
{bye_ok}  <nop hide="true" next="end"/>
  <label id="bad"/>
{forbidden}  <nop><action><exec int_cmd="stop_now"/></action></nop>
  <label id="end"/>
</scenario>
"#,
        ringing = reply("180 Ringing", true, None),
        answer = reply("200 OK", true, Some("sendrecv")),
        hold = reply("200 OK", false, Some("recvonly")),
        bye_ok = reply("200 OK", false, None),
        forbidden = reply("403 Forbidden", true, None),
    )
}

/// What the engine's call core does for one leg: the client's outputs to the driver, the
/// driver's events of the leg to the client.
struct Leg {
    uac: Uac,
    sip: SipHandle,
    events: UnboundedReceiver<SipEvent>,
    txs: HashMap<ClientTxId, CSeq>,
    local: SocketAddr,
}

impl Leg {
    fn via(&self) -> String {
        format!("SIP/2.0/UDP {};rport", self.local)
    }

    async fn flush(&mut self) {
        while let Some(out) = self.uac.poll_output() {
            match out {
                UacOutput::Request {
                    cseq,
                    mut request,
                    to,
                } => {
                    request.headers.push(HeaderName::Via, self.via());
                    let tx = self.sip.send_request(request, to).await.expect("driver");
                    self.txs.insert(tx, cseq);
                }
                UacOutput::Ack { mut request, to } => {
                    request.headers.push(HeaderName::Via, self.via());
                    self.sip.send_stateless(SipMessage::Request(request), to);
                }
                UacOutput::CancelInvite { invite } => {
                    if let Some(tx) = self.txs.iter().find(|(_, c)| **c == invite) {
                        self.sip.cancel(*tx.0);
                    }
                }
            }
        }
    }

    /// Runs the leg until an event satisfies `done`; fails after `within`.
    async fn until(&mut self, within: Duration, done: impl Fn(&UacEvent) -> bool) -> UacEvent {
        let deadline = Instant::now() + within;
        loop {
            self.flush().await;
            while let Some(e) = self.uac.poll_event() {
                if done(&e) {
                    return e;
                }
                assert!(
                    !matches!(e, UacEvent::Failed { .. } | UacEvent::Ended { .. }),
                    "unexpected end: {e:?}"
                );
            }
            let wake = self
                .uac
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            let left = wake.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(ev)) => self.event(ev),
                Ok(None) => panic!("the driver stopped"),
                Err(_) => {
                    assert!(Instant::now() < deadline, "no such event within {within:?}");
                    self.uac.handle_timeout(Instant::now());
                }
            }
        }
    }

    fn event(&mut self, ev: SipEvent) {
        let now = Instant::now();
        match ev {
            SipEvent::Response { response, .. } => self.uac.handle_response(now, &response),
            SipEvent::Timeout { tx, .. } => {
                if let Some(cseq) = self.txs.get(&tx).cloned() {
                    self.uac.handle_transaction_timeout(now, &cseq);
                }
            }
            SipEvent::Request { tx, request, .. } => match self.uac.handle_request(now, &request) {
                Ok(InDialogRequest::Ack) => {}
                Ok(InDialogRequest::Offer) => {
                    let r = self.uac.answer_offer(&request);
                    if let Some(tx) = tx {
                        self.sip.send_response(tx, r);
                    }
                }
                Ok(_) => {
                    if let Some(tx) = tx {
                        self.sip.send_response(tx, self.uac.respond(&request, 200));
                    }
                }
                Err(refusal) => {
                    if let Some(tx) = tx {
                        self.sip.send_response(tx, refusal.response);
                    }
                }
            },
            SipEvent::AckTimeout { .. } => self.uac.handle_ack_timeout(now),
            SipEvent::Cancelled { .. } => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invite_client_calls_a_sipp_phone_with_digest_hold_and_bye() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phone_port = free_sip_port();
    let phone = std::thread::spawn({
        let dir = dir.path().to_path_buf();
        move || {
            let mut s = Sipp::new(phone_xml())
                .arg("-p")
                .arg(phone_port.to_string())
                .calls(1)
                .with_media();
            s.timeout = Duration::from_secs(40);
            s.run(&dir, None)
        }
    });

    let edge = sip::transport::EdgeConfig {
        allowed: sip::acl::Acl::new(vec![
            sip::acl::Network::parse("127.0.0.0/8").expect("loopback")
        ]),
        ..Default::default()
    };
    let (sip, events, _task) = start(DriverConfig {
        tcp: false,
        endpoint: EndpointConfig::default(),
        ..DriverConfig::new("127.0.0.1:0".parse().expect("address"), edge)
    })
    .await
    .expect("driver starts");
    let local = sip.local_addr();
    let peer = Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], phone_port)),
    };
    let uri = |s: String| Uri::parse(&s).expect("uri");
    let config = UacConfig::new(
        uri(format!("sip:agent7@127.0.0.1:{phone_port}")),
        NameAddr::new(uri(format!("sip:ivr@{local}"))),
        uri(format!("sip:svi@{local}")),
        peer,
    );
    let media = SdpSession::new(LocalMedia::new(local.ip(), 40_000, 1));
    let credentials = Credentials {
        username: "trunk".into(),
        password: "s3cret".into(),
    };
    // sipp may not listen yet: the INVITE's retransmissions (Timer A) cover that.
    let mut leg = Leg {
        uac: Uac::new(Instant::now(), config, media, Some(credentials)),
        sip,
        events,
        txs: HashMap::new(),
        local,
    };

    let answered = leg
        .until(Duration::from_secs(20), |e| {
            matches!(e, UacEvent::Answered { .. })
        })
        .await;
    let UacEvent::Answered { media: Ok(media) } = answered else {
        panic!("answered without usable media: {answered:?}")
    };
    assert_eq!(media.codec.codec, Codec::Pcma);
    assert_eq!(media.remote_rtp.map(|a| a.ip()), Some(local.ip()));

    leg.uac.hold(Instant::now()).expect("hold");
    let updated = leg
        .until(Duration::from_secs(10), |e| {
            matches!(e, UacEvent::MediaUpdated { .. })
        })
        .await;
    assert!(
        matches!(&updated, UacEvent::MediaUpdated { media } if media.direction == Direction::SendOnly),
        "{updated:?}"
    );

    leg.uac.hang_up(
        Instant::now(),
        Some(Reason::q850(16, "Normal call clearing")),
    );
    let ended = leg
        .until(Duration::from_secs(10), |e| {
            matches!(e, UacEvent::Ended { .. })
        })
        .await;
    assert_eq!(
        ended,
        UacEvent::Ended {
            cause: EndCause::LocalBye { status: Some(200) }
        }
    );
    assert!(leg.uac.is_done());

    let run = phone.join().expect("sipp thread");
    assert!(run.success(), "{}", run.report());
    let messages = run.messages();
    assert_eq!(
        messages.matches("INVITE sip:agent7@").count(),
        2,
        "challenged, then authorised:\n{messages}"
    );
    assert!(
        messages.contains("Authorization: Digest username=\"trunk\""),
        "{messages}"
    );
    assert!(
        messages.contains("CSeq: 3 INVITE"),
        "the hold re-INVITE:\n{messages}"
    );
    assert!(messages.contains("a=sendonly"), "{messages}");
    assert!(
        messages.contains("Reason: Q.850;cause=16;text=\"Normal call clearing\""),
        "{messages}"
    );
}
