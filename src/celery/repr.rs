//! Python `repr()` of JSON values, for the `argsrepr`/`kwargsrepr` headers
//! that Celery shows in logs and monitoring tools (Flower).

use serde_json::Value;

/// Celery's `saferepr` limit for `argsrepr`/`kwargsrepr`.
pub const MAX_LEN: usize = 1024;

/// Renders `v` as Python's `repr` would render the decoded value, cut to
/// [`MAX_LEN`] characters (ending in `...` when cut).
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    if out.chars().count() > MAX_LEN {
        let cut: String = out.chars().take(MAX_LEN - 3).collect();
        return cut + "...";
    }
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(k, out);
                out.push_str(": ");
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// Python's float repr: shortest round-trip digits, `.0` for integral
/// values, exponent form outside 1e-4..1e16.
fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust's `{:e}` gives the shortest digits: 1e16, 1.5e-5.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("integer exponent");
        return format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { s + ".0" }
}

/// Python's str repr: single quotes unless the text has `'` and no `"`.
fn string(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_repr() {
        assert_eq!(repr(&json!([2, 3])), "[2, 3]");
        assert_eq!(repr(&json!({"z": 1})), "{'z': 1}");
        assert_eq!(
            repr(&json!([
                null,
                true,
                false,
                1.0,
                0.5,
                "a'b",
                "x\"y",
                "it's \"q\""
            ])),
            r#"[None, True, False, 1.0, 0.5, "a'b", 'x"y', 'it\'s "q"']"#
        );
        assert_eq!(
            repr(&json!([1e16, 1.5e-5, 123456.0, -0.0001])),
            "[1e+16, 1.5e-05, 123456.0, -0.0001]"
        );
        assert_eq!(
            repr(&json!(["naïve ☃", "tab\there"])),
            "['naïve ☃', 'tab\\there']"
        );
        assert_eq!(
            repr(&json!({"a": {"b": [1, {"c": null}]}})),
            "{'a': {'b': [1, {'c': None}]}}"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let r = repr(&json!(["x".repeat(5000)]));
        assert_eq!(r.chars().count(), MAX_LEN);
        assert!(r.ends_with("..."));
    }
}
