//! `metronome import`: schedules from celery beat, django-celery-beat and
//! RedBeat, turned into a schedule file.
//!
//! Each importer reads its store into the same small model, [`Import`]: the
//! file-level settings, one [`Imported`] entry per schedule (its YAML keys as
//! JSON, and comments saying where it came from) and the [`Unsupported`]
//! items with the reason each cannot be converted. [`writer`] turns the model
//! into YAML text; it is the one writer all three share.
//!
//! - `celery`: the JSON the embedded `celery_app.py` prints about a Celery
//!   app ([`celery::SCRIPT`]);
//! - `redbeat`: RedBeat's Redis keys and JSON encoding;
//! - `django`: django-celery-beat's rows.
//!
//! Invariant: importers never drop anything silently: a value either lands
//! in the model or is listed in [`Import::unsupported`] with its reason.

pub mod celery;
pub mod django;
pub mod redbeat;
pub mod writer;

use serde_json::{Map, Value as Json};

/// What one import produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Import {
    /// Comment lines for the top of the file.
    pub header: Vec<String>,
    /// The file's `timezone`.
    pub timezone: Option<String>,
    /// The file's `defaults`.
    pub defaults: Map<String, Json>,
    /// The file's `routes`, in order.
    pub routes: Vec<Route>,
    pub entries: Vec<Imported>,
    pub unsupported: Vec<Unsupported>,
}

/// One `routes` key and its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub key: String,
    pub options: Map<String, Json>,
    pub comment: String,
}

/// One converted schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub name: String,
    /// Where it came from, one line each.
    pub comments: Vec<String>,
    /// The entry's keys as in a schedule file (`task`, a schedule kind, …).
    pub body: Map<String, Json>,
}

/// Something that has no equivalent in a schedule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// What: `beat_schedule['name']`, `task_routes[1]`, a row's name, ….
    pub item: String,
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.item, self.reason)
    }
}

/// Why an importer could not read its source at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the Celery app's description is not the JSON expected: {0}")]
    Describe(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("database: {0}")]
    Database(String),
}

impl Import {
    /// Records that `item` cannot be converted.
    pub fn unsupported(&mut self, item: impl Into<String>, reason: impl Into<String>) {
        self.unsupported.push(Unsupported {
            item: item.into(),
            reason: reason.into(),
        });
    }
}
