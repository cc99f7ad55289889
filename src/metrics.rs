//! Prometheus metrics: the names, the recorder, and small functions the
//! rest of the process calls (so every metric is defined here once).
//!
//! # Cardinality
//!
//! Per-entry series are bounded by [`set_entry_limit`] (`--metrics-entry-limit`,
//! default [`DEFAULT_ENTRY_LIMIT`]):
//!
//! - counters with an `entry` label give the first *N* distinct entry names
//!   they see a series each; every later name is counted under
//!   `entry="_other"`, so sums over `entry` stay exact;
//! - the next-run gauge ([`NEXT_RUN`]) is rendered at scrape time for the
//!   first *N* enabled entries by name; [`NEXT_RUN_MIN`] covers all.
//!
//! The lateness histogram and every other metric carry no entry label.
//!
//! # For the lease (HA)
//!
//! [`set_leader`] and [`lease_renew_failed`] are the whole API: call them
//! when leadership changes (with the fencing number) and when a renewal
//! fails.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use jiff::{SignedDuration, Timestamp};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Runs published, by `entry`.
pub const DISPATCHED: &str = "metronome_runs_dispatched_total";
/// Runs not published, by `entry` and `reason` (misfire, grace, expired, disabled).
pub const SKIPPED: &str = "metronome_runs_skipped_total";
/// Runs published on request (run-now).
pub const REQUESTED: &str = "metronome_runs_requested_total";
/// Publish errors, by `entry` and `kind`: `unavailable` (not delivered,
/// retried as a missed run) or `unknown` (may have arrived; not retried).
pub const PUBLISH_ERRORS: &str = "metronome_publish_errors_total";
/// Publishes that failed (`unavailable` only; kept from earlier versions).
pub const PUBLISH_FAILURES: &str = "metronome_publish_failures_total";
/// Seconds from a run's due time to its publish.
pub const LATENESS: &str = "metronome_dispatch_lateness_seconds";
/// 1 while this instance holds the lease and dispatches, else 0.
pub const LEADER: &str = "metronome_leader";
/// The fencing number of the lease this instance holds (last held).
pub const FENCE: &str = "metronome_lease_fence";
/// Lease renewals that failed.
pub const LEASE_RENEW_FAILURES: &str = "metronome_lease_renew_failures_total";
/// Entries, by `source` (file, database).
pub const SCHEDULES: &str = "metronome_schedules";
/// Accepted schedule-file reloads.
pub const RELOADS: &str = "metronome_reloads_total";
/// Rejected schedule-file reloads (the old schedule kept running).
pub const RELOAD_ERRORS: &str = "metronome_reload_errors_total";
/// 1 if the last reload attempt was accepted (or none was made), else 0.
pub const RELOAD_OK: &str = "metronome_reload_ok";
/// Unix time of the last accepted reload.
pub const RELOAD_LAST_SUCCESS: &str = "metronome_reload_last_success_timestamp_seconds";
/// Unix time of each entry's next run (first N enabled entries by name).
pub const NEXT_RUN: &str = "metronome_schedule_next_run_timestamp_seconds";
/// Unix time of the earliest next run of any entry.
pub const NEXT_RUN_MIN: &str = "metronome_schedule_next_run_min_timestamp_seconds";

/// Label value for entries beyond the limit.
pub const OTHER: &str = "_other";
/// Default for [`set_entry_limit`].
pub const DEFAULT_ENTRY_LIMIT: usize = 1000;

/// Lateness buckets: 1 ms to 60 s.
pub const LATENESS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static ENTRY_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_ENTRY_LIMIT);
static ADMITTED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

/// Sets how many entries get series of their own (see the module docs).
pub fn set_entry_limit(n: usize) {
    ENTRY_LIMIT.store(n, Ordering::Relaxed);
}

/// How many entries get series of their own.
pub fn entry_limit() -> usize {
    ENTRY_LIMIT.load(Ordering::Relaxed)
}

/// The `entry` label for `name`: the name for the first N names seen,
/// [`OTHER`] after.
pub fn entry_label(name: &str) -> String {
    let mut set = ADMITTED
        .get_or_init(Default::default)
        .lock()
        .expect("metrics label lock");
    if set.contains(name) {
        return name.to_string();
    }
    if set.len() < entry_limit() {
        set.insert(name.to_string());
        return name.to_string();
    }
    OTHER.to_string()
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn install() -> &'static PrometheusHandle {
    static H: OnceLock<PrometheusHandle> = OnceLock::new();
    H.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENESS.to_string()), LATENESS_BUCKETS)
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; ours then shows nothing.
        let _ = ::metrics::set_global_recorder(recorder);
        describe();
        // Series that exist from the start, at zero.
        ::metrics::counter!(DISPATCHED, "entry" => OTHER).absolute(0);
        ::metrics::counter!(REQUESTED).absolute(0);
        ::metrics::counter!(PUBLISH_FAILURES).absolute(0);
        ::metrics::counter!(LEASE_RENEW_FAILURES).absolute(0);
        ::metrics::counter!(RELOADS).absolute(0);
        ::metrics::counter!(RELOAD_ERRORS).absolute(0);
        ::metrics::gauge!(RELOAD_OK).set(1.0);
        handle
    })
}

/// How often [`spawn_upkeep`] drains the exporter.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the exporter's upkeep every [`UPKEEP_EVERY`], so histogram samples
/// are folded into their buckets even when nobody scrapes (they are kept
/// raw until then). Needs a Tokio runtime.
pub fn spawn_upkeep() -> tokio::task::JoinHandle<()> {
    let h = install();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(UPKEEP_EVERY);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            h.run_upkeep();
        }
    })
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(DISPATCHED, "Runs published, by entry");
    describe_counter!(
        SKIPPED,
        "Runs not published, by entry and reason (misfire, grace, expired, disabled)"
    );
    describe_counter!(REQUESTED, "Runs published on request (run-now)");
    describe_counter!(
        PUBLISH_ERRORS,
        "Publish errors by entry and kind (unavailable: retried; unknown: not retried)"
    );
    describe_counter!(PUBLISH_FAILURES, "Publishes not delivered (unavailable)");
    describe_histogram!(
        LATENESS,
        ::metrics::Unit::Seconds,
        "Seconds from a run's due time to its publish"
    );
    describe_gauge!(LEADER, "1 while this instance dispatches (holds the lease)");
    describe_gauge!(FENCE, "Fencing number of the lease held");
    describe_counter!(LEASE_RENEW_FAILURES, "Lease renewals that failed");
    describe_gauge!(SCHEDULES, "Entries by source");
    describe_counter!(RELOADS, "Accepted schedule-file reloads");
    describe_counter!(
        RELOAD_ERRORS,
        "Rejected schedule-file reloads (the previous schedule keeps running)"
    );
    describe_gauge!(RELOAD_OK, "1 if the last reload attempt was accepted");
    describe_gauge!(RELOAD_LAST_SUCCESS, "Unix time of the last accepted reload");
}

/// A run was published `lateness` after its due time.
pub fn dispatched(entry: &str, lateness: SignedDuration) {
    ::metrics::counter!(DISPATCHED, "entry" => entry_label(entry)).increment(1);
    ::metrics::histogram!(LATENESS).record(lateness.as_secs_f64().max(0.0));
}

/// `count` runs were skipped for `reason`.
pub fn skipped(entry: &str, reason: &'static str, count: u64) {
    ::metrics::counter!(SKIPPED, "entry" => entry_label(entry), "reason" => reason)
        .increment(count);
}

/// A run was published on request.
pub fn requested() {
    ::metrics::counter!(REQUESTED).increment(1);
}

/// A publish failed: `unavailable` (not delivered) or `unknown`.
pub fn publish_error(entry: &str, kind: &'static str) {
    ::metrics::counter!(PUBLISH_ERRORS, "entry" => entry_label(entry), "kind" => kind).increment(1);
    if kind == "unavailable" {
        ::metrics::counter!(PUBLISH_FAILURES).increment(1);
    }
}

/// Leadership changed (or was confirmed): `fence` is the lease's fencing
/// number (0 without a lease).
pub fn set_leader(leader: bool, fence: u64) {
    ::metrics::gauge!(LEADER).set(if leader { 1.0 } else { 0.0 });
    ::metrics::gauge!(FENCE).set(fence as f64);
}

/// A lease renewal failed.
pub fn lease_renew_failed() {
    ::metrics::counter!(LEASE_RENEW_FAILURES).increment(1);
}

/// Entries by source.
pub fn set_schedules(file: usize, database: usize) {
    ::metrics::gauge!(SCHEDULES, "source" => "file").set(file as f64);
    ::metrics::gauge!(SCHEDULES, "source" => "database").set(database as f64);
}

/// What the reload metrics mirror, after each attempt.
#[derive(Debug, Clone, Copy)]
pub struct Reloads {
    /// Versions applied, and attempts refused, since start.
    pub applied: u64,
    pub failures: u64,
    /// The latest attempt was accepted.
    pub ok: bool,
    pub last_success: Option<Timestamp>,
}

/// Mirrors the reload status (after each attempt).
pub fn set_reload(r: Reloads) {
    ::metrics::counter!(RELOADS).absolute(r.applied);
    ::metrics::counter!(RELOAD_ERRORS).absolute(r.failures);
    ::metrics::gauge!(RELOAD_OK).set(if r.ok { 1.0 } else { 0.0 });
    if let Some(t) = r.last_success {
        ::metrics::gauge!(RELOAD_LAST_SUCCESS).set(unix(t));
    }
}

fn unix(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// Prometheus text for the next-run gauges: `next` is every enabled entry
/// with its next due time, in any order; only the first
/// [`entry_limit`] by name get a series.
pub fn render_next_runs(mut next: Vec<(&str, Timestamp)>) -> String {
    let mut out = String::new();
    let min = next.iter().map(|(_, t)| *t).min();
    next.sort_unstable_by(|a, b| a.0.cmp(b.0));
    next.truncate(entry_limit());
    let _ = writeln!(
        out,
        "# HELP {NEXT_RUN} Unix time of the next run, per entry (first {} enabled entries by name)\n# TYPE {NEXT_RUN} gauge",
        entry_limit()
    );
    for (name, t) in next {
        let _ = writeln!(out, "{NEXT_RUN}{{entry=\"{}\"}} {}", escape(name), unix(t));
    }
    let _ = writeln!(
        out,
        "# HELP {NEXT_RUN_MIN} Unix time of the earliest next run of any entry\n# TYPE {NEXT_RUN_MIN} gauge"
    );
    if let Some(t) = min {
        let _ = writeln!(out, "{NEXT_RUN_MIN} {}", unix(t));
    }
    out
}

/// Escapes a Prometheus label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_runs_are_bounded_and_escaped() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let text = render_next_runs(vec![("b\"x", t), ("a", t)]);
        assert!(text.contains("entry=\"b\\\"x\"} 1767225600"), "{text}");
        assert!(
            text.contains(&format!("{NEXT_RUN_MIN} 1767225600")),
            "{text}"
        );
        let a = text.find("entry=\"a\"").unwrap();
        let b = text.find("entry=\"b").unwrap();
        assert!(a < b, "sorted by name");
    }
}
