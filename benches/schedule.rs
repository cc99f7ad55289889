//! Benchmarks: next-run computation per schedule kind, loading large
//! schedule files, and the scheduler queue at scale.
//!
//! `cargo bench --bench schedule`; figures are recorded in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use metronome::engine::Scheduler;
use metronome::schedule::calendar::DstRule;
use metronome::schedule::{Cron, Solar, SolarEvent};
use metronome::source::yaml::load_str;
use std::hint::black_box;

fn starts() -> Vec<Timestamp> {
    let base: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    // 1000 start instants spread over a year (7 h 3 m 11 s apart).
    (0..1000)
        .map(|i| {
            base.checked_add(SignedDuration::from_secs(i * 25_391))
                .unwrap()
        })
        .collect()
}

fn next_run(c: &mut Criterion) {
    let mut g = c.benchmark_group("next_after");
    let starts = starts();
    g.throughput(Throughput::Elements(starts.len() as u64));
    for (expr, zone) in [
        ("*/5 * * * *", "UTC"),
        ("30 2 * * *", "America/New_York"),
        ("0 9 * * mon-fri", "Europe/Berlin"),
        ("0 0 1 1 *", "UTC"),
        ("0 0 29 2 *", "UTC"),
        ("0 0 13 * fri", "Australia/Lord_Howe"),
    ] {
        let spec = Cron::parse(expr).unwrap().spec;
        let tz = TimeZone::get(zone).unwrap();
        let rule = DstRule::default_for(spec.fixed_time);
        g.bench_function(BenchmarkId::new("cron", format!("{expr} {zone}")), |b| {
            b.iter(|| {
                for t in &starts {
                    black_box(spec.next_after(&tz, rule, *t));
                }
            })
        });
    }
    let solar = Solar::new(SolarEvent::Sunrise, 52.52, 13.405).unwrap();
    g.bench_function("solar sunrise Berlin", |b| {
        b.iter(|| {
            for t in &starts {
                black_box(solar.next_after(*t));
            }
        })
    });
    g.finish();
}

fn yaml_file(n: usize) -> String {
    let mut s = String::with_capacity(n * 90);
    s.push_str("timezone: Europe/Berlin\nschedules:\n");
    for i in 0..n {
        match i % 3 {
            0 => s.push_str(&format!("  job-{i}:\n    task: app.tasks.t{}\n    cron: '{} {} * * *'\n    args: [{i}]\n", i % 97, i % 60, i % 24)),
            1 => s.push_str(&format!("  job-{i}:\n    task: app.tasks.t{}\n    every: {}s\n", i % 97, 30 + i % 600)),
            _ => s.push_str(&format!("  job-{i}:\n    task: app.tasks.t{}\n    crontab: {{minute: '*/{}', hour: '9-17'}}\n", i % 97, 1 + i % 30)),
        }
    }
    s
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load_yaml");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        let text = yaml_file(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| black_box(load_str("bench.yaml", &text, &None).unwrap().len()))
        });
    }
    g.finish();
}

fn scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    g.sample_size(10);
    let n = 100_000;
    let entries = load_str("bench.yaml", &yaml_file(n), &None).unwrap();
    let t0: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("upsert+resume 100k", |b| {
        b.iter(|| {
            let mut s = Scheduler::new();
            for e in entries.iter().cloned() {
                s.upsert(e, None, t0);
            }
            s.resume(t0);
            black_box(s.next_wake())
        })
    });
    let mut s = Scheduler::new();
    for e in entries.iter().cloned() {
        s.upsert(e, None, t0);
    }
    s.resume(t0);
    g.throughput(Throughput::Elements(1));
    g.bench_function("poll one due run among 100k", |b| {
        let mut now = t0;
        b.iter(|| {
            // Advance to the next due run and take it.
            now = s.next_wake().unwrap();
            let d = s.poll(now);
            for x in &d {
                s.record(x, Some(&metronome::engine::Outcome::Sent { at: now }));
            }
            black_box(d.len())
        })
    });
    g.finish();
}

criterion_group!(benches, next_run, load, scheduler);
criterion_main!(benches);
