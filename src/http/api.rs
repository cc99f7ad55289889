//! `/api/v1`: list, read, create, replace, patch and delete schedules,
//! list next runs, read an entry's run history, and run an entry now.
//!
//! Bodies are entries as in a YAML file (plus `name` when creating), checked
//! by the same validator as YAML. Answers: 400 for a body that is not JSON,
//! 422 for one that does not validate (the message names the field), 401/403
//! for writes without the right token, 404 for an unknown name, 409 for a
//! write to an entry that comes from a file (or a create that exists).
//!
//! Rows of the database that do not validate are listed too, with `error`
//! set; an entry that is running while its row is invalid (the last good
//! version keeps running) shows both its run data and `error`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};

use super::{ApiError, ErrorBody, Shared};
use crate::engine::{Run, upcoming};
use crate::entry::Entry;
use crate::source::sql::{self, Columns, Db, SOURCE};
use crate::state::EntryState;

/// Most runs one next-runs request lists.
pub const MAX_COUNT: usize = 10_000;

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

/// One upcoming run, as `metronome next --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextRun {
    pub schedule: String,
    pub task: String,
    /// In the entry's zone.
    pub at: String,
    pub utc: String,
}

/// `task_id` of a run published on request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunNow {
    pub task_id: String,
}

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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NextQuery {
    /// How many runs (default 10, at most 10000).
    count: Option<usize>,
    /// List runs strictly after this RFC 3339 instant (default: now).
    from: Option<String>,
}

fn view(e: &Entry, st: &EntryState, next: Option<Run>) -> ScheduleView {
    let db = *e.origin.source == *SOURCE;
    ScheduleView {
        name: e.name.clone(),
        task: Some(e.task.to_string()),
        schedule: Some(e.schedule.to_json()),
        timezone: Some(e.timezone_name.to_string()),
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

/// `t` in the entry's zone, RFC 3339 with the offset.
fn local(e: &Entry, t: Timestamp) -> String {
    t.to_zoned(e.timezone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        .to_string()
}

fn invalid_view(name: &str, error: &str) -> ScheduleView {
    ScheduleView {
        name: name.into(),
        task: None,
        schedule: None,
        timezone: None,
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

fn stopped() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the scheduler has stopped")
}

fn invalid_rows(st: &Shared) -> std::collections::BTreeMap<String, String> {
    st.sync
        .as_ref()
        .map(|s| s.status.read().expect("status lock").invalid.clone())
        .unwrap_or_default()
}

async fn view_of(st: &Shared, name: &str) -> Result<Option<ScheduleView>, ApiError> {
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

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no schedule named `{name}`"))
}

fn parse_from(from: &Option<String>) -> Result<Timestamp, ApiError> {
    match from {
        None => Ok(Timestamp::now()),
        Some(s) => s.parse().map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("from: invalid RFC 3339 instant `{s}`: {e}"),
            )
        }),
    }
}

fn next_run(e: &Entry, run: Run) -> NextRun {
    let at = run.due.to_zoned(e.timezone.clone());
    NextRun {
        schedule: e.name.clone(),
        task: e.task.to_string(),
        at: at.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
        utc: run.due.to_string(),
    }
}

async fn upcoming_runs(
    st: &Shared,
    q: &NextQuery,
    only: Option<String>,
) -> Result<Option<Vec<NextRun>>, ApiError> {
    let from = parse_from(&q.from)?;
    let count = q.count.unwrap_or(10).min(MAX_COUNT);
    st.handle
        .inspect(move |s| {
            if let Some(n) = &only {
                let (e, state, _) = s.get(n)?;
                let runs = upcoming([(&**e, state.anchor.unwrap_or(from))], from, None, count);
                return Some(runs.into_iter().map(|(e, r)| next_run(e, r)).collect());
            }
            let runs = upcoming(
                s.iter()
                    .map(|(e, state, _)| (&**e, state.anchor.unwrap_or(from))),
                from,
                None,
                count,
            );
            Some(runs.into_iter().map(|(e, r)| next_run(e, r)).collect())
        })
        .await
        .ok_or_else(stopped)
}

/// Upcoming runs of every entry, merged in time order.
#[utoipa::path(get, path = "/api/v1/next-runs", tag = "schedules", params(NextQuery),
    responses((status = 200, body = Vec<NextRun>), (status = 400, body = ErrorBody)))]
pub async fn next_runs(
    State(st): State<Shared>,
    Query(q): Query<NextQuery>,
) -> Result<Json<Vec<NextRun>>, ApiError> {
    Ok(Json(
        upcoming_runs(&st, &q, None).await?.unwrap_or_default(),
    ))
}

/// Upcoming runs of one entry.
#[utoipa::path(get, path = "/api/v1/schedules/{name}/next-runs", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name"), NextQuery),
    responses((status = 200, body = Vec<NextRun>), (status = 404, body = ErrorBody)))]
pub async fn entry_next_runs(
    State(st): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<NextQuery>,
) -> Result<Json<Vec<NextRun>>, ApiError> {
    upcoming_runs(&st, &q, Some(name.clone()))
        .await?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

/// One outcome of an entry's run, as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// `sent`, `unknown` (published, arrival unknown; not retried),
    /// `failed` (not delivered; retried as a missed run), `skipped`, or
    /// `requested` (run-now).
    pub outcome: String,
    /// Scheduled time (RFC 3339, UTC); the first of a skip of several.
    pub scheduled: Option<String>,
    /// `scheduled` in the entry's zone, with its UTC offset.
    pub scheduled_local: Option<String>,
    /// Last scheduled time of a skip of several.
    pub last: Option<String>,
    /// Runs this item covers (more than 1 only for skips).
    pub count: u64,
    /// When it was published.
    pub at: Option<String>,
    /// Publish time minus due time.
    pub lateness_ms: Option<i64>,
    /// Why skipped: `misfire`, `grace`, `expired` or `disabled`.
    pub reason: Option<String>,
    pub error: Option<String>,
    /// The Celery task id, for published runs.
    pub task_id: Option<String>,
}

fn history_view(e: &Entry, h: &crate::state::HistoryItem) -> HistoryView {
    use crate::state::HistoryOutcome as O;
    let outcome = serde_json::to_value(h.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let task_id = h
        .task_id
        .clone()
        .or_else(|| match (h.outcome, h.scheduled) {
            (O::Sent | O::Unknown, Some(s)) => {
                Some(crate::celery::message::task_id(&e.name, s).to_string())
            }
            _ => None,
        });
    HistoryView {
        outcome,
        scheduled: h.scheduled.map(|t| t.to_string()),
        scheduled_local: h.scheduled.map(|t| local(e, t)),
        last: h.last.map(|t| t.to_string()),
        count: h.count,
        at: h.at.map(|t| t.to_string()),
        lateness_ms: h.lateness_ms,
        reason: h.reason.clone(),
        error: h.error.clone(),
        task_id,
    }
}

/// The entry's latest run outcomes, newest first (at most `--history` of
/// them, kept with the run state so they survive restarts).
#[utoipa::path(get, path = "/api/v1/schedules/{name}/history", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses((status = 200, body = Vec<HistoryView>), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(st): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Vec<HistoryView>>, ApiError> {
    let n = name.clone();
    st.handle
        .inspect(move |s| {
            s.get(&n).map(|(e, st, _)| {
                st.history
                    .iter()
                    .rev()
                    .map(|h| history_view(e, h))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .ok_or_else(stopped)?
        .map(Json)
        .ok_or_else(|| not_found(&name))
}

/// Checks the bearer token: 403 when none is configured, 401 when wrong.
fn authorize(st: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "writes are disabled: no API token is configured (set METRONOME_API_TOKEN)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong bearer token",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <token>` header",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn require_db(st: &Shared) -> Result<&Db, ApiError> {
    st.db.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no database is configured: schedules come from files only (start with --database to manage them through the API)",
        )
    })
}

/// 409 if `name` is defined in a file.
fn not_from_file(st: &Shared, name: &str) -> Result<(), ApiError> {
    match st.files.get(name) {
        Some(origin) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "schedule `{name}` comes from file {origin}; change it there (the API writes database schedules only)"
            ),
        )),
        None => Ok(()),
    }
}

/// Parses a JSON object body: 400 if not JSON, 422 if not an object.
fn parse_body(bytes: &Bytes) -> Result<Map<String, Json_>, ApiError> {
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

fn unprocessable(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

/// Takes `name` out of a body; it must match `expected` if given.
fn take_name(body: &mut Map<String, Json_>, expected: Option<&str>) -> Result<String, ApiError> {
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
    sql::check_name(&name).map_err(|m| unprocessable(format!("name: {m}")))?;
    Ok(name)
}

/// Validates and stores an entry body; `create` fails if the name exists.
async fn store(
    st: &Shared,
    name: &str,
    body: Map<String, Json_>,
    create: bool,
) -> Result<bool, ApiError> {
    let db = require_db(st)?;
    not_from_file(st, name)?;
    let body = Json_::Object(body);
    crate::entry::validate_json(name, &body, &st.ctx)
        .map_err(|errs| unprocessable(crate::entry::render_errors(&errs)))?;
    let Json_::Object(body) = body else {
        unreachable!("built as an object")
    };
    let cols = Columns::from_body(&body);
    let created = if create {
        db.insert(name, &cols).await.map(|()| true)
    } else {
        db.upsert(name, &cols).await
    };
    let created = created.map_err(|e| {
        if e.is_unique_violation() {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("schedule `{name}` already exists"),
            )
        } else if e.is_check_violation() {
            unprocessable(format!("the database refused the entry: {e}"))
        } else {
            db_error(e)
        }
    })?;
    if let Some(s) = &st.sync {
        s.refresh(vec![name.to_string()]).await;
    }
    Ok(created)
}

fn db_error(e: sql::DbError) -> ApiError {
    tracing::warn!(error = %e, "database write failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database unavailable: {e}"),
    )
}

async fn answer(st: &Shared, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let v = view_of(st, name)
        .await?
        .unwrap_or_else(|| invalid_view(name, "written; not yet loaded"));
    Ok((status, Json(v)).into_response())
}

/// Creates a database entry. Body: an entry as in YAML, plus `name`.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = EntryBody,
    security(("bearer" = [])),
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let mut body = parse_body(&body)?;
    let name = take_name(&mut body, None)?;
    store(&st, &name, body, true).await?;
    answer(&st, &name, StatusCode::CREATED).await
}

/// Creates or replaces a database entry.
#[utoipa::path(put, path = "/api/v1/schedules/{name}", tag = "schedules", request_body = EntryBody,
    params(("name" = String, Path, description = "Schedule name")), security(("bearer" = [])),
    responses((status = 200, body = ScheduleView), (status = 201, body = ScheduleView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let mut body = parse_body(&body)?;
    let name = take_name(&mut body, Some(&name))?;
    let created = store(&st, &name, body, false).await?;
    answer(
        &st,
        &name,
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
    )
    .await
}

/// Changes fields of a database entry (JSON merge patch: `null` removes a key).
#[utoipa::path(patch, path = "/api/v1/schedules/{name}", tag = "schedules", request_body = Object,
    params(("name" = String, Path, description = "Schedule name")), security(("bearer" = [])),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let mut patch = parse_body(&body)?;
    not_from_file(&st, &name)?;
    let db = require_db(&st)?;
    take_name(&mut patch, Some(&name))?;
    let row = db
        .row(&name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| not_found(&name))?;
    // An unreadable row (bad JSON text in SQLite) is patched from scratch.
    let mut current = Json_::Object(row.to_json().unwrap_or_default());
    merge_patch(&mut current, &Json_::Object(patch));
    let Json_::Object(body) = current else {
        unreachable!("patched an object")
    };
    store(&st, &name, body, false).await?;
    answer(&st, &name, StatusCode::OK).await
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Json_, patch: &Json_) {
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

/// Deletes a database entry.
#[utoipa::path(delete, path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    not_from_file(&st, &name)?;
    let Some(db) = &st.db else {
        return Err(not_found(&name));
    };
    if !db.delete(&name).await.map_err(db_error)? {
        return Err(not_found(&name));
    }
    if let Some(s) = &st.sync {
        s.refresh(vec![name.clone()]).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Publishes one run of the entry now, with a fresh task id.
#[utoipa::path(post, path = "/api/v1/schedules/{name}/run", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")), security(("bearer" = [])),
    responses((status = 200, body = RunNow), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn run_now(
    State(st): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RunNow>, ApiError> {
    authorize(&st, &headers)?;
    let n = name.clone();
    let exists = st
        .handle
        .inspect(move |s| s.get(&n).is_some())
        .await
        .ok_or_else(stopped)?;
    if !exists {
        return Err(not_found(&name));
    }
    match st.handle.run_now(&name).await {
        Ok(id) => Ok(Json(RunNow {
            task_id: id.to_string(),
        })),
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e)),
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
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
