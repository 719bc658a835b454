//! svi's SIP core: sans-IO protocol logic plus a thin tokio transport driver.
//!
//! - `message`: the codec (parse, validate, serialise) for requests and responses;
//! - `sdp`: session descriptions and offer/answer for G.711 + telephone-event;
//! - `auth`: digest authentication (MD5, SHA-256, qop=auth), client and server.
pub mod auth;
pub mod message;
pub mod sdp;
