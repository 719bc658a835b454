//! SDP (RFC 8866, formerly RFC 4566) and the RFC 3264 offer/answer model, as a sans-IO codec.
//!
//! The engine only ever needs one thing from SDP: "which G.711 flavour, to which address, with
//! which telephone-event payload type, in which direction". Everything else in a body is carried,
//! not understood. The module therefore has three layers:
//!
//! - [`model`] and [`attr`]: a typed [`SessionDescription`] that keeps *every* line it does not understand
//!   verbatim, so a body parses and serialises back without losing information, plus typed
//!   accessors for the attributes telephony cares about (`rtpmap`, `fmtp`, `ptime`, direction,
//!   `rtcp`, `rtcp-mux`).
//! - [`parse`] and [`mod@write`]: text to model and back. The parser is strict where RFC 8866 is
//!   (`v=0` first, exactly one `o=` and `s=`, numeric ports, well-formed `c=`) and lenient where
//!   real PBXs are sloppy (order of optional lines, LF instead of CRLF, an empty `s=`, a missing
//!   `t=`, malformed *attributes*, which are kept and simply not recognised). Every error names
//!   the line number and text. The writer always emits CRLF in RFC 8866 order.
//! - [`mod@negotiate`], [`offer`] and [`session`]: RFC 3264 for an IVR. As answerer we accept one
//!   audio stream with one G.711 codec plus RFC 4733 telephone-event, encrypted or not
//!   ([`crypto`]: SDES keys and the per-peer [`SrtpPolicy`]), and reject the rest with
//!   port 0; as offerer we build offers and read answers; [`SdpSession`] keeps the `o=` line's
//!   version across re-INVITEs (hold/resume) so it only increments when our SDP changes.
//!
//! No function here does I/O or reads a clock: session ids and versions are inputs.

pub mod attr;
pub mod crypto;
pub mod model;
pub mod negotiate;
pub mod offer;
pub mod parse;
pub mod session;
pub mod write;

pub use attr::{Direction, Fmtp, RtcpAttr, RtpMap};
pub use crypto::{CryptoAttr, CryptoSuite, LocalSrtp, MasterKey, SrtpKeys, SrtpPolicy};
pub use model::{
    AddrType, Address, Attribute, Bandwidth, Connection, MediaDescription, MediaType, Origin,
    Proto, SdpLine, SessionDescription, Timing,
};
pub use negotiate::{
    negotiate, Answer, Codec, LocalMedia, Negotiated, NegotiatedCodec, NegotiationError,
};
pub use offer::{build_offer, process_answer};
pub use parse::SdpError;
pub use session::SdpSession;

#[cfg(test)]
mod tests;
