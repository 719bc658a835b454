//! Output contracts of the plug-ins' operations: which fields a record must have, of which
//! type. A backend mapped by configuration (JSON pointers, SQL columns) can answer a field
//! of the wrong type (a VIP flag as `"yes"`, a ticket number as a list): the flow would
//! then misroute the caller silently. Checking the record against the operation's contract
//! turns that into an error the flow branches on, naming the field, never its value.

use serde_json::Value;

use super::settings::Settings;
use super::{CallError, ConnectorError, Record, Role};

/// The entry's `operation` among a plug-in's `ops` (`name`, `role` read each one), which
/// must be declared in the table of its role (`declared`).
pub fn operation<'o, T>(
    s: &Settings<'_>,
    plugin: &str,
    ops: &'o [T],
    name: fn(&T) -> &'static str,
    role: fn(&T) -> Role,
    declared: Role,
) -> Result<&'o T, ConnectorError> {
    let wanted = s.required_string("operation")?;
    let op = ops.iter().find(|o| name(o) == wanted).ok_or_else(|| {
        let known: Vec<&str> = ops.iter().map(name).collect();
        s.err(
            "operation",
            format!(
                "`{wanted}` is not {plugin} operation ({})",
                known.join(", ")
            ),
        )
    })?;
    if role(op) != declared {
        let table = match role(op) {
            Role::DataSource => "data_sources",
            Role::Action => "actions",
        };
        return Err(s.err("operation", format!("`{wanted}` belongs in [[{table}]]")));
    }
    Ok(op)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text; a number is accepted and written as text (a numeric site code).
    Text,
    /// An identifier: text or an integer, given to the flow as text (said as digits).
    Id,
    /// A whole number.
    Integer,
    /// `true`/`false`; 0/1 too (SQLite has no boolean).
    Bool,
}

/// One field of an operation's record.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
}

pub const fn req(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

pub const fn opt(name: &'static str, ty: FieldType) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

/// Checks and normalises `record` against `fields`; other fields pass unchanged.
pub fn check(source: &str, fields: &[Field], mut record: Record) -> Result<Record, CallError> {
    for f in fields {
        let bad = |problem: &str| CallError::BadField {
            source_name: source.to_string(),
            field: f.name.to_string(),
            problem: problem.to_string(),
        };
        let value = record.remove(f.name).unwrap_or(Value::Null);
        let value = match (f.ty, value) {
            (_, Value::Null) if f.required => return Err(bad("is missing")),
            (_, Value::Null) => Value::Null,
            (FieldType::Text, Value::String(s)) => Value::String(s),
            (FieldType::Text | FieldType::Id, Value::Number(n)) if n.is_i64() || n.is_u64() => {
                Value::String(n.to_string())
            }
            (FieldType::Text, Value::Number(n)) => Value::String(n.to_string()),
            (FieldType::Id, Value::String(s)) if !s.trim().is_empty() => Value::String(s),
            (FieldType::Id, _) => return Err(bad("is not an identifier (text or integer)")),
            (FieldType::Integer, Value::Number(n)) if n.is_i64() => Value::Number(n),
            (FieldType::Integer, _) => return Err(bad("is not an integer")),
            (FieldType::Bool, Value::Bool(b)) => Value::Bool(b),
            (FieldType::Bool, Value::Number(n)) if n.as_i64() == Some(0) => Value::Bool(false),
            (FieldType::Bool, Value::Number(n)) if n.as_i64() == Some(1) => Value::Bool(true),
            (FieldType::Bool, _) => return Err(bad("is not a boolean")),
            (FieldType::Text, _) => return Err(bad("is not a text")),
        };
        record.insert(f.name.to_string(), value);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &[Field] = &[
        req("id", FieldType::Id),
        req("vip", FieldType::Bool),
        opt("site", FieldType::Text),
        opt("open", FieldType::Integer),
    ];

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn normalises_what_fits() {
        let r = check(
            "u",
            USER,
            rec(json!({ "id": 42, "vip": 1, "site": 75, "x": [1] })),
        )
        .expect("fits");
        assert_eq!(
            Value::Object(r),
            json!({ "id": "42", "vip": true, "site": "75", "open": null, "x": [1] })
        );
    }

    #[test]
    fn wrong_types_and_missing_fields_are_errors_naming_the_field_only() {
        for (record, field, problem) in [
            (json!({ "vip": true }), "id", "is missing"),
            (
                json!({ "id": "a", "vip": "yes-secret" }),
                "vip",
                "is not a boolean",
            ),
            (
                json!({ "id": [1], "vip": true }),
                "id",
                "is not an identifier",
            ),
            (
                json!({ "id": "a", "vip": false, "open": "3" }),
                "open",
                "is not an integer",
            ),
            (
                json!({ "id": "a", "vip": false, "site": {} }),
                "site",
                "is not a text",
            ),
        ] {
            let e = check("helpdesk user", USER, rec(record)).expect_err(field);
            let text = e.to_string();
            assert!(
                text.contains(&format!("field `{field}` {problem}")),
                "{text}"
            );
            assert!(!text.contains("secret"), "{text}");
        }
    }
}
