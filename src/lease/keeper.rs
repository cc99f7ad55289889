//! The task that keeps the lease: acquires it while standing by, renews it
//! while leading, steps down at the deadline, releases it on stop, and
//! publishes this instance's [`Role`] for the run loop.
//!
//! **Invariant:** the published term's `until` is [`must_stop_at`] of the
//! last successful acquire or renew, measured from when it was sent.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{ACQUIRE_POLL, LeaseConfig, RENEW_RETRY, must_stop_at};
use crate::ports::lease::{Lease, Role, Term};

/// Keeps the lease: acquires it while standing by, renews it while
/// leading, steps down at the deadline, and releases it once `stop` turns
/// true. Publishes the role on `tx`; a renewal only moves `until` without
/// waking receivers, a change of role or term wakes them.
pub async fn run(
    lease: Arc<dyn Lease>,
    cfg: LeaseConfig,
    tx: watch::Sender<Role>,
    mut stop: watch::Receiver<bool>,
) {
    let mut k = Keeper {
        lease,
        cfg,
        tx,
        held: None,
        failing: false,
    };
    loop {
        if *stop.borrow() {
            break;
        }
        match k.held {
            None => {
                if k.try_acquire().await {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(ACQUIRE_POLL) => {}
                    _ = stop.changed() => {}
                }
            }
            Some(h) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(h.next.min(h.until)) => {}
                    _ = stop.changed() => continue,
                }
                k.renew(h).await;
            }
        }
    }
    k.release().await;
}

/// A term this instance holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    fence: u64,
    /// Dispatch must have stopped by then.
    until: Instant,
    /// When to renew next.
    next: Instant,
}

struct Keeper {
    lease: Arc<dyn Lease>,
    cfg: LeaseConfig,
    tx: watch::Sender<Role>,
    held: Option<Held>,
    /// The last attempt failed (warn once, not at every poll).
    failing: bool,
}

impl Keeper {
    /// One acquire attempt; true if it made us leader.
    async fn try_acquire(&mut self) -> bool {
        let sent = Instant::now();
        let r = tokio::time::timeout(self.cfg.op_timeout(), self.lease.try_acquire()).await;
        match r {
            Ok(Ok(Some(fence))) => {
                let until = must_stop_at(sent, self.cfg.ttl, self.cfg.margin());
                self.held = Some(Held {
                    fence,
                    until,
                    next: sent + self.cfg.renew,
                });
                self.failing = false;
                info!(instance = %self.lease.token(), fence, ttl_ms = self.cfg.ttl.as_millis() as u64, "lease acquired; leading");
                metrics::counter!("metronome_lease_acquired_total").increment(1);
                crate::metrics::set_leader(true, fence);
                self.tx.send_replace(Role::Leader(Term {
                    fence,
                    value: self.lease.value(fence),
                    until,
                }));
                return true;
            }
            Ok(Ok(None)) => self.failing = false,
            Ok(Err(e)) => {
                if !self.failing {
                    warn!(lock = %self.lease.describe(), error = %e, "cannot reach the lease store; standing by");
                }
                self.failing = true;
            }
            Err(_) => {
                if !self.failing {
                    warn!(lock = %self.lease.describe(), "the lease store does not answer; standing by");
                }
                self.failing = true;
            }
        }
        false
    }

    /// One renewal of the term `h`, once its renew time has come.
    async fn renew(&mut self, h: Held) {
        if Instant::now() >= h.until {
            return self.step_down(h.fence, "lease not renewed in time");
        }
        let sent = Instant::now();
        let r = tokio::select! {
            r = self.lease.renew(h.fence) => Some(r),
            _ = tokio::time::sleep_until(h.until) => None,
        };
        match r {
            Some(Ok(true)) => {
                let until = must_stop_at(sent, self.cfg.ttl, self.cfg.margin());
                self.held = Some(Held {
                    until,
                    next: sent + self.cfg.renew,
                    ..h
                });
                self.tx.send_if_modified(|r| {
                    if let Role::Leader(t) = r {
                        t.until = until;
                    }
                    false
                });
            }
            Some(Ok(false)) => {
                self.step_down(h.fence, "lease lost (held by another instance or expired)")
            }
            Some(Err(e)) => {
                crate::metrics::lease_renew_failed();
                warn!(fence = h.fence, error = %e, "lease renewal failed; retrying");
                self.held = Some(Held {
                    next: Instant::now() + RENEW_RETRY,
                    ..h
                });
            }
            None => self.step_down(h.fence, "lease not renewed in time"),
        }
    }

    /// On stop: stands by and gives the lease up, if held.
    async fn release(&mut self) {
        let Some(h) = self.held.take() else {
            return;
        };
        let fence = h.fence;
        self.tx.send_replace(Role::Standby);
        crate::metrics::set_leader(false, 0);
        let op = self.cfg.op_timeout();
        match tokio::time::timeout(op * 2, self.lease.release(fence)).await {
            Ok(Ok(true)) => info!(fence, "lease released"),
            Ok(Ok(false)) => info!(fence, "lease already gone at release"),
            Ok(Err(e)) => warn!(fence, error = %e, "lease release failed; it will expire"),
            Err(_) => warn!(fence, "lease release timed out; it will expire"),
        }
    }

    fn step_down(&mut self, fence: u64, why: &str) {
        self.held = None;
        self.tx.send_replace(Role::Standby);
        crate::metrics::set_leader(false, 0);
        crate::metrics::lease_renew_failed();
        metrics::counter!("metronome_lease_lost_total").increment(1);
        warn!(fence, reason = why, "stopped dispatching; standing by");
    }
}
