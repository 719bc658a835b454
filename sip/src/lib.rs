//! svi's SIP core: sans-IO protocol logic plus a thin tokio transport driver.
//!
//! - `acl`: network allow-lists (empty allows nobody), checked first by the driver;
//! - `message`: the codec (parse, validate, serialise) for requests and responses;
//! - `sdp`: session descriptions and offer/answer for G.711 + telephone-event;
//! - `auth`: digest authentication (MD5, SHA-256, qop=auth), client and server;
//! - `transaction`: the four RFC 3261 transaction state machines, timers as data;
//! - `endpoint`: the transaction layer the engine drives (matching, automatic answers);
//! - `dialog`: RFC 3261 §12 dialogs (route sets, CSeq, target refresh);
//! - `register`: the registration client (RFC 3261 §10 with digest);
//! - `registrar`: the registrar for the engine's own users' phones (agents);
//! - `info`: DTMF in SIP INFO bodies (digits come out as `pii::Pii`);
//! - `uac`: the client of one INVITE dialog we place (outbound legs), beside `register`;
//! - `transport`: the tokio driver (UDP, TCP, TLS) around the endpoint; the only I/O here;
//! - `fuzzing`: what each fuzz target does with its input (targets in `fuzz/`).
//!
//! Saved state (a call rebuilt on another node) uses serde: dialogs, SDP sessions and the
//! INVITE client's snapshot derive it, and `text_serde` writes URIs, name-addrs and SDP
//! bodies in their text form.
pub mod acl;
pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod fuzzing;
pub mod info;
pub mod message;
pub mod proxy;
pub mod register;
pub mod registrar;
pub mod sdp;
mod text_serde;
pub mod transaction;
pub mod transport;
pub mod uac;
