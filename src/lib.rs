//! metronome: a periodic task scheduler that publishes Celery task messages,
//! a drop-in replacement for `celery beat`.
//!
//! See `ARCHITECTURE.md` for the data flow and a map of the modules.

pub mod broker;
pub mod celery;
pub mod db;
pub mod duration;
pub mod engine;
pub mod entry;
pub mod healthcheck;
pub mod http;
pub mod importer;
pub mod lease;
pub mod metrics;
pub mod ports;
pub mod redact;
pub mod redis_link;
pub mod schedule;
pub mod service;
pub mod source;
pub mod state;
pub mod syntax;
pub mod tls;

/// The hasher of the maps keyed by entry name (up to millions of keys):
/// seeded per process, and fast where SipHash was 15 % of a 1M-entry start.
pub type NameHasher = foldhash::fast::RandomState;
