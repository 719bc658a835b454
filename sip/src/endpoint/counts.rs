//! Messages counted by the endpoint, for metrics: requests received by method, responses
//! sent and received by status code. Fixed arrays, so [`super::EndpointStats`] stays a
//! plain `Copy` value; one increment per message.

use std::fmt;

use crate::message::Method;

/// The methods counted apart; anything else is `other`.
const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "PRACK",
    "UPDATE",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "PUBLISH",
    "other",
];

/// Requests by method.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodCounts([u64; METHODS.len()]);

impl MethodCounts {
    pub(super) fn add(&mut self, method: &Method) {
        let i = match method {
            Method::Extension(_) => METHODS.len() - 1,
            m => METHODS
                .iter()
                .position(|n| *n == m.as_str())
                .unwrap_or(METHODS.len() - 1),
        };
        self.0[i] += 1;
    }

    /// Every method (and `other`) with its count, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        METHODS.iter().copied().zip(self.0.iter().copied())
    }
}

impl fmt::Debug for MethodCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().filter(|(_, n)| *n > 0))
            .finish()
    }
}

const LOWEST: u16 = 100;
const CODES: usize = 600;

/// Responses by status code (100-699).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StatusCounts([u64; CODES]);

impl Default for StatusCounts {
    fn default() -> Self {
        StatusCounts([0; CODES])
    }
}

impl StatusCounts {
    pub(super) fn add(&mut self, status: u16) {
        if let Some(n) = status
            .checked_sub(LOWEST)
            .and_then(|i| self.0.get_mut(usize::from(i)))
        {
            *n += 1;
        }
    }

    /// The codes seen, with their counts, in code order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (LOWEST..)
            .zip(self.0.iter().copied())
            .filter(|(_, n)| *n > 0)
    }
}

impl fmt::Debug for StatusCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_codes_count_apart() {
        let mut m = MethodCounts::default();
        for method in [Method::Invite, Method::Invite, Method::Bye] {
            m.add(&method);
        }
        m.add(&Method::Extension("FOO".into()));
        let seen: Vec<_> = m.iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(seen, [("INVITE", 2), ("BYE", 1), ("other", 1)]);
        let mut s = StatusCounts::default();
        for code in [100, 200, 200, 486, 699, 99, 700] {
            s.add(code);
        }
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [(100, 1), (200, 2), (486, 1), (699, 1)]
        );
        assert_eq!(format!("{s:?}"), "{100: 1, 200: 2, 486: 1, 699: 1}");
    }
}
