//! Evaluating a step's expressions against the call's variables.
//!
//! Each evaluation builds a fresh rhai scope from the call state: the built-ins as constants,
//! then every variable the current scope knows (unset ones are `()`). Nothing an expression
//! does to that scope survives it; only a `set` step (or a collect, lookup...) changes state,
//! through the interpreter. That keeps expressions side-effect free and the state plain data.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use rhai::{Dynamic, Scope};
use serde_json::{json, Value};

use super::run::scope;
use super::Interpreter;
use crate::diagnostic::Pos;
use crate::expr::{from_dynamic, to_dynamic, Expr};
use crate::hours::weekday_name;

/// `now` as the map expressions see, in the flow's time zone.
pub(super) fn now_value(now: DateTime<Utc>, tz: Tz) -> Value {
    let local = now.with_timezone(&tz);
    json!({
        "date": local.format("%Y-%m-%d").to_string(),
        "time": local.format("%H:%M").to_string(),
        "hour": local.hour(),
        "minute": local.minute(),
        "weekday": weekday_name(local.weekday()),
        "day": local.day(),
        "month": local.month(),
        "year": local.year(),
        "iso": local.to_rfc3339(),
    })
}

/// An evaluation failure, positioned in the file.
pub(super) struct Failure {
    pub(super) pos: Pos,
    pub(super) message: String,
}

impl Interpreter {
    /// Evaluates `expr` in the current scope; `extra` overrides one variable (a collect's
    /// candidate value while its `validate` runs).
    pub(super) fn eval(
        &self,
        expr: &Expr,
        now: DateTime<Utc>,
        extra: Option<(&str, &Value)>,
    ) -> Result<Value, Failure> {
        let state = &self.state;
        let current = scope(&self.flow, state);
        let vars = state.scope_state_ref().vars.reveal();
        let mut rhai_scope = Scope::new();
        rhai_scope.push_constant("caller", state.call.caller.reveal().clone());
        rhai_scope.push_constant("called", state.call.called.reveal().clone());
        rhai_scope.push_constant("call_id", state.call.call_id.clone());
        rhai_scope.push_constant("language", state.language.clone());
        rhai_scope.push_constant_dynamic("now", to_dynamic(&now_value(now, self.flow.timezone)));
        rhai_scope.push_constant_dynamic(
            "last_error",
            state
                .last_error
                .clone()
                .map_or(Dynamic::UNIT, Dynamic::from),
        );
        for name in &current.variables {
            let value = match extra {
                Some((n, v)) if n == name => v,
                _ => vars.get(name).unwrap_or(&Value::Null),
            };
            rhai_scope.push_dynamic(name.as_str(), to_dynamic(value));
        }
        let result = self
            .flow
            .engine
            .eval(expr, &mut rhai_scope)
            .map_err(|f| Failure {
                pos: f.pos,
                message: format!("expression `{}` failed: {}", expr.source, f.message),
            })?;
        from_dynamic(&result).map_err(|message| Failure {
            pos: expr.pos,
            message: format!("expression `{}`: {message}", expr.source),
        })
    }

    /// Evaluates a condition, which must give `true` or `false`.
    pub(super) fn eval_bool(
        &self,
        expr: &Expr,
        now: DateTime<Utc>,
        extra: Option<(&str, &Value)>,
    ) -> Result<bool, Failure> {
        match self.eval(expr, now, extra)? {
            Value::Bool(b) => Ok(b),
            other => Err(Failure {
                pos: expr.pos,
                message: format!(
                    "condition `{}` gave {} instead of true or false",
                    expr.source,
                    crate::expr::value_kind(&other)
                ),
            }),
        }
    }

    /// Evaluates named expressions into a JSON map (lookup params, return values...).
    pub(super) fn eval_map(
        &self,
        items: &[(String, Expr)],
        now: DateTime<Utc>,
    ) -> Result<serde_json::Map<String, Value>, Failure> {
        let mut out = serde_json::Map::new();
        for (name, expr) in items {
            out.insert(name.clone(), self.eval(expr, now, None)?);
        }
        Ok(out)
    }
}
