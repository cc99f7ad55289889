//! The pure scheduler: given entries, their run state and "now", decide
//! which runs are due and when to wake next.
//!
//! Nothing here reads a clock, sleeps or does I/O; `now` is always an
//! argument, so a whole year can be simulated in milliseconds.
//!
//! Each entry's next run sits in one ordered queue keyed by its due time
//! (scheduled time plus jitter), so finding due runs costs O(log n) per run
//! whatever the number of entries.
//!
//! # Missed runs
//!
//! The scheduler dispatches only while *active* ([`Scheduler::resume`] to
//! [`Scheduler::pause`]). A run whose due time is before the moment
//! dispatching (re)started was *missed*; the entry's `misfire` policy decides
//! what happens to it. A run that falls due while active is dispatched even
//! if the loop is a little late, unless it is older than the entry's `grace`.
//!
//! # Protocol
//!
//! [`Scheduler::poll`] returns [`Decision`]s; the caller acts on each and
//! reports back with [`Scheduler::record`] before the next poll. A failed
//! publish is recorded and followed by [`Scheduler::pause`]; the next
//! [`Scheduler::resume`] recomputes every entry from its durable state, so
//! the failed run comes back as a missed run.
//!
//! # Files
//!
//! `scheduler` (the [`Scheduler`] and its queue), `decision` ([`Run`],
//! [`Decision`], [`SkipReason`]), `due` (runs due while active, grace,
//! expiry), `missed` (the misfire policy), `outcome` ([`Outcome`],
//! [`apply_outcome`]) and `upcoming` ([`upcoming`]). Their items are used
//! through the paths re-exported here.
//!
//! Invariant: pure. No file here reads the clock, sleeps or does I/O; the
//! submodules are private, so other modules see only these re-exports.

mod decision;
mod due;
mod missed;
mod outcome;
mod scheduler;
mod upcoming;

pub use decision::{Decision, Run, SkipReason};
pub use due::{expires_at, sleep_for};
pub use outcome::{Outcome, apply_outcome};
pub use scheduler::Scheduler;
pub use upcoming::upcoming;
