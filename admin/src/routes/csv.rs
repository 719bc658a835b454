//! What the routes that answer JSON or CSV (`format=csv`) share: the `format` parameter,
//! cell quoting, and the CSV attachment.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// `format`: `json` (default) or `csv`; true for CSV.
pub(crate) fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad(
            "format",
            format!("`{other}` is not json or csv"),
        )),
    }
}

/// A CSV answer (RFC 4180 lines, with its header line), offered as `file`.
pub(crate) fn attachment(file: &'static str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{file}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// One CSV cell (RFC 4180 quoting). A cell a spreadsheet would take for a formula (`=`,
/// `+`, `-`, `@` first) is prefixed with `'`: the log holds text that callers chose.
pub(crate) fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1"), "'-1");
    }
}
