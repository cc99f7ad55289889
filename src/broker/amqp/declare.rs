//! Declaring what a publish needs, as Celery does: the destination queue
//! (by default used as it is when it exists and declared as a worker would
//! when missing; or always declared, checked passively, or not at all) and
//! any named exchange (checked only), with RabbitMQ's refusals (404, 406)
//! explained.
//!
//! Owns [`Declared`], what one connection has already declared.
//!
//! Invariant: an exchange is never created or changed, only checked; by
//! default an existing queue is never redeclared (so its arguments, set by
//! the workers, are never contradicted); a name is remembered only once
//! RabbitMQ accepted it on this connection.

use std::collections::HashSet;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tracing::info;

use super::options::{AmqpOptions, QueueDeclare};
use crate::broker::PublishError;

/// What a message is published to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'a> {
    Queue(&'a str),
    Exchange(&'a str),
}

impl Target<'_> {
    pub(super) fn name(&self) -> &str {
        match self {
            Target::Queue(n) | Target::Exchange(n) => n,
        }
    }
}

/// Queues declared (or checked) and named exchanges known to exist on one
/// connection.
#[derive(Debug, Default)]
pub(super) struct Declared {
    queues: HashSet<String>,
    exchanges: HashSet<String>,
}

impl Declared {
    /// Declares (a queue) or checks (an exchange) `target` on `ch` unless
    /// this connection already did. A passive check of a missing queue
    /// closes `ch`; it is then reopened on `conn` before declaring.
    pub(super) async fn ensure(
        &mut self,
        conn: &Connection,
        ch: &mut Channel,
        target: Target<'_>,
        opts: &AmqpOptions,
    ) -> Result<(), PublishError> {
        let (known, r) = match target {
            Target::Queue(name) if !self.queues.contains(name) => {
                (&mut self.queues, declare_queue(conn, ch, name, opts).await)
            }
            Target::Exchange(name) if !self.exchanges.contains(name) => {
                (&mut self.exchanges, check_exchange(ch, name).await)
            }
            _ => return Ok(()),
        };
        r?;
        known.insert(target.name().to_string());
        Ok(())
    }
}

/// Declares `queue` per the configured mode.
async fn declare_queue(
    conn: &Connection,
    ch: &mut Channel,
    queue: &str,
    o: &AmqpOptions,
) -> Result<(), PublishError> {
    match o.declare {
        QueueDeclare::None => Ok(()),
        QueueDeclare::Passive => check_queue(ch, queue).await,
        QueueDeclare::Declare => declare_as_worker(ch, queue, o).await,
        QueueDeclare::Auto => match passive(ch, queue).await {
            Ok(()) => Ok(()),
            Err(e) if is_soft(&e, AMQPSoftError::NOTFOUND) => {
                // The 404 closed the channel.
                *ch = super::open_channel(conn).await.map_err(|e| {
                    PublishError::Unavailable(format!("AMQP: reopening a channel: {e}"))
                })?;
                declare_as_worker(ch, queue, o).await?;
                info!(queue, arguments = %o.describe(), "queue was missing; declared it as a worker would");
                Ok(())
            }
            Err(e) => Err(PublishError::Unavailable(format!(
                "checking queue `{queue}`: {e}"
            ))),
        },
    }
}

/// `queue.declare(passive)`: succeeds if `queue` exists, whatever its
/// arguments.
async fn passive(ch: &Channel, queue: &str) -> lapin::Result<()> {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

/// `queue_declare=passive`: checks that `queue` exists.
async fn check_queue(ch: &Channel, queue: &str) -> Result<(), PublishError> {
    passive(ch, queue).await.map_err(|e| {
        PublishError::Unavailable(if is_soft(&e, AMQPSoftError::NOTFOUND) {
            format!(
                "queue `{queue}` does not exist (queue_declare=passive only checks): \
                 start a worker that consumes it, or use queue_declare=auto; RabbitMQ said: {e}"
            )
        } else {
            format!("checking queue `{queue}`: {e}")
        })
    })
}

/// `queue_declare=declare` (and `auto` for a missing queue): exchange
/// `<q>` direct durable, queue `<q>` durable with the configured
/// arguments, bound with key `<q>`.
async fn declare_as_worker(ch: &Channel, queue: &str, o: &AmqpOptions) -> Result<(), PublishError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let r = async {
        declare_direct_exchange(
            ch,
            queue,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
        )
        .await?;
        ch.queue_declare(queue.into(), durable, o.queue_arguments())
            .await?;
        ch.queue_bind(
            queue.into(),
            queue.into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    }
    .await;
    r.map_err(|e| {
        PublishError::Unavailable(if is_soft(&e, AMQPSoftError::PRECONDITIONFAILED) {
            format!(
                "RabbitMQ refused to declare queue `{queue}` as {} because it exists with \
                 different settings ({e}). Match the workers' settings with the broker URL \
                 query (`x-max-priority=N` for task_queue_max_priority=N, \
                 `x-queue-type=quorum` for quorum queues), or use an existing queue as it is \
                 with `queue_declare=auto` (the default) or `queue_declare=passive`",
                o.describe()
            )
        } else {
            format!("declaring queue `{queue}`: {e}")
        })
    })
}

/// Checks that a named exchange exists, without changing it.
async fn check_exchange(ch: &Channel, exchange: &str) -> Result<(), PublishError> {
    declare_direct_exchange(
        ch,
        exchange,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| {
        PublishError::Unavailable(if is_soft(&e, AMQPSoftError::NOTFOUND) {
            format!("exchange `{exchange}` does not exist: declare it (or route by queue only); RabbitMQ said: {e}")
        } else {
            format!("checking exchange `{exchange}`: {e}")
        })
    })
}

/// `exchange.declare` of the direct exchange `name`, without arguments.
async fn declare_direct_exchange(
    ch: &Channel,
    name: &str,
    options: ExchangeDeclareOptions,
) -> lapin::Result<()> {
    ch.exchange_declare(
        name.into(),
        lapin::ExchangeKind::Direct,
        options,
        FieldTable::default(),
    )
    .await
}

fn is_soft(e: &lapin::Error, kind: AMQPSoftError) -> bool {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => *p.kind() == AMQPErrorKind::Soft(kind),
        _ => false,
    }
}
