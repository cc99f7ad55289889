//! The pool of task and zone names that entries share.
//!
//! A million entries name a few hundred tasks and zones; pooled, each text
//! is stored once instead of once per entry: two heap chunks (32 bytes at
//! least, each) fewer per entry, in a budget of about 1 KB. The pool is global
//! rather than passed in because entries are validated on many threads and
//! from every source (files, the database, the API) through one
//! [`parse_entry`](super::parse_entry) signature: a pool per load would
//! share nothing between sources and reloads, and threading one through
//! would change every caller. Only `entry` reaches it, and what it hands
//! out is a plain [`SharedStr`] value.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// An immutable string shared by every holder (an `Arc<str>` that reads,
/// compares, prints and serializes as the text). [`SharedStr::interned`]
/// gives equal texts one allocation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The pooled copy of `s`: entries naming the same task or zone share
    /// it. The pool forgets texts no entry holds any more whenever it has
    /// doubled since it last looked, so it stays within twice the texts in
    /// use.
    pub(super) fn interned(s: &str) -> SharedStr {
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(a) = pool.texts.get(s) {
            return SharedStr(a.clone());
        }
        if pool.texts.len() >= pool.prune_at {
            pool.texts.retain(|a| Arc::strong_count(a) > 1);
            pool.prune_at = (2 * pool.texts.len()).max(POOL_MIN);
        }
        let a: Arc<str> = s.into();
        pool.texts.insert(a.clone());
        SharedStr(a)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

struct Pool {
    texts: std::collections::HashSet<Arc<str>, crate::NameHasher>,
    prune_at: usize,
}

const POOL_MIN: usize = 1024;

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(|| {
    Mutex::new(Pool {
        texts: Default::default(),
        prune_at: POOL_MIN,
    })
});

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> SharedStr {
        SharedStr(s.into())
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> SharedStr {
        SharedStr(s.into())
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for SharedStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Entry;
    use crate::entry::tests::EVERY_KIND;

    #[test]
    fn entries_share_task_and_zone_names() {
        let entries = crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid");
        let a = entries.iter().find(|e| e.name == "cron").unwrap();
        let b = entries.iter().find(|e| e.name == "every").unwrap();
        assert!(Arc::ptr_eq(&a.task.0, &b.task.0));
        assert!(Arc::ptr_eq(&a.timezone_name.0, &b.timezone_name.0));
        let berlin: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.timezone_name == "Europe/Berlin")
            .collect();
        assert_eq!(berlin.len(), 3);
        assert!(Arc::ptr_eq(
            &berlin[0].timezone_name.0,
            &berlin[2].timezone_name.0
        ));
    }

    #[test]
    fn the_pool_forgets_texts_no_one_holds() {
        let held: Vec<SharedStr> = (0..10)
            .map(|i| SharedStr::interned(&format!("pool-test-held-{i}")))
            .collect();
        for i in 0..5 * POOL_MIN {
            drop(SharedStr::interned(&format!("pool-test-dropped-{i}")));
        }
        let pool = POOL.lock().unwrap();
        assert!(pool.texts.len() <= pool.prune_at.max(2 * POOL_MIN));
        for h in &held {
            assert!(pool.texts.contains(h.as_str()), "held texts stay pooled");
        }
    }
}
