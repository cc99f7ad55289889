//! The compact layout of an entry's rarely set parts.
//!
//! Most entries leave kwargs, options and the timing bounds unset. Each of
//! those parts is a [`Sparse`]: one pointer, nothing allocated while it
//! holds the default, so a million plain entries pay eight bytes apiece for
//! each of them.

use serde_json::{Map, Value as Json};

use super::{Options, Timing};

/// A value most entries leave at its default: one pointer, allocated only
/// when set. Reads see the default when unset; writes through `DerefMut`
/// allocate.
#[derive(Clone)]
pub struct Sparse<T: Rare>(Option<Box<T>>);

/// Types kept in a [`Sparse`]: a shared, immutable default.
pub trait Rare: Default + PartialEq + 'static {
    fn empty() -> &'static Self;
}

impl<T: Rare> Sparse<T> {
    /// `v`, stored only if it is not the default.
    pub fn new(v: T) -> Sparse<T> {
        if v == *T::empty() {
            Sparse(None)
        } else {
            Sparse(Some(Box::new(v)))
        }
    }
}

impl<T: Rare> Default for Sparse<T> {
    fn default() -> Self {
        Sparse(None)
    }
}

impl<T: Rare> From<T> for Sparse<T> {
    fn from(v: T) -> Sparse<T> {
        Sparse::new(v)
    }
}

impl<T: Rare> std::ops::Deref for Sparse<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::empty())
    }
}

impl<T: Rare> std::ops::DerefMut for Sparse<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.get_or_insert_with(Default::default)
    }
}

impl<T: Rare> PartialEq for Sparse<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Rare + std::fmt::Debug> std::fmt::Debug for Sparse<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: Rare + serde::Serialize> serde::Serialize for Sparse<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl Rare for Options {
    fn empty() -> &'static Options {
        static EMPTY: std::sync::LazyLock<Options> = std::sync::LazyLock::new(Options::default);
        &EMPTY
    }
}

impl Rare for Map<String, Json> {
    fn empty() -> &'static Map<String, Json> {
        static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);
        &EMPTY
    }
}

impl Rare for Timing {
    fn empty() -> &'static Timing {
        static EMPTY: Timing = Timing {
            start_at: None,
            end_at: None,
            grace: None,
            jitter: None,
        };
        &EMPTY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::sample;

    #[test]
    fn sparse_parts_allocate_only_when_set() {
        let e = sample();
        assert!(e.options.0.is_none() && e.kwargs.0.is_none() && e.timing.0.is_none());
        assert_eq!(*e.options, Options::default());
        let mut o = Options::default();
        assert!(
            Sparse::new(o.clone()).0.is_none(),
            "a default is not stored"
        );
        o.priority = Some(3);
        let s = Sparse::new(o.clone());
        assert_eq!(s.priority, Some(3));
        assert_eq!(s, Sparse::from(o));
        let mut k: Sparse<Map<String, Json>> = Sparse::default();
        k.insert("a".into(), Json::from(1));
        assert_eq!(serde_json::to_string(&k).unwrap(), r#"{"a":1}"#);
    }
}
