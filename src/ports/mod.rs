//! The seams between the pure core and the outside world: small traits
//! the run loop holds, each implemented by adapters elsewhere (and by fakes
//! in tests).

pub mod clock;
