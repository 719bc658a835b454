//! The HA pair (the `ha` crate) as the binary wires it: the `[ha]` section, the node and
//! what the engine gets from it (see `ha::settings` and `ha::replication`).

pub use ha::member_fingerprint;
pub use ha::replication::{start, witness};
pub use ha::settings::{alarm_webhook, call_survival, ha_config};
