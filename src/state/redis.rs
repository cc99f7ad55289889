//! Run state in Redis, for instances sharing a lease (`--lock`).
//!
//! One hash, `<prefix>state`, maps each entry name to its [`EntryState`] as
//! JSON. Every write is *fenced*: a Lua script first checks that the lease
//! key still holds this leader's `token:fence` and writes nothing otherwise,
//! so a deposed leader cannot overwrite its successor's state. A new leader
//! reads the whole hash when it takes over.

use std::collections::BTreeMap;
use std::sync::Arc;

use redis::Script;

use super::EntryState;
use crate::ports::BoxFuture;
use crate::ports::store::{Loaded, StateError, StateStore, States};
use crate::redis_link::{Keys, RedisLink};

/// Fields per script call, so one write never stalls the server long.
pub const CHUNK: usize = 1000;

/// A failed read or write of the run state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisStateError {
    /// The lease is no longer ours: nothing was written.
    #[error("not written: this instance no longer holds the lease")]
    Deposed,
    #[error("run state in redis: {0}")]
    Redis(String),
}

const SAVE: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[2], ARGV[i])
  i = i + 1
end
return 1
"#;

/// The run-state hash and the lease key that fences it.
pub struct RedisState {
    link: Arc<RedisLink>,
    keys: Keys,
    save: Script,
}

impl RedisState {
    pub fn new(link: Arc<RedisLink>, keys: Keys) -> RedisState {
        RedisState {
            link,
            keys,
            save: Script::new(SAVE),
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Every entry's saved state. Unreadable fields are logged and left
    /// out (the entry then starts afresh).
    pub async fn load(&self) -> Result<BTreeMap<String, EntryState>, RedisStateError> {
        let raw: BTreeMap<String, String> = self
            .link
            .query(redis::cmd("HGETALL").arg(&self.keys.state))
            .await
            .map_err(|e| RedisStateError::Redis(e.to_string()))?;
        let mut out = BTreeMap::new();
        for (name, json) in raw {
            match serde_json::from_str(&json) {
                Ok(st) => {
                    out.insert(name, st);
                }
                Err(e) => {
                    tracing::warn!(entry = %name, error = %e, "unreadable run state in redis; the entry starts afresh")
                }
            }
        }
        Ok(out)
    }

    /// Writes `entries` and deletes `removed`, if the lease still holds
    /// `value`. Split into calls of [`CHUNK`] fields; a refusal stops at
    /// the first chunk refused.
    pub async fn save<'a>(
        &self,
        value: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        removed: &[String],
    ) -> Result<(), RedisStateError> {
        let pairs: Vec<(&str, String)> = entries
            .into_iter()
            .map(|(n, s)| (n, serde_json::to_string(s).expect("state serializes")))
            .collect();
        type Chunk<'b> = (&'b [(&'b str, String)], &'b [String]);
        let mut chunks: Vec<Chunk> = pairs.chunks(CHUNK).map(|c| (c, &[][..])).collect();
        chunks.extend(removed.chunks(CHUNK).map(|r| (&[][..], r)));
        for (set, del) in chunks {
            let mut inv = self.save.prepare_invoke();
            inv.key(&self.keys.lock)
                .key(&self.keys.state)
                .arg(value)
                .arg(set.len());
            for (n, json) in set {
                inv.arg(*n).arg(json);
            }
            for n in del {
                inv.arg(n);
            }
            let r: i64 = self
                .link
                .invoke(&inv)
                .await
                .map_err(|e| RedisStateError::Redis(e.to_string()))?;
            if r != 1 {
                return Err(RedisStateError::Deposed);
            }
        }
        Ok(())
    }
}

fn unavailable(e: RedisStateError) -> StateError {
    StateError::Unavailable(Box::new(e))
}

impl StateStore for RedisState {
    fn describe(&self) -> String {
        format!("redis hash {}", self.keys.state)
    }

    /// Writes only under `fence`, and nothing without one (standby).
    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            match fence {
                Some(v) => RedisState::save(self, v, changed, removed)
                    .await
                    .map_err(unavailable),
                None => Ok(()),
            }
        })
    }

    /// The previous leader's last word.
    fn reload(&self) -> BoxFuture<'_, Result<Option<Loaded>, StateError>> {
        Box::pin(async move { self.load().await.map(Some).map_err(unavailable) })
    }

    fn close<'a>(&'a self, _all: States<'a>) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async { Ok(()) })
    }
}
