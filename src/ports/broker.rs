//! The broker port: publish a batch of task messages, and learn for each
//! whether the broker has it.
//!
//! **Invariant:** a result is reported per message, in order, and
//! [`PublishError::Unknown`] is never retried by anyone (a retry could run
//! the task twice).

use super::BoxFuture;
use crate::celery::message::Message;

/// A publish that did not reach the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached or refused the message; it was not
    /// delivered.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The outcome is unknown (timed out after sending). Never retried
    /// blindly: a retry could duplicate the run.
    #[error("publish outcome unknown: {0}")]
    Unknown(String),
    /// Not sent: the lease check in the fenced publish failed (another
    /// instance leads now).
    #[error("not sent: this instance no longer holds the lease")]
    Deposed,
}

/// One result per message published, in order.
pub type Published = Vec<Result<(), PublishError>>;

/// A transport. Network brokers connect lazily and reconnect on their own;
/// while one is unreachable every publish reports
/// [`PublishError::Unavailable`].
pub trait Broker: Send {
    /// Checks that the broker answers (connecting if needed).
    fn ping(&mut self) -> BoxFuture<'_, Result<(), PublishError>>;

    /// Publishes `messages` in order; one result per message.
    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Published>;

    /// The fenced publish, if this broker offers it (a Redis broker on the
    /// lease's own server): then the loop uses it for every batch it
    /// dispatches under a lease.
    fn atomic(&mut self) -> Option<&mut dyn AtomicPublish> {
        None
    }
}

/// Publishing under a lease as one indivisible step: the broker checks
/// that the lease still holds `value`, publishes, and records each run's
/// new state with its message. A deposed leader therefore publishes
/// nothing, and no run is published without its state.
pub trait AtomicPublish: Send {
    /// Publishes `messages[i]` and stores `states[i]` (entry name, run state
    /// JSON) together, if the lease holds `value`; every message reports
    /// [`PublishError::Deposed`] once the check fails.
    fn publish_fenced<'a>(
        &'a mut self,
        messages: &'a [Message],
        states: &'a [(&'a str, String)],
        value: &'a str,
    ) -> BoxFuture<'a, Published>;
}
