//! The client of one INVITE-initiated dialog that we place: an outbound leg of the B2BUA
//! (an agent's phone, a transfer target, a supervisor, a caller called back). Sans-IO, in the
//! shape of [`crate::register::RegistrationClient`].
//!
//! The TU (the engine's call core) creates a [`Uac`] with where and whom to call and an
//! [`SdpSession`] for the leg's media, then drains it:
//! - [`Uac::poll_output`]: [`UacOutput`]s. A `Request` goes in a new client transaction
//!   (`Endpoint::send_request`) after the TU adds its Via; an `Ack` goes stateless
//!   (`Endpoint::send_stateless`), with a Via too; `CancelInvite` asks the endpoint to
//!   CANCEL the INVITE's transaction (`Endpoint::cancel`). Each output names its request by
//!   CSeq, unique within the client: the TU keeps "transaction -> CSeq" to report a
//!   transaction's `Timeout` back ([`Uac::handle_transaction_timeout`]);
//! - [`Uac::poll_event`]: [`UacEvent`]s, the leg's life as the TU needs it (ringing,
//!   answered with the negotiated media, failed with status and reason, media changed,
//!   ended). Exactly one terminal event comes: `Failed` for a call that never got up,
//!   `Ended` for a dialog that did;
//! - [`Uac::poll_timeout`] / [`Uac::handle_timeout`]: its own timers (CANCEL give-up,
//!   re-INVITE glare retry).
//!
//! It takes every response of its Call-ID ([`Uac::handle_response`]: provisional and final,
//! retransmitted 2xx and 2xx of other forks included, as the endpoint passes them up) and
//! every request the peer sends in the dialog ([`Uac::handle_request`], answered with
//! [`Uac::respond`] or [`Uac::answer_offer`]).
//!
//! Rules, and why (RFC 3261 unless said otherwise):
//! - **one Call-ID, one From tag, one CSeq counter** for the client's life; every request
//!   takes the next number, even in another fork's dialog, so a CSeq names one transaction;
//! - **401/407** to the INVITE: the same INVITE again with credentials, CSeq + 1, in a new
//!   transaction; at most two challenges per call, and a realm that challenges again without
//!   `stale=true` has rejected our password (§22.2, `auth::ChallengeRound`);
//! - **the first 2xx** creates the dialog (§12.1.2); every 2xx is ACKed, retransmissions
//!   included, since our ACK may have been lost (§13.2.2.4). A 2xx from a second fork is
//!   ACKed and then ended with a BYE: a B2BUA leg talks to one party (§13.2.2.4);
//! - **CANCEL** only once a provisional answer came (§9.1): the endpoint holds it until then.
//!   We give up after 64*T1 whatever happens (§9.1). A 2xx that crosses our CANCEL is ACKed
//!   and BYEd (§15: the call was answered; ending it is ours to do);
//! - **our re-INVITE** (hold, resume, a new Contact): refused or timed out, the dialog and
//!   the media stay as they were (§14.1). §12.2.1.2 lets a UAC end the dialog after a
//!   timeout; we do not, as a lost hold must not drop a caller: media goes on and the RTP
//!   timeout decides. Only 481 ends the dialog. 491 (glare) is retried after 2.1-4 s, the
//!   Call-ID owner's interval, as we always own it (§14.1);
//! - **their re-INVITE while ours is pending** gets 491, one while their previous offer is
//!   unanswered gets 500 with Retry-After (§14.2);
//! - **the state is data**: [`Uac::snapshot`] gives a serialisable [`UacSnapshot`] (timers as
//!   time left), [`Uac::restore`] rebuilds the client, on another node if need be. The
//!   digest password is never part of it: restore takes the credentials again.
//!
//! Files: `invite` (the INVITE, its answers, CANCEL), `in_dialog` (requests from the peer,
//! BYE from us), `reoffer` (our re-INVITE and glare), `snapshot`, `reason` (RFC 3326).

mod in_dialog;
mod invite;
mod reason;
mod reoffer;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::auth::{AuthError, ChallengeRound, DigestClient};
use crate::dialog::Dialog;
use crate::endpoint::{new_call_id, new_tag, Peer};
use crate::message::{CSeq, NameAddr, Request, Uri};
use crate::sdp::{
    Direction, Negotiated, NegotiationError, SdpError, SdpSession, SessionDescription,
};
use crate::transaction::{TimerConfig, TimerTable};

pub use in_dialog::{InDialogRequest, Refusal, RefusalReason};
pub use reason::{Reason, ReasonProtocol};
pub use snapshot::UacSnapshot;

/// The methods a leg handles in its dialog, announced in `Allow` unless configured otherwise.
pub const DEFAULT_ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, NOTIFY";
/// Challenges answered per call before giving up (a proxy and a PBX may both challenge).
const MAX_CHALLENGES: u8 = 2;
/// Glare retries of one re-INVITE before reporting it failed with 491.
const MAX_GLARE_RETRIES: u8 = 3;

/// Digest credentials for the calls through a server that challenges (a PBX trunk).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Never prints the password.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Whom to call, as whom, and where to send the requests.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UacConfig {
    /// The Request-URI of the INVITE.
    pub target: Uri,
    /// The To header (by default the target, without display name).
    pub to: NameAddr,
    /// Our identity in From; the client adds its tag. The caller's number, in a B2BUA leg,
    /// is personal data: the client never logs From or To.
    pub from: NameAddr,
    /// Our Contact: where the peer sends its requests in the dialog.
    pub contact: Uri,
    /// Where every request of the leg goes (the PBX, a proxy, the phone): the TU resolved
    /// and allowed it. In-dialog requests go there too, which keeps a leg working through
    /// NAT and through a PBX that does not Record-Route; [`Uac::dialog`] gives the dialog's
    /// own target for a TU that wants otherwise.
    pub peer: Peer,
    /// `User-Agent` value; empty: none.
    pub user_agent: String,
    /// `Allow` value; empty: none.
    pub allow: String,
    /// Send our SDP offer in the INVITE (the usual way). Without it the INVITE has no body,
    /// the 2xx carries the peer's offer and our answer goes in the ACK (RFC 3261 §13.2.1).
    pub offer_in_invite: bool,
    /// T1, from which the CANCEL give-up time (64*T1) derives.
    pub t1: Duration,
}

/// Never prints the parties: target, To and From hold phone numbers (personal data).
impl fmt::Debug for UacConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UacConfig")
            .field("peer", &self.peer)
            .field("offer_in_invite", &self.offer_in_invite)
            .field("t1", &self.t1)
            .finish_non_exhaustive()
    }
}

impl UacConfig {
    pub fn new(target: Uri, from: NameAddr, contact: Uri, peer: Peer) -> Self {
        UacConfig {
            to: NameAddr::new(target.clone()),
            target,
            from,
            contact,
            peer,
            user_agent: "svi".to_string(),
            allow: DEFAULT_ALLOW.to_string(),
            offer_in_invite: true,
            t1: TimerConfig::default().t1,
        }
    }
}

/// Where the leg stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UacState {
    /// The INVITE is out; `progress` is the status of the last provisional answer, if any.
    Calling {
        progress: Option<u16>,
    },
    /// We asked to CANCEL. A 2xx that comes anyway is ACKed and ended with a BYE carrying
    /// `reason`.
    Cancelling {
        reason: Option<Reason>,
    },
    /// Answered and ACKed: the dialog is up.
    Confirmed,
    /// Our BYE, CSeq `bye`, is out.
    Terminating {
        bye: u32,
    },
    Terminated,
}

/// Why an SDP answer (or the offer of an offerless INVITE's 2xx) gives no usable media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the answer carries no SDP")]
    NoSdp,
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UacError {
    #[error("the called party answered {status} {reason}")]
    Rejected { status: u16, reason: String },
    #[error("no final answer")]
    Timeout,
    #[error("challenged ({status}) without credentials to answer with")]
    NoCredentials { status: u16 },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("the dialog is not confirmed")]
    NotConfirmed,
    #[error("an offer/answer exchange is already in progress")]
    OfferPending,
}

/// How a confirmed dialog ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndCause {
    /// Our BYE, answered with `status`, or with no answer (`None`).
    LocalBye { status: Option<u16> },
    /// The peer sent BYE.
    RemoteBye,
    /// The peer answered 481 to an in-dialog request: it no longer knows the dialog.
    Lost { status: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacEvent {
    /// A provisional answer (100, 180, 183...). `early_media` is what the SDP of a 183 would
    /// negotiate, for early media; the 2xx still carries the answer (RFC 3261 §13.2.1).
    Progress {
        status: u16,
        reason: String,
        early_media: Option<Negotiated>,
    },
    /// The call is answered, the dialog up and ACKed. `media` is what the SDP exchange
    /// negotiated, or why the leg cannot carry audio (the TU then hangs up).
    Answered {
        media: Result<Negotiated, MediaError>,
    },
    /// The call was not set up (terminal): a 3xx-6xx, no answer (408), credentials
    /// rejected, or our own CANCEL (`UacError::Cancelled`, with the status that ended it).
    Failed { status: u16, error: UacError },
    /// An offer/answer exchange in the dialog completed (our re-INVITE, or theirs).
    MediaUpdated { media: Negotiated },
    /// Our re-INVITE did not go through; dialog and media are as they were.
    ReofferFailed { status: u16, error: UacError },
    /// The dialog is over (terminal).
    Ended { cause: EndCause },
}

/// What the TU must send for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UacOutput {
    /// Add a Via, then `Endpoint::send_request(request, to)`; remember the transaction's
    /// `cseq` for [`Uac::handle_transaction_timeout`].
    Request {
        cseq: CSeq,
        request: Request,
        to: Peer,
    },
    /// Add a Via, then `Endpoint::send_stateless(ack, to)`: the ACK for a 2xx.
    Ack { request: Request, to: Peer },
    /// `Endpoint::cancel` the transaction of the INVITE sent with `invite`.
    CancelInvite { invite: CSeq },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Timer {
    /// 64*T1 after we asked to CANCEL: stop waiting for the INVITE's final answer (§9.1).
    CancelGiveUp,
    /// Resend a re-INVITE refused with 491 (§14.1).
    GlareRetry,
}

/// Our re-INVITE: in flight (`seq`), or waiting for its glare retry (`seq` None).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reoffer {
    seq: Option<u32>,
    direction: Direction,
    glare_retries: u8,
}

/// Everything a saved client holds (see `snapshot`): plain data, no clock, no secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Data {
    config: UacConfig,
    call_id: String,
    local_tag: String,
    /// The last CSeq number used by a request of this client, in any of its dialogs.
    cseq: u32,
    /// The CSeq of the INVITE in force (the last one sent, after challenges).
    invite_seq: u32,
    /// The INVITE's body: our offer, if `offer_in_invite`.
    offer: Option<SessionDescription>,
    /// The INVITE's credentials, repeated in its ACK.
    invite_auth: Vec<invite::SavedCredentials>,
    challenges: ChallengeRound,
    state: UacState,
    dialog: Option<Dialog>,
    sdp: SdpSession,
    /// The SDP of a 183, used as the answer if the 2xx has none.
    early_answer: Option<SessionDescription>,
    /// Our answer in the ACK (offerless INVITE), sent again with every ACK.
    ack_body: Option<SessionDescription>,
    /// Dialogs of 2xx we did not want (other forks, a 2xx after our CANCEL): their 2xx
    /// retransmissions are ACKed again.
    unwanted: Vec<Dialog>,
    /// BYEs whose answers nobody waits for (unwanted dialogs, a BYE crossed by theirs).
    loose_byes: Vec<u32>,
    reoffer: Option<Reoffer>,
    /// CSeq of the peer's re-INVITE/UPDATE not answered yet (or, offerless, not ACKed).
    remote_offer: Option<u32>,
    /// The peer's offerless re-INVITE was answered with our offer: its ACK has the answer.
    offer_in_our_2xx: bool,
    /// Our audio direction in the offers we make (hold: send-only).
    direction: Direction,
    /// Challenges met by the in-dialog request in flight (BYE, re-INVITE).
    dialog_challenges: ChallengeRound,
    /// The Reason header of our BYE, kept for a BYE sent again with credentials.
    bye_reason: Option<Reason>,
}

/// Shows where the leg stands, never the parties (the dialog's URIs hold phone numbers).
impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("call_id", &self.call_id)
            .field("state", &self.state)
            .field("cseq", &self.cseq)
            .field("negotiated", &self.sdp.negotiated())
            .finish_non_exhaustive()
    }
}

/// The client of one outbound INVITE dialog: see the module documentation.
pub struct Uac {
    d: Data,
    digest: Option<DigestClient>,
    timers: TimerTable<Timer>,
    outputs: VecDeque<UacOutput>,
    events: VecDeque<UacEvent>,
}

/// Where the leg stands and what waits to be drained; never the parties (the requests
/// waiting in `outputs` carry phone numbers in From and To).
impl fmt::Debug for Uac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uac")
            .field("d", &self.d)
            .field("next_timeout", &self.timers.next())
            .field("outputs", &self.outputs.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Uac {
    /// A client whose INVITE is at once ready in [`Uac::poll_output`]. `sdp` is the leg's
    /// media session: its offer goes in the INVITE (or the answer in the ACK).
    pub fn new(
        _now: Instant,
        config: UacConfig,
        sdp: SdpSession,
        credentials: Option<Credentials>,
    ) -> Self {
        let mut uac = Uac {
            d: Data {
                config,
                call_id: new_call_id(),
                local_tag: new_tag(),
                cseq: 0,
                invite_seq: 0,
                offer: None,
                invite_auth: Vec::new(),
                challenges: ChallengeRound::default(),
                state: UacState::Calling { progress: None },
                dialog: None,
                sdp,
                early_answer: None,
                ack_body: None,
                unwanted: Vec::new(),
                loose_byes: Vec::new(),
                reoffer: None,
                remote_offer: None,
                offer_in_our_2xx: false,
                direction: Direction::SendRecv,
                dialog_challenges: ChallengeRound::default(),
                bye_reason: None,
            },
            digest: digest_of(credentials),
            timers: TimerTable::default(),
            outputs: VecDeque::new(),
            events: VecDeque::new(),
        };
        if uac.d.config.offer_in_invite {
            uac.d.offer = Some(uac.d.sdp.offer(Direction::SendRecv));
        }
        uac.send_invite();
        uac
    }

    pub fn state(&self) -> &UacState {
        &self.d.state
    }

    /// The Call-ID of every request of the leg (to route its messages to it).
    pub fn call_id(&self) -> &str {
        &self.d.call_id
    }

    pub fn config(&self) -> &UacConfig {
        &self.d.config
    }

    /// The dialog, once the call is answered.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.d.dialog.as_ref()
    }

    /// The leg's media session (local media, what is negotiated).
    pub fn sdp(&self) -> &SdpSession {
        &self.d.sdp
    }

    /// The leg reported its terminal event and waits for no answer any more: the TU may
    /// drop it. (A 2xx that still comes for it is then a stray the endpoint drops.)
    pub fn is_done(&self) -> bool {
        self.d.state == UacState::Terminated && self.d.loose_byes.is_empty()
    }

    /// Sends the leg's requests to `peer` from now on (another node took the call over).
    pub fn set_peer(&mut self, peer: Peer) {
        self.d.config.peer = peer;
    }

    /// Our Contact from now on: sent in the next re-INVITE, which makes it the peer's
    /// target for the dialog (RFC 3261 §12.2: a target refresh).
    pub fn set_contact(&mut self, contact: Uri) {
        if let Some(d) = self.d.dialog.as_mut() {
            d.local_contact = contact.clone();
        }
        self.d.config.contact = contact;
    }

    pub fn poll_output(&mut self) -> Option<UacOutput> {
        self.outputs.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<UacEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::CancelGiveUp => self.cancel_given_up(),
                Timer::GlareRetry => self.glare_retry(now),
            }
        }
    }

    /// The client transaction of the request sent with `cseq` ended without a final answer
    /// (the endpoint's `Timeout`: Timer B/F, or a transport error).
    pub fn handle_transaction_timeout(&mut self, now: Instant, cseq: &CSeq) {
        use crate::message::Method;
        match cseq.method {
            Method::Invite if cseq.seq == self.d.invite_seq => self.invite_timeout(),
            Method::Invite => self.reoffer_timeout(now, cseq.seq),
            Method::Bye => self.bye_finished(cseq.seq, None),
            _ => {}
        }
    }

    /// Ends the leg: CANCEL while it rings, BYE (with `reason`) once answered. Nothing to do
    /// once it is ending or over. The terminal event follows (`Failed` with `Cancelled`, or
    /// `Ended` when the BYE is answered or times out).
    pub fn hang_up(&mut self, now: Instant, reason: Option<Reason>) {
        match self.d.state {
            UacState::Calling { .. } => self.cancel(now, reason),
            UacState::Confirmed => {
                self.d.dialog_challenges = ChallengeRound::default();
                self.send_bye(reason);
            }
            UacState::Cancelling { .. } | UacState::Terminating { .. } | UacState::Terminated => {}
        }
    }

    /// The terminal event, once: the state becomes `Terminated` and the timers stop.
    fn finish(&mut self, event: UacEvent) {
        if self.d.state == UacState::Terminated {
            return;
        }
        self.d.state = UacState::Terminated;
        self.timers.clear();
        if let Some(r) = self.d.reoffer.take() {
            if r.seq.is_some() {
                self.d.sdp.offer_failed();
            }
        }
        self.events.push_back(event);
    }

    /// The peer's answer in `body` to our pending offer (a re-INVITE's 2xx, the ACK of an
    /// offerless re-INVITE). On failure the offer is forgotten: the media stay as they were.
    fn complete_offer(&mut self, body: &[u8]) -> Result<Negotiated, MediaError> {
        let answer = match body.is_empty() {
            true => Err(MediaError::NoSdp),
            false => SessionDescription::parse_bytes(body).map_err(MediaError::from),
        };
        let negotiated =
            answer.and_then(|a| self.d.sdp.process_answer(&a).map_err(MediaError::from));
        if negotiated.is_err() {
            self.d.sdp.offer_failed();
        }
        negotiated
    }

    /// The next CSeq number, for any dialog of the client.
    fn next_seq(&mut self) -> u32 {
        self.d.cseq = self.d.cseq.saturating_add(1);
        self.d.cseq
    }

    fn push_request(&mut self, request: Request) {
        let Ok(cseq) = request.headers.cseq() else {
            // Every request here is built with a CSeq: nothing to send otherwise.
            return;
        };
        self.outputs.push_back(UacOutput::Request {
            cseq,
            request,
            to: self.d.config.peer,
        });
    }
}

fn digest_of(credentials: Option<Credentials>) -> Option<DigestClient> {
    credentials.map(|c| DigestClient::new(c.username, c.password))
}
