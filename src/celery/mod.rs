//! Celery's wire format: task messages (protocol v2) and the envelopes the
//! transports wrap them in; and `mapping`, what Celery's options and
//! crontab DST behaviour become in a schedule file. Pure: no I/O.

pub mod mapping;
pub mod message;
pub mod repr;
