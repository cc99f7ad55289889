//! Sources of schedule entries: turning outside data into validated
//! [`Entry`](crate::entry::Entry) values.

pub mod db;
pub mod watch;
pub mod yaml;
