//! Scenario tests of `MediaStream` in virtual time with fabricated packets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

use super::*;
use crate::media::dtmf;
use crate::media::dtmf::goertzel::InBandDetector;
use crate::media::dtmf::rfc4733::EventPayload;
use crate::media::g711;

const TICK: Duration = Duration::from_millis(20);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 10], port))
}

/// The allow-list of the tests: the documentation network 192.0.2.0/24.
fn allowed() -> Arc<Acl> {
    Arc::new(Acl::new(vec![
        crate::acl::Network::parse("192.0.2.0/24").expect("net")
    ]))
}

fn digit(c: char) -> DtmfDigit {
    DtmfDigit::from_char(c).expect("valid digit")
}

/// What the tests read back from a sent packet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    to: SocketAddr,
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

struct Harness {
    stream: MediaStream,
    now: Instant,
    peer_seq: u16,
    peer_ts: u32,
}

impl Harness {
    fn new(params: MediaParams) -> Self {
        let now = Instant::now();
        let sender = RtpSender::with_initial(0xC0FFEE, 65_534, 1000);
        Harness {
            stream: MediaStream::with_sender(now, params, allowed(), sender),
            now,
            peer_seq: 500,
            peer_ts: 0,
        }
    }

    fn pcma() -> Self {
        Self::new(MediaParams {
            codec: Codec::Pcma,
            remote: Some(addr(4000)),
            telephone_event_pt: Some(101),
            rtp_timeout: Duration::from_secs(2),
            srtp: None,
        })
    }

    /// Ticks at the current time, then moves 20 ms on; returns the packets sent.
    fn tick(&mut self) -> Vec<Sent> {
        self.stream.tick(self.now);
        self.now += TICK;
        self.drain()
    }

    fn drain(&mut self) -> Vec<Sent> {
        std::iter::from_fn(|| self.stream.poll_transmit())
            .map(|t| {
                let packet = RtpReader::new(&t.payload).expect("we send valid RTP");
                Sent {
                    to: t.to,
                    pt: packet.payload_type(),
                    marker: packet.mark(),
                    seq: u16::from(packet.sequence_number()),
                    ts: packet.timestamp(),
                    payload: packet.payload().to_vec(),
                }
            })
            .collect()
    }

    fn events(&mut self) -> Vec<MediaEvent> {
        std::iter::from_fn(|| self.stream.poll_event()).collect()
    }

    /// Delivers one packet from the peer at the current time.
    fn receive(&mut self, from: SocketAddr, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let bytes = RtpPacketBuilder::new()
            .payload_type(pt)
            .marked(marker)
            .sequence(Seq::from(self.peer_seq))
            .timestamp(ts)
            .ssrc(0xBEEF)
            .payload(payload)
            .build()
            .expect("valid packet");
        self.peer_seq = self.peer_seq.wrapping_add(1);
        self.stream.handle_datagram(self.now, from, &bytes);
    }

    /// Delivers one 20 ms audio frame from the peer, then ticks.
    fn receive_audio(&mut self, from: SocketAddr, pcm: &[i16]) {
        let payload = Codec::Pcma.encode(pcm);
        let ts = self.peer_ts;
        self.peer_ts = self.peer_ts.wrapping_add(160);
        self.receive(from, 8, false, ts, &payload);
        self.tick();
    }
}

fn dtmf_events(events: &[MediaEvent]) -> Vec<(char, DtmfSource)> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, source } => Some((digit.reveal().to_char(), *source)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_prompt_plays_fully_then_silence_follows() {
    let mut h = Harness::pcma();
    let pcm: Vec<i16> = (0..3 * 160).map(|i| ((i % 50) * 400) as i16).collect();
    let prompt = Prompt::from_pcm("three-frames", pcm);
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![prompt.clone()],
            id: 42,
        },
    );

    let mut sent = Vec::new();
    let mut finished_at = Vec::new();
    for tick in 0..6 {
        sent.extend(h.tick());
        for event in h.events() {
            assert_eq!(event, MediaEvent::PlaybackFinished { id: 42 });
            finished_at.push(tick);
        }
    }
    assert_eq!(finished_at, vec![2], "finished once, with the last frame");
    assert_eq!(sent.len(), 6);
    for (i, packet) in sent.iter().enumerate() {
        assert_eq!(packet.to, addr(4000));
        assert_eq!(packet.pt, 8);
        assert_eq!(packet.marker, i == 0, "marker only on the first packet");
        assert_eq!(
            packet.seq,
            65_534u16.wrapping_add(i as u16),
            "sequence wraps"
        );
        assert_eq!(packet.ts, 1000 + 160 * i as u32);
        let expected = prompt
            .frames(Codec::Pcma)
            .get(i)
            .map_or(vec![g711::ALAW_SILENCE; 160], |f| f.to_vec());
        assert_eq!(packet.payload, expected, "frame {i}");
    }
    let stats = h.stream.stats();
    assert_eq!((stats.packets_sent, stats.octets_sent), (6, 960));
}

#[test]
fn plays_queue_and_stop_reports_every_cleared_id() {
    let mut h = Harness::pcma();
    let prompt = Prompt::from_pcm("p", vec![100; 160 * 10]);
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![prompt.clone()],
            id: 1,
        },
    );
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![prompt],
            id: 2,
        },
    );
    h.tick();
    h.stream.handle_command(h.now, MediaCommand::StopPlayback);
    assert_eq!(
        h.events(),
        vec![
            MediaEvent::PlaybackStopped { id: 1 },
            MediaEvent::PlaybackStopped { id: 2 }
        ]
    );
    let silence = h.tick();
    assert_eq!(silence[0].payload, vec![g711::ALAW_SILENCE; 160]);
    assert!(h.events().is_empty());
}

#[test]
fn rfc4733_digit_with_repeated_end_packets_is_reported_once() {
    let mut h = Harness::pcma();
    let from = addr(4000);
    let event_ts = 8000;
    for (i, duration) in [160u16, 320, 480, 640, 800, 800, 800]
        .into_iter()
        .enumerate()
    {
        let payload = EventPayload {
            event: 11,
            end: i >= 4,
            volume: 10,
            duration,
        }
        .to_bytes();
        h.receive(from, 101, i == 0, event_ts, &payload);
        h.tick();
    }
    // A network duplicate of the last packet (same sequence number).
    h.peer_seq = h.peer_seq.wrapping_sub(1);
    h.receive(
        from,
        101,
        false,
        event_ts,
        &EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        }
        .to_bytes(),
    );
    let events = h.events();
    assert_eq!(events[0], MediaEvent::FirstPacket { from });
    assert_eq!(dtmf_events(&events), vec![('#', DtmfSource::Rfc4733)]);
    assert_eq!(h.stream.stats().packets_duplicate, 1);
}

#[test]
fn inband_digit_in_pcma_is_detected_until_rfc4733_is_seen() {
    let mut h = Harness::pcma();
    let from = addr(4000);
    let tone = dtmf::synthesize(digit('7'), 0, 800, 7000.0);
    for frame in tone.chunks(160) {
        h.receive_audio(from, frame);
    }
    for _ in 0..3 {
        h.receive_audio(from, &[0; 160]);
    }
    assert_eq!(dtmf_events(&h.events()), vec![('7', DtmfSource::InBand)]);
    assert_eq!(h.stream.recent_inbound_audio().count(), 8);

    // The PBX now sends an RFC 4733 event for '1' together with its tone.
    let event = EventPayload {
        event: 1,
        end: true,
        volume: 10,
        duration: 800,
    }
    .to_bytes();
    h.receive(from, 101, true, 99_999, &event);
    let tone = dtmf::synthesize(digit('1'), 0, 800, 7000.0);
    for frame in tone.chunks(160) {
        h.receive_audio(from, frame);
    }
    assert_eq!(
        dtmf_events(&h.events()),
        vec![('1', DtmfSource::Rfc4733)],
        "no double digit"
    );
}

#[test]
fn audio_is_decoded_only_for_a_consumer_or_the_inband_detector() {
    let mut h = Harness::pcma();
    let from = addr(4000);
    h.stream.set_audio_wanted(false);
    // In-band detection needs the samples: decoded though nobody taps the stream.
    h.receive_audio(from, &[1000; 160]);
    assert_eq!(h.stream.recent_inbound_audio().count(), 1);
    // An RFC 4733 event turns in-band detection off: audio is no longer decoded...
    let event = EventPayload {
        event: 1,
        end: true,
        volume: 10,
        duration: 800,
    }
    .to_bytes();
    h.receive(from, 101, true, 99_999, &event);
    h.receive_audio(from, &[1000; 160]);
    h.receive_audio(from, &[1000; 160]);
    assert_eq!(h.stream.recent_inbound_audio().count(), 1);
    assert_eq!(h.stream.stats().packets_received, 4, "still accounted for");
    // ...until a consumer wants it.
    h.stream.set_audio_wanted(true);
    h.receive_audio(from, &[1000; 160]);
    let frames: Vec<_> = h.stream.recent_inbound_audio().collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[1].pcm,
        Codec::Pcma.decode(&Codec::Pcma.encode(&[1000; 160]))
    );
}

#[test]
fn media_is_sent_to_the_latched_source_and_foreign_packets_are_ignored() {
    let mut h = Harness::pcma();
    assert_eq!(h.tick()[0].to, addr(4000), "SDP address before any media");
    // The SDP host from another port (NAT): learnt from a run of consecutive packets.
    let nat = addr(6000);
    h.receive_audio(nat, &[0; 160]);
    h.receive_audio(nat, &[0; 160]);
    assert_eq!(h.events(), vec![], "not used while being learnt");
    h.receive_audio(nat, &[0; 160]);
    assert_eq!(h.events(), vec![MediaEvent::FirstPacket { from: nat }]);
    assert_eq!(h.tick()[0].to, nat);
    assert_eq!(h.stream.stats().packets_ignored, 2);

    // Another port of that host talking while the real source keeps talking is ignored.
    for _ in 0..10 {
        h.receive(addr(6666), 8, false, 0, &[0xD5; 160]);
        h.receive_audio(nat, &[0; 160]);
    }
    assert_eq!(h.tick()[0].to, nat);
    assert_eq!(h.stream.stats().packets_ignored, 12);

    // The source moves for good (NAT rebinding): media follows after a few packets.
    let moved = addr(6001);
    for _ in 0..8 {
        h.receive_audio(moved, &[0; 160]);
    }
    assert_eq!(h.tick()[0].to, moved);
    assert_eq!(h.stream.stats().remote, Some(moved));

    // A re-INVITE to a new SDP address forgets the latch.
    let params = MediaParams {
        remote: Some(addr(7000)),
        ..h.stream.params().clone()
    };
    h.stream
        .handle_command(h.now, MediaCommand::SetParams(params));
    assert_eq!(h.tick()[0].to, addr(7000));
    assert_eq!(h.stream.stats().unexpected_source, 0);
}

#[test]
fn media_from_outside_the_sdp_host_or_the_allow_list_is_refused_and_counted() {
    let mut h = Harness::pcma();
    let other_host = SocketAddr::from(([192, 0, 2, 66], 4000));
    let outside = SocketAddr::from(([198, 51, 100, 7], 4000));
    let rr = crate::media::rtp::rtcp::build_receiver_report(1, None);
    // Before the real media: a steady, well-sequenced stream from each, and RTCP.
    for _ in 0..20 {
        h.receive_audio(other_host, &[0; 160]);
        h.receive_audio(outside, &[0; 160]);
        h.stream.handle_datagram(h.now, outside, &rr);
    }
    assert_eq!(
        h.events(),
        vec![],
        "nothing latched, no digit, no first packet"
    );
    let stats = h.stream.stats();
    assert_eq!((stats.unexpected_source, stats.rtcp_received), (60, 0));
    assert_eq!(h.stream.take_unexpected(), Some((60, outside)));
    assert_eq!(h.stream.take_unexpected(), None, "taken once");
    assert!(h.tick().iter().all(|p| p.to == addr(4000)));

    // The real source then latches at once, and the intruders stay out.
    h.receive_audio(addr(4000), &[0; 160]);
    for _ in 0..20 {
        h.receive_audio(outside, &[0; 160]);
    }
    assert!(h.tick().iter().all(|p| p.to == addr(4000)));
    assert_eq!(h.stream.stats().unexpected_source, 80);
}

#[test]
fn an_sdp_address_outside_the_allow_list_is_never_a_destination() {
    let outside = SocketAddr::from(([198, 51, 100, 7], 4000));
    let mut h = Harness::new(MediaParams {
        remote: Some(outside),
        ..MediaParams::default()
    });
    assert_eq!(h.stream.params().remote, None);
    assert!(
        h.tick().is_empty(),
        "nothing sent before media from an allowed host"
    );
    // Media from an allowed host is learnt and answered.
    let phone = addr(5000);
    for _ in 0..3 {
        h.receive_audio(phone, &[0; 160]);
    }
    assert_eq!(h.tick()[0].to, phone);
    // A re-INVITE naming an outside address keeps nothing of it either.
    let params = MediaParams {
        remote: Some(outside),
        ..h.stream.params().clone()
    };
    h.stream
        .handle_command(h.now, MediaCommand::SetParams(params));
    assert!(h.tick().iter().all(|p| p.to == phone));
}

#[test]
fn rtp_timeout_fires_once_and_rearms_when_media_resumes() {
    let mut h = Harness::pcma();
    let mut timeouts = Vec::new();
    for tick in 0..300 {
        if tick == 150 {
            h.receive(addr(4000), 8, false, 0, &[0xD5; 160]);
        }
        h.tick();
        let count = h
            .events()
            .iter()
            .filter(|e| **e == MediaEvent::RtpTimeout)
            .count();
        timeouts.extend(std::iter::repeat_n(tick, count));
    }
    // 2 s after creation (tick 100), then 2 s after the packet at tick 150 (tick 250).
    assert_eq!(timeouts, vec![100, 250]);
}

#[test]
fn send_dtmf_produces_rfc4733_packets_and_pauses_audio() {
    let mut h = Harness::pcma();
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![Prompt::from_pcm("p", vec![500; 1600])],
            id: 1,
        },
    );
    h.tick();
    h.stream.handle_command(
        h.now,
        MediaCommand::SendDtmf {
            digit: digit('5'),
            duration: Duration::from_millis(100),
        },
    );
    h.stream.handle_command(
        h.now,
        MediaCommand::SendDtmf {
            digit: digit('6'),
            duration: Duration::from_millis(40),
        },
    );
    let sent: Vec<Sent> = (0..16).flat_map(|_| h.tick()).collect();

    let first_event_ts = 1000 + 160;
    type Summary = (u8, bool, u32, Option<(u8, bool, u16)>);
    let summary: Vec<Summary> = sent
        .iter()
        .map(|p| {
            let event = (p.pt == 101)
                .then(|| EventPayload::parse(&p.payload).expect("event payload"))
                .map(|e| (e.event, e.end, e.duration));
            (p.pt, p.marker, p.ts, event)
        })
        .collect();
    let ts = |slot: u32| 1000 + 160 * slot;
    let expected = vec![
        (101, true, first_event_ts, Some((5, false, 160))),
        (101, false, first_event_ts, Some((5, false, 320))),
        (101, false, first_event_ts, Some((5, false, 480))),
        (101, false, first_event_ts, Some((5, false, 640))),
        (101, false, first_event_ts, Some((5, true, 800))),
        (101, false, first_event_ts, Some((5, true, 800))),
        (101, false, first_event_ts, Some((5, true, 800))),
        (8, true, ts(8), None), // audio resumes as a new talk spurt, clock kept running
        (8, false, ts(9), None),
        (101, true, ts(10), Some((6, false, 160))),
        (101, false, ts(10), Some((6, true, 320))),
        (101, false, ts(10), Some((6, true, 320))),
        (101, false, ts(10), Some((6, true, 320))),
        (8, true, ts(14), None),
        (8, false, ts(15), None),
        (8, false, ts(16), None),
    ];
    assert_eq!(summary, expected);
    let seqs: Vec<u16> = sent.iter().map(|p| p.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
    // The prompt was paused, not skipped: 6 of its 10 frames are out.
    assert!(h.events().is_empty(), "prompt not finished yet");
}

#[test]
fn send_dtmf_without_telephone_event_uses_inband_tones() {
    let mut h = Harness::new(MediaParams {
        telephone_event_pt: None,
        remote: Some(addr(4000)),
        ..MediaParams::default()
    });
    h.stream.handle_command(
        h.now,
        MediaCommand::SendDtmf {
            digit: digit('9'),
            duration: Duration::from_millis(100),
        },
    );
    let mut detector = InBandDetector::new();
    for packet in (0..10).flat_map(|_| h.tick()) {
        assert_eq!(packet.pt, 8);
        detector.process(&Codec::Pcma.decode(&packet.payload));
    }
    assert_eq!(detector.poll_digit().map(DtmfDigit::to_char), Some('9'));
    assert_eq!(detector.poll_digit(), None);
}

#[test]
fn late_ticks_catch_up_a_little_and_skip_the_rest() {
    let mut h = Harness::pcma();
    assert_eq!(h.tick().len(), 1);
    // The same instant again: nothing more is due.
    h.now -= TICK;
    assert!(h.tick().is_empty());
    // 60 ms late: the missed frames go out now.
    h.now += 3 * TICK;
    let sent = h.tick();
    assert_eq!(sent.len(), 4);
    // A second late: five frames, the rest skipped, the timestamp jumps to real time.
    h.now += Duration::from_secs(1);
    let sent = h.tick();
    assert_eq!(sent.len(), MAX_CATCH_UP as usize);
    let next = h.tick();
    assert_eq!(next.len(), 1);
    assert!(next[0].marker, "a new talk spurt after the skip");
    let stats = h.stream.stats();
    let slots = u32::try_from(stats.packets_sent + stats.frames_skipped).expect("small");
    assert_eq!(next[0].ts, 1000 + 160 * (slots - 1));
}

#[test]
fn rtcp_and_garbage_are_counted_never_fatal() {
    let mut h = Harness::pcma();
    let rr = crate::media::rtp::rtcp::build_receiver_report(1, None);
    h.stream.handle_datagram(h.now, addr(4001), &rr);
    let mut state = 12_345u32;
    for len in 0..300 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect();
        h.stream.handle_datagram(h.now, addr(4002), &junk);
        h.tick();
    }
    let stats = h.stream.stats();
    assert!(stats.rtcp_received >= 1);
    assert!(stats.packets_ignored > 200, "{stats:?}");
    assert_eq!(stats.packets_sent, 300, "sending never stopped");
}

#[test]
fn without_a_remote_address_time_passes_but_nothing_is_sent() {
    let mut h = Harness::new(MediaParams::default());
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![Prompt::from_pcm("p", vec![1; 320])],
            id: 3,
        },
    );
    assert!(h.tick().is_empty());
    assert!(h.tick().is_empty());
    assert_eq!(h.events(), vec![MediaEvent::PlaybackFinished { id: 3 }]);
    // Codec switch by re-INVITE with an address.
    let params = MediaParams {
        codec: Codec::Pcmu,
        remote: Some(addr(9)),
        ..MediaParams::default()
    };
    h.stream
        .handle_command(h.now, MediaCommand::SetParams(params));
    let sent = h.tick();
    assert_eq!((sent[0].pt, sent[0].marker, sent[0].seq), (0, true, 65_534));
    assert_eq!(sent[0].payload, vec![g711::ULAW_SILENCE; 160]);
}

#[test]
fn random_rtp_like_datagrams_never_panic() {
    let mut h = Harness::pcma();
    let mut state = 0x9E37_79B9u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let second_bytes = [0u8, 8, 13, 101, 0x80 | 101, 200, 201, 203, 77];
    for i in 0..20_000u32 {
        let len = (next() % 200) as usize;
        let mut datagram: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = datagram.first_mut() {
            *first = 0x80 | (*first & 0x3F); // version 2, random padding/extension/CSRC bits
        }
        if let Some(second) = datagram.get_mut(1) {
            *second = second_bytes[(next() as usize) % second_bytes.len()];
        }
        h.stream
            .handle_datagram(h.now, addr(4000 + (i % 3) as u16), &datagram);
        if i % 50 == 0 {
            h.tick();
        }
    }
    let stats = h.stream.stats();
    assert!(
        stats.packets_received > 0 && stats.rtcp_received > 0,
        "{stats:?}"
    );
}

/// The A-law payload of a frame of `level`.
fn pcma_level(level: i16) -> Vec<u8> {
    Codec::Pcma.encode(&[level; SAMPLES_PER_FRAME])
}

#[test]
fn two_feeds_are_mixed_and_saturate() {
    let mut h = Harness::pcma();
    h.stream.push_feed(Link::Relay, &[1000; SAMPLES_PER_FRAME]);
    h.stream
        .push_feed(Link::Supervisor, &[2000; SAMPLES_PER_FRAME]);
    let sent = h.tick();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].payload, pcma_level(3000));

    h.stream
        .push_feed(Link::Caller, &[30_000; SAMPLES_PER_FRAME]);
    h.stream
        .push_feed(Link::Agent, &[25_000; SAMPLES_PER_FRAME]);
    assert_eq!(h.tick()[0].payload, pcma_level(i16::MAX));
    h.stream
        .push_feed(Link::Caller, &[-30_000; SAMPLES_PER_FRAME]);
    h.stream
        .push_feed(Link::Agent, &[-25_000; SAMPLES_PER_FRAME]);
    assert_eq!(h.tick()[0].payload, pcma_level(i16::MIN));

    // Nothing pending: silence.
    assert_eq!(h.tick()[0].payload, Codec::Pcma.silence_frame().to_vec());
}

#[test]
fn a_silent_feed_leaves_the_other_untouched() {
    let mut h = Harness::pcma();
    // The supervisor's feed exists but has sent nothing yet.
    h.stream.push_feed(Link::Supervisor, &[]);
    for _ in 0..5 {
        h.stream.push_live(vec![-1200; SAMPLES_PER_FRAME]);
        assert_eq!(h.tick()[0].payload, pcma_level(-1200));
    }
    h.stream.remove_feed(Link::Supervisor);
    h.stream.push_feed(Link::Relay, &[700; SAMPLES_PER_FRAME]);
    assert_eq!(h.tick()[0].payload, pcma_level(700));
}

#[test]
fn feeds_arriving_at_uneven_phases_lose_nothing() {
    let mut h = Harness::pcma();
    // Feed A arrives once per tick; feed B arrives in bursts (0, 2, 1, 0, 3, 0 ... frames
    // per tick) that average one per tick, as a leg served at another point of another
    // worker's pass does.
    let b_pattern = [0usize, 2, 1, 0, 3, 0];
    let rounds = 10;
    let mut a_sent = 0;
    let mut b_sent = 0;
    let mut levels = Vec::new();
    for round in 0..rounds {
        for &burst in &b_pattern {
            h.stream.push_feed(Link::Caller, &[1000; SAMPLES_PER_FRAME]);
            a_sent += 1;
            for _ in 0..burst {
                h.stream.push_feed(Link::Agent, &[2000; SAMPLES_PER_FRAME]);
                b_sent += 1;
            }
            let sent = h.tick();
            assert_eq!(sent.len(), 1, "round {round}");
            levels.push(sent[0].payload.clone());
        }
    }
    // Drain what is still buffered.
    for _ in 0..MAX_LIVE_FRAMES {
        levels.push(h.tick()[0].payload.clone());
    }
    let count = |level: i16| levels.iter().filter(|p| **p == pcma_level(level)).count();
    let (a_only, b_only, both) = (count(1000), count(2000), count(3000));
    assert_eq!(a_only + both, a_sent, "every frame of A was sent");
    assert_eq!(b_only + both, b_sent, "every frame of B was sent");
    assert_eq!(h.stream.stats().live_dropped, 0);
    assert!(
        both >= a_sent - b_pattern.len(),
        "the feeds were mixed, not alternated"
    );
}

#[test]
fn a_prompt_takes_precedence_over_feeds_which_keep_their_latest_frames() {
    let mut h = Harness::pcma();
    let prompt = Prompt::from_pcm("two-frames", vec![-5000; 2 * SAMPLES_PER_FRAME]);
    h.stream.handle_command(
        h.now,
        MediaCommand::Play {
            prompts: vec![prompt],
            id: 9,
        },
    );
    for level in [100, 200] {
        h.stream.push_feed(Link::Relay, &[level; SAMPLES_PER_FRAME]);
        h.stream
            .push_feed(Link::Supervisor, &[level; SAMPLES_PER_FRAME]);
        assert_eq!(h.tick()[0].payload, pcma_level(-5000));
    }
    assert_eq!(h.events(), vec![MediaEvent::PlaybackFinished { id: 9 }]);
    // The feeds' frames follow the prompt, in order, mixed.
    assert_eq!(h.tick()[0].payload, pcma_level(200));
    assert_eq!(h.tick()[0].payload, pcma_level(400));
    assert_eq!(h.tick()[0].payload, Codec::Pcma.silence_frame().to_vec());
}

/// Keys of both ends of an SRTP stream: the engine's and the phone's view.
fn srtp_pair() -> (SrtpKeys, SrtpKeys) {
    use crate::media::srtp::new_master_key;
    let (engine, phone) = (new_master_key(), new_master_key());
    let suite = sip::sdp::CryptoSuite::AesCm128HmacSha1_80;
    (
        SrtpKeys {
            suite,
            local: engine.clone(),
            remote: phone.clone(),
        },
        SrtpKeys {
            suite,
            local: phone,
            remote: engine,
        },
    )
}

#[test]
fn an_srtp_stream_sends_only_protected_packets_and_takes_only_authentic_ones() {
    use crate::media::srtp::SrtpSession;
    let (engine_keys, phone_keys) = srtp_pair();
    let mut h = Harness::new(MediaParams {
        srtp: Some(engine_keys),
        ..Harness::pcma().stream.params().clone()
    });
    let mut phone = SrtpSession::new(&phone_keys).expect("phone's session");
    // What the engine sends is protected: the phone decrypts it to silence.
    h.stream.tick(h.now);
    let sent = h.stream.poll_transmit().expect("a packet");
    assert_eq!(sent.payload.len(), 12 + 160 + 10, "an 80-bit tag");
    let clear = phone.unprotect_rtp(&sent.payload).expect("authentic");
    assert_eq!(
        RtpReader::new(&clear).expect("rtp").payload(),
        &[g711::ALAW_SILENCE; 160][..]
    );

    // Plain packets, even from the SDP address, are refused: not latched, no digit.
    let event = EventPayload {
        event: 5,
        end: true,
        volume: 10,
        duration: 800,
    }
    .to_bytes();
    h.receive(addr(4000), 101, true, 8000, &event);
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.stream.stats().srtp_refused, 1);

    // The phone's protected digit is heard.
    let packet = RtpPacketBuilder::new()
        .payload_type(101)
        .marked(true)
        .sequence(Seq::from(900))
        .timestamp(16_000)
        .ssrc(0xBEEF)
        .payload(&event)
        .build()
        .expect("valid packet");
    let protected = phone.protect_rtp(&packet).expect("protect");
    h.stream.handle_datagram(h.now, addr(4000), &protected);
    let events = h.events();
    assert_eq!(events[0], MediaEvent::FirstPacket { from: addr(4000) });
    assert_eq!(dtmf_events(&events), vec![('5', DtmfSource::Rfc4733)]);
    // The same packet again is a replay.
    h.stream.handle_datagram(h.now, addr(4000), &protected);
    assert_eq!(h.events(), vec![]);
    assert_eq!(h.stream.stats().srtp_refused, 2);
}
