//! Loopback tests of the workers with real sockets. They wait on events with deadlines;
//! nothing sleeps.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};
use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::*;
use crate::acl::Network;
use crate::media::codec::Codec;
use crate::media::dtmf::rfc4733::EventPayload;
use crate::media::dtmf::DtmfSource;
use crate::media::ports::PortAllocator;
use crate::media::prompt::Prompt;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const DEADLINE: Duration = Duration::from_secs(10);

/// Media allowed with loopback only.
fn loopback() -> Acl {
    Acl::new(vec![Network::parse("127.0.0.0/8").expect("net")])
}

/// An allocator over a few pairs that are free right now.
fn allocator() -> PortAllocator {
    for _ in 0..50 {
        let probe = std::net::UdpSocket::bind((LOCALHOST, 0)).expect("bind probe");
        let base = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        if !(1024..=65_000).contains(&base) {
            continue;
        }
        if (base..base + 8).all(|p| std::net::UdpSocket::bind((LOCALHOST, p)).is_ok()) {
            return PortAllocator::new(LOCALHOST, base, base + 7).expect("valid range");
        }
    }
    panic!("no free port range found");
}

fn event_packet(seq: u16, marker: bool, end: bool, duration: u16) -> Vec<u8> {
    let payload = EventPayload {
        event: 4,
        end,
        volume: 10,
        duration,
    }
    .to_bytes();
    RtpPacketBuilder::new()
        .payload_type(101)
        .marked(marker)
        .sequence(Seq::from(seq))
        .timestamp(16_000)
        .ssrc(0x5EED)
        .payload(&payload)
        .build()
        .expect("valid packet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_plays_a_prompt_and_hears_a_digit_over_loopback() {
    let workers = MediaWorkers::new(2, loopback());
    let ports = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer addr");
    let params = MediaParams {
        codec: Codec::Pcma,
        remote: Some(peer_addr),
        telephone_event_pt: Some(101),
        rtp_timeout: Duration::from_secs(30),
        srtp: None,
    };
    let (handle, mut events) = workers
        .open(params, ports.allocate().await.expect("ports"))
        .expect("worker running");
    let local: SocketAddr = handle.local_addr();
    assert_eq!(workers.load().iter().sum::<usize>(), 1);

    let pcm: Vec<i16> = (0..5 * 160)
        .map(|i| ((i % 40) * 500 - 10_000) as i16)
        .collect();
    let prompt = Prompt::from_pcm("loopback", pcm);
    let id = handle.play(vec![prompt.clone()]).expect("worker running");

    // The phone presses 4: start, updates, three end packets.
    let packets = [
        (true, false, 160),
        (false, false, 320),
        (false, true, 480),
        (false, true, 480),
        (false, true, 480),
    ];
    for (i, (marker, end, duration)) in packets.into_iter().enumerate() {
        peer.send_to(&event_packet(i as u16, marker, end, duration), local)
            .await
            .expect("send");
    }

    // The peer receives the prompt, frame by frame, in order.
    let expected: Vec<Vec<u8>> = prompt
        .frames(Codec::Pcma)
        .iter()
        .map(|f| f.to_vec())
        .collect();
    let received = timeout(DEADLINE, async {
        let mut buffer = [0u8; 1500];
        let mut frames: Vec<(u16, Vec<u8>)> = Vec::new();
        loop {
            let (len, from) = peer.recv_from(&mut buffer).await.expect("recv");
            assert_eq!(from.port(), local.port());
            let packet = RtpReader::new(&buffer[..len]).expect("valid RTP");
            if packet.payload_type() == 8 {
                frames.push((
                    u16::from(packet.sequence_number()),
                    packet.payload().to_vec(),
                ));
            }
            if let Some(start) = frames.iter().position(|(_, p)| *p == expected[0]) {
                if frames.len() >= start + expected.len() {
                    return frames.split_off(start);
                }
            }
        }
    })
    .await
    .expect("prompt received before the deadline");
    let payloads: Vec<Vec<u8>> = received
        .iter()
        .map(|(_, p)| p.clone())
        .take(expected.len())
        .collect();
    assert_eq!(payloads, expected);
    assert!(received
        .windows(2)
        .all(|w| w[1].0 == w[0].0.wrapping_add(1)));

    // The call actor hears the first packet, one digit and the end of the prompt.
    let mut seen = Vec::new();
    timeout(DEADLINE, async {
        while let Some(event) = events.recv().await {
            seen.push(event.clone());
            let digit = seen.iter().any(|e| matches!(e, MediaEvent::Dtmf { .. }));
            let finished = seen.contains(&MediaEvent::PlaybackFinished { id });
            if digit && finished {
                break;
            }
        }
    })
    .await
    .expect("events before the deadline");
    let position = |wanted: fn(&MediaEvent) -> bool| seen.iter().position(wanted);
    let first = position(|e| matches!(e, MediaEvent::FirstPacket { .. }));
    let digit = position(|e| matches!(e, MediaEvent::Dtmf { .. }));
    assert!(first.is_some() && first < digit, "{seen:?}");
    assert!(seen.contains(&MediaEvent::FirstPacket { from: peer_addr }));
    let digits: Vec<(char, DtmfSource)> = seen
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf { digit, source } => Some((digit.reveal().to_char(), *source)),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec![('4', DtmfSource::Rfc4733)]);

    // Stats snapshots are published.
    let mut stats = handle.watch_stats();
    let snapshot = timeout(DEADLINE, async {
        loop {
            stats.changed().await.expect("worker alive");
            let snapshot = stats.borrow_and_update().clone();
            if snapshot.packets_received == 5 {
                return snapshot;
            }
        }
    })
    .await
    .expect("stats before the deadline");
    assert!(snapshot.packets_sent >= 5);
    assert_eq!(snapshot.remote, Some(peer_addr));

    // Dropping the handle ends the stream: events close, ports return to the pool.
    assert_eq!(ports.in_use(), 1);
    drop(handle);
    timeout(DEADLINE, async { while events.recv().await.is_some() {} })
        .await
        .expect("stream closed before the deadline");
    assert_eq!(ports.in_use(), 0);
    assert_eq!(workers.load().iter().sum::<usize>(), 0);
    workers.shutdown().await;
}

#[tokio::test]
async fn commands_fail_once_workers_are_shut_down() {
    let workers = MediaWorkers::new(1, loopback());
    let ports = allocator();
    let (handle, mut events) = workers
        .open(
            MediaParams::default(),
            ports.allocate().await.expect("ports"),
        )
        .expect("worker running");
    workers.shutdown().await;
    assert!(events.recv().await.is_none(), "event channel closed");
    assert!(matches!(
        handle.stop_playback(),
        Err(MediaError::WorkerGone)
    ));
    assert_eq!(ports.in_use(), 0);
    let allocation = ports.allocate().await.expect("ports");
    assert!(matches!(
        workers.open(MediaParams::default(), allocation),
        Err(MediaError::WorkerGone)
    ));
}

fn audio_packet(seq: u16, level: i16) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(8)
        .sequence(Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .ssrc(0xA11CE)
        .payload(&Codec::Pcma.encode(&[level; 160]))
        .build()
        .expect("valid packet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_taps_each_get_the_audio_and_several_feeds_are_mixed() {
    let workers = MediaWorkers::new(1, loopback());
    let ports = allocator();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.expect("peer socket");
    let params = MediaParams {
        remote: Some(peer.local_addr().expect("peer addr")),
        ..MediaParams::default()
    };
    let (handle, _events) = workers
        .open(params, ports.allocate().await.expect("ports"))
        .expect("worker running");

    // Two taps: the relay reads everything, the recorder's channel holds one frame only.
    let (relay_tx, mut relay) = mpsc::channel(64);
    let (record_tx, mut record) = mpsc::channel(1);
    handle.tap_inbound(Some(relay_tx)).expect("worker running");
    handle
        .add_tap(Link::Record, record_tx)
        .expect("worker running");
    // Let the worker apply the taps before audio arrives.
    let mut stats = handle.watch_stats();
    timeout(DEADLINE, stats.changed())
        .await
        .expect("a stats snapshot")
        .expect("worker alive");
    for seq in 0..5 {
        peer.send_to(&audio_packet(seq, 1200), handle.local_addr())
            .await
            .expect("send");
    }
    for _ in 0..5 {
        let frame = timeout(DEADLINE, relay.recv())
            .await
            .expect("relay frame before the deadline")
            .expect("tap open");
        assert_eq!(frame.len(), 160);
    }
    assert!(record.recv().await.is_some(), "the recorder got a copy");
    let dropped = timeout(DEADLINE, async {
        loop {
            stats.changed().await.expect("worker alive");
            let dropped = stats.borrow_and_update().tap_dropped;
            if dropped > 0 {
                return dropped;
            }
        }
    })
    .await
    .expect("drops counted before the deadline");
    assert!(dropped <= 4, "only the full tap lost frames: {dropped}");

    // Two feeds: what the peer hears is their sum.
    let (caller_tx, caller_rx) = mpsc::channel(8);
    let (supervisor_tx, supervisor_rx) = mpsc::channel(8);
    handle.feed_live(Some(caller_rx)).expect("worker running");
    handle
        .add_feed(Link::Supervisor, supervisor_rx)
        .expect("worker running");
    for _ in 0..3 {
        caller_tx.send(vec![1000; 160]).await.expect("feed open");
        supervisor_tx
            .send(vec![2000; 160])
            .await
            .expect("feed open");
    }
    let mixed = Codec::Pcma.encode(&[3000; 160]);
    timeout(DEADLINE, async {
        let mut buffer = [0u8; 1500];
        loop {
            let (len, _) = peer.recv_from(&mut buffer).await.expect("recv");
            let packet = RtpReader::new(&buffer[..len]).expect("valid RTP");
            if packet.payload() == mixed.as_slice() {
                return;
            }
        }
    })
    .await
    .expect("the mix reaches the peer before the deadline");
    drop(handle);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_from_outside_the_allow_list_is_refused_and_counted_engine_wide() {
    let only_localhost = Acl::new(vec![Network::parse("127.0.0.1/32").expect("net")]);
    let workers = MediaWorkers::new(1, only_localhost);
    let ports = allocator();
    let (handle, mut events) = workers
        .open(
            MediaParams::default(),
            ports.allocate().await.expect("ports"),
        )
        .expect("worker running");
    // 127.0.0.2 is loopback too, but outside 127.0.0.1/32.
    let intruder = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0))
        .await
        .expect("bind 127.0.0.2");
    for seq in 0..5 {
        intruder
            .send_to(&audio_packet(seq, 1200), handle.local_addr())
            .await
            .expect("send");
    }
    let mut stats = handle.watch_stats();
    let refused = timeout(DEADLINE, async {
        loop {
            stats.changed().await.expect("worker alive");
            let refused = stats.borrow_and_update().unexpected_source;
            if refused == 5 {
                return refused;
            }
        }
    })
    .await
    .expect("refusals counted before the deadline");
    assert_eq!(workers.unexpected_source_packets(), refused);
    assert_eq!(handle.stats().remote, None, "nothing latched");
    assert!(events.try_recv().is_err(), "no first packet, no digit");
    let mut buffer = [0u8; 64];
    assert!(
        intruder.try_recv_from(&mut buffer).is_err(),
        "nothing was sent to the intruder"
    );
    drop(handle);
    workers.shutdown().await;
}
