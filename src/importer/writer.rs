//! The one writer of imported schedule files: an [`Import`] as YAML text.
//!
//! Values are written as JSON, which is YAML 1.2 flow syntax, so every
//! string is quoted and every number and list keeps its exact form; keys
//! and comments are laid out in block style for a person to read.
//!
//! Invariant: the text parses back to the model's values (names, keys and
//! values unchanged); comments never break a line.

use serde_json::{Map, Value as Json};

use super::{Import, Imported};

/// The schedule file for `import`.
pub fn render(import: &Import) -> String {
    let mut out = String::new();
    for line in &import.header {
        comment(&mut out, "", line);
    }
    if !import.unsupported.is_empty() {
        comment(
            &mut out,
            "",
            "Not converted (see `metronome import` output):",
        );
        for u in &import.unsupported {
            comment(&mut out, "", &format!("  {u}"));
        }
    }
    if let Some(tz) = &import.timezone {
        out.push_str(&format!("timezone: {}\n", json(&Json::from(tz.as_str()))));
    }
    if !import.defaults.is_empty() {
        out.push_str(&format!(
            "defaults: {}\n",
            json(&Json::Object(import.defaults.clone()))
        ));
    }
    if !import.routes.is_empty() {
        out.push_str("routes:\n");
        for r in &import.routes {
            comment(&mut out, "  ", &r.comment);
            out.push_str(&format!(
                "  {}: {}\n",
                json(&Json::from(r.key.as_str())),
                json(&Json::Object(r.options.clone()))
            ));
        }
    }
    if import.entries.is_empty() {
        out.push_str("schedules: {}\n");
    } else {
        out.push_str("schedules:\n");
        for e in &import.entries {
            entry(&mut out, e);
        }
    }
    out
}

fn entry(out: &mut String, e: &Imported) {
    for c in &e.comments {
        comment(out, "  ", c);
    }
    out.push_str(&format!("  {}:\n", json(&Json::from(e.name.as_str()))));
    for (k, v) in &e.body {
        out.push_str(&format!("    {k}: {}\n", json(v)));
    }
}

/// `# text` at `indent`, one line per line of `text`.
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        out.push_str(indent);
        out.push('#');
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// Compact JSON; `\u2028`-style separators and other line breaks are
/// escaped by serde_json already, so a value stays on its line.
fn json(v: &Json) -> String {
    serde_json::to_string(v).expect("JSON values serialize")
}

/// An entry body from key/value pairs, in the order given.
pub fn body<'a>(pairs: impl IntoIterator<Item = (&'a str, Json)>) -> Map<String, Json> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::{Route, Unsupported};
    use serde_json::json;

    #[test]
    fn renders_block_keys_with_json_values_and_comments() {
        let import = Import {
            header: vec!["Imported from x".into(), "two\nlines".into()],
            timezone: Some("Europe/Berlin".into()),
            defaults: body([("queue", json!("default"))]),
            routes: vec![Route {
                key: "re:a\\.b".into(),
                options: body([("queue", json!("q"))]),
                comment: "task_routes[0]".into(),
            }],
            entries: vec![Imported {
                name: "a: \"b\"".into(),
                comments: vec!["from beat_schedule['a']".into()],
                body: body([("task", json!("t")), ("crontab", json!({"minute": 0}))]),
            }],
            unsupported: vec![Unsupported {
                item: "beat_schedule['x']".into(),
                reason: "custom schedule".into(),
            }],
        };
        let text = render(&import);
        assert_eq!(
            text,
            "# Imported from x\n# two\n# lines\n# Not converted (see `metronome import` output):\n\
             #   beat_schedule['x']: custom schedule\ntimezone: \"Europe/Berlin\"\n\
             defaults: {\"queue\":\"default\"}\nroutes:\n  # task_routes[0]\n  \"re:a\\\\.b\": {\"queue\":\"q\"}\n\
             schedules:\n  # from beat_schedule['a']\n  \"a: \\\"b\\\"\":\n    task: \"t\"\n    crontab: {\"minute\":0}\n"
        );
    }

    #[test]
    fn no_entries_is_an_empty_mapping() {
        assert_eq!(render(&Import::default()), "schedules: {}\n");
    }
}
