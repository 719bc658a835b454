//! Agent phones that register with the engine: the registrar (sans-IO, `sip::registrar`)
//! plus what registration means to the ACD. In the demo configuration an agent becomes
//! ready when its phone registers and is logged out when the binding ends; the bindings
//! are published for call actors, which ring agents at their registered contact.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sip::message::{Request, Response, Uri};
use sip::registrar::{BindingChange, Registrar};
use tokio::sync::watch;

use crate::acd::{AgentId, Input};
use crate::contact_center::AcdHandle;

/// Where each registered agent can be reached now.
pub type Contacts = HashMap<String, Vec<Uri>>;

pub struct AgentPhones {
    registrar: Registrar,
    passwords: BTreeMap<String, String>,
    registered: BTreeSet<String>,
    acd: AcdHandle,
    contacts: watch::Sender<Contacts>,
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
                passwords,
                registered: BTreeSet::new(),
                acd,
                contacts,
            },
            rx,
        )
    }

    pub fn enabled(&self) -> bool {
        !self.passwords.is_empty()
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
        match change {
            BindingChange::Registered { user } if self.registered.insert(user.clone()) => {
                tracing::info!(agent = %user, "agent phone registered: agent ready");
                self.acd.input(Input::AgentLogin {
                    agent: AgentId::from(user.as_str()),
                });
                self.acd.input(Input::AgentReady {
                    agent: AgentId::from(user.as_str()),
                });
            }
            BindingChange::Unregistered { user } => self.gone(&user),
            _ => {}
        }
        self.publish(now);
        response
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
