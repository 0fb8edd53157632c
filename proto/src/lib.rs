//! Outpost's pure core: everything about records and sync that needs no I/O.
//!
//! Layout and flow:
//! - [`fields`]: the raw `field → JSON value` map every input passes through
//!   (CLI flags, CSV/JSONL rows, Automerge scalars), and the error list that
//!   names every bad field at once.
//! - [`filter`]: which records a listing, export or statistics run wants.
//! - [`schema`]: every record field declared once, in one table (kind,
//!   shape and allowed values, required or not, CLI flag, export column,
//!   Swedish and English label and help). Validation, the export columns,
//!   the import header mapping and the CLI flags all read it, so a field or
//!   a rule (e.g. "at least one service") cannot differ between them.
//! - [`record`]: the typed record (visit, course) and validation
//!   `Fields → Record` by the [`schema`] table, which also runs the privacy
//!   screen.
//! - `fixtures` (cargo feature `test-support`): valid records shared by
//!   every crate's tests.
//! - [`screen`]: finds personnummer/samordningsnummer, phone numbers,
//!   e-mail addresses and payment card numbers in free text, after reading
//!   it as people see it (NFKC, invisible characters removed, any script's
//!   digits), without ever echoing them.
//! - [`untrusted`]: every outside Automerge byte (hub push, laptop pull,
//!   the laptop's own store) is loaded and merged here: bounded, with a
//!   decoder panic contained to that one document, and screened whole
//!   (every key and every value in the history), so the hub, import and a
//!   laptop's pull apply one rule.
//! - `fuzzing` (feature `test-support`): the entry points the fuzz targets
//!   in `fuzz/` and the stable corpus replay test share.
//! - [`input`]: what people type, read kindly: `today`/`idag`, the value
//!   a typo probably meant, dates ahead or long ago (today passed in).
//! - [`catalogue`]: e-service → agency, own or other, with a TOML override.
//! - [`central`]: an org's catalogue and site list as the hub keeps them
//!   and laptops receive them at sync (one configuration for every replica).
//! - [`device`]: what a laptop reports about itself (name, site, staff,
//!   records waiting) and the rule both sides check it by; the one rule
//!   for naming a record, session or device by an id prefix or a name.
//! - [`sites`]: an org's site list and the case- and accent-insensitive
//!   match of a typed site to it.
//! - [`stats`]: streaming statistics over records, grouped by one or more
//!   dimensions.
//! - [`sync`]: the sync protocol: wire types, the laptop's per-document
//!   decisions and session state machine, backoff.
//! - [`hub`]: the hub's side of the protocol (push, pull, erase) over a
//!   trait of storage primitives ([`hub::HubStorage`]) that every backend
//!   implements, an in-memory backend, and the conformance suite every
//!   backend passes (feature `test-support`).
//! - [`par`]: order-keeping parallel map for the CPU-bound merge step of a
//!   sync batch (threads, but no I/O).
//! - [`doc`]: how a record is laid out in its Automerge document, and how a
//!   (possibly merged) document is read back with its conflicts.
//!
//! A record is saved as: flags → `Fields` → `Record::from_fields` (validated
//! and screened) → `doc::create` → bytes stored by the daemon crate. Reading
//! is the reverse: bytes → `doc::read` → `Fields` → `Record`.
//!
//! This crate must stay free of tokio, rusqlite and reqwest: the sync logic
//! built on it is tested by deterministic simulation.

pub mod catalogue;
pub mod central;
pub mod device;
pub mod doc;
pub mod fields;
pub mod filter;
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures;
#[cfg(any(test, feature = "test-support"))]
pub mod fuzzing;
pub mod hub;
pub mod input;
pub mod lang;
pub mod par;
pub mod record;
pub mod schema;
pub mod screen;
pub mod sites;
pub mod stats;
pub mod sync;
pub mod untrusted;

pub use fields::{FieldError, Fields, ValidationErrors};
pub use record::{Body, Course, Kind, Record, Session, Visit};
