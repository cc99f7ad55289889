//! The lease and the fenced run state against a real Redis (the shared test
//! server; every test uses its own key prefix): acquire, contend, renew,
//! release, expiry, fence increments, compare-and-set refusing a stale
//! token, fenced state writes and the fenced (atomic) publish.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use metronome::broker::PublishError;
use metronome::broker::redis::{Fence, RedisBroker};
use metronome::lease::{self, LeaseConfig, RedisLease, Role};
use metronome::ports::lease::Lease;
use metronome::redis_link::{Keys, RedisLink};
use metronome::state::EntryState;
use metronome::state::redis::{RedisState, RedisStateError};
use tokio::sync::watch::{self, Receiver};
use tokio::task::JoinHandle;

use crate::util::celery::{entries, message};
use crate::util::redis::{RedisServer, delete_prefixed, redis_conn, redis_url, redis_url_with};
use crate::util::unique;

fn url() -> String {
    redis_url()
}

fn store() -> Arc<RedisLink> {
    Arc::new(RedisLink::open(&url(), Duration::from_secs(1)).unwrap())
}

fn keys(what: &str) -> Keys {
    Keys::new(&format!("{}:", unique(what)))
}

fn lease_with(keys: &Keys, ttl: Duration) -> RedisLease {
    RedisLease::new(store(), keys.clone(), LeaseConfig::new(ttl, None).unwrap())
}

async fn cleanup(k: &Keys) {
    let mut c = redis_conn().await;
    let _: i64 = redis::cmd("DEL")
        .arg(&k.lock)
        .arg(&k.fence)
        .arg(&k.state)
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn acquire_contend_renew_release() {
    let k = keys("basic");
    let a = lease_with(&k, Duration::from_secs(10));
    let b = lease_with(&k, Duration::from_secs(10));
    assert_ne!(a.token(), b.token());
    let fa = a.try_acquire().await.unwrap().expect("free lease acquired");
    assert_eq!(fa, 1);
    assert_eq!(b.try_acquire().await.unwrap(), None, "held lease refused");
    assert_eq!(a.holder().await.unwrap(), Some(a.value(fa)));
    // TTL set from the acquire.
    let mut c = redis_conn().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&k.lock)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(pttl > 9_000 && pttl <= 10_000, "{pttl}");
    assert!(a.renew(fa).await.unwrap());
    // b cannot renew or release a's lease, even guessing the fence.
    assert!(!b.renew(fa).await.unwrap());
    assert!(!b.release(fa).await.unwrap());
    // A stale term of a's own token is refused too.
    assert!(!a.renew(fa + 7).await.unwrap());
    assert!(a.release(fa).await.unwrap());
    assert_eq!(a.holder().await.unwrap(), None);
    let fb = b
        .try_acquire()
        .await
        .unwrap()
        .expect("released lease acquired");
    assert_eq!(fb, fa + 1, "every acquisition increments the fence");
    // a's old term is stale now.
    assert!(!a.renew(fa).await.unwrap());
    assert!(!a.release(fa).await.unwrap());
    assert_eq!(b.holder().await.unwrap(), Some(b.value(fb)));
    cleanup(&k).await;
}

#[tokio::test]
async fn expiry_hands_the_lease_over_with_a_new_fence() {
    let k = keys("expiry");
    let a = lease_with(&k, Duration::from_secs(1));
    let b = lease_with(&k, Duration::from_secs(1));
    let fa = a.try_acquire().await.unwrap().unwrap();
    assert_eq!(b.try_acquire().await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1_150)).await;
    let fb = b
        .try_acquire()
        .await
        .unwrap()
        .expect("expired lease acquired");
    assert!(fb > fa);
    assert!(!a.renew(fa).await.unwrap(), "expired holder cannot renew");
    // Re-acquiring by the holder starts a new term (new fence).
    let fb2 = b.try_acquire().await.unwrap().unwrap();
    assert_eq!(fb2, fb + 1);
    assert!(!b.renew(fb).await.unwrap());
    assert!(b.renew(fb2).await.unwrap());
    cleanup(&k).await;
}

/// The lease task for `l`: its role, its stop switch and the task.
fn spawn_lease(l: RedisLease) -> (Receiver<Role>, watch::Sender<bool>, JoinHandle<()>) {
    let (tx, role) = watch::channel(Role::Standby);
    let (stop_tx, stop) = watch::channel(false);
    let cfg = l.config();
    (
        role,
        stop_tx,
        tokio::spawn(lease::run(Arc::new(l), cfg, tx, stop)),
    )
}

/// Waits at most `secs` for the lease task to publish the role `name`.
async fn role_becomes(role: &mut Receiver<Role>, name: &str, secs: u64) {
    tokio::time::timeout(
        Duration::from_secs(secs),
        role.wait_for(|r| r.name() == name),
    )
    .await
    .unwrap_or_else(|_| panic!("not {name} within {secs} s"))
    .unwrap();
}

#[tokio::test]
async fn lease_task_leads_and_releases_on_stop() {
    let k = keys("task");
    let l = lease_with(&k, Duration::from_secs(1));
    let token = l.token().to_string();
    let (mut role, stop_tx, task) = spawn_lease(l);
    role_becomes(&mut role, "leader", 5).await;
    let fence = match &*role.borrow() {
        Role::Leader(t) => t.fence,
        Role::Standby => unreachable!(),
    };
    // Held through several TTLs by renewal.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let observer = lease_with(&k, Duration::from_secs(1));
    assert_eq!(
        observer.holder().await.unwrap(),
        Some(format!("{token}:{fence}"))
    );
    match &*role.borrow() {
        Role::Leader(t) => {
            assert_eq!(t.fence, fence, "renewal keeps the term");
            assert!(t.until > tokio::time::Instant::now());
        }
        Role::Standby => panic!("lost the lease while renewing"),
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(*role.borrow(), Role::Standby);
    assert_eq!(observer.holder().await.unwrap(), None, "released on stop");
    cleanup(&k).await;
}

#[tokio::test]
async fn lease_task_steps_down_when_the_key_is_taken() {
    let k = keys("stolen");
    let l = lease_with(&k, Duration::from_secs(1));
    let (mut role, _stop_tx, task) = spawn_lease(l);
    role_becomes(&mut role, "leader", 5).await;
    // Someone overwrites the key (an operator, or a split brain): the next
    // renewal's compare fails and the task stands by, then keeps polling.
    let mut c = redis_conn().await;
    let _: () = redis::cmd("SET")
        .arg(&k.lock)
        .arg("intruder:99")
        .arg("PX")
        .arg(1500)
        .query_async(&mut c)
        .await
        .unwrap();
    role_becomes(&mut role, "standby", 3).await;
    // After the intruder's key expires, it leads again with a new fence.
    role_becomes(&mut role, "leader", 5).await;
    task.abort();
    cleanup(&k).await;
}

#[tokio::test]
async fn state_writes_are_fenced() {
    let k = keys("state");
    let a = lease_with(&k, Duration::from_secs(10));
    let fa = a.try_acquire().await.unwrap().unwrap();
    let st = RedisState::new(store(), k.clone());
    let s1 = EntryState {
        cursor: Some(Timestamp::from_second(1_700_000_000).unwrap()),
        total_runs: 3,
        timing_key: "every:1s".into(),
        ..Default::default()
    };
    st.save(&a.value(fa), [("one", &s1), ("two", &s1)], &[])
        .await
        .unwrap();
    let loaded = st.load().await.unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded["one"], s1);
    assert!(a.check(&a.value(fa)).await.unwrap());
    // A stale term writes nothing.
    let mut s2 = s1.clone();
    s2.total_runs = 99;
    let stale = a.value(fa + 1);
    assert!(!a.check(&stale).await.unwrap());
    assert_eq!(
        st.save(&stale, [("one", &s2)], &["two".to_string()]).await,
        Err(RedisStateError::Deposed)
    );
    assert_eq!(st.load().await.unwrap()["one"].total_runs, 3);
    // Removal under the right fence.
    st.save(&a.value(fa), [], &["two".to_string()])
        .await
        .unwrap();
    assert_eq!(st.load().await.unwrap().keys().collect::<Vec<_>>(), ["one"]);
    cleanup(&k).await;
}

#[tokio::test]
async fn fenced_publish_pushes_and_records_or_does_nothing() {
    let k = keys("pub");
    let prefix = format!("{}:", unique("pubq"));
    let a = lease_with(&k, Duration::from_secs(10));
    let fa = a.try_acquire().await.unwrap().unwrap();
    let es = entries("schedules:\n  tick:\n    task: tasks.record\n    every: 1s\n");
    let t = Timestamp::now();
    let msgs: Vec<_> = (0..2500)
        .map(|i| message(&es, "tick", t + jiff::SignedDuration::from_secs(i)))
        .collect();
    let states: Vec<(&str, String)> = (0..msgs.len())
        .map(|i| ("tick", format!("{{\"total_runs\":{}}}", i + 1)))
        .collect();
    let mut b = RedisBroker::new(&redis_url_with(&format!("global_keyprefix={prefix}"))).unwrap();
    let value = a.value(fa);
    let fence = Fence {
        lease_key: &k.lock,
        value: &value,
        state_key: &k.state,
    };
    let r = b.publish_fenced(&msgs, &states, fence).await;
    assert!(
        r.iter().all(|r| r.is_ok()),
        "{:?}",
        r.iter().find(|r| r.is_err())
    );
    assert_eq!(llen(&format!("{prefix}celery")).await, 2500);
    let st = RedisState::new(store(), k.clone());
    assert_eq!(st.load().await.unwrap()["tick"].total_runs, 2500);
    // Deposed: another instance holds the lease now.
    a.release(fa).await.unwrap();
    let other = lease_with(&k, Duration::from_secs(10));
    other.try_acquire().await.unwrap().unwrap();
    let r = b.publish_fenced(&msgs[..3], &states[..3], fence).await;
    assert_eq!(r, vec![Err(PublishError::Deposed); 3]);
    assert_eq!(
        llen(&format!("{prefix}celery")).await,
        2500,
        "nothing pushed"
    );
    // The queue and kombu's binding sets.
    assert_eq!(delete_prefixed(&prefix), 3);
    cleanup(&k).await;
}

async fn llen(key: &str) -> usize {
    crate::util::redis::llen(&url(), key).await.unwrap()
}

/// `sentinel://…?master_name=` finds the master through the Sentinel and
/// runs the lease there.
#[tokio::test]
async fn lease_through_sentinel() {
    let master = RedisServer::start();
    let sentinel = RedisServer::sentinel(&master);
    let url = format!(
        "sentinel://127.0.0.1:{};sentinel://127.0.0.1:1/0?master_name=mymaster",
        sentinel.port
    );
    let store = Arc::new(RedisLink::open(&url, Duration::from_secs(1)).unwrap());
    let k = keys("sentinel");
    let cfg = LeaseConfig::new(Duration::from_secs(5), None).unwrap();
    let a = RedisLease::new(store.clone(), k.clone(), cfg);
    let b = RedisLease::new(store, k.clone(), cfg);
    let fa = a
        .try_acquire()
        .await
        .unwrap()
        .expect("acquired via sentinel");
    assert_eq!(b.try_acquire().await.unwrap(), None);
    assert!(a.renew(fa).await.unwrap());
    assert!(a.release(fa).await.unwrap());
    assert_eq!(b.try_acquire().await.unwrap(), Some(fa + 1));
}
