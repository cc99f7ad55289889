//! Chaos: three `metronome run` instances share a lease. The leader is
//! SIGKILLed three times, SIGTERMed once, and its lease store is disturbed
//! once. Two stacks: Redis as lease and broker (a redis-server of the
//! test's own, so `CLIENT PAUSE` for 3 s disturbs no one else), and a
//! PostgreSQL lease (a database of its own; the leader's backend is
//! terminated) with RabbitMQ (a vhost of its own), directly and through a
//! PgBouncer in transaction mode. Afterwards everything that reached the
//! broker is read back and checked:
//!
//! - no (entry, scheduled time) was published twice;
//! - every slot missing from an entry's sequence lies inside a disruption
//!   (from shortly before the kill/pause to when a new leader was seen);
//! - after each SIGKILL the new term fired exactly one catch-up per
//!   `every: 1s` entry (`misfire: once`), and it was the first run of that
//!   entry in the new term.
//!
//! Takeover times (kill → another instance reports `leader` on /readyz)
//! are printed, not asserted. Run with `--nocapture` to see them.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value as Json;

use crate::util::PATIENCE;
use crate::util::amqp::{Vhost, drain_headers};
use crate::util::db::{Pg, PgBouncer};
use crate::util::http::get_blocking;
use crate::util::port::free_port;
use crate::util::process::{Metronome, metronome};
use crate::util::redis::RedisServer;
use metronome::redact::mask_url;

const TTL: &str = "2s";
const EVERY: usize = 20;
const CRONS: usize = 3;

/// One of the three contenders, with the API on a port of its own.
struct Instance {
    m: Metronome,
    port: u16,
    alive: bool,
}

impl Instance {
    fn start(lock: &str, broker: &str, schedule: &Path) -> Instance {
        let port = free_port();
        let mut cmd = metronome();
        cmd.args([
            "--log-format",
            "json",
            "run",
            "--lock",
            lock,
            "--broker",
            broker,
        ])
        .args(["--lock-ttl", TTL, "--http", &format!("127.0.0.1:{port}")])
        .arg("--schedule")
        .arg(schedule)
        .env("METRONOME_LOG", "info");
        Instance {
            m: Metronome::spawn(cmd),
            port,
            alive: true,
        }
    }

    /// (role, fence) from /readyz, if it answers.
    fn role(&self) -> Option<(String, Option<u64>)> {
        let host = format!("127.0.0.1:{}", self.port);
        let (_, j) = get_blocking(&host, "/readyz", Duration::from_millis(500))?;
        Some((j["role"].as_str()?.to_string(), j["fence"].as_u64()))
    }

    /// The instance id (the lease token) from /readyz.
    fn token(&self) -> String {
        let host = format!("127.0.0.1:{}", self.port);
        let (_, j) = get_blocking(&host, "/readyz", Duration::from_millis(500)).expect("readyz");
        j["instance"].as_str().expect("instance id").to_string()
    }

    fn signal(&mut self, sig: &str) {
        self.m.signal(sig);
        if sig == "-KILL" {
            self.m.wait();
        }
        self.alive = false;
    }
}

/// The live instance reporting `leader` (and its fence), polling until one
/// does with a fence other than `not`.
fn wait_leader(instances: &[Instance], not: Option<u64>) -> (usize, u64) {
    let start = Instant::now();
    loop {
        for (i, inst) in instances.iter().enumerate().filter(|(_, x)| x.alive) {
            if let Some((role, Some(f))) = inst.role()
                && role == "leader"
                && Some(f) != not
            {
                return (i, f);
            }
        }
        assert!(start.elapsed() < PATIENCE, "no leader");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Disruption {
    kind: &'static str,
    at: Timestamp,
    recovered: Timestamp,
    takeover: Duration,
    new_fence: u64,
}

/// What a chaos run runs on.
struct Stack<'a> {
    lock: String,
    broker: String,
    /// The fifth disruption, done to the lease store while `Instance`
    /// leads: its name and how.
    stall: (&'static str, &'a dyn Fn(&Instance)),
    /// The headers of every message that reached the broker.
    published: &'a dyn Fn() -> Vec<Json>,
}

#[test]
fn failover_loses_and_duplicates_nothing() {
    let redis = RedisServer::start();
    let url = redis.url();
    let stall = |_: &Instance| {
        // Redis stalls for 3 s: the leader cannot renew and stands down;
        // after the pause some instance leads again.
        redis.cmd(&["CLIENT", "PAUSE", "3000", "ALL"]);
        std::thread::sleep(Duration::from_millis(3_000));
    };
    let published = || {
        let rows = match redis.cmd(&["LRANGE", "celery", "0", "-1"]) {
            redis::Value::Array(v) => v,
            other => panic!("{other:?}"),
        };
        rows.iter()
            .map(|r| {
                let redis::Value::BulkString(b) = r else {
                    panic!("{r:?}")
                };
                serde_json::from_slice::<Json>(b).unwrap()["headers"].clone()
            })
            .collect()
    };
    chaos(&Stack {
        lock: url.clone(),
        broker: url,
        stall: ("CLIENT PAUSE 3000", &stall),
        published: &published,
    });
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The PostgreSQL-lease stack on `lock` (the database `db`, directly or
/// through a pooler), RabbitMQ in a vhost of its own; `all_backends`
/// terminates every backend of the database instead of the leader's only
/// (behind a pooler, backends serve whoever comes).
fn postgres_and_rabbitmq(db: &Pg, lock: String, all_backends: bool) {
    let vh = Vhost::new("chaos");
    let stall = |leader: &Instance| {
        let only = if all_backends {
            String::new()
        } else {
            format!(
                " AND application_name = 'metronome lease {}'",
                leader.token()
            )
        };
        block_on(db.admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB'{only}"
        )));
        std::thread::sleep(Duration::from_millis(1_000));
    };
    let published = || block_on(drain_headers(&vh.url(""), "celery"));
    chaos(&Stack {
        lock,
        broker: vh.url(""),
        stall: ("pg_terminate_backend", &stall),
        published: &published,
    });
}

#[test]
fn failover_with_a_postgres_lease_and_rabbitmq() {
    let db = block_on(Pg::new());
    let url = db.url.clone();
    postgres_and_rabbitmq(&db, url, false);
}

#[test]
fn failover_with_a_postgres_lease_through_pgbouncer() {
    let Some(bouncer) = PgBouncer::start() else {
        return;
    };
    let db = block_on(Pg::new());
    // The migrator's session lock cannot pass a transaction pooler.
    crate::util::db::migrate(&db.url);
    postgres_and_rabbitmq(&db, bouncer.url(&db), true);
}

fn chaos(stack: &Stack) {
    let dir = tempfile::tempdir().unwrap();
    let schedule = dir.path().join("schedule.yaml");
    let mut yaml = String::from("schedules:\n");
    for i in 0..EVERY {
        yaml +=
            &format!("  tick-{i:02}:\n    task: tasks.tick\n    every: 1s\n    misfire: once\n");
    }
    for i in 0..CRONS {
        yaml += &format!(
            "  cron-{i}:\n    task: tasks.cron\n    cron: '* * * * * *'\n    misfire: once\n"
        );
    }
    std::fs::write(&schedule, yaml).unwrap();
    let spawn = |instances: &mut Vec<Instance>| {
        instances.push(Instance::start(&stack.lock, &stack.broker, &schedule));
    };
    let mut instances = Vec::new();
    for _ in 0..3 {
        spawn(&mut instances);
    }
    let (_, mut fence) = wait_leader(&instances, None);
    std::thread::sleep(Duration::from_secs(3));
    let mut disruptions: Vec<Disruption> = Vec::new();
    for round in 0..4 {
        let (kind, sig) = if round == 2 {
            ("SIGTERM", "-TERM")
        } else {
            ("SIGKILL", "-KILL")
        };
        let (leader, f) = wait_leader(&instances, None);
        assert_eq!(f, fence);
        let at = Timestamp::now();
        let t0 = Instant::now();
        instances[leader].signal(sig);
        let (_, nf) = wait_leader(&instances, Some(f));
        let takeover = t0.elapsed();
        disruptions.push(Disruption {
            kind,
            at,
            recovered: Timestamp::now(),
            takeover,
            new_fence: nf,
        });
        fence = nf;
        if sig == "-TERM" {
            let status = instances[leader].m.wait();
            assert!(status.success(), "SIGTERM exit: {status}");
        }
        spawn(&mut instances);
        std::thread::sleep(Duration::from_secs(3));
    }
    let (leader, _) = wait_leader(&instances, None);
    let at = Timestamp::now();
    let t0 = Instant::now();
    (stack.stall.1)(&instances[leader]);
    let (_, nf) = wait_leader(&instances, None);
    disruptions.push(Disruption {
        kind: stack.stall.0,
        at,
        recovered: Timestamp::now(),
        takeover: t0.elapsed(),
        new_fence: nf,
    });
    std::thread::sleep(Duration::from_secs(3));
    // Stop: standbys first, then the leader, so there is no last handover.
    let (leader, _) = wait_leader(&instances, None);
    let end = Timestamp::now();
    for (i, inst) in instances.iter_mut().enumerate() {
        if i != leader && inst.alive {
            inst.signal("-TERM");
            inst.m.wait();
        }
    }
    instances[leader].signal("-TERM");
    assert!(instances[leader].m.wait().success());

    // Everything that reached the broker.
    let rows = (stack.published)();
    let mut seen: HashSet<(String, Timestamp)> = HashSet::new();
    let mut dups = Vec::new();
    let mut by_entry: BTreeMap<String, Vec<(Timestamp, u64)>> = BTreeMap::new();
    for h in &rows {
        let name = h["periodic_task_name"].as_str().unwrap().to_string();
        let at: Timestamp = h["scheduled_at"].as_str().unwrap().parse().unwrap();
        let f = h["metronome_fence"].as_u64().expect("fence header");
        assert!(h["metronome_instance"].is_string(), "instance header");
        if !seen.insert((name.clone(), at)) {
            dups.push((name.clone(), at));
        }
        by_entry.entry(name).or_default().push((at, f));
    }
    assert!(dups.is_empty(), "duplicated runs: {dups:?}");
    assert_eq!(by_entry.len(), EVERY + CRONS, "every entry ran");

    // Lost runs: gaps only inside disruption windows.
    let slack = SignedDuration::from_millis(1_500);
    let inside = |t: Timestamp| {
        disruptions
            .iter()
            .any(|d| t >= d.at - slack && t <= d.recovered + SignedDuration::from_millis(500))
    };
    let mut lost_outside = Vec::new();
    for (name, runs) in &mut by_entry {
        runs.sort();
        for w in runs.windows(2) {
            let (a, b) = (w[0].0, w[1].0);
            let mut t = a + SignedDuration::from_secs(1);
            while t < b {
                if !inside(t) {
                    lost_outside.push((name.clone(), t));
                }
                t += SignedDuration::from_secs(1);
            }
        }
        let last = runs.last().unwrap().0;
        assert!(
            last >= end - SignedDuration::from_secs(3),
            "{name} stopped early at {last}"
        );
    }
    assert!(lost_outside.is_empty(), "runs lost: {lost_outside:?}");

    // Catch-ups: after each SIGKILL, each `every` entry's first run in the
    // new term is a missed run (logged `missed: true`), and there is one.
    let mut missed: HashSet<(String, Timestamp)> = HashSet::new();
    for inst in &instances {
        for e in inst.m.log_events("dispatched") {
            if e["missed"] == true {
                missed.insert((
                    e["entry"].as_str().unwrap().to_string(),
                    e["scheduled"].as_str().unwrap().parse().unwrap(),
                ));
            }
        }
    }
    for d in disruptions.iter().filter(|d| d.kind == "SIGKILL") {
        for (name, runs) in by_entry.iter().filter(|(n, _)| n.starts_with("tick")) {
            let term: Vec<Timestamp> = runs
                .iter()
                .filter(|(_, f)| *f == d.new_fence)
                .map(|(t, _)| *t)
                .collect();
            let catch_ups = term
                .iter()
                .filter(|t| missed.contains(&(name.clone(), **t)))
                .count();
            assert_eq!(
                catch_ups, 1,
                "{name}: term {} had {catch_ups} catch-ups",
                d.new_fence
            );
            assert!(
                missed.contains(&(name.clone(), term[0])),
                "{name}: the first run of term {} is not the catch-up",
                d.new_fence
            );
        }
    }

    let total: usize = by_entry.values().map(Vec::len).sum();
    println!(
        "chaos ({}): {total} runs published, 0 duplicated, 0 lost outside handovers",
        mask_url(&stack.lock)
    );
    for d in &disruptions {
        println!(
            "chaos: {:<18} takeover {:>5} ms (new fence {})",
            d.kind,
            d.takeover.as_millis(),
            d.new_fence
        );
    }
    let mut kills: Vec<u128> = disruptions
        .iter()
        .filter(|d| d.kind == "SIGKILL")
        .map(|d| d.takeover.as_millis())
        .collect();
    kills.sort();
    println!("chaos: SIGKILL takeover ms (sorted): {kills:?}");
}
