//! Canned connector, queue and transfer outcomes for simulations and flow tests.
//!
//! ```yaml
//! lookups:
//!   directory:                      # data source name
//!     - when: { number: "+33612345678" }   # matches the lookup's params (subset)
//!       found: { name: Ada, vip: true }
//!     - not_found: true             # any other caller
//!   appointments:
//!     found: { confirmed: true }    # one result for every call
//! actions:
//!   create_ticket: { error: "helpdesk unreachable" }
//! queues:
//!   support: overflow               # answered | overflow | { failed: "reason" }
//! transfers:
//!   "1234": completed               # by target, or "*" for any: completed | { failed: "busy" }
//! ```
//!
//! A lookup or action without a stub fails (`no stub for ...`), which exercises the step's
//! error branch. A queue or transfer without a stub ends the simulation there: that is the
//! call's routing decision.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::interp::{ConnectorResult, QueueOutcome, TransferOutcome};

/// One canned result, optionally only for matching parameters.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    when: Option<Map<String, Value>>,
    result: ConnectorResult,
}

/// Canned outcomes, parsed from YAML or JSON.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stubs {
    lookups: BTreeMap<String, Vec<Rule>>,
    actions: BTreeMap<String, Vec<Rule>>,
    queues: BTreeMap<String, QueueOutcome>,
    transfers: BTreeMap<String, TransferOutcome>,
}

impl Stubs {
    /// Reads stubs from their YAML (or JSON) text.
    pub fn parse(source: &str) -> Result<Self, String> {
        let root = crate::yaml::parse(source)
            .map_err(|e| format!("{}: {}", e.pos, e.message))?
            .map(|n| crate::yaml::to_json(&n))
            .unwrap_or(Value::Null);
        Self::from_json(&root)
    }

    /// Reads stubs from already-parsed data (the `stubs` of a flow-test case).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let mut stubs = Stubs::default();
        let map = match value {
            Value::Null => return Ok(stubs),
            Value::Object(map) => map,
            _ => {
                return Err(
                    "stubs must be a mapping with `lookups`, `actions`, `queues`, `transfers`"
                        .into(),
                )
            }
        };
        for (key, section) in map {
            match key.as_str() {
                "lookups" => stubs.lookups = rules_section(section, "lookups")?,
                "actions" => stubs.actions = rules_section(section, "actions")?,
                "queues" => {
                    for (name, v) in object(section, "queues")? {
                        stubs.queues.insert(name.clone(), queue_outcome(v)?);
                    }
                }
                "transfers" => {
                    for (target, v) in object(section, "transfers")? {
                        stubs.transfers.insert(target.clone(), transfer_outcome(v)?);
                    }
                }
                other => {
                    return Err(format!(
                    "unknown stub section `{other}` (expected lookups, actions, queues, transfers)"
                ))
                }
            }
        }
        Ok(stubs)
    }

    pub fn lookup(&self, source: &str, params: &Map<String, Value>) -> ConnectorResult {
        answer(&self.lookups, source, params, "data source")
    }

    pub fn action(&self, action: &str, params: &Map<String, Value>) -> ConnectorResult {
        answer(&self.actions, action, params, "action")
    }

    pub fn queue(&self, queue: &str) -> Option<QueueOutcome> {
        self.queues.get(queue).cloned()
    }

    pub fn transfer(&self, target: &str) -> Option<TransferOutcome> {
        self.transfers
            .get(target)
            .or_else(|| self.transfers.get("*"))
            .cloned()
    }
}

fn answer(
    rules: &BTreeMap<String, Vec<Rule>>,
    name: &str,
    params: &Map<String, Value>,
    what: &str,
) -> ConnectorResult {
    let Some(rules) = rules.get(name) else {
        return Err(format!("no stub for {what} `{name}`"));
    };
    rules
        .iter()
        .find(|r| {
            r.when.as_ref().is_none_or(|w| {
                w.iter()
                    .all(|(k, v)| params.get(k).is_some_and(|p| same(p, v)))
            })
        })
        .map(|r| r.result.clone())
        .unwrap_or_else(|| {
            Err(format!(
                "no stub of {what} `{name}` matches {}",
                Value::Object(params.clone())
            ))
        })
}

/// Stub files are written by hand: `number: 1234` should match the text "1234".
fn same(actual: &Value, expected: &Value) -> bool {
    actual == expected || crate::expr::display_value(actual) == crate::expr::display_value(expected)
}

fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("`{what}` must be a mapping"))
}

fn rules_section(value: &Value, what: &str) -> Result<BTreeMap<String, Vec<Rule>>, String> {
    let mut out = BTreeMap::new();
    for (name, v) in object(value, what)? {
        let rules = match v {
            Value::Array(items) => items.iter().map(rule).collect::<Result<Vec<_>, _>>()?,
            other => vec![rule(other)?],
        };
        out.insert(name.clone(), rules);
    }
    Ok(out)
}

fn rule(value: &Value) -> Result<Rule, String> {
    if value.as_str() == Some("not_found") {
        return Ok(Rule {
            when: None,
            result: Ok(None),
        });
    }
    let map = object(value, "a stub")?;
    let mut when = None;
    let mut result = None;
    for (key, v) in map {
        match key.as_str() {
            "when" => when = Some(object(v, "`when`")?.clone()),
            "found" => result = Some(Ok(Some(object(v, "`found`")?.clone()))),
            "not_found" => result = Some(Ok(None)),
            "error" => result = Some(Err(crate::expr::display_value(v))),
            other => {
                return Err(format!(
                    "unknown stub field `{other}` (expected when, found, not_found, error)"
                ))
            }
        }
    }
    let result = result.ok_or("a stub needs `found`, `not_found` or `error`")?;
    Ok(Rule { when, result })
}

fn queue_outcome(value: &Value) -> Result<QueueOutcome, String> {
    match value {
        Value::String(s) if s == "answered" => Ok(QueueOutcome::Answered),
        Value::String(s) if s == "overflow" => Ok(QueueOutcome::Overflow),
        Value::Object(m) if m.len() == 1 && m.contains_key("failed") => Ok(QueueOutcome::Failed(
            m.get("failed")
                .map(crate::expr::display_value)
                .unwrap_or_default(),
        )),
        other => Err(format!(
            "queue stub {other} must be answered, overflow or {{ failed: reason }}"
        )),
    }
}

fn transfer_outcome(value: &Value) -> Result<TransferOutcome, String> {
    match value {
        Value::String(s) if s == "completed" => Ok(TransferOutcome::Completed),
        Value::Object(m) if m.len() == 1 && m.contains_key("failed") => {
            Ok(TransferOutcome::Failed(
                m.get("failed")
                    .map(crate::expr::display_value)
                    .unwrap_or_default(),
            ))
        }
        other => Err(format!(
            "transfer stub {other} must be completed or {{ failed: reason }}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_match_params_in_order() {
        let stubs = Stubs::parse(
            "lookups:\n  directory:\n    - when: { number: \"+331\" }\n      found: { vip: true }\n    - not_found: true\nqueues:\n  support: overflow\ntransfers:\n  \"*\": { failed: busy }\n",
        )
        .expect("valid");
        let p = |n: &str| {
            json!({ "number": n })
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            stubs.lookup("directory", &p("+331")),
            Ok(json!({"vip": true}).as_object().cloned())
        );
        assert_eq!(stubs.lookup("directory", &p("+332")), Ok(None));
        assert!(stubs.lookup("other", &p("1")).is_err());
        assert_eq!(stubs.queue("support"), Some(QueueOutcome::Overflow));
        assert_eq!(stubs.queue("hw"), None);
        assert_eq!(
            stubs.transfer("12"),
            Some(TransferOutcome::Failed("busy".into()))
        );
    }

    #[test]
    fn bad_stubs_are_explained() {
        assert!(Stubs::parse("lookups: { d: { maybe: 1 } }").is_err());
        assert!(Stubs::parse("queues: { q: sometimes }").is_err());
        assert!(Stubs::parse("colours: {}").is_err());
    }
}
