//! The timing key of an entry, and the FNV-1a hash it and the jitter use.
//!
//! The key is saved with each entry's run state, so its value must never
//! change between releases: it is defined as the hash of a text (see
//! [`Entry::timing_key`]) and computed without building that text.

use super::Entry;
use crate::schedule::{Fold, Gap, Schedule};

impl Entry {
    /// A key that changes whenever the entry's times change: schedule, zone,
    /// DST rule, bounds or jitter. A changed key means "a new schedule".
    ///
    /// It is the 64-bit FNV-1a hash of the text
    /// `{schedule.to_json()}|{zone}|{dst:?}|{start_at:?}|{end_at:?}|{jitter:?}`
    /// (stored as sixteen hex digits), fed piece by piece without building
    /// the JSON value or the text.
    pub fn timing_key(&self) -> u64 {
        use std::fmt::Write;
        let mut h = Fnv1a(FNV_OFFSET);
        hash_schedule_json(&mut h, &self.schedule);
        h.add(b"|");
        h.add(self.timezone_name.as_bytes());
        h.add(b"|");
        h.add(match (self.dst.gap, self.dst.fold) {
            (Gap::Shift, Fold::First) => b"DstRule { gap: Shift, fold: First }",
            (Gap::Shift, Fold::Both) => b"DstRule { gap: Shift, fold: Both }",
            (Gap::Skip, Fold::First) => b"DstRule { gap: Skip, fold: First }",
            (Gap::Skip, Fold::Both) => b"DstRule { gap: Skip, fold: Both }",
            (Gap::Later, Fold::First) => b"DstRule { gap: Later, fold: First }",
            (Gap::Later, Fold::Both) => b"DstRule { gap: Later, fold: Both }",
        });
        let t = &*self.timing;
        let opt = |h: &mut Fnv1a, v: Option<&dyn std::fmt::Debug>| match v {
            None => h.add(b"|None"),
            Some(v) => write!(h, "|Some({v:?})").expect("hashing cannot fail"),
        };
        opt(&mut h, t.start_at.as_ref().map(|v| v as _));
        opt(&mut h, t.end_at.as_ref().map(|v| v as _));
        opt(&mut h, t.jitter.as_ref().map(|v| v as _));
        h.0
    }
}

/// Feeds `h` the bytes of `s.to_json().to_string()` without building either.
fn hash_schedule_json(h: &mut Fnv1a, s: &Schedule) {
    let json = |h: &mut Fnv1a, v: &dyn erased::Ser| v.write(h);
    match s {
        Schedule::Cron { expr, .. } => {
            h.add(br#"{"cron":"#);
            json(h, expr);
        }
        Schedule::Crontab { fields, .. } => {
            h.add(br#"{"crontab":"#);
            json(h, &**fields);
        }
        Schedule::Every(i) => {
            h.add(br#"{"every":"#);
            json(h, &crate::duration::format(i.every));
        }
        Schedule::Relative(r) => {
            h.add(br#"{"every":"#);
            json(h, &crate::duration::format(r.every));
            h.add(br#","relative":true"#);
        }
        Schedule::Solar(s) => {
            h.add(br#"{"solar":{"event":"#);
            json(h, &s.event.name());
            h.add(br#","latitude":"#);
            json(h, &s.latitude);
            h.add(br#","longitude":"#);
            json(h, &s.longitude);
            h.add(b"}");
        }
        Schedule::At(at) => {
            h.add(br#"{"at":"#);
            json(h, &at.to_string());
        }
    }
    h.add(b"}");
}

/// Serializing a value as compact JSON into the hasher, through one
/// non-generic signature.
mod erased {
    pub trait Ser {
        fn write(&self, h: &mut super::Fnv1a);
    }
    impl<T: serde::Serialize + ?Sized> Ser for T {
        fn write(&self, h: &mut super::Fnv1a) {
            serde_json::to_writer(h, self).expect("hashing cannot fail");
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: stable across processes, platforms and releases.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a(FNV_OFFSET);
    h.add(bytes);
    h.0
}

/// FNV-1a fed by `write!` or as an `io::Write`.
struct Fnv1a(u64);

impl Fnv1a {
    fn add(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.add(s.as_bytes());
        Ok(())
    }
}

impl std::io::Write for Fnv1a {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.add(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use jiff::{SignedDuration, Timestamp};

    use super::*;
    use crate::entry::tests::{EVERY_KIND, sample};
    use crate::schedule::DstRule;

    /// The formula of every earlier release: FNV-1a over the formatted
    /// text. Keys in saved state must not change on upgrade.
    fn timing_key_as_before(e: &Entry) -> String {
        let t = &*e.timing;
        let text = format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}",
            e.schedule.to_json(),
            e.timezone_name,
            e.dst,
            t.start_at,
            t.end_at,
            t.jitter
        );
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    #[test]
    fn timing_key_is_the_hash_of_its_old_text_for_every_kind() {
        let entries =
            crate::source::yaml::load_str("k.yaml", EVERY_KIND, &None).expect("valid entries");
        assert_eq!(entries.len(), 14);
        let kinds: std::collections::BTreeSet<&str> =
            entries.iter().map(|e| e.schedule.kind()).collect();
        assert_eq!(kinds.len(), 5, "every kind is covered");
        for e in &entries {
            assert_eq!(
                format!("{:016x}", e.timing_key()),
                timing_key_as_before(e),
                "{}",
                e.name
            );
        }
        // Fixed values, so a change to `Schedule::to_json` (which the old
        // formula follows) cannot move both sides at once.
        let key = |name: &str| {
            let e = entries.iter().find(|e| e.name == name).expect("entry");
            format!("{:016x}", e.timing_key())
        };
        assert_eq!(key("cron"), GOLDEN_CRON);
        assert_eq!(key("crontab-all"), GOLDEN_CRONTAB);
        assert_eq!(key("every-bounded"), GOLDEN_EVERY);
        assert_eq!(key("solar"), GOLDEN_SOLAR);
        assert_eq!(key("at-civil"), GOLDEN_AT);
    }

    const GOLDEN_CRON: &str = "c1d0a620c8b10238";
    const GOLDEN_CRONTAB: &str = "35711a6eeb854d64";
    const GOLDEN_EVERY: &str = "c17993e06da7f574";
    const GOLDEN_SOLAR: &str = "f1f595ed49cb7432";
    const GOLDEN_AT: &str = "59cafd9af423f5a8";

    #[test]
    fn the_timing_key_changes_with_each_timing_field() {
        let base = sample();
        let mut keys = vec![base.timing_key()];
        let mut e = base.clone();
        e.timing.start_at = Some(Timestamp::UNIX_EPOCH);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timing.end_at = Some(Timestamp::UNIX_EPOCH);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timing.jitter = Some(SignedDuration::from_secs(1));
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.dst = DstRule::default_for(true);
        keys.push(e.timing_key());
        let mut e = base.clone();
        e.timezone_name = "Europe/Berlin".into();
        keys.push(e.timing_key());
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "each field moves the key");
        let mut e = base.clone();
        e.timing.grace = Some(SignedDuration::from_secs(1));
        e.task = "other".into();
        assert_eq!(e.timing_key(), base.timing_key(), "grace and task do not");
    }
}
