//! One row of `metronome_schedule` ([`Row`], its [`Columns`]) and the
//! conversions between a row and the JSON body of an entry.
//!
//! Owns the mapping of entry keys to columns: a validated body becomes
//! [`Columns`] with [`Columns::from_body`], and a row becomes the body as
//! written with [`Row::to_json`] (defaults left out).
//!
//! **Invariant**: a row reaches the scheduler only through
//! [`Row::to_entry`], the validator YAML files and API bodies use.

use serde_json::{Map, Value as Json};

use crate::entry::{self, Context, Entry, FieldError};

/// Why a row is not an entry.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A JSON column holds text that does not parse.
    #[error("{column}: the column is not valid JSON: {error}")]
    Json {
        column: &'static str,
        error: serde_json::Error,
    },
    /// The row does not validate; the errors name the field.
    #[error("{}", entry::render_errors(.0))]
    Invalid(Vec<FieldError>),
}

/// One row of `metronome_schedule`, JSON columns as text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub name: String,
    #[sqlx(flatten)]
    pub cols: Columns,
    pub version: i64,
}

impl Row {
    /// The entry as written: the keys of a YAML entry, defaults left out.
    pub fn to_json(&self) -> Result<Map<String, Json>, RowError> {
        self.cols.to_json()
    }

    /// Validates the row with the shared validator. Errors name the field.
    pub fn to_entry(&self, ctx: &Context) -> Result<Entry, RowError> {
        let body = self.to_json()?;
        entry::validate_json(&self.name, &Json::Object(body), ctx).map_err(RowError::Invalid)
    }
}

/// The columns of an entry (everything but its name and version): read
/// into a [`Row`], written from a validated body.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct Columns {
    pub task: String,
    pub cron: Option<String>,
    pub crontab: Option<String>,
    pub every: Option<String>,
    pub solar: Option<String>,
    pub at: Option<String>,
    pub timezone: Option<String>,
    pub args: String,
    pub kwargs: String,
    pub options: String,
    pub enabled: bool,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub misfire: Option<String>,
    pub grace: Option<String>,
    pub jitter: Option<String>,
    pub dst: Option<String>,
    pub description: Option<String>,
}

/// The text of a JSON column, parsed.
fn json_column(column: &'static str, v: &str) -> Result<Json, RowError> {
    serde_json::from_str::<Json>(v).map_err(|error| RowError::Json { column, error })
}

impl Columns {
    /// The entry as written: the keys of a YAML entry, defaults left out.
    pub fn to_json(&self) -> Result<Map<String, Json>, RowError> {
        let mut m = Map::new();
        let text = |v: &Option<String>| v.clone().map(Json::String);
        m.insert("task".into(), Json::String(self.task.clone()));
        for (k, v) in [
            ("cron", text(&self.cron)),
            ("every", text(&self.every)),
            ("at", text(&self.at)),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        for (k, v) in [("crontab", &self.crontab), ("solar", &self.solar)] {
            if let Some(v) = v {
                m.insert(k.into(), json_column(k, v)?);
            }
        }
        if let Some(v) = text(&self.timezone) {
            m.insert("timezone".into(), v);
        }
        for (k, v) in [
            ("args", &self.args),
            ("kwargs", &self.kwargs),
            ("options", &self.options),
        ] {
            let v = json_column(k, v)?;
            let empty = matches!(&v, Json::Array(a) if a.is_empty())
                || matches!(&v, Json::Object(o) if o.is_empty());
            if !empty {
                m.insert(k.into(), v);
            }
        }
        if !self.enabled {
            m.insert("enabled".into(), Json::Bool(false));
        }
        for (k, v) in [
            ("start_at", &self.start_at),
            ("end_at", &self.end_at),
            ("misfire", &self.misfire),
            ("grace", &self.grace),
            ("jitter", &self.jitter),
        ] {
            if let Some(v) = text(v) {
                m.insert(k.into(), v);
            }
        }
        if let Some(v) = &self.dst {
            m.insert("dst".into(), json_column("dst", v)?);
        }
        if let Some(v) = text(&self.description) {
            m.insert("description".into(), v);
        }
        Ok(m)
    }

    /// Splits a body that has passed [`entry::validate_json`] into columns.
    pub fn from_body(body: &Map<String, Json>) -> Columns {
        let text = |k: &str| {
            body.get(k).and_then(|v| match v {
                Json::String(s) => Some(s.clone()),
                Json::Null => None,
                other => Some(other.to_string()),
            })
        };
        let json = |k: &str| body.get(k).filter(|v| !v.is_null()).map(Json::to_string);
        Columns {
            task: text("task").unwrap_or_default(),
            cron: text("cron"),
            crontab: json("crontab"),
            every: text("every"),
            solar: json("solar"),
            at: text("at"),
            timezone: text("timezone"),
            args: json("args").unwrap_or_else(|| "[]".into()),
            kwargs: json("kwargs").unwrap_or_else(|| "{}".into()),
            options: json("options").unwrap_or_else(|| "{}".into()),
            enabled: body.get("enabled").and_then(Json::as_bool).unwrap_or(true),
            start_at: text("start_at"),
            end_at: text("end_at"),
            misfire: text("misfire"),
            grace: text("grace"),
            jitter: text("jitter"),
            dst: json("dst"),
            description: text("description"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{SOURCE, context};
    use serde_json::json;

    fn row_from(body: &Json) -> Row {
        let cols = Columns::from_body(body.as_object().unwrap());
        Row {
            name: "n".into(),
            cols,
            version: 1,
        }
    }

    #[test]
    fn a_body_survives_columns_and_back_and_validates_like_yaml() {
        let body = json!({"task": "app.t", "crontab": {"minute": "*/15", "hour": "9-17"},
            "timezone": "Europe/Berlin", "args": [1, "two"], "kwargs": {"force": true},
            "options": {"queue": "q", "priority": 7, "expires": 300}, "enabled": false,
            "misfire": "all", "grace": "10m", "jitter": 30, "description": "d"});
        let row = row_from(&body);
        let back = Json::Object(row.to_json().unwrap());
        let mut want = body.clone();
        want["jitter"] = json!("30"); // durations are kept as text
        assert_eq!(back, want);
        let e = row.to_entry(&context(None)).unwrap();
        assert_eq!(e.options.priority, Some(7));
        assert!(!e.enabled);
        assert_eq!(&*e.origin.source, SOURCE);
    }

    #[test]
    fn field_errors_name_the_field_without_a_prefix() {
        let errs = entry::validate_json(
            "n",
            &json!({"task": "t", "every": "1s", "options": {"priority": 256}, "kwargs": [1]}),
            &context(None),
        )
        .unwrap_err();
        let text = entry::render_errors(&errs);
        assert!(
            text.contains("options.priority: priority 256 is out of range"),
            "{text}"
        );
        assert!(text.contains("kwargs: expected a mapping"), "{text}");
    }

    #[test]
    fn row_errors_display_as_the_strings_they_replace() {
        let mut row = row_from(&json!({"task": "t", "every": "1s"}));
        row.cols.kwargs = "{not json".into();
        let err = row.to_entry(&context(None)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kwargs: the column is not valid JSON: "),
            "{err}"
        );
        let row = row_from(&json!({"task": "t", "every": "1s", "options": {"priority": 256}}));
        let err = row.to_entry(&context(None)).unwrap_err();
        let errs = entry::validate_json(
            "n",
            &json!({"task": "t", "every": "1s", "options": {"priority": 256}}),
            &context(None),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), entry::render_errors(&errs));
    }

    #[test]
    fn json_nodes_keep_types() {
        let n = crate::syntax::Node::from_json(&json!({"a": [1, 1.5, "x", null, true]}));
        assert_eq!(n.to_json(), json!({"a": [1, 1.5, "x", null, true]}));
    }
}
