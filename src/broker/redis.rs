//! `redis://` and `rediss://`: publishing as kombu's Redis transport does.
//!
//! Each message is `LPUSH`ed, in kombu's JSON envelope, onto the list kombu
//! workers `BRPOP`: the queue name for priorities 0–2, `queue\x06\x16{3,6,9}`
//! for the higher steps (on Redis, lower numbers are served first). Before the
//! pushes the queue's binding is written to `_kombu.binding.<queue>` and
//! `_kombu.binding_permanent.<queue>`, as kombu 5.7 does when it declares a
//! queue. A batch goes out as pipelines of up to [`CHUNK`] messages, up to
//! [`IN_FLIGHT`] of them on the wire at once (the next is encoded while
//! Redis stores the previous); consecutive messages for one list share one
//! multi-value `LPUSH`.
//!
//! # Honest outcomes
//!
//! A write whose reply never came may still have been executed, so it is
//! [`PublishError::Unknown`]. To keep that case rare, every batch starts with a
//! `PING`: if the connection is gone (refused, reset, timed out) nothing was
//! sent and the batch is [`PublishError::Unavailable`]. The connection manager
//! reconnects in the background; the service loop's backoff paces retries.
//!
//! # Fenced publishing
//!
//! When the lease lives on the same Redis server and db,
//! [`RedisBroker::publish_fenced`] sends each chunk of up to
//! [`FENCED_CHUNK`] messages as one Lua script: it checks that the lease key
//! still holds the leader's `token:fence`, then per message `LPUSH`es the
//! envelope and `HSET`s the entry's new run state. Scripts run atomically,
//! so a deposed leader publishes nothing, and a publish is never separated
//! from its state record. Such a script is not Redis Cluster safe (keys
//! are passed as arguments); Cluster is not supported for the lease anyway.
//!
//! # URL
//!
//! Celery's forms: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://…` for TLS (rustls, system roots). The query parameter
//! `global_keyprefix=P` mirrors kombu's `broker_transport_options`
//! `global_keyprefix`: every key is prefixed with `P`.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use tracing::{debug, warn};

use super::{AtomicPublish, Broker, BrokerUrlError, PublishError, Published, mask_url};
use crate::celery::message::{
    Message, Route, redis_envelope_bytes, redis_queue_key, write_redis_envelope,
};
use crate::ports::BoxFuture;

/// Messages per pipeline: small enough that encoding the next chunk
/// overlaps with Redis storing this one, large enough that a burst needs
/// few round trips (about 1 MB each).
pub const CHUNK: usize = 1000;

/// Pipelines handed to the connection and not yet answered, at most.
pub const IN_FLIGHT: usize = 2;

/// A typical envelope's size, to size a push's buffer once.
const ENVELOPE_HINT: usize = 1100;

type Replies = redis::RedisResult<Vec<redis::RedisResult<i64>>>;

/// A pipeline handed to the connection: its reply, and how many messages
/// each of its pushes carries.
struct Chunk {
    reply: Pin<Box<dyn Future<Output = Replies> + Send>>,
    /// The reply, if it came during [`Chunk::submit`].
    early: Option<Replies>,
    groups: Vec<usize>,
    len: usize,
}

impl Chunk {
    /// Polls the request once: that queues it on the multiplexed
    /// connection (in call order), which writes it while we go on.
    async fn submit(&mut self) {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = self.reply.as_mut().poll(cx) {
                self.early = Some(r);
            }
            Poll::Ready(())
        })
        .await;
        // Let the connection's task (woken on this worker) write it now.
        tokio::task::yield_now().await;
    }
}

/// Messages per fenced script call: keeps one script's run time to a few
/// milliseconds while a burst still needs few round trips.
pub const FENCED_CHUNK: usize = 1000;

/// What a fenced publish checks and where it records run state.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    /// The lease key and the value it must hold (`token:fence`).
    pub lease_key: &'a str,
    pub value: &'a str,
    /// The run-state hash.
    pub state_key: &'a str,
}

const FENCED: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local nb = tonumber(ARGV[2])
local i = 3
for _ = 1, nb do
  redis.call('SADD', ARGV[i], ARGV[i + 1])
  i = i + 2
end
local n = tonumber(ARGV[i])
i = i + 1
local out = {}
for j = 1, n do
  local r = redis.pcall('LPUSH', ARGV[i], ARGV[i + 1])
  if type(r) == 'table' and r.err then
    out[j] = r.err
  else
    redis.call('HSET', KEYS[2], ARGV[i + 2], ARGV[i + 3])
    out[j] = 1
  end
  i = i + 4
end
return out
"#;

/// kombu's separator inside binding members and priority list names.
const SEP: &str = "\x06\x16";

/// How long one reply may take. A pipeline of [`CHUNK`] pushes takes a few
/// milliseconds; anything near this means a stalled server.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis broker; connects lazily and reconnects by itself.
pub struct RedisBroker {
    client: Client,
    conn: Option<ConnectionManager>,
    prefix: String,
    masked: String,
    /// Set when this Redis also holds the lease and the run state: then
    /// the broker offers [`AtomicPublish`].
    fence: Option<FenceKeys>,
}

/// The lease key and the run-state hash of a lease kept on the broker's
/// own Redis (same server, same db).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceKeys {
    pub lease: String,
    pub state: String,
}

impl RedisBroker {
    /// Validates `url`; does not connect yet (see [`RedisBroker::ping`]).
    pub fn new(url: &str) -> Result<RedisBroker, BrokerUrlError> {
        let masked = mask_url(url);
        let bad = |reason: String| BrokerUrlError {
            url: masked.clone(),
            reason,
        };
        let (url, prefix) = take_prefix(url).map_err(bad)?;
        if url.starts_with("rediss://") {
            crate::tls::install_crypto_provider();
        }
        let client = Client::open(url.as_str()).map_err(|e| bad(e.to_string()))?;
        Ok(RedisBroker {
            client,
            conn: None,
            prefix,
            masked,
            fence: None,
        })
    }

    /// Makes every publish under a lease fenced: the lease held in
    /// `keys.lease` on this same Redis is checked, and each run's state
    /// written to `keys.state`, in the script that pushes the messages.
    pub fn fence_with(&mut self, keys: FenceKeys) {
        self.fence = Some(keys);
    }

    /// The kombu key prefix in use (`""` if none).
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Checks that the server answers; for start-up logs and readiness.
    pub async fn ping(&mut self) -> Result<(), PublishError> {
        let mut conn = self.connection().await?;
        probe(&mut conn).await
    }

    async fn connection(&mut self) -> Result<ConnectionManager, PublishError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| unavailable(&self.masked, &e))?;
        debug!(broker = %self.masked, "redis connection established");
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Pushes `messages` in order; one result per message.
    ///
    /// Chunks of [`CHUNK`] go out as pipelines on the one connection, up to
    /// [`IN_FLIGHT`] at a time: chunk k+1 is encoded while Redis works on
    /// chunk k, and order is kept because every chunk is handed to the
    /// connection before the next is built. Once a chunk fails, no later
    /// chunk is sent: those are "not delivered"; the failed one and any
    /// still in flight get their own outcome (usually "unknown").
    pub async fn publish(&mut self, messages: &[Message]) -> Vec<Result<(), PublishError>> {
        if messages.is_empty() {
            return Vec::new();
        }
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => return vec![Err(e); messages.len()],
        };
        if let Err(e) = probe(&mut conn).await {
            warn!(broker = %self.masked, error = %e, "redis not reachable; nothing sent");
            return vec![Err(e); messages.len()];
        }
        let mut out = Vec::with_capacity(messages.len());
        let mut flight: VecDeque<Chunk> = VecDeque::with_capacity(IN_FLIGHT);
        let mut failed = false;
        let mut scratch = Vec::new();
        for chunk in messages.chunks(CHUNK) {
            if flight.len() == IN_FLIGHT {
                failed |= self
                    .settle(flight.pop_front().expect("full"), &mut out)
                    .await;
            }
            if failed {
                while let Some(c) = flight.pop_front() {
                    self.settle(c, &mut out).await;
                }
                let e = PublishError::Unavailable(format!(
                    "not sent: an earlier pipeline to redis at {} failed",
                    self.masked
                ));
                out.extend(chunk.iter().map(|_| Err(e.clone())));
                continue;
            }
            let (pipe, groups) = self.pipeline(chunk, &mut scratch);
            let mut c = conn.clone();
            let mut sent = Chunk {
                reply: Box::pin(async move {
                    pipe.query_async::<Vec<redis::RedisResult<i64>>>(&mut c)
                        .await
                }),
                early: None,
                groups,
                len: chunk.len(),
            };
            sent.submit().await;
            flight.push_back(sent);
        }
        while let Some(c) = flight.pop_front() {
            self.settle(c, &mut out).await;
        }
        out
    }

    /// Waits for a chunk's replies and appends one result per message;
    /// true if the round trip failed.
    async fn settle(&self, c: Chunk, out: &mut Vec<Result<(), PublishError>>) -> bool {
        let reply = match c.early {
            Some(r) => r,
            None => c.reply.await,
        };
        match reply {
            Ok(results) if results.len() == c.groups.len() => {
                for (r, n) in results.into_iter().zip(&c.groups) {
                    // A command the server refused (WRONGTYPE, OOM…) did nothing.
                    let r = r.map(|_| ()).map_err(|e| {
                        PublishError::Unavailable(format!("redis refused LPUSH: {e}"))
                    });
                    out.extend(std::iter::repeat_n(r, *n));
                }
                false
            }
            Ok(results) => {
                let e = format!(
                    "redis answered {} replies for {} pushes",
                    results.len(),
                    c.groups.len()
                );
                out.extend((0..c.len).map(|_| Err(PublishError::Unknown(e.clone()))));
                true
            }
            Err(e) => {
                let err = self.send_error(&e);
                out.extend((0..c.len).map(|_| Err(err.clone())));
                true
            }
        }
    }

    /// Publishes `messages` only if the lease key still holds
    /// `fence.value`, recording `states[i]` (entry name, run state JSON)
    /// with message `i` in the same script. One result per message;
    /// [`PublishError::Deposed`] for every message once the check fails.
    pub async fn publish_fenced(
        &mut self,
        messages: &[Message],
        states: &[(&str, String)],
        fence: Fence<'_>,
    ) -> Vec<Result<(), PublishError>> {
        debug_assert_eq!(messages.len(), states.len());
        if messages.is_empty() {
            return Vec::new();
        }
        let mut conn = match self.connection().await {
            Ok(c) => c,
            Err(e) => return vec![Err(e); messages.len()],
        };
        if let Err(e) = probe(&mut conn).await {
            warn!(broker = %self.masked, error = %e, "redis not reachable; nothing sent");
            return vec![Err(e); messages.len()];
        }
        let script = redis::Script::new(FENCED);
        let mut out = Vec::with_capacity(messages.len());
        for (chunk, st) in messages
            .chunks(FENCED_CHUNK)
            .zip(states.chunks(FENCED_CHUNK))
        {
            if out.iter().any(|r| matches!(r, Err(PublishError::Deposed))) {
                out.extend(chunk.iter().map(|_| Err(PublishError::Deposed)));
                continue;
            }
            let mut inv = script.prepare_invoke();
            inv.key(fence.lease_key)
                .key(fence.state_key)
                .arg(fence.value);
            let queues: BTreeSet<&str> = chunk.iter().map(|m| m.route.queue.as_str()).collect();
            inv.arg(queues.len() * 2);
            for q in queues {
                let member = binding_member(q);
                for set in ["_kombu.binding.", "_kombu.binding_permanent."] {
                    inv.arg(format!("{}{set}{q}", self.prefix)).arg(&member);
                }
            }
            inv.arg(chunk.len());
            let mut keys = ListKeys::default();
            for (m, (name, json)) in chunk.iter().zip(st) {
                inv.arg(keys.get(self, m))
                    .arg(redis_envelope_bytes(m))
                    .arg(*name)
                    .arg(json);
            }
            match inv.invoke_async::<redis::Value>(&mut conn).await {
                Ok(redis::Value::Int(-1)) => {
                    out.extend(chunk.iter().map(|_| Err(PublishError::Deposed)));
                }
                Ok(redis::Value::Array(items)) if items.len() == chunk.len() => {
                    out.extend(items.into_iter().map(|v| match v {
                        redis::Value::Int(1) => Ok(()),
                        other => Err(PublishError::Unavailable(format!(
                            "redis refused LPUSH: {other:?}"
                        ))),
                    }));
                }
                Ok(other) => {
                    let e = format!("unexpected reply to the fenced publish: {other:?}");
                    out.extend(chunk.iter().map(|_| Err(PublishError::Unknown(e.clone()))));
                }
                Err(e) => {
                    let err = self.send_error(&e);
                    out.extend(chunk.iter().map(|_| Err(err.clone())));
                }
            }
        }
        out
    }

    /// What a failed round trip means: refused before sending is "not
    /// delivered"; anything else (sent but no reply, or a script error after
    /// some writes) may have been executed, so the outcome is unknown.
    fn send_error(&self, e: &redis::RedisError) -> PublishError {
        if e.is_connection_refusal() {
            unavailable(&self.masked, e)
        } else {
            PublishError::Unknown(format!("redis at {}: {e}", self.masked))
        }
    }

    /// One round trip: the bindings of the chunk's queues, then one `LPUSH`
    /// per run of consecutive messages for the same list, its values in
    /// message order (Redis pushes them one after another, exactly as
    /// separate `LPUSH`es would). Only the pushes' replies are returned;
    /// the second value is the number of messages behind each push.
    fn pipeline(&self, chunk: &[Message], scratch: &mut Vec<u8>) -> (redis::Pipeline, Vec<usize>) {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let queues: BTreeSet<&str> = chunk.iter().map(|m| m.route.queue.as_str()).collect();
        for q in queues {
            let member = binding_member(q);
            for set in ["_kombu.binding.", "_kombu.binding_permanent."] {
                pipe.cmd("SADD")
                    .arg(format!("{}{set}{q}", self.prefix))
                    .arg(&member)
                    .ignore();
            }
        }
        let mut groups = Vec::new();
        let mut rest = chunk;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take_while(|m| m.route.queue == first.route.queue && m.priority == first.priority)
                .count();
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let key = self.list_key(&first.route, first.priority);
            let mut cmd = redis::Cmd::with_capacity(n + 2, 16 + key.len() + n * ENVELOPE_HINT);
            cmd.arg("LPUSH").arg(&key);
            for m in run {
                scratch.clear();
                write_redis_envelope(m, scratch);
                cmd.arg(&scratch[..]);
            }
            pipe.add_command(cmd);
            groups.push(n);
        }
        (pipe, groups)
    }

    /// The list a message goes to, with the key prefix.
    pub fn list_key(&self, route: &Route, priority: u8) -> String {
        format!("{}{}", self.prefix, redis_queue_key(&route.queue, priority))
    }
}

/// The list key of the previous message, reused while the queue and
/// priority stay the same (a burst usually goes to one list).
#[derive(Default)]
struct ListKeys {
    last: Option<(String, u8, String)>,
}

impl ListKeys {
    fn get(&mut self, b: &RedisBroker, m: &Message) -> &str {
        let hit = matches!(&self.last, Some((q, p, _)) if *q == m.route.queue && *p == m.priority);
        if !hit {
            self.last = Some((
                m.route.queue.clone(),
                m.priority,
                b.list_key(&m.route, m.priority),
            ));
        }
        &self.last.as_ref().expect("just set").2
    }
}

/// The binding kombu writes when it declares Celery's queue `q`: exchange
/// `q` (direct), routing key `q`, no pattern.
fn binding_member(q: &str) -> String {
    format!("{q}{SEP}{SEP}{q}")
}

/// `PING`, once more if the first fails on a dropped connection (the
/// manager reconnects in between). Nothing else has been sent yet, so any
/// failure means "not delivered".
async fn probe(conn: &mut ConnectionManager) -> Result<(), PublishError> {
    let ping = |mut c: ConnectionManager| async move {
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match ping(conn.clone()).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_unrecoverable_error() || e.is_connection_dropped() => ping(conn.clone())
            .await
            .map(|_| ())
            .map_err(|e| PublishError::Unavailable(format!("redis: {e}"))),
        Err(e) => Err(PublishError::Unavailable(format!("redis: {e}"))),
    }
}

fn unavailable(masked: &str, e: &RedisError) -> PublishError {
    PublishError::Unavailable(format!("cannot reach redis at {masked}: {e}"))
}

/// Splits our own `global_keyprefix` query parameter off the URL; the rest
/// goes to the redis crate unchanged.
fn take_prefix(url: &str) -> Result<(String, String), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), String::new()));
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut prefix = String::new();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("global_keyprefix", v)) => {
                prefix = percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .map_err(|_| "global_keyprefix is not UTF-8".to_string())?
                    .into_owned();
            }
            _ => rest.push(pair),
        }
    }
    let mut url = base.to_string();
    if !rest.is_empty() {
        url.push('?');
        url.push_str(&rest.join("&"));
    }
    if let Some(f) = fragment {
        url.push('#');
        url.push_str(f);
    }
    Ok((url, prefix))
}

impl Broker for RedisBroker {
    fn ping(&mut self) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(RedisBroker::ping(self))
    }

    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Published> {
        Box::pin(RedisBroker::publish(self, messages))
    }

    fn atomic(&mut self) -> Option<&mut dyn AtomicPublish> {
        match self.fence {
            Some(_) => Some(self),
            None => None,
        }
    }
}

impl AtomicPublish for RedisBroker {
    fn publish_fenced<'a>(
        &'a mut self,
        messages: &'a [Message],
        states: &'a [(&'a str, String)],
        value: &'a str,
    ) -> BoxFuture<'a, Published> {
        Box::pin(async move {
            let Some(keys) = self.fence.clone() else {
                return vec![Err(PublishError::Deposed); messages.len()];
            };
            let fence = Fence {
                lease_key: &keys.lease,
                value,
                state_key: &keys.state,
            };
            RedisBroker::publish_fenced(self, messages, states, fence).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_split_off() {
        assert_eq!(
            take_prefix("redis://h/1").unwrap(),
            ("redis://h/1".into(), "".into())
        );
        assert_eq!(
            take_prefix("redis://:p@h:6380/2?global_keyprefix=app%3A&protocol=resp3").unwrap(),
            ("redis://:p@h:6380/2?protocol=resp3".into(), "app:".into())
        );
        assert_eq!(
            take_prefix("rediss://h/0?global_keyprefix=x#insecure").unwrap(),
            ("rediss://h/0#insecure".into(), "x".into())
        );
    }

    #[test]
    fn accepts_celery_url_forms() {
        for u in [
            "redis://localhost",
            "redis://:secret@localhost:6379/3",
            "redis://user:secret@127.0.0.1:6379/0",
            "rediss://:secret@localhost:6380/0",
        ] {
            RedisBroker::new(u).unwrap_or_else(|e| panic!("{u}: {e}"));
        }
        let e = RedisBroker::new("redis://:secret@/x/y").err().unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn binding_member_matches_kombu() {
        assert_eq!(binding_member("celery"), "celery\x06\x16\x06\x16celery");
    }
}
