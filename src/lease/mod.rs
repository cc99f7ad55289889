//! Leadership: a lease with a fencing number, in Redis ([`redis`]) or
//! PostgreSQL ([`postgres`]). The Redis lease is described here; the
//! timing rules below hold for both.
//!
//! One key, `<prefix>lock`, holds `<token>:<fence>` with a TTL. The token is
//! random per process (it is also the instance id sent in message headers);
//! the fence is `INCR <prefix>fence`, taken inside the acquire script, so
//! every acquisition — by anyone — gets a larger number than any before it.
//!
//! - **Acquire**: if the key is absent (or still holds an older term of our
//!   own token), `INCR` the fence and `SET key token:fence PX ttl`. One Lua
//!   script, so the check, the increment and the write cannot interleave
//!   with another instance's.
//! - **Renew**: `PEXPIRE` only if the key still holds exactly our value
//!   (compare-and-set script). **Release**: `DEL` likewise (SIGTERM).
//!
//! # When a leader must stop
//!
//! The lease ends on the *server's* clock `ttl` after the server applied the
//! last renewal, which happened after we sent it. Measured on our monotonic
//! clock from when the request was **sent**, the lease is certainly alive
//! until `sent + ttl`, give or take the two clocks' rate difference. We stop
//! dispatching at [`must_stop_at`] = `sent + ttl − margin`, where the margin
//! ([`safety_margin`]) is 1 % of the TTL (clock-rate drift, far above real
//! quartz drift) plus 100 ms (scheduling delays between our check and the
//! server executing a publish). A leader that cannot renew by then becomes a
//! standby and keeps trying to acquire; it never exits for that.
//!
//! # Configuration rule
//!
//! Each lease command waits at most `op_timeout = clamp(ttl/10, 100 ms, 1 s)`
//! for a reply. [`LeaseConfig::new`] accepts a renew period only if
//! `50 ms ≤ renew < ttl/2` and `ttl − margin − renew ≥ 2 × op_timeout`: a
//! renewal that is lost or times out leaves time for at least one more full
//! attempt before the leader has to stop, and at least two renewals fall in
//! every TTL. The TTL itself must be at least 1 s.
//!
//!
//! The lease itself is a port ([`crate::ports::lease::Lease`]); this module
//! holds its timing rules, the Redis and PostgreSQL adapters and the task
//! that keeps either ([`keeper`]).
//!
//! **Invariant:** a leader stops dispatching at [`must_stop_at`], before
//! the server could give the lease to anyone else.

pub mod keeper;
pub mod postgres;
pub mod redis;

use std::ops::Add;
use std::time::Duration;

pub use crate::ports::lease::{Lease, LeaseError, Role, Term};
pub use keeper::run;
pub use postgres::PgLease;
pub use redis::RedisLease;

/// Default lease time-to-live.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How often a standby tries to acquire the lease.
pub const ACQUIRE_POLL: Duration = Duration::from_millis(250);
/// Pause between renew attempts after a failed one.
pub(crate) const RENEW_RETRY: Duration = Duration::from_millis(100);

/// The lease timing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    pub ttl: Duration,
    pub renew: Duration,
}

/// A lease timing that cannot keep the lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseConfigError {
    #[error("--lock-ttl {0:?} is too short; it must be at least 1s")]
    TtlTooShort(Duration),
    #[error("--lock-renew {renew:?} is too short; it must be at least 50ms")]
    RenewTooShort { renew: Duration },
    #[error(
        "--lock-renew {renew:?} cannot keep a {ttl:?} lease: it must be less than half the TTL ({half:?})"
    )]
    RenewTooLong {
        renew: Duration,
        ttl: Duration,
        half: Duration,
    },
    #[error(
        "--lock-renew {renew:?} with --lock-ttl {ttl:?} leaves {left:?} after a missed renewal; at least {need:?} (two command timeouts) is needed"
    )]
    NoRoomToRetry {
        renew: Duration,
        ttl: Duration,
        left: Duration,
        need: Duration,
    },
}

impl LeaseConfig {
    /// Checks the rule in the module documentation. `renew` defaults to a
    /// third of the TTL.
    pub fn new(ttl: Duration, renew: Option<Duration>) -> Result<LeaseConfig, LeaseConfigError> {
        if ttl < Duration::from_secs(1) {
            return Err(LeaseConfigError::TtlTooShort(ttl));
        }
        let renew = renew.unwrap_or(ttl / 3);
        if renew < Duration::from_millis(50) {
            return Err(LeaseConfigError::RenewTooShort { renew });
        }
        if renew * 2 >= ttl {
            return Err(LeaseConfigError::RenewTooLong {
                renew,
                ttl,
                half: ttl / 2,
            });
        }
        retry_room(ttl, renew, op_timeout(ttl))?;
        Ok(LeaseConfig { ttl, renew })
    }

    /// See [`safety_margin`].
    pub fn margin(&self) -> Duration {
        safety_margin(self.ttl)
    }

    /// The reply timeout of one lease command.
    pub fn op_timeout(&self) -> Duration {
        op_timeout(self.ttl)
    }
}

/// `clamp(ttl/10, 100 ms, 1 s)`.
fn op_timeout(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The second half of the rule: after a renewal sent at `renew` is lost,
/// two command timeouts must still fit before the leader has to stop.
/// (With today's `op_timeout` the first half implies it for every TTL of
/// at least 1 s; it is kept so a change of timeouts cannot break it.)
fn retry_room(ttl: Duration, renew: Duration, op: Duration) -> Result<(), LeaseConfigError> {
    let left = ttl.saturating_sub(safety_margin(ttl)).saturating_sub(renew);
    let need = op * 2;
    if left < need {
        return Err(LeaseConfigError::NoRoomToRetry {
            renew,
            ttl,
            left,
            need,
        });
    }
    Ok(())
}

/// How long before the lease could lapse a leader stops: 1 % of the TTL
/// (clock-rate drift) plus 100 ms.
pub fn safety_margin(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(100)
}

/// The instant a leader must stop dispatching, given when the request that
/// last set the lease's TTL (acquire or renew) was *sent*. Generic over the
/// clock so it can be tested with a fake one.
pub fn must_stop_at<T: Add<Duration, Output = T>>(sent: T, ttl: Duration, margin: Duration) -> T {
    sent + ttl.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_counts_from_send_time() {
        // Fake clock: milliseconds as a Duration since an arbitrary origin.
        let ttl = Duration::from_secs(10);
        let m = safety_margin(ttl);
        assert_eq!(m, Duration::from_millis(200));
        let sent = Duration::from_millis(5_000);
        assert_eq!(must_stop_at(sent, ttl, m), Duration::from_millis(14_800));
        // 2 s lease: 120 ms margin.
        let ttl = Duration::from_secs(2);
        assert_eq!(
            must_stop_at(Duration::ZERO, ttl, safety_margin(ttl)),
            Duration::from_millis(1_880)
        );
        // A margin larger than the TTL never yields a time before `sent`.
        assert_eq!(
            must_stop_at(sent, Duration::from_millis(50), Duration::from_millis(100)),
            sent
        );
    }

    #[test]
    fn deadline_is_safe_against_a_slow_reply() {
        // The renewal reached the server 300 ms after we sent it and the
        // reply took 400 ms more: the server's lease ends at sent+300+ttl,
        // ours at sent+ttl-margin, so we stop first whatever the delays.
        let ttl = Duration::from_secs(10);
        let sent = Duration::from_millis(1_000);
        let server_expiry = sent + Duration::from_millis(300) + ttl;
        assert!(must_stop_at(sent, ttl, safety_margin(ttl)) < server_expiry);
    }

    #[test]
    fn config_defaults_and_rule() {
        let c = LeaseConfig::new(DEFAULT_TTL, None).unwrap();
        assert_eq!(c.renew, Duration::from_secs(10) / 3);
        assert_eq!(c.op_timeout(), Duration::from_secs(1));
        let c = LeaseConfig::new(Duration::from_secs(2), None).unwrap();
        assert_eq!(c.op_timeout(), Duration::from_millis(200));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_secs(5))),
            Err(LeaseConfigError::RenewTooLong { .. })
        ));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_secs(6))),
            Err(LeaseConfigError::RenewTooLong { .. })
        ));
        assert!(
            LeaseConfig::new(Duration::from_secs(10), Some(Duration::from_millis(4_999))).is_ok()
        );
        assert!(matches!(
            LeaseConfig::new(Duration::from_millis(500), None),
            Err(LeaseConfigError::TtlTooShort(_))
        ));
        assert!(matches!(
            LeaseConfig::new(Duration::from_secs(5), Some(Duration::from_millis(10))),
            Err(LeaseConfigError::RenewTooShort { .. })
        ));
        // 1 s TTL, 490 ms renew: 1000 - 110 - 490 = 400 ms left >= 2 x 100 ms.
        assert!(LeaseConfig::new(Duration::from_secs(1), Some(Duration::from_millis(490))).is_ok());
    }

    #[test]
    fn no_room_to_retry_is_refused() {
        // 2 s lease, 120 ms margin, 900 ms renew: 980 ms left.
        let (ttl, renew) = (Duration::from_secs(2), Duration::from_millis(900));
        assert!(retry_room(ttl, renew, Duration::from_millis(490)).is_ok());
        assert!(matches!(
            retry_room(ttl, renew, Duration::from_millis(500)),
            Err(LeaseConfigError::NoRoomToRetry { .. })
        ));
        // The shortest legal lease still has room with the real timeout.
        let ttl = Duration::from_secs(1);
        assert!(retry_room(ttl, Duration::from_millis(499), op_timeout(ttl)).is_ok());
    }
}
