//! The playback queue: which prompt frame goes out in the next 20 ms slot.
//!
//! Each `Play` request is a list of prompts played back to back under one id; requests queue
//! behind each other with no gap. A request is finished when its last frame has been handed
//! out, and reported in the same slot, so the call actor can start its next step (a menu
//! timeout, another prompt) without losing 20 ms.

use std::collections::VecDeque;

use crate::media::codec::{Codec, Frame};
use crate::media::prompt::Prompt;

#[derive(Debug)]
struct Request {
    id: u64,
    prompts: Vec<Prompt>,
    prompt: usize,
    frame: usize,
}

impl Request {
    /// The next frame of this request, advancing; `None` when all are out.
    fn next_frame(&mut self, codec: Codec) -> Option<Frame> {
        while let Some(prompt) = self.prompts.get(self.prompt) {
            if let Some(frame) = prompt.frames(codec).get(self.frame) {
                self.frame += 1;
                return Some(*frame);
            }
            self.prompt += 1;
            self.frame = 0;
        }
        None
    }

    fn is_exhausted(&self) -> bool {
        let current = self
            .prompts
            .get(self.prompt)
            .is_some_and(|p| self.frame < p.frame_count());
        !current
            && self
                .prompts
                .iter()
                .skip(self.prompt + 1)
                .all(|p| p.frame_count() == 0)
    }
}

/// Queued play requests, front first.
#[derive(Debug, Default)]
pub struct Playback {
    queue: VecDeque<Request>,
}

impl Playback {
    /// Appends a request.
    pub fn enqueue(&mut self, id: u64, prompts: Vec<Prompt>) {
        self.queue.push_back(Request {
            id,
            prompts,
            prompt: 0,
            frame: 0,
        });
    }

    /// Drops every request; returns their ids, front first.
    pub fn stop(&mut self) -> Vec<u64> {
        self.queue.drain(..).map(|r| r.id).collect()
    }

    /// Whether anything is queued.
    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The frame for the next slot, if any; `finished` receives the id of every request
    /// whose last frame this was (or that had no frame at all).
    pub fn next_frame(&mut self, codec: Codec, mut finished: impl FnMut(u64)) -> Option<Frame> {
        while let Some(request) = self.queue.front_mut() {
            let frame = request.next_frame(codec);
            if frame.is_none() || request.is_exhausted() {
                finished(request.id);
                self.queue.pop_front();
            }
            if frame.is_some() {
                return frame;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(frames: usize, level: i16) -> Prompt {
        Prompt::from_pcm("p", vec![level; frames * 160])
    }

    #[test]
    fn requests_play_back_to_back_and_finish_with_their_last_frame() {
        let mut playback = Playback::default();
        playback.enqueue(
            1,
            vec![
                prompt(2, 1000),
                Prompt::from_pcm("empty", vec![]),
                prompt(1, 2000),
            ],
        );
        playback.enqueue(2, vec![]);
        playback.enqueue(3, vec![prompt(1, 3000)]);
        let mut finished = Vec::new();
        let mut frames = Vec::new();
        while let Some(frame) =
            playback.next_frame(Codec::Pcmu, |id| finished.push((id, frames.len())))
        {
            frames.push(frame[0]);
        }
        let code = |v| crate::media::g711::linear_to_ulaw(v);
        assert_eq!(frames, vec![code(1000), code(1000), code(2000), code(3000)]);
        // Request 1 finishes with its third frame, 2 (empty) right after, 3 with the fourth.
        assert_eq!(finished, vec![(1, 2), (2, 3), (3, 3)]);
        assert!(!playback.is_playing());
    }

    #[test]
    fn stop_returns_every_queued_id() {
        let mut playback = Playback::default();
        playback.enqueue(7, vec![prompt(3, 0)]);
        playback.enqueue(8, vec![prompt(3, 0)]);
        assert!(playback.next_frame(Codec::Pcma, |_| {}).is_some());
        assert_eq!(playback.stop(), vec![7, 8]);
        assert!(playback.next_frame(Codec::Pcma, |_| {}).is_none());
    }
}
