//! The one integration-test binary: every suite is a module of it (run one
//! with `cargo test --test tests calendar::`), and `util` is the harness
//! they share. Invariant: a new suite is a file here plus one `mod` line,
//! never a new test target.

mod util;

mod calendar;
mod celery_amqp;
mod celery_redis;
mod chaos;
mod cli;
mod core;
mod database;
mod deploy;
mod import_stores;
mod importer;
mod layout;
mod lease;
mod lease_pg;
mod ops;
mod tls;
mod yaml_load;
