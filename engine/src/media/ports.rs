//! RTP port allocation: an even port for RTP and the next odd one for RTCP (RFC 3550 11).
//!
//! Ports come from a configured range (the firewall's RTP range). The allocator hands them
//! out round-robin from a cursor rather than always the lowest free pair: a port freed by a
//! finished call is not reused at once, so late packets of the old call cannot land in a new
//! one. A pair whose bind fails because another program holds it is skipped. An allocation
//! owns both sockets and returns its pair to the pool when dropped.
//!
//! The free set is shared by all allocations, which are dropped on media workers while call
//! actors allocate: a `Mutex` held only for a scan of the set, never across an `.await`.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

#[derive(Debug, Default)]
struct PoolState {
    /// Pair indexes in use.
    in_use: HashSet<u32>,
    /// Next pair index to try.
    cursor: u32,
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
                            state: Arc::clone(&self.state),
                        },
                    })
                }
                Err(error) => {
                    lock(&self.state).in_use.remove(&index);
                    if error.kind() != io::ErrorKind::AddrInUse {
                        return Err(MediaError::Bind {
                            ip: self.ip,
                            port,
                            source: error,
                        });
                    }
                    tracing::debug!(port, "rtp port pair busy, skipped");
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

    /// Marks the next free pair from the cursor as in use.
    fn reserve(&self) -> Result<u32, MediaError> {
        let mut state = lock(&self.state);
        for step in 0..self.pairs {
            let index = (state.cursor + step) % self.pairs;
            if state.in_use.insert(index) {
                state.cursor = (index + 1) % self.pairs;
                return Ok(index);
            }
        }
        Err(self.exhausted())
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
    state: Arc<Mutex<PoolState>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        lock(&self.state).in_use.remove(&self.index);
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
        assert_eq!([a.port(), b.port(), c.port()], [low, low + 2, low + 4]);
        assert_eq!(a.rtcp().local_addr().expect("addr").port(), low + 1);
        assert_eq!(
            a.local_addr().expect("addr"),
            SocketAddr::new(LOCALHOST, low)
        );
        assert!(matches!(
            allocator.allocate().await,
            Err(MediaError::PortsExhausted { .. })
        ));
        assert_eq!(allocator.in_use(), 3);

        drop(b);
        assert_eq!(allocator.in_use(), 2);
        let again = allocator.allocate().await.expect("freed pair");
        assert_eq!(again.port(), low + 2, "wrapped around to the freed pair");
    }

    #[tokio::test]
    async fn ports_held_by_others_are_skipped() {
        let (low, high) = free_range(3);
        let squatter = std::net::UdpSocket::bind((LOCALHOST, low + 1)).expect("squat on RTCP port");
        let allocator = PortAllocator::new(LOCALHOST, low, high).expect("valid range");
        let first = allocator.allocate().await.expect("skips the busy pair");
        assert_eq!(first.port(), low + 2);
        assert_eq!(allocator.in_use(), 1);
        drop(squatter);
    }
}
