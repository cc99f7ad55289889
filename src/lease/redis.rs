//! The Redis lease: one key, `<prefix>lock`, holds `<token>:<fence>` with a
//! TTL; the fence comes from `INCR <prefix>fence` inside the acquire
//! script, so every acquisition gets a larger number than any before it.
//! Renew and release are compare-and-set scripts on the exact value.
//!
//! **Invariant:** the check, the increment and the write of an acquisition
//! are one script, so two instances can never both take the same term.

use std::sync::Arc;

use redis::{RedisError, Script};

use super::LeaseConfig;
use crate::ports::BoxFuture;
use crate::ports::lease::{Lease, LeaseError};
use crate::redis_link::{Keys, RedisLink};

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

/// One process's handle on a Redis lease.
pub struct RedisLease {
    link: Arc<RedisLink>,
    keys: Keys,
    token: String,
    config: LeaseConfig,
    acquire: Script,
    renew: Script,
    release: Script,
}

impl RedisLease {
    /// A lease with a fresh random token.
    pub fn new(link: Arc<RedisLink>, keys: Keys, config: LeaseConfig) -> RedisLease {
        RedisLease {
            link,
            keys,
            token: uuid::Uuid::new_v4().simple().to_string(),
            config,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The connection, to share with the run state.
    pub fn link(&self) -> Arc<RedisLink> {
        self.link.clone()
    }

    /// Takes the lease if nobody holds it; returns the new fencing number.
    /// A key still holding an older term of our own token is replaced (a
    /// new term, a new fence).
    async fn acquire(&self) -> Result<Option<u64>, RedisError> {
        let mut inv = self.acquire.prepare_invoke();
        inv.key(&self.keys.lock)
            .key(&self.keys.fence)
            .arg(&self.token)
            .arg(self.config.ttl.as_millis() as u64);
        let f: i64 = self.link.invoke(&inv).await?;
        Ok((f > 0).then_some(f as u64))
    }

    /// Runs a compare-and-set script on the lock key: true if it held our
    /// value under `fence` (and the script acted).
    async fn compare_and(
        &self,
        script: &Script,
        fence: u64,
        ttl: bool,
    ) -> Result<bool, RedisError> {
        let mut inv = script.prepare_invoke();
        inv.key(&self.keys.lock).arg(self.value(fence));
        if ttl {
            inv.arg(self.config.ttl.as_millis() as u64);
        }
        let r: i64 = self.link.invoke(&inv).await?;
        Ok(r == 1)
    }

    async fn get(&self) -> Result<Option<String>, RedisError> {
        self.link
            .query(redis::cmd("GET").arg(&self.keys.lock))
            .await
    }
}

fn lease_error(e: RedisError) -> LeaseError {
    LeaseError(Box::new(e))
}

impl Lease for RedisLease {
    fn token(&self) -> &str {
        &self.token
    }

    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<u64>, LeaseError>> {
        Box::pin(async move { self.acquire().await.map_err(lease_error) })
    }

    fn renew(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            self.compare_and(&self.renew, fence, true)
                .await
                .map_err(lease_error)
        })
    }

    fn release(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async move {
            self.compare_and(&self.release, fence, false)
                .await
                .map_err(lease_error)
        })
    }

    fn check<'a>(&'a self, value: &'a str) -> BoxFuture<'a, Result<bool, LeaseError>> {
        Box::pin(async move {
            let v = self.get().await.map_err(lease_error)?;
            Ok(v.as_deref() == Some(value))
        })
    }

    fn holder(&self) -> BoxFuture<'_, Result<Option<String>, LeaseError>> {
        Box::pin(async move { self.get().await.map_err(lease_error) })
    }

    fn describe(&self) -> &str {
        self.link.describe()
    }
}
