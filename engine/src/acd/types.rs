//! Identifiers and time for the ACD core.
//!
//! Ids are newtypes over strings (STYLE rule 6) so that a queue name can never be passed where
//! an agent id is expected; they serialise as plain strings, which keeps the replicated state
//! and the event log readable and lets them be JSON map keys.
//!
//! Time: the core is driven with `Instant`s (STYLE rule 1), but its state holds
//! [`Timestamp`]s, milliseconds since the Unix epoch. An `Instant` means nothing outside the
//! process that made it, while the state must survive a takeover by the standby node and the
//! events must become call-record fields: a call queued for 3 minutes on the primary has
//! waited 3 minutes on the standby too. The [`Timeline`] anchors the two clocks once, when the
//! core is built or restored (from an `Instant` and a `SystemTime` given by the driver, not
//! read here); afterwards only the monotonic clock advances it, so a wall-clock step (NTP)
//! never reorders deadlines.

use std::fmt;
use std::ops::Add;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The engine's id of a queued call (its call actor's id, not the caller's number).
    CallId
);
string_id!(
    /// An agent's login id, usually the agent number (`1001`).
    AgentId
);
string_id!(
    /// A queue's configured id (`support`), the name flows use in `queue:` steps.
    QueueId
);
string_id!(
    /// A skill name (`french`, `printers`); levels are 1 (novice) to 10 (expert).
    Skill
);

/// A point in time: milliseconds since the Unix epoch, on the core's timeline.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    pub const fn from_unix_ms(ms: u64) -> Self {
        Timestamp(ms)
    }

    pub const fn as_unix_ms(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// `wall` on the Unix epoch's scale (the epoch itself if earlier).
    pub fn from_system_time(wall: SystemTime) -> Self {
        Timestamp(
            wall.duration_since(UNIX_EPOCH)
                .map(millis)
                .unwrap_or_default(),
        )
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_millis(self.0))
            .unwrap_or(UNIX_EPOCH)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(d)))
    }
}

/// Whole milliseconds of a duration, saturating (a `Duration` can exceed `u64` ms).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The mapping between the driver's monotonic clock and the core's [`Timestamp`]s.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    origin: Instant,
    origin_ms: u64,
}

impl Timeline {
    /// Anchors `now` (monotonic) to `wall` (the same moment on the wall clock).
    pub fn new(now: Instant, wall: SystemTime) -> Self {
        Timeline {
            origin: now,
            origin_ms: Timestamp::from_system_time(wall).0,
        }
    }

    pub fn stamp(&self, now: Instant) -> Timestamp {
        Timestamp(
            self.origin_ms
                .saturating_add(millis(now.saturating_duration_since(self.origin))),
        )
    }

    /// The `Instant` of a timestamp; one before the anchor maps to the anchor (already due).
    pub fn instant(&self, t: Timestamp) -> Instant {
        let ahead = Duration::from_millis(t.0.saturating_sub(self.origin_ms));
        // Only a corrupt timestamp centuries ahead overflows `Instant`: clamp it to a year.
        self.origin
            .checked_add(ahead)
            .or_else(|| self.origin.checked_add(Duration::from_secs(365 * 86_400)))
            .unwrap_or(self.origin)
    }
}

/// Durations as whole milliseconds in the serialised state and configuration (`"ring_timeout":
/// 20000`), readable and stable across serde formats.
pub(crate) mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(super::millis(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

pub(crate) mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ms::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_round_trips_instants() {
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let tl = Timeline::new(t0, wall);
        assert_eq!(tl.stamp(t0).as_unix_ms(), 1_700_000_000_000);
        let later = tl.stamp(t0 + Duration::from_millis(1500));
        assert_eq!(later.since(tl.stamp(t0)), Duration::from_millis(1500));
        assert_eq!(tl.instant(later), t0 + Duration::from_millis(1500));
        // Before the anchor (a restored deadline already passed): due at once.
        assert_eq!(tl.instant(Timestamp::from_unix_ms(5)), t0);
        assert!(tl.instant(Timestamp::from_unix_ms(u64::MAX)) >= t0);
    }
}
