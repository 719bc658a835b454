//! Steps that reach outside the engine: `lookup` and `action` (connectors), `queue`, `transfer`.

use std::time::Duration;

use super::{Reader, SEC};
use crate::compile::shortlist;
use crate::context::Catalog;
use crate::decode::{did_you_mean, duration, text};
use crate::diagnostic::Code;
use crate::flow::{Call, Priority, StepKind, TransferMode};
use crate::yaml::Node;

impl<'a> Reader<'_, 'a> {
    pub(super) fn call(&mut self, node: &Node, is_action: bool) -> Option<StepKind> {
        let name = text(
            node,
            if is_action { "action" } else { "data source" },
            &mut self.c.sink,
        )?;
        let (catalog, code, what): (&Catalog, Code, &str) = if is_action {
            (&self.c.ctx.actions, Code::UnknownAction, "action")
        } else {
            (
                &self.c.ctx.data_sources,
                Code::UnknownDataSource,
                "data source",
            )
        };
        if !catalog.contains(&name.value) {
            let close = did_you_mean(&name.value, catalog.names()).map(str::to_owned);
            let known: Vec<String> = catalog.names().map(str::to_owned).collect();
            self.c
                .sink
                .error(code, name.pos, format!("unknown {what} `{}`", name.value))
                .hint(match close {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if known.is_empty() => format!("no {what} is configured in the engine"),
                    None => format!("configured: {}", shortlist(&known)),
                });
        }
        let params = match self.f.get("params") {
            Some(n) => self.expr_map(n, "`params`"),
            None => Vec::new(),
        };
        let default_timeout = if is_action { 5 * SEC } else { 3 * SEC };
        let timeout = self.time(
            "timeout",
            default_timeout,
            Duration::from_millis(100),
            60 * SEC,
        );
        let into = self.variable("into");
        let ok = self.target("ok");
        let not_found = if is_action {
            self.opt_target("not_found").unwrap_or(ok)
        } else {
            self.target("not_found")
        };
        let call = Call {
            name: name.value,
            params: params.into_iter().map(|(k, e)| (k.value, e)).collect(),
            timeout,
            into,
            ok,
            not_found,
        };
        Some(if is_action {
            StepKind::Action(call)
        } else {
            StepKind::Lookup(call)
        })
    }

    pub(super) fn queue(&mut self, node: &Node) -> Option<StepKind> {
        let queue = text(node, "queue", &mut self.c.sink)?;
        if !self.c.ctx.queues.contains(&queue.value) {
            let close = did_you_mean(&queue.value, self.c.ctx.queues.names()).map(str::to_owned);
            let known: Vec<String> = self.c.ctx.queues.names().map(str::to_owned).collect();
            self.c
                .sink
                .error(
                    Code::UnknownQueue,
                    queue.pos,
                    format!("unknown queue `{}`", queue.value),
                )
                .hint(match close {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if known.is_empty() => "no queue is configured in the engine".into(),
                    None => format!("configured queues: {}", shortlist(&known)),
                });
        }
        let priority = match self.f.get("priority") {
            Some(n) => {
                let word = n.as_str().unwrap_or("");
                match Priority::ALL.iter().find(|(name, _)| *name == word) {
                    Some((_, p)) => *p,
                    None => {
                        self.c
                            .sink
                            .error(
                                Code::BadValue,
                                n.pos(),
                                format!("unknown priority `{word}`"),
                            )
                            .hint("use low, normal, high or urgent");
                        Priority::Normal
                    }
                }
            }
            None => Priority::Normal,
        };
        let max_wait = self
            .f
            .get("max_wait")
            .and_then(|n| duration(n, "`max_wait`", 5 * SEC, 24 * 3600 * SEC, &mut self.c.sink));
        // The values an agent may see: only those named here reach the desk.
        let desk = match self.f.get("desk") {
            Some(n) => self.expr_map(n, "`desk`"),
            None => Vec::new(),
        };
        let overflow = self.target("overflow");
        Some(StepKind::Queue {
            queue: queue.value,
            priority,
            max_wait,
            desk: desk.into_iter().map(|(k, e)| (k.value, e)).collect(),
            overflow,
        })
    }

    pub(super) fn transfer(&mut self, node: &Node) -> Option<StepKind> {
        let target = self.c.expr(node, self.cx);
        let mode = match self.f.get("mode") {
            Some(n) => match n.as_str() {
                Some("blind") => TransferMode::Blind,
                Some("bridged") => TransferMode::Bridged,
                _ => {
                    self.c
                        .sink
                        .error(Code::BadValue, n.pos(), "`mode` must be `blind` or `bridged`")
                        .hint("`blind` hands the call to the PBX with REFER; `bridged` keeps the engine in the call");
                    TransferMode::Blind
                }
            },
            None => TransferMode::Blind,
        };
        let timeout = self.time("timeout", 30 * SEC, 5 * SEC, 300 * SEC);
        let failed = self.target("failed");
        Some(StepKind::Transfer {
            target: target?,
            mode,
            timeout,
            failed,
        })
    }
}
