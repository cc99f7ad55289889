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
//!
//! One file per concern: [`schedules`] (views, list, read), [`runs`] (next
//! runs), [`history`], [`writes`] (create, replace, patch, delete, run now),
//! [`body`] (parsing and checking bodies), [`auth`] (the bearer token).
//!
//! **Invariant**: handlers read the scheduler only through the inbox handle
//! and write only the database (through [`crate::db`]); bodies are validated
//! by `entry`, as YAML is.

pub mod auth;
pub mod body;
pub mod history;
pub mod runs;
pub mod schedules;
pub mod writes;

use axum::http::StatusCode;
use jiff::Timestamp;

use super::ApiError;
use crate::entry::Entry;

/// The target of this module's log lines (as when it was one file).
const LOG_TARGET: &str = "metronome::http::api";

/// 503: the run loop no longer answers.
fn stopped() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the scheduler has stopped")
}

/// 404 for `name`.
fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no schedule named `{name}`"))
}

/// `t` in the entry's zone, RFC 3339 with the offset.
fn local(e: &Entry, t: Timestamp) -> String {
    t.to_zoned(e.timezone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
        .to_string()
}
