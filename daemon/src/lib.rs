//! Outpost's I/O side: the laptop store, the daemon and the hub.
//!
//! Layout and flow:
//! - [`config`]: data/config directories and layered settings
//!   (defaults → `config.toml` → `OUTPOST_*`).
//! - [`store`]: the SQLite store on a laptop: one Automerge document per
//!   record, a projection of current values for reading, tombstones for
//!   erasure. The CLI writes through it directly (offline-first: no daemon
//!   needed); the daemon opens the same file.
//! - [`client`]: the laptop's HTTPS client to the hub.
//! - [`sync`]: the laptop's sync driver: runs `proto::sync::Session`'s
//!   effects against the store and the client.
//! - [`export`]: CSV / JSONL / XLSX writers over projected records.
//! - [`hub`]: the hub's storage trait, its SQLite backend and HTTP API.
//! - [`logging`]: tracing setup; the daemon logs to files in its data dir.
//! - [`daemon`]: the `outpostd` main loop: single instance per data dir,
//!   clean shutdown on SIGTERM / Ctrl-C.

pub mod client;
pub mod config;
pub mod daemon;
pub mod export;
pub mod hub;
pub mod logging;
pub mod store;
pub mod sync;
