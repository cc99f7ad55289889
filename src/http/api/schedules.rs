//! The schedule views ([`ScheduleView`]) and the GET handlers of schedules:
//! [`list`] and [`get_one`].
//!
//! Owns how an entry, its run state and any error of its database row
//! become one view.
//!
//! **Invariant**: an invalid database row is always shown, with `error`
//! set, whether or not a last good version of it is running.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json_;

use super::{local, not_found, stopped};
use crate::db::SOURCE;
use crate::engine::Run;
use crate::entry::Entry;
use crate::http::{ApiError, ErrorBody, Shared};
use crate::state::EntryState;

/// An entry as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub name: String,
    /// The registered Celery task name.
    pub task: Option<String>,
    /// The schedule as written, e.g. `{"cron": "0 3 * * *"}`.
    #[schema(value_type = Object)]
    pub schedule: Option<Json_>,
    /// IANA zone the schedule is read in.
    pub timezone: Option<String>,
    /// The task's positional arguments.
    #[schema(value_type = Option<Vec<Object>>)]
    pub args: Option<Vec<Json_>>,
    /// The task's keyword arguments.
    #[schema(value_type = Option<Object>)]
    pub kwargs: Option<Json_>,
    /// The options every run is sent with, after the file's `defaults` and
    /// the matching `routes` (the entry's own win): queue (`celery` when
    /// none is set), exchange, routing_key, priority, expires (seconds
    /// after the run, or an instant), headers, time limits.
    #[schema(value_type = Option<Object>)]
    pub options: Option<Json_>,
    pub enabled: Option<bool>,
    /// `file` or `database`.
    pub source: String,
    /// Where it is defined: `FILE:LINE:COL`, or `database`.
    pub location: String,
    /// Next dispatch (RFC 3339, UTC; with jitter applied). Null while
    /// disabled.
    pub next_run: Option<String>,
    /// `next_run` in the entry's zone, with its UTC offset.
    pub next_run_local: Option<String>,
    /// Scheduled time of the last run sent.
    pub last_run: Option<String>,
    /// `last_run` in the entry's zone, with its UTC offset.
    pub last_run_local: Option<String>,
    pub total_runs: u64,
    /// Last publish error, cleared by the next success.
    pub last_error: Option<String>,
    /// Why the database row is not valid (then it is skipped, or its last
    /// good version keeps running); null when valid.
    pub error: Option<String>,
}

fn view(e: &Entry, st: &EntryState, next: Option<Run>) -> ScheduleView {
    let db = *e.origin.source == *SOURCE;
    ScheduleView {
        name: e.name.clone(),
        task: Some(e.task.to_string()),
        schedule: Some(e.schedule.to_json()),
        timezone: Some(e.timezone_name.to_string()),
        args: Some(e.args.clone()),
        kwargs: Some(Json_::Object((*e.kwargs).clone())),
        options: Some(effective_options(e)),
        enabled: Some(e.enabled),
        source: if db { "database" } else { "file" }.into(),
        location: e.origin.to_string(),
        next_run: next.filter(|_| e.enabled).map(|r| r.due.to_string()),
        next_run_local: next.filter(|_| e.enabled).map(|r| local(e, r.due)),
        last_run: st.last_run.map(|t| t.to_string()),
        last_run_local: st.last_run.map(|t| local(e, t)),
        total_runs: st.total_runs,
        last_error: st.last_error.clone(),
        error: None,
    }
}

/// The entry's options with the queue it is sent to.
fn effective_options(e: &Entry) -> Json_ {
    let mut o = e.options.to_json();
    o["queue"] = Json_::from(crate::celery::message::route(e).queue);
    o
}

/// The view of a database row that is not (yet) in the scheduler.
pub(super) fn invalid_view(name: &str, error: &str) -> ScheduleView {
    ScheduleView {
        name: name.into(),
        task: None,
        schedule: None,
        timezone: None,
        args: None,
        kwargs: None,
        options: None,
        enabled: None,
        source: "database".into(),
        location: SOURCE.into(),
        next_run: None,
        next_run_local: None,
        last_run: None,
        last_run_local: None,
        total_runs: 0,
        last_error: None,
        error: Some(error.into()),
    }
}

fn invalid_rows(st: &Shared) -> std::collections::BTreeMap<String, String> {
    st.sync
        .as_ref()
        .map(|s| s.status.read().expect("status lock").invalid.clone())
        .unwrap_or_default()
}

/// The view of `name`: its entry, its invalid row, or both; `None` if neither.
pub(super) async fn view_of(st: &Shared, name: &str) -> Result<Option<ScheduleView>, ApiError> {
    let n = name.to_string();
    let v = st
        .handle
        .inspect(move |s| s.get(&n).map(|(e, st, next)| view(e, st, next)))
        .await
        .ok_or_else(stopped)?;
    let invalid = st.sync.as_ref().and_then(|s| {
        s.status
            .read()
            .expect("status lock")
            .invalid
            .get(name)
            .cloned()
    });
    Ok(match (v, invalid) {
        (Some(mut v), err) => {
            v.error = err;
            Some(v)
        }
        (None, Some(err)) => Some(invalid_view(name, &err)),
        (None, None) => None,
    })
}

/// Every entry, by name; invalid database rows included with `error`.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses((status = 200, body = Vec<ScheduleView>)))]
pub async fn list(State(st): State<Shared>) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let mut views = st
        .handle
        .inspect(|s| {
            s.iter()
                .map(|(e, st, next)| view(e, st, next))
                .collect::<Vec<_>>()
        })
        .await
        .ok_or_else(stopped)?;
    let mut invalid = invalid_rows(&st);
    for v in &mut views {
        // A file's entry carries the error of a database row clashing with it.
        v.error = invalid.remove(&v.name);
    }
    views.extend(invalid.iter().map(|(n, e)| invalid_view(n, e)));
    views.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(views))
}

/// One entry.
#[utoipa::path(get, path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    view_of(&st, &name)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}
