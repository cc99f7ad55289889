//! Request bodies of the write handlers: the documented shape
//! ([`EntryBody`]), JSON parsing, the `name` key, JSON merge patch, and the
//! check that turns a body into database columns ([`columns`]).
//!
//! **Invariant**: a body is stored only after
//! [`entry::validate_json`](crate::entry::validate_json), the validator
//! YAML files and database rows use, has accepted it.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value as Json_};

use crate::db::Columns;
use crate::entry::{self, Context};
use crate::http::ApiError;

/// An entry body: the keys of a YAML entry (`name` too when creating).
/// Exactly one of `cron`, `crontab`, `every`, `solar`, `at`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: bodies are checked by the YAML validator
pub struct EntryBody {
    name: Option<String>,
    task: String,
    cron: Option<String>,
    #[schema(value_type = Option<Object>)]
    crontab: Option<Json_>,
    /// `30s`, `1h30m`, or seconds.
    #[schema(value_type = Option<String>)]
    every: Option<Json_>,
    #[schema(value_type = Option<Object>)]
    solar: Option<Json_>,
    at: Option<String>,
    timezone: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    args: Option<Vec<Json_>>,
    #[schema(value_type = Option<Object>)]
    kwargs: Option<Json_>,
    /// queue, exchange, routing_key, priority (0..=255), expires, headers, time_limit, soft_time_limit.
    #[schema(value_type = Option<Object>)]
    options: Option<Json_>,
    enabled: Option<bool>,
    start_at: Option<String>,
    end_at: Option<String>,
    /// skip, once or all.
    misfire: Option<String>,
    #[schema(value_type = Option<String>)]
    grace: Option<Json_>,
    #[schema(value_type = Option<String>)]
    jitter: Option<Json_>,
    #[schema(value_type = Option<Object>)]
    dst: Option<Json_>,
    description: Option<String>,
}

/// Parses a JSON object body: 400 if not JSON, 422 if not an object.
pub fn parse_body(bytes: &Bytes) -> Result<Map<String, Json_>, ApiError> {
    let v: Json_ = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    match v {
        Json_::Object(m) => Ok(m),
        other => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "expected a JSON object (an entry), found {}",
                json_type(&other)
            ),
        )),
    }
}

fn json_type(v: &Json_) -> &'static str {
    match v {
        Json_::Null => "null",
        Json_::Bool(_) => "a boolean",
        Json_::Number(_) => "a number",
        Json_::String(_) => "a string",
        Json_::Array(_) => "a list",
        Json_::Object(_) => "an object",
    }
}

/// 422 with `msg`.
pub fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

/// Takes `name` out of a body; it must match `expected` if given.
pub fn take_name(
    body: &mut Map<String, Json_>,
    expected: Option<&str>,
) -> Result<String, ApiError> {
    let name = match body.remove("name") {
        None => None,
        Some(Json_::String(s)) => Some(s),
        Some(other) => {
            return Err(unprocessable(format!(
                "name: expected a string, found {}",
                json_type(&other)
            )));
        }
    };
    let name = match (name, expected) {
        (Some(n), Some(e)) if n != e => {
            return Err(unprocessable(format!(
                "name: `{n}` differs from the name in the URL `{e}` (renaming is not supported)"
            )));
        }
        (Some(n), _) => n,
        (None, Some(e)) => e.to_string(),
        (None, None) => {
            return Err(unprocessable(
                "name: missing; the body needs the schedule's `name`",
            ));
        }
    };
    entry::check_name(&name).map_err(|m| unprocessable(format!("name: {m}")))?;
    Ok(name)
}

/// Validates a body (without `name`) as entry `name` in `ctx`: 422 naming
/// the fields, else the columns to store.
pub fn columns(name: &str, body: Map<String, Json_>, ctx: &Context) -> Result<Columns, ApiError> {
    let body = Json_::Object(body);
    entry::validate_json(name, &body, ctx)
        .map_err(|errs| unprocessable(entry::render_errors(&errs)))?;
    let Json_::Object(body) = body else {
        unreachable!("built as an object")
    };
    Ok(Columns::from_body(&body))
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Json_, patch: &Json_) {
    let Json_::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Json_::Object(Map::new());
    }
    let Json_::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Json_::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"task": "t", "cron": "* * * * *", "kwargs": {"a": 1, "b": 2}});
        merge_patch(
            &mut t,
            &json!({"cron": null, "every": "1s", "kwargs": {"a": null, "c": 3}}),
        );
        assert_eq!(
            t,
            json!({"task": "t", "kwargs": {"b": 2, "c": 3}, "every": "1s"})
        );
    }

    #[test]
    fn names_are_checked_by_the_entry_rules() {
        let mut body = Map::new();
        let err = take_name(&mut body, Some("a/b")).unwrap_err();
        assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            err.1,
            format!("name: {}", entry::check_name("a/b").unwrap_err())
        );
        body.insert("name".into(), json!("ok"));
        assert_eq!(take_name(&mut body, None).unwrap(), "ok");
    }

    #[test]
    fn bodies_are_validated_before_becoming_columns() {
        let ctx = crate::db::context(None);
        let body = json!({"task": "t", "every": "1s", "options": {"priority": 256}});
        let err = columns("n", body.as_object().unwrap().clone(), &ctx).unwrap_err();
        assert_eq!(err.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.1.contains("options.priority"), "{}", err.1);
        let body = json!({"task": "t", "every": "1s", "kwargs": {"a": 1}});
        let cols = columns("n", body.as_object().unwrap().clone(), &ctx).unwrap();
        assert_eq!(cols.every.as_deref(), Some("1s"));
        assert_eq!(cols.kwargs, r#"{"a":1}"#);
    }
}
