//! Agent phones that register with the engine: the registrar (sans-IO, `sip::registrar`)
//! plus what registration means to the ACD. In the demo configuration an agent becomes
//! ready when its phone registers and is logged out when the binding ends; the bindings
//! are published for call actors, which ring agents at their registered contact.
//!
//! Every digest check here (REGISTER and feature-code INVITEs) goes through one brute-force
//! guard (`sip::auth::guard`): a banned source or user is refused with 403 before its
//! credentials are read, each failure is logged in the fixed format of `crate::security`,
//! and the guard's counters are published for metrics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sip::auth::guard::Verdict;
use sip::auth::{parse_credentials, Algorithm, AuthGuard, BanPolicy, DigestServer, GuardStats};
use sip::endpoint::Peer;
use sip::message::{HeaderName, Request, Response, Uri};
use sip::registrar::{
    unknown_user_secret, verify_digest, AuthOutcome, BindingChange, Origin, Registrar,
};
use tokio::sync::watch;

use crate::acd::AcdHandle;
use crate::acd::{AgentId, Input};
use crate::acl::Acl;

/// Where each registered agent can be reached now.
pub type Contacts = HashMap<String, Vec<Uri>>;

/// How agents' phones authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth {
    /// Offered in this order (`sip.digest_algorithms`).
    pub algorithms: Vec<Algorithm>,
    pub bans: BanPolicy,
    /// Proxies whose record of the client's address (the Via below theirs) is believed, for
    /// the guard and the "another device" check (`sip.trusted_proxies`; empty: nobody).
    pub trusted_proxies: Acl,
}

impl Default for AgentAuth {
    fn default() -> Self {
        AgentAuth {
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            bans: BanPolicy::default(),
            trusted_proxies: Acl::default(),
        }
    }
}

pub struct AgentPhones {
    registrar: Registrar,
    /// Checks the digest of feature-code INVITEs (`*1`, `*2`, `*3`).
    codes_auth: DigestServer,
    unknown_user_secret: String,
    guard: AuthGuard,
    trusted_proxies: Acl,
    auth_stats: watch::Sender<GuardStats>,
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
        auth: AgentAuth,
        acd: AcdHandle,
    ) -> (Self, watch::Receiver<Contacts>) {
        // Nonces are signed with a per-process key: they only need to outlive a REGISTER
        // round trip on this node.
        let key: [u8; 32] = rand::random();
        let (contacts, rx) = watch::channel(Contacts::new());
        (
            AgentPhones {
                registrar: Registrar::new(realm, &key, auth.algorithms.clone()),
                codes_auth: DigestServer::new(realm, key.to_vec()).with_algorithms(auth.algorithms),
                unknown_user_secret: unknown_user_secret(),
                guard: AuthGuard::new(auth.bans),
                trusted_proxies: auth.trusted_proxies,
                auth_stats: watch::Sender::new(GuardStats::default()),
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

    /// The guard's counters, published after each authentication (for metrics).
    pub fn auth_stats(&self) -> watch::Receiver<GuardStats> {
        self.auth_stats.subscribe()
    }

    /// A banned source or user: 403 before anything else is read.
    fn refused_while_banned(
        &mut self,
        now: Instant,
        req: &Request,
        source: IpAddr,
    ) -> Option<Response> {
        let user = claimed_user(req);
        if !self.guard.refuses(now, source, user.as_deref()) {
            return None;
        }
        self.auth_stats.send_replace(self.guard.stats(now));
        Some(Response::for_request(req, 403).with_to_tag(&sip::endpoint::new_tag()))
    }

    /// Counts what a digest check came to; a failure that starts a ban turns the answer
    /// into a 403.
    fn judge(
        &mut self,
        now: Instant,
        req: &Request,
        source: IpAddr,
        outcome: &AuthOutcome,
        response: Response,
    ) -> Response {
        let response = match outcome {
            AuthOutcome::Challenged => return response,
            AuthOutcome::Passed { user } => {
                self.guard.success(now, source, user);
                response
            }
            AuthOutcome::Failed { user } => {
                let verdict = self.guard.failure(now, source, user);
                crate::security::log_auth_failure(source, user, req.method.as_str(), verdict);
                match verdict {
                    Verdict::Counted => response,
                    Verdict::Banned { .. } => Response::for_request(req, 403),
                }
            }
        };
        self.auth_stats.send_replace(self.guard.stats(now));
        response
    }

    /// The address `req` stands for: the client behind a trusted proxy, else its source.
    fn client(&self, req: &Request, from: Peer) -> IpAddr {
        sip::proxy::client_address(req, from.addr.ip(), &self.trusted_proxies)
    }

    pub fn handle(&mut self, now: Instant, req: &Request, from: Peer) -> Response {
        let client = self.client(req, from);
        if let Some(r) = self.refused_while_banned(now, req, client) {
            return r;
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let passwords = &self.passwords;
        let acd = &self.acd;
        let registration = self.registrar.handle(
            now,
            unix,
            req,
            Origin { peer: from, client },
            |u| passwords.get(u).cloned(),
            |u| acd.on_call(u),
        );
        if registration.response.status == 403 {
            if let AuthOutcome::Passed { user } = &registration.auth {
                tracing::warn!(target: crate::security::TARGET, agent = %user, source = %client, "REGISTER refused: the agent is on a call from another device");
            }
        }
        let response = self.judge(now, req, client, &registration.auth, registration.response);
        let change = registration.change;
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
    pub fn feature_code(&mut self, now: Instant, req: &Request, from: Peer) -> Response {
        let client = self.client(req, from);
        if let Some(r) = self.refused_while_banned(now, req, client) {
            return r;
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let passwords = &self.passwords;
        let user = match verify_digest(
            &mut self.codes_auth,
            &self.unknown_user_secret,
            unix,
            req,
            |u| passwords.get(u).cloned(),
        ) {
            Ok(user) => user,
            Err((response, outcome)) => {
                let r = self.judge(now, req, client, &outcome, response);
                return r.with_to_tag(&sip::endpoint::new_tag());
            }
        };
        self.judge(
            now,
            req,
            client,
            &AuthOutcome::Passed { user: user.clone() },
            Response::new(200),
        );
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

/// The user a request claims: its digest username, else the user part of To.
fn claimed_user(req: &Request) -> Option<String> {
    req.headers
        .get_all(&HeaderName::Authorization)
        .filter_map(|v| parse_credentials(v).ok())
        .flatten()
        .map(|c| c.username)
        .next()
        .or_else(|| {
            req.headers
                .to_addr()
                .ok()
                .and_then(|t| t.uri.user().map(str::to_string))
        })
}
