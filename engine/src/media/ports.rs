//! RTP port allocation: an even port for RTP and the next odd one for RTCP (RFC 3550 11).
//!
//! Ports come from a configured range (the firewall's RTP range). The allocator picks a free
//! pair **at random** (a CSPRNG), so the port of the next call cannot be guessed from the
//! last one: ports handed out in order let anyone who reached the range aim packets at the
//! call that was about to start. A pair freed by a finished call rests while other pairs are
//! free ([`RESTING`] at most), so late packets of the old call do not land in a new one. A
//! pair whose bind fails because another program holds it is skipped. An allocation owns both
//! sockets and returns its pair to the pool when dropped.
//!
//! The free set is shared by all allocations, which are dropped on media workers while call
//! actors allocate: a `Mutex` held only for a scan of the set, never across an `.await`.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::Rng;
use tokio::net::UdpSocket;

use super::MediaError;

/// Hands out RTP/RTCP socket pairs from a port range.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    ip: IpAddr,
    /// First RTP (even) port.
    first: u16,
    /// Number of pairs in the range.
    pairs: u32,
    state: Arc<Mutex<PoolState>>,
}

/// Pairs freed last that are not handed out again while other pairs are free.
pub const RESTING: usize = 64;
/// Random draws before falling back to a scan from a random start (a nearly full range).
const RANDOM_DRAWS: u32 = 16;

#[derive(Debug, Default)]
struct PoolState {
    /// Pair indexes in use.
    in_use: HashSet<u32>,
    /// Pairs freed last, oldest first: picked only when no other pair is free.
    resting: VecDeque<u32>,
}

impl PoolState {
    fn free(&self, index: u32) -> bool {
        !self.in_use.contains(&index) && !self.resting.contains(&index)
    }

    fn release(&mut self, index: u32, pairs: u32) {
        self.in_use.remove(&index);
        self.resting.push_back(index);
        // Resting pairs never make up more than half the range.
        let limit = RESTING.min(pairs as usize / 2);
        while self.resting.len() > limit {
            self.resting.pop_front();
        }
    }
}

impl PortAllocator {
    /// Pairs within `low..=high` on `ip`: RTP on even ports, RTCP on the next port.
    pub fn new(ip: IpAddr, low: u16, high: u16) -> Result<Self, MediaError> {
        let first = u32::from(low) + u32::from(low) % 2;
        if low == 0 || first + 1 > u32::from(high) {
            return Err(MediaError::InvalidPortRange { low, high });
        }
        let pairs = (u32::from(high) - first - 1) / 2 + 1;
        Ok(PortAllocator {
            ip,
            first: first as u16,
            pairs,
            state: Arc::default(),
        })
    }

    /// Binds the next free pair. Must be awaited inside a Tokio runtime.
    pub async fn allocate(&self) -> Result<RtpAllocation, MediaError> {
        for _ in 0..self.pairs {
            let index = self.reserve()?;
            let port = self.port_of(index);
            match bind_pair(self.ip, port).await {
                Ok((rtp, rtcp)) => {
                    return Ok(RtpAllocation {
                        rtp,
                        rtcp,
                        port,
                        _lease: Lease {
                            index,
                            pairs: self.pairs,
                            state: Arc::clone(&self.state),
                        },
                    })
                }
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    // Held by another program: it rests like a pair just freed, so the
                    // next draws pick other pairs while any is free.
                    lock(&self.state).release(index, self.pairs);
                    tracing::debug!(port, "rtp port pair busy, skipped");
                }
                Err(error) => {
                    // Not resting: the pair was never used.
                    lock(&self.state).in_use.remove(&index);
                    return Err(MediaError::Bind {
                        ip: self.ip,
                        port,
                        source: error,
                    });
                }
            }
        }
        Err(self.exhausted())
    }

    /// Pairs currently allocated.
    pub fn in_use(&self) -> usize {
        lock(&self.state).in_use.len()
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        self.pairs as usize
    }

    /// Marks a free pair, drawn at random, as in use: a few random draws, then a scan from a
    /// random start (the range is nearly full), then the resting pairs, oldest first.
    fn reserve(&self) -> Result<u32, MediaError> {
        let mut rng = rand::thread_rng();
        let mut state = lock(&self.state);
        let drawn = (0..RANDOM_DRAWS)
            .map(|_| rng.gen_range(0..self.pairs))
            .find(|&index| state.free(index));
        let start = rng.gen_range(0..self.pairs);
        let index = drawn
            .or_else(|| {
                (0..self.pairs)
                    .map(|step| (start + step) % self.pairs)
                    .find(|&index| state.free(index))
            })
            .or_else(|| state.resting.pop_front())
            .ok_or_else(|| self.exhausted())?;
        state.resting.retain(|&i| i != index);
        state.in_use.insert(index);
        Ok(index)
    }

    fn port_of(&self, index: u32) -> u16 {
        // In range by construction: first + 2 * (pairs - 1) + 1 <= high.
        (u32::from(self.first) + 2 * index) as u16
    }

    fn exhausted(&self) -> MediaError {
        MediaError::PortsExhausted {
            ip: self.ip,
            low: self.first,
            high: self.port_of(self.pairs - 1) + 1,
        }
    }
}

/// A bound RTP/RTCP socket pair; the ports return to the pool on drop.
#[derive(Debug)]
pub struct RtpAllocation {
    // Field order matters: sockets close before the lease frees their ports.
    rtp: UdpSocket,
    rtcp: UdpSocket,
    port: u16,
    _lease: Lease,
}

impl RtpAllocation {
    /// The RTP socket.
    pub fn rtp(&self) -> &UdpSocket {
        &self.rtp
    }

    /// The RTCP socket (RTP port + 1).
    pub fn rtcp(&self) -> &UdpSocket {
        &self.rtcp
    }

    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RTP socket's address, as bound (the unspecified address if bound to all
    /// interfaces; the SDP must then advertise the host's public address).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.rtp.local_addr()
    }
}

#[derive(Debug)]
struct Lease {
    index: u32,
    pairs: u32,
    state: Arc<Mutex<PoolState>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.state).release(self.index, self.pairs);
    }
}

/// The state is a plain set, consistent after every statement, so a panic elsewhere while
/// it was locked leaves nothing to repair: poisoning is ignored.
fn lock(state: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn bind_pair(ip: IpAddr, port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
    let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await?;
    Ok((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A range of `pairs` free pairs, found by letting the OS pick a port.
    fn free_range(pairs: u16) -> (u16, u16) {
        for _ in 0..50 {
            let probe = std::net::UdpSocket::bind((LOCALHOST, 0)).expect("bind probe");
            let base = probe.local_addr().expect("addr").port() & !1;
            drop(probe);
            let high = base.checked_add(2 * pairs - 1);
            let free = high.is_some_and(|high| {
                (base..=high).all(|p| std::net::UdpSocket::bind((LOCALHOST, p)).is_ok())
            });
            if let (true, Some(high)) = (free, high) {
                return (base, high);
            }
        }
        panic!("no free port range found");
    }

    #[test]
    fn ranges_are_validated_and_rounded_to_even() {
        assert!(PortAllocator::new(LOCALHOST, 0, 100).is_err());
        assert!(PortAllocator::new(LOCALHOST, 10_001, 10_002).is_err());
        let allocator = PortAllocator::new(LOCALHOST, 10_001, 10_006).expect("valid");
        assert_eq!((allocator.first, allocator.capacity()), (10_002, 2));
        let allocator = PortAllocator::new(LOCALHOST, 10_000, 10_001).expect("valid");
        assert_eq!(allocator.capacity(), 1);
    }

    #[tokio::test]
    async fn allocates_pairs_until_exhausted_then_reuses_freed_ones() {
        let (low, high) = free_range(3);
        let allocator = PortAllocator::new(LOCALHOST, low, high).expect("valid range");
        let a = allocator.allocate().await.expect("first pair");
        let b = allocator.allocate().await.expect("second pair");
        let c = allocator.allocate().await.expect("third pair");
        let mut ports = [a.port(), b.port(), c.port()];
        ports.sort_unstable();
        assert_eq!(ports, [low, low + 2, low + 4]);
        assert_eq!(a.rtcp().local_addr().expect("addr").port(), a.port() + 1);
        assert_eq!(
            a.local_addr().expect("addr"),
            SocketAddr::new(LOCALHOST, a.port())
        );
        assert!(matches!(
            allocator.allocate().await,
            Err(MediaError::PortsExhausted { .. })
        ));
        assert_eq!(allocator.in_use(), 3);

        let freed = b.port();
        drop(b);
        assert_eq!(allocator.in_use(), 2);
        let again = allocator.allocate().await.expect("freed pair");
        assert_eq!(again.port(), freed, "the only free pair, resting or not");
    }

    #[tokio::test]
    async fn pairs_are_drawn_at_random_and_a_freed_pair_rests() {
        let (low, high) = free_range(40);
        let allocator = PortAllocator::new(LOCALHOST, low, high).expect("valid range");
        // Ten calls one after the other: in order, they would take the first ten pairs.
        let mut ports = Vec::new();
        for _ in 0..10 {
            let call = allocator.allocate().await.expect("pair");
            ports.push(call.port());
        }
        let in_order: Vec<u16> = (0..10).map(|i| low + 2 * i).collect();
        assert_ne!(ports, in_order, "a 1 in 40!/30! chance of failing");
        // Each of those pairs rested when the next call came: no port twice in a row.
        assert!(ports.windows(2).all(|w| w[0] != w[1]), "{ports:?}");
        // Resting costs no capacity: every pair of the range can still be held at once.
        let mut held = Vec::new();
        for _ in 0..40 {
            held.push(allocator.allocate().await.expect("pair"));
        }
        let distinct: HashSet<u16> = held.iter().map(RtpAllocation::port).collect();
        assert_eq!((distinct.len(), allocator.in_use()), (40, 40));
    }

    #[tokio::test]
    async fn ports_held_by_others_are_skipped() {
        // Another test may take a port of a free range before it is squatted: take another.
        let (low, high, squatter) = (0..50)
            .find_map(|_| {
                let (low, high) = free_range(3);
                let squatter = std::net::UdpSocket::bind((LOCALHOST, low + 1)).ok()?;
                Some((low, high, squatter))
            })
            .expect("squat on an RTCP port");
        let allocator = PortAllocator::new(LOCALHOST, low, high).expect("valid range");
        let a = allocator.allocate().await.expect("skips the busy pair");
        let b = allocator.allocate().await.expect("skips the busy pair");
        assert!(a.port() != low && b.port() != low);
        assert_eq!(allocator.in_use(), 2);
        assert!(matches!(
            allocator.allocate().await,
            Err(MediaError::PortsExhausted { .. })
        ));
        drop(squatter);
    }
}
