//! `outpostd`, the laptop daemon (and, through `outpostd hub`, the hub
//! binary's entry point; the hub itself is the `outpost-hub` crate).
//!
//! Layout and flow:
//! - [`daemon`]: the laptop daemon's main loop: single instance per data
//!   dir, syncing by itself (store watcher, timer, backoff while offline),
//!   the staff web app (`outpost-web`) on 127.0.0.1 beside it, clean
//!   shutdown on SIGTERM / Ctrl-C.
//! - `src/bin/outpostd.rs`: argument parsing; `outpostd hub …` wires the
//!   hub server (`outpost-hub`) to its SQLite backend
//!   (`outpost-hub-sqlite`).
//!
//! Tests here drive laptop and hub together (`tests/`), and the sync
//! benchmark lives in `benches/sync`.

pub mod daemon;
