//! The I/O plumbing every Outpost process shares, laptop and hub alike,
//! so each of these rules lives in one place:
//! - [`sqlite`]: how every database connection is set up (WAL, full sync,
//!   secure delete, the `fold()` function for Swedish text), and the
//!   writers' WAL checkpoints on a thread of their own;
//! - [`paths`]: data and config directories, and reading a settings file;
//! - [`files`]: private modes for data dirs, databases and secrets, and
//!   writing a file a person named safely (exclusive temp file, rename);
//! - [`logging`]: where `tracing` events go (files for daemons, stderr for
//!   the CLI), and an error with its causes on one line ([`logging::Chain`]).
//!
//! - [`install_crypto_provider`]: the TLS set-up both the laptop's client
//!   and the hub's server need before their first connection.
//!
//! Nothing here knows about records, sync or the hub.

pub mod files;
pub mod logging;
pub mod paths;
pub mod sqlite;

/// Installs the ring crypto provider for rustls once per process (the
/// workspace builds rustls without a default provider, so the laptop's
/// client and the hub's server both call this before they use TLS).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
