//! The Redis connection that the lease and the run state share (`--lock`):
//! a direct, TLS or Sentinel URL, connected lazily and reconnected after
//! connection errors (re-asking the sentinels for the master), and the
//! keys kept under the state prefix.
//!
//! URLs: `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS),
//! and Sentinel in kombu's form:
//! `sentinel://[:password@]host:port[;sentinel://host:port…][/db]?master_name=NAME`
//! (a comma-separated host list is accepted too). The password and db
//! apply to the master; the sentinels are asked for the master's address
//! at each (re)connect.
//!
//! **Invariant:** every command waits at most the configured operation
//! timeout, and passwords never leave this module unmasked.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::Mutex;

use crate::redact::mask_url;

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
pub struct RedisLink {
    target: Target,
    config: AsyncConnectionConfig,
    conn: Mutex<Option<MultiplexedConnection>>,
    masked: String,
    /// Host, port and db of a direct URL, to tell whether the broker is the
    /// same server.
    direct: Option<(String, u16, i64)>,
}

impl RedisLink {
    /// Validates `url`; does not connect. `op_timeout` bounds connecting
    /// and every reply.
    pub fn open(url: &str, op_timeout: Duration) -> Result<RedisLink, LockUrlError> {
        let masked = mask_url(url);
        let bad = |reason: String| LockUrlError {
            url: masked.clone(),
            reason,
        };
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let (target, direct) = match scheme {
            "redis" | "rediss" => {
                if scheme == "rediss" {
                    crate::tls::install_crypto_provider();
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
        Ok(RedisLink {
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

    /// Runs one command, as [`RedisLink::invoke`].
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = RedisLink::open("sentinel://:secret@h:1", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn same_server_detection() {
        let s = RedisLink::open("redis://127.0.0.1:6390/1", Duration::from_secs(1)).unwrap();
        assert!(s.same_server_as("redis://localhost:6390/1?global_keyprefix=x"));
        assert!(!s.same_server_as("redis://127.0.0.1:6390/0"));
        assert!(!s.same_server_as("redis://127.0.0.1:6391/1"));
        assert!(!s.same_server_as("amqp://127.0.0.1:6390/1"));
    }
}
