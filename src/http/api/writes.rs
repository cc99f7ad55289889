//! The write handlers: [`create`], [`replace`], [`patch`], [`delete`] a
//! database entry, and [`run_now`].
//!
//! A write goes to the database, then waits for the syncer to apply it to
//! this instance, so the answer (and the next read) shows it.
//!
//! **Invariant**: every write is authorised first, and entries defined in
//! files are never written (409).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};

use super::LOG_TARGET;
use super::auth::authorize;
use super::body::{EntryBody, columns, merge_patch, parse_body, take_name, unprocessable};
use super::schedules::{ScheduleView, invalid_view, view_of};
use super::{not_found, stopped};
use crate::db::{Db, DbError};
use crate::http::{ApiError, ErrorBody, Shared};

/// `task_id` of a run published on request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunNow {
    pub task_id: String,
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

/// Validates and stores an entry body; `create` fails if the name exists.
async fn store(
    st: &Shared,
    name: &str,
    body: Map<String, Json_>,
    create: bool,
) -> Result<bool, ApiError> {
    let db = require_db(st)?;
    not_from_file(st, name)?;
    let cols = columns(name, body, &st.ctx)?;
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

fn db_error(e: DbError) -> ApiError {
    tracing::warn!(target: LOG_TARGET, error = %e, "database write failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database unavailable: {e}"),
    )
}

async fn answer(st: &Shared, name: &str, status: StatusCode) -> Result<Response, ApiError> {
    let v: ScheduleView = view_of(st, name)
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
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            e.to_string(),
        )),
    }
}
