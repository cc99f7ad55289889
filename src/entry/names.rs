//! Sets of entries keyed by their names.
//!
//! The watcher's map and the API's file-origin map hold up to a million
//! entries; keying them by the entry's own name keeps one copy of each
//! name instead of two.

use std::sync::Arc;

use super::{Entry, Origin};

/// An entry in a set keyed by its name: maps from name to entry without a
/// second copy of each name.
#[derive(Debug, Clone)]
pub struct ByName(pub Arc<Entry>);

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for ByName {}

impl std::hash::Hash for ByName {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.name.as_str().hash(h)
    }
}

impl std::borrow::Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

/// Where the entries defined in files come from, by name (the API and the
/// database syncer refuse to write those names).
#[derive(Debug, Default)]
pub struct FileOrigins(std::collections::HashSet<ByName, crate::NameHasher>);

impl FileOrigins {
    pub fn get(&self, name: &str) -> Option<&Origin> {
        self.0.get(name).map(|e| &e.0.origin)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Arc<Entry>> for FileOrigins {
    fn from_iter<I: IntoIterator<Item = Arc<Entry>>>(it: I) -> Self {
        FileOrigins(it.into_iter().map(ByName).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::tests::EVERY_KIND;

    #[test]
    fn file_origins_find_entries_by_name() {
        let entries = crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid");
        let files: FileOrigins = entries.into_iter().map(Arc::new).collect();
        assert_eq!(files.len(), 14);
        assert_eq!(files.get("solar").unwrap().to_string(), "k.yaml:12:3");
        assert!(files.get("nope").is_none());
    }
}
