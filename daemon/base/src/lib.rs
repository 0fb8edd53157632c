//! The I/O plumbing every Outpost process shares, laptop and hub alike,
//! so each of these rules lives in one place:
//! - [`sqlite`]: how every database connection is set up (WAL, full sync,
//!   secure delete, the `fold()` function for Swedish text);
//! - [`paths`]: data and config directories, and reading a settings file;
//! - [`logging`]: where `tracing` events go (files for daemons, stderr for
//!   the CLI).
//!
//! Nothing here knows about records, sync or the hub.

pub mod logging;
pub mod paths;
pub mod sqlite;
