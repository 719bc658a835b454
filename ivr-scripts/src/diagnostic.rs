//! Load-time diagnostics: what the checker says about a flow file.
//!
//! Every problem found while compiling a flow becomes a [`Diagnostic`] that names the file, the
//! 1-based line and column of the offending YAML node, a stable [`Code`], a message and, when we
//! can tell, a hint on how to fix it. Script authors read these in `svi check`, so messages
//! say what is wrong in the author's words (steps, prompts, queues), never in parser jargon.
//!
//! The compiler collects all diagnostics of a file before giving up, so one `check` run shows
//! every mistake at once; errors block loading, warnings do not.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A position in a source file: 1-based line and 1-based column (in characters).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Whether a diagnostic blocks loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Stable identifier of each kind of problem (documented in `docs/flows.md`), so tools and
/// tests can match on it without parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The file is not well-formed YAML.
    YamlSyntax,
    /// A YAML feature the flow format does not accept (anchors, aliases, tags, documents).
    YamlUnsupported,
    /// The file exceeds the size or nesting limits.
    TooLarge,
    /// A field has the wrong shape (a list where text was expected, ...).
    WrongType,
    /// A field that this place does not accept; usually a typo.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// Two steps with the same id.
    DuplicateStep,
    /// A step has no kind key (`play`, `menu`, ...), or more than one.
    StepKind,
    /// A reference to a step that does not exist.
    UnknownStep,
    /// A value that is out of range or malformed (duration, digits, name, ...).
    BadValue,
    /// An expression that does not compile.
    BadExpression,
    /// An expression or field names a variable the flow never defines.
    UnknownVariable,
    /// A prompt that is missing in one of the flow's languages.
    UnknownPrompt,
    /// A language the engine has no prompts for.
    UnknownLanguage,
    /// A queue the engine does not know.
    UnknownQueue,
    /// A data source (for `lookup`) the engine does not know.
    UnknownDataSource,
    /// An action (for `action`) the engine does not know.
    UnknownAction,
    /// An `hours` step names a calendar the flow does not define.
    UnknownCalendar,
    /// A `subflow` step names a subflow the file does not define, or passes wrong arguments.
    UnknownSubflow,
    /// An opening-hours calendar with a malformed or impossible range.
    BadHours,
    /// A step no path from the start reaches.
    UnreachableStep,
    /// A cycle of steps none of which waits for the caller.
    LoopWithoutInput,
    /// A menu or collect from which no path ends the call.
    NoWayOut,
    /// A step that can fail at run time has nowhere to go when it does.
    MissingErrorBranch,
    /// Subflows that call themselves, directly or not.
    SubflowRecursion,
    /// `return` outside a subflow.
    ReturnOutsideSubflow,
    /// A `say` step in a language or form the engine cannot speak.
    UnsupportedSay,
}

impl Code {
    /// The kebab-case name used in JSON output and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml-syntax",
            Code::YamlUnsupported => "yaml-unsupported",
            Code::TooLarge => "too-large",
            Code::WrongType => "wrong-type",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::DuplicateKey => "duplicate-key",
            Code::DuplicateStep => "duplicate-step",
            Code::StepKind => "step-kind",
            Code::UnknownStep => "unknown-step",
            Code::BadValue => "bad-value",
            Code::BadExpression => "bad-expression",
            Code::UnknownVariable => "unknown-variable",
            Code::UnknownPrompt => "unknown-prompt",
            Code::UnknownLanguage => "unknown-language",
            Code::UnknownQueue => "unknown-queue",
            Code::UnknownDataSource => "unknown-data-source",
            Code::UnknownAction => "unknown-action",
            Code::UnknownCalendar => "unknown-calendar",
            Code::UnknownSubflow => "unknown-subflow",
            Code::BadHours => "bad-hours",
            Code::UnreachableStep => "unreachable-step",
            Code::LoopWithoutInput => "loop-without-input",
            Code::NoWayOut => "no-way-out",
            Code::MissingErrorBranch => "missing-error-branch",
            Code::SubflowRecursion => "subflow-recursion",
            Code::ReturnOutsideSubflow => "return-outside-subflow",
            Code::UnsupportedSay => "unsupported-say",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a flow file, with its position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}:{}:{}: {}: {}", file.display(), line, column, severity, message)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: error: message` followed, when there is one, by an indented hint line.
    pub fn render(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}\n  hint: {hint}"),
            None => self.to_string(),
        }
    }

    /// Like [`render`](Self::render), with the offending source line and a caret under the
    /// column, the way compilers show it.
    pub fn render_with_source(&self, source: &str) -> String {
        let mut text = self.to_string();
        if let Some(line) = source.lines().nth((self.line as usize).saturating_sub(1)) {
            if self.line > 0 {
                let number = self.line.to_string();
                let pad = " ".repeat(number.len());
                let caret_pad: String = line
                    .chars()
                    .take((self.column as usize).saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                text.push_str(&format!(
                    "\n{pad} |\n{number} | {line}\n{pad} | {caret_pad}^"
                ));
            }
        }
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        text
    }
}

/// Collects diagnostics for one file while the compiler walks it.
#[derive(Debug)]
pub(crate) struct Sink {
    file: PathBuf,
    list: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn new(file: PathBuf) -> Self {
        Self {
            file,
            list: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, code: Code, pos: Pos, message: impl Into<String>) -> &mut Self {
        self.push(Severity::Error, code, pos, message)
    }

    pub(crate) fn warning(
        &mut self,
        code: Code,
        pos: Pos,
        message: impl Into<String>,
    ) -> &mut Self {
        self.push(Severity::Warning, code, pos, message)
    }

    fn push(
        &mut self,
        severity: Severity,
        code: Code,
        pos: Pos,
        message: impl Into<String>,
    ) -> &mut Self {
        self.list.push(Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            column: pos.col,
            severity,
            code,
            message: message.into(),
            hint: None,
        });
        self
    }

    /// Attaches a hint to the diagnostic just pushed.
    pub(crate) fn hint(&mut self, hint: impl Into<String>) -> &mut Self {
        if let Some(last) = self.list.last_mut() {
            last.hint = Some(hint.into());
        }
        self
    }

    /// Attaches a hint if there is one.
    pub(crate) fn maybe_hint(&mut self, hint: Option<String>) -> &mut Self {
        if let Some(hint) = hint {
            self.hint(hint);
        }
        self
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }

    /// All diagnostics, sorted by position, duplicates (same place, same message) removed.
    pub(crate) fn into_sorted(self) -> Vec<Diagnostic> {
        let mut list = self.list;
        list.sort_by(|a, b| {
            (a.line, a.column, a.severity, &a.message)
                .cmp(&(b.line, b.column, b.severity, &b.message))
        });
        list.dedup_by(|a, b| a.pos() == b.pos() && a.message == b.message);
        list
    }
}
