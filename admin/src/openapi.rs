//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa; why:
//! docs/adr/0008-admin-api.md) and served at `/api/v1/openapi.json`. A test checks that
//! every route of the rights table is in it, with its method.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "svi admin API", description = "Queues, agents, calls, the live event feed, statistics, records, flows, HA, users, API keys, audit log. Rights per route: docs/admin.md."),
    paths(
        routes::health::healthz,
        routes::metrics::metrics,
        openapi_json,
        routes::session::login,
        routes::session::whoami,
        routes::session::logout,
        routes::queues::queues,
        routes::queues::agents,
        routes::queues::set_state,
        routes::me::show,
        routes::me::set_state,
        routes::me::language,
        routes::calls::list,
        routes::calls::one,
        routes::calls::supervise,
        routes::calls::recording,
        routes::calls::hangup,
        routes::events::feed,
        routes::stats::statistics,
        routes::flows::list,
        routes::flows::upload,
        routes::flows::source,
        routes::flows::activate,
        routes::flows::rollback,
        routes::flows::simulate,
        routes::records::search,
        routes::recordings::list,
        routes::recordings::one,
        routes::recordings::audio,
        routes::ha::status,
        routes::ha::promote,
        routes::users::list,
        routes::users::create,
        routes::users::disable,
        routes::users::password,
        routes::keys::list,
        routes::keys::create,
        routes::keys::revoke,
        routes::audit::list,
        routes::hooks::alarms,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("svi_<id>_<secret>")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::session::COOKIE))),
        );
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_rights_table_is_documented_with_its_method() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("json");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        for r in crate::roles::ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            assert!(
                op.is_object(),
                "{} {} is not in the OpenAPI document",
                r.method,
                r.path
            );
        }
        // And nothing documented that the router does not serve.
        let paths = doc["paths"].as_object().expect("paths");
        for (path, ops) in paths {
            for method in ops.as_object().expect("ops").keys() {
                assert!(
                    crate::roles::rule_for(&method.to_uppercase(), path).is_some(),
                    "{method} {path} documented but not in the rights table"
                );
            }
        }
    }
}
