//! Alarms pushed by the access-control system: `POST` of a JSON body to the engine's
//! webhook route (the admin API's `/api/v1/hooks/alarms`), signed with the secret shared
//! with the access-control system (`[alarm_callout] webhook_secret`): the header
//! `X-Svi-Signature: sha256=<hex>` carries the HMAC-SHA256 of the raw body under that
//! secret, compared in constant time.
//!
//! A push only wakes the call-out (it polls at once, see [`super::machine`]): the alarm
//! called out is what the access-control system answers, so a forged or replayed push can
//! at worst cost one poll a second, never a call for an alarm that does not exist. The
//! body's `id` names the alarm in the log and the audit log.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::secrets::{Secret, SecretError, SecretKey};

/// The header that carries the body's signature.
pub const SIGNATURE_HEADER: &str = "x-svi-signature";

/// The largest body read (an alarm is a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;

/// Why a push is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// No `[alarm_callout]` with a `webhook_secret` on this engine (fail closed).
    #[error("no alarm webhook is configured on this engine")]
    NotConfigured,
    #[error("the signature is missing or wrong")]
    BadSignature,
    #[error("the body is not an alarm: {0}")]
    BadBody(String),
    /// The call-out task is not running (the engine is stopping).
    #[error("the alarm call-out is not running")]
    Stopped,
}

/// The webhook of a configured call-out: its secret and the way to wake the task.
#[derive(Clone)]
pub struct AlarmWebhook {
    secret: Secret,
    wake: mpsc::UnboundedSender<()>,
}

impl AlarmWebhook {
    pub fn new(secret: Secret, wake: mpsc::UnboundedSender<()>) -> AlarmWebhook {
        AlarmWebhook { secret, wake }
    }

    /// Checks the signature and the body, then wakes the call-out. The alarm's id (from
    /// the body's `id`, a string or a number), for the caller's log and audit entry.
    pub fn push(&self, body: &[u8], signature: Option<&str>) -> Result<String, PushError> {
        verify(self.secret.expose(), body, signature)?;
        let id = alarm_id(body)?;
        self.wake.send(()).map_err(|_| PushError::Stopped)?;
        Ok(id)
    }
}

/// The webhook of `config`'s `[alarm_callout]` (None without a `webhook_secret`) and the
/// receiver of its wake-ups, for the call-out task.
pub fn for_config(
    config: &crate::config::EngineConfig,
) -> Result<(Option<AlarmWebhook>, mpsc::UnboundedReceiver<()>), SecretError> {
    let (wake, pushes) = mpsc::unbounded_channel();
    let secret = config
        .alarm_callout
        .as_ref()
        .and_then(|c| c.webhook_secret.as_deref());
    let webhook = match secret {
        None => None,
        Some(text) => Some(AlarmWebhook::new(
            resolve_secret(text, &config.data_dir)?,
            wake,
        )),
    };
    Ok((webhook, pushes))
}

/// The secret setting `text` (`enc:v1:...` under the data directory's key, or
/// `${VARIABLE}` from the environment), as `[alarm_callout]` parsing let it through.
pub fn resolve_secret(text: &str, data_dir: &Path) -> Result<Secret, SecretError> {
    if let Some(name) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        return std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| SecretError::NoVariable(name.to_string()));
    }
    SecretKey::load(data_dir)?.decrypt(text)
}

fn verify(secret: &str, body: &[u8], signature: Option<&str>) -> Result<(), PushError> {
    let given = signature
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(PushError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| PushError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| PushError::BadSignature)
}

fn alarm_id(body: &[u8]) -> Result<String, PushError> {
    if body.len() > MAX_BODY {
        return Err(PushError::BadBody(format!("more than {MAX_BODY} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| PushError::BadBody(e.to_string()))?;
    let id = match value.get("id") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(PushError::BadBody("no `id` (a string or a number)".into())),
    };
    let printable = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if id.is_empty() || id.len() > 128 || !id.chars().all(printable) {
        return Err(PushError::BadBody(
            "`id`: 1 to 128 letters, digits or `-_.:`".into(),
        ));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature as RFC 4231 test case 2 computes it (key "Jefe").
    const JEFE: &str = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    fn webhook() -> (AlarmWebhook, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (AlarmWebhook::new(Secret::new("Jefe".into()), tx), rx)
    }

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        let body = b"what do ya want for nothing?";
        assert_eq!(verify("Jefe", body, Some(JEFE)), Ok(()));
        assert_eq!(
            verify("Jefe", b"what do ya want for nothing!", Some(JEFE)),
            Err(PushError::BadSignature)
        );
        assert_eq!(
            verify("jefe", body, Some(JEFE)),
            Err(PushError::BadSignature)
        );
        for bad in [
            None,
            Some(""),
            Some("sha256="),
            Some("sha1=00"),
            Some(&JEFE[7..]),
        ] {
            assert_eq!(
                verify("Jefe", body, bad),
                Err(PushError::BadSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_secret_is_decrypted_with_the_data_directory_key_or_read_from_the_environment() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = SecretKey::load_or_create(dir.path()).expect("key");
        let text = key.encrypt("s3cret");
        let secret = resolve_secret(&text, dir.path()).expect("decrypted");
        assert_eq!(secret.expose(), "s3cret");
        let other = tempfile::tempdir().expect("tmp");
        assert!(matches!(
            resolve_secret(&text, other.path()),
            Err(SecretError::NoKey(_))
        ));
        assert!(matches!(
            resolve_secret("${SVI_TEST_NEVER_SET_7F3A}", dir.path()),
            Err(SecretError::NoVariable(v)) if v == "SVI_TEST_NEVER_SET_7F3A"
        ));
    }

    #[test]
    fn a_signed_alarm_wakes_the_callout_and_anything_else_does_not() {
        let (hook, mut woken) = webhook();
        let sign = |body: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        let body = br#"{"id": "a-7", "door": "12"}"#;
        assert_eq!(hook.push(body, Some(&sign(body))), Ok("a-7".into()));
        assert_eq!(woken.try_recv(), Ok(()));
        let numeric = br#"{"id": 42}"#;
        assert_eq!(hook.push(numeric, Some(&sign(numeric))), Ok("42".into()));
        assert_eq!(woken.try_recv(), Ok(()));

        assert_eq!(hook.push(body, None), Err(PushError::BadSignature));
        for bad in [
            &b"not json"[..],
            br#"{"door": "12"}"#,
            br#"{"id": "a 7\n"}"#,
            br#"[1]"#,
        ] {
            assert!(
                matches!(hook.push(bad, Some(&sign(bad))), Err(PushError::BadBody(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(woken.try_recv().is_err(), "refused pushes wake nothing");
        drop(woken);
        assert_eq!(hook.push(body, Some(&sign(body))), Err(PushError::Stopped));
    }
}
