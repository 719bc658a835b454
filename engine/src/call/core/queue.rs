//! A call in an ACD queue: the caller hears music (and its position) while the ACD looks for
//! an agent; the engine rings the agents the ACD names (several with ring-all), reports how
//! each leg went, and bridges the caller to the one that answered when the ACD says
//! `Bridge`. Overflow sends the call back to its flow. Callbacks are in `callback`.

use std::time::{Duration, Instant};

use ivr_scripts::{Input, Priority, QueueOutcome, SayAs};

use super::io::{AcdOut, MediaOut, Output, PlayId, StreamId};
use super::leg::{Leg, LegEvent};
use super::phase::{LegPurpose, Phase, Queued, Wait};
use super::CallCore;
use crate::acd::{self, AgentId, CallId, QueueId, RingFailure};
use crate::storage::{EndReason, QueueOutcome as StoredOutcome};

impl CallCore {
    pub(super) fn call_key(&self) -> CallId {
        CallId::from(self.facts.id.as_str())
    }

    pub(super) fn acd(&mut self, input: acd::Input) {
        self.push(Output::Acd(AcdOut::Input(input)));
    }

    pub(super) fn enter_queue(
        &mut self,
        now: Instant,
        queue: String,
        priority: Priority,
        max_wait: Option<Duration>,
    ) {
        let input = acd::Input::CallArrived {
            call: self.call_key(),
            queue: QueueId::from(queue.as_str()),
            priority,
            max_wait,
        };
        self.push(Output::Acd(AcdOut::Join(input)));
        tracing::info!(call = %self.facts.id, %queue, "call queued");
        self.queue.queue = Some(queue.clone());
        self.queue.queued_at = Some(self.stamp(now));
        self.phase = Phase::Queued(Queued {
            queue: QueueId::from(queue.as_str()),
            priority,
            position: None,
            agents: Vec::new(),
            wait: Wait::Listening { music: None },
        });
    }

    pub(super) fn acd_action(&mut self, now: Instant, action: acd::Action) {
        let Phase::Queued(q) = &self.phase else {
            tracing::debug!(call = %self.facts.id, ?action, "ACD action for a call out of its queue");
            return;
        };
        let listening = matches!(q.wait, Wait::Listening { .. });
        let talking = q.agents.iter().any(|s| self.is_answered_leg(*s));
        match action {
            acd::Action::Hold { .. } | acd::Action::Moved { .. } => {
                let silent = matches!(q.wait, Wait::Listening { music: None });
                if let (acd::Action::Moved { to, .. }, Phase::Queued(q)) =
                    (&action, &mut self.phase)
                {
                    q.queue = to.clone();
                    q.position = None;
                }
                if silent {
                    self.music();
                }
            }
            acd::Action::Announce {
                position,
                expected_wait,
                ..
            } => {
                if let Phase::Queued(q) = &mut self.phase {
                    q.position = Some(position);
                }
                if listening && !talking {
                    self.announce(position, expected_wait);
                }
            }
            acd::Action::RingAgent { agent, contact, .. }
            | acd::Action::CallbackCall { agent, contact, .. } => self.ring_agent(agent, &contact),
            acd::Action::CancelRing { agent, .. } => self.cancel_agent_leg(now, &agent),
            acd::Action::Bridge { agent, .. } => self.bridge_agent(now, agent),
            acd::Action::Overflow { reason, target, .. } => {
                tracing::info!(call = %self.facts.id, ?reason, "queue overflow");
                self.queue.outcome = Some(StoredOutcome::Overflow);
                self.drop_queue(now);
                self.stop_playback();
                match target {
                    acd::ExitTarget::Message { prompt } => self.farewell(now, &prompt),
                    // A named step is not reachable from outside the flow: the queue
                    // step's overflow branch is.
                    acd::ExitTarget::Flow { .. } => {
                        self.resume(now, Input::QueueResult(QueueOutcome::Overflow))
                    }
                }
            }
            acd::Action::CallbackAccepted { .. } => self.callback_accepted(now),
        }
    }

    /// A queue's exit message: the prompt, then the engine hangs up.
    fn farewell(&mut self, now: Instant, prompt: &str) {
        let found = self.env.prompts.get(&self.language(), prompt);
        match found.and_then(|p| self.play(vec![p])) {
            Some(play) => self.phase = Phase::Flow(super::Step::Farewell { play }),
            None => {
                tracing::warn!(call = %self.facts.id, %prompt, "exit message missing; hanging up");
                self.end(now, EndReason::EngineHangup);
            }
        }
    }

    /// Takes the call out of the ACD without a word to it (it decided): legs hung up.
    fn drop_queue(&mut self, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Flow(super::Step::Running));
        if let Phase::Queued(q) = phase {
            self.hang_up_queue(now, q);
        }
        self.push(Output::Acd(AcdOut::Leave));
    }

    fn hang_up_queue(&mut self, now: Instant, q: Queued) {
        for leg in q.agents {
            self.hang_up(now, leg);
        }
        if let Wait::Dialing { customer, .. } = q.wait {
            self.hang_up(now, customer);
        }
    }

    /// The caller's side is over: tell the ACD and release the legs.
    pub(super) fn leave_queue(&mut self, now: Instant, q: Queued, reason: EndReason) {
        self.queue.outcome.get_or_insert(match reason {
            EndReason::CallerHangup | EndReason::Cancelled => StoredOutcome::Abandoned,
            _ => StoredOutcome::Failed,
        });
        let call = self.call_key();
        // Answered by an agent (whoever hung up first) or abandoned while waiting.
        let input = if self.queue.agent_answered_at.is_some() {
            acd::Input::CallEnded { call }
        } else {
            acd::Input::CallAbandoned { call }
        };
        self.acd(input);
        self.hang_up_queue(now, q);
        self.push(Output::Acd(AcdOut::Leave));
    }

    fn music(&mut self) {
        let prompt = self.env.prompts.get(&self.language(), "music_on_hold");
        let id = prompt.and_then(|p| self.play(vec![p]));
        self.set_music(id);
    }

    fn set_music(&mut self, id: Option<PlayId>) {
        if let Phase::Queued(Queued {
            wait: Wait::Listening { music },
            ..
        }) = &mut self.phase
        {
            *music = id;
        }
    }

    /// Speaks the caller's position (and the expected wait) over the music, which resumes
    /// after: "You are caller number 3. Your expected wait is about 4 minutes."
    fn announce(&mut self, position: u32, expected_wait: Option<Duration>) {
        let lang = self.language();
        let say = |n: u64| {
            ivr_scripts::say::compose(&lang, SayAs::Number, &serde_json::json!(n))
                .unwrap_or_default()
        };
        let mut names = vec!["queue_position".to_string()];
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
        let queue = self.queue.queue.clone().unwrap_or_default();
        if self.env.callback(&queue).is_some() {
            names.push("queue_callback_offer".into());
        }
        let prompts: Vec<_> = names
            .iter()
            .filter_map(|n| {
                let p = self.env.prompts.get(&lang, n);
                if p.is_none() {
                    tracing::debug!(call = %self.facts.id, prompt = %n, %lang, "announcement prompt missing");
                }
                p
            })
            .collect();
        if prompts.len() < names.len() {
            // A partial sentence is worse than none: keep the music.
            return;
        }
        tracing::info!(call = %self.facts.id, position, ?expected_wait, "position announced");
        self.stop_playback();
        let id = self.play(prompts);
        self.set_music(id);
    }

    /// The end of a music round or announcement: music again while waiting; the end of the
    /// callback confirmation: the caller is hung up.
    pub(super) fn queue_playback_finished(&mut self, now: Instant, id: PlayId) {
        let Phase::Queued(q) = &self.phase else {
            return;
        };
        let talking = q.agents.iter().any(|s| self.is_answered_leg(*s));
        match q.wait {
            Wait::Listening { music: Some(m) } if m == id && !talking => self.music(),
            Wait::Confirming { prompt } if prompt == id => {
                self.caller_leaves_for_callback(now, true)
            }
            _ => {}
        }
    }

    /// Rings an agent for the ACD (ring-all: beside the legs already ringing).
    fn ring_agent(&mut self, agent: AgentId, contact: &str) {
        match self
            .env
            .agent_target(agent.as_str(), contact, self.caller.peer)
        {
            Ok(target) => {
                tracing::info!(call = %self.facts.id, %agent, "ringing the agent");
                // The agent sees the caller's number (personal data, sent on purpose).
                let from = self.facts.caller.reveal().clone();
                let leg = self.place_leg(target, LegPurpose::Agent(agent), from);
                if let Phase::Queued(q) = &mut self.phase {
                    q.agents.push(leg);
                } else {
                    self.retire(leg);
                }
            }
            Err(e) => {
                tracing::warn!(call = %self.facts.id, %agent, reason = %e, "cannot ring the agent");
                let failure = RingFailure::Failed(format!("agent contact: {e}"));
                self.ring_failed(agent, failure);
            }
        }
    }

    fn ring_failed(&mut self, agent: AgentId, failure: RingFailure) {
        let call = self.call_key();
        self.acd(acd::Input::RingFailed {
            call,
            agent,
            failure,
        });
    }

    /// `CancelRing` for one agent: its leg only (ring-all rings several).
    fn cancel_agent_leg(&mut self, now: Instant, agent: &AgentId) {
        let mine = |s: &StreamId| {
            self.leg(*s)
                .is_some_and(|l| l.agent() == Some(agent) && !l.is_answered())
        };
        let Phase::Queued(q) = &self.phase else {
            return;
        };
        let Some(i) = q.agents.iter().position(mine) else {
            return;
        };
        if let Phase::Queued(q) = &mut self.phase {
            let leg = q.agents.remove(i);
            self.hang_up(now, leg);
        }
    }

    /// The ACD's `Bridge`: the caller and the agent who answered talk.
    fn bridge_agent(&mut self, now: Instant, agent: AgentId) {
        let phase = std::mem::replace(&mut self.phase, Phase::Flow(super::Step::Running));
        let Phase::Queued(mut q) = phase else {
            self.phase = phase;
            return;
        };
        let on_line = matches!(q.wait, Wait::Listening { .. } | Wait::Reconnected);
        let answered = q.agents.iter().position(|s| {
            self.leg(*s)
                .is_some_and(|l| l.agent() == Some(&agent) && l.is_answered())
        });
        let Some(i) = answered.filter(|_| on_line) else {
            // The agent answered but audio cannot flow: free the agent, end the queue wait.
            tracing::error!(call = %self.facts.id, %agent, "the media bridge to the agent failed");
            let call = self.call_key();
            self.acd(acd::Input::CallEnded { call });
            self.hang_up_queue(now, q);
            self.push(Output::Acd(AcdOut::Leave));
            self.queue.outcome = Some(StoredOutcome::Failed);
            let why = "the media bridge to the agent failed".to_string();
            return self.resume(now, Input::QueueResult(QueueOutcome::Failed(why)));
        };
        let peer = q.agents.remove(i);
        self.hang_up_queue(now, q);
        // A callback already says how it was answered.
        self.queue.outcome.get_or_insert(StoredOutcome::Answered);
        tracing::info!(call = %self.facts.id, %agent, "caller and agent bridged");
        self.bridge(now, peer);
        self.resume(now, Input::QueueResult(QueueOutcome::Answered));
    }

    /// What happened on the agent leg of `stream`.
    pub(super) fn agent_leg_event(&mut self, now: Instant, stream: StreamId, event: LegEvent) {
        let Some(agent) = self.leg(stream).and_then(Leg::agent).cloned() else {
            return;
        };
        let Phase::Queued(q) = &self.phase else {
            return;
        };
        let other_answered = q
            .agents
            .iter()
            .any(|s| *s != stream && self.is_answered_leg(*s));
        match event {
            LegEvent::MediaUpdated(_) => {}
            LegEvent::Ringing => {
                let call = self.call_key();
                self.acd(acd::Input::AgentRinging { call, agent });
            }
            // Ring-all: a late answer is hung up (the ACD has moved on).
            LegEvent::Answered(_) if other_answered => self.drop_agent(now, stream, true),
            LegEvent::Answered(None) => {
                // No common codec or no SDP: the leg cannot carry audio. Hang it up rather
                // than bridge the caller to silence.
                tracing::warn!(call = %self.facts.id, %agent, "the agent's phone answered without a usable SDP answer");
                self.drop_agent(now, stream, true);
                let why = "the called party answered without a usable codec".to_string();
                self.ring_failed(agent, RingFailure::Failed(why));
            }
            LegEvent::Answered(Some(n)) => {
                let params = self.env.leg_params(&n);
                self.push(Output::Media(MediaOut::Params { stream, params }));
                self.queue.agent = Some(agent.as_str().to_string());
                self.queue.agent_answered_at = Some(self.stamp(now));
                let call = self.call_key();
                self.acd(acd::Input::AgentAnswered { call, agent });
                // A callback: now that the agent is there, call the caller back.
                if let Phase::Queued(Queued {
                    wait: Wait::Away { attempts },
                    ..
                }) = self.phase
                {
                    self.dial_caller_back(now, attempts);
                }
            }
            LegEvent::Failed { status, why } => {
                self.drop_agent(now, stream, false);
                tracing::info!(call = %self.facts.id, %agent, status, "agent leg failed");
                if other_answered || status == 487 {
                    // Forgotten: the ACD moved on, or this answers our own CANCEL.
                    return;
                }
                let failure = match status {
                    486 | 600 | 603 => RingFailure::Rejected,
                    408 | 480 => RingFailure::NoAnswer,
                    _ => RingFailure::Failed(why),
                };
                self.ring_failed(agent, failure);
            }
            LegEvent::Bye => {
                self.drop_agent(now, stream, false);
                tracing::info!(call = %self.facts.id, "the agent hung up before the bridge");
                self.end(now, EndReason::AgentHangup);
            }
        }
    }

    /// Takes an agent leg out of the queue: hung up (`hang_up`) or over already.
    fn drop_agent(&mut self, now: Instant, stream: StreamId, hang_up: bool) {
        if let Phase::Queued(q) = &mut self.phase {
            q.agents.retain(|s| *s != stream);
        }
        if hang_up {
            self.hang_up(now, stream);
        } else {
            self.retire(stream);
        }
    }
}
