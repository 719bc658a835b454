//! A call in an ACD queue: music while waiting, then the agent leg the engine places when
//! the ACD picks an agent (see `leg`), bridged on answer.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::leg::{LegPurpose, LegTarget};
use super::{Call, Next, Waiting};
use crate::acd::{self, AgentId, CallId, QueueId, RingFailure};
use crate::config::REGISTERED;
use crate::storage::{EndReason, QueueOutcome as StoredOutcome};
use ivr_scripts::{Input, QueueOutcome, SayAs};

pub(in crate::call) struct Queued {
    pub actions: mpsc::UnboundedReceiver<acd::Action>,
    pub moh: Option<u64>,
}

/// What the call record keeps of the queue.
#[derive(Default)]
pub(in crate::call) struct QueueRecord {
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub agent_answered_at: Option<DateTime<Utc>>,
    pub outcome: Option<crate::storage::QueueOutcome>,
}

impl Call {
    fn call_key(&self) -> CallId {
        CallId::from(self.id.as_str())
    }

    pub(super) fn enter_queue(
        &mut self,
        queue: String,
        priority: ivr_scripts::Priority,
        max_wait: Option<std::time::Duration>,
    ) -> Next {
        let call = self.call_key();
        let input = acd::Input::CallArrived {
            call: call.clone(),
            queue: QueueId::from(queue.as_str()),
            priority,
            max_wait,
        };
        let actions = self.ctx.acd.join(call, input);
        tracing::info!(call = %self.id, %queue, "call queued");
        self.queue_record.queue = Some(queue);
        self.queue_record.queued_at = Some(Utc::now());
        self.waiting = Waiting::Queue(Box::new(Queued { actions, moh: None }));
        Next::Wait
    }

    /// The call's current language (the flow's `language` steps included).
    pub(super) fn language(&self) -> String {
        self.interp
            .as_ref()
            .map(|i| i.state().language().to_string())
            .unwrap_or_else(|| self.ctx.config.default_language.clone())
    }

    /// Speaks the caller's position (and the expected wait) over the music, which resumes
    /// after: "You are caller number 3. Your expected wait is about 4 minutes."
    fn announce(&mut self, position: u32, expected_wait: Option<std::time::Duration>) {
        if self.leg.as_ref().is_some_and(|l| l.dialog.is_some()) {
            return;
        }
        let lang = self.language();
        let mut names = vec!["queue_position".to_string()];
        let say = |n: u64| {
            ivr_scripts::say::compose(&lang, SayAs::Number, &serde_json::json!(n))
                .unwrap_or_default()
        };
        names.extend(say(u64::from(position)));
        match expected_wait.map(|w| w.as_secs().div_ceil(60)) {
            Some(0 | 1) => names.push("queue_wait_under_minute".into()),
            Some(minutes) => {
                names.push("queue_wait".into());
                names.extend(say(minutes));
                names.push("queue_minutes".into());
            }
            None => {}
        }
        if self.callback_config().is_some() {
            names.push("queue_callback_offer".into());
        }
        let prompts: Vec<_> = names
            .iter()
            .filter_map(|n| {
                let p = self.ctx.prompts.get(&lang, n);
                if p.is_none() {
                    tracing::debug!(call = %self.id, prompt = %n, %lang, "announcement prompt missing");
                }
                p
            })
            .collect();
        if prompts.len() < names.len() {
            // A partial sentence is worse than none: keep the music.
            return;
        }
        let Some((media, _)) = self.media.as_ref() else {
            return;
        };
        tracing::info!(call = %self.id, position, ?expected_wait, "position announced");
        let _ = media.stop_playback();
        let id = media.play(prompts).ok();
        if let Waiting::Queue(q) = &mut self.waiting {
            q.moh = id;
        }
    }

    fn music(&mut self) {
        let lang = self.language();
        let prompt = self.ctx.prompts.get(&lang, "music_on_hold");
        let id = prompt.and_then(|p| self.media.as_ref().and_then(|(m, _)| m.play(vec![p]).ok()));
        if let Waiting::Queue(q) = &mut self.waiting {
            q.moh = id;
        }
    }

    /// The end of a music round: play it again while waiting.
    pub(super) fn music_finished(&mut self, id: u64) -> bool {
        match &self.waiting {
            Waiting::Queue(q)
                if q.moh == Some(id)
                    && !self.bridged
                    && self.callback.is_none()
                    && self.leg.as_ref().and_then(|l| l.dialog.as_ref()).is_none() =>
            {
                self.music();
                true
            }
            _ => false,
        }
    }

    pub(super) async fn acd_action(&mut self, action: acd::Action) -> Next {
        match action {
            // A callback entry waits without media.
            acd::Action::Hold { .. } | acd::Action::Moved { .. } | acd::Action::Announce { .. }
                if self.callback.is_some() =>
            {
                Next::Wait
            }
            acd::Action::Hold { .. } | acd::Action::Moved { .. } => {
                if let Waiting::Queue(q) = &self.waiting {
                    if q.moh.is_none() {
                        self.music();
                    }
                }
                Next::Wait
            }
            acd::Action::Announce {
                position,
                expected_wait,
                ..
            } => {
                self.announce(position, expected_wait);
                Next::Wait
            }
            acd::Action::RingAgent { agent, contact, .. } => {
                if let Err(reason) = self.ring_agent(agent.clone(), &contact).await {
                    tracing::warn!(call = %self.id, %agent, %reason, "cannot ring the agent");
                    self.ctx.acd.input(acd::Input::RingFailed {
                        call: self.call_key(),
                        agent,
                        failure: RingFailure::Failed(reason),
                    });
                }
                Next::Wait
            }
            acd::Action::CancelRing { agent, .. } => {
                self.cancel_agent_leg(&agent);
                Next::Wait
            }
            acd::Action::Bridge { agent, .. } => self.bridge(agent).await,
            acd::Action::Overflow { reason, .. } => {
                tracing::info!(call = %self.id, ?reason, "queue overflow");
                self.queue_record.outcome = Some(StoredOutcome::Overflow);
                self.ctx.acd.leave(self.call_key());
                self.stop_playback();
                Next::Resume(Input::QueueResult(QueueOutcome::Overflow))
            }
            acd::Action::CallbackAccepted { .. } => self.callback_accepted(),
            acd::Action::CallbackCall { agent, contact, .. } => {
                if let Err(reason) = self.ring_agent(agent.clone(), &contact).await {
                    tracing::warn!(call = %self.id, %agent, %reason, "cannot ring the agent");
                    self.ctx.acd.input(acd::Input::RingFailed {
                        call: self.call_key(),
                        agent,
                        failure: RingFailure::Failed(reason),
                    });
                }
                Next::Wait
            }
        }
    }

    /// Where to ring an agent: its registered phone, its SIP URI, or its extension on the
    /// PBX (a bare number: through the first trunk, with its credentials).
    fn agent_target(&self, agent: &AgentId, contact: &str) -> Result<LegTarget, String> {
        let target = if contact == REGISTERED {
            let uri = self
                .ctx
                .agent_contacts
                .borrow()
                .get(agent.as_str())
                .and_then(|c| c.first().cloned())
                .ok_or("the agent's phone is not registered")?;
            self.direct_target(uri)
        } else {
            self.sip_uri_target(contact)
                .unwrap_or_else(|| self.via_pbx(contact))
        };
        target.map_err(|e| format!("agent contact: {e}"))
    }

    async fn ring_agent(&mut self, agent: AgentId, contact: &str) -> Result<(), String> {
        let target = self.agent_target(&agent, contact)?;
        tracing::info!(call = %self.id, %agent, "ringing the agent");
        self.place_leg(target, LegPurpose::Agent(agent)).await
    }

    /// Connects caller and agent.
    async fn bridge(&mut self, agent: AgentId) -> Next {
        if let Waiting::Queue(q) = &mut self.waiting {
            q.moh = None;
        }
        if self.bridge_leg().await {
            // A callback already says how it was answered.
            self.queue_record
                .outcome
                .get_or_insert(StoredOutcome::Answered);
            tracing::info!(call = %self.id, %agent, "caller and agent bridged");
            return Next::Resume(Input::QueueResult(QueueOutcome::Answered));
        }
        // The agent answered but audio cannot flow: free the agent, end the queue wait.
        tracing::error!(call = %self.id, %agent, "the media bridge to the agent failed");
        self.drop_leg(false);
        let call = self.call_key();
        self.ctx
            .acd
            .input(acd::Input::CallEnded { call: call.clone() });
        self.ctx.acd.leave(call);
        self.waiting = Waiting::Nothing;
        self.queue_record.outcome = Some(StoredOutcome::Failed);
        Next::Resume(Input::QueueResult(QueueOutcome::Failed(
            "the media bridge to the agent failed".into(),
        )))
    }

    /// The caller's side is over: tell the ACD and release the agent leg.
    pub(super) fn leave_queue(&mut self, reason: EndReason) {
        if !matches!(self.waiting, Waiting::Queue(_)) {
            return;
        }
        if self.queue_record.outcome.is_none() {
            self.queue_record.outcome = Some(match reason {
                EndReason::CallerHangup | EndReason::Cancelled => StoredOutcome::Abandoned,
                _ => StoredOutcome::Failed,
            });
        }
        let call = self.call_key();
        // Answered by an agent (whoever hung up first) or abandoned while waiting.
        let input = if self.queue_record.agent_answered_at.is_some() {
            acd::Input::CallEnded { call: call.clone() }
        } else {
            acd::Input::CallAbandoned { call: call.clone() }
        };
        self.ctx.acd.input(input);
        self.drop_leg(false);
        self.ctx.acd.leave(call);
    }
}
