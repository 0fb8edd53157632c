//! The laptop's side of Outpost: everything the `outpost` CLI links, and
//! nothing of the hub or of any server.
//!
//! Layout and flow:
//! - [`config`]: the laptop's layered settings (defaults → `config.toml` →
//!   `OUTPOST_*`), over the shared directory rules of `outpost-base`.
//! - [`store`]: the SQLite store: one Automerge document per record, a
//!   projection of current values for reading, tombstones for erasure. The
//!   CLI writes through it directly (offline-first: no daemon needed); the
//!   daemon opens the same file.
//! - [`central`]: which catalogue and site list are in force: the hub's
//!   (received at sync, kept in the store) on an enrolled laptop, else the
//!   local file.
//! - [`client`]: the laptop's HTTPS client to the hub.
//! - [`enrol`]: enrolling with a hub (a new device id when re-enrolling).
//! - [`transport`]: how sync messages reach the hub: the [`transport::Transport`]
//!   trait with typed errors ("retry later" or "a person must act");
//!   [`client::HubClient`] is the HTTPS implementation.
//! - [`sync`]: the sync driver: runs `outpost_proto::sync::Session`'s
//!   effects against the store and a transport.
//! - Exports and reports are written by `outpost-files` (shared with the
//!   hub) from the records this store streams.
//! - [`instance`]: the one-daemon-per-data-dir lock, which `outpost
//!   status` probes.
//! - [`ui`]: where `outpost ui` and the daemon's web app meet: the app's
//!   address file and one-time launch tokens.

pub mod central;
pub mod client;
pub mod config;
pub mod enrol;
pub mod instance;
pub mod store;
pub mod sync;
pub mod transport;
pub mod ui;
