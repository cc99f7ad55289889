//! The seams between the pure core and the outside world: small traits
//! the run loop holds, each implemented by adapters elsewhere (and by fakes
//! in tests).
//!
//! - [`broker::Broker`]: where messages go (`broker::{redis, amqp, stdout}`);
//!   a broker that can check the lease, publish and record run state in one
//!   step offers [`broker::AtomicPublish`].
//! - [`store::StateStore`]: where run state is kept (`state::{file, sql,
//!   redis}`).
//! - [`lease::Lease`]: who may dispatch (`lease::redis`), kept by
//!   `lease::keeper`, which tells the loop its [`lease::Role`].
//! - [`clock::Clock`]: what time it is.
//!
//! **Invariant:** ports know messages and run state, never a concrete
//! backend; the loop (`service`) holds only these traits.

pub mod broker;
pub mod clock;
pub mod lease;
pub mod store;

use std::future::Future;
use std::pin::Pin;

/// The future a port method returns: boxed, so the traits are object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
