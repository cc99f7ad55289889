//! "Did you mean" hints: the allowed word closest to a misspelt one.

/// The allowed word closest to `word`, if it is close enough to be a typo.
pub(crate) fn suggest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (levenshtein(word, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a)
}

/// The edit distance between `a` and `b`, in characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ENTRY_KEYS;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("cronn", ENTRY_KEYS), Some("cron"));
        assert_eq!(suggest("kwarg", ENTRY_KEYS), Some("kwargs"));
        assert_eq!(suggest("timzone", ENTRY_KEYS), Some("timezone"));
        assert_eq!(suggest("zzzzzzzz", ENTRY_KEYS), None);
    }
}
