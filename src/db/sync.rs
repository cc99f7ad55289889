//! The handle other parts (the API) hold on the database syncer: its
//! status ([`SyncStatus`]) and immediate refreshes ([`SyncClient::refresh`]).
//!
//! Owns the refresh channel; [`SyncClient::channel`] makes both ends, so the
//! syncer (in `source::db`) takes the receiver and this module needs
//! nothing of the service loop.
//!
//! **Invariant**: a refresh is answered only once its rows are applied to
//! the scheduler (or the syncer has stopped).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

/// Refresh requests queued before a sender waits.
const REFRESH_QUEUE: usize = 64;

/// What the syncer reports to the API.
#[derive(Debug, Default, Clone)]
pub struct SyncStatus {
    /// Rows that do not validate (or clash with a file's name): name → error.
    pub invalid: BTreeMap<String, String>,
    /// False while the database is unreachable.
    pub connected: bool,
    /// Number of valid database entries in the scheduler.
    pub entries: usize,
}

/// Shared view of the syncer's status.
pub type SharedStatus = Arc<RwLock<SyncStatus>>;

/// A request to fetch some rows now (after an API write), answered once
/// they are applied to the scheduler.
pub struct Refresh {
    pub names: Vec<String>,
    pub done: oneshot::Sender<()>,
}

/// Asks a running syncer for immediate refreshes.
#[derive(Clone)]
pub struct SyncClient {
    tx: mpsc::Sender<Refresh>,
    pub status: SharedStatus,
}

impl SyncClient {
    /// A client (status: connected, nothing invalid) and the receiving end
    /// of its refreshes, for the syncer.
    pub fn channel() -> (SyncClient, mpsc::Receiver<Refresh>) {
        let (tx, rx) = mpsc::channel(REFRESH_QUEUE);
        let status: SharedStatus = Arc::new(RwLock::new(SyncStatus {
            connected: true,
            ..Default::default()
        }));
        (SyncClient { tx, status }, rx)
    }

    /// Fetches `names` now and waits until the scheduler has them.
    pub async fn refresh(&self, names: Vec<String>) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Refresh { names, done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_refresh_waits_for_its_answer() {
        let (client, mut rx) = SyncClient::channel();
        assert!(client.status.read().unwrap().connected);
        let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = answered.clone();
        let syncer = tokio::spawn(async move {
            let r = rx.recv().await.expect("a refresh");
            assert_eq!(r.names, vec!["a".to_string()]);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = r.done.send(());
        });
        client.refresh(vec!["a".into()]).await;
        assert!(answered.load(std::sync::atomic::Ordering::SeqCst));
        syncer.await.unwrap();
    }

    #[tokio::test]
    async fn a_refresh_returns_when_the_syncer_is_gone() {
        let (client, rx) = SyncClient::channel();
        drop(rx);
        let waited =
            tokio::time::timeout(Duration::from_secs(5), client.refresh(vec!["a".into()])).await;
        assert!(waited.is_ok(), "refresh waited for a syncer that is gone");
    }
}
