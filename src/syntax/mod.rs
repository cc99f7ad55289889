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

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

mod split;
pub use split::{PARALLEL_MIN_BYTES, parse_parallel};

/// Maximum nesting of lists and mappings (also after alias expansion).
const MAX_DEPTH: usize = 256;

/// Maximum number of nodes that aliases may copy, to stop "billion laughs"
/// documents from exhausting memory.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// Mappings with at least this many entries get a hash index for the
/// duplicate key check; smaller ones are scanned linearly.
const INDEX_THRESHOLD: usize = 16;

/// Hint for unknown aliases: a cron expression written without quotes starts with one.
const LITERAL_STAR: &str =
    " (quote the value if the `*` is meant literally, as in a cron expression)";

/// The handle that `!!` expands to.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

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

/// How a key is shown in messages: strings quoted, other scalars as text.
fn key_display(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        other => scalar_text(other),
    }
}

/// Shows user text in a message, shortened if it is long.
fn show(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("`{cut}...`")
    } else {
        format!("`{text}`")
    }
}

// ---------------------------------------------------------------------------
// Scalar resolution
// ---------------------------------------------------------------------------

/// Why text that looks like a number is not accepted as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumIssue {
    LeadingZero,
    OutOfRange,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn split_sign(s: &str) -> &str {
    s.strip_prefix(['-', '+']).unwrap_or(s)
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`. `None` if the text has another shape.
fn parse_int(s: &str) -> Option<Result<i64, NumIssue>> {
    if let Some(digits) = s.strip_prefix("0x") {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return Some(i64::from_str_radix(digits, 16).map_err(|_| NumIssue::OutOfRange));
    }
    if let Some(digits) = s.strip_prefix("0o") {
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        return Some(i64::from_str_radix(digits, 8).map_err(|_| NumIssue::OutOfRange));
    }
    let digits = split_sign(s);
    if !is_digits(digits) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Some(Err(NumIssue::LeadingZero));
    }
    Some(s.parse::<i64>().map_err(|_| NumIssue::OutOfRange))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`. `None` if the text has another
/// shape. A leading zero in the integer part is reported unless `allow_leading_zero`.
fn parse_float(s: &str, allow_leading_zero: bool) -> Option<Result<f64, NumIssue>> {
    let body = split_sign(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(exp) = exponent
        && !is_digits(split_sign(exp))
    {
        return None;
    }
    let int_part = match mantissa.split_once('.') {
        Some(("", frac)) => {
            if !is_digits(frac) {
                return None;
            }
            ""
        }
        Some((int, frac)) => {
            if !is_digits(int) || !(frac.is_empty() || is_digits(frac)) {
                return None;
            }
            int
        }
        None => {
            if !is_digits(mantissa) {
                return None;
            }
            mantissa
        }
    };
    if !allow_leading_zero && int_part.len() > 1 && int_part.starts_with('0') {
        return Some(Err(NumIssue::LeadingZero));
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Ok(f)),
        _ => Some(Err(NumIssue::OutOfRange)),
    }
}

/// `.inf`, `-.inf`, `.nan` and their core schema spellings.
fn special_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => None,
    }
}

fn parse_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Resolves a plain scalar (see the module documentation).
fn resolve_plain(s: &str) -> Value {
    // Fast path: most strings cannot be anything else.
    match s.as_bytes().first() {
        None => return Value::Null,
        Some(b'0'..=b'9' | b'+' | b'-' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F') => {
        }
        Some(_) => return Value::Str(s.to_owned()),
    }
    if parse_null(s) {
        return Value::Null;
    }
    if let Some(b) = parse_bool(s) {
        return Value::Bool(b);
    }
    if let Some(f) = special_float(s) {
        return Value::Float(f);
    }
    match parse_int(s) {
        Some(Ok(i)) => return Value::Int(i),
        Some(Err(_)) => return Value::Str(s.to_owned()),
        None => {}
    }
    match parse_float(s, false) {
        Some(Ok(f)) => Value::Float(f),
        _ => Value::Str(s.to_owned()),
    }
}

/// The tags this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// `!`: the value is taken as is (a string for scalars).
    NonSpecific,
    Str,
    Int,
    Float,
    Bool,
    Null,
    Seq,
    Map,
}

impl TagKind {
    fn name(self) -> &'static str {
        match self {
            TagKind::NonSpecific => "!",
            TagKind::Str => "!!str",
            TagKind::Int => "!!int",
            TagKind::Float => "!!float",
            TagKind::Bool => "!!bool",
            TagKind::Null => "!!null",
            TagKind::Seq => "!!seq",
            TagKind::Map => "!!map",
        }
    }
}

/// Classifies a tag, or returns how to show it if it is not supported.
fn classify_tag(tag: &Tag) -> Result<TagKind, String> {
    if tag.handle.is_empty() && tag.suffix == "!" {
        return Ok(TagKind::NonSpecific);
    }
    let full = format!("{}{}", tag.handle, tag.suffix);
    if let Some(name) = full.strip_prefix(CORE_TAG_PREFIX) {
        return match name {
            "str" => Ok(TagKind::Str),
            "int" => Ok(TagKind::Int),
            "float" => Ok(TagKind::Float),
            "bool" => Ok(TagKind::Bool),
            "null" => Ok(TagKind::Null),
            "seq" => Ok(TagKind::Seq),
            "map" => Ok(TagKind::Map),
            _ => Err(format!("!!{name}")),
        };
    }
    if tag.handle == "!" {
        Err(format!("!{}", tag.suffix))
    } else {
        Err(format!("!<{full}>"))
    }
}

fn unsupported_tag_message(shown: &str) -> String {
    format!(
        "unsupported tag `{shown}` (supported tags are !!str, !!int, !!float, !!bool, !!null, \
         !!seq and !!map)"
    )
}

/// Resolves a scalar that has an explicit type tag.
fn resolve_tagged(kind: TagKind, s: &str) -> Result<Value, String> {
    let tag = kind.name();
    match kind {
        TagKind::NonSpecific | TagKind::Str => Ok(Value::Str(s.to_owned())),
        TagKind::Int => match parse_int(s) {
            Some(Ok(i)) => Ok(Value::Int(i)),
            Some(Err(NumIssue::LeadingZero)) => {
                let digits = split_sign(s).trim_start_matches('0');
                let digits = if digits.is_empty() { "0" } else { digits };
                let hint = if s.starts_with('-') {
                    format!("write -{digits}")
                } else {
                    format!("write {digits}, or 0o{digits} for octal")
                };
                Err(format!(
                    "expected an integer for the {tag} tag, found {} (leading zeros are \
                     ambiguous: {hint})",
                    show(s)
                ))
            }
            Some(Err(NumIssue::OutOfRange)) => Err(format!(
                "integer {} is out of range for the {tag} tag (it must be between {} and {})",
                show(s),
                i64::MIN,
                i64::MAX
            )),
            None => Err(format!(
                "expected an integer for the {tag} tag, found {}",
                show(s)
            )),
        },
        TagKind::Float => {
            if let Some(f) = special_float(s) {
                return Ok(Value::Float(f));
            }
            match parse_float(s, true) {
                Some(Ok(f)) => Ok(Value::Float(f)),
                Some(Err(_)) => Err(format!("number {} is too large for the {tag} tag", show(s))),
                None => Err(format!(
                    "expected a number for the {tag} tag, found {}",
                    show(s)
                )),
            }
        }
        TagKind::Bool => parse_bool(s).map(Value::Bool).ok_or_else(|| {
            format!(
                "expected true or false for the {tag} tag, found {}",
                show(s)
            )
        }),
        TagKind::Null => {
            if parse_null(s) {
                Ok(Value::Null)
            } else {
                Err(format!(
                    "expected null, ~ or nothing for the {tag} tag, found {}",
                    show(s)
                ))
            }
        }
        TagKind::Seq | TagKind::Map => {
            Err(format!("the {tag} tag cannot be used on a scalar value"))
        }
    }
}

// ---------------------------------------------------------------------------
// Syntax errors
// ---------------------------------------------------------------------------

/// Turns the parser's message into one meant for people.
fn describe_syntax_error(info: &str) -> String {
    let text = match info {
        "mapping values are not allowed in this context" => {
            "found `:` where a mapping value is not allowed (check the indentation, or quote \
             the value if it contains `: `)"
        }
        "while parsing a block mapping, did not find expected key" => {
            "expected a `key: value` entry at this indentation (check the indentation of \
             this line)"
        }
        "while parsing a block collection, did not find expected '-' indicator" => {
            "expected a list item starting with `-` at this indentation (check the \
             indentation of this line)"
        }
        "block sequence entries are not allowed in this context" => {
            "found a list item (`-`) where none is allowed (start the list on its own \
             indented line)"
        }
        "mapping keys are not allowed in this context" => {
            "found a mapping key (`?`) where none is allowed"
        }
        "while parsing a flow sequence, expected ',' or ']'" => {
            "expected `,` or `]` in this flow list"
        }
        "while parsing a flow mapping, did not find expected ',' or '}'" => {
            "expected `,` or `}` in this flow mapping"
        }
        "while parsing a node, did not find expected node content" => {
            "expected a value here, found none"
        }
        "while scanning a quoted scalar, found unexpected end of stream" => {
            "unterminated quoted string: the closing quote is missing"
        }
        "while scanning a quoted scalar, found unexpected document indicator" => {
            "unterminated quoted string: found a document marker before the closing quote"
        }
        "invalid indentation in quoted scalar" => {
            "a quoted string continues on a line that is not indented enough (or its \
             closing quote is missing)"
        }
        "invalid trailing content after double-quoted scalar" => {
            "unexpected text after the closing quote"
        }
        "while parsing a quoted scalar, found unknown escape character" => {
            "unknown escape sequence in a double-quoted string (use single quotes to write a \
             backslash as is)"
        }
        "while scanning an anchor or alias, did not find expected alphabetic or numeric character" => {
            "expected an anchor or alias name after `&` or `*` (quote the value if it starts \
             with a literal `*` or `&`, as a cron expression does)"
        }
        "misplaced bracket" => "found a closing bracket that does not close anything",
        "illegal placement of ':' indicator" => {
            "found `:` where it is not allowed (is a flow collection missing its closing \
             bracket?)"
        }
        "tab cannot be used as indentation"
        | "tabs disallowed within this context (block indentation)"
        | "tabs disallowed in this context"
        | "while scanning a plain scalar, found a tab" => {
            "found a tab where it is not allowed (indent YAML with spaces)"
        }
        "':' must be followed by a valid YAML whitespace" => {
            "expected a space after `:` (a tab alone is not accepted here)"
        }
        "'-' must be followed by a valid YAML whitespace" => {
            "expected a space after `-` (a tab alone is not accepted here)"
        }
        "invalid indentation" => {
            "invalid indentation (this is indented less than the block it is in)"
        }
        "unexpected eof" => "unexpected end of the document",
        "recursion limit exceeded" => "flow lists and mappings are nested too deeply",
        "simple key expected" | "simple key expect ':'" => {
            "expected `:` after a mapping key (a key must fit on one line and be at most \
             1024 characters long)"
        }
        "wrongly indented line in block scalar" => {
            "a line of this block string (`|` or `>`) is indented less than its first line"
        }
        "comment intercepting the multiline text" => {
            "a comment cannot interrupt a multi-line unquoted string"
        }
        "invalid content after document end marker" => {
            "unexpected text after the document end marker `...`"
        }
        "found unprintable character" => "found a control character that YAML does not allow",
        "a byte order mark must not appear inside a document" => {
            "found a byte order mark (U+FEFF) inside the document"
        }
        "while scanning a block scalar, did not find expected comment or line break" => {
            "expected a line break or a comment after the block string indicator (`|` or `>`)"
        }
        "a block scalar content cannot start with a tab" => {
            "a block string (`|` or `>`) cannot start with a tab (indent it with spaces)"
        }
        "while scanning a block scalar, found an indentation indicator equal to 0" => {
            "the indentation indicator of a block string must be between 1 and 9, not 0"
        }
        "did not find expected <document start>" | "did not find expected <document-start>" => {
            "expected `---` to start the document after a `%` directive (quote values that \
             start with `%`)"
        }
        "missing explicit document end marker before directive" => {
            "a `%` directive is only allowed before the document (quote values that start \
             with `%`)"
        }
        "while scanning a directive, could not find expected directive name" => {
            "expected a directive name after `%` (quote values that start with `%`)"
        }
        "invalid indentation in flow construct" => {
            "a flow list or mapping (`[...]` or `{...}`) continues on a line that is not \
             indented enough"
        }
        "\"-\" is only valid inside a block" => {
            "found a `-` list item inside a flow list or mapping (`[...]` or `{...}`)"
        }
        "comments must be separated from other tokens by whitespace" => {
            "a comment (`#`) must be separated from the text before it by a space"
        }
        "while scanning a tag, did not find expected whitespace or line break" => {
            "expected a space after the tag"
        }
        "while parsing a tag, did not find expected tag URI" => "expected a tag name after `!`",
        "the handle wasn't declared" => {
            "undeclared tag handle (declare it with a `%TAG` directive)"
        }
        "':' may not precede any of `[{` in flow mapping" => {
            "expected a space between `:` and `[` or `{` in a flow mapping"
        }
        "plain scalar cannot start with '-' followed by ,[]{}" => {
            "an unquoted value cannot start with `-` followed by `,`, `[`, `]`, `{` or `}` \
             (quote it)"
        }
        _ => {
            if let Some(c) = info
                .strip_prefix("unexpected character: `")
                .and_then(|rest| rest.strip_suffix('\''))
            {
                return format!(
                    "unexpected character `{c}` (quote the value if it starts with this \
                     character)"
                );
            }
            return format!("invalid YAML: {info}");
        }
    };
    text.to_owned()
}

/// The 1-based column of the `|` or `>` that starts a block scalar header on this line:
/// the first one that follows a blank (or starts the line) and is followed only by
/// indentation/chomping indicators, blanks and an optional comment.
fn block_indicator_col(line: &str) -> Option<usize> {
    let chars: Vec<char> = line.chars().collect();
    (0..chars.len()).find_map(|i| {
        if !matches!(chars[i], '|' | '>') || (i > 0 && !matches!(chars[i - 1], ' ' | '\t')) {
            return None;
        }
        let mut rest = chars[i + 1..]
            .iter()
            .skip_while(|c| matches!(c, '+' | '-' | '0'..='9'));
        let tail = rest.find(|c| !matches!(c, ' ' | '\t'));
        matches!(tail, None | Some('#')).then_some(i + 1)
    })
}

// ---------------------------------------------------------------------------
// Tree building
// ---------------------------------------------------------------------------

/// Hashable form of a non-string scalar key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum OtherKey {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
}

fn other_key(value: &Value) -> Option<OtherKey> {
    match value {
        Value::Null => Some(OtherKey::Null),
        Value::Bool(b) => Some(OtherKey::Bool(*b)),
        Value::Int(i) => Some(OtherKey::Int(*i)),
        Value::Float(f) => {
            let f = if f.is_nan() {
                f64::NAN
            } else if *f == 0.0 {
                0.0
            } else {
                *f
            };
            Some(OtherKey::Float(f.to_bits()))
        }
        Value::Str(_) | Value::Seq(_) | Value::Map(_) => None,
    }
}

/// Whether two scalar keys are the same key.
fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Str(_), _) | (_, Value::Str(_)) => false,
        _ => other_key(a).is_some() && other_key(a) == other_key(b),
    }
}

/// Size bookkeeping for a finished node.
#[derive(Debug, Clone, Copy)]
struct Extent {
    /// Number of nodes in the subtree.
    size: usize,
    /// Number of nested collection levels (0 for a scalar).
    height: usize,
}

const SCALAR_EXTENT: Extent = Extent { size: 1, height: 0 };

/// What a mapping expects next.
#[derive(Debug)]
enum Slot {
    /// A key.
    Key,
    /// The value for this key.
    Value(Node),
    /// The value of a merge key `<<`.
    Merge,
    /// A value to drop (its key was a duplicate or invalid).
    Skip,
}

/// The duplicate-key index of a mapping's keys (built once it is large).
#[derive(Debug, Default)]
struct KeyIndex {
    str_index: HashMap<String, usize, crate::NameHasher>,
    other_index: HashMap<OtherKey, usize, crate::NameHasher>,
    indexed: bool,
}

impl KeyIndex {
    /// Where `key` is among `entries` (the mapping this index describes).
    fn find(&self, entries: &[(Node, Node)], key: &Value) -> Option<usize> {
        if !self.indexed {
            return entries.iter().position(|(k, _)| same_key(&k.value, key));
        }
        match key {
            Value::Str(s) => self.str_index.get(s.as_str()).copied(),
            other => other_key(other).and_then(|k| self.other_index.get(&k).copied()),
        }
    }

    fn index_entry(&mut self, key: &Value, i: usize) {
        match key {
            Value::Str(s) => {
                self.str_index.entry(s.clone()).or_insert(i);
            }
            other => {
                if let Some(k) = other_key(other) {
                    self.other_index.entry(k).or_insert(i);
                }
            }
        }
    }

    /// Records that `entries` gained its last entry.
    fn added(&mut self, entries: &[(Node, Node)]) {
        if self.indexed {
            let i = entries.len() - 1;
            self.index_entry(&entries[i].0.value, i);
        } else if entries.len() >= INDEX_THRESHOLD {
            self.indexed = true;
            for (i, (k, _)) in entries.iter().enumerate() {
                self.index_entry(&k.value, i);
            }
        }
    }
}

#[derive(Debug)]
struct MapFrame {
    entries: Vec<(Node, Node)>,
    keys: KeyIndex,
    slot: Slot,
    /// Where the first `<<` key is.
    merge_at: Option<Pos>,
    /// Mappings to merge in when the mapping ends.
    merges: Vec<Node>,
}

impl MapFrame {
    fn new() -> MapFrame {
        MapFrame {
            entries: Vec::new(),
            keys: KeyIndex::default(),
            slot: Slot::Key,
            merge_at: None,
            merges: Vec::new(),
        }
    }

    fn find(&self, key: &Value) -> Option<usize> {
        self.keys.find(&self.entries, key)
    }

    fn insert(&mut self, key: Node, value: Node) {
        self.entries.push((key, value));
        self.keys.added(&self.entries);
    }
}

#[derive(Debug)]
enum FrameKind {
    Seq(Vec<Node>),
    Map(Box<MapFrame>),
}

#[derive(Debug)]
struct Frame {
    pos: Pos,
    anchor: usize,
    extent: Extent,
    kind: FrameKind,
    /// A block sequence that starts at a `-` that may belong to its first item.
    maybe_indentless: bool,
}

#[derive(Debug)]
struct Anchored {
    node: Node,
    extent: Extent,
}

struct Builder<'a> {
    text: &'a str,
    /// Byte offsets of line starts, computed when first needed.
    line_starts: Option<Vec<usize>>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    root: Option<Node>,
    errors: Vec<YamlError>,
    alias_nodes: usize,
    /// Lines of the whole document before `text` (when parsing a piece of it).
    line_offset: usize,
    /// Nesting levels of the whole document around `text`.
    base_depth: usize,
    /// The root mapping has a merge key `<<`.
    root_merge: bool,
    /// The root mapping's key index, kept for checks across pieces.
    root_keys: Option<KeyIndex>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Builder<'a> {
        Builder {
            text,
            line_starts: None,
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            errors: Vec::new(),
            alias_nodes: 0,
            line_offset: 0,
            base_depth: 0,
            root_merge: false,
            root_keys: None,
        }
    }

    /// A builder for the piece of a larger document that starts after
    /// `line_offset` lines and sits `base_depth` collections deep in it.
    fn piece(text: &'a str, line_offset: usize, base_depth: usize) -> Builder<'a> {
        Builder {
            line_offset,
            base_depth,
            ..Builder::new(text)
        }
    }

    /// The position of a parser marker in the whole document.
    fn pos(&self, m: &Marker) -> Pos {
        let mut pos = Pos::from_marker(m);
        pos.line += self.line_offset;
        pos
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(YamlError {
            pos,
            message: message.into(),
        });
    }

    fn finish(mut self) -> Result<Option<Node>, Vec<YamlError>> {
        if self.errors.is_empty() {
            Ok(self.root)
        } else {
            self.errors.sort_by_key(|e| e.pos);
            Err(self.errors)
        }
    }

    /// Feeds all events to the builder. Stops at the first fatal error.
    fn run(&mut self) {
        let mut parser = Parser::new_from_str(self.text);
        let mut documents = 0usize;
        loop {
            let (event, span) = match parser.next_event() {
                None => break,
                Some(Ok(x)) => x,
                Some(Err(e)) => {
                    self.syntax_error(&e);
                    break;
                }
            };
            let pos = self.pos(&span.start);
            let go_on = match event {
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => true,
                Event::StreamEnd => false,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        self.error(pos, "only one YAML document is allowed");
                        false
                    } else {
                        true
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.on_scalar(text, style, anchor, tag.as_deref(), pos);
                    true
                }
                Event::Alias(id) => self.on_alias(id, pos),
                Event::SequenceStart(anchor, tag) => {
                    let (pos, maybe_indentless) =
                        self.sequence_pos(pos, anchor != 0 || tag.is_some());
                    self.on_start(pos, anchor, tag.as_deref(), false, maybe_indentless)
                }
                Event::MappingStart(anchor, tag) => {
                    self.on_start(pos, anchor, tag.as_deref(), true, false)
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    self.on_end();
                    true
                }
            };
            if !go_on {
                break;
            }
        }
    }

    fn syntax_error(&mut self, e: &ScanError) {
        let mut pos = self.pos(e.marker());
        let info = e.info();
        let message = match info {
            "while parsing node, found unknown anchor" => match self.alias_name(pos) {
                Some(name) => format!(
                    "unknown alias `*{name}`: no anchor `&{name}` is defined before it{LITERAL_STAR}"
                ),
                None => {
                    format!(
                        "unknown alias: no anchor with this name is defined before it{LITERAL_STAR}"
                    )
                }
            },
            "while parsing a block mapping, did not find expected key" => {
                if let Some(col) = self.dash_before(pos) {
                    pos.col = col;
                    "found a list item where a `key: value` entry was expected (check the \
                     indentation of this line)"
                        .to_owned()
                } else {
                    describe_syntax_error(info)
                }
            }
            _ => describe_syntax_error(info),
        };
        self.error(pos, message);
    }

    // --- source text access, for better positions and messages -----------

    /// The text of a 1-based line (of the whole document), without its line break. A byte
    /// order mark at the start of the first line is left out, as the parser does not count it
    /// as a column.
    fn line_text(&mut self, global_line: usize) -> Option<&'a str> {
        let line = global_line.checked_sub(self.line_offset)?;
        let text = self.text;
        let starts = self.line_starts.get_or_insert_with(|| {
            let bytes = text.as_bytes();
            let mut starts = vec![0];
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\n' => starts.push(i + 1),
                    b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                    _ => {}
                }
                i += 1;
            }
            starts
        });
        let start = *starts.get(line.checked_sub(1)?)?;
        let end = starts.get(line).copied().unwrap_or(text.len());
        let s = text.get(start..end)?;
        let s = s.trim_end_matches(['\n', '\r']);
        Some(if global_line == 1 {
            s.strip_prefix('\u{feff}').unwrap_or(s)
        } else {
            s
        })
    }

    /// If the text before `pos` on its line ends with a `-` entry indicator followed only by
    /// blanks (and maybe a comment), the 1-based column of that `-`.
    fn dash_before(&mut self, pos: Pos) -> Option<usize> {
        let line: Vec<char> = self.line_text(pos.line)?.chars().collect();
        let end = (pos.col - 1).min(line.len());
        let blank = |c: &char| matches!(c, ' ' | '\t');
        (0..end).rev().find_map(|dash| {
            let is_indicator = line[dash] == '-'
                && (dash == 0 || blank(&line[dash - 1]))
                && line.get(dash + 1).is_none_or(blank);
            if !is_indicator {
                return None;
            }
            let rest = line[dash + 1..end].iter().find(|c| !blank(c));
            matches!(rest, None | Some('#')).then_some(dash + 1)
        })
    }

    /// The parser places an indentless sequence (`key:\n- a`) at its first item's content;
    /// move it back to the `-`. Also returns whether this may still be an indentless sequence
    /// whose first item starts with `-` (`key:\n- - a`); [`Builder::push`] decides that when
    /// the first item arrives.
    fn sequence_pos(&mut self, pos: Pos, has_properties: bool) -> (Pos, bool) {
        if has_properties {
            return (pos, false);
        }
        let Some(line) = self.line_text(pos.line) else {
            return (pos, false);
        };
        match line.chars().nth(pos.col - 1) {
            Some('[') => (pos, false),
            Some('-') => (pos, true),
            _ => match self.dash_before(pos) {
                Some(col) => (Pos { col, ..pos }, false),
                None => (pos, false),
            },
        }
    }

    /// The parser places a block scalar (`|` or `>`) at its first content line; move it back
    /// to the indicator.
    fn block_scalar_pos(&mut self, pos: Pos) -> Pos {
        let Some(line) = self.line_text(pos.line) else {
            return pos;
        };
        if matches!(line.chars().nth(pos.col - 1), Some('|' | '>')) {
            return pos;
        }
        let mut line_no = pos.line;
        while line_no > 1 {
            line_no -= 1;
            let Some(line) = self.line_text(line_no) else {
                return pos;
            };
            if line.trim_matches([' ', '\t']).is_empty() {
                // Leading empty lines belong to the scalar.
                continue;
            }
            return match block_indicator_col(line) {
                Some(col) => Pos { line: line_no, col },
                None => pos,
            };
        }
        pos
    }

    /// The name of the alias at `pos` (which points at its `*`).
    fn alias_name(&mut self, pos: Pos) -> Option<String> {
        let line = self.line_text(pos.line)?;
        let mut chars = line.chars().skip(pos.col - 1);
        if chars.next() != Some('*') {
            return None;
        }
        let name: String = chars
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
            .collect();
        if name.is_empty() { None } else { Some(name) }
    }

    // --- events ------------------------------------------------------------

    fn on_scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&Tag>,
        pos: Pos,
    ) {
        let plain = style == ScalarStyle::Plain;
        let pos = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
            && anchor == 0
            && tag.is_none()
        {
            self.block_scalar_pos(pos)
        } else {
            pos
        };
        if self.stack.is_empty() && plain && text.is_empty() && anchor == 0 && tag.is_none() {
            // An empty document.
            return;
        }
        let value = match tag {
            None if plain => resolve_plain(&text),
            None => Value::Str(text.into_owned()),
            Some(tag) => match classify_tag(tag) {
                Ok(kind) => match resolve_tagged(kind, &text) {
                    Ok(v) => v,
                    Err(message) => {
                        self.error(pos, message);
                        Value::Str(text.into_owned())
                    }
                },
                Err(shown) => {
                    self.error(pos, unsupported_tag_message(&shown));
                    Value::Str(text.into_owned())
                }
            },
        };
        let merge_key = plain && tag.is_none() && matches!(&value, Value::Str(s) if s == "<<");
        self.push(Node { value, pos }, SCALAR_EXTENT, anchor, merge_key);
    }

    /// Returns false if parsing must stop.
    fn on_alias(&mut self, id: usize, pos: Pos) -> bool {
        let depth = self.base_depth + self.stack.len();
        let Some(anchored) = self.anchors.get(&id) else {
            let message = match self.alias_name(pos) {
                Some(name) => {
                    format!("alias `*{name}` is used inside the node that anchor `&{name}` defines")
                }
                None => "alias is used inside the node its anchor defines".to_owned(),
            };
            self.error(pos, message);
            self.push(
                Node {
                    value: Value::Null,
                    pos,
                },
                SCALAR_EXTENT,
                0,
                false,
            );
            return true;
        };
        let extent = anchored.extent;
        if depth + extent.height > MAX_DEPTH {
            self.error(
                pos,
                format!("lists and mappings are nested too deeply (more than {MAX_DEPTH} levels)"),
            );
            return false;
        }
        self.alias_nodes = self.alias_nodes.saturating_add(extent.size);
        if self.alias_nodes > MAX_ALIAS_NODES {
            self.error(
                pos,
                format!("aliases expand to too many nodes (more than {MAX_ALIAS_NODES} in total)"),
            );
            return false;
        }
        let mut node = anchored.node.clone();
        node.pos = pos;
        self.push(node, extent, 0, false);
        true
    }

    /// Returns false if parsing must stop.
    fn on_start(
        &mut self,
        pos: Pos,
        anchor: usize,
        tag: Option<&Tag>,
        map: bool,
        maybe_indentless: bool,
    ) -> bool {
        if self.base_depth + self.stack.len() >= MAX_DEPTH {
            self.error(
                pos,
                format!("lists and mappings are nested too deeply (more than {MAX_DEPTH} levels)"),
            );
            return false;
        }
        if let Some(tag) = tag {
            let what = if map { "a mapping" } else { "a list" };
            match classify_tag(tag) {
                Ok(TagKind::NonSpecific) => {}
                Ok(TagKind::Map) if map => {}
                Ok(TagKind::Seq) if !map => {}
                Ok(kind) => {
                    self.error(
                        pos,
                        format!("the {} tag cannot be used on {what}", kind.name()),
                    );
                }
                Err(shown) => self.error(pos, unsupported_tag_message(&shown)),
            }
        }
        let kind = if map {
            FrameKind::Map(Box::new(MapFrame::new()))
        } else {
            FrameKind::Seq(Vec::new())
        };
        self.stack.push(Frame {
            pos,
            anchor,
            extent: Extent { size: 1, height: 1 },
            kind,
            maybe_indentless,
        });
        true
    }

    fn on_end(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let value = match frame.kind {
            FrameKind::Seq(items) => Value::Seq(items),
            FrameKind::Map(mut m) => {
                if self.stack.is_empty() {
                    self.root_merge = m.merge_at.is_some();
                }
                for source in std::mem::take(&mut m.merges) {
                    if let Value::Map(entries) = source.value {
                        for (k, v) in entries {
                            if m.find(&k.value).is_none() {
                                m.insert(k, v);
                            }
                        }
                    }
                }
                if self.stack.is_empty() {
                    self.root_keys = Some(m.keys);
                }
                Value::Map(m.entries)
            }
        };
        let node = Node {
            value,
            pos: frame.pos,
        };
        self.push(node, frame.extent, frame.anchor, false);
    }

    /// Hands a finished node to its parent (or makes it the root).
    fn push(&mut self, node: Node, extent: Extent, anchor: usize, merge_key: bool) {
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    extent,
                },
            );
        }
        // A block sequence placed at the same spot as its first item is an indentless one
        // whose `-` comes before (`key:\n- - a`).
        if let Some(Frame {
            pos: seq_pos,
            kind: FrameKind::Seq(items),
            maybe_indentless: true,
            ..
        }) = self.stack.last()
            && items.is_empty()
            && *seq_pos == node.pos
            && let Some(col) = self.dash_before(*seq_pos)
            && let Some(frame) = self.stack.last_mut()
        {
            frame.pos.col = col;
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        frame.extent.size = frame.extent.size.saturating_add(extent.size);
        frame.extent.height = frame.extent.height.max(extent.height + 1);
        let m = match &mut frame.kind {
            FrameKind::Seq(items) => {
                items.push(node);
                return;
            }
            FrameKind::Map(m) => m,
        };
        match std::mem::replace(&mut m.slot, Slot::Key) {
            Slot::Key => {
                m.slot = if merge_key {
                    if let Some(first) = m.merge_at {
                        self.errors.push(YamlError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key \"<<\" (first defined at line {})",
                                first.line
                            ),
                        });
                        Slot::Skip
                    } else {
                        m.merge_at = Some(node.pos);
                        Slot::Merge
                    }
                } else if matches!(node.value, Value::Seq(_) | Value::Map(_)) {
                    self.errors.push(YamlError {
                        pos: node.pos,
                        message: format!(
                            "mapping keys must be scalars, found {}",
                            node.type_name()
                        ),
                    });
                    Slot::Skip
                } else if let Some(i) = m.find(&node.value) {
                    self.errors.push(YamlError {
                        pos: node.pos,
                        message: format!(
                            "duplicate key {} (first defined at line {})",
                            key_display(&node.value),
                            m.entries[i].0.pos.line
                        ),
                    });
                    Slot::Skip
                } else {
                    Slot::Value(node)
                };
            }
            Slot::Value(key) => m.insert(key, node),
            Slot::Merge => {
                let wanted = "the merge key `<<` needs a mapping or a list of mappings";
                match node.value {
                    Value::Map(_) => m.merges.push(node),
                    Value::Seq(items) => {
                        for item in items {
                            if matches!(item.value, Value::Map(_)) {
                                m.merges.push(item);
                            } else {
                                self.errors.push(YamlError {
                                    pos: item.pos,
                                    message: format!(
                                        "{wanted}, found {} in the list",
                                        item.type_name()
                                    ),
                                });
                            }
                        }
                    }
                    _ => {
                        let found = node.type_name();
                        self.errors.push(YamlError {
                            pos: node.pos,
                            message: format!("{wanted}, found {found}"),
                        });
                    }
                }
            }
            Slot::Skip => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        match parse(text) {
            Ok(Some(node)) => node,
            Ok(None) => panic!("no document in {text:?}"),
            Err(errors) => panic!("errors in {text:?}: {errors:?}"),
        }
    }

    fn errs(text: &str) -> Vec<YamlError> {
        match parse(text) {
            Ok(node) => panic!("expected errors for {text:?}, got {node:?}"),
            Err(errors) => errors,
        }
    }

    fn one_err(text: &str) -> YamlError {
        let mut errors = errs(text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    fn pos(line: usize, col: usize) -> Pos {
        Pos { line, col }
    }

    /// The value of `v: <text>`.
    fn scalar(text: &str) -> Value {
        let doc = format!("v: {text}\n");
        p(&doc).get("v").expect("key v").value.clone()
    }

    fn s(text: &str) -> Value {
        Value::Str(text.to_owned())
    }

    #[test]
    fn positions_of_block_mapping() {
        let doc = p("schedules:\n  a:\n    every: 30s\n");
        assert_eq!(doc.pos, pos(1, 1));
        let Value::Map(entries) = &doc.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, pos(1, 1));
        let a = doc.get("schedules").and_then(|n| n.get("a")).expect("a");
        assert_eq!(a.pos, pos(3, 5));
        let Value::Map(entries) = &a.value else {
            panic!("not a map")
        };
        let (key, value) = &entries[0];
        assert_eq!(key.as_str(), Some("every"));
        assert_eq!(key.pos, pos(3, 5));
        assert_eq!(value.as_str(), Some("30s"));
        assert_eq!(value.pos, pos(3, 12));
    }

    #[test]
    fn positions_of_nested_flow_collections() {
        let doc = p("x: {a: 1, b: [x, y]}\n");
        let x = doc.get("x").expect("x");
        assert_eq!(x.pos, pos(1, 4));
        let Value::Map(entries) = &x.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.pos, pos(1, 5));
        assert_eq!(entries[0].1.pos, pos(1, 8));
        assert_eq!(entries[0].1.value, Value::Int(1));
        assert_eq!(entries[1].0.pos, pos(1, 11));
        let b = &entries[1].1;
        assert_eq!(b.pos, pos(1, 14));
        let Value::Seq(items) = &b.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(1, 15));
        assert_eq!(items[1].pos, pos(1, 18));
        assert_eq!(items[1].as_str(), Some("y"));
    }

    #[test]
    fn positions_of_sequences() {
        let doc = p("a:\n  - x\nb:\n-   y\n- - z\nc: [1, 2]\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.pos, pos(2, 3));
        let Value::Seq(items) = &a.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(2, 5));
        // Indentless sequence: positioned at its first `-`.
        let b = doc.get("b").expect("b");
        assert_eq!(b.pos, pos(4, 1));
        let Value::Seq(items) = &b.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(4, 5));
        assert_eq!(items[1].pos, pos(5, 3));
        let Value::Seq(inner) = &items[1].value else {
            panic!("not a list")
        };
        assert_eq!(inner[0].pos, pos(5, 5));
        assert_eq!(doc.get("c").expect("c").pos, pos(6, 4));
    }

    #[test]
    fn positions_of_indentless_sequences() {
        fn seq(node: &Node) -> &[Node] {
            match &node.value {
                Value::Seq(items) => items,
                _ => panic!("not a list: {node:?}"),
            }
        }
        let doc =
            p("k:\n- - x\n  - y\n-   - z\nl:\n-\n- b\nm:\n- # c\n  x\nn:\n- -x\no:\n  - -x\n");
        let k = doc.get("k").expect("k");
        assert_eq!(k.pos, pos(2, 1));
        assert_eq!(seq(k)[0].pos, pos(2, 3));
        assert_eq!(seq(&seq(k)[0])[1].pos, pos(3, 5));
        assert_eq!(seq(k)[1].pos, pos(4, 5));
        let l = doc.get("l").expect("l");
        assert_eq!(l.pos, pos(6, 1));
        assert_eq!(seq(l)[0].value, Value::Null);
        assert_eq!(doc.get("m").expect("m").pos, pos(9, 1));
        let n = doc.get("n").expect("n");
        assert_eq!(n.pos, pos(12, 1));
        assert_eq!(seq(n)[0].value, s("-x"));
        assert_eq!(seq(n)[0].pos, pos(12, 3));
        assert_eq!(doc.get("o").expect("o").pos, pos(14, 3));
        let doc = p("- a:\n  - x\n  b:\n  - &q y\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].get("a").expect("a").pos, pos(2, 3));
        assert_eq!(items[0].get("b").expect("b").pos, pos(4, 3));
    }

    #[test]
    fn position_of_anchored_and_tagged_values_includes_properties() {
        let doc = p("a: &x 1\nb: !!str 2\nc: *x\n");
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        assert_eq!(doc.get("b").expect("b").pos, pos(2, 4));
        assert_eq!(doc.get("c").expect("c").pos, pos(3, 4));
    }

    #[test]
    fn multibyte_characters_count_as_one_column() {
        let doc = p("- ünïcødé: 日本語\n  näme: €uro\n- {ß: 日本, k: v}\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        let first = &items[0];
        let value = first.get("ünïcødé").expect("key");
        assert_eq!(value.as_str(), Some("日本語"));
        assert_eq!(value.pos, pos(1, 12));
        assert_eq!(first.get("näme").expect("näme").pos, pos(2, 9));
        let Value::Map(entries) = &items[1].value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1.pos, pos(3, 7));
        assert_eq!(entries[1].0.pos, pos(3, 11));
        assert_eq!(entries[1].1.pos, pos(3, 14));
    }

    #[test]
    fn tabs_count_as_one_column() {
        let doc = p("a: \t1\nbb:\t\t'x'\nc: [\tx,\ty]\nd: e\t# comment\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.value, Value::Int(1));
        assert_eq!(a.pos, pos(1, 5));
        assert_eq!(doc.get("bb").expect("bb").pos, pos(2, 6));
        let Value::Seq(items) = &doc.get("c").expect("c").value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(3, 6));
        assert_eq!(items[1].pos, pos(3, 9));
        assert_eq!(doc.get("d").expect("d").value, s("e"));
    }

    #[test]
    fn tab_alone_after_colon_is_reported() {
        let e = one_err("a:\tb\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "expected a space after `:` (a tab alone is not accepted here)"
        );
    }

    #[test]
    fn tab_indentation_is_a_syntax_error() {
        let e = one_err("a:\n\tb: 1\n");
        assert_eq!(e.pos, pos(2, 2));
        assert!(e.message.contains("tab"), "{}", e.message);
    }

    #[test]
    fn crlf_line_endings() {
        let doc = p("a: 1\r\nb:\r\n  c: x y\r\n  d: [1]\r\n");
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let b = doc.get("b").expect("b");
        assert_eq!(b.pos, pos(3, 3));
        let c = b.get("c").expect("c");
        assert_eq!(c.as_str(), Some("x y"));
        assert_eq!(c.pos, pos(3, 6));
        assert_eq!(b.get("d").expect("d").pos, pos(4, 6));
        let e = one_err("a: 1\r\nb: 2\r\na: 3\r\n");
        assert_eq!(e.pos, pos(3, 1));
    }

    #[test]
    fn crlf_indentless_sequence_position() {
        let doc = p("a:\r\n- x\r\n- y\r\n");
        let a = doc.get("a").expect("a");
        assert_eq!(a.pos, pos(2, 1));
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        let doc = p("\u{feff}a: 1\n");
        assert_eq!(doc.pos, pos(1, 1));
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let e = one_err("\u{feff}a: *nope\n");
        assert_eq!(
            e.message,
            "unknown alias `*nope`: no anchor `&nope` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
        assert_eq!(e.pos, pos(1, 4));
    }

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
    fn nulls() {
        for text in ["null", "Null", "NULL", "~", ""] {
            assert_eq!(scalar(text), Value::Null, "{text:?}");
        }
        for text in ["nULL", "none", "None", "nil"] {
            assert_eq!(scalar(text), s(text), "{text:?}");
        }
        // The empty value sits at the `:`.
        let doc = p("a:\nb: 1\n");
        assert_eq!(doc.get("a").expect("a").value, Value::Null);
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 2));
        let doc = p("- \n- x\n");
        let Value::Seq(items) = doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].value, Value::Null);
    }

    #[test]
    fn booleans() {
        for text in ["true", "True", "TRUE"] {
            assert_eq!(scalar(text), Value::Bool(true), "{text}");
        }
        for text in ["false", "False", "FALSE"] {
            assert_eq!(scalar(text), Value::Bool(false), "{text}");
        }
        assert_eq!(scalar("tRUE"), s("tRUE"));
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        for text in [
            "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y",
            "n", "N",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
        let doc = p("countries: [SE, NO, DK]\n");
        let Value::Seq(items) = &doc.get("countries").expect("countries").value else {
            panic!("not a list")
        };
        assert_eq!(items[1].value, s("NO"));
    }

    #[test]
    fn integers() {
        assert_eq!(scalar("0"), Value::Int(0));
        assert_eq!(scalar("-0"), Value::Int(0));
        assert_eq!(scalar("+0"), Value::Int(0));
        assert_eq!(scalar("42"), Value::Int(42));
        assert_eq!(scalar("-17"), Value::Int(-17));
        assert_eq!(scalar("+5"), Value::Int(5));
        assert_eq!(scalar("0x1F"), Value::Int(31));
        assert_eq!(scalar("0xff"), Value::Int(255));
        assert_eq!(scalar("0o17"), Value::Int(15));
        assert_eq!(scalar("9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(scalar("-9223372036854775808"), Value::Int(i64::MIN));
    }

    #[test]
    fn leading_zeros_stay_strings() {
        for text in [
            "0755", "007", "-01", "+01", "00", "-00", "01.5", "00.5", "-01.5", "01e3",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
        assert_eq!(scalar("0.5"), Value::Float(0.5));
        assert_eq!(scalar("-0.5"), Value::Float(-0.5));
    }

    #[test]
    fn non_core_integers_stay_strings() {
        for text in [
            "1_000",
            "0b101",
            "0X1F",
            "0O17",
            "0x",
            "0o",
            "0o8",
            "0xG",
            "+0x1F",
            "-0x1F",
            "0x-5",
            "1,000",
            "9223372036854775808",
            "-9223372036854775809",
            "0x8000000000000000",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(scalar("1.5"), Value::Float(1.5));
        assert_eq!(scalar("1e3"), Value::Float(1000.0));
        assert_eq!(scalar("1E-2"), Value::Float(0.01));
        assert_eq!(scalar(".5"), Value::Float(0.5));
        assert_eq!(scalar("-.5"), Value::Float(-0.5));
        assert_eq!(scalar("+1.5e+2"), Value::Float(150.0));
        assert_eq!(scalar("1."), Value::Float(1.0));
        assert_eq!(scalar("0.0"), Value::Float(0.0));
        for text in [".inf", ".Inf", ".INF", "+.inf"] {
            assert_eq!(scalar(text), Value::Float(f64::INFINITY), "{text}");
        }
        for text in ["-.inf", "-.Inf", "-.INF"] {
            assert_eq!(scalar(text), Value::Float(f64::NEG_INFINITY), "{text}");
        }
        for text in [".nan", ".NaN", ".NAN"] {
            assert!(
                matches!(scalar(text), Value::Float(f) if f.is_nan()),
                "{text}"
            );
        }
        for text in [
            ".", "1e", "e3", "1.5.2", "inf", "nan", "NaN", "infinity", ".iNf", "1e400", "1.5x",
            "-.nan", "1__0.5", "1 .5",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
    }

    #[test]
    fn other_plain_scalars_are_strings() {
        for text in [
            "30s",
            "2026-12-01T09:00:00+01:00",
            "2026-12-01",
            "12:30",
            "app.tasks.cleanup",
            "hello world",
            "-x",
            "+",
            "~x",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
        assert_eq!(scalar("'*/5 * * * *'"), s("*/5 * * * *"));
        let doc = p("cron: '*/5 * * * *'\n");
        assert_eq!(doc.get("cron").expect("cron").value, s("*/5 * * * *"));
    }

    #[test]
    fn unquoted_cron_expressions_get_a_hint() {
        let e = one_err("cron: */5 * * * *\n");
        assert_eq!(e.pos, pos(1, 7));
        assert_eq!(
            e.message,
            "unknown alias `*/5`: no anchor `&/5` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
        let e = one_err("cron: * * * * *\n");
        assert_eq!(e.pos, pos(1, 7));
        assert!(e.message.contains("cron expression"), "{}", e.message);
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(scalar("'1'"), s("1"));
        assert_eq!(scalar("\"true\""), s("true"));
        assert_eq!(scalar("\"null\""), s("null"));
        assert_eq!(scalar("''"), s(""));
        assert_eq!(scalar("\"0x1F\""), s("0x1F"));
        let doc = p("a: |\n  42\nb: >\n  true\n  x\n");
        assert_eq!(doc.get("a").expect("a").value, s("42\n"));
        assert_eq!(doc.get("b").expect("b").value, s("true x\n"));
    }

    #[test]
    fn block_scalars_are_positioned_at_their_indicator() {
        let text = "a: |\n  42\nb: >- # note | here\n\n  \n  x\nc: |\nd: !!str |\n  y\ne|: |2\n   z\n- |\n";
        let text = &text[..text.len() - 5];
        let doc = p(text);
        assert_eq!(doc.get("a").expect("a").pos, pos(1, 4));
        let b = doc.get("b").expect("b");
        assert_eq!(b.value, s("\n\nx"));
        assert_eq!(b.pos, pos(3, 4));
        let c = doc.get("c").expect("c");
        assert_eq!(c.value, s(""));
        assert_eq!(c.pos, pos(7, 4));
        assert_eq!(doc.get("d").expect("d").pos, pos(8, 4));
        let e = doc.get("e|").expect("e|");
        assert_eq!(e.value, s(" z\n"));
        assert_eq!(e.pos, pos(10, 5));
        let doc = p("- |\n  x\n- >\n");
        let Value::Seq(items) = &doc.value else {
            panic!("not a list")
        };
        assert_eq!(items[0].pos, pos(1, 3));
        assert_eq!(items[1].pos, pos(3, 3));
        assert_eq!(items[1].value, s(""));
    }

    #[test]
    fn explicit_core_tags() {
        assert_eq!(scalar("!!str 42"), s("42"));
        assert_eq!(scalar("!!str"), s(""));
        assert_eq!(scalar("!!int \"42\""), Value::Int(42));
        assert_eq!(scalar("!!int 0x10"), Value::Int(16));
        assert_eq!(scalar("!!float 3"), Value::Float(3.0));
        assert_eq!(scalar("!!float '2.5'"), Value::Float(2.5));
        assert_eq!(scalar("!!float 01.5"), Value::Float(1.5));
        assert_eq!(scalar("!!float -.inf"), Value::Float(f64::NEG_INFINITY));
        assert_eq!(scalar("!!bool 'true'"), Value::Bool(true));
        assert_eq!(scalar("!!null ''"), Value::Null);
        assert_eq!(scalar("!!null"), Value::Null);
        assert_eq!(scalar("! 42"), s("42"));
        assert_eq!(scalar("!<tag:yaml.org,2002:int> 7"), Value::Int(7));
        let doc = p("a: !!seq [1]\nb: !!map {c: 1}\nc: ! [x]\n");
        assert_eq!(doc.get("a").expect("a").type_name(), "a list");
        assert_eq!(doc.get("b").expect("b").type_name(), "a mapping");
        assert_eq!(doc.get("c").expect("c").type_name(), "a list");
    }

    #[test]
    fn explicit_tags_that_do_not_fit() {
        let e = one_err("a: 1\nevery: !!int 30s\n");
        assert_eq!(e.pos, pos(2, 8));
        assert_eq!(
            e.message,
            "expected an integer for the !!int tag, found `30s`"
        );
        let e = one_err("a: !!int 0755\n");
        assert_eq!(
            e.message,
            "expected an integer for the !!int tag, found `0755` (leading zeros are ambiguous: \
             write 755, or 0o755 for octal)"
        );
        let e = one_err("a: !!int -007\n");
        assert_eq!(
            e.message,
            "expected an integer for the !!int tag, found `-007` (leading zeros are ambiguous: \
             write -7)"
        );
        let e = one_err("a: !!int 99999999999999999999\n");
        assert!(e.message.contains("out of range"), "{}", e.message);
        let e = one_err("a: !!float abc\n");
        assert_eq!(
            e.message,
            "expected a number for the !!float tag, found `abc`"
        );
        let e = one_err("a: !!float 1e999\n");
        assert!(e.message.contains("too large"), "{}", e.message);
        let e = one_err("a: !!bool yes\n");
        assert_eq!(
            e.message,
            "expected true or false for the !!bool tag, found `yes`"
        );
        assert_eq!(e.pos, pos(1, 4));
        let e = one_err("a: !!null x\n");
        assert_eq!(
            e.message,
            "expected null, ~ or nothing for the !!null tag, found `x`"
        );
        let e = one_err("a: !!seq x\n");
        assert_eq!(e.message, "the !!seq tag cannot be used on a scalar value");
        let e = one_err("a: !!str [x]\n");
        assert_eq!(e.message, "the !!str tag cannot be used on a list");
        let e = one_err("a: !!int {x: 1}\n");
        assert_eq!(e.message, "the !!int tag cannot be used on a mapping");
    }

    #[test]
    fn unsupported_tags() {
        let e = one_err("a: !foo x\n");
        assert_eq!(e.pos, pos(1, 4));
        assert!(
            e.message
                .starts_with("unsupported tag `!foo` (supported tags are !!str"),
            "{}",
            e.message
        );
        let e = one_err("a: !!binary aGVsbG8=\n");
        assert!(
            e.message.starts_with("unsupported tag `!!binary`"),
            "{}",
            e.message
        );
        let e = one_err("a: !!set {x}\n");
        assert!(
            e.message.starts_with("unsupported tag `!!set`"),
            "{}",
            e.message
        );
        let e = one_err("a: !<tag:example.com:x> x\n");
        assert!(
            e.message
                .starts_with("unsupported tag `!<tag:example.com:x>`"),
            "{}",
            e.message
        );
        let e = one_err("- !custom\n  a: 1\n");
        assert!(
            e.message.starts_with("unsupported tag `!custom`"),
            "{}",
            e.message
        );
        assert_eq!(e.pos, pos(1, 3));
    }

    #[test]
    fn anchors_and_aliases() {
        let doc = p("base: &b\n  x: 1\n  y: [a, b]\ncopy: *b\nlist: [&s hi, *s]\n");
        let base = doc.get("base").expect("base");
        let copy = doc.get("copy").expect("copy");
        assert_eq!(copy.value, base.value);
        assert_eq!(copy.pos, pos(4, 7));
        // Inner nodes keep the position where they were written.
        assert_eq!(copy.get("x").expect("x").pos, pos(2, 6));
        let Value::Seq(items) = &doc.get("list").expect("list").value else {
            panic!("not a list")
        };
        assert_eq!(items[1].value, s("hi"));
        assert_eq!(items[1].pos, pos(5, 15));
    }

    #[test]
    fn redefined_anchor_uses_latest_definition() {
        let doc = p("a: &x 1\nb: *x\nc: &x 2\nd: *x\n");
        assert_eq!(doc.get("b").expect("b").value, Value::Int(1));
        assert_eq!(doc.get("d").expect("d").value, Value::Int(2));
    }

    #[test]
    fn unknown_alias() {
        let e = one_err("a: 1\nb: *missing\n");
        assert_eq!(e.pos, pos(2, 4));
        assert_eq!(
            e.message,
            "unknown alias `*missing`: no anchor `&missing` is defined before it (quote the \
             value if the `*` is meant literally, as in a cron expression)"
        );
        // Used before it is defined.
        let e = one_err("a: *x\nb: &x 1\n");
        assert_eq!(e.pos, pos(1, 4));
        let e = one_err("a: [1, *nope]\n");
        assert_eq!(
            e.message,
            "unknown alias `*nope`: no anchor `&nope` is defined before it (quote the value if the \
             `*` is meant literally, as in a cron expression)"
        );
    }

    #[test]
    fn alias_inside_its_own_anchor() {
        let e = one_err("a: &x [1, *x]\n");
        assert_eq!(e.pos, pos(1, 11));
        assert_eq!(
            e.message,
            "alias `*x` is used inside the node that anchor `&x` defines"
        );
    }

    #[test]
    fn alias_bomb_is_stopped() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .starts_with("aliases expand to too many nodes"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn deep_nesting_is_stopped() {
        let depth = MAX_DEPTH + 10;
        let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let doc = "- ".repeat(depth * 4) + "x\n";
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("nested too deeply"),
            "{errors:?}"
        );
        // Aliases cannot be used to get around the limit.
        let inner = format!("{}x{}", "[".repeat(200), "]".repeat(200));
        let doc = format!(
            "a: &a {inner}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
        );
        let errors = errs(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.contains("nested too deeply"),
            "{errors:?}"
        );
    }

    #[test]
    fn merge_keys() {
        let doc = p("base: &base\n  a: 1\n  b: 2\njob:\n  <<: *base\n  b: 3\n  c: 4\n");
        let job = doc.get("job").expect("job");
        assert_eq!(job.get("a").expect("a").value, Value::Int(1));
        assert_eq!(job.get("b").expect("b").value, Value::Int(3));
        assert_eq!(job.get("c").expect("c").value, Value::Int(4));
        assert!(job.get("<<").is_none());
        // Position of merged entries: where they were written.
        assert_eq!(job.get("a").expect("a").pos, pos(2, 6));
        // Explicit keys win even when they come before `<<`.
        let doc = p("base: &base {a: 1}\njob:\n  a: 2\n  <<: *base\n");
        assert_eq!(
            doc.get("job").and_then(|j| j.get("a")).map(|n| &n.value),
            Some(&Value::Int(2))
        );
    }

    #[test]
    fn merge_key_with_a_list_earlier_wins() {
        let doc = p("x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nz:\n  <<: [*x, *y]\n  d: 4\n");
        let z = doc.get("z").expect("z");
        assert_eq!(z.get("a").expect("a").value, Value::Int(1));
        assert_eq!(z.get("b").expect("b").value, Value::Int(1));
        assert_eq!(z.get("c").expect("c").value, Value::Int(2));
        assert_eq!(z.get("d").expect("d").value, Value::Int(4));
        let Value::Map(entries) = &z.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 4);
    }

    #[test]
    fn nested_merges_and_inline_merge() {
        let doc =
            p("a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n  <<q: 3\nd:\n  <<: {z: 9}\n");
        let c = doc.get("c").expect("c");
        assert_eq!(c.get("x").expect("x").value, Value::Int(1));
        assert_eq!(c.get("y").expect("y").value, Value::Int(2));
        assert_eq!(c.get("<<q").expect("<<q").value, Value::Int(3));
        let d = doc.get("d").expect("d");
        assert_eq!(d.get("z").expect("z").value, Value::Int(9));
    }

    #[test]
    fn quoted_merge_key_is_an_ordinary_key() {
        let doc = p("a: &a {x: 1}\nb:\n  \"<<\": *a\n");
        let b = doc.get("b").expect("b");
        assert!(b.get("x").is_none());
        assert!(b.get("<<").is_some());
    }

    #[test]
    fn merge_key_errors() {
        let e = one_err("a: 1\nb:\n  <<: 5\n");
        assert_eq!(e.pos, pos(3, 7));
        assert_eq!(
            e.message,
            "the merge key `<<` needs a mapping or a list of mappings, found an integer"
        );
        let e = one_err("a: &a {x: 1}\nb:\n  <<: [*a, foo]\n");
        assert_eq!(e.pos, pos(3, 12));
        assert_eq!(
            e.message,
            "the merge key `<<` needs a mapping or a list of mappings, found a string in the list"
        );
        let e = one_err("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n");
        assert_eq!(e.pos, pos(4, 3));
        assert_eq!(e.message, "duplicate key \"<<\" (first defined at line 3)");
    }

    #[test]
    fn duplicate_key() {
        let e = one_err("a: 1\nb: 2\na: 3\n");
        assert_eq!(e.pos, pos(3, 1));
        assert_eq!(e.message, "duplicate key \"a\" (first defined at line 1)");
    }

    #[test]
    fn duplicate_key_in_nested_mapping() {
        let e = one_err("schedules:\n  a:\n    every: 1s\n    task: x\n    every: 2s\n");
        assert_eq!(e.pos, pos(5, 5));
        assert_eq!(
            e.message,
            "duplicate key \"every\" (first defined at line 3)"
        );
        let e = one_err("x: {a: 1, b: 2, a: 3}\n");
        assert_eq!(e.pos, pos(1, 17));
    }

    #[test]
    fn all_duplicates_reported_and_first_kept() {
        let text = "a: 1\nb: 2\na: 3\nc:\n  d: 1\n  d: 2\nb: 4\n";
        let errors = errs(text);
        let got: Vec<(Pos, &str)> = errors.iter().map(|e| (e.pos, e.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (pos(3, 1), "duplicate key \"a\" (first defined at line 1)"),
                (pos(6, 3), "duplicate key \"d\" (first defined at line 5)"),
                (pos(7, 1), "duplicate key \"b\" (first defined at line 2)"),
            ]
        );
        // The builder keeps the first occurrence.
        let mut b = Builder::new(text);
        b.run();
        let root = b.root.expect("root");
        assert_eq!(root.get("a").expect("a").value, Value::Int(1));
        assert_eq!(root.get("b").expect("b").value, Value::Int(2));
        let Value::Map(entries) = &root.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn duplicates_compare_resolved_values() {
        let e = one_err("a: 1\n\"a\": 2\n");
        assert_eq!(e.pos, pos(2, 1));
        assert_eq!(e.message, "duplicate key \"a\" (first defined at line 1)");
        let doc = p("1: x\n\"1\": y\n");
        let Value::Map(entries) = &doc.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
        let e = one_err("1: x\n0x1: y\n");
        assert_eq!(e.message, "duplicate key 1 (first defined at line 1)");
        let e = one_err("true: x\nTrue: y\n");
        assert_eq!(e.message, "duplicate key true (first defined at line 1)");
        let e = one_err("~: x\nnull: y\n");
        assert_eq!(e.message, "duplicate key null (first defined at line 1)");
        // `1` and `1.0` are different types.
        assert!(parse("1: x\n1.0: y\n").is_ok());
    }

    #[test]
    fn duplicates_in_large_mappings_use_the_index() {
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!("k{i}: {i}\n"));
        }
        for i in 0..100 {
            text.push_str(&format!("{i}: {i}\n"));
        }
        text.push_str("k50: again\n50: again\n");
        let errors = errs(&text);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].pos, pos(201, 1));
        assert_eq!(
            errors[0].message,
            "duplicate key \"k50\" (first defined at line 51)"
        );
        assert_eq!(
            errors[1].message,
            "duplicate key 50 (first defined at line 151)"
        );
    }

    #[test]
    fn non_scalar_keys() {
        let e = one_err("? [a, b]\n: 1\nc: 2\n");
        assert_eq!(e.pos, pos(1, 3));
        assert_eq!(e.message, "mapping keys must be scalars, found a list");
        let e = one_err("{? {a: 1}: x}\n");
        assert_eq!(e.message, "mapping keys must be scalars, found a mapping");
        let e = one_err("k: &k {a: 1}\n*k : x\n");
        assert_eq!(e.message, "mapping keys must be scalars, found a mapping");
    }

    #[test]
    fn second_document_is_an_error() {
        let e = one_err("a: 1\n---\nb: 2\n");
        assert_eq!(e.pos, pos(2, 1));
        assert_eq!(e.message, "only one YAML document is allowed");
        let e = one_err("a: 1\n...\nb: 2\n");
        assert_eq!(e.pos, pos(3, 1));
        let e = one_err("---\na: 1\n---\n");
        assert_eq!(e.pos, pos(3, 1));
        // A leading `---` and a trailing `...` are fine.
        assert!(parse("---\na: 1\n...\n").is_ok());
    }

    #[test]
    fn errors_from_before_a_syntax_error_are_kept() {
        let errors = errs("a: 1\na: 2\nb: [\n");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].pos, pos(2, 1));
    }

    #[test]
    fn syntax_error_positions() {
        let e = one_err("a: 1\nb: c: d\n");
        assert_eq!(e.pos, pos(2, 5));
        assert!(
            e.message
                .starts_with("found `:` where a mapping value is not allowed")
        );

        let e = one_err("a:\n  b: 1\n c: 2\n");
        assert_eq!(e.pos, pos(3, 2));
        assert!(
            e.message.starts_with("expected a `key: value` entry"),
            "{}",
            e.message
        );

        let e = one_err("a: 1\n- b\n");
        assert_eq!(e.pos, pos(2, 1));
        assert_eq!(
            e.message,
            "found a list item where a `key: value` entry was expected (check the indentation \
             of this line)"
        );

        let e = one_err("- a\nb: 1\n");
        assert_eq!(e.pos, pos(2, 1));
        assert!(
            e.message
                .starts_with("expected a list item starting with `-`")
        );

        let e = one_err("x: {a: 1 b: 2}\n");
        assert_eq!(e.pos, pos(1, 11));
        assert_eq!(e.message, "expected `,` or `}` in this flow mapping");

        let e = one_err("a: 'abc\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "unterminated quoted string: the closing quote is missing"
        );

        let e = one_err("a: @x\n");
        assert_eq!(e.pos, pos(1, 4));
        assert_eq!(
            e.message,
            "unexpected character `@` (quote the value if it starts with this character)"
        );

        let e = one_err("a: - b\n");
        assert_eq!(e.pos, pos(1, 4));

        let e = one_err("é: 1\n日本: x: y\n");
        assert_eq!(e.pos, pos(2, 6));

        let e = one_err("a: ]\n");
        assert_eq!(e.pos, pos(1, 4));
    }

    #[test]
    fn syntax_error_messages_are_lower_case_without_period() {
        for text in [
            "a: [1, 2\nb: 3\n",
            "a: {x: 1\n",
            "a: \"abc\nb: 1\n",
            "a: \"\\q\"\n",
            "a: &\n",
            "a: |\n  x\n y\n",
            "a:\n\tb: 1\n",
        ] {
            for e in errs(text) {
                let first = e.message.chars().next().expect("message");
                assert!(first.is_lowercase(), "{text:?}: {}", e.message);
                assert!(!e.message.ends_with('.'), "{text:?}: {}", e.message);
                assert!(
                    !e.message.contains("while parsing"),
                    "{text:?}: {}",
                    e.message
                );
            }
        }
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
