//! The PostgreSQL lease and its fenced run state against the real server
//! (each test in a database of its own): acquire, contend, renew, release,
//! epochs, steal after expiry, a deposed writer refused, and the same
//! through a real PgBouncer in transaction pooling mode.

use std::collections::BTreeMap;
use std::time::Duration;

use metronome::db::Db;
use metronome::lease::{LeaseConfig, PgLease};
use metronome::ports::lease::Lease;
use metronome::ports::store::{StateError, StateStore};
use metronome::state::EntryState;
use metronome::state::sql::FencedSqlState;

use crate::util::db::{Pg, PgBouncer};

fn lease(url: &str, ttl: Duration) -> PgLease {
    named(url, "metronome:", ttl)
}

fn named(url: &str, name: &str, ttl: Duration) -> PgLease {
    PgLease::open(url, name, LeaseConfig::new(ttl, None).unwrap()).unwrap()
}

fn state(runs: u64) -> EntryState {
    EntryState {
        total_runs: runs,
        cursor: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        ..Default::default()
    }
}

/// Saves entry `a` with `runs` under `fence`.
async fn save(store: &FencedSqlState, runs: u64, fence: Option<&str>) -> Result<(), StateError> {
    let s = state(runs);
    store.save(vec![("a", &s)], &[], fence).await
}

async fn saved_runs(store: &FencedSqlState) -> Option<u64> {
    let all: BTreeMap<String, EntryState> = store.reload().await.unwrap().unwrap();
    all.get("a").map(|s| s.total_runs)
}

async fn migrated(url: &str) {
    Db::connect(url).await.unwrap().migrate().await.unwrap();
}

/// Contention, renewal, release and epochs; a stale term can neither renew
/// nor release; and the fenced store writes only under the current term.
async fn lease_cycle(url: &str) {
    let ttl = Duration::from_secs(10);
    let (a, b) = (lease(url, ttl), lease(url, ttl));
    assert_ne!(a.token(), b.token());
    let fa = a.try_acquire().await.unwrap().expect("free lease acquired");
    assert_eq!(fa, 1);
    assert_eq!(b.try_acquire().await.unwrap(), None, "held lease refused");
    assert_eq!(a.holder().await.unwrap(), Some(a.value(fa)));
    assert!(a.check(&a.value(fa)).await.unwrap());
    assert!(!b.check(&b.value(fa)).await.unwrap());
    assert!(a.renew(fa).await.unwrap());
    assert!(!b.renew(fa).await.unwrap(), "another token cannot renew");
    assert!(
        !a.renew(fa + 1).await.unwrap(),
        "another epoch cannot renew"
    );

    let store_a = FencedSqlState::new(a.pool().clone(), a.name());
    let store_b = FencedSqlState::new(b.pool().clone(), b.name());
    save(&store_a, 1, Some(&a.value(fa))).await.unwrap();
    assert_eq!(saved_runs(&store_b).await, Some(1));
    let e = save(&store_b, 99, Some(&b.value(fa))).await.unwrap_err();
    assert!(e.to_string().contains("no longer holds the lease"), "{e}");
    save(&store_b, 99, None).await.unwrap();
    assert_eq!(saved_runs(&store_a).await, Some(1), "standby wrote nothing");

    assert!(a.release(fa).await.unwrap());
    assert!(!a.release(fa).await.unwrap(), "released twice");
    assert_eq!(a.holder().await.unwrap(), None);
    let fb = b
        .try_acquire()
        .await
        .unwrap()
        .expect("released lease taken");
    assert_eq!(fb, 2, "every acquisition takes a larger epoch");
    let e = save(&store_a, 5, Some(&a.value(fa))).await.unwrap_err();
    assert!(e.to_string().contains("no longer holds the lease"), "{e}");
    save(&store_b, 2, Some(&b.value(fb))).await.unwrap();
    assert_eq!(saved_runs(&store_a).await, Some(2));
    // Our own older term is replaced by a new one (a restart with the same
    // token cannot happen, but the rule is the Redis lease's).
    assert_eq!(b.try_acquire().await.unwrap(), Some(3));
    assert!(!b.renew(fb).await.unwrap());
}

#[tokio::test]
async fn acquire_contend_renew_release_and_fence_state() {
    let db = Pg::new().await;
    migrated(&db.url).await;
    lease_cycle(&db.url).await;
}

#[tokio::test]
async fn expired_lease_is_stolen_and_the_deposed_writer_refused() {
    let db = Pg::new().await;
    migrated(&db.url).await;
    let ttl = Duration::from_secs(1);
    let (a, b) = (lease(&db.url, ttl), lease(&db.url, ttl));
    let fa = a.try_acquire().await.unwrap().unwrap();
    assert_eq!(b.try_acquire().await.unwrap(), None);
    // The expiry is the database's clock: wait it out there.
    db.exec("SELECT pg_sleep(1.2)").await;
    assert_eq!(a.holder().await.unwrap(), None, "expired by now()");
    let fb = b
        .try_acquire()
        .await
        .unwrap()
        .expect("expired lease stolen");
    assert_eq!(fb, fa + 1);
    assert!(
        !a.renew(fa).await.unwrap(),
        "the deposed leader cannot renew"
    );
    assert!(!a.release(fa).await.unwrap());
    let store = FencedSqlState::new(a.pool().clone(), a.name());
    assert!(save(&store, 7, Some(&a.value(fa))).await.is_err());
    assert_eq!(
        saved_runs(&store).await,
        None,
        "nothing of the deposed writer"
    );
    assert!(b.check(&b.value(fb)).await.unwrap());
}

/// The lease table is created by the first lease, even in a database
/// without metronome's migrations; a dropped connection is replaced.
#[tokio::test]
async fn lease_creates_its_table_and_survives_a_terminated_backend() {
    let db = Pg::new().await;
    let a = lease(&db.url, Duration::from_secs(10));
    let f = a.try_acquire().await.unwrap().unwrap();
    db.admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '$DB' AND application_name LIKE 'metronome lease %'",
    )
    .await;
    // The terminated connection fails at most once, then is replaced.
    let mut renewed = a.renew(f).await.unwrap_or(false);
    if !renewed {
        renewed = a.renew(f).await.unwrap();
    }
    assert!(renewed);
}

/// The whole cycle through PgBouncer in transaction mode with a pool of
/// two server connections shared by four client pools: only simple
/// statements and unnamed statements inside transactions reach it, so
/// nothing fails however the server connections are handed out.
#[tokio::test]
async fn through_pgbouncer_in_transaction_mode() {
    let Some(bouncer) = PgBouncer::start() else {
        return;
    };
    let db = Pg::new().await;
    migrated(&db.url).await;
    let url = bouncer.url(&db);
    lease_cycle(&url).await;
    // Contenders and fenced writers taking turns, many times over.
    let ttl = Duration::from_secs(10);
    let ls: Vec<PgLease> = (0..4).map(|_| named(&url, "turns:", ttl)).collect();
    let mut f = ls[0].try_acquire().await.unwrap().unwrap();
    for round in 0..25usize {
        let (owner, next) = (&ls[round % 4], &ls[(round + 1) % 4]);
        assert_eq!(next.try_acquire().await.unwrap(), None, "held");
        let store = FencedSqlState::new(owner.pool().clone(), owner.name());
        save(&store, round as u64, Some(&owner.value(f)))
            .await
            .unwrap();
        assert!(owner.release(f).await.unwrap());
        let nf = next.try_acquire().await.unwrap().expect("free lease");
        assert_eq!(nf, f + 1);
        assert!(save(&store, 0, Some(&owner.value(f))).await.is_err());
        assert_eq!(saved_runs(&store).await, Some(round as u64));
        f = nf;
    }
}
