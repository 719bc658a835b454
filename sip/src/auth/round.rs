//! What every client that sends requests through a challenging server needs besides the
//! digest arithmetic: reading the challenges out of a 401/407, deciding whether to answer
//! again, and putting the credentials on the next request. The registration client and the
//! INVITE client both use it, so both apply the same RFC 3261 §22.2 rule.
//!
//! The rule: within one attempt (a REGISTER and its retries, an outbound call and its
//! retries), a realm that challenges again without `stale=true` has rejected our
//! credentials; answering again would only loop. A stale nonce is answered silently. The
//! number of challenges per attempt is capped whatever the realms, so a server that invents a
//! new realm each time cannot keep us busy.

use crate::message::{HeaderName, Request, Response};

use super::client::{random_cnonce, ChallengeKind, DigestClient, DigestRequest};
use super::header::parse_challenges;
use super::AuthError;

/// The challenges met by one attempt (serialisable: it is part of a saved call's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChallengeRound {
    realms: Vec<String>,
    count: u8,
}

impl ChallengeRound {
    /// Challenges answered so far in this attempt.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// Takes in the challenges of a 401/407 `response` to one of the attempt's requests and
    /// makes `digest` ready to answer them. Errors: more than `max` challenges
    /// (`TooManyChallenges`), a realm challenged again without `stale=true`
    /// (`CredentialsRejected`), or no challenge we can answer.
    pub fn answer(
        &mut self,
        digest: &mut DigestClient,
        response: &Response,
        max: u8,
    ) -> Result<(), AuthError> {
        let (kind, header) = if response.status == 407 {
            (ChallengeKind::Proxy, HeaderName::ProxyAuthenticate)
        } else {
            (ChallengeKind::Www, HeaderName::WwwAuthenticate)
        };
        let mut challenges = Vec::new();
        for value in response.headers.get_all(&header) {
            // Unknown schemes and broken values are skipped; no usable one is an error below.
            if let Ok(list) = parse_challenges(value) {
                challenges.extend(list);
            }
        }
        self.count = self.count.saturating_add(1);
        if self.count > max {
            return Err(AuthError::TooManyChallenges { max });
        }
        for c in &challenges {
            let again = self.realms.contains(&c.realm);
            let stale = challenges.iter().any(|o| o.realm == c.realm && o.stale);
            if again && !stale {
                return Err(AuthError::CredentialsRejected {
                    realm: c.realm.clone(),
                });
            }
        }
        digest.on_challenge(kind, &challenges)?;
        for c in challenges {
            if !self.realms.contains(&c.realm) {
                self.realms.push(c.realm);
            }
        }
        Ok(())
    }
}

/// Adds the `Authorization`/`Proxy-Authorization` headers `digest` has for `request` (none
/// before any challenge). The digest covers the Request-URI as written and, for
/// `qop=auth-int`, the body.
pub fn authorize_request(
    digest: &mut DigestClient,
    request: &mut Request,
) -> Result<(), AuthError> {
    let uri = request.uri.to_string();
    let digest_request = DigestRequest {
        method: request.method.as_str(),
        uri: &uri,
        body: Some(&request.body),
    };
    let auths = digest.authorize(&digest_request, &random_cnonce())?;
    for a in auths {
        let name = match a.kind {
            ChallengeKind::Www => HeaderName::Authorization,
            ChallengeKind::Proxy => HeaderName::ProxyAuthorization,
        };
        request.headers.push(name, a.header_value());
    }
    Ok(())
}
