//! Run history: [`history`] lists an entry's latest run outcomes, newest
//! first, as [`HistoryView`]s.
//!
//! **Invariant**: a published run without a stored task id shows the id
//! derived from (name, scheduled time), the one it was published with.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::{local, not_found, stopped};
use crate::entry::Entry;
use crate::http::{ApiError, ErrorBody, Shared};

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
