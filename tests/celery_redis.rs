//! End-to-end over Redis: metronome publishes, an unmodified Celery 5.x
//! worker (kombu's Redis transport) executes. Also kombu's key layout, and
//! a Redis killed and restarted under a running `metronome run`.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use metronome::broker::PublishError;
use serde_json::Value as Json;

use crate::util::PATIENCE;
use crate::util::celery::{
    Target, assert_contiguous, entries, message, publish_all, scenario_binary_exactly_once,
    scenario_expired, scenario_priorities, scenario_roundtrip,
};
use crate::util::process::Metronome;
use crate::util::redis::{RedisServer, llen, lrange, redis_conn, redis_url, redis_url_with};
use crate::util::unique;

/// A target on the shared test Redis, isolated by a kombu key prefix.
fn target(what: &str) -> Target {
    let prefix = format!("{}:", unique(what));
    Target {
        url: redis_url_with(&format!("global_keyprefix={prefix}")),
        worker_url: redis_url(),
        key_prefix: Some(prefix),
        max_priority: None,
    }
}

#[tokio::test]
async fn roundtrip_args_kwargs_headers_and_second_queue() {
    scenario_roundtrip(&target("rt")).await;
}

#[tokio::test]
async fn priorities_follow_kombu_steps() {
    // On Redis lower numbers are served first: 0-2, then 3-5, 6-8, 9.
    scenario_priorities(&target("prio"), &[9, 5, 0, 7], &[0, 5, 7, 9]).await;
}

#[tokio::test]
async fn expired_run_is_discarded_by_the_worker() {
    scenario_expired(&target("exp")).await;
}

#[tokio::test]
async fn binary_runs_each_scheduled_time_once() {
    scenario_binary_exactly_once(&target("bin"), None).await;
}

/// The keys kombu's consumers read: priority lists, binding sets, envelope.
#[tokio::test]
async fn writes_kombu_keys() {
    let t = target("keys");
    let prefix = t.key_prefix.clone().unwrap();
    let es = entries(
        "schedules:\n  a:\n    task: tasks.record\n    every: 1h\n    options: {queue: reports, priority: 9}\n  b:\n    task: tasks.record\n    every: 1h\n",
    );
    let at = Timestamp::now();
    let msgs = vec![message(&es, "a", at), message(&es, "b", at)];
    publish_all(&t.url, &msgs).await;
    let mut c = redis_conn().await;
    let q = |args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd
    };
    let high: Vec<String> = q(&["LRANGE", &format!("{prefix}reports\x06\x169"), "0", "-1"])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(high.len(), 1);
    let env: Json = serde_json::from_str(&high[0]).unwrap();
    assert_eq!(env["properties"]["priority"], 9);
    assert_eq!(env["properties"]["delivery_info"]["routing_key"], "reports");
    assert_eq!(env["headers"]["id"], msgs[0].task_id.to_string());
    let plain: i64 = q(&["LLEN", &format!("{prefix}celery")])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(plain, 1);
    for set in ["_kombu.binding.", "_kombu.binding_permanent."] {
        let members: Vec<String> = q(&["SMEMBERS", &format!("{prefix}{set}reports")])
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(members, vec!["reports\x06\x16\x06\x16reports".to_string()]);
    }
    // Dropping the target deletes every key under its prefix, bindings too.
    let count = || {
        let keys = q(&["KEYS", &format!("{prefix}*")]);
        let mut c = redis::Client::open(redis_url())
            .unwrap()
            .get_connection()
            .unwrap();
        keys.query::<Vec<String>>(&mut c).unwrap().len()
    };
    assert_eq!(
        count(),
        6,
        "2 lists (reports at priority 9, celery) and 2 binding sets per queue"
    );
    drop(t);
    assert_eq!(count(), 0, "keys left behind");
}

/// Redis is SIGKILLed and restarted while `metronome run` dispatches an
/// `every: 1s` entry with `misfire: all`: afterwards each scheduled second
/// from the first to the last is in the queue exactly once.
#[tokio::test]
async fn redis_outage_loses_and_duplicates_nothing() {
    let mut redis = RedisServer::durable();
    let url = redis.url();
    let mut m = Metronome::run(
        &url,
        "schedules:\n  tick:\n    task: tasks.record\n    every: 1s\n    misfire: all\n",
    );
    let wait_len = |n: usize| {
        let url = url.clone();
        async move {
            let start = Instant::now();
            loop {
                if llen(&url, "celery").await.unwrap_or(0) >= n {
                    return;
                }
                assert!(start.elapsed() < PATIENCE, "queue never reached {n}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_len(3).await;
    redis.kill();
    // Stay down until metronome has noticed (a failed publish), then a bit more.
    let start = Instant::now();
    while m.log_events("publish failed").len() < 2 {
        assert!(
            start.elapsed() < PATIENCE,
            "outage not noticed:\n{}",
            m.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    redis.restart();
    let before = llen(&url, "celery").await.unwrap();
    wait_len(before + 4).await;
    m.stop();
    let raw = lrange(&url, "celery").await;
    let scheduled: Vec<String> = raw
        .iter()
        .map(|r| {
            let env: Json = serde_json::from_str(r).unwrap();
            assert_eq!(env["headers"]["periodic_task_name"], "tick");
            env["headers"]["scheduled_at"].as_str().unwrap().to_string()
        })
        .collect();
    let dispatched = m.log_events("dispatched").len();
    assert_eq!(
        raw.len(),
        dispatched,
        "queue holds a different number of runs than were confirmed:\n{}",
        m.logs()
    );
    assert!(
        m.log_events("publish outcome unknown; counted as sent and not retried")
            .is_empty(),
        "an outcome was unknown (a run may be lost):\n{}",
        m.logs()
    );
    assert_contiguous(&scheduled, jiff::SignedDuration::from_secs(1));
}

/// While Redis is down every publish says Unavailable (nothing sent), and
/// the same broker value works again once Redis is back.
#[tokio::test]
async fn refused_connection_is_unavailable_then_recovers() {
    let mut redis = RedisServer::durable();
    let es = entries("schedules:\n  a:\n    task: tasks.record\n    every: 1h\n");
    let msg = message(&es, "a", Timestamp::now());
    let mut b = metronome::broker::connect(&redis.url(), None)
        .await
        .unwrap();
    assert_eq!(b.publish(std::slice::from_ref(&msg)).await, vec![Ok(())]);
    redis.kill();
    for _ in 0..2 {
        let r = b.publish(std::slice::from_ref(&msg)).await;
        assert!(
            matches!(r.as_slice(), [Err(PublishError::Unavailable(_))]),
            "{r:?}"
        );
    }
    redis.restart();
    // The connection manager reconnects; the first publish may still see the
    // old failure, a later one must succeed.
    let start = Instant::now();
    loop {
        let r = b.publish(std::slice::from_ref(&msg)).await;
        match r.as_slice() {
            [Ok(())] => break,
            [Err(PublishError::Unavailable(_))] => {}
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < PATIENCE, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(llen(&redis.url(), "celery").await, Some(2));
}

/// A burst goes out as several pipelines, at most `IN_FLIGHT` handed to the
/// connection at once. Redis holds writes (`CLIENT PAUSE … WRITE`) while
/// the first is in flight and is then SIGKILLed: the first chunk's outcome
/// is unknown, the chunks never handed over are "not delivered", nothing
/// is reported sent, and nothing reached the list. After a restart the
/// same broker delivers the whole burst, each list in dispatch order.
#[tokio::test]
async fn burst_classifies_each_pipeline_of_a_failed_round_trip() {
    use metronome::broker::redis::{CHUNK, IN_FLIGHT};
    let mut redis = RedisServer::durable();
    let es = entries(
        "schedules:\n  a:\n    task: tasks.record\n    every: 1s\n  b:\n    task: tasks.record\n    every: 1s\n    options: {priority: 9}\n",
    );
    let chunks = IN_FLIGHT + 3;
    let n = CHUNK * chunks;
    let t0 = Timestamp::now();
    let msgs: Vec<_> = (0..n)
        .map(|i| {
            let at = t0 + jiff::SignedDuration::from_secs(i as i64);
            // Every seventh run goes to the priority list, splitting pushes.
            message(&es, if i % 7 == 3 { "b" } else { "a" }, at)
        })
        .collect();
    let mut b = metronome::broker::connect(&redis.url(), None)
        .await
        .unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "600000", "WRITE"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let burst = msgs.clone();
    let publish = tokio::spawn(async move {
        let r = b.publish(&burst).await;
        (b, r)
    });
    // The first pipeline has reached Redis once a client is held on it.
    let start = Instant::now();
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut admin)
            .await
            .unwrap();
        if list.lines().any(|l| l.contains(" flags=b ")) {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "no pipeline arrived: {list}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.kill();
    let (mut b, results) = publish.await.unwrap();
    assert_eq!(results.len(), n);
    let unknown = |r: &Result<(), PublishError>| matches!(r, Err(PublishError::Unknown(_)));
    let refused = |r: &Result<(), PublishError>| matches!(r, Err(PublishError::Unavailable(_)));
    assert!(
        results[..CHUNK].iter().all(unknown),
        "the chunk held by Redis: {:?}",
        results[0]
    );
    for k in 1..IN_FLIGHT {
        // Handed over before or after the kill: unknown, or refused on reconnect.
        let c = &results[k * CHUNK..(k + 1) * CHUNK];
        assert!(
            c.iter().all(unknown) || c.iter().all(refused),
            "chunk {k}: {:?}",
            c[0]
        );
    }
    assert!(
        results[IN_FLIGHT * CHUNK..].iter().all(refused),
        "chunks never handed over are not delivered: {:?}",
        results[IN_FLIGHT * CHUNK..].iter().find(|r| !refused(r))
    );
    redis.restart();
    assert_eq!(llen(&redis.url(), "celery").await, Some(0));
    // The same broker reconnects and sends the whole burst.
    let start = Instant::now();
    loop {
        let r = b.publish(&msgs).await;
        if r.iter().all(Result::is_ok) {
            break;
        }
        assert!(
            r.iter().all(refused),
            "{:?}",
            r.iter().find(|r| !refused(r))
        );
        assert!(start.elapsed() < PATIENCE, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (key, name) in [("celery", "a"), ("celery\x06\x169", "b")] {
        let raw = lrange(&redis.url(), key).await;
        // LPUSH adds at the head: the list read backwards is the send order.
        let got: Vec<String> = raw
            .iter()
            .rev()
            .map(|r| {
                let env: Json = serde_json::from_str(r).unwrap();
                env["headers"]["id"].as_str().unwrap().to_string()
            })
            .collect();
        let want: Vec<String> = msgs
            .iter()
            .filter(|m| m.entry.name == name)
            .map(|m| m.task_id.to_string())
            .collect();
        assert_eq!(got.len(), want.len(), "{key}");
        assert!(got == want, "{key}: not in dispatch order");
    }
}
