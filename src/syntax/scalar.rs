//! Scalar values: what type a plain scalar resolves to, and what an explicit tag makes of one.
//!
//! The rules are those in the [`syntax`](super) module documentation: the YAML 1.2 core schema,
//! made stricter so that nothing silently changes type (leading zeros, YAML 1.1 booleans and
//! out-of-range numbers stay strings), and the `!!` core tags forcing a type.

use saphyr_parser::Tag;

use super::Value;

/// The handle that `!!` expands to.
const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

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
pub(super) fn resolve_plain(s: &str) -> Value {
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
pub(super) enum TagKind {
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
    pub(super) fn name(self) -> &'static str {
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
pub(super) fn classify_tag(tag: &Tag) -> Result<TagKind, String> {
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

pub(super) fn unsupported_tag_message(shown: &str) -> String {
    format!(
        "unsupported tag `{shown}` (supported tags are !!str, !!int, !!float, !!bool, !!null, \
         !!seq and !!map)"
    )
}

/// Resolves a scalar that has an explicit type tag.
pub(super) fn resolve_tagged(kind: TagKind, s: &str) -> Result<Value, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::testing::*;

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
}
