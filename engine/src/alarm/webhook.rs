//! The alarm webhook: POSTs a JSON event to an operator's URL (a monitoring system, a chat
//! bridge). Fire and forget: each event is sent from its own task with a short timeout and
//! a couple of retries, so a slow or dead receiver never delays what raised the alarm.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Url;

/// Per attempt (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts per event, with a growing pause between them.
const ATTEMPTS: u32 = 3;
const FIRST_RETRY: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct Webhook {
    url: Url,
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("`{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
}

impl Webhook {
    /// An http:// or https:// URL with a host (checked when the configuration is read).
    pub fn check_url(url: &str) -> Result<Url, WebhookError> {
        let parsed = Url::parse(url).map_err(|_| WebhookError::BadUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(WebhookError::BadUrl(url.to_string()));
        }
        Ok(parsed)
    }

    pub fn new(url: &str) -> Result<Webhook, WebhookError> {
        let parsed = Webhook::check_url(url)?;
        // reqwest uses the process-wide rustls provider (see `connectors::http`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("svi/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Webhook {
            url: parsed,
            client,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends `event` in the background; returns at once. Failures are logged, not raised.
    pub fn send(&self, event: serde_json::Value) {
        let hook = self.clone();
        tokio::spawn(async move { hook.deliver(&event).await });
    }

    /// Delivers with retries; `true` once the receiver answered 2xx.
    pub async fn deliver(&self, event: &serde_json::Value) -> bool {
        let mut pause = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            let res = self
                .client
                .post(self.url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(event.to_string())
                .send()
                .await;
            let error = match res {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => e.to_string(),
            };
            if attempt == ATTEMPTS {
                tracing::warn!(url = %self.url, %error, attempts = ATTEMPTS, "alarm webhook failed; event dropped");
            } else {
                tracing::debug!(url = %self.url, %error, attempt, "alarm webhook failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host() {
        for bad in ["", "not a url", "ftp://x/alarm", "file:///tmp/x", "http://"] {
            assert!(Webhook::new(bad).is_err(), "{bad}");
        }
        assert!(Webhook::new("http://127.0.0.1:9999/alarm").is_ok());
    }
}
