//! svi's SIP core.
pub mod auth;
pub mod sdp;
