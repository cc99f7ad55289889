//! What Celery's settings become in a schedule file, shared by every
//! importer and the django-celery-beat source, so the same thing converts
//! the same way from any store: `apply_async` options (as JSON) to the
//! file's `options`, with the reasons the ones that have no equivalent are
//! refused ([`convert`]), and the DST rule that makes a `crontab` run as
//! Celery's does ([`crontab_dst`]).
//!
//! Values JSON cannot carry arrive as markers from the Celery describer:
//! `{"__datetime__": ISO, "__aware__": bool}`, `{"__timedelta__": secs}`,
//! `{"__python__": repr, "__type__": name}`.

use serde_json::{Map, Value as Json};

use crate::entry::OPTION_KEYS as KEPT;

/// `raw` as `options`, or every reason some option cannot be converted.
pub fn convert(raw: &Map<String, Json>) -> Result<Map<String, Json>, Vec<String>> {
    let mut out = Map::new();
    let mut why = Vec::new();
    for (k, v) in raw {
        if v.is_null() {
            // Celery's lpmerge ignores None values: as if absent.
            continue;
        }
        match one(k, v) {
            Ok(Some(v)) => {
                out.insert(k.clone(), v);
            }
            Ok(None) => {}
            Err(e) => why.push(format!("options.{k}: {e}")),
        }
    }
    if why.is_empty() { Ok(out) } else { Err(why) }
}

/// One option: its value in the file, `None` to leave it out, or why not.
fn one(key: &str, v: &Json) -> Result<Option<Json>, String> {
    if let Some(repr) = marker(v, "__python__") {
        return Err(format!("the value {repr} cannot be written as JSON"));
    }
    match key {
        "countdown" | "eta" => Err(format!(
            "`{key}` delays each message after it is sent; metronome publishes at the \
             scheduled time, so move the delay into the schedule"
        )),
        "queue" | "exchange" | "routing_key" => match v {
            Json::String(_) => Ok(Some(v.clone())),
            _ => Err(format!("expected a name, found {v}")),
        },
        "priority" => match v.as_i64() {
            Some(p) if (0..=255).contains(&p) => Ok(Some(Json::from(p))),
            _ => Err(format!("expected an integer 0..=255, found {v}")),
        },
        "expires" => expires(v).map(Some),
        "headers" => match v {
            Json::Object(m) if m.values().all(|x| marker(x, "__python__").is_none()) => {
                Ok(Some(v.clone()))
            }
            _ => Err("expected a mapping of JSON values".into()),
        },
        "time_limit" | "soft_time_limit" => match v.as_f64() {
            Some(s) if s > 0.0 => Ok(Some(v.clone())),
            _ => Err(format!("expected a positive number of seconds, found {v}")),
        },
        k if KEPT.contains(&k) => Ok(Some(v.clone())),
        "serializer" if v == "json" => Ok(None),
        _ => Err(format!(
            "`{key}` has no equivalent in metronome's options ({})",
            KEPT.join(", ")
        )),
    }
}

/// A Celery crontab's fields (`field` gives each, `None` or `"*"` when
/// left out) as the `crontab` key, followed by the `dst` key that makes it
/// run as Celery's does ([`crontab_dst`]), when one is needed.
pub fn crontab_keys(field: impl Fn(&str) -> Option<Json>) -> Vec<(String, Json)> {
    let mut fields = Map::new();
    for f in [
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "month_of_year",
    ] {
        match field(f) {
            None | Some(Json::Null) => {}
            Some(v) if v == "*" => {}
            Some(v) => {
                fields.insert(f.into(), v);
            }
        }
    }
    let dst = crontab_dst(&fields);
    let mut v = vec![("crontab".to_string(), Json::Object(fields))];
    v.extend(dst.map(|d| ("dst".to_string(), d)));
    v
}

/// The `dst` rule under which `crontab` fields run as Celery runs them: a
/// wildcard entry (minute or hour starting with `*`) takes Celery's gap
/// rule (`later`) and fires once in a repeated hour; a fixed-time entry
/// keeps metronome's default (the first instant after a gap, the one
/// documented difference, celery#9653). `None` when the default is Celery's.
pub fn crontab_dst(fields: &Map<String, Json>) -> Option<Json> {
    let wildcard = ["minute", "hour"].iter().any(|f| match fields.get(*f) {
        None => true,
        Some(Json::String(t)) => t.starts_with('*'),
        Some(_) => false,
    });
    wildcard.then(|| serde_json::json!({"gap": "later", "fold": "first"}))
}

/// `expires`: seconds after the run, or an instant.
pub fn expires(v: &Json) -> Result<Json, String> {
    if let Some(s) = v.as_f64() {
        return if s > 0.0 {
            Ok(v.clone())
        } else {
            Err(format!("expires must be positive, found {v}"))
        };
    }
    if let Some(iso) = marker(v, "__datetime__") {
        if v.get("__aware__") != Some(&Json::Bool(true)) {
            return Err(format!(
                "a naive datetime ({iso}) has no zone; give it a tzinfo"
            ));
        }
        return instant(iso).map(Json::from);
    }
    if marker(v, "__timedelta__").is_some() {
        return Err(
            "a timedelta is refused by Celery 5.7's send_task itself (TypeError); use seconds"
                .into(),
        );
    }
    match v {
        Json::String(s) => instant(s).map(Json::from),
        _ => Err(format!("expected seconds or a datetime, found {v}")),
    }
}

/// An ISO 8601 instant with an offset as RFC 3339.
pub fn instant(iso: &str) -> Result<String, String> {
    iso.parse::<jiff::Timestamp>()
        .map(|t| t.to_string())
        .map_err(|e| format!("`{iso}` is not an instant with an offset: {e}"))
}

/// The text of the describer's marker `key` in `v`, if it is one.
pub fn marker<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    v.as_object()?.get(key)?.as_str().or(Some(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn keeps_what_the_file_has_and_says_why_not_the_rest() {
        let ok = convert(&obj(json!({"queue": "q", "priority": 7, "expires": 30,
            "headers": {"a": 1}, "exchange": null, "serializer": "json"})))
        .unwrap();
        assert_eq!(
            Json::Object(ok),
            json!({"queue": "q", "priority": 7, "expires": 30, "headers": {"a": 1}})
        );
        let why = convert(&obj(json!({"countdown": 10, "priority": 300,
            "compression": "zlib", "expires": {"__timedelta__": 5.0},
            "kw": {"__python__": "<object>", "__type__": "x"}})))
        .unwrap_err();
        assert_eq!(why.len(), 5, "{why:?}");
        assert!(
            why[0].starts_with("options.countdown: `countdown` delays"),
            "{why:?}"
        );
        assert!(why.iter().any(|w| w.contains("0..=255")));
        assert!(why.iter().any(|w| w.contains("TypeError")));
    }

    #[test]
    fn expires_instants_need_an_offset() {
        assert_eq!(
            expires(&json!({"__datetime__": "2026-01-01T10:00:00+01:00", "__aware__": true})),
            Ok(json!("2026-01-01T09:00:00Z"))
        );
        assert!(
            expires(&json!({"__datetime__": "2026-01-01T10:00:00", "__aware__": false})).is_err()
        );
    }
}
