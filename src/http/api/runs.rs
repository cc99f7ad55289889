//! Next runs: [`next_runs`] (every entry, merged in time order) and
//! [`entry_next_runs`] (one entry), as `metronome next --json` prints them.
//!
//! **Invariant**: "now" (the default `from`) is read from the state's
//! clock, never from the system directly.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{not_found, stopped};
use crate::engine::{Run, upcoming};
use crate::entry::Entry;
use crate::http::{ApiError, ErrorBody, Shared};
use crate::ports::clock::Clock;

/// Most runs one next-runs request lists.
pub const MAX_COUNT: usize = 10_000;

/// One upcoming run, as `metronome next --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextRun {
    pub schedule: String,
    pub task: String,
    /// In the entry's zone.
    pub at: String,
    pub utc: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NextQuery {
    /// How many runs (default 10, at most 10000).
    count: Option<usize>,
    /// List runs strictly after this RFC 3339 instant (default: now).
    from: Option<String>,
}

/// `from`, or the clock's now.
fn parse_from(clock: &dyn Clock, from: &Option<String>) -> Result<Timestamp, ApiError> {
    match from {
        None => Ok(clock.now()),
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
    let from = parse_from(&*st.clock, &q.from)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::clock::TestClock;

    #[test]
    fn from_defaults_to_the_clock_and_must_be_rfc_3339() {
        let t: Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        let clock = TestClock::new(t);
        let now = parse_from(&clock, &None).unwrap();
        assert!(
            now >= t && now < t + jiff::SignedDuration::from_secs(60),
            "{now}"
        );
        let given = parse_from(&clock, &Some("2020-05-06T07:08:09Z".into())).unwrap();
        assert_eq!(given.to_string(), "2020-05-06T07:08:09Z");
        let err = parse_from(&clock, &Some("tomorrow".into())).unwrap_err();
        assert_eq!(err.0, StatusCode::BAD_REQUEST);
        assert!(
            err.1
                .starts_with("from: invalid RFC 3339 instant `tomorrow`: "),
            "{}",
            err.1
        );
    }
}
