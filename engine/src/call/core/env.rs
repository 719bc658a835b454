//! What a call core reads and never changes: the configuration, the prompts, our SIP
//! address and where agents' phones are registered. Nothing here does I/O; the driver
//! builds it once per call from the engine's shared state.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sip::message::Uri;
use sip::sdp::Negotiated;

use crate::config::EngineConfig;
use crate::media::{Codec, MediaParams, Prompt, PromptStore};

/// RTP silence tolerated while the caller holds the call.
pub const HOLD_RTP_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where registered agent phones (and other registered extensions) can be reached now.
pub trait ContactBook: Send + Sync {
    /// The first contact registered for `extension`.
    fn contact(&self, extension: &str) -> Option<Uri>;
}

/// A book with nobody registered (tests, nodes without agent phones).
pub struct NoContacts;

impl ContactBook for NoContacts {
    fn contact(&self, _: &str) -> Option<Uri> {
        None
    }
}

#[derive(Clone)]
pub struct CallEnv {
    pub config: Arc<EngineConfig>,
    pub prompts: Arc<PromptStore>,
    /// Our SIP addresses as written in Via and Contact (public IP, bound ports).
    pub local_sip: crate::call::LocalSip,
    pub contacts: Arc<dyn ContactBook>,
}

pub(super) fn media_codec(c: sip::sdp::Codec) -> Codec {
    match c {
        sip::sdp::Codec::Pcma => Codec::Pcma,
        sip::sdp::Codec::Pcmu => Codec::Pcmu,
    }
}

impl CallEnv {
    /// The address written in our SDP: `rtp.ip`, or our SIP address when unspecified.
    pub(super) fn rtp_ip(&self) -> IpAddr {
        match self.config.rtp.ip {
            ip if ip.is_unspecified() => self.local_sip.ip(),
            ip => ip,
        }
    }

    pub(super) fn allows(&self, a: &SocketAddr) -> bool {
        self.config.sip.allowed.allows(a.ip())
    }

    /// The caller's media parameters from what offer/answer negotiated. Media goes where
    /// the SDP says only if that address is allowed; otherwise the stream waits for the
    /// peer's RTP and answers its source (latching), so the engine reflects to no one.
    pub(super) fn caller_params(&self, n: &Negotiated) -> MediaParams {
        MediaParams {
            codec: media_codec(n.codec.codec),
            telephone_event_pt: n.telephone_event,
            remote: n
                .remote_rtp
                .filter(|a| n.direction.sends() && self.allows(a)),
            rtp_timeout: if n.direction.receives() {
                self.config.rtp.timeout
            } else {
                HOLD_RTP_TIMEOUT
            },
            srtp: n.srtp.clone(),
        }
    }

    /// A leg's media parameters from what its answer negotiated.
    pub(super) fn leg_params(&self, n: &Negotiated) -> MediaParams {
        MediaParams {
            codec: media_codec(n.codec.codec),
            remote: n.remote_rtp.filter(|a| self.allows(a)),
            telephone_event_pt: n.telephone_event,
            rtp_timeout: self.config.rtp.timeout,
            srtp: n.srtp.clone(),
        }
    }

    /// The prompts named, in `language` each; missing ones are skipped (and logged).
    pub(super) fn prompts(&self, call: &str, refs: &[ivr_scripts::PromptRef]) -> Vec<Prompt> {
        refs.iter()
            .filter_map(|p| {
                let found = self.prompts.get(&p.language, &p.name);
                if found.is_none() {
                    tracing::warn!(call = %call, prompt = %p, "prompt not found; skipped");
                }
                found
            })
            .collect()
    }

    /// The ringback tone in `language`: its `ringback` prompt, else the synthetic one.
    pub(super) fn ringback(&self, language: &str) -> Prompt {
        self.prompts
            .get(language, "ringback")
            .unwrap_or_else(synthetic_ringback)
    }

    pub(super) fn beep(&self, language: &str) -> Prompt {
        self.prompts
            .get(language, "beep")
            .unwrap_or_else(synthetic_beep)
    }

    /// The callback settings of `queue`, if it offers callbacks.
    pub(super) fn callback(&self, queue: &str) -> Option<&crate::acd::CallbackConfig> {
        self.config
            .acd
            .queues
            .iter()
            .find(|q| q.id.as_str() == queue)
            .and_then(|q| q.callback.as_ref())
    }
}

/// Ringback while a leg rings: 425 Hz, 1.5 s on, 3.5 s off (the ETSI tone used in France),
/// when the prompt set has no `ringback` recording.
fn synthetic_ringback() -> Prompt {
    let on = 12_000;
    let pcm = (0..40_000)
        .map(|n| {
            if n < on {
                ((n as f64 * 2.0 * std::f64::consts::PI * 425.0 / 8000.0).sin() * 6000.0) as i16
            } else {
                0
            }
        })
        .collect();
    Prompt::from_pcm("ringback", pcm)
}

/// A 400 ms 1 kHz beep, for prompt sets without a `beep` recording.
pub fn synthetic_beep() -> Prompt {
    let pcm = (0..3200)
        .map(|n| ((n as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0).sin() * 8000.0) as i16)
        .collect();
    Prompt::from_pcm("beep", pcm)
}
