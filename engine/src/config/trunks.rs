//! `[[trunks]]`: the engine's SIP user registered with an IPBX, and the credentials used for
//! calls the engine places through it.

use serde::Deserialize;

use super::{ConfigError, Ctx};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrunk {
    name: String,
    registrar: String,
    username: String,
    password: String,
    auth_username: Option<String>,
    domain: Option<String>,
    expires: Option<u32>,
    register: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct TrunkConfig {
    pub name: String,
    /// Registrar as a SIP URI (`sip:pbx.example.com:5060`).
    pub registrar: String,
    pub username: String,
    pub auth_username: String,
    pub password: String,
    pub domain: String,
    pub expires: u32,
    pub register: bool,
}

pub(super) fn parse(cx: &Ctx<'_>, raw: Vec<RawTrunk>) -> Result<Vec<TrunkConfig>, ConfigError> {
    let mut trunks = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("trunks[{i}].{k}");
        if !t.registrar.starts_with("sip:") && !t.registrar.starts_with("sips:") {
            return Err(cx.err(
                &key("registrar"),
                format!("`{}` is not a sip: URI", t.registrar),
            ));
        }
        if t.username.is_empty() {
            return Err(cx.err(&key("username"), "must not be empty"));
        }
        let expires = t.expires.unwrap_or(3600);
        if !(60..=86_400).contains(&expires) {
            return Err(cx.err(
                &key("expires"),
                format!("{expires} is outside 60..=86400 seconds"),
            ));
        }
        let domain = t.domain.unwrap_or_else(|| {
            let rest = t
                .registrar
                .trim_start_matches("sips:")
                .trim_start_matches("sip:");
            rest.split([';', '?']).next().unwrap_or(rest).to_string()
        });
        trunks.push(TrunkConfig {
            auth_username: t.auth_username.unwrap_or_else(|| t.username.clone()),
            name: t.name,
            registrar: t.registrar,
            username: t.username,
            password: t.password,
            domain,
            expires,
            register: t.register.unwrap_or(true),
        });
    }
    Ok(trunks)
}
