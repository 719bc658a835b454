//! RTP and RTCP state, without sockets.
//!
//! - [`sender`]: our outgoing stream: SSRC, sequence numbers, media clock, marker bit.
//! - [`receiver`]: the remote's stream as we see it: 64-bit extended sequence numbers, loss,
//!   duplicates and interarrival jitter (RFC 3550 A.1, A.3, A.8), SSRC changes.
//! - [`rtcp`]: recognising RTCP on either port (RFC 5761 demultiplexing) and reading SR/RR
//!   headers for statistics and logs, plus a receiver-report builder.
//!
//! Packet bytes are read and built with `rtp-rs`; its 16-bit `Seq` never leaves this module
//! as a key, since it wraps every 22 minutes at 50 packets per second.

pub mod receiver;
pub mod rtcp;
pub mod sender;

pub use receiver::{Arrival, ReceiverStats, RtpReceiver};
pub use rtcp::{is_rtcp, RtcpPacket, RtcpSummary};
pub use sender::RtpSender;
