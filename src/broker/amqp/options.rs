//! The queue-declaration settings of the AMQP broker ([`AmqpOptions`],
//! [`QueueDeclare`]) as set by the URL query and `METRONOME_AMQP_*`
//! variables, and the queue arguments they mean.
//!
//! Owns the option names and their parsing ([`OptionError`]).
//!
//! Invariant: by default an existing queue is used as its workers made it;
//! a missing one is declared as a default Celery worker does (durable, no
//! arguments) unless options say otherwise.

use lapin::types::{AMQPValue, FieldTable};

/// How metronome declares queues before publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDeclare {
    /// The default: an existing queue is used as it is (checked
    /// passively); a missing one is declared as [`QueueDeclare::Declare`]
    /// does.
    Auto,
    /// As a Celery worker: exchange, queue and binding, same arguments.
    Declare,
    /// `queue.declare(passive)`: fails if the queue is missing, never
    /// conflicts.
    Passive,
    /// Nothing; rely on mandatory returns.
    None,
}

/// Settings from the URL query and environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpOptions {
    pub declare: QueueDeclare,
    pub max_priority: Option<u8>,
    pub queue_type: Option<String>,
}

/// A bad option name or value (from the URL query or the environment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("queue_declare must be auto, declare, passive or none, not `{0}`")]
    QueueDeclare(String),
    #[error("x-max-priority must be 0..255, not `{0}`")]
    MaxPriority(String),
    #[error("unknown option `{0}`")]
    Unknown(String),
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            declare: QueueDeclare::Auto,
            max_priority: None,
            queue_type: None,
        }
    }
}

impl AmqpOptions {
    /// The queue arguments a worker with these settings declares.
    pub fn queue_arguments(&self) -> FieldTable {
        let mut t = FieldTable::default();
        if let Some(p) = self.max_priority {
            t.insert("x-max-priority".into(), AMQPValue::LongInt(p.into()));
        }
        if let Some(q) = &self.queue_type {
            t.insert(
                "x-queue-type".into(),
                AMQPValue::LongString(q.as_str().into()),
            );
        }
        t
    }

    /// The declaration these settings make, for error messages.
    pub(super) fn describe(&self) -> String {
        format!(
            "durable, x-max-priority={}, x-queue-type={}",
            self.max_priority
                .map_or("none".to_string(), |p| p.to_string()),
            self.queue_type.as_deref().unwrap_or("none")
        )
    }

    /// Sets the option `key` (a query key) to `value`.
    pub(super) fn set(&mut self, key: &str, value: &str) -> Result<(), OptionError> {
        match key {
            "queue_declare" => {
                self.declare = match value {
                    "auto" => QueueDeclare::Auto,
                    "declare" => QueueDeclare::Declare,
                    "passive" => QueueDeclare::Passive,
                    "none" => QueueDeclare::None,
                    v => return Err(OptionError::QueueDeclare(v.to_string())),
                }
            }
            "x-max-priority" => {
                let p: u8 = value
                    .parse()
                    .map_err(|_| OptionError::MaxPriority(value.to_string()))?;
                self.max_priority = Some(p);
            }
            "x-queue-type" => {
                self.queue_type = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            _ => return Err(OptionError::Unknown(key.to_string())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_errors_say_what_is_accepted() {
        let mut o = AmqpOptions::default();
        let e = |r: Result<(), OptionError>| r.unwrap_err().to_string();
        assert_eq!(
            e(o.set("queue_declare", "maybe")),
            "queue_declare must be auto, declare, passive or none, not `maybe`"
        );
        assert_eq!(
            e(o.set("x-max-priority", "300")),
            "x-max-priority must be 0..255, not `300`"
        );
        assert_eq!(e(o.set("bogus", "1")), "unknown option `bogus`");
        assert_eq!(o, AmqpOptions::default(), "failed sets change nothing");
        o.set("x-queue-type", "").unwrap();
        assert_eq!(o.queue_type, None);
    }
}
