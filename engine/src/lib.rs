//! svi's call engine.
//!
//! - `media`: RTP endpoints, G.711, DTMF (RFC 4733, in-band), prompts, media workers.
pub mod media;
