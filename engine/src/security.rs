//! Security events of the SIP edge, written for a log watcher such as fail2ban.
//!
//! One line per authentication failure, in a fixed format (the whole line is the message,
//! so it reads the same in plain and JSON logs), with the target `svi::security`:
//!
//! ```text
//! auth failure: src=192.0.2.66 method=REGISTER user="1001"
//! auth ban: src=192.0.2.66 method=REGISTER source_ban=60s user_ban=none user="1001"
//! ```
//!
//! `src` is always an IP address and comes first; `user` is what the credentials claimed,
//! last, quoted, cut to 64 characters, with anything but printable ASCII (and `"`, `\`, `:`,
//! `=`) replaced by `?`, so a crafted username cannot forge a line or a field. A password
//! never appears. A fail2ban filter needs one pattern (leftmost match, no leading `.*`):
//! `svi::security: auth (failure|ban): src=<HOST> `.

use std::net::IpAddr;
use std::time::Duration;

use sip::auth::guard::Verdict;

/// The log target of these lines (to route them to their own file if wanted).
pub const TARGET: &str = "svi::security";

const USER_MAX: usize = 64;

fn clean_user(user: &str) -> String {
    user.chars()
        .take(USER_MAX)
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | ':' | '=') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "none".to_string(), |d| format!("{}s", d.as_secs()))
}

/// The line for one failed authentication (`verdict`: whether it started a ban).
pub fn auth_failure_line(source: IpAddr, user: &str, method: &str, verdict: Verdict) -> String {
    let user = clean_user(user);
    let method = clean_user(method);
    match verdict {
        Verdict::Counted => format!("auth failure: src={source} method={method} user=\"{user}\""),
        Verdict::Banned { source: s, user: u } => format!(
            "auth ban: src={source} method={method} source_ban={} user_ban={} user=\"{user}\"",
            seconds(s),
            seconds(u)
        ),
    }
}

/// Logs a failed authentication (a warning line per failure; see the module documentation).
pub fn log_auth_failure(source: IpAddr, user: &str, method: &str, verdict: Verdict) {
    tracing::warn!(target: TARGET, "{}", auth_failure_line(source, user, method, verdict));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_fixed_format() {
        let ip: IpAddr = "192.0.2.66".parse().expect("ip");
        assert_eq!(
            auth_failure_line(ip, "1001", "REGISTER", Verdict::Counted),
            "auth failure: src=192.0.2.66 method=REGISTER user=\"1001\""
        );
        assert_eq!(
            auth_failure_line(
                ip,
                "1001",
                "INVITE",
                Verdict::Banned {
                    source: Some(Duration::from_secs(60)),
                    user: None
                }
            ),
            "auth ban: src=192.0.2.66 method=INVITE source_ban=60s user_ban=none user=\"1001\""
        );
    }

    #[test]
    fn a_crafted_username_cannot_forge_a_line() {
        let ip: IpAddr = "::1".parse().expect("ip");
        let line = auth_failure_line(
            ip,
            "x\" method=OPTIONS\nauth failure: src=10.0.0.1 user=\"é",
            "REGISTER",
            Verdict::Counted,
        );
        assert_eq!(
            line,
            "auth failure: src=::1 method=REGISTER user=\"x? method?OPTIONS?auth failure? src?10.0.0.1 user???\""
        );
        assert_eq!(line.lines().count(), 1);
        let long = auth_failure_line(ip, &"a".repeat(500), "REGISTER", Verdict::Counted);
        assert!(long.len() < 120, "{long}");
    }
}
