//! Celery's wire format: task messages (protocol v2) and the envelopes the
//! transports wrap them in. Pure: no I/O.

pub mod message;
pub mod repr;
