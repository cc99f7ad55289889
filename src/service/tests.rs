//! In-process tests of the run loop with a fake clock, broker, store and
//! lease, on tokio's paused time: hours of schedule run in milliseconds,
//! and every instant is exact.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Ha, Parts, ServiceError, channel, run};
use crate::celery::message::{Message, task_id};
use crate::entry::{Context, Entry, validate_json};
use crate::ports::BoxFuture;
use crate::ports::broker::{Broker, PublishError, Published};
use crate::ports::clock::{Clock, TestClock};
use crate::ports::lease::{Lease, LeaseError, Role, Term};
use crate::ports::store::{Loaded, StateError, StateStore, States};
use crate::state::{EntryState, HistoryOutcome, TimingKey};

/// One publish call as the broker saw it.
#[derive(Debug, Clone)]
struct Attempt {
    at: Timestamp,
    instant: Instant,
    ids: Vec<Uuid>,
    ok: bool,
}

/// A broker that records every call and answers from a script (one
/// result per call, for every message of it; `Ok` once the script is
/// empty).
#[derive(Clone)]
struct FakeBroker {
    clock: Arc<TestClock>,
    log: Arc<Mutex<Vec<Attempt>>>,
    script: Arc<Mutex<VecDeque<Result<(), PublishError>>>>,
    /// How long each publish takes to be acknowledged.
    delay: Duration,
}

impl FakeBroker {
    fn new(clock: &Arc<TestClock>, script: Vec<Result<(), PublishError>>) -> FakeBroker {
        FakeBroker {
            clock: clock.clone(),
            log: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            delay: Duration::ZERO,
        }
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().unwrap().clone()
    }

    /// The task ids the broker accepted, in order.
    fn delivered(&self) -> Vec<Uuid> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|a| a.ok)
            .flat_map(|a| a.ids.clone())
            .collect()
    }
}

impl Broker for FakeBroker {
    fn ping(&mut self) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Published> {
        let r = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        self.log.lock().unwrap().push(Attempt {
            at: self.clock.now(),
            instant: Instant::now(),
            ids: messages.iter().map(|m| m.task_id).collect(),
            ok: r.is_ok(),
        });
        let delay = self.delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            vec![r; messages.len()]
        })
    }
}

/// The lease's value as a shared server would hold it.
type Holder = Arc<Mutex<Option<String>>>;

/// A store in memory. `shared` makes it behave as the Redis one: fenced
/// writes, and `reload` returns what it holds.
#[derive(Clone)]
struct FakeStore {
    data: Arc<Mutex<Loaded>>,
    shared: Option<Holder>,
    /// Fenced writes accepted, with their fence.
    fenced_writes: Arc<Mutex<Vec<String>>>,
}

impl FakeStore {
    fn local(data: Loaded) -> FakeStore {
        FakeStore {
            data: Arc::new(Mutex::new(data)),
            shared: None,
            fenced_writes: Arc::default(),
        }
    }

    fn get(&self, name: &str) -> Option<EntryState> {
        self.data.lock().unwrap().get(name).cloned()
    }
}

fn write(data: &Mutex<Loaded>, changed: States<'_>, removed: &[String]) {
    let mut d = data.lock().unwrap();
    for (n, s) in changed {
        d.insert(n.to_string(), s.clone());
    }
    for n in removed {
        d.remove(n);
    }
}

impl StateStore for FakeStore {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        let r = match (&self.shared, fence) {
            (None, _) => {
                write(&self.data, changed, removed);
                Ok(())
            }
            (Some(_), None) => Ok(()),
            (Some(h), Some(f)) if h.lock().unwrap().as_deref() == Some(f) => {
                self.fenced_writes.lock().unwrap().push(f.to_string());
                write(&self.data, changed, removed);
                Ok(())
            }
            (Some(_), Some(_)) => Err(StateError::Unavailable("deposed".into())),
        };
        Box::pin(async move { r })
    }

    fn reload(&self) -> BoxFuture<'_, Result<Option<Loaded>, StateError>> {
        let r = self
            .shared
            .as_ref()
            .map(|_| self.data.lock().unwrap().clone());
        Box::pin(async move { Ok(r) })
    }

    fn close<'a>(&'a self, _all: States<'a>) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A lease whose value the test sets; the loop only ever checks it.
struct FakeLease {
    holder: Holder,
}

impl Lease for FakeLease {
    fn token(&self) -> &str {
        "me"
    }

    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<u64>, LeaseError>> {
        Box::pin(async { Ok(None) })
    }

    fn renew(&self, _fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async { Ok(false) })
    }

    fn release(&self, _fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>> {
        Box::pin(async { Ok(false) })
    }

    fn check<'a>(&'a self, value: &'a str) -> BoxFuture<'a, Result<bool, LeaseError>> {
        let held = self.holder.lock().unwrap().as_deref() == Some(value);
        Box::pin(async move { Ok(held) })
    }

    fn holder(&self) -> BoxFuture<'_, Result<Option<String>, LeaseError>> {
        let h = self.holder.lock().unwrap().clone();
        Box::pin(async move { Ok(h) })
    }

    fn describe(&self) -> &str {
        "fake lease"
    }
}

fn start() -> Timestamp {
    "2026-01-01T00:10:30Z".parse().unwrap()
}

fn entry(name: &str, body: serde_json::Value) -> Arc<Entry> {
    Arc::new(validate_json(name, &body, &Context::default()).unwrap())
}

/// Every second, each missed run fired.
fn every_second() -> Arc<Entry> {
    entry(
        "tick",
        json!({"task": "t.tick", "every": "1s", "misfire": "all"}),
    )
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

fn ids(name: &str, times: impl IntoIterator<Item = Timestamp>) -> Vec<Uuid> {
    times.into_iter().map(|t| task_id(name, t)).collect()
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

fn spawn(parts: Parts) -> Running {
    let (stop, rx) = watch::channel(false);
    let (handle, commands) = channel();
    let task = tokio::spawn(async move {
        let _keep = handle;
        run(parts, rx, commands).await
    });
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

fn standalone(
    clock: &Arc<TestClock>,
    entries: Vec<Arc<Entry>>,
    broker: &FakeBroker,
    store: &FakeStore,
) -> Parts {
    Parts {
        entries,
        store: Box::new(store.clone()),
        states: store.data.lock().unwrap().clone(),
        broker: Box::new(broker.clone()),
        ha: None,
        clock: clock.clone(),
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_publish_pauses_with_doubling_backoff_then_catches_up() {
    let clock = Arc::new(TestClock::new(start()));
    let down = || Err(PublishError::Unavailable("down".into()));
    let broker = FakeBroker::new(&clock, vec![down(), down(), down()]);
    let store = FakeStore::local(Loaded::new());
    let run = spawn(standalone(&clock, vec![every_second()], &broker, &store));
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    run.stop().await;

    let attempts = broker.attempts();
    let failed: Vec<&Attempt> = attempts.iter().filter(|a| !a.ok).collect();
    assert_eq!(failed.len(), 3, "{attempts:?}");
    assert_eq!(failed[0].at, start() + secs(1), "first try at the due time");
    let gaps: Vec<Duration> = failed
        .windows(2)
        .map(|w| w[1].instant - w[0].instant)
        .collect();
    assert_eq!(
        gaps,
        [Duration::from_millis(200), Duration::from_millis(400)]
    );
    let recovered = attempts.iter().find(|a| a.ok).unwrap();
    assert_eq!(
        recovered.instant - failed[2].instant,
        Duration::from_millis(800)
    );
    // Each run reaches the broker once, the failed ones on recovery, and
    // after it the back-off is gone: one publish per due second.
    let due = (1..=4).map(|n| start() + secs(n));
    assert_eq!(broker.delivered(), ids("tick", due));
    assert_eq!(store.get("tick").unwrap().total_runs, 4);
}

#[tokio::test(start_paused = true)]
async fn a_restart_resumes_from_the_durable_cursor() {
    let clock = Arc::new(TestClock::new(start()));
    let minutely = entry(
        "minutely",
        json!({"task": "t.m", "cron": "* * * * *", "misfire": "all"}),
    );
    let cursor: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
    let saved = EntryState {
        cursor: Some(cursor),
        last_run: Some(cursor),
        total_runs: 7,
        timing_key: TimingKey::Hash(minutely.timing_key()),
        ..Default::default()
    };
    let store = FakeStore::local(BTreeMap::from([("minutely".to_string(), saved)]));
    let broker = FakeBroker::new(&clock, vec![]);
    let run = spawn(standalone(&clock, vec![minutely], &broker, &store));
    tokio::time::sleep(Duration::from_secs(40)).await;
    run.stop().await;

    // 00:06 … 00:10 were missed while down; 00:11 falls due while running.
    let due = (6..=11).map(|m| format!("2026-01-01T00:{m:02}:00Z").parse().unwrap());
    assert_eq!(broker.delivered(), ids("minutely", due));
    let st = store.get("minutely").unwrap();
    assert_eq!(st.total_runs, 13);
    assert_eq!(st.cursor, Some("2026-01-01T00:11:00Z".parse().unwrap()));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_is_never_published_again() {
    let clock = Arc::new(TestClock::new(start()));
    let unknown = Err(PublishError::Unknown("timed out after sending".into()));
    let broker = FakeBroker::new(&clock, vec![unknown]);
    let store = FakeStore::local(Loaded::new());
    let run = spawn(standalone(&clock, vec![every_second()], &broker, &store));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    run.stop().await;
    let first = task_id("tick", start() + secs(1));
    let st = store.get("tick").unwrap();
    assert_eq!(st.history[0].outcome, HistoryOutcome::Unknown);
    assert_eq!(st.cursor, Some(start() + secs(2)));

    // Not by this instance, nor by the next one that starts from its state.
    let run = spawn(standalone(&clock, vec![every_second()], &broker, &store));
    tokio::time::sleep(Duration::from_secs(2)).await;
    run.stop().await;
    let tries: Vec<Uuid> = broker
        .attempts()
        .iter()
        .flat_map(|a| a.ids.clone())
        .collect();
    assert_eq!(
        tries.iter().filter(|i| **i == first).count(),
        1,
        "{tries:?}"
    );
    let due = (2..=4).map(|n| start() + secs(n));
    assert_eq!(broker.delivered(), ids("tick", due));
}

/// A shared store, a lease the test holds as `me:1`, and the role channel.
fn leased(
    clock: &Arc<TestClock>,
    broker: &FakeBroker,
    data: Loaded,
) -> (Parts, FakeStore, watch::Sender<Role>) {
    let holder: Holder = Arc::new(Mutex::new(Some("me:1".into())));
    let store = FakeStore {
        shared: Some(holder.clone()),
        ..FakeStore::local(data)
    };
    let (tx, role) = watch::channel(Role::Standby);
    let parts = Parts {
        entries: vec![every_second()],
        store: Box::new(store.clone()),
        states: BTreeMap::new(),
        broker: Box::new(broker.clone()),
        ha: Some(Ha {
            role,
            lease: Arc::new(FakeLease { holder }),
        }),
        clock: clock.clone(),
    };
    (parts, store, tx)
}

fn term(until: Instant) -> Role {
    Role::Leader(Term {
        fence: 1,
        value: "me:1".into(),
        until,
    })
}

#[tokio::test(start_paused = true)]
async fn a_leader_stops_at_its_lease_deadline() {
    let clock = Arc::new(TestClock::new(start()));
    let broker = FakeBroker::new(&clock, vec![]);
    let (parts, _store, role) = leased(&clock, &broker, Loaded::new());
    // Never renewed: the term ends 2.5 s from now, although the lease
    // server still says `me:1` (the check would pass).
    let until = Instant::now() + Duration::from_millis(2_500);
    role.send_replace(term(until));
    let run = spawn(parts);
    tokio::time::sleep(Duration::from_secs(6)).await;
    run.stop().await;
    let attempts = broker.attempts();
    assert!(attempts.iter().all(|a| a.instant < until), "{attempts:?}");
    let due = (1..=2).map(|n| start() + secs(n));
    assert_eq!(broker.delivered(), ids("tick", due));
}

#[tokio::test(start_paused = true)]
async fn a_takeover_reloads_the_previous_leaders_state() {
    let clock = Arc::new(TestClock::new(start()));
    let broker = FakeBroker::new(&clock, vec![]);
    let tick = every_second();
    // The previous leader got as far as start + 5 s.
    let theirs = EntryState {
        cursor: Some(start() + secs(5)),
        last_run: Some(start() + secs(5)),
        anchor: Some(start()),
        total_runs: 5,
        timing_key: TimingKey::Hash(tick.timing_key()),
        ..Default::default()
    };
    let data = BTreeMap::from([("tick".to_string(), theirs)]);
    let (parts, store, role) = leased(&clock, &broker, data);
    let run = spawn(parts);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(broker.attempts().is_empty(), "a standby sends nothing");
    role.send_replace(term(Instant::now() + Duration::from_secs(3_600)));
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    run.stop().await;
    // Runs up to +5 s were the previous leader's; +6 … +8 are ours.
    let due = (6..=8).map(|n| start() + secs(n));
    assert_eq!(broker.delivered(), ids("tick", due));
    assert_eq!(store.get("tick").unwrap().total_runs, 8);
    let writes = store.fenced_writes.lock().unwrap();
    assert!(!writes.is_empty() && writes.iter().all(|f| f == "me:1"));
}

#[tokio::test(start_paused = true)]
async fn a_run_is_recorded_as_sent_when_the_broker_acknowledged_it() {
    let clock = Arc::new(TestClock::new(start()));
    let broker = FakeBroker {
        delay: Duration::from_millis(300),
        ..FakeBroker::new(&clock, vec![])
    };
    let store = FakeStore::local(Loaded::new());
    let run = spawn(standalone(&clock, vec![every_second()], &broker, &store));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    run.stop().await;
    let attempts = broker.attempts();
    assert_eq!(
        attempts[0].at,
        start() + secs(1),
        "stamped with the turn's now"
    );
    let st = store.get("tick").unwrap();
    let acked = start() + SignedDuration::from_millis(1_300);
    assert_eq!(st.last_sent_at, Some(acked));
    assert_eq!(st.history[0].lateness_ms, Some(300));
}
