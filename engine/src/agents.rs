//! Agent phones that register with the engine: the registrar (sans-IO, `sip::registrar`)
//! plus what registration means to the ACD. In the demo configuration an agent becomes
//! ready when its phone registers and is logged out when the binding ends; the bindings
//! are published for call actors, which ring agents at their registered contact.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, AuthError, DigestRequest, DigestServer, UserSecret};
use sip::message::{HeaderName, Request, Response, Uri};
use sip::registrar::{BindingChange, Registrar};
use tokio::sync::watch;

use crate::acd::AcdHandle;
use crate::acd::{AgentId, Input};

/// Where each registered agent can be reached now.
pub type Contacts = HashMap<String, Vec<Uri>>;

pub struct AgentPhones {
    registrar: Registrar,
    /// Checks the digest of feature-code INVITEs (`*1`, `*2`, `*3`).
    codes_auth: DigestServer,
    passwords: BTreeMap<String, String>,
    registered: BTreeSet<String>,
    acd: AcdHandle,
    contacts: watch::Sender<Contacts>,
    /// Where binding changes are replicated (`agent_bindings`), and this node's name.
    replica: Option<(crate::agent_bindings::BindingWriter, String)>,
}

impl AgentPhones {
    pub fn new(
        realm: &str,
        passwords: BTreeMap<String, String>,
        acd: AcdHandle,
    ) -> (Self, watch::Receiver<Contacts>) {
        // Nonces are signed with a per-process key: they only need to outlive a REGISTER
        // round trip on this node.
        let key: [u8; 32] = rand::random();
        let (contacts, rx) = watch::channel(Contacts::new());
        (
            AgentPhones {
                registrar: Registrar::new(realm, &key),
                codes_auth: DigestServer::new(realm, key.to_vec())
                    .with_algorithms(vec![Algorithm::Md5, Algorithm::Sha256]),
                passwords,
                registered: BTreeSet::new(),
                acd,
                contacts,
                replica: None,
            },
            rx,
        )
    }

    pub fn enabled(&self) -> bool {
        !self.passwords.is_empty()
    }

    /// Replicates every binding change through `writer` (see `agent_bindings`).
    pub fn replicate_to(&mut self, writer: crate::agent_bindings::BindingWriter, node: &str) {
        self.replica = Some((writer, node.to_string()));
    }

    fn replicate(&self, user: &str, now: Instant) {
        if let Some((w, node)) = &self.replica {
            let doc = crate::agent_bindings::stored(&self.registrar.bindings(user, now), now, node);
            w.send(user, doc);
        }
    }

    /// Bindings replicated from the node that was active before (this one just became
    /// active): the agents are reachable at once. Their ACD states come back separately.
    pub fn restore(&mut self, now: Instant, bindings: Vec<(String, Vec<(Uri, Instant)>)>) {
        for (user, list) in bindings {
            if !self.passwords.contains_key(&user) {
                continue;
            }
            for (contact, expires_at) in list {
                self.registrar.restore(&user, contact, expires_at, now);
            }
            if self.registered.insert(user.clone()) {
                tracing::info!(agent = %user, "agent phone binding taken over from the replicated state");
            }
        }
        self.publish(now);
    }

    pub fn handle(&mut self, now: Instant, req: &Request) -> Response {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let passwords = &self.passwords;
        let (response, change) = self
            .registrar
            .handle(now, unix, req, |u| passwords.get(u).cloned());
        match &change {
            BindingChange::Registered { user } if self.registered.insert(user.clone()) => {
                tracing::info!(agent = %user, "agent phone registered: agent ready");
                self.acd.input(Input::AgentLogin {
                    agent: AgentId::from(user.as_str()),
                });
                self.acd.input(Input::AgentReady {
                    agent: AgentId::from(user.as_str()),
                });
            }
            BindingChange::Unregistered { user } => self.gone(user),
            _ => {}
        }
        if let BindingChange::Registered { user } | BindingChange::Unregistered { user } = &change {
            self.replicate(user, now);
        }
        self.publish(now);
        response
    }

    /// Whether an INVITE dials a feature code (`*1` ready, `*2` pause, `*3` log out).
    pub fn is_feature_code(req: &Request) -> bool {
        matches!(req.uri.user(), Some("*1" | "*2" | "*3"))
    }

    /// A feature code dialled from an agent's phone: the INVITE is challenged (digest, the
    /// agent's password), then the agent's state changes and the phone gets a final answer
    /// whose reason phrase says what happened (`480 Agent 1001 ready`): no media needed.
    pub fn feature_code(&mut self, req: &Request) -> Response {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let authorizations: Vec<&str> = req.headers.get_all(&HeaderName::Authorization).collect();
        let uri = req.uri.to_string();
        let dreq = DigestRequest {
            method: "INVITE",
            uri: &uri,
            body: None,
        };
        let passwords = &self.passwords;
        let user = match self
            .codes_auth
            .verify(&authorizations, &dreq, unix, |u, _| {
                passwords.get(u).cloned().map(UserSecret::Password)
            }) {
            Ok(user) => user,
            Err(e) => {
                let unknown = matches!(e, AuthError::UnknownUser { .. });
                let mut r = Response::for_request(req, if unknown { 403 } else { 401 })
                    .with_to_tag(&sip::endpoint::new_tag());
                if !unknown {
                    let stale = matches!(e, AuthError::StaleNonce { .. });
                    for c in self.codes_auth.challenges(unix, stale) {
                        r.headers.push(HeaderName::WwwAuthenticate, c.to_string());
                    }
                }
                return r;
            }
        };
        let agent = AgentId::from(user.as_str());
        let (input, done) = match req.uri.user() {
            Some("*1") => (Input::AgentReady { agent }, "ready"),
            Some("*2") => (
                Input::AgentPause {
                    agent,
                    reason: "feature code".into(),
                },
                "paused",
            ),
            _ => (Input::AgentLogout { agent }, "logged out"),
        };
        tracing::info!(agent = %user, code = req.uri.user().unwrap_or(""), "agent feature code");
        self.acd.input(input);
        let mut r = Response::for_request(req, 480).with_to_tag(&sip::endpoint::new_tag());
        r.reason = format!("Agent {user} {done}");
        r
    }

    fn gone(&mut self, user: &str) {
        if self.registered.remove(user) {
            tracing::info!(agent = %user, "agent phone unregistered: agent logged out");
            self.acd.input(Input::AgentLogout {
                agent: AgentId::from(user),
            });
        }
    }

    /// Drops expired bindings (the driver calls it at `poll_timeout`).
    pub fn expire(&mut self, now: Instant) {
        for user in self.registrar.expire(now) {
            self.gone(&user);
            self.replicate(&user, now);
        }
        self.publish(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.registrar.poll_timeout()
    }

    fn publish(&self, now: Instant) {
        let map = self
            .registered
            .iter()
            .map(|u| (u.clone(), self.registrar.contacts(u, now)))
            .collect();
        self.contacts.send_replace(map);
    }
}
