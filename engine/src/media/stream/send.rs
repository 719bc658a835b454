//! The send side of a [`MediaStream`]: what goes out in each 20 ms slot (an RFC 4733 event
//! packet, an in-band DTMF tone, a prompt frame, the live mix, or silence), and SRTP
//! protection of every packet sent.

use std::net::SocketAddr;

use super::{MediaEvent, MediaStream, Transmit};
use crate::media::codec::{FRAME_DURATION, SAMPLES_PER_FRAME};
use crate::media::dtmf::rfc4733::Rfc4733Sender;
use crate::media::dtmf::{self, DtmfDigit};

/// Audio frames between two digits we send, so the far end sees separate key presses.
const INTER_DIGIT_FRAMES: u8 = 2;
/// Peak amplitude of each tone of in-band DTMF we generate: about -10 dBm0.
const INBAND_DTMF_AMPLITUDE: f64 = 7000.0;

pub(super) enum OutgoingDtmf {
    Rfc4733(Rfc4733Sender),
    InBand {
        digit: DtmfDigit,
        sent: usize,
        total: usize,
    },
}

impl MediaStream {
    /// Produces the packet of one 20 ms slot (if there is somewhere to send it).
    pub(super) fn send_slot(&mut self) {
        if self.dtmf_out.is_none() && self.gap_frames == 0 {
            self.start_next_digit();
        }
        let codec = self.params.codec;
        let to = self.remote();
        let payload = match self.dtmf_out.as_mut() {
            Some(OutgoingDtmf::Rfc4733(event)) => {
                let packet = event.next_packet();
                let done = event.is_done();
                if done {
                    self.finish_digit();
                }
                if let (Some(p), Some(pt), Some(to)) = (packet, self.params.telephone_event_pt, to)
                {
                    let bytes = self.sender.packet(pt, p.marker, p.timestamp, &p.payload);
                    self.transmit(to, bytes);
                }
                return;
            }
            Some(OutgoingDtmf::InBand { digit, sent, total }) => {
                let pcm = dtmf::synthesize(*digit, *sent, SAMPLES_PER_FRAME, INBAND_DTMF_AMPLITUDE);
                *sent += SAMPLES_PER_FRAME;
                if *sent >= *total {
                    self.finish_digit();
                }
                codec.encode_frame(&pcm)
            }
            None => {
                self.gap_frames = self.gap_frames.saturating_sub(1);
                let events = &mut self.events;
                let live = &mut self.live;
                // A prompt (announcement, whisper) takes precedence over relayed audio.
                self.playback
                    .next_frame(codec, |id| {
                        events.push_back(MediaEvent::PlaybackFinished { id })
                    })
                    .or_else(|| live.next_frame().map(|pcm| codec.encode_frame(&pcm)))
                    .unwrap_or(codec.silence_frame())
            }
        };
        if let Some(to) = to {
            let bytes = self.sender.audio(codec.payload_type(), &payload);
            self.transmit(to, bytes);
        }
    }

    /// Queues a packet for sending, protected when the stream is encrypted.
    fn transmit(&mut self, to: SocketAddr, packet: Vec<u8>) {
        let payload = match (&self.params.srtp, self.srtp.as_mut()) {
            (None, _) => packet,
            (Some(_), Some(srtp)) => match srtp.protect_rtp(&packet) {
                Ok(protected) => protected,
                Err(error) => {
                    tracing::debug!(%error, "srtp protect failed");
                    self.send_dropped += 1;
                    return;
                }
            },
            (Some(_), None) => {
                self.send_dropped += 1;
                return;
            }
        };
        self.transmits.push_back(Transmit { to, payload });
    }

    fn start_next_digit(&mut self) {
        let Some((digit, duration)) = self.dtmf_queue.pop_front() else {
            return;
        };
        self.dtmf_out = Some(if self.params.telephone_event_pt.is_some() {
            OutgoingDtmf::Rfc4733(Rfc4733Sender::new(digit, duration, self.sender.clock()))
        } else {
            let frames = duration
                .as_millis()
                .div_ceil(FRAME_DURATION.as_millis())
                .max(2) as usize;
            OutgoingDtmf::InBand {
                digit,
                sent: 0,
                total: frames * SAMPLES_PER_FRAME,
            }
        });
    }

    fn finish_digit(&mut self) {
        if matches!(self.dtmf_out.take(), Some(OutgoingDtmf::Rfc4733(_))) {
            // Audio after an event starts a new talk spurt (RFC 4733 section 2.5.1.5).
            self.sender.start_talk_spurt();
        }
        self.gap_frames = INTER_DIGIT_FRAMES;
    }
}
