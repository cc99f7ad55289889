//! A YAML reader that keeps positions.
//!
//! [`parse`] turns one YAML document into a small tree of [`Node`]s. Every node
//! carries the 1-based line and column ([`Pos`]) where its value starts, so the
//! schedule loader can report every problem as `FILE:LINE:COL: message`.
//! Columns count characters (not bytes), and a tab counts as one column. A node
//! with an anchor or tag (`&a`, `!!str`) starts at that anchor or tag, a block
//! scalar at its `|` or `>`, a block list at its first `-`, and an alias copy
//! at the alias.
//!
//! # Scalar rules
//!
//! Plain (unquoted) scalars are resolved with the YAML 1.2 core schema, made
//! stricter so that nothing silently changes type:
//!
//! - `null`, `Null`, `NULL`, `~` and the empty value are [`Value::Null`].
//! - `true`, `True`, `TRUE`, `false`, `False`, `FALSE` are [`Value::Bool`].
//!   The YAML 1.1 booleans (`yes`, `no`, `on`, `off`, `y`, `n` in any case)
//!   stay strings, so `NO` (Norway) stays `"NO"`.
//! - `[-+]?[0-9]+` is an [`Value::Int`], except that a number with a leading
//!   zero (`0755`, `007`, `-01`) stays a string so octal-looking values are
//!   not mangled; `0` and `-0` are integers. `0x1F` (31) and `0o17` (15) are
//!   integers. `1_000` stays a string, and so does an integer outside the
//!   `i64` range (rather than losing precision as a float).
//! - `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` is a
//!   [`Value::Float`] (`1.5`, `1e3`, `.5`), as are `.inf`, `-.inf`, `+.inf`
//!   and `.nan` (also in the `.Inf`/`.INF`/`.NaN`/`.NAN` spellings). A leading
//!   zero (`01.5`) or a value too large for `f64` keeps it a string.
//! - Everything else is a [`Value::Str`] (`30s`, `app.tasks.cleanup`,
//!   `2026-12-01T09:00:00+01:00`). A value that starts with a YAML indicator
//!   (`*`, `&`, `!`, `|`, `>`, `%`, `@`, `` ` ``, `[`, `{`, `#`, ...) must be
//!   quoted: an unquoted cron expression `*/5 * * * *` is read as an alias,
//!   and the error says to quote it.
//!
//! Quoted scalars (`'...'`, `"..."`) and block scalars (`|`, `>`) are always
//! strings. The explicit tags `!!str`, `!!int`, `!!float`, `!!bool` and
//! `!!null` force a type, and it is an error if the text does not fit it;
//! `!!seq` and `!!map` are accepted on lists and mappings, and the
//! non-specific tag `!` makes a scalar a string. Any other tag is an error.
//!
//! # Structure rules
//!
//! - Anchors (`&a`) and aliases (`*a`) are resolved: an alias becomes a copy
//!   of the anchored node (positioned at the alias).
//! - Merge keys (`<<: *base`, or `<<: [*a, *b]`) add the entries of the
//!   referenced mappings that the mapping does not define itself; with a
//!   list, earlier mappings win over later ones.
//! - Only one document is allowed.
//! - Duplicate keys (compared by their resolved value, so `a` and `"a"` are
//!   the same key while `1` and `"1"` are not) are all reported; the first
//!   occurrence is kept in the tree.
//! - Mapping keys must be scalars.
//!
//! # Layout
//!
//! [`parse`] runs the tree builder (`build`) over the parser's events; the builder resolves
//! scalars (`scalar`), compares keys (`keys`), corrects positions from the source text
//! (`lines`) and rewords syntax errors (`diagnose`). [`parse_parallel`] (`split`) parses a
//! large schedule file in pieces and joins them into the same tree.
//!
//! This module knows nothing of schedules: it imports nothing from the entry, schedule or
//! source modules (only the crate's [`NameHasher`](crate::NameHasher)), and it has no globals.

use saphyr_parser::Marker;

mod build;
mod diagnose;
mod keys;
mod lines;
mod scalar;
mod split;

pub use split::{PARALLEL_MIN_BYTES, parse_parallel};

use build::Builder;

/// A position in the source text, 1-based as editors show it.
///
/// Columns count characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// A floating point number, including infinities and NaN.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, in document order (merged entries come last).
    Map(Vec<(Node, Node)>),
}

/// A YAML value together with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts (for a mapping entry's key node, where the key starts).
    pub pos: Pos,
}

impl Node {
    /// The kind of value, worded for error messages ("expected a string, found a list").
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The string, if this node is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Looks up a string key in a mapping. Returns `None` for other kinds of node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Builds a tree from JSON, every node at `Pos::default()` (no position),
    /// so JSON from the HTTP API or a database row goes through the same
    /// validator as YAML. Integers outside `i64` become floats.
    pub fn from_json(value: &serde_json::Value) -> Node {
        let value = match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(Node::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Node::from_json(&serde_json::Value::String(k.clone())),
                            Node::from_json(v),
                        )
                    })
                    .collect(),
            ),
        };
        Node {
            value,
            pos: Pos::default(),
        }
    }

    /// Converts the tree to JSON.
    ///
    /// Mapping keys that are strings are used as they are; other scalar keys are
    /// rendered as text (`1`, `true`, `null`, `1.5`). If two keys render to the
    /// same text, the first one wins. NaN and infinities become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (k, v) in entries {
                    let key = match &k.value {
                        Value::Str(s) => s.clone(),
                        other => scalar_text(other),
                    };
                    map.entry(key).or_insert_with(|| v.to_json());
                }
                serde_json::Value::Object(map)
            }
        }
    }
}

/// A problem found in a YAML document, with the position it refers to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// Where the problem is.
    pub pos: Pos,
    /// What is wrong, starting in lower case, without a trailing period.
    pub message: String,
}

/// Parses one YAML document (an empty document or one that is only comments gives Ok(None)).
///
/// Returns every error found (duplicate keys do not stop parsing: all of them are reported, and
/// the FIRST occurrence is kept in the tree); a syntax error ends parsing and is returned with
/// its position. Errors are sorted by position.
pub fn parse(text: &str) -> Result<Option<Node>, Vec<YamlError>> {
    let mut builder = Builder::new(text);
    builder.run();
    builder.finish()
}

/// Renders a scalar as text, for mapping keys in JSON and for messages.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Str(s) => s.clone(),
        Value::Seq(_) => "[list]".to_owned(),
        Value::Map(_) => "{mapping}".to_owned(),
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_owned()
    } else if f == f64::INFINITY {
        ".inf".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-.inf".to_owned()
    } else {
        format!("{f:?}")
    }
}

#[cfg(test)]
mod testing {
    //! Helpers for the unit tests of this module and its files.

    pub(super) use super::{Node, Pos, Value, YamlError, parse};

    pub(super) fn p(text: &str) -> Node {
        match parse(text) {
            Ok(Some(node)) => node,
            Ok(None) => panic!("no document in {text:?}"),
            Err(errors) => panic!("errors in {text:?}: {errors:?}"),
        }
    }

    pub(super) fn errs(text: &str) -> Vec<YamlError> {
        match parse(text) {
            Ok(node) => panic!("expected errors for {text:?}, got {node:?}"),
            Err(errors) => errors,
        }
    }

    pub(super) fn one_err(text: &str) -> YamlError {
        let mut errors = errs(text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    pub(super) fn pos(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    /// The value of `v: <text>`.
    pub(super) fn scalar(text: &str) -> Value {
        let doc = format!("v: {text}\n");
        p(&doc).get("v").expect("key v").value.clone()
    }

    pub(super) fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::testing::*;

    #[test]
    fn empty_documents() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("# only a comment\n\n# another\n"), Ok(None));
        assert_eq!(parse("---\n"), Ok(None));
        assert_eq!(parse("---\n# c\n...\n"), Ok(None));
        assert_eq!(parse("\n\n"), Ok(None));
        // An explicit null is a document.
        assert_eq!(
            parse("null"),
            Ok(Some(Node {
                value: Value::Null,
                pos: pos(1, 1)
            }))
        );
        assert_eq!(
            parse("~").map(|n| n.map(|n| n.value)),
            Ok(Some(Value::Null))
        );
    }

    #[test]
    fn scalar_root() {
        let doc = p("  hello\n");
        assert_eq!(doc.value, s("hello"));
        assert_eq!(doc.pos, pos(1, 3));
    }

    #[test]
    fn node_helpers() {
        let doc = p("s: x\ni: 1\nf: 1.5\nb: true\nn: ~\nl: []\nm: {}\n");
        let names: Vec<&str> = ["s", "i", "f", "b", "n", "l", "m"]
            .iter()
            .map(|k| doc.get(k).expect("key").type_name())
            .collect();
        assert_eq!(
            names,
            [
                "a string",
                "an integer",
                "a number",
                "a boolean",
                "null",
                "a list",
                "a mapping"
            ]
        );
        assert_eq!(doc.get("s").and_then(Node::as_str), Some("x"));
        assert_eq!(doc.get("i").and_then(Node::as_str), None);
        assert!(doc.get("missing").is_none());
        assert!(doc.get("s").and_then(|s| s.get("x")).is_none());
        // `get` only finds string keys.
        let doc = p("1: a\n");
        assert!(doc.get("1").is_none());
    }

    #[test]
    fn to_json() {
        let doc = p(
            "s: x\ni: 1\nf: 1.5\nb: true\nn: ~\nl: [1, \"2\"]\nm: {a: .inf, b: .nan}\n1: int\n\
             true: bool\n~: ~\n2.5: float\n",
        );
        let json = doc.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "s": "x", "i": 1, "f": 1.5, "b": true, "n": null,
                "l": [1, "2"], "m": {"a": null, "b": null},
                "1": "int", "true": "bool", "null": null, "2.5": "float",
            })
        );
        // Keys that render the same: the first wins.
        let doc = p("1: a\n\"1\": b\n");
        assert_eq!(doc.to_json(), serde_json::json!({"1": "a"}));
    }

    #[test]
    fn error_display_is_the_message() {
        let e = one_err("a: 1\na: 2\n");
        assert_eq!(
            e.to_string(),
            "duplicate key \"a\" (first defined at line 1)"
        );
    }

    fn big_document(entries: usize) -> String {
        let mut text = String::with_capacity(entries * 200);
        text.push_str("# generated\nschedules:\n");
        for i in 0..entries {
            text.push_str(&format!(
                "  job-{i:06}:\n    task: app.tasks.job_{i}\n    every: 30s\n    args: [1, \"two\", 3.5]\n    kwargs:\n      user: u{i}\n      retry: true\n    queue: default\n    enabled: yes\n    priority: {}\n",
                i % 10
            ));
        }
        text
    }

    #[test]
    fn medium_document() {
        let text = big_document(1000);
        let doc = p(&text);
        let schedules = doc.get("schedules").expect("schedules");
        let job = schedules.get("job-000999").expect("job");
        assert_eq!(job.pos, pos(2 + 999 * 10 + 2, 5));
        assert_eq!(job.get("priority").expect("p").value, Value::Int(9));
    }

    /// Run with `cargo test --release -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn speed_of_a_large_document() {
        let text = big_document(100_000);
        let lines = text.lines().count();
        let start = std::time::Instant::now();
        let doc = p(&text);
        let elapsed = start.elapsed();
        let Value::Map(entries) = &doc.get("schedules").expect("schedules").value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 100_000);
        println!(
            "parsed {lines} lines ({} bytes, 100000 entries) in {elapsed:?}",
            text.len()
        );
    }
}
