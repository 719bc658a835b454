//! Expressions: a sandboxed `rhai` for conditions, `set` values and step parameters.
//!
//! Authors write small expressions (`vip.level == "gold"`, `attempts + 1`,
//! `extension.len() == 4`) in YAML scalars. They compile once, at load, into a rhai AST, so a
//! syntax error or a misspelt variable is a load error at the exact file line and column (we
//! map rhai's position inside the scalar back to the file, see [`crate::yaml::value_positions`]).
//!
//! The sandbox is the engine's own: [`Engine::new_raw`] with only pure packages (arithmetic,
//! logic, strings, maths, arrays, maps, iterators). Left out on purpose: `print`/`debug`
//! output, `sleep`, `exit`, `parse_json`, timestamps (they read the clock), blobs, modules
//! (no file access), and `eval`. Expressions are compiled in *expression mode*: no statements,
//! no assignment, no loops, no function definitions; closures passed to `map`/`filter` are
//! allowed. Operation, string, array, map, call-depth and nesting limits bound the time and
//! memory of any evaluation, so a hostile or buggy flow cannot stall a call's actor.
//!
//! Variables are strict: the compiler gives rhai the names the flow defines, and any other
//! name is a load error with a "did you mean". Values cross into the interpreter's state as
//! `serde_json::Value`, which keeps call state serialisable for replication.

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use std::sync::OnceLock;

use rhai::{Dynamic, Engine, Module, ParseErrorType, Position, Scope, Shared, AST};
use serde_json::{Map, Number, Value};

use crate::diagnostic::Pos;

/// Most operations one evaluation may perform.
pub const MAX_OPERATIONS: u64 = 50_000;
/// Longest string an expression may build (bytes).
pub const MAX_STRING_SIZE: usize = 16 * 1024;
/// Largest array an expression may build.
pub const MAX_ARRAY_SIZE: usize = 1024;
/// Largest map an expression may build.
pub const MAX_MAP_SIZE: usize = 256;
/// Deepest function-call nesting.
pub const MAX_CALL_LEVELS: usize = 8;
/// Deepest expression nesting (parentheses, operators).
pub const MAX_EXPR_DEPTH: usize = 32;
/// Longest expression source accepted (bytes).
pub const MAX_SOURCE_LEN: usize = 4096;
/// Deepest nesting of values converted to or from state.
const MAX_VALUE_DEPTH: usize = 32;

/// Read-only variables every expression can use.
///
/// - `caller`, `called`, `call_id`: from the call;
/// - `language`: the current prompt language;
/// - `now`: a map with `date` ("2026-03-10"), `time` ("10:05"), `hour`, `minute`, `weekday`
///   ("tuesday"), `day`, `month`, `year` and `iso` (RFC 3339), in the flow's time zone;
/// - `last_error`: the message of the last failure (connector, transfer, expression), or `()`.
pub const BUILTINS: &[&str] = &[
    "caller",
    "called",
    "call_id",
    "language",
    "now",
    "last_error",
];

/// The sandboxed rhai engine shared by all expressions of a flow.
pub(crate) struct ExprEngine {
    engine: Engine,
}

impl std::fmt::Debug for ExprEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExprEngine")
    }
}

/// A compiled expression, with what is needed to report errors at file positions.
#[derive(Clone)]
pub(crate) struct Expr {
    pub(crate) source: String,
    ast: AST,
    /// File position of each character of `source`.
    positions: Vec<Pos>,
    pub(crate) pos: Pos,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?} at {})", self.source, self.pos)
    }
}

/// Why an expression did not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompileFailure {
    pub(crate) pos: Pos,
    pub(crate) message: String,
    /// Set when the failure is an undefined variable (so the checker can suggest a name).
    pub(crate) unknown_variable: Option<String>,
}

/// Why an evaluation failed at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EvalFailure {
    pub(crate) pos: Pos,
    pub(crate) message: String,
}

impl ExprEngine {
    pub(crate) fn new() -> Self {
        // Building the packages is the costly part of an engine; they are immutable, so every
        // flow shares one set.
        static PACKAGES: OnceLock<Vec<Shared<Module>>> = OnceLock::new();
        let packages = PACKAGES.get_or_init(|| {
            vec![
                ArithmeticPackage::new().as_shared_module(),
                LogicPackage::new().as_shared_module(),
                BasicStringPackage::new().as_shared_module(),
                MoreStringPackage::new().as_shared_module(),
                BasicMathPackage::new().as_shared_module(),
                BasicArrayPackage::new().as_shared_module(),
                BasicMapPackage::new().as_shared_module(),
                BasicIteratorPackage::new().as_shared_module(),
            ]
        });
        let mut engine = Engine::new_raw();
        for module in packages {
            engine.register_global_module(module.clone());
        }
        engine
            .set_strict_variables(true)
            .set_max_operations(MAX_OPERATIONS)
            .set_max_string_size(MAX_STRING_SIZE)
            .set_max_array_size(MAX_ARRAY_SIZE)
            .set_max_map_size(MAX_MAP_SIZE)
            .set_max_call_levels(MAX_CALL_LEVELS)
            .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH)
            .set_max_variables(64)
            .set_allow_looping(false)
            .disable_symbol("eval");
        // `print` and `debug` are built into rhai itself; silence them rather than let a flow
        // write to the engine's stdout.
        engine.on_print(|_| {}).on_debug(|_, _, _| {});
        Self { engine }
    }

    /// Compiles `source` (the text of a YAML scalar) with the given variables in scope.
    /// `positions[i]` is the file position of the `i`-th character of `source`.
    pub(crate) fn compile(
        &self,
        source: &str,
        positions: Vec<Pos>,
        start: Pos,
        variables: &[&str],
    ) -> Result<Expr, CompileFailure> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(CompileFailure {
                pos: start,
                message: format!("expression longer than {MAX_SOURCE_LEN} bytes"),
                unknown_variable: None,
            });
        }
        if source.trim().is_empty() {
            return Err(CompileFailure {
                pos: start,
                message: "empty expression".into(),
                unknown_variable: None,
            });
        }
        let mut scope = Scope::new();
        for name in variables {
            scope.push_dynamic(*name, Dynamic::UNIT);
        }
        match self.engine.compile_expression_with_scope(&scope, source) {
            Ok(ast) => Ok(Expr {
                source: source.to_owned(),
                ast,
                positions,
                pos: start,
            }),
            Err(err) => {
                let pos = map_position(source, &positions, start, err.position());
                let unknown_variable = match err.err_type() {
                    ParseErrorType::VariableUndefined(name) => Some(name.clone()),
                    _ => None,
                };
                Err(CompileFailure {
                    pos,
                    message: err.err_type().to_string(),
                    unknown_variable,
                })
            }
        }
    }

    /// Evaluates `expr` with `scope` holding every variable the expression may name.
    pub(crate) fn eval(&self, expr: &Expr, scope: &mut Scope<'_>) -> Result<Dynamic, EvalFailure> {
        self.engine
            .eval_ast_with_scope::<Dynamic>(scope, &expr.ast)
            .map(Dynamic::flatten)
            .map_err(|mut err| {
                let at = err.take_position();
                EvalFailure {
                    pos: map_position(&expr.source, &expr.positions, expr.pos, at),
                    message: err.to_string(),
                }
            })
    }
}

/// Turns rhai's (line, column) inside an expression into a file position.
fn map_position(source: &str, positions: &[Pos], start: Pos, at: Position) -> Pos {
    let Some(line) = at.line() else { return start };
    let col = at.position().unwrap_or(1);
    let mut index = 0usize;
    for (n, text) in source.split('\n').enumerate() {
        if n + 1 == line {
            index += col.saturating_sub(1).min(text.chars().count());
            break;
        }
        index += text.chars().count() + 1;
    }
    match positions.get(index) {
        Some(pos) => *pos,
        // Errors at the end of input ("expecting `)`") point just past the last character.
        None => positions
            .last()
            .map_or(start, |last| Pos::new(last.line, last.col + 1)),
    }
}

/// Converts state data into a rhai value.
pub(crate) fn to_dynamic(value: &Value) -> Dynamic {
    to_dynamic_at(value, 0)
}

fn to_dynamic_at(value: &Value, depth: usize) -> Dynamic {
    if depth > MAX_VALUE_DEPTH {
        return Dynamic::UNIT;
    }
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => {
            Dynamic::from_array(items.iter().map(|v| to_dynamic_at(v, depth + 1)).collect())
        }
        Value::Object(map) => Dynamic::from_map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic_at(v, depth + 1)))
                .collect(),
        ),
    }
}

/// Converts a rhai value into state data; `Err` names the type that cannot be stored.
pub(crate) fn from_dynamic(value: &Dynamic) -> Result<Value, String> {
    from_dynamic_at(value, 0)
}

fn from_dynamic_at(value: &Dynamic, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nested too deeply".into());
    }
    let value = value.clone().flatten();
    if value.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(Value::Number(i.into()));
    }
    if let Ok(f) = value.as_float() {
        return Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("number {f} cannot be stored"));
    }
    if let Ok(c) = value.as_char() {
        return Ok(Value::String(c.to_string()));
    }
    if value.is_string() {
        return value
            .into_string()
            .map(Value::String)
            .map_err(str::to_owned);
    }
    if value.is_array() {
        let items = value.into_array().map_err(str::to_owned)?;
        return items
            .iter()
            .map(|v| from_dynamic_at(v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if value.is_map() {
        let type_name = value.type_name();
        let map = value
            .try_cast::<rhai::Map>()
            .ok_or_else(|| format!("a value of type {type_name} cannot be stored"))?;
        let mut out = Map::new();
        for (k, v) in &map {
            out.insert(k.to_string(), from_dynamic_at(v, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    Err(format!(
        "a value of type {} cannot be stored in a variable",
        value.type_name()
    ))
}

/// Text form of a value for prompts, transfer targets and messages: strings as they are,
/// whole numbers without decimals, everything else as JSON.
pub(crate) fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a value is, for messages that must not show the value itself (it may be a PIN, a
/// caller's number or a looked-up record: personal data, and these messages reach logs).
pub(crate) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn positions(src: &str, line: u32, col: u32) -> Vec<Pos> {
        (0..src.chars().count())
            .map(|i| Pos::new(line, col + u32::try_from(i).unwrap_or(0)))
            .collect()
    }

    fn compile(engine: &ExprEngine, src: &str, vars: &[&str]) -> Result<Expr, CompileFailure> {
        engine.compile(src, positions(src, 10, 7), Pos::new(10, 7), vars)
    }

    fn eval(src: &str, vars: &[(&str, Value)]) -> Result<Value, EvalFailure> {
        let engine = ExprEngine::new();
        let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
        let expr = compile(&engine, src, &names).map_err(|f| EvalFailure {
            pos: f.pos,
            message: f.message,
        })?;
        let mut scope = Scope::new();
        for (n, v) in vars {
            scope.push_dynamic(*n, to_dynamic(v));
        }
        let out = engine.eval(&expr, &mut scope)?;
        from_dynamic(&out).map_err(|message| EvalFailure {
            pos: Pos::default(),
            message,
        })
    }

    #[test]
    fn evaluates_conditions_on_variables() {
        let vip = json!({"level": "gold", "name": "Ada"});
        assert_eq!(
            eval(
                r#"vip.level == "gold" && caller.starts_with("+33")"#,
                &[("vip", vip), ("caller", json!("+33123"))]
            ),
            Ok(json!(true))
        );
        assert_eq!(eval("n + 1", &[("n", json!(41))]), Ok(json!(42)));
        assert_eq!(eval("[1, 2, 3].map(|x| x * 2)", &[]), Ok(json!([2, 4, 6])));
        assert_eq!(
            eval(r#"#{a: 1, b: "x"}"#, &[]),
            Ok(json!({"a": 1, "b": "x"}))
        );
    }

    #[test]
    fn unknown_variable_is_a_compile_error_at_its_position() {
        let engine = ExprEngine::new();
        let err = compile(&engine, "caller == caler", &["caller"]).expect_err("typo");
        assert_eq!(err.unknown_variable.as_deref(), Some("caler"));
        assert_eq!(err.pos, Pos::new(10, 17));
    }

    #[test]
    fn syntax_error_position_is_mapped() {
        let engine = ExprEngine::new();
        let err = compile(&engine, "1 + ", &[]).expect_err("incomplete");
        assert_eq!(err.pos.line, 10);
        assert!(err.pos.col >= 7);
    }

    #[test]
    fn sandbox_refuses_dangerous_things() {
        let engine = ExprEngine::new();
        for src in [
            "eval(\"1\")",
            "x = 1",
            "loop { }",
            "while true { }",
            "fn f() { 1 }",
            "import \"x\" as y",
            "let a = 1",
        ] {
            assert!(
                compile(&engine, src, &["x"]).is_err(),
                "{src} should not compile"
            );
        }
        for src in ["sleep(10)", "timestamp()", "exit()", "parse_json(\"{}\")"] {
            assert!(eval(src, &[]).is_err(), "{src} should not run");
        }
    }

    #[test]
    fn limits_bound_runaway_evaluations() {
        assert!(eval("range(0, 10000000).map(|x| x + 1).len()", &[]).is_err());
        assert!(eval("\"a\".pad(100000, \"b\")", &[]).is_err());
        assert!(eval("[].pad(100000, 0)", &[]).is_err());
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(eval(&deep, &[]).is_err());
    }

    #[test]
    fn runtime_error_positions_are_mapped() {
        let err = eval("1 + x.len()", &[("x", json!(5))]).expect_err("no len on int");
        assert_eq!(err.pos.line, 10);
        assert!(err.pos.col > 7, "{err:?}");
    }

    #[test]
    fn values_round_trip() {
        let v = json!({"a": [1, 2.5, "x", null, true], "b": {"c": "d"}});
        assert_eq!(from_dynamic(&to_dynamic(&v)), Ok(v));
    }
}
