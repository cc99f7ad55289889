//! The composition root: where the parsed command line becomes running
//! parts. Each subcommand chooses and builds the library's pieces (sources,
//! run state store, broker, lease, HTTP API, service loop), wires them
//! together and turns their errors into messages and exit codes. It is part
//! of the binary, not the library, so `anyhow` stays at the binary's edge;
//! `main.rs` only parses the command line and calls in here.
//!
//! - [`logging`]: the log writer on stderr and [`init_logging`].
//! - [`run`](mod@run): `metronome run`, with each backend built in
//!   `backends`.
//! - `schedules`: `metronome check` and `metronome next`; `announce`:
//!   the next runs `run` logs at start.
//! - `ops`: `metronome healthcheck` and `metronome migrate`.
//! - [`config`]: `*_FILE` secrets and the warning for secrets given as
//!   flags; `pidfile`: `--pidfile`.
//! - `imports`: `metronome import celery|redbeat|django-celery-beat`.

mod announce;
mod backends;
pub mod config;
mod imports;
pub mod logging;
mod ops;
mod pidfile;
pub mod run;
mod schedules;

/// The target of the log lines written here: that of the binary's root
/// (`metronome`), as before these moved out of `main.rs`, so that
/// `METRONOME_LOG` filters and JSON `target` fields are unchanged.
const LOG_TARGET: &str = "metronome";

pub use imports::import;
pub use logging::init_logging;
pub use ops::{healthcheck, migrate};
pub use run::run;
pub use schedules::{check, next};
