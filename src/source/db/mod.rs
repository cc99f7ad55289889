//! Schedule entries from the database table (see [`crate::db`]), kept in
//! step with the running scheduler: rows to entries ([`check_row`]), the
//! [`Syncer`] that sends the changes to the service inbox, the PostgreSQL
//! listener (`listener`) and parallel row checking (`parallel`).
//!
//! Every row goes through [`entry::validate_json`](crate::entry::validate_json),
//! the validator YAML files use: a row that does not validate is skipped,
//! logged and listed in [`SyncStatus::invalid`](crate::db::SyncStatus); the
//! others keep running. A row edited into an invalid state keeps its last
//! good version running.
//!
//! # Change detection
//!
//! Triggers stamp each written row with a fresh `version`, whoever writes it
//! (raw SQL included). Only changed rows are fetched and validated again, so
//! one edit among 100k entries costs about one entry's work.
//!
//! - PostgreSQL: a trigger sends the row's name on channel
//!   [`CHANNEL`](crate::db::CHANNEL); a listener task forwards names and the
//!   syncer fetches those rows. Notifications sent while the listener is
//!   disconnected are lost, so after every (re)connection and every
//!   [`SAFETY_RESYNC`] the syncer *reconciles*: it reads every row's
//!   `(name, version)` and fetches the rows whose version differs.
//! - SQLite: triggers bump `metronome_meta.version` and record deletions in
//!   `metronome_schedule_deleted`; the syncer polls the version every
//!   [`SQLITE_POLL`] and fetches rows (and deletions) newer than the last
//!   version seen. Writes are serialised, so versions follow commit order.
//!
//! While the database is unreachable the scheduler keeps running the last
//! good schedule; the syncer retries and reconciles when it is back.
//!
//! **Invariant**: database entries reach the scheduler only as
//! `service::inbox::Command`s sent by the [`Syncer`], after [`check_row`].

mod listener;
mod parallel;
mod syncer;

pub use syncer::{SAFETY_RESYNC, SQLITE_POLL, Syncer};

/// The target of this module's log lines: the one they had when it was
/// `source::sql`, so log filters keep matching.
const LOG_TARGET: &str = "metronome::source::sql";

use crate::db::{Row, RowError, SOURCE};
use crate::entry::{Context, Entry, FileOrigins, Origin};

/// Why a row is not (or no longer) in the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// A schedule file already defines the name.
    #[error(
        "duplicate schedule name `{name}`: defined at {origin} and in the {label}; the database row is ignored",
        label = SOURCE
    )]
    Duplicate { name: String, origin: Origin },
    /// The row does not validate.
    #[error(transparent)]
    Row(#[from] RowError),
}

/// A row as an entry, or why not (invalid, or its name is a file's).
pub fn check_row(files: &FileOrigins, ctx: &Context, row: &Row) -> Result<Entry, Rejected> {
    match files.get(&row.name) {
        Some(origin) => Err(Rejected::Duplicate {
            name: row.name.clone(),
            origin: origin.clone(),
        }),
        None => Ok(row.to_entry(ctx)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Columns, context};

    #[test]
    fn a_row_clashing_with_a_file_says_where_the_file_defines_it() {
        let yaml = "schedules:\n  a:\n    task: t\n    every: 1s\n";
        let entries = crate::source::yaml::load_str("s.yaml", yaml, &None).expect("valid");
        let files: FileOrigins = entries.into_iter().map(std::sync::Arc::new).collect();
        let row = Row {
            name: "a".into(),
            cols: Columns {
                task: "t".into(),
                every: Some("1s".into()),
                args: "[]".into(),
                kwargs: "{}".into(),
                options: "{}".into(),
                enabled: true,
                ..Default::default()
            },
            version: 1,
        };
        let err = check_row(&files, &context(None), &row).unwrap_err();
        let origin = files.get("a").unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "duplicate schedule name `a`: defined at {origin} and in the database; the database row is ignored"
            )
        );
        let other = Row {
            name: "b".into(),
            ..row
        };
        assert!(check_row(&files, &context(None), &other).is_ok());
    }
}
