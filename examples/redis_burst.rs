//! Publish rate into Redis for a burst of due runs: builds N Celery messages
//! (distinct entries, as a burst of many entries falling due together would
//! be) and publishes them through the Redis broker in one batch, timing until
//! every one is acknowledged by Redis, then checks the list length.
//!
//! ```text
//! cargo run --release --example redis_burst -- [N...] [--url redis://127.0.0.1:6379/0]
//! ```
//! Default N: 10000 100000. Keys go under a throw-away kombu key prefix and
//! are deleted afterwards.

use std::time::Instant;

use jiff::Timestamp;

use metronome::celery::message::{self, Message, Publisher};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut sizes = Vec::new();
    let mut url = "redis://127.0.0.1:6379/0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--url" {
            url = args.next().expect("--url needs a value");
        } else {
            sizes.push(a.parse::<usize>().expect("N is a number"));
        }
    }
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    let yaml = "schedules:\n  report:\n    task: app.tasks.reports.generate\n    every: 1m\n    args: [42, \"daily\"]\n    kwargs: {tenant: acme, force: false}\n    options: {expires: 300}\n";
    let entry = metronome::source::yaml::load_str("bench.yaml", yaml, &None)
        .expect("bench schedule")
        .remove(0);
    let publisher = Publisher::for_this_process();
    for n in sizes {
        let prefix = format!("bench{}-{n}:", std::process::id());
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut broker =
            metronome::broker::connect(&format!("{url}{sep}global_keyprefix={prefix}"), None)
                .await
                .expect("broker URL");
        let now = Timestamp::now();
        let t0 = Instant::now();
        let msgs: Vec<Message> = (0..n)
            .map(|i| {
                let mut e = entry.clone();
                e.name = format!("report-{i}");
                message::build(&std::sync::Arc::new(e), Some(now), now, &publisher)
            })
            .collect();
        let built = t0.elapsed();
        let t2 = Instant::now();
        let bytes: usize = msgs.iter().map(|m| message::redis_envelope(m).len()).sum();
        let encode = t2.elapsed();
        let t1 = Instant::now();
        let results = broker.publish(&msgs).await;
        let published = t1.elapsed();
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, 0, "{:?}", results.iter().find(|r| r.is_err()));
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let len: usize = redis::cmd("LLEN")
            .arg(format!("{prefix}celery"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(len, n, "every message is in the list");
        for k in [
            format!("{prefix}celery"),
            format!("{prefix}_kombu.binding.celery"),
            format!("{prefix}_kombu.binding_permanent.celery"),
        ] {
            let _: i64 = redis::cmd("DEL").arg(k).query_async(&mut c).await.unwrap();
        }
        println!(
            "{n:>7} runs: build {:>7.1} ms; envelopes alone {:>6.1} ms; publish (envelopes + pipelined LPUSH until acked) {:>7.1} ms = {:>6.0} msg/s; {:.0} B/msg",
            built.as_secs_f64() * 1e3,
            encode.as_secs_f64() * 1e3,
            published.as_secs_f64() * 1e3,
            n as f64 / published.as_secs_f64(),
            bytes as f64 / n as f64
        );
    }
}
