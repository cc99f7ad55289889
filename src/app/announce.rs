//! What `metronome run` says once the scheduler is up: each entry's next
//! run, soonest first, so that a new user sees at once what will happen
//! and when. Bounded: past [`SHOWN`] entries the rest are counted.

use std::collections::BinaryHeap;

use jiff::Timestamp;

use metronome::service::Handle;

use super::LOG_TARGET;

/// Entries whose next run is logged one by one.
pub const SHOWN: usize = 50;

/// One line to log: (due, name, task, due in the entry's zone).
type Line = (Timestamp, String, String, String);

/// Logs the next runs once the loop answers (it does after its first
/// turn; a stopped loop logs nothing).
pub async fn next_runs(handle: Handle) {
    let Some((lines, more, idle)) = handle.inspect(soonest).await else {
        return;
    };
    for (due, name, task, local) in &lines {
        tracing::info!(target: LOG_TARGET, entry = %name, task = %task, at = %local, utc = %due, "next run");
    }
    if more > 0 {
        tracing::info!(target: LOG_TARGET, more,
            "next run: {more} more entries not listed (GET /api/v1/next-runs or `metronome next` lists them)");
    }
    if idle > 0 {
        tracing::info!(target: LOG_TARGET, entries = idle, "no next run: disabled, past end_at, or a one-off already run");
    }
}

/// The [`SHOWN`] soonest next runs in time order, how many more have one,
/// and how many have none (or are disabled).
fn soonest(s: &metronome::engine::Scheduler) -> (Vec<Line>, usize, usize) {
    // A max-heap of the soonest SHOWN: one pass, SHOWN entries of memory.
    let mut heap: BinaryHeap<(Timestamp, usize)> = BinaryHeap::new();
    let (mut scheduled, mut idle) = (0usize, 0usize);
    for (i, (e, _, next)) in s.iter().enumerate() {
        let Some(run) = next.filter(|_| e.enabled) else {
            idle += 1;
            continue;
        };
        scheduled += 1;
        heap.push((run.due, i));
        if heap.len() > SHOWN {
            heap.pop();
        }
    }
    // Slot order to line order; a second pass names the chosen entries.
    let sorted = heap.into_sorted_vec();
    let place: std::collections::HashMap<usize, usize> = sorted
        .iter()
        .enumerate()
        .map(|(at, (_, i))| (*i, at))
        .collect();
    let mut lines: Vec<Option<Line>> = vec![None; sorted.len()];
    for (i, (e, _, _)) in s.iter().enumerate() {
        let Some(&at) = place.get(&i) else { continue };
        let due = sorted[at].0;
        let local = due
            .to_zoned(e.timezone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
            .to_string();
        lines[at] = Some((due, e.name.clone(), e.task.to_string(), local));
    }
    let lines: Vec<Line> = lines.into_iter().flatten().collect();
    let more = scheduled - lines.len();
    (lines, more, idle)
}
