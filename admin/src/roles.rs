//! Who may call what: the roles and the route table. The table is the one source of the
//! rights: the router checks every request against it (a route missing from it is refused),
//! `docs/admin.md` prints it (a test compares the two), and the matrix test walks it with
//! every role against a running engine.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user's or an API key's role. Users are admin, supervisor, agent or auditor; `metrics`
/// is for the keys of a monitoring system (it reads `/metrics` and nothing else).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Agent,
    Auditor,
    Metrics,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::Auditor,
        Role::Metrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::Auditor => "auditor",
            Role::Metrics => "metrics",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles a person's account may hold (`metrics` is for API keys only).
    pub fn for_users(self) -> bool {
        self != Role::Metrics
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (`/healthz`, logging in).
    Open,
    /// Any authenticated user or key but `metrics`.
    Signed,
    /// Only these roles.
    Roles(&'static [Role]),
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Open => true,
            Access::Signed => role != Role::Metrics,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// One route of the API: method, path (axum's syntax, as in the OpenAPI document), who may
/// call it, and whether a successful call is written to the audit log. Writes are always
/// audited; so are refusals (401 with credentials, 403) on every route.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// Audit successful reads too (recordings, users, keys, the audit log itself).
    pub audit_reads: bool,
}

const A: Role = Role::Admin;
const S: Role = Role::Supervisor;
const G: Role = Role::Agent;
const U: Role = Role::Auditor;
const M: Role = Role::Metrics;

const fn rule(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
        audit_reads: false,
    }
}

const fn audited(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
        audit_reads: true,
    }
}

/// Every route the router serves.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/healthz", Access::Open),
    rule("GET", "/metrics", Access::Roles(&[A, M])),
    rule("GET", "/api/v1/openapi.json", Access::Signed),
    rule("POST", "/api/v1/session", Access::Open),
    rule("GET", "/api/v1/session", Access::Signed),
    rule("DELETE", "/api/v1/session", Access::Signed),
    rule("GET", "/api/v1/queues", Access::Roles(&[A, S, G])),
    rule("GET", "/api/v1/agents", Access::Roles(&[A, S])),
    rule("POST", "/api/v1/agents/{id}/state", Access::Roles(&[A, S])),
    rule("GET", "/api/v1/me/agent", Access::Roles(&[G])),
    rule("POST", "/api/v1/me/agent/state", Access::Roles(&[G])),
    rule("PUT", "/api/v1/me/language", Access::Signed),
    rule("GET", "/api/v1/calls", Access::Roles(&[A, S])),
    rule("GET", "/api/v1/calls/{id}", Access::Roles(&[A, S])),
    rule(
        "POST",
        "/api/v1/calls/{id}/supervise",
        Access::Roles(&[A, S]),
    ),
    rule(
        "POST",
        "/api/v1/calls/{id}/recording",
        Access::Roles(&[A, S]),
    ),
    rule("POST", "/api/v1/calls/{id}/hangup", Access::Roles(&[A, S])),
    rule("GET", "/api/v1/events", Access::Roles(&[A, S])),
    rule("GET", "/api/v1/statistics", Access::Roles(&[A, S])),
    rule("GET", "/api/v1/flows", Access::Roles(&[A, S])),
    rule("POST", "/api/v1/flows", Access::Roles(&[A])),
    rule(
        "GET",
        "/api/v1/flows/{name}/versions/{version}",
        Access::Roles(&[A, S]),
    ),
    rule("POST", "/api/v1/flows/{name}/activate", Access::Roles(&[A])),
    rule("POST", "/api/v1/flows/{name}/rollback", Access::Roles(&[A])),
    rule(
        "POST",
        "/api/v1/flows/{name}/simulate",
        Access::Roles(&[A, S]),
    ),
    audited("GET", "/api/v1/records", Access::Roles(&[A, S])),
    audited("GET", "/api/v1/recordings", Access::Roles(&[A, S])),
    audited("GET", "/api/v1/recordings/{call}", Access::Roles(&[A, S])),
    audited(
        "GET",
        "/api/v1/recordings/{call}/audio",
        Access::Roles(&[A, S]),
    ),
    rule("GET", "/api/v1/ha", Access::Roles(&[A, S])),
    rule("POST", "/api/v1/ha/promote", Access::Roles(&[A])),
    audited("GET", "/api/v1/users", Access::Roles(&[A, U])),
    rule("POST", "/api/v1/users", Access::Roles(&[A])),
    rule("POST", "/api/v1/users/{name}/disable", Access::Roles(&[A])),
    rule("PUT", "/api/v1/users/{name}/password", Access::Roles(&[A])),
    audited("GET", "/api/v1/apikeys", Access::Roles(&[A, U])),
    rule("POST", "/api/v1/apikeys", Access::Roles(&[A])),
    rule("DELETE", "/api/v1/apikeys/{id}", Access::Roles(&[A])),
    audited("GET", "/api/v1/audit", Access::Roles(&[A, U])),
    // No account: the access-control system signs its pushes (routes/hooks.rs).
    rule("POST", "/api/v1/hooks/alarms", Access::Open),
];

/// The rule of a matched route, API or page (`None`: in neither table, refused).
pub fn rule_for(method: &str, path: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .chain(crate::web::PAGES)
        .find(|r| r.method == method && r.path == path)
}

/// The table as `docs/admin.md` prints it: one line per route, `yes`/`-` per role, then
/// the column for a request without credentials.
pub fn matrix_markdown() -> String {
    table_markdown(ROUTES)
}

/// A table of routes as `docs/admin.md` prints it.
pub fn table_markdown(rules: &[RouteRule]) -> String {
    let mut out = String::from("| method | path |");
    for r in Role::ALL {
        out.push_str(&format!(" {r} |"));
    }
    out.push_str(" none |\n|---|---|");
    for _ in 0..=Role::ALL.len() {
        out.push_str("---|");
    }
    out.push('\n');
    for rule in rules {
        out.push_str(&format!("| {} | `{}` |", rule.method, rule.path));
        for role in Role::ALL {
            out.push_str(if rule.access.allows(role) {
                " yes |"
            } else {
                " - |"
            });
        }
        out.push_str(if rule.access == Access::Open {
            " yes |\n"
        } else {
            " - |\n"
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn docs_admin_md_prints_the_table_the_router_enforces() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/admin.md"))
            .expect("docs/admin.md");
        assert!(
            doc.contains(&matrix_markdown()),
            "docs/admin.md does not hold the role matrix; paste:\n{}",
            matrix_markdown()
        );
    }

    #[test]
    fn metrics_keys_reach_metrics_only() {
        let reach: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.access != Access::Open && r.access.allows(Role::Metrics))
            .map(|r| r.path)
            .collect();
        assert_eq!(reach, ["/metrics"]);
    }
}
