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
//! from the queue's. The mode is chosen with the URL query or environment
//! (the query wins):
//!
//! | query | environment | meaning |
//! |---|---|---|
//! | `queue_declare=declare` (default) | `METRONOME_AMQP_QUEUE_DECLARE` | declare as a Celery worker does: exchange `<q>` direct durable, queue `<q>` durable with the arguments below, bound with key `<q>` |
//! | `queue_declare=passive` | | only check that the queue exists (never conflicts) |
//! | `queue_declare=none` | | declare nothing; unroutable messages come back as errors |
//! | `x-max-priority=N` | `METRONOME_AMQP_MAX_PRIORITY` | as workers with `task_queue_max_priority=N` |
//! | `x-queue-type=quorum` | `METRONOME_AMQP_QUEUE_TYPE` | as workers with `task_default_queue_type="quorum"` |
//!
//! The default matches a default Celery worker (queue durable, no
//! arguments). A 406 is reported naming the mismatch and these options.
//!
//! # URL
//!
//! `amqp://user:pass@host:port/vhost` (also `pyamqp://`), `amqps://` for TLS.
//! The vhost is URL-decoded; `/` when empty (`amqp://host//` is `/` too,
//! as in kombu). `heartbeat`, `connection_timeout`, `frame_max` and
//! `channel_max` pass through to the connection.

use std::collections::HashSet;
use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::{Map, Value as Json};
use tracing::{debug, info, warn};

use super::{BrokerUrlError, PublishError, mask_url};
use crate::celery::message::Message;

/// How long connecting (TCP, TLS, AMQP handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How metronome declares queues before publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueDeclare {
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

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            declare: QueueDeclare::Declare,
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

    fn describe(&self) -> String {
        format!(
            "durable, x-max-priority={}, x-queue-type={}",
            self.max_priority
                .map_or("none".to_string(), |p| p.to_string()),
            self.queue_type.as_deref().unwrap_or("none")
        )
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "queue_declare" => {
                self.declare = match value {
                    "declare" => QueueDeclare::Declare,
                    "passive" => QueueDeclare::Passive,
                    "none" => QueueDeclare::None,
                    v => {
                        return Err(format!(
                            "queue_declare must be declare, passive or none, not `{v}`"
                        ));
                    }
                }
            }
            "x-max-priority" => {
                let p: u8 = value
                    .parse()
                    .map_err(|_| format!("x-max-priority must be 0..255, not `{value}`"))?;
                self.max_priority = Some(p);
            }
            "x-queue-type" => {
                self.queue_type = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            _ => return Err(format!("unknown option `{key}`")),
        }
        Ok(())
    }
}

/// Parses a Celery AMQP URL into lapin's form and our options. Environment
/// variables (`METRONOME_AMQP_*`) apply first, the query overrides them.
pub fn parse_url(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(AMQPUri, AmqpOptions), String> {
    let (scheme, rest) = url.split_once("://").ok_or("missing scheme")?;
    let scheme = match scheme {
        "amqp" | "pyamqp" => AMQPScheme::AMQP,
        "amqps" => AMQPScheme::AMQPS,
        s => return Err(format!("not an AMQP scheme: {s}")),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let dec = |s: &str, what: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| format!("{what} is not valid UTF-8 after URL-decoding"))
    };
    let mut user = AMQPUserInfo::default();
    if let Some(u) = userinfo {
        let (name, pass) = u.split_once(':').unwrap_or((u, ""));
        if !name.is_empty() {
            user.username = dec(name, "user name")?;
        }
        if u.contains(':') {
            user.password = dec(pass, "password")?;
        }
    }
    let (host, port) = split_host_port(hostport)?;
    let port = port.unwrap_or(match scheme {
        AMQPScheme::AMQP => 5672,
        AMQPScheme::AMQPS => 5671,
    });
    let vhost = match dec(path, "vhost")? {
        v if v.is_empty() => "/".to_string(),
        v => v,
    };
    let mut opts = AmqpOptions::default();
    for (var, key) in [
        ("METRONOME_AMQP_QUEUE_DECLARE", "queue_declare"),
        ("METRONOME_AMQP_MAX_PRIORITY", "x-max-priority"),
        ("METRONOME_AMQP_QUEUE_TYPE", "x-queue-type"),
    ] {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            opts.set(key, &v).map_err(|e| format!("{var}: {e}"))?;
        }
    }
    let mut q = AMQPQueryString::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (dec(k, "query key")?, dec(v, "query value")?);
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{k}` must be a number, not `{v}`"))
        };
        match k.as_str() {
            "heartbeat" => q.heartbeat = Some(num(&v)? as u16),
            "connection_timeout" => q.connection_timeout = Some(num(&v)?),
            "frame_max" => q.frame_max = Some(num(&v)? as u32),
            "channel_max" => q.channel_max = Some(num(&v)? as u16),
            _ => opts.set(&k, &v)?,
        }
    }
    let uri = AMQPUri {
        scheme,
        authority: AMQPAuthority {
            userinfo: user,
            host,
            port,
        },
        vhost,
        query: q,
    };
    Ok((uri, opts))
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed `[` in host")?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = port
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u16>().map_err(|_| format!("bad port `{p}`")))
        .transpose()?;
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_string(), port))
}

/// Celery's headers as an AMQP field table, typed as py-amqp encodes them:
/// strings as long strings, null as void, lists as arrays, objects as
/// tables, booleans, integers as signed 32-bit (64-bit when larger), floats
/// as doubles.
pub fn field_table(map: &Map<String, Json>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in map {
        t.insert(ShortString::from(k.as_str()), amqp_value(v));
    }
    t
}

fn amqp_value(v: &Json) -> AMQPValue {
    match v {
        Json::Null => AMQPValue::Void,
        Json::Bool(b) => AMQPValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(i) => AMQPValue::LongInt(i),
                    Err(_) => AMQPValue::LongLongInt(i),
                }
            } else {
                // u64 beyond i64, or a float.
                AMQPValue::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Json::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(amqp_value).collect::<Vec<_>>(),
        )),
        Json::Object(o) => AMQPValue::FieldTable(field_table(o)),
    }
}

/// The AMQP properties Celery sets on a task message.
pub fn properties(m: &Message) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_priority(m.priority)
        .with_correlation_id(m.task_id.to_string().into())
        .with_headers(field_table(&m.headers()));
    if !m.reply_to.is_empty() {
        p = p.with_reply_to(m.reply_to.as_str().into());
    }
    if let Some(ms) = m.expiration_ms {
        p = p.with_expiration(ms.to_string().into());
    }
    p
}

/// An open connection with a confirming channel.
struct Link {
    conn: Connection,
    channel: Channel,
    /// Queues declared (or checked) on this connection.
    queues: HashSet<String>,
    /// Named exchanges known to exist on this connection.
    exchanges: HashSet<String>,
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
            parse_url(url, |k| std::env::var(k).ok()).map_err(|reason| BrokerUrlError {
                url: masked.clone(),
                reason,
            })?;
        if uri.scheme == AMQPScheme::AMQPS {
            super::install_crypto_provider();
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
                queues: HashSet::new(),
                exchanges: HashSet::new(),
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
        let mut out: Vec<Option<Result<(), PublishError>>> = vec![None; messages.len()];
        // Declarations first: a failure closes the channel, so each is
        // followed by a fresh channel before going on.
        let mut refused: std::collections::HashMap<String, PublishError> = Default::default();
        for m in messages {
            let targets = [
                (true, m.route.queue.as_str()),
                (false, m.route.exchange.as_str()),
            ];
            for (is_queue, name) in targets {
                if name.is_empty() || refused.contains_key(name) {
                    continue;
                }
                let opts = self.opts.clone();
                let link = match self.link().await {
                    Ok(l) => l,
                    Err(e) => return vec![Err(e); messages.len()],
                };
                let known = if is_queue {
                    &link.queues
                } else {
                    &link.exchanges
                };
                if known.contains(name) {
                    continue;
                }
                let r = if is_queue {
                    declare_queue(&link.channel, name, &opts).await
                } else {
                    check_exchange(&link.channel, name).await
                };
                match r {
                    Ok(()) => {
                        if is_queue {
                            link.queues.insert(name.to_string());
                        } else {
                            link.exchanges.insert(name.to_string());
                        }
                    }
                    Err(e) => {
                        warn!(broker = %self.masked, error = %e, "AMQP declaration failed");
                        refused.insert(name.to_string(), e);
                    }
                }
            }
        }
        let link = match self.link().await {
            Ok(l) => l,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let mut pending = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if let Some(e) = refused
                .get(&m.route.queue)
                .or_else(|| refused.get(&m.route.exchange))
            {
                out[i] = Some(Err(e.clone()));
                continue;
            }
            let r = link
                .channel
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
        for (i, confirm) in pending {
            let m = &messages[i];
            out[i] = Some(match confirm.await {
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
            });
        }
        out.into_iter()
            .map(|r| r.expect("every message has an outcome"))
            .collect()
    }
}

async fn open_channel(conn: &Connection) -> lapin::Result<Channel> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Declares `queue` per the configured mode.
async fn declare_queue(ch: &Channel, queue: &str, o: &AmqpOptions) -> Result<(), PublishError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    match o.declare {
        QueueDeclare::None => Ok(()),
        QueueDeclare::Passive => ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                PublishError::Unavailable(if is_soft(&e, AMQPSoftError::NOTFOUND) {
                    format!(
                        "queue `{queue}` does not exist (queue_declare=passive only checks): \
                         start a worker that consumes it, or use queue_declare=declare; RabbitMQ said: {e}"
                    )
                } else {
                    format!("checking queue `{queue}`: {e}")
                })
            }),
        QueueDeclare::Declare => {
            let r = async {
                ch.exchange_declare(
                    queue.into(),
                    lapin::ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
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
                         `x-queue-type=quorum` for quorum queues) or use `queue_declare=passive`",
                        o.describe()
                    )
                } else {
                    format!("declaring queue `{queue}`: {e}")
                })
            })
        }
    }
}

/// Checks that a named exchange exists, without changing it.
async fn check_exchange(ch: &Channel, exchange: &str) -> Result<(), PublishError> {
    ch.exchange_declare(
        exchange.into(),
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
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

fn is_soft(e: &lapin::Error, kind: AMQPSoftError) -> bool {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => *p.kind() == AMQPErrorKind::Soft(kind),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_celery_urls() {
        let (u, o) = parse_url("amqp://guest:guest@localhost:5672//", no_env).unwrap();
        assert_eq!(u.vhost, "/");
        assert_eq!(u.authority.host, "localhost");
        assert_eq!(u.authority.port, 5672);
        assert_eq!(o, AmqpOptions::default());
        let (u, _) = parse_url("amqp://10.1.2.3", no_env).unwrap();
        assert_eq!(
            (u.authority.host.as_str(), u.vhost.as_str()),
            ("10.1.2.3", "/")
        );
        assert_eq!(u.authority.userinfo.username, "guest");
        let (u, _) = parse_url("amqps://u%40x:p%3Aw@h/my%2Fvhost", no_env).unwrap();
        assert_eq!(u.scheme, AMQPScheme::AMQPS);
        assert_eq!(u.authority.port, 5671);
        assert_eq!(u.authority.userinfo.username, "u@x");
        assert_eq!(u.authority.userinfo.password, "p:w");
        assert_eq!(u.vhost, "my/vhost");
        let (u, o) = parse_url(
            "pyamqp://h:1234/v?queue_declare=passive&x-max-priority=10&x-queue-type=quorum&heartbeat=30",
            no_env,
        )
        .unwrap();
        assert_eq!(u.vhost, "v");
        assert_eq!(u.authority.port, 1234);
        assert_eq!(u.query.heartbeat, Some(30));
        assert_eq!(o.declare, QueueDeclare::Passive);
        assert_eq!(o.max_priority, Some(10));
        assert_eq!(o.queue_type.as_deref(), Some("quorum"));
        assert!(parse_url("amqp://h/?queue_declare=maybe", no_env).is_err());
        assert!(parse_url("amqp://h/?x-max-priority=300", no_env).is_err());
        assert!(parse_url("amqp://h/?bogus=1", no_env).is_err());
    }

    #[test]
    fn query_overrides_environment() {
        let env = |k: &str| match k {
            "METRONOME_AMQP_QUEUE_DECLARE" => Some("none".to_string()),
            "METRONOME_AMQP_MAX_PRIORITY" => Some("5".to_string()),
            _ => None,
        };
        let (_, o) = parse_url("amqp://h//?x-max-priority=10", env).unwrap();
        assert_eq!(o.declare, QueueDeclare::None);
        assert_eq!(o.max_priority, Some(10));
    }

    #[test]
    fn headers_are_typed_like_py_amqp() {
        let h = json!({
            "task": "t", "eta": null, "retries": 0, "big": 5_000_000_000_i64,
            "f": 1.5, "ok": true, "timelimit": [null, 30], "stamps": {"a": "b"}
        });
        let t = field_table(h.as_object().unwrap());
        let get = |k: &str| t.inner().get(&ShortString::from(k)).unwrap().clone();
        assert_eq!(get("task"), AMQPValue::LongString("t".into()));
        assert_eq!(get("eta"), AMQPValue::Void);
        assert_eq!(get("retries"), AMQPValue::LongInt(0));
        assert_eq!(get("big"), AMQPValue::LongLongInt(5_000_000_000));
        assert_eq!(get("f"), AMQPValue::Double(1.5));
        assert_eq!(get("ok"), AMQPValue::Boolean(true));
        assert_eq!(
            get("timelimit"),
            AMQPValue::FieldArray(vec![AMQPValue::Void, AMQPValue::LongInt(30)].into())
        );
        let AMQPValue::FieldTable(st) = get("stamps") else {
            panic!("stamps is a table")
        };
        assert_eq!(
            st.inner().get(&ShortString::from("a")),
            Some(&AMQPValue::LongString("b".into()))
        );
    }
}
