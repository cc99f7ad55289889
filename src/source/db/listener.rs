//! The PostgreSQL LISTEN/NOTIFY listener: a task that forwards the names
//! the triggers notify on [`CHANNEL`] to the syncer as [`Event`]s, and
//! reconnects with back-off when its connection is lost.
//!
//! **Invariant**: after every (re)subscription the syncer is told
//! ([`Event::Listening`]), and after every loss too ([`Event::Lost`]), so it
//! reconciles whatever notifications were missed.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;
use tracing::warn;

use super::LOG_TARGET;
use crate::db::CHANNEL;

/// What the listener tells the syncer.
pub enum Event {
    /// A row changed (its name; empty after a TRUNCATE).
    Names(String),
    /// The listener is (re)subscribed: notifications may have been lost.
    Listening,
    /// The listener lost its connection (or cannot get one): the syncer
    /// reconciles at its next tick, which finds out whether the database
    /// itself is unreachable (readiness says so) or only the listener was.
    Lost,
}

/// Forwards notifications; reconnects (with backoff) when the connection is
/// lost and says so, so the syncer reconciles.
pub async fn listen(pool: PgPool, tx: mpsc::UnboundedSender<Event>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut l = match subscribe(&pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(target: LOG_TARGET, error = %e, retry_in_ms = backoff.as_millis() as u64, "database listener cannot connect");
                if tx.send(Event::Lost).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if tx.send(Event::Listening).is_err() {
            return;
        }
        loop {
            match l.try_recv().await {
                Ok(Some(n)) => {
                    if tx.send(Event::Names(n.payload().to_string())).is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    warn!(target: LOG_TARGET, "database listener disconnected; reconnecting and resynchronising");
                    break;
                }
                Err(e) => {
                    warn!(target: LOG_TARGET, error = %e, "database listener failed; reconnecting and resynchronising");
                    break;
                }
            }
        }
        if tx.send(Event::Lost).is_err() {
            return;
        }
    }
}

/// A listener connection subscribed to [`CHANNEL`].
pub async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    // Our own try_recv loop reconnects, so the resync always follows LISTEN.
    l.eager_reconnect(false);
    sqlx::query("SET application_name = 'metronome-listener'")
        .execute(&mut l)
        .await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}
