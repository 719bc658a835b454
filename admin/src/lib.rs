//! svi's admin REST API: HTTPS, accounts and roles, API keys, the audit log, OpenAPI and
//! Prometheus metrics (docs/admin.md; choices in docs/adr/0008-admin-api.md). A library:
//! `svi run` builds an [`AdminState`] over the engine's handle and the HA node, and serves
//! [`router`] with [`serve::Server`].
//!
//! Map, read top-down:
//! - `roles`: the roles and the route table (who may call what), the one source of rights;
//! - `auth`: the guard in front of every route (credentials, CSRF, role, audit);
//! - `accounts`: users (Argon2id passwords, policy) and API keys, as replicated documents;
//! - `session`, `throttle`: browser sessions with timeouts; login throttling (sans-IO);
//! - `routes`: one file per resource; `openapi`: the generated OpenAPI 3.1 document;
//! - `metrics`: the Prometheus text exposition; `error`: the one `ApiError`;
//! - `today`: today's figures per queue, kept from the ACD's events for the wallboard;
//! - `local`: `svi user`/`svi apikey` through `DATA_DIR/run/admin.sock` (or offline);
//! - `tls`, `serve`: the certificate (self-signed at first start, reloaded on SIGHUP) and
//!   the HTTPS listener with its optional plain-HTTP redirect;
//! - `web`: the console's server-rendered pages over the same views and guard.

pub mod accounts;
pub mod auth;
pub mod error;
pub mod local;
pub mod metrics;
pub mod openapi;
pub mod roles;
pub mod routes;
pub mod serve;
pub mod session;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod today;
pub mod web;

pub use error::ApiError;
pub use routes::router;
pub use state::AdminState;
