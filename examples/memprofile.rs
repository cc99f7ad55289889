//! Where the bytes per entry go: loads N generated entries (the load tool's
//! shape: `job-I`, task `app.tasks.load`, a yearly cron) and reports, per
//! structure, the live heap bytes and allocations it adds, counted by a
//! global allocator, plus the inline sizes of the main types.
//!
//! ```text
//! cargo run --release --example memprofile -- [N]      # default 100000
//! ```
//!
//! "chunk" is what glibc's malloc really reserves for the live allocations
//! (8 bytes of header, 16-byte granules, 32 bytes at least); "RSS" is the
//! process's resident set after each step, as the load tool sees it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use jiff::Timestamp;
use metronome::engine::Scheduler;
use metronome::entry::Entry;

struct Counting;

static BYTES: AtomicI64 = AtomicI64::new(0);
static CHUNK: AtomicI64 = AtomicI64::new(0);
static COUNT: AtomicI64 = AtomicI64::new(0);

fn chunk(size: usize) -> i64 {
    ((size + 8 + 15) & !15).max(32) as i64
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size() as i64, Relaxed);
        CHUNK.fetch_add(chunk(l.size()), Relaxed);
        COUNT.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        BYTES.fetch_sub(l.size() as i64, Relaxed);
        CHUNK.fetch_sub(chunk(l.size()), Relaxed);
        COUNT.fetch_sub(1, Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        BYTES.fetch_add(new as i64 - l.size() as i64, Relaxed);
        CHUNK.fetch_add(chunk(new) - chunk(l.size()), Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn rss() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<i64>().ok())
        .unwrap_or(0)
        * 1024
}

struct Meter {
    n: f64,
    last: (i64, i64, i64, i64),
}

impl Meter {
    fn now() -> (i64, i64, i64, i64) {
        (
            BYTES.load(Relaxed),
            CHUNK.load(Relaxed),
            COUNT.load(Relaxed),
            rss(),
        )
    }
    fn step(&mut self, what: &str) {
        let now = Meter::now();
        let d = |a: i64, b: i64| (a - b) as f64 / self.n;
        println!(
            "{what:<44} {:>8.1} B {:>8.1} B {:>6.2} {:>8.1} B",
            d(now.0, self.last.0),
            d(now.1, self.last.1),
            d(now.2, self.last.2),
            d(now.3, self.last.3),
        );
        self.last = now;
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse().expect("N"))
        .unwrap_or(100_000);
    println!(
        "inline sizes: Entry {} B, Options {} B, Schedule {} B, EntryState {} B, Origin {} B",
        size_of::<Entry>(),
        size_of::<metronome::entry::Options>(),
        size_of::<metronome::schedule::Schedule>(),
        size_of::<metronome::state::EntryState>(),
        size_of::<metronome::entry::Origin>(),
    );
    let mut text = String::from("schedules:\n");
    for i in 0..n {
        use std::fmt::Write;
        writeln!(
            text,
            "  job-{i}:\n    task: app.tasks.load\n    cron: '{} {} 1 1 *'",
            i % 60,
            i % 24
        )
        .unwrap();
    }
    println!("per entry, N = {n}:                              heap     chunk  allocs      RSS");
    let mut m = Meter {
        n: n as f64,
        last: Meter::now(),
    };
    let entries = metronome::source::yaml::load_str("load.yaml", &text, &None).expect("valid");
    drop(text);
    metronome::source::yaml::trim_heap();
    m.step("entries (Vec<Entry>, after trim)");
    let entries: Vec<Arc<Entry>> = entries.into_iter().map(Arc::new).collect();
    metronome::source::yaml::trim_heap();
    m.step("Arc<Entry>");
    let mut sched = Scheduler::new();
    let now = Timestamp::now();
    for e in &entries {
        sched.upsert(Arc::clone(e), None, now);
    }
    m.step("Scheduler::upsert");
    sched.resume(now);
    m.step("Scheduler::resume");
    let files: metronome::entry::FileOrigins = entries.iter().cloned().collect();
    m.step("HTTP name -> origin map");
    let watch: HashSet<_> = entries
        .iter()
        .map(|e| metronome::entry::ByName(Arc::clone(e)))
        .collect();
    m.step("watcher's name -> entry map");
    let total = Meter::now();
    println!(
        "total live: {:.1} B heap, {:.1} B chunk, {:.2} allocations per entry",
        total.0 as f64 / n as f64,
        total.1 as f64 / n as f64,
        total.2 as f64 / n as f64
    );
    drop((files, watch, sched, entries));
}
