//! The lease port: one instance among several may dispatch at a time, and
//! each term of leadership carries a fencing number larger than any before.
//!
//! The run loop never calls a [`Lease`] to learn its role: `lease::keeper`
//! keeps the lease and publishes a [`Role`]; the loop reads the role's
//! deadline before each batch and asks [`Lease::check`] just before a
//! publish that its broker cannot fence by itself.
//!
//! **Invariant:** a [`Term`]'s `until` is no later than the moment the
//! lease server could hand the lease to another instance.

use tokio::time::Instant;

use super::BoxFuture;

/// A lease command that failed (unreachable, timed out, refused).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LeaseError(pub Box<dyn std::error::Error + Send + Sync>);

/// A shared lease with fencing numbers.
pub trait Lease: Send + Sync {
    /// This process's random token, also its instance id.
    fn token(&self) -> &str;

    /// The value the lease holds while we lead under `fence`.
    fn value(&self, fence: u64) -> String {
        format!("{}:{fence}", self.token())
    }

    /// Takes the lease if nobody holds it; returns the new fencing number.
    fn try_acquire(&self) -> BoxFuture<'_, Result<Option<u64>, LeaseError>>;

    /// Extends the lease to a full TTL if we still hold it under `fence`.
    fn renew(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>>;

    /// Gives the lease up if we still hold it under `fence`.
    fn release(&self, fence: u64) -> BoxFuture<'_, Result<bool, LeaseError>>;

    /// True if the lease holds exactly `value` now.
    fn check<'a>(&'a self, value: &'a str) -> BoxFuture<'a, Result<bool, LeaseError>>;

    /// The lease's current value (`token:fence`), if anyone holds it.
    fn holder(&self) -> BoxFuture<'_, Result<Option<String>, LeaseError>>;

    /// Where the lease lives, password masked, for logs.
    fn describe(&self) -> &str;
}

/// Splits a lease value `token:fence` (as [`Lease::value`] makes it).
pub fn split_value(value: &str) -> Option<(&str, u64)> {
    let (token, fence) = value.rsplit_once(':')?;
    Some((token, fence.parse().ok()?))
}

/// A leadership term as the run loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub fence: u64,
    /// The lease's value during this term (`token:fence`).
    pub value: String,
    /// Dispatching must stop at this instant unless the lease is renewed
    /// (which moves it; read it fresh before each batch).
    pub until: Instant,
}

/// This instance's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Standby,
    Leader(Term),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Leader(_) => "leader",
        }
    }

    /// The term, if leading and its deadline has not passed at `now`.
    pub fn term_at(&self, now: Instant) -> Option<&Term> {
        match self {
            Role::Leader(t) if now < t.until => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_at_the_last_colon() {
        assert_eq!(split_value("abc:12"), Some(("abc", 12)));
        assert_eq!(split_value("a:b:3"), Some(("a:b", 3)));
        assert_eq!(split_value("abc"), None);
        assert_eq!(split_value("abc:x"), None);
    }
}
