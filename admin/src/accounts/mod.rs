//! Accounts: users (people, with a password) and API keys (integrations), each a
//! replicated document (`admin_users/<name>`, `admin_keys/<id>`) written through the raft
//! log on the active node, so the standby holds them after a failover. There is no default
//! account: the first admin is made with `svi user add` (docs/admin.md).
//!
//! - `password`: the policy and Argon2id hashes;
//! - `keys`: the shape of API keys and their hashes;
//! - this file: the records and the operations on them ([`Accounts`]).

pub mod keys;
pub mod password;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use engine::storage::Storage;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::roles::Role;

pub const USERS: &str = "admin_users";
pub const KEYS: &str = "admin_keys";

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// For the agent role: the ACD agent this person is (defaults to the user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Argon2id, PHC string.
    pub hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub password_changed_at: DateTime<Utc>,
    /// The console's language this person chose (`fr`, `en`); none: the browser's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl std::fmt::Debug for User {
    /// Never the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User({}, {})", self.name, self.role)
    }
}

/// A user as lists show it (no hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub password_changed_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            name: u.name.clone(),
            role: u.role,
            agent: u.agent.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            created_by: u.created_by.clone(),
            password_changed_at: u.password_changed_at,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the whole key.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}, {}, {})", self.id, self.name, self.role)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    /// What the key starts with (`svi_<id>_`), to recognise it in a configuration.
    pub prefix: String,
    pub name: String,
    pub role: Role,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            id: k.id.clone(),
            prefix: format!("{}{}_", keys::PREFIX, k.id),
            name: k.name.clone(),
            role: k.role,
            created_at: k.created_at,
            created_by: k.created_by.clone(),
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("user `{0}` not found")]
    NoUser(String),
    #[error("API key `{0}` not found")]
    NoKey(String),
    #[error("this node is {role}, not active: accounts are written on the active node")]
    NotActive { role: String, leader: Option<u64> },
    #[error("account store: {0}")]
    Store(String),
}

impl From<engine::storage::StorageError> for AccountError {
    fn from(e: engine::storage::StorageError) -> Self {
        AccountError::Store(e.to_string())
    }
}

/// Where documents are written: through the raft log (a running node), or straight into
/// the local database (`svi user add` on a stopped single node).
#[derive(Clone)]
pub enum Writes {
    Replicated(Arc<ha::HaNode>),
    Local(Storage),
}

/// Users and keys: read from the node's database, written as `Writes` says.
#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    writes: Writes,
}

/// A user name: 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit (it appears in
/// the audit log and in document keys).
pub fn check_name(field: &'static str, name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Invalid {
            field,
            message: format!(
                "`{}` is not 1-64 characters of a-z, 0-9, `.`, `_`, `-` starting with a letter or digit",
                name.chars().take(80).collect::<String>()
            ),
        })
    }
}

impl Accounts {
    pub fn new(storage: Storage, writes: Writes) -> Accounts {
        Accounts { storage, writes }
    }

    async fn put(
        &self,
        collection: &str,
        key: &str,
        value: serde_json::Value,
    ) -> Result<(), AccountError> {
        match &self.writes {
            // `Storage::open` creates the documents table (schema step 4).
            Writes::Local(s) => Ok(s.put_doc(collection, key, &value.to_string()).await?),
            Writes::Replicated(node) => node
                .propose(ha::Command::Put {
                    collection: collection.to_string(),
                    key: key.to_string(),
                    value,
                })
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    ha::HaError::NotActive { role, leader } => AccountError::NotActive {
                        role: role.to_string(),
                        leader,
                    },
                    other => AccountError::Store(other.to_string()),
                }),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<T>, AccountError> {
        match self.storage.get_doc(collection, key).await? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| AccountError::Store(format!("{collection}/{key}: {e}"))),
            None => Ok(None),
        }
    }

    async fn all<T: DeserializeOwned>(&self, collection: &str) -> Result<Vec<T>, AccountError> {
        self.storage
            .docs_in_range(collection, "", "~")
            .await?
            .into_iter()
            .map(|(key, text)| {
                serde_json::from_str(&text)
                    .map_err(|e| AccountError::Store(format!("{collection}/{key}: {e}")))
            })
            .collect()
    }

    // --- users ----------------------------------------------------------------------------

    pub async fn user(&self, name: &str) -> Result<Option<User>, AccountError> {
        if check_name("name", name).is_err() {
            return Ok(None);
        }
        self.get(USERS, name).await
    }

    pub async fn users(&self) -> Result<Vec<User>, AccountError> {
        self.all(USERS).await
    }

    /// Adds a user; the password must meet the policy.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        agent: Option<String>,
        password: &str,
        by: &str,
    ) -> Result<UserView, AccountError> {
        check_name("name", name)?;
        if !role.for_users() {
            return Err(AccountError::Invalid {
                field: "role",
                message: format!(
                    "`{role}` is for API keys; users are admin, supervisor, agent or auditor"
                ),
            });
        }
        if let Some(a) = &agent {
            if role != Role::Agent {
                return Err(AccountError::Invalid {
                    field: "agent",
                    message: "only a user with the agent role is an agent".into(),
                });
            }
            check_name("agent", a)?;
        }
        if self.user(name).await?.is_some() {
            return Err(AccountError::UserExists(name.to_string()));
        }
        let hash = hash_checked(name, password).await?;
        let now = Utc::now();
        let user = User {
            name: name.to_string(),
            role,
            agent: match role {
                Role::Agent => Some(agent.unwrap_or_else(|| name.to_string())),
                _ => None,
            },
            hash,
            disabled: false,
            created_at: now,
            created_by: by.to_string(),
            password_changed_at: now,
            lang: None,
        };
        self.put_user(&user).await?;
        Ok(UserView::from(&user))
    }

    async fn put_user(&self, user: &User) -> Result<(), AccountError> {
        let value = serde_json::to_value(user).map_err(|e| AccountError::Store(e.to_string()))?;
        self.put(USERS, &user.name, value).await
    }

    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<UserView, AccountError> {
        let mut user = self
            .user(name)
            .await?
            .ok_or_else(|| AccountError::NoUser(name.to_string()))?;
        user.disabled = disabled;
        self.put_user(&user).await?;
        Ok(UserView::from(&user))
    }

    /// Stores the console language `name` chose (a code the caller checked).
    pub async fn set_lang(&self, name: &str, lang: &str) -> Result<UserView, AccountError> {
        let mut user = self
            .user(name)
            .await?
            .ok_or_else(|| AccountError::NoUser(name.to_string()))?;
        user.lang = Some(lang.to_string());
        self.put_user(&user).await?;
        Ok(UserView::from(&user))
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<UserView, AccountError> {
        let mut user = self
            .user(name)
            .await?
            .ok_or_else(|| AccountError::NoUser(name.to_string()))?;
        user.hash = hash_checked(name, password).await?;
        user.password_changed_at = Utc::now();
        self.put_user(&user).await?;
        Ok(UserView::from(&user))
    }

    /// The enabled user `name` if `password` is theirs. Unknown names cost the same hash
    /// verification as a wrong password.
    pub async fn login(&self, name: &str, password: &str) -> Result<Option<User>, AccountError> {
        let user = self.user(name).await?;
        let stored = user
            .as_ref()
            .map(|u| u.hash.clone())
            .unwrap_or_else(|| password::decoy().to_string());
        let given = password.to_string();
        let ok = tokio::task::spawn_blocking(move || password::verify(&given, &stored))
            .await
            .unwrap_or(false);
        Ok(user.filter(|u| ok && !u.disabled))
    }

    // --- API keys -------------------------------------------------------------------------

    /// Makes a key; the returned string is the only time the key is seen.
    pub async fn create_key(
        &self,
        name: &str,
        role: Role,
        by: &str,
    ) -> Result<(ApiKeyView, String), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AccountError::Invalid {
                field: "name",
                message: "give 1-100 printable characters".into(),
            });
        }
        let made = keys::generate();
        let key = ApiKey {
            id: made.id.clone(),
            name: name.to_string(),
            role,
            hash: made.hash,
            created_at: Utc::now(),
            created_by: by.to_string(),
            revoked_at: None,
        };
        self.put_key(&key).await?;
        Ok((ApiKeyView::from(&key), made.key))
    }

    async fn put_key(&self, key: &ApiKey) -> Result<(), AccountError> {
        let value = serde_json::to_value(key).map_err(|e| AccountError::Store(e.to_string()))?;
        self.put(KEYS, &key.id, value).await
    }

    pub async fn keys(&self) -> Result<Vec<ApiKey>, AccountError> {
        self.all(KEYS).await
    }

    /// The key record `id` (revoked or not).
    pub async fn key(&self, id: &str) -> Result<Option<ApiKey>, AccountError> {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        self.get(KEYS, id).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<ApiKeyView, AccountError> {
        let mut key = self
            .key(id)
            .await?
            .ok_or_else(|| AccountError::NoKey(id.to_string()))?;
        if key.revoked_at.is_none() {
            key.revoked_at = Some(Utc::now());
            self.put_key(&key).await?;
        }
        Ok(ApiKeyView::from(&key))
    }

    /// The key record a presented key belongs to, if it is valid and not revoked.
    pub async fn check_key(&self, presented: &str) -> Result<Option<ApiKey>, AccountError> {
        let Some(id) = keys::parse_id(presented) else {
            return Ok(None);
        };
        let key: Option<ApiKey> = self.get(KEYS, id).await?;
        Ok(key.filter(|k| k.revoked_at.is_none() && keys::matches(presented, &k.hash)))
    }
}

async fn hash_checked(name: &str, pw: &str) -> Result<String, AccountError> {
    password::check_policy(name, pw).map_err(|e| AccountError::Invalid {
        field: "password",
        message: e.to_string(),
    })?;
    let pw = pw.to_string();
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| AccountError::Store(e.to_string()))?
        .map_err(|e| AccountError::Store(e.to_string()))
}
