//! The SIP message codec.
//!
//! - `scan`: the lexical cursor (LWS, tokens, quoted strings, parameters) all parsers share;
//! - `method`, `uri`: request methods (an open set) and URIs (sip/sips/tel/opaque);
//! - `header`: header names (compact forms) and the ordered, verbatim-keeping header list;
//! - `typed`: Via, name-addr (From/To/Contact/Route), CSeq and numeric headers;
//! - `msg`: requests, responses, their wire form and RFC 3261 §8.2.6.2 response building;
//! - `parse`: framing (datagram and stream) and validation with one error per rule.

mod header;
mod method;
mod msg;
mod parse;
mod scan;
mod typed;
mod uri;

pub use header::{Header, HeaderName, Headers};
pub use method::Method;
pub use msg::{reason_phrase, Request, Response, SipMessage};
pub use parse::{
    parse_datagram, stream_frame_len, stream_message_len, ParseError, ParseErrorKind, MAX_CALL_ID,
    MAX_HEAD, MAX_VIAS,
};
pub use scan::split_commas;
pub use typed::{CSeq, HeaderError, NameAddr, Params, Via, MAGIC_COOKIE};
pub use uri::{split_host_port, valid_host, SipUri, Uri, UriError};
