//! `amqp://` and `amqps://`: publishing to RabbitMQ as Celery does, with
//! publisher confirms.
//!
//! A run counts as sent only when RabbitMQ confirms it. Messages are
//! published `mandatory`, so one RabbitMQ cannot route comes back and is
//! reported, not dropped. A nack, a returned message, a missing queue or
//! exchange, or a refused declaration is [`PublishError::Unavailable`]; a
//! connection lost while confirms were pending is [`PublishError::Unknown`].
//!
//! # Queue declaration
//!
//! Celery declares the destination queue before publishing, and RabbitMQ
//! closes the channel (406 PRECONDITION_FAILED) when a declaration differs
//! from the queue's. So by default an existing queue is used as the
//! workers made it (a passive check), and only a missing one is declared,
//! with the arguments below (logged at info). The mode is chosen with the
//! URL query or environment (the query wins):
//!
//! | query | environment | meaning |
//! |---|---|---|
//! | `queue_declare=auto` (default) | `METRONOME_AMQP_QUEUE_DECLARE` | check passively; declare as `declare` does only when the queue is missing |
//! | `queue_declare=declare` | | declare as a Celery worker does: exchange `<q>` direct durable, queue `<q>` durable with the arguments below, bound with key `<q>` (406 if the queue differs) |
//! | `queue_declare=passive` | | only check that the queue exists (never conflicts) |
//! | `queue_declare=none` | | declare nothing; unroutable messages come back as errors |
//! | `x-max-priority=N` | `METRONOME_AMQP_MAX_PRIORITY` | as workers with `task_queue_max_priority=N` |
//! | `x-queue-type=quorum` | `METRONOME_AMQP_QUEUE_TYPE` | as workers with `task_default_queue_type="quorum"` |
//!
//! A missing queue is declared as a default Celery worker would (durable,
//! no arguments) unless the arguments are set. A 406 is reported naming
//! the mismatch and these options.
//!
//! # URL
//!
//! `amqp://user:pass@host:port/vhost` (also `pyamqp://`), `amqps://` for TLS.
//! The vhost is URL-decoded; `/` when empty (`amqp://host//` is `/` too,
//! as in kombu). `heartbeat`, `connection_timeout`, `frame_max` and
//! `channel_max` pass through to the connection.
//!
//! # Files
//!
//! `url` (the URL and environment, [`AmqpUrlError`]), `options`
//! ([`AmqpOptions`], [`OptionError`]), `declare` (queue declaration and
//! exchange checks), `properties` (message properties and header tables);
//! this file owns the connection and the publish.
//!
//! Invariant: a message counts as sent only on RabbitMQ's ack; a lost
//! connection is noticed and replaced on the next publish, never mid-way.

use std::collections::HashMap;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm};
use tracing::{debug, info, warn};

use super::{BrokerUrlError, PublishError, mask_url};
use crate::celery::message::Message;

mod declare;
mod options;
mod properties;
mod url;

use declare::{Declared, Target};
pub use options::{AmqpOptions, OptionError, QueueDeclare};
pub use properties::{field_table, properties};
pub use url::{AmqpUrlError, parse_url};

/// How long connecting (TCP, TLS, AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One result per message, filled in as each is decided.
type Outcomes = Vec<Option<Result<(), PublishError>>>;

/// An open connection with a confirming channel.
struct Link {
    conn: Connection,
    channel: Channel,
    /// Queues and exchanges declared (or checked) on this connection.
    declared: Declared,
}

/// An AMQP broker; connects lazily and reconnects on the next publish after
/// a loss.
pub struct AmqpBroker {
    uri: AMQPUri,
    opts: AmqpOptions,
    masked: String,
    link: Option<Link>,
}

impl AmqpBroker {
    /// Validates `url` (and the `METRONOME_AMQP_*` environment); does not
    /// connect yet.
    pub fn new(url: &str) -> Result<AmqpBroker, BrokerUrlError> {
        let masked = mask_url(url);
        let (uri, opts) =
            parse_url(url, |k| std::env::var(k).ok()).map_err(|e| BrokerUrlError {
                url: masked.clone(),
                reason: e.to_string(),
            })?;
        if uri.scheme == AMQPScheme::AMQPS {
            crate::tls::install_crypto_provider();
        }
        Ok(AmqpBroker {
            uri,
            opts,
            masked,
            link: None,
        })
    }

    pub fn options(&self) -> &AmqpOptions {
        &self.opts
    }

    /// Connects if needed; for start-up logs and readiness.
    pub async fn ping(&mut self) -> Result<(), PublishError> {
        self.link().await.map(|_| ())
    }

    async fn link(&mut self) -> Result<&mut Link, PublishError> {
        let alive = self
            .link
            .as_ref()
            .is_some_and(|l| l.conn.status().connected());
        if !alive {
            if self.link.take().is_some() {
                warn!(broker = %self.masked, "AMQP connection lost; reconnecting");
            }
            let conn = tokio::time::timeout(
                CONNECT_TIMEOUT,
                Connection::connect_uri(
                    self.uri.clone(),
                    ConnectionProperties::default().with_connection_name(
                        format!("metronome pid {}", std::process::id()).into(),
                    ),
                ),
            )
            .await
            .map_err(|_| self.unavailable("connecting timed out"))?
            .map_err(|e| self.unavailable(&e.to_string()))?;
            let channel = open_channel(&conn)
                .await
                .map_err(|e| self.unavailable(&e.to_string()))?;
            info!(broker = %self.masked, vhost = %self.uri.vhost, "AMQP connected");
            self.link = Some(Link {
                conn,
                channel,
                declared: Declared::default(),
            });
        }
        let masked = self.masked.clone();
        let link = self.link.as_mut().expect("link set above");
        if !link.channel.status().connected() {
            debug!(broker = %masked, "reopening AMQP channel");
            link.channel = open_channel(&link.conn).await.map_err(|e| {
                PublishError::Unavailable(format!("AMQP broker {masked}: opening a channel: {e}"))
            })?;
        }
        Ok(link)
    }

    fn unavailable(&self, why: &str) -> PublishError {
        PublishError::Unavailable(format!("cannot reach AMQP broker {}: {why}", self.masked))
    }

    /// Publishes `messages` in order and waits for their confirms; one
    /// result per message.
    pub async fn publish(&mut self, messages: &[Message]) -> Vec<Result<(), PublishError>> {
        if messages.is_empty() {
            return Vec::new();
        }
        // Declarations first: a failure closes the channel, so each is
        // followed by a fresh channel before going on.
        let refused = match self.declare_targets(messages).await {
            Ok(r) => r,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let link = match self.link().await {
            Ok(l) => l,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let mut out: Outcomes = vec![None; messages.len()];
        let pending = send_all(&link.channel, messages, &refused, &mut out).await;
        for (i, confirm) in pending {
            out[i] = Some(confirmed(&messages[i], confirm.await));
        }
        out.into_iter()
            .map(|r| r.expect("every message has an outcome"))
            .collect()
    }

    /// Declares every destination queue and checks every named exchange of
    /// `messages`, once each; returns the refused names with why. Err if
    /// the broker cannot be reached.
    async fn declare_targets(
        &mut self,
        messages: &[Message],
    ) -> Result<HashMap<String, PublishError>, PublishError> {
        let mut refused: HashMap<String, PublishError> = HashMap::new();
        let opts = self.opts.clone();
        for m in messages {
            let targets = [
                Target::Queue(m.route.queue.as_str()),
                Target::Exchange(m.route.exchange.as_str()),
            ];
            for target in targets {
                let name = target.name();
                if name.is_empty() || refused.contains_key(name) {
                    continue;
                }
                let link = self.link().await?;
                let r = link
                    .declared
                    .ensure(&link.conn, &mut link.channel, target, &opts)
                    .await;
                if let Err(e) = r {
                    warn!(broker = %self.masked, error = %e, "AMQP declaration failed");
                    refused.insert(name.to_string(), e);
                }
            }
        }
        Ok(refused)
    }
}

/// Publishes each message whose queue and exchange were not `refused`
/// (those get the refusal in `out`); returns the confirms to wait for, by
/// message index.
async fn send_all(
    channel: &Channel,
    messages: &[Message],
    refused: &HashMap<String, PublishError>,
    out: &mut Outcomes,
) -> Vec<(usize, PublisherConfirm)> {
    let mut pending = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if let Some(e) = refused
            .get(&m.route.queue)
            .or_else(|| refused.get(&m.route.exchange))
        {
            out[i] = Some(Err(e.clone()));
            continue;
        }
        let r = channel
            .basic_publish(
                m.route.exchange.as_str().into(),
                m.route.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &m.body(),
                properties(m),
            )
            .await;
        match r {
            Ok(confirm) => pending.push((i, confirm)),
            // Refused before anything went out (channel or connection closed).
            Err(e) => {
                out[i] = Some(Err(PublishError::Unavailable(format!(
                    "AMQP publish not sent: {e}"
                ))))
            }
        }
    }
    pending
}

/// What RabbitMQ's answer to the publish of `m` means.
fn confirmed(m: &Message, confirm: lapin::Result<Confirmation>) -> Result<(), PublishError> {
    match confirm {
        Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
        Ok(Confirmation::Ack(Some(ret))) => Err(PublishError::Unavailable(format!(
            "RabbitMQ returned the message as unroutable ({} {}): exchange `{}` routing key `{}` reaches no queue",
            ret.reply_code, ret.reply_text, m.route.exchange, m.route.routing_key
        ))),
        Ok(Confirmation::Nack(_)) => Err(PublishError::Unavailable(
            "RabbitMQ nacked the message (not stored)".into(),
        )),
        Err(e) => Err(PublishError::Unknown(format!(
            "AMQP confirm not received: {e}"
        ))),
    }
}

async fn open_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

impl super::Broker for AmqpBroker {
    fn ping(&mut self) -> crate::ports::BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(AmqpBroker::ping(self))
    }

    fn publish<'a>(
        &'a mut self,
        messages: &'a [Message],
    ) -> crate::ports::BoxFuture<'a, super::Published> {
        Box::pin(AmqpBroker::publish(self, messages))
    }
}
