//! Checks of single values in a node tree, collecting [`FieldError`]s.
//!
//! [`Checker`] reads one value as a string, number, duration, instant, zone
//! or set of options, and records what is wrong with it instead of
//! stopping, so one pass reports every bad field. The entry validator and
//! the YAML file loader share it.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value as Json;

use super::hints::suggest;
use super::{Expires, Options};
use crate::duration;
use crate::syntax::{Node, Pos, Value};

/// A problem with one field, located in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub pos: Pos,
    /// Dotted path of the field, e.g. `schedules.nightly.options.priority`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The keys of `options` (and of `defaults` and each route).
pub const OPTION_KEYS: &[&str] = &[
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "expires",
    "headers",
    "time_limit",
    "soft_time_limit",
];

/// Collects errors while walking a node tree.
pub(crate) struct Checker<'a> {
    pub errors: &'a mut Vec<FieldError>,
}

impl Checker<'_> {
    pub fn err(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.err_at(node.pos, path, message);
    }

    pub fn err_at(&mut self, pos: Pos, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            pos,
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Reports that `node` is not `what`: "expected {what}, found {type}".
    pub fn mismatch(&mut self, node: &Node, path: &str, what: &str) {
        self.err(
            node,
            path,
            format!("expected {what}, found {}", node.type_name()),
        );
    }

    /// Reports keys of `map` outside `allowed`, suggesting the closest.
    pub fn known_keys(&mut self, map: &Node, path: &str, allowed: &[&str]) {
        let Value::Map(pairs) = &map.value else {
            return;
        };
        for (k, _) in pairs {
            let key = k
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| render_scalar(k));
            if !allowed.contains(&key.as_str()) {
                let hint = suggest(&key, allowed)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                let p = join(path, &key);
                self.errors.push(FieldError {
                    pos: k.pos,
                    path: p,
                    message: format!(
                        "unknown key `{key}`{hint} (expected one of: {})",
                        allowed.join(", ")
                    ),
                });
            }
        }
    }

    pub fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.mismatch(node, path, "a string");
                None
            }
        }
    }

    /// One of a few words, each standing for a value: "unknown {what}
    /// `{text}`; expected a, b or c" for any other string.
    pub fn word<T: Copy>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let text = self.string(node, path)?;
        if let Some((_, v)) = choices.iter().find(|(w, _)| *w == text) {
            return Some(*v);
        }
        let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
        let (last, rest) = words.split_last().expect("at least one choice");
        self.err(
            node,
            path,
            format!(
                "unknown {what} `{text}`; expected {} or {last}",
                rest.join(", ")
            ),
        );
        None
    }

    pub fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.mismatch(node, path, "true or false");
                None
            }
        }
    }

    pub fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) if f.is_finite() => Some(*f),
            _ => {
                self.mismatch(node, path, "a number");
                None
            }
        }
    }

    /// A duration: a number of seconds or text like `1h30m`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<SignedDuration> {
        let r = match &node.value {
            Value::Int(i) => Ok(SignedDuration::from_secs(*i)),
            Value::Float(f) => {
                duration::from_secs_f64(*f).ok_or_else(|| "the number is out of range".to_string())
            }
            Value::Str(s) => duration::parse(s).map_err(|e| e.to_string()),
            _ => Err(format!(
                "expected a duration such as 30s or 1h30m, found {}",
                node.type_name()
            )),
        };
        r.map_err(|m| self.err(node, path, m)).ok()
    }

    /// An instant: RFC 3339 with an offset, or a civil date-time read in `tz`.
    pub fn instant(&mut self, node: &Node, path: &str, tz: &TimeZone) -> Option<Timestamp> {
        let text = self.string(node, path)?;
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Some(ts);
        }
        match text.parse::<jiff::civil::DateTime>() {
            Ok(dt) => match dt.to_zoned(tz.clone()) {
                Ok(z) => Some(z.timestamp()),
                Err(e) => {
                    self.err(node, path, format!("invalid instant `{text}`: {e}"));
                    None
                }
            },
            Err(_) => {
                self.err(
                    node,
                    path,
                    format!("invalid instant `{text}`; expected RFC 3339 such as 2026-12-01T09:00:00+01:00"),
                );
                None
            }
        }
    }

    pub fn timezone(&mut self, node: &Node, path: &str) -> Option<(String, TimeZone)> {
        let name = self.string(node, path)?;
        match TimeZone::get(&name) {
            Ok(tz) => Some((name, tz)),
            Err(_) => {
                self.err(
                    node,
                    path,
                    format!(
                        "unknown time zone `{name}`; expected an IANA name such as Europe/Berlin"
                    ),
                );
                None
            }
        }
    }

    /// Celery options: an entry's `options`, or a file's `defaults` and
    /// `routes`.
    pub fn options(&mut self, node: &Node, path: &str) -> Options {
        let mut o = Options::default();
        let Value::Map(pairs) = &node.value else {
            self.mismatch(node, path, "a mapping of options");
            return o;
        };
        self.known_keys(node, path, OPTION_KEYS);
        for (k, v) in pairs {
            let Some(key) = k.as_str() else { continue };
            let p = join(path, key);
            match key {
                "queue" => o.queue = self.string(v, &p),
                "exchange" => o.exchange = self.string(v, &p),
                "routing_key" => o.routing_key = self.string(v, &p),
                "priority" => match &v.value {
                    Value::Int(i) if (0..=255).contains(i) => o.priority = Some(*i as u8),
                    Value::Int(i) => {
                        self.err(v, &p, format!("priority {i} is out of range 0..=255"))
                    }
                    _ => self.mismatch(v, &p, "an integer 0..=255"),
                },
                "expires" => o.expires = self.expires(v, &p),
                "time_limit" | "soft_time_limit" => {
                    let n = self.number(v, &p);
                    if n.is_some_and(|n| n <= 0.0) {
                        self.err(v, &p, format!("{key} must be positive"));
                    }
                    if key == "time_limit" {
                        o.time_limit = n;
                    } else {
                        o.soft_time_limit = n;
                    }
                }
                "headers" => match v.to_json() {
                    Json::Object(m) => o.headers = m,
                    _ => self.mismatch(v, &p, "a mapping of headers"),
                },
                _ => {}
            }
        }
        o
    }

    /// `options.expires`: an RFC 3339 instant, or a positive duration.
    fn expires(&mut self, v: &Node, p: &str) -> Option<Expires> {
        match &v.value {
            Value::Str(s) if s.parse::<Timestamp>().is_ok() => s.parse().ok().map(Expires::At),
            _ => self.duration(v, p).and_then(|d| {
                if d.is_positive() {
                    Some(Expires::After(d))
                } else {
                    self.err(v, p, "expires must be positive");
                    None
                }
            }),
        }
    }
}

/// `key` under `path`: `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A scalar as it would be written: strings bare, anything else as JSON.
pub(super) fn render_scalar(n: &Node) -> String {
    match n.to_json() {
        Json::String(s) => s,
        other => other.to_string(),
    }
}
