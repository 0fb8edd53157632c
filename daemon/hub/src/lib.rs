//! The central hub that laptops sync with (`outpostd hub`).
//!
//! Layout and flow:
//! - [`server`]: the HTTP API. It checks tokens (through
//!   `outpost_hub_db::HubStore`), decodes bodies, and hands sync requests
//!   to the protocol in `outpost_proto::hub`, which works over the
//!   backend's storage primitives. It knows no backend: it serves any
//!   `Arc<dyn HubStore>`.
//! - [`backend`]: the one place that picks the backend from the settings
//!   (SQLite in the data dir by default, PostgreSQL with `database`).
//! - [`settings`]: the hub's own settings (`hub.toml`, `OUTPOST_HUB_*`).
//! - [`migrate`]: `outpostd hub migrate`, a SQLite hub copied whole into
//!   an empty PostgreSQL database (table-driven).
//!
//! Nothing here imports the laptop's store.

pub mod backend;
pub mod migrate;
pub mod server;
pub mod settings;
