//! Steps the caller hears or answers: `play`, `say`, `menu`, `collect`, `record`.

use super::{is_dtmf, Reader, SEC};
use crate::decode::did_you_mean;
use crate::diagnostic::{Code, Pos};
use crate::flow::{Collect, Menu, StepIdx, StepKind};
use crate::say::{self, SayAs};
use crate::yaml::Node;

/// More options than a caller can hold in mind is a design mistake (and bounds the checks).
const MAX_OPTIONS: usize = 64;

impl<'a> Reader<'_, 'a> {
    pub(super) fn play(&mut self, node: &Node) -> Option<StepKind> {
        let prompts = self.prompts(node, "prompt");
        if prompts.is_empty() && (node.is_null() || node.as_seq().is_some_and(<[Node]>::is_empty)) {
            self.c
                .sink
                .error(
                    Code::BadValue,
                    node.pos(),
                    "a play step needs at least one prompt",
                )
                .hint("name a prompt: `play: welcome`, or a list: `play: [welcome, menu_intro]`");
        }
        let barge_in = self.flag("barge_in", false);
        let next = self.target("next");
        Some(StepKind::Play {
            prompts,
            barge_in,
            next,
        })
    }

    pub(super) fn say(&mut self, node: &Node) -> Option<StepKind> {
        let value = self.c.expr(node, self.cx);
        let how = match self.f.get("as") {
            Some(n) => {
                let word = n.as_str().unwrap_or("");
                let found = SayAs::ALL
                    .iter()
                    .find(|(name, _)| *name == word)
                    .map(|(_, h)| *h);
                if found.is_none() {
                    let names: Vec<&str> = SayAs::ALL.iter().map(|(n, _)| *n).collect();
                    self.c
                        .sink
                        .error(
                            Code::BadValue,
                            n.pos(),
                            format!("cannot say values as `{word}`"),
                        )
                        .hint(match did_you_mean(word, names.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!("use one of: {}", names.join(", ")),
                        });
                }
                found
            }
            None => {
                self.missing(
                    "as",
                    "say how to read the value: `as: digits`, `number`, `date` or `time`",
                );
                None
            }
        };
        if let Some(how) = how {
            self.check_say(node.pos(), how);
        }
        let before = match self.f.get("before") {
            Some(n) => self.prompts(n, "prompt"),
            None => Vec::new(),
        };
        let after = match self.f.get("after") {
            Some(n) => self.prompts(n, "prompt"),
            None => Vec::new(),
        };
        let barge_in = self.flag("barge_in", false);
        let next = self.target("next");
        Some(StepKind::Say {
            value: value?,
            how: how?,
            before,
            after,
            barge_in,
            next,
        })
    }

    pub(super) fn check_say(&mut self, pos: Pos, how: SayAs) {
        for language in self.c.languages.clone() {
            if !say::supported(&language) {
                self.c
                    .sink
                    .error(
                        Code::UnsupportedSay,
                        pos,
                        format!("`say` cannot speak language `{language}`"),
                    )
                    .hint(format!(
                        "`say` speaks {}; use recorded prompts in other languages",
                        say::LANGUAGES.join(" and ")
                    ));
                continue;
            }
            let missing: Vec<String> = say::fragments_needed(&language, how)
                .into_iter()
                .filter(|f| !self.c.ctx.has_prompt(&language, f))
                .collect();
            if let Some(first) = missing.first() {
                self.c
                    .sink
                    .error(
                        Code::UnknownPrompt,
                        pos,
                        format!(
                            "`say` needs fragment `{first}` in `{language}` ({} fragment(s) missing)",
                            missing.len()
                        ),
                    )
                    .hint("record the fragments listed in samples/prompts/fragments.txt");
            }
        }
    }

    pub(super) fn menu(&mut self, node: &Node) -> Option<StepKind> {
        let prompts = self.prompts(node, "prompt");
        let mut options = Vec::new();
        match self.f.get("options") {
            Some(opts) => match opts.as_map() {
                Some(entries) => {
                    crate::decode::report_duplicate_keys(entries, "`options`", &mut self.c.sink);
                    if entries.len() > MAX_OPTIONS {
                        self.c
                            .sink
                            .error(
                                Code::BadValue,
                                opts.pos(),
                                format!("a menu offers at most {MAX_OPTIONS} options"),
                            )
                            .hint("split it into a menu and sub-menus");
                    }
                    for (key, target) in entries.iter().take(MAX_OPTIONS) {
                        let digits = key.as_str().unwrap_or("");
                        if digits.is_empty() || !digits.chars().all(is_dtmf) || digits.len() > 8 {
                            self.c
                                .sink
                                .error(Code::BadValue, key.pos(), format!("`{digits}` is not a key the caller can press"))
                                .hint("option keys are DTMF digits: 0-9, * and #, quoted: `\"1\": next_step`");
                            continue;
                        }
                        if let Some((other, _)) =
                            options.iter().find(|(o, _): &&(String, StepIdx)| {
                                o.starts_with(digits) || digits.starts_with(o.as_str())
                            })
                        {
                            self.c
                                .sink
                                .error(Code::BadValue, key.pos(), format!("option `{digits}` and option `{other}` start alike"))
                                .hint("the menu would stop at the shorter one; use distinct first digits");
                            continue;
                        }
                        if let Some(t) = self.c.step_ref(target, self.cx) {
                            options.push((digits.to_owned(), t));
                        }
                    }
                }
                None => {
                    self.c
                        .sink
                        .error(
                            Code::WrongType,
                            opts.pos(),
                            "`options` must map keys to steps",
                        )
                        .hint("for example `options: { \"1\": sales, \"2\": support }`");
                }
            },
            None => self.missing(
                "options",
                "map keys to steps: `options: { \"1\": sales, \"2\": support }`",
            ),
        }
        let max_digits = options
            .iter()
            .map(|(k, _)| u32::try_from(k.len()).unwrap_or(1))
            .max()
            .unwrap_or(1);
        let timeout = self.time("timeout", 5 * SEC, SEC, 60 * SEC);
        let inter_digit_timeout = self.time("inter_digit_timeout", 3 * SEC, SEC, 30 * SEC);
        let attempts = self.number("attempts", 3, 1..=10);
        let invalid = self.opt_target("invalid");
        let no_input = self.opt_target("no_input");
        let exhausted = self.target("exhausted");
        let barge_in = self.flag("barge_in", true);
        Some(StepKind::Menu(Menu {
            prompts,
            options,
            max_digits,
            timeout,
            inter_digit_timeout,
            attempts,
            invalid,
            no_input,
            exhausted,
            barge_in,
        }))
    }

    pub(super) fn collect(&mut self, node: &Node) -> Option<StepKind> {
        let prompts = self.prompts(node, "prompt");
        let into = self.variable("into");
        if self.f.key("into").is_none() {
            self.missing(
                "into",
                "name the variable that receives the digits: `into: ticket_number`",
            );
        }
        let min_digits = self.number("min_digits", 1, 1..=64);
        let max_digits = self.number("max_digits", 16, 1..=64);
        if min_digits > max_digits {
            let pos = self.f.key("min_digits").map_or(self.id.pos, Node::pos);
            self.c
                .sink
                .error(
                    Code::BadValue,
                    pos,
                    format!("`min_digits` ({min_digits}) is more than `max_digits` ({max_digits})"),
                )
                .hint("lower `min_digits` or raise `max_digits`");
        }
        let terminator = self.terminator(Some('#'));
        let timeout = self.time("timeout", 5 * SEC, SEC, 60 * SEC);
        let inter_digit_timeout = self.time("inter_digit_timeout", 3 * SEC, SEC, 30 * SEC);
        let validate = self.expr_field("validate");
        let attempts = self.number("attempts", 3, 1..=10);
        let invalid = self.opt_target("invalid");
        let no_input = self.opt_target("no_input");
        let exhausted = self.target("exhausted");
        let next = self.target("next");
        let barge_in = self.flag("barge_in", true);
        Some(StepKind::Collect(Collect {
            prompts,
            into: into?,
            min_digits,
            max_digits,
            terminator,
            timeout,
            inter_digit_timeout,
            validate,
            attempts,
            invalid,
            no_input,
            exhausted,
            next,
            barge_in,
        }))
    }

    pub(super) fn record(&mut self, node: &Node) -> Option<StepKind> {
        let prompts = self.prompts(node, "prompt");
        let beep = self.flag("beep", true);
        let max_length = self.time("max_length", 120 * SEC, SEC, 3600 * SEC);
        let terminator = self.terminator(Some('#'));
        let into = self.variable("into");
        let next = self.target("next");
        Some(StepKind::Record {
            prompts,
            beep,
            max_length,
            terminator,
            into,
            next,
        })
    }
}
