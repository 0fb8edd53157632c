//! The hub's storage primitives: what a backend (in memory, SQLite,
//! PostgreSQL) must do, and nothing of the protocol.
//!
//! A backend keeps, per organisation: documents (Automerge bytes, heads,
//! the feed position of their latest change, the device that caused it,
//! when the hub first received them, and a projection of the record for
//! admin export), tombstones (an erased id and its feed position), and a
//! feed counter with an epoch, and the org's configuration entries
//! (`crate::central`: a versioned blob per kind). Ids are scoped by organisation: `(org, id)`
//! is the key everywhere, so one organisation's ids and erasures never
//! touch, or reveal anything about, another's.
//!
//! The protocol ([`super::push`], [`super::pull`], [`super::erase`]) reads
//! a stored copy with [`HubStorage::get`], merges it outside any lock, and
//! writes with [`HubStorage::put`], a compare-and-set on the stored heads:
//! a write that lost a race answers [`PutResult::Conflict`] and the
//! protocol merges again. Backends therefore hold no lock while Automerge
//! runs, and need no protocol knowledge to stay correct.
//!
//! # Why a blocking trait
//! The protocol is a short chain of dependent reads and writes per request,
//! and SQLite (the embedded default) is a blocking library. Async methods
//! would force every backend and the deterministic simulation onto a
//! runtime and make this crate depend on one. The hub's HTTP server runs
//! each request's protocol call on tokio's blocking pool
//! (`spawn_blocking`), so a blocking backend never stalls the async
//! workers; an async driver (PostgreSQL) is driven from that blocking
//! thread with `tokio::runtime::Handle::block_on`, which is allowed there.
//!
//! Every backend runs the same conformance suite
//! ([`super::conformance`], behind the `test-support` feature).

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use crate::central::ConfigEntry;
use crate::record::Record;
use crate::sync::Heads;

/// What the hub holds for one `(org, id)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    Nothing,
    /// Erased: a tombstone. The id is never stored again in this org.
    Erased,
    Doc {
        data: Vec<u8>,
        heads: Heads,
    },
}

impl Held {
    /// The heads a conditional write must find to replace this copy.
    pub fn expect(&self) -> Expect {
        match self {
            Held::Nothing | Held::Erased => Expect::Absent,
            Held::Doc { heads, .. } => Expect::Heads(heads.clone()),
        }
    }
}

/// The condition of a [`Put`]: what must be stored for the write to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: no document and no tombstone.
    Absent,
    /// A document with exactly these heads.
    Heads(Heads),
}

/// One conditional write of a merged document.
#[derive(Debug, Clone)]
pub struct Put<'a> {
    pub id: Uuid,
    pub expect: Expect,
    /// The whole document, `save()` form.
    pub data: &'a [u8],
    pub heads: &'a Heads,
    /// The device whose push caused this version (the feed skips it for
    /// that device).
    pub origin: &'a str,
    /// The record as validated, for the backend's admin projection.
    pub record: &'a Record,
    /// Kept only when the document is new to the hub.
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutResult {
    /// Written, at this feed position.
    Stored { seq: u64 },
    /// The stored copy is no longer what `expect` said (another write or an
    /// erasure came first): nothing was written.
    Conflict,
}

/// The feed's state when a scan started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedMeta {
    /// Position of the latest entry (0: empty feed).
    pub head: u64,
    /// The feed's epoch (see `PullResponse::epoch`); never 0 once set.
    pub epoch: u64,
}

/// One feed entry, in feed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedRow<'a> {
    pub seq: u64,
    pub id: Uuid,
    pub entry: FeedEntry<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEntry<'a> {
    /// A document's latest version, caused by `origin`.
    Doc {
        origin: &'a str,
    },
    Erased,
}

/// Loads the current document (heads, bytes) of the row being visited;
/// only called for rows whose body is sent, so skipped rows cost no I/O.
pub type LoadBody<'a> = dyn FnMut() -> Result<(Heads, Vec<u8>), StorageError> + 'a;

/// Visits feed rows in order; returns `false` to stop the scan.
pub type FeedVisitor<'a> =
    dyn FnMut(FeedRow<'_>, &mut LoadBody<'_>) -> Result<bool, StorageError> + 'a;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no organisation {0} in the hub's storage")]
    NoOrg(String),
    /// The backend failed (disk, database connection). Retrying later may
    /// help; the source says what failed.
    #[error("the hub's storage failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StorageError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
        StorageError::Backend(Box::new(e))
    }
}

/// The primitives every hub backend provides. No method decides anything
/// about the protocol: merging, validation, authorisation, paging and
/// epochs live in [`super`].
pub trait HubStorage: Send + Sync {
    /// What is held for each id (same order as `ids`).
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError>;

    /// Conditional writes, applied atomically as one batch where the
    /// backend can (one transaction): each put whose `expect` holds is
    /// written at the next feed position of `org`, in the order given;
    /// the others answer [`PutResult::Conflict`] and write nothing.
    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError>;

    /// Erases each id in `org`: the document, its history and its
    /// projection are deleted and a tombstone takes the next feed position.
    /// An id already tombstoned is left as it is; an id never seen gets a
    /// tombstone too, so a copy that arrives later is refused.
    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError>;

    /// Visits the feed entries of `org` after position `since`, in order,
    /// from one consistent snapshot, until `visit` returns `false` or the
    /// feed ends. Returns the feed's head and epoch in that snapshot.
    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError>;

    /// Gives `org`'s feed a new epoch (the caller chose it at random).
    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError>;

    /// Every configuration entry of `org` (`crate::central`): one blob per
    /// kind, with its version, in any order.
    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError>;

    /// Stores `data` as `org`'s entry of `kind` (replacing it), at a version
    /// above every version any entry of `org` ever had (one counter per org,
    /// so two changes never share a version), and returns that version.
    ///
    /// With `expect`, a compare-and-set: the write applies only while the
    /// entry of `kind` still has version `expect` (0: no entry yet), and
    /// answers `None`, writing nothing, when another write came first. An
    /// edit that reads the entry, changes it and writes it back (the site
    /// list: `outpost admin sites add`) needs this, or two admins editing
    /// at once (on two hub nodes, say) would silently lose one's change.
    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError>;

    /// [`Self::put_config`] without a condition: replaces the entry.
    fn set_config(&self, org: &str, kind: &str, data: &[u8]) -> Result<u64, StorageError> {
        self.put_config(org, kind, data, None)?.ok_or_else(|| {
            StorageError::backend(std::io::Error::other(
                "the storage refused a configuration write that had no condition",
            ))
        })
    }
}
