//! Rows printed as a table of chosen columns, or as JSON (`--json`).

/// Prints an array of objects as JSON or as a table of the given columns. Write errors
/// (a closed pipe, as with `| head`) end the output quietly.
pub fn print_table(rows: &serde_json::Value, json: bool, columns: &[&str]) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(rows).unwrap_or_default()
        );
        return;
    }
    let cell = |column: &str, v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        // Agent states are tagged objects: `not_ready (lunch)`.
        serde_json::Value::Object(o) if o.contains_key("state") => {
            match o.get("reason").and_then(|r| r.as_str()) {
                Some(r) => format!("{} ({r})", o["state"].as_str().unwrap_or("?")),
                None => o["state"].as_str().unwrap_or("?").to_string(),
            }
        }
        serde_json::Value::Number(n) if column == "since" => n
            .as_i64()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| n.to_string()),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let _ = writeln!(
        out,
        "{}",
        columns
            .iter()
            .map(|c| format!("{c:<20}"))
            .collect::<String>()
            .trim_end()
    );
    for r in rows.as_array().into_iter().flatten() {
        let line: String = columns
            .iter()
            .map(|c| format!("{:<20}", cell(c, &r[*c])))
            .collect();
        if writeln!(out, "{}", line.trim_end()).is_err() {
            return;
        }
    }
}
