//! Leadership: a Redis lease with a fencing number.
//!
//! One key, `<prefix>lock`, holds `<token>:<fence>` with a TTL. The token is
//! random per process (it is also the instance id sent in message headers);
//! the fence is `INCR <prefix>fence`, taken inside the acquire script, so
//! every acquisition — by anyone — gets a larger number than any before it.
//!
//! - **Acquire**: if the key is absent (or still holds an older term of our
//!   own token), `INCR` the fence and `SET key token:fence PX ttl`. One Lua
//!   script, so the check, the increment and the write cannot interleave
//!   with another instance's.
//! - **Renew**: `PEXPIRE` only if the key still holds exactly our value
//!   (compare-and-set script). **Release**: `DEL` likewise (SIGTERM).
//!
//! # When a leader must stop
//!
//! The lease ends on the *server's* clock `ttl` after the server applied the
//! last renewal, which happened after we sent it. Measured on our monotonic
//! clock from when the request was **sent**, the lease is certainly alive
//! until `sent + ttl`, give or take the two clocks' rate difference. We stop
//! dispatching at [`must_stop_at`] = `sent + ttl − margin`, where the margin
//! ([`safety_margin`]) is 1 % of the TTL (clock-rate drift, far above real
//! quartz drift) plus 100 ms (scheduling delays between our check and the
//! server executing a publish). A leader that cannot renew by then becomes a
//! standby and keeps trying to acquire; it never exits for that.
//!
//! # Configuration rule
//!
//! Each lease command waits at most `op_timeout = clamp(ttl/10, 100 ms, 1 s)`
//! for a reply. [`LeaseConfig::new`] accepts a renew period only if
//! `50 ms ≤ renew < ttl/2` and `ttl − margin − renew ≥ 2 × op_timeout`: a
//! renewal that is lost or times out leaves time for at least one more full
//! attempt before the leader has to stop, and at least two renewals fall in
//! every TTL. The TTL itself must be at least 1 s.
//!
//! # URLs
//!
//! `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS), and
//! Sentinel in kombu's form: `sentinel://[:password@]host:port[;sentinel://host:port…][/db]?master_name=NAME`
//! (a comma-separated host list is accepted too). The password and db apply
//! to the master; the sentinels are asked for the master's address at each
//! (re)connect.

use std::ops::Add;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::broker::mask_url;

/// Default lease time-to-live.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How often a standby tries to acquire the lease.
pub const ACQUIRE_POLL: Duration = Duration::from_millis(250);
/// Pause between renew attempts after a failed one.
const RENEW_RETRY: Duration = Duration::from_millis(100);

/// The lease timing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    pub ttl: Duration,
    pub renew: Duration,
}

/// A lease timing that cannot keep the lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    #[error("--lock-ttl {0:?} is too short; it must be at least 1s")]
    TtlTooShort(Duration),
    #[error("--lock-renew {renew:?} is too short; it must be at least 50ms")]
    RenewTooShort { renew: Duration },
    #[error(
        "--lock-renew {renew:?} cannot keep a {ttl:?} lease: it must be less than half the TTL ({half:?})"
    )]
    RenewTooLong {
        renew: Duration,
        ttl: Duration,
        half: Duration,
    },
    #[error(
        "--lock-renew {renew:?} with --lock-ttl {ttl:?} leaves {left:?} after a missed renewal; at least {need:?} (two command timeouts) is needed"
    )]
    NoRoomToRetry {
        renew: Duration,
        ttl: Duration,
        left: Duration,
        need: Duration,
    },
}

impl LeaseConfig {
    /// Checks the rule in the module documentation. `renew` defaults to a
    /// third of the TTL.
    pub fn new(ttl: Duration, renew: Option<Duration>) -> Result<LeaseConfig, LeaseConfigError> {
        if ttl < Duration::from_secs(1) {
            return Err(LeaseConfigError::TtlTooShort(ttl));
        }
        let renew = renew.unwrap_or(ttl / 3);
        if renew < Duration::from_millis(50) {
            return Err(LeaseConfigError::RenewTooShort { renew });
        }
        if renew * 2 >= ttl {
            return Err(LeaseConfigError::RenewTooLong {
                renew,
                ttl,
                half: ttl / 2,
            });
        }
        retry_room(ttl, renew, op_timeout(ttl))?;
        Ok(LeaseConfig { ttl, renew })
    }

    /// See [`safety_margin`].
    pub fn margin(&self) -> Duration {
        safety_margin(self.ttl)
    }

    /// The reply timeout of one lease command.
    pub fn op_timeout(&self) -> Duration {
        op_timeout(self.ttl)
    }
}

/// `clamp(ttl/10, 100 ms, 1 s)`.
fn op_timeout(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The second half of the rule: after a renewal sent at `renew` is lost,
/// two command timeouts must still fit before the leader has to stop.
/// (With today's `op_timeout` the first half implies it for every TTL of
/// at least 1 s; it is kept so a change of timeouts cannot break it.)
fn retry_room(ttl: Duration, renew: Duration, op: Duration) -> Result<(), LeaseConfigError> {
    let left = ttl.saturating_sub(safety_margin(ttl)).saturating_sub(renew);
    let need = op * 2;
    if left < need {
        return Err(LeaseConfigError::NoRoomToRetry {
            renew,
            ttl,
            left,
            need,
        });
    }
    Ok(())
}

/// How long before the lease could lapse a leader stops: 1 % of the TTL
/// (clock-rate drift) plus 100 ms.
pub fn safety_margin(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(100)
}

/// The instant a leader must stop dispatching, given when the request that
/// last set the lease's TTL (acquire or renew) was *sent*. Generic over the
/// clock so it can be tested with a fake one.
pub fn must_stop_at<T: Add<Duration, Output = T>>(sent: T, ttl: Duration, margin: Duration) -> T {
    sent + ttl.saturating_sub(margin)
}

/// The keys under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// `<prefix>lock`: `token:fence`, with the TTL.
    pub lock: String,
    /// `<prefix>fence`: the fencing counter.
    pub fence: String,
    /// `<prefix>state`: hash of entry name → run state JSON.
    pub state: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            lock: format!("{prefix}lock"),
            fence: format!("{prefix}fence"),
            state: format!("{prefix}state"),
        }
    }
}

/// A lock URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid lock URL `{url}`: {reason}")]
pub struct LockUrlError {
    /// The URL with any password masked.
    pub url: String,
    pub reason: String,
}

enum Target {
    Direct(Client),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        node: SentinelNodeConnectionInfo,
    },
}

/// The Redis that holds the lease and the run state: connects lazily,
/// reconnects (re-asking the sentinels) after connection errors.
pub struct Store {
    target: Target,
    config: AsyncConnectionConfig,
    conn: Mutex<Option<MultiplexedConnection>>,
    masked: String,
    /// Host, port and db of a direct URL, to tell whether the broker is the
    /// same server.
    direct: Option<(String, u16, i64)>,
}

impl Store {
    /// Validates `url`; does not connect. `op_timeout` bounds connecting
    /// and every reply.
    pub fn open(url: &str, op_timeout: Duration) -> Result<Store, LockUrlError> {
        let masked = mask_url(url);
        let bad = |reason: String| LockUrlError {
            url: masked.clone(),
            reason,
        };
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let (target, direct) = match scheme {
            "redis" | "rediss" => {
                if scheme == "rediss" {
                    crate::broker::install_crypto_provider();
                }
                let client = Client::open(url).map_err(|e| bad(e.to_string()))?;
                let info = client.get_connection_info();
                let direct = match info.addr() {
                    redis::ConnectionAddr::Tcp(h, p) => {
                        Some((h.clone(), *p, info.redis_settings().db()))
                    }
                    redis::ConnectionAddr::TcpTls { host, port, .. } => {
                        Some((host.clone(), *port, info.redis_settings().db()))
                    }
                    _ => None,
                };
                (Target::Direct(client), direct)
            }
            "sentinel" | "redis+sentinel" => {
                let s = parse_sentinel(url).map_err(bad)?;
                let mut rc = redis::RedisConnectionInfo::default().set_db(s.db);
                if let Some(p) = &s.password {
                    rc = rc.set_password(p);
                }
                if let Some(u) = &s.username {
                    rc = rc.set_username(u);
                }
                let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(rc);
                (
                    Target::Sentinel {
                        sentinels: s.hosts.iter().map(|h| format!("redis://{h}")).collect(),
                        master: s.master,
                        node,
                    },
                    None,
                )
            }
            _ => {
                return Err(bad(
                    "unsupported scheme; expected redis://, rediss:// or sentinel://".into(),
                ));
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout));
        Ok(Store {
            target,
            config,
            conn: Mutex::new(None),
            masked,
            direct,
        })
    }

    /// The URL with the password masked.
    pub fn describe(&self) -> &str {
        &self.masked
    }

    /// True if `broker_url` is a direct Redis URL naming the same host,
    /// port and db as this (direct) store: then dispatch can be fenced
    /// atomically.
    pub fn same_server_as(&self, broker_url: &str) -> bool {
        let Some(mine) = &self.direct else {
            return false;
        };
        let base = broker_url.split_once('?').map_or(broker_url, |(b, _)| b);
        let Ok(c) = Client::open(base) else {
            return false;
        };
        let info = c.get_connection_info();
        let theirs = match info.addr() {
            redis::ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
            redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), *port),
            _ => return false,
        };
        let norm = |h: &str| {
            if h == "localhost" || h == "::1" {
                "127.0.0.1".to_string()
            } else {
                h.to_string()
            }
        };
        norm(&mine.0) == norm(&theirs.0)
            && mine.1 == theirs.1
            && mine.2 == info.redis_settings().db()
    }

    async fn conn(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = &*guard {
            return Ok(c.clone());
        }
        let client = match &self.target {
            Target::Direct(c) => c.clone(),
            Target::Sentinel {
                sentinels,
                master,
                node,
            } => {
                let mut sc = SentinelClient::build(
                    sentinels.clone(),
                    master,
                    Some(node.clone()),
                    SentinelServerType::Master,
                )?;
                sc.async_get_client().await?
            }
        };
        let c = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs `script`; drops the connection after a connection-level error
    /// so the next call reconnects (and re-resolves the master).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut c = self.conn().await?;
        let r = inv.invoke_async(&mut c).await;
        if let Err(e) = &r {
            self.forget_on(e).await;
        }
        r
    }

    /// Runs one command, as [`Store::invoke`].
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisError> {
        let mut c = self.conn().await?;
        let r = cmd.query_async(&mut c).await;
        if let Err(e) = &r {
            self.forget_on(e).await;
        }
        r
    }

    async fn forget_on(&self, e: &RedisError) {
        if e.is_timeout()
            || e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            *self.conn.lock().await = None;
        }
    }
}

struct SentinelUrl {
    hosts: Vec<String>,
    master: String,
    db: i64,
    username: Option<String>,
    password: Option<String>,
}

/// `sentinel://[[user]:pw@]h:p[;sentinel://h:p…][,h:p…][/db]?master_name=M`.
fn parse_sentinel(url: &str) -> Result<SentinelUrl, String> {
    let (body, query) = url.split_once('?').unwrap_or((url, ""));
    let mut master = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("master_name", v)) => {
                master = Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8()
                        .map_err(|_| "master_name is not UTF-8")?
                        .into_owned(),
                )
            }
            _ => return Err(format!("unknown query parameter `{pair}`")),
        }
    }
    let master = master
        .filter(|m| !m.is_empty())
        .ok_or("a Sentinel URL needs `?master_name=NAME`")?;
    let mut hosts = Vec::new();
    let (mut db, mut username, mut password) = (0, None, None);
    for part in body.split(';').filter(|p| !p.is_empty()) {
        let rest = part
            .strip_prefix("sentinel://")
            .or_else(|| part.strip_prefix("redis+sentinel://"))
            .ok_or_else(|| format!("`{}` is not a sentinel:// address", mask_url(part)))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !path.is_empty() {
            db = path
                .parse()
                .map_err(|_| format!("`{path}` is not a database number"))?;
        }
        let hostlist = match authority.rsplit_once('@') {
            Some((userinfo, h)) => {
                let dec = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| "credentials are not UTF-8".to_string())
                };
                match userinfo.split_once(':') {
                    Some((u, p)) => {
                        if !u.is_empty() {
                            username = Some(dec(u)?);
                        }
                        password = Some(dec(p)?);
                    }
                    None => username = Some(dec(userinfo)?),
                }
                h
            }
            None => authority,
        };
        for h in hostlist.split(',').filter(|h| !h.is_empty()) {
            let h = if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:26379")
            };
            hosts.push(h);
        }
    }
    if hosts.is_empty() {
        return Err("no sentinel address".into());
    }
    Ok(SentinelUrl {
        hosts,
        master,
        db,
        username,
        password,
    })
}

const ACQUIRE: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. ':' then
  return -1
end
local f = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. f, 'PX', ARGV[2])
return f
"#;

const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// One process's handle on the lease.
pub struct Lease {
    store: Arc<Store>,
    keys: Keys,
    token: String,
    config: LeaseConfig,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl Lease {
    /// A lease with a fresh random token.
    pub fn new(store: Arc<Store>, keys: Keys, config: LeaseConfig) -> Lease {
        Lease {
            store,
            keys,
            token: uuid::Uuid::new_v4().simple().to_string(),
            config,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// This process's token, also its instance id.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The store, to share with the run state.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// See [`Store::same_server_as`].
    pub fn store_same_server_as(&self, broker_url: &str) -> bool {
        self.store.same_server_as(broker_url)
    }

    /// The lock URL with the password masked.
    pub fn store_describe(&self) -> &str {
        self.store.describe()
    }

    /// The value the lock key holds while we lead under `fence`.
    pub fn value(&self, fence: u64) -> String {
        format!("{}:{fence}", self.token)
    }

    /// Takes the lease if nobody holds it; returns the new fencing number.
    /// A key still holding an older term of our own token is replaced (a
    /// new term, a new fence).
    pub async fn try_acquire(&self) -> Result<Option<u64>, RedisError> {
        let mut inv = self.acquire.prepare_invoke();
        inv.key(&self.keys.lock)
            .key(&self.keys.fence)
            .arg(&self.token)
            .arg(self.config.ttl.as_millis() as u64);
        let f: i64 = self.store.invoke(&inv).await?;
        Ok((f > 0).then_some(f as u64))
    }

    /// Extends the lease to a full TTL if we still hold it under `fence`.
    pub async fn renew(&self, fence: u64) -> Result<bool, RedisError> {
        let mut inv = self.renew.prepare_invoke();
        inv.key(&self.keys.lock)
            .arg(self.value(fence))
            .arg(self.config.ttl.as_millis() as u64);
        let r: i64 = self.store.invoke(&inv).await?;
        Ok(r == 1)
    }

    /// Deletes the lease if we still hold it under `fence`.
    pub async fn release(&self, fence: u64) -> Result<bool, RedisError> {
        let mut inv = self.release.prepare_invoke();
        inv.key(&self.keys.lock).arg(self.value(fence));
        let r: i64 = self.store.invoke(&inv).await?;
        Ok(r == 1)
    }

    /// The lock key's current value (`token:fence`), if any.
    pub async fn holder(&self) -> Result<Option<String>, RedisError> {
        self.store
            .query(redis::cmd("GET").arg(&self.keys.lock))
            .await
    }
}

/// A leadership term as the run loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub fence: u64,
    /// The lock key's value during this term (`token:fence`).
    pub value: String,
    /// Dispatching must stop at this instant unless the lease is renewed
    /// (which moves it; read it fresh before each batch).
    pub until: Instant,
}

/// This instance's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Standby,
    Leader(Term),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Leader(_) => "leader",
        }
    }

    /// The term, if leading and its deadline has not passed at `now`.
    pub fn term_at(&self, now: Instant) -> Option<&Term> {
        match self {
            Role::Leader(t) if now < t.until => Some(t),
            _ => None,
        }
    }
}

/// Keeps the lease: acquires it while standing by, renews it while
/// leading, steps down at the deadline, and releases it once `stop` turns
/// true. Publishes the role on `tx`; a renewal only moves `until` without
/// waking receivers, a change of role or term wakes them.
pub async fn run(lease: Lease, tx: watch::Sender<Role>, mut stop: watch::Receiver<bool>) {
    let cfg = lease.config;
    let margin = cfg.margin();
    let op = cfg.op_timeout();
    // (fence, deadline, when to renew next)
    let mut held: Option<(u64, Instant, Instant)> = None;
    let mut failing = false;
    loop {
        if *stop.borrow() {
            break;
        }
        match held {
            None => {
                let sent = Instant::now();
                match tokio::time::timeout(op, lease.try_acquire()).await {
                    Ok(Ok(Some(fence))) => {
                        let until = must_stop_at(sent, cfg.ttl, margin);
                        held = Some((fence, until, sent + cfg.renew));
                        failing = false;
                        info!(instance = %lease.token, fence, ttl_ms = cfg.ttl.as_millis() as u64, "lease acquired; leading");
                        metrics::counter!("metronome_lease_acquired_total").increment(1);
                        crate::metrics::set_leader(true, fence);
                        tx.send_replace(Role::Leader(Term {
                            fence,
                            value: lease.value(fence),
                            until,
                        }));
                        continue;
                    }
                    Ok(Ok(None)) => failing = false,
                    Ok(Err(e)) => {
                        if !failing {
                            warn!(lock = %lease.store.describe(), error = %e, "cannot reach the lease store; standing by");
                        }
                        failing = true;
                    }
                    Err(_) => {
                        if !failing {
                            warn!(lock = %lease.store.describe(), "the lease store does not answer; standing by");
                        }
                        failing = true;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(ACQUIRE_POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Some((fence, until, next)) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(next.min(until)) => {}
                    _ = stop.changed() => continue,
                }
                if Instant::now() >= until {
                    step_down(&tx, &mut held, fence, "lease not renewed in time");
                    continue;
                }
                let sent = Instant::now();
                let r = tokio::select! {
                    r = lease.renew(fence) => Some(r),
                    _ = tokio::time::sleep_until(until) => None,
                };
                match r {
                    Some(Ok(true)) => {
                        let until = must_stop_at(sent, cfg.ttl, margin);
                        held = Some((fence, until, sent + cfg.renew));
                        tx.send_if_modified(|r| {
                            if let Role::Leader(t) = r {
                                t.until = until;
                            }
                            false
                        });
                    }
                    Some(Ok(false)) => step_down(
                        &tx,
                        &mut held,
                        fence,
                        "lease lost (held by another instance or expired)",
                    ),
                    Some(Err(e)) => {
                        crate::metrics::lease_renew_failed();
                        warn!(fence, error = %e, "lease renewal failed; retrying");
                        held = Some((fence, until, Instant::now() + RENEW_RETRY));
                    }
                    None => step_down(&tx, &mut held, fence, "lease not renewed in time"),
                }
            }
        }
    }
    if let Some((fence, _, _)) = held {
        tx.send_replace(Role::Standby);
        crate::metrics::set_leader(false, 0);
        match tokio::time::timeout(op * 2, lease.release(fence)).await {
            Ok(Ok(true)) => info!(fence, "lease released"),
            Ok(Ok(false)) => info!(fence, "lease already gone at release"),
            Ok(Err(e)) => warn!(fence, error = %e, "lease release failed; it will expire"),
            Err(_) => warn!(fence, "lease release timed out; it will expire"),
        }
    }
}

fn step_down(
    tx: &watch::Sender<Role>,
    held: &mut Option<(u64, Instant, Instant)>,
    fence: u64,
    why: &str,
) {
    *held = None;
    tx.send_replace(Role::Standby);
    crate::metrics::set_leader(false, 0);
    crate::metrics::lease_renew_failed();
    metrics::counter!("metronome_lease_lost_total").increment(1);
    warn!(fence, reason = why, "stopped dispatching; standing by");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_counts_from_send_time() {
        // Fake clock: milliseconds as a Duration since an arbitrary origin.
        let ttl = Duration::from_secs(10);
        let m = safety_margin(ttl);
        assert_eq!(m, Duration::from_millis(200));
        let sent = Duration::from_millis(5_000);
        assert_eq!(must_stop_at(sent, ttl, m), Duration::from_millis(14_800));
        // 2 s lease: 120 ms margin.
        let ttl = Duration::from_secs(2);
        assert_eq!(
            must_stop_at(Duration::ZERO, ttl, safety_margin(ttl)),
            Duration::from_millis(1_880)
        );
        // A margin larger than the TTL never yields a time before `sent`.
        assert_eq!(
            must_stop_at(sent, Duration::from_millis(50), Duration::from_millis(100)),
            sent
        );
    }

    #[test]
    fn deadline_is_safe_against_a_slow_reply() {
        // The renewal reached the server 300 ms after we sent it and the
        // reply took 400 ms more: the server's lease ends at sent+300+ttl,
        // ours at sent+ttl-margin, so we stop first whatever the delays.
        let ttl = Duration::from_secs(10);
        let sent = Duration::from_millis(1_000);
        let server_expiry = sent + Duration::from_millis(300) + ttl;
        assert!(must_stop_at(sent, ttl, safety_margin(ttl)) < server_expiry);
    }

    #[test]
    fn config_defaults_and_rule() {
        let c = LeaseConfig::new(DEFAULT_TTL, None).unwrap();
        assert_eq!(c.renew, Duration::from_secs(10) / 3);
        assert_eq!(c.op_timeout(), Duration::from_secs(1));
        let c = LeaseConfig::new(Duration::from_secs(2), None).unwrap();
        assert_eq!(c.op_timeout(), Duration::from_millis(200));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_secs(5))),
            Err(LeaseConfigError::RenewTooLong { .. })
        ));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_secs(6))),
            Err(LeaseConfigError::RenewTooLong { .. })
        ));
        assert!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_millis(4_999))).is_ok()
        );
        assert!(matches!(
            LeaseConfig::new(Duration::from_millis(500), None),
            Err(LeaseConfigError::TtlTooShort(_))
        ));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(5), Some(Duration::from_millis(10))),
            Err(LeaseConfigError::RenewTooShort { .. })
        ));
        // 1 s TTL, 490 ms renew: 1000 - 110 - 490 = 400 ms left >= 2 x 100 ms.
        assert!(LeaseConfig::new(Duration::from_secs(1), Some(Duration::from_millis(490))).is_ok());
    }

    #[test]
    fn no_room_to_retry_is_refused() {
        // 2 s lease, 120 ms margin, 900 ms renew: 980 ms left.
        let (ttl, renew) = (Duration::from_secs(2), Duration::from_millis(900));
        assert!(retry_room(ttl, renew, Duration::from_millis(490)).is_ok());
        assert!(matches!(
            retry_room(ttl, renew, Duration::from_millis(500)),
            Err(LeaseConfigError::NoRoomToRetry { .. })
        ));
        // The shortest legal lease still has room with the real timeout.
        let ttl = Duration::from_secs(1);
        assert!(retry_room(ttl, Duration::from_millis(499), op_timeout(ttl)).is_ok());
    }

    #[test]
    fn sentinel_urls() {
        let s =
            parse_sentinel("sentinel://:pw@h1:26379;sentinel://h2:26380/2?master_name=mymaster")
                .unwrap();
        assert_eq!(s.hosts, ["h1:26379", "h2:26380"]);
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.db, 2);
        assert_eq!(s.password.as_deref(), Some("pw"));
        let s = parse_sentinel("sentinel://a,b:1?master_name=m").unwrap();
        assert_eq!(s.hosts, ["a:26379", "b:1"]);
        assert!(parse_sentinel("sentinel://a:1").is_err());
        assert!(parse_sentinel("sentinel://a:1?master_name=m&x=1").is_err());
        let e = Store::open("sentinel://:secret@h:1", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn same_server_detection() {
        let s = Store::open("redis://127.0.0.1:6390/1", Duration::from_secs(1)).unwrap();
        assert!(s.same_server_as("redis://localhost:6390/1?global_keyprefix=x"));
        assert!(!s.same_server_as("redis://127.0.0.1:6390/0"));
        assert!(!s.same_server_as("redis://127.0.0.1:6391/1"));
        assert!(!s.same_server_as("amqp://127.0.0.1:6390/1"));
    }
}
