//! Mapping keys: when two keys are the same key, and the index that finds a repeated key in a
//! large mapping.
//!
//! Keys compare by their resolved value, so `a` and `"a"` are the same key while `1` and `"1"`
//! are not. A mapping is scanned linearly until it has [`INDEX_THRESHOLD`] entries; from then
//! on a [`KeyIndex`] hashes its keys.

use std::collections::HashMap;

use super::{Node, Value, scalar_text};

/// Mappings with at least this many entries get a hash index for the
/// duplicate key check; smaller ones are scanned linearly.
const INDEX_THRESHOLD: usize = 16;

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
pub(super) fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Str(_), _) | (_, Value::Str(_)) => false,
        _ => other_key(a).is_some() && other_key(a) == other_key(b),
    }
}

/// The duplicate-key index of a mapping's keys (built once it is large).
#[derive(Debug, Default)]
pub(super) struct KeyIndex {
    str_index: HashMap<String, usize, crate::NameHasher>,
    other_index: HashMap<OtherKey, usize, crate::NameHasher>,
    indexed: bool,
}

impl KeyIndex {
    /// Where `key` is among `entries` (the mapping this index describes).
    pub(super) fn find(&self, entries: &[(Node, Node)], key: &Value) -> Option<usize> {
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
    pub(super) fn added(&mut self, entries: &[(Node, Node)]) {
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

/// How a key is shown in messages: strings quoted, other scalars as text.
pub(super) fn key_display(value: &Value) -> String {
    match value {
        Value::Str(s) => format!("{s:?}"),
        other => scalar_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::testing::*;

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
}
