//! The central hub that laptops sync with (`outpostd hub`).
//!
//! - [`store`]: the storage trait and its SQLite backend (orgs, devices,
//!   enrolment codes, admin tokens, merged documents, the per-org feed).
//! - [`server`]: the HTTP API over that store.

pub mod server;
pub mod store;
