//! Network allow-lists: the type lives in `sip::acl` (the transport driver checks it before
//! anything else); the engine uses the same one for RTP and every destination it sends to.
pub use sip::acl::{Acl, Network};
