//! Named backends shared by several connectors: `[[connections]]` in the configuration.
//!
//! A helpdesk reached by SQL serves four operations from one database, and an
//! access-control API serves nine from one session: each `[[data_sources]]` or
//! `[[actions]]` entry names its `connection` instead of repeating the address, the
//! credentials and the TLS settings, and they share one pool or one token.
//!
//! ```toml
//! [[connections]]
//! name = "helpdesk_db"
//! kind = "sql"                      # SQLite or PostgreSQL (sql_pool)
//! url = "postgres://svi@db.example.com/helpdesk"
//! password = "enc:v1:..."
//!
//! [[connections]]
//! name = "acs"
//! kind = "rest"                     # a REST API with a session (rest)
//! url = "https://acs.example.com/api/v1"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kinds::Secrets;
use super::rest::RestClient;
use super::settings::Settings;
use super::sql_pool::{SqlConnection, CONNECTION_SETTINGS};
use super::ConnectorError;
use crate::config::ConnectorConfig;

#[derive(Clone)]
enum Connection {
    Sql(Arc<SqlConnection>),
    Rest(Arc<RestClient>),
}

/// The built `[[connections]]`, by name.
#[derive(Clone, Default)]
pub struct Connections {
    by_name: BTreeMap<String, Connection>,
}

impl Connections {
    pub(super) async fn build(
        configs: &[ConnectorConfig],
        secrets: &Secrets<'_>,
    ) -> Result<Connections, ConnectorError> {
        let mut out = Connections::default();
        for cfg in configs {
            let connection = match cfg.kind.as_str() {
                "sql" => {
                    let s = Settings::new(cfg, CONNECTION_SETTINGS)?;
                    Connection::Sql(Arc::new(SqlConnection::build(&s, secrets).await?))
                }
                "rest" => {
                    let s = Settings::new(cfg, super::rest::CONNECTION_SETTINGS)?;
                    Connection::Rest(Arc::new(RestClient::build(&s, secrets)?))
                }
                other => {
                    return Err(ConnectorError::Config {
                        key: format!("{}.kind", cfg.key),
                        problem: format!("`{other}` is not a connection kind (sql, rest)"),
                    })
                }
            };
            if out.by_name.insert(cfg.name.clone(), connection).is_some() {
                return Err(ConnectorError::Config {
                    key: format!("{}.name", cfg.key),
                    problem: format!("`{}` is defined twice", cfg.name),
                });
            }
        }
        Ok(out)
    }

    pub(super) fn sql(&self, name: &str) -> Option<Arc<SqlConnection>> {
        match self.by_name.get(name) {
            Some(Connection::Sql(c)) => Some(c.clone()),
            _ => None,
        }
    }

    pub(super) fn rest(&self, name: &str) -> Option<Arc<RestClient>> {
        match self.by_name.get(name) {
            Some(Connection::Rest(c)) => Some(c.clone()),
            _ => None,
        }
    }
}
