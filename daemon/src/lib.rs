//! Outpost's I/O side: the laptop store, the daemon and the hub.
//!
//! Layout and flow:
//! - [`config`]: data/config directories and layered settings
//!   (defaults → `config.toml` → `OUTPOST_*`).
//! - [`store`]: the SQLite store on a laptop: one Automerge document per
//!   record, a projection of current values for reading, tombstones for
//!   erasure. The CLI writes through it directly (offline-first: no daemon
//!   needed); the daemon opens the same file.
//! - [`transport`]: the [`transport::Transport`] trait a sync runs over
//!   (HTTPS client, in-memory for tests) and its errors, typed as "retry
//!   later" or "a person must act".
//! - [`client`]: the laptop's HTTPS client to the hub.
//! - [`sync`]: the laptop's sync driver: runs `proto::sync::Session`'s
//!   effects against the store and the client.
//! - [`export`]: CSV / JSONL / XLSX writers over projected records.
//! - [`hub`]: the hub's storage trait, its SQLite backend and HTTP API.
//! - [`par`]: order-keeping parallel map for the CPU-bound merge step of a
//!   sync batch (hub push, laptop pull): read, merge on all cores, write.
//! - [`logging`]: tracing setup; the daemon logs to files in its data dir.
//! - [`daemon`]: the `outpostd` main loop: single instance per data dir,
//!   clean shutdown on SIGTERM / Ctrl-C.

pub mod client;
pub mod config;
pub mod daemon;
pub mod export;
pub mod hub;
pub mod logging;
pub mod par;
pub mod store;
pub mod sync;
pub mod transport;
