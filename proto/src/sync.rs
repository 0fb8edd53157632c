//! The sync protocol: wire types and every sync decision, with no I/O.
//!
//! Full description for third-party clients: `proto/docs/sync.md`.
//!
//! # Shape
//! A sync is a laptop-driven sequence of HTTP request/response pairs:
//! 1. **push** batches: the laptop's pending documents (each as the
//!    Automerge bytes the hub has not acknowledged: `save_after(acked
//!    heads)`, or the whole `save()` when never acknowledged) and pending
//!    erasures. The hub merges, validates and screens each document and
//!    answers per document: merged (with the hub's heads and any changes the
//!    laptop lacks), needs the full document, erased, or refused.
//! 2. **pull** pages: the hub's per-organisation change feed after the
//!    laptop's cursor: documents (whole, compact `save()` form) and
//!    erasures, skipping entries this device itself caused (it got
//!    those back in its push answer).
//!
//! Why a changes feed and not Automerge's per-document sync protocol: the
//! per-document protocol needs two round trips per document and re-sends
//! Bloom filters for untouched documents (740 KB each way to re-sync 10k
//! unchanged documents, `shared/notes/automerge-facts.md`); a cursor over a
//! feed visits only documents that changed, and `save_after(acked heads)`
//! sends only the changes the hub lacks.
//!
//! # Why it is idempotent and resumable
//! - Applying Automerge bytes twice is a no-op (changes are content-hashed).
//! - The laptop clears a document's `pending` mark only after the hub's
//!   answer is applied locally, in one store transaction; an answer lost in
//!   transit means the same bytes go again next time.
//! - The pull cursor is saved in the same transaction as the page it covers.
//! - An erasure is a tombstone on both sides; a document pushed for an
//!   erased id is answered `Erased` and never stored.
//!
//! # Pieces
//! - wire types ([`PushRequest`], [`PushResponse`], [`PullRequest`],
//!   [`PullResponse`]) and their body encoding ([`encode_body`] /
//!   [`decode_body`]: CBOR, gzip-compressed);
//! - per-document decisions of the laptop: [`prepare_push`],
//!   [`apply_merged`] and [`apply_feed_item`] (the hub's are in
//!   [`crate::hub`]);
//! - [`Session`], the laptop's state machine: inputs in, effects out;
//! - [`Backoff`], the offline probe schedule (randomness passed in).

use std::io::{Read, Write};
use std::time::Duration;

use automerge::{AutoCommit, ChangeHash};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::central::OrgConfig;
pub use crate::device::DeviceReport;
use crate::untrusted::{self, Refusal};

/// Bumped on any incompatible change to the wire types.
pub const PROTOCOL_VERSION: u16 = 1;
/// Largest request or response body the hub accepts, compressed.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest body after decompression (guards against gzip bombs).
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;
/// Documents per push request by default. The laptop also stops a batch
/// at 4 MiB of documents (about 7,500 of the benchmark's records), which
/// is what bounds memory. The hub stores a push in one transaction, and
/// with random-UUID keys each transaction dirties thousands of index pages
/// once an org is large (most of them whether it holds 2,000 records or
/// 7,500), so fewer, larger batches write far fewer pages in all.
pub const DEFAULT_PUSH_BATCH: usize = 10_000;
/// Feed entries per pull page by default: as many as the hub gives
/// (`hub::MAX_PULL_LIMIT`); its 4 MiB cap on a page's documents is what
/// bounds a page (about 7,500 of the benchmark's records). A laptop applies
/// each page in one transaction, and with random-UUID keys a transaction
/// writes nearly every index page once the store is large (about 4,500
/// pages for 2,000 records at 100,000), so fewer, larger pages write far
/// fewer pages in all, and take fewer round trips.
pub const DEFAULT_PULL_PAGE: u32 = 10_000;
/// Most erasures one push may carry: the laptop cuts its batches there,
/// and the hub refuses larger pushes by default (each erasure goes to every
/// laptop of the org, see `hub::limits`).
pub const MAX_ERASURES_PER_PUSH: usize = 1_000;

pub const PUSH_PATH: &str = "/v1/sync/push";
pub const PULL_PATH: &str = "/v1/sync/pull";
pub const ENROLL_PATH: &str = "/v1/enroll";
pub const CONTENT_TYPE: &str = "application/cbor";

/// Heads of a document, sent as one byte string of 32-byte hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Heads(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl Heads {
    pub fn from_hashes(hashes: &[ChangeHash]) -> Heads {
        let mut sorted = hashes.to_vec();
        sorted.sort();
        Heads(sorted.iter().flat_map(|h| h.0).collect())
    }

    pub fn hashes(&self) -> Vec<ChangeHash> {
        self.0
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok().map(ChangeHash))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Laptop → hub: a batch of local changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    pub v: u16,
    /// The laptop's clock (Unix seconds), so the hub can flag a wrong clock.
    pub device_time: i64,
    pub docs: Vec<DocPush>,
    /// Records erased on the laptop.
    pub erased: Vec<Uuid>,
    /// The laptop's name, site, staff and records waiting (counting this
    /// batch), checked by the hub like any text. Absent from older laptops;
    /// older hubs ignore it (CBOR maps: unknown keys are skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DeviceReport>,
}

/// One document's changes that the hub has not acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocPush {
    pub id: Uuid,
    /// The laptop's heads after these changes.
    pub heads: Heads,
    /// Automerge bytes: `save()` when `full`, else `save_after(acked)`.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub full: bool,
}

/// Hub → laptop: one answer per pushed document, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub v: u16,
    pub results: Vec<DocResult>,
    /// Erasures the hub has recorded (all of the request's, when accepted).
    pub erased: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocResult {
    pub id: Uuid,
    pub outcome: PushOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushOutcome {
    /// The hub holds everything sent. `heads` are the hub's heads; when they
    /// differ from the laptop's, `missing` holds the changes it lacks.
    Merged {
        heads: Heads,
        #[serde(with = "serde_bytes")]
        missing: Vec<u8>,
    },
    /// The hub lacks changes the bytes depend on (e.g. it was restored from
    /// a backup): send the whole document.
    NeedFull,
    /// The record was erased: erase it locally too.
    Erased,
    /// Not stored: the reason says what to fix. Other documents go on.
    Refused { reason: String },
}

/// Laptop → hub: the next page of the org's change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub v: u16,
    /// Feed position already applied (0 for a fresh laptop).
    pub since: u64,
    pub limit: u32,
    /// The epoch `since` counts in, and the hub's signature of the cursor
    /// as it came with the page that set it (`PullResponse::sig`); empty
    /// for a fresh laptop. A cursor beyond the feed makes the hub start a
    /// new epoch only when this signature checks (see `hub::cursor`).
    #[serde(default)]
    pub epoch: u64,
    #[serde(default, with = "serde_bytes")]
    pub sig: Vec<u8>,
    /// The version of the org's central configuration the laptop holds
    /// (`crate::central`); 0, or absent from older laptops: none.
    #[serde(default)]
    pub config_version: u64,
    /// The laptop's clock (Unix seconds), so a laptop with nothing to push
    /// is still seen and its clock checked. Absent from older laptops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_time: Option<i64>,
    /// As [`PushRequest::report`]; sent after the pushes, so `waiting` is
    /// what is left once they were answered (0 after a complete push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DeviceReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub v: u16,
    pub items: Vec<FeedItem>,
    /// Cursor to save once `items` are applied.
    pub next: u64,
    /// More entries after `next`.
    pub more: bool,
    /// Which feed the cursors count in. The hub picks a new epoch for an
    /// organisation when its feed can no longer be trusted to continue
    /// every laptop's cursor (it was restored from a backup): a laptop that
    /// sees a new epoch forgets what the hub acknowledged, sends everything
    /// again and reads the feed from the start. 0 means "not given" (a hub
    /// from before epochs).
    #[serde(default)]
    pub epoch: u64,
    /// The hub's signature of (org, `epoch`, `next`): saved with the
    /// cursor and sent back with the next pull. Empty from older hubs.
    #[serde(default, with = "serde_bytes")]
    pub sig: Vec<u8>,
    /// The org's central configuration, when the hub holds a newer one than
    /// the request's `config_version`; saved with the page. Absent from
    /// older hubs and when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<OrgConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedItem {
    pub id: Uuid,
    pub body: FeedBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedBody {
    Doc {
        heads: Heads,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Erased,
}

/// Enrolment: a one-time code for a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub v: u16,
    pub code: String,
    pub device: Uuid,
    pub device_time: i64,
    /// The organisation this laptop was set up for: a code of another org
    /// is refused and binds nothing. Absent from older laptops (which
    /// check the answer's org themselves).
    #[serde(default)]
    pub org: Option<String>,
    /// The laptop's name, site and staff: a name the hub refuses (the
    /// privacy screen, its length) refuses the enrolment and binds nothing.
    /// Absent from older laptops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DeviceReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub v: u16,
    pub org: String,
    pub token: String,
}

/// An error body from the hub (any non-2xx status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("sync body is not valid compressed CBOR: {0}")]
    Decode(String),
    #[error("sync body is larger than {MAX_DECODED_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("could not encode a sync body: {0}")]
    Encode(String),
    #[error(
        "the other side speaks sync protocol {0}, this one {PROTOCOL_VERSION}; upgrade the older side"
    )]
    Version(u16),
}

/// CBOR, then gzip: bodies are mostly Automerge bytes (already compact)
/// plus ids and field text, which gzip cuts about 3×.
pub fn encode_body<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(value, &mut cbor).map_err(|e| WireError::Encode(e.to_string()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&cbor)
        .and_then(|_| gz.finish())
        .map_err(|e| WireError::Encode(e.to_string()))
}

pub fn decode_body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, WireError> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_DECODED_BYTES as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if plain.len() > MAX_DECODED_BYTES {
        return Err(WireError::TooLarge);
    }
    ciborium::from_reader(plain.as_slice()).map_err(|e| WireError::Decode(e.to_string()))
}

pub fn check_version(v: u16) -> Result<(), WireError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(WireError::Version(v))
    }
}

// ---------------------------------------------------------------------------
// Per-document decisions
// ---------------------------------------------------------------------------

/// Laptop: what to send for one pending document. `acked` are the heads the
/// hub last acknowledged (None: never, or the hub asked for the whole doc).
pub fn prepare_push(id: Uuid, am: &mut AutoCommit, acked: Option<&[ChangeHash]>) -> DocPush {
    let heads = Heads::from_hashes(&am.get_heads());
    match acked {
        Some(acked) if !acked.is_empty() => DocPush {
            id,
            heads,
            data: am.save_after(acked),
            full: false,
        },
        _ => DocPush {
            id,
            heads,
            data: am.save(),
            full: true,
        },
    }
}

/// Laptop, after a `Merged` answer: take in the changes it lacked.
/// Returns the heads to record as acknowledged and whether the document is
/// still pending (it changed locally while the push was in flight).
pub fn apply_merged(
    am: &mut AutoCommit,
    hub_heads: &Heads,
    missing: &[u8],
) -> Result<(Heads, bool), Refusal> {
    if !missing.is_empty() {
        let known = am.get_heads();
        // On a refusal `am` is left empty: the caller keeps what it stored.
        let mut merged = untrusted::merge(std::mem::take(am), missing)?;
        untrusted::check(&mut merged, &known)?;
        *am = merged;
    }
    let local = Heads::from_hashes(&am.get_heads());
    Ok((hub_heads.clone(), local != *hub_heads))
}

/// What a laptop holds for the id of a pulled feed item.
#[derive(Debug)]
pub enum LocalHeld {
    Nothing,
    /// Erased on this laptop (a tombstone).
    Erased,
    /// The stored document, loaded (boxed: it is large beside the other
    /// variants).
    Doc(Box<AutoCommit>),
}

/// What a laptop writes for one pulled feed item.
#[derive(Debug)]
pub enum FeedApply {
    /// The hub erased the record: erase the local copy, keep an
    /// acknowledged tombstone.
    Erase,
    /// Erased here: nothing to write; the pending tombstone reaches the hub
    /// at the next push (or is already there).
    Skip,
    /// New to this laptop: store the hub's bytes as they are (already
    /// `save()` form), acknowledged at the item's heads, not pending.
    New { am: AutoCommit },
    /// Merged into the local copy: store it, acknowledged at the item's
    /// heads; `pending` when local changes the hub lacks remain.
    Merged { am: AutoCommit, pending: bool },
}

/// Laptop, for one pulled feed item: the decision every laptop store
/// (SQLite, the simulation's) carries out. Pure CPU work.
pub fn apply_feed_item(item: &FeedItem, held: LocalHeld) -> Result<FeedApply, Refusal> {
    let FeedBody::Doc { heads, data } = &item.body else {
        return Ok(FeedApply::Erase);
    };
    // The hub screens what it stores, but a laptop trusts no outside
    // byte: a decoder panic, a bound or personal data anywhere in the
    // history refuses this item alone (the store quarantines it).
    match held {
        LocalHeld::Erased => Ok(FeedApply::Skip),
        LocalHeld::Nothing => {
            let mut am = untrusted::load(data)?;
            untrusted::check(&mut am, &[])?;
            Ok(FeedApply::New { am })
        }
        LocalHeld::Doc(mut am) => {
            let known = am.get_heads();
            let mut am = untrusted::merge(*am, data)?;
            untrusted::check(&mut am, &known)?;
            let pending = Heads::from_hashes(&am.get_heads()) != *heads;
            Ok(FeedApply::Merged { am, pending })
        }
    }
}

// ---------------------------------------------------------------------------
// The laptop's session state machine
// ---------------------------------------------------------------------------

/// What the session asks its driver to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read up to `limit` pending documents and erasures whose change
    /// sequence is after `after_seq`, prepared with [`prepare_push`], and
    /// answer [`Input::PendingLoaded`].
    LoadPending { after_seq: i64, limit: usize },
    /// Send this push; answer [`Input::PushAnswered`] or [`Input::Failed`].
    SendPush(PushRequest),
    /// Apply the hub's push answer in one transaction ([`apply_merged`] for
    /// merged documents; erase for `Erased`; for `NeedFull` forget the
    /// acknowledged heads and give the document a new change sequence so
    /// it is sent whole; leave refused ones pending); answer [`Input::Applied`].
    ApplyPush(PushResponse),
    /// Send this pull; answer [`Input::PullAnswered`] or [`Input::Failed`].
    SendPull(PullRequest),
    /// Apply the page and save `next` as the cursor (with the page's
    /// `sig`, and its `epoch` when not 0), and its `config` when given, in
    /// one transaction; answer
    /// [`Input::Applied`].
    ApplyPull(PullResponse),
    /// The hub's feed is not the one the saved cursor counts in (new epoch,
    /// or it went backwards): forget every acknowledgement (all documents
    /// and erasures pending, sent whole), the cursor and the epoch, in one
    /// transaction; answer [`Input::Applied`]. The session then starts over
    /// and sends everything, so nothing acknowledged by the lost feed is
    /// lost; Automerge merges make the resend a no-op for what the hub
    /// still holds.
    ResetSyncState,
    /// The session is over.
    Done(Outcome),
}

/// Events the driver feeds back.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    PendingLoaded {
        docs: Vec<DocPush>,
        /// Records and erasures pending on the laptop in all (what
        /// `outpost status` shows), these included: the report's `waiting`.
        waiting: u64,
        erased: Vec<Uuid>,
        /// Highest change sequence among them (the next `after_seq`).
        last_seq: i64,
    },
    PushAnswered(PushResponse),
    PullAnswered(PullResponse),
    Applied,
    /// The transport, the hub or the local store failed; the session ends
    /// (everything done so far is kept). Whether and when to retry is up to
    /// the driver, guided by the failure's [`FailureKind`].
    Failed(Failure),
}

/// Whether retrying a failed sync later can help, or a person must act
/// first. The daemon backs off and retries on [`FailureKind::Transient`];
/// on [`FailureKind::NeedsPerson`] it stops probing (retrying a revoked
/// token every few seconds only fills the hub's log) and `outpost status`
/// says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Network down, hub busy or restarting, a local write that may
    /// succeed next time: try again later.
    #[default]
    Transient,
    /// Token revoked or unknown, wrong organisation, protocol too old or
    /// too new, TLS or CA misconfigured: nothing changes until a person
    /// acts; the message says what to do.
    NeedsPerson,
}

/// Why a session ended early: the kind decides retrying, the message is for
/// people (it says what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }

    pub fn transient(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::Transient, message)
    }

    pub fn needs_person(message: impl Into<String>) -> Failure {
        Failure::new(FailureKind::NeedsPerson, message)
    }
}

/// A bare message is a transient failure (a lost request or answer), so
/// drivers and simulations that only know "it failed" keep working.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::transient(message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::transient(message)
    }
}

/// How a session ended, for `outpost sync` and `outpost status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub pushed_docs: u64,
    pub pushed_erasures: u64,
    pub pulled_docs: u64,
    pub pulled_erasures: u64,
    pub requests: u64,
    /// Times the hub's feed had to be read again from the start (it was
    /// restored from a backup); everything was sent again each time.
    #[serde(default)]
    pub feed_resets: u64,
    /// Documents the hub refused, with its reason.
    pub refused: Vec<(Uuid, String)>,
    /// Set when the session stopped early.
    pub error: Option<String>,
    /// Whether retrying can help, set together with `error`. Absent in
    /// statuses saved before it existed; read as "unknown" then.
    #[serde(default)]
    pub error_kind: Option<FailureKind>,
}

impl Outcome {
    /// Everything was exchanged.
    pub fn complete(&self) -> bool {
        self.error.is_none() && self.refused.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Loading,
    Pushing,
    ApplyingPush,
    Pulling,
    ApplyingPull { more: bool, next: u64 },
    Resetting { epoch: u64 },
    Done,
}

/// One sync run of a laptop: push every pending change in batches, then
/// pull the feed in pages. Pure: the driver does the I/O each [`Effect`]
/// names and reports back with an [`Input`].
#[derive(Debug, Clone)]
pub struct Session {
    phase: Phase,
    after_seq: i64,
    batch_last_seq: i64,
    cursor: u64,
    push_batch: usize,
    pull_page: u32,
    device_time: i64,
    /// The feed epoch the saved cursor counts in (0: none yet).
    feed_epoch: u64,
    /// The hub's signature of the saved cursor (empty: none).
    cursor_sig: Vec<u8>,
    /// The version of the org's configuration the laptop holds.
    config_version: u64,
    /// What the laptop says about itself with each request (None: nothing,
    /// as laptops before reports), its `waiting` from the last count.
    report: Option<DeviceReport>,
    /// A session resets at most once; a hub that keeps changing its feed
    /// under it is an error to report, not a loop.
    reset_done: bool,
    /// What the answer being applied adds to the outcome: counted only once
    /// the driver reports it applied, so a session that fails half-way
    /// reports only what this laptop really kept.
    unapplied: Outcome,
    outcome: Outcome,
}

impl Session {
    /// Starts a session; the first effect is returned by [`Session::start`].
    pub fn new(pull_cursor: u64, device_time: i64, push_batch: usize, pull_page: u32) -> Session {
        Session {
            phase: Phase::Loading,
            after_seq: 0,
            batch_last_seq: 0,
            cursor: pull_cursor,
            push_batch: push_batch.max(1),
            pull_page: pull_page.max(1),
            device_time,
            feed_epoch: 0,
            cursor_sig: Vec::new(),
            config_version: 0,
            report: None,
            reset_done: false,
            unapplied: Outcome::default(),
            outcome: Outcome::default(),
        }
    }

    /// The feed epoch the laptop saved with its cursor (0 if none).
    pub fn with_feed_epoch(mut self, epoch: u64) -> Session {
        self.feed_epoch = epoch;
        self
    }

    /// The hub's signature saved with the cursor (empty if none).
    pub fn with_cursor_sig(mut self, sig: Vec<u8>) -> Session {
        self.cursor_sig = sig;
        self
    }

    /// The version of the org's central configuration the laptop holds
    /// (0 if none).
    pub fn with_config_version(mut self, version: u64) -> Session {
        self.config_version = version;
        self
    }

    /// The laptop's name, site and staff, sent with every request; the
    /// session fills in `waiting` from [`Input::PendingLoaded`].
    pub fn with_report(mut self, report: DeviceReport) -> Session {
        self.report = Some(report);
        self
    }

    pub fn start(&self) -> Effect {
        Effect::LoadPending {
            after_seq: self.after_seq,
            limit: self.push_batch,
        }
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    fn finish(&mut self, error: Option<Failure>) -> Effect {
        self.phase = Phase::Done;
        self.outcome.error_kind = error.as_ref().map(|f| f.kind);
        self.outcome.error = error.map(|f| f.message);
        Effect::Done(self.outcome.clone())
    }

    fn pull(&mut self) -> Effect {
        self.phase = Phase::Pulling;
        self.outcome.requests += 1;
        Effect::SendPull(PullRequest {
            v: PROTOCOL_VERSION,
            since: self.cursor,
            limit: self.pull_page,
            epoch: self.feed_epoch,
            sig: self.cursor_sig.clone(),
            config_version: self.config_version,
            device_time: Some(self.device_time),
            report: self.report.clone(),
        })
    }

    /// Adds the answer just applied to the outcome.
    fn count_applied(&mut self) {
        let done = std::mem::take(&mut self.unapplied);
        self.outcome.pushed_docs += done.pushed_docs;
        self.outcome.pushed_erasures += done.pushed_erasures;
        self.outcome.pulled_docs += done.pulled_docs;
        self.outcome.pulled_erasures += done.pulled_erasures;
        self.outcome.refused.extend(done.refused);
    }

    /// Feeds one input; returns the next effect.
    pub fn handle(&mut self, input: Input) -> Effect {
        match (self.phase, input) {
            (Phase::Done, _) => Effect::Done(self.outcome.clone()),
            (_, Input::Failed(e)) => self.finish(Some(e)),
            (
                Phase::Loading,
                Input::PendingLoaded {
                    docs,
                    waiting,
                    erased,
                    last_seq,
                },
            ) => {
                if let Some(report) = &mut self.report {
                    report.waiting = waiting;
                }
                if docs.is_empty() && erased.is_empty() {
                    return self.pull();
                }
                self.batch_last_seq = last_seq;
                self.phase = Phase::Pushing;
                self.outcome.requests += 1;
                Effect::SendPush(PushRequest {
                    v: PROTOCOL_VERSION,
                    device_time: self.device_time,
                    docs,
                    erased,
                    report: self.report.clone(),
                })
            }
            (Phase::Pushing, Input::PushAnswered(resp)) => {
                let mut counts = Outcome::default();
                for r in &resp.results {
                    match &r.outcome {
                        PushOutcome::Refused { reason } => {
                            counts.refused.push((r.id, reason.clone()));
                        }
                        PushOutcome::Merged { .. } | PushOutcome::Erased => {
                            counts.pushed_docs += 1;
                        }
                        PushOutcome::NeedFull => {}
                    }
                }
                counts.pushed_erasures = resp.erased.len() as u64;
                self.unapplied = counts;
                // Move past this batch. A NeedFull document gets a new
                // change sequence when the answer is applied, so it comes
                // round again (whole) later in this same session.
                self.after_seq = self.after_seq.max(self.batch_last_seq);
                self.phase = Phase::ApplyingPush;
                Effect::ApplyPush(resp)
            }
            (Phase::ApplyingPush, Input::Applied) => {
                self.count_applied();
                self.phase = Phase::Loading;
                self.start()
            }
            (Phase::Pulling, Input::PullAnswered(resp)) => {
                let mut counts = Outcome::default();
                for item in &resp.items {
                    match item.body {
                        FeedBody::Doc { .. } => counts.pulled_docs += 1,
                        FeedBody::Erased => counts.pulled_erasures += 1,
                    }
                }
                let new_epoch =
                    resp.epoch != 0 && self.feed_epoch != 0 && resp.epoch != self.feed_epoch;
                if new_epoch || resp.next < self.cursor {
                    if self.reset_done {
                        return self.finish(Some(Failure::transient(format!(
                            "the hub's feed changed again while this laptop re-read it (epoch {}, position {} after {}); try `outpost sync` again later",
                            resp.epoch, resp.next, self.cursor
                        ))));
                    }
                    self.reset_done = true;
                    self.phase = Phase::Resetting { epoch: resp.epoch };
                    return Effect::ResetSyncState;
                }
                self.unapplied = counts;
                self.phase = Phase::ApplyingPull {
                    more: resp.more,
                    next: resp.next,
                };
                // What the driver saves with the page; the next pull of
                // this session sends it back.
                self.cursor_sig = resp.sig.clone();
                if resp.epoch != 0 {
                    self.feed_epoch = resp.epoch;
                }
                if let Some(config) = &resp.config {
                    self.config_version = config.version;
                }
                Effect::ApplyPull(resp)
            }
            (Phase::Resetting { epoch }, Input::Applied) => {
                self.outcome.feed_resets += 1;
                self.after_seq = 0;
                self.batch_last_seq = 0;
                self.cursor = 0;
                self.cursor_sig = Vec::new();
                self.feed_epoch = epoch;
                // The reset forgot the configuration too (a restored hub
                // may hold an older one); the next page brings the hub's.
                self.config_version = 0;
                self.phase = Phase::Loading;
                self.start()
            }
            (Phase::ApplyingPull { more, next }, Input::Applied) => {
                self.count_applied();
                let progressed = next > self.cursor;
                self.cursor = next;
                if more && progressed {
                    self.pull()
                } else {
                    self.finish(None)
                }
            }
            (phase, input) => self.finish(Some(Failure::needs_person(format!(
                "sync session got {input:?} while in {phase:?}; this is a bug, please report it"
            )))),
        }
    }
}

// ---------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------

/// Capped exponential backoff with full jitter, for probing an unreachable
/// hub. Randomness comes from the caller so simulations are reproducible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// Delay before retry number `attempt` (0 = first retry), given a
    /// uniform random `unit` in [0, 1): a random point in
    /// [base/2, min(cap, base·2^attempt)], so many laptops coming back at
    /// once spread out instead of stampeding the hub.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        let ceiling = exp.min(self.cap).max(self.base / 2);
        let floor = (self.base / 2).min(ceiling);
        let span = ceiling.saturating_sub(floor);
        floor + span.mul_f64(unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod services_rule_tests {
    use super::*;
    use crate::doc;
    use crate::fixtures;
    use crate::hub::{Held, merge_push};
    use serde_json::json;

    /// The hub validates through the same field table as the laptop, so a
    /// pushed e-service visit naming no service is refused with the field
    /// named, and a device visit without one is stored.
    #[test]
    fn the_hub_applies_the_services_rule() {
        let rec = fixtures::with(
            fixtures::visit_fields("mjolby"),
            [("services", json!([])), ("category", json!("device"))],
        );
        let mut am = doc::create(&rec, automerge::ActorId::from([7u8; 16])).unwrap();
        let push = prepare_push(rec.id, &mut am, None);
        let applied = merge_push(&Held::Nothing, &push, "mjolby");
        assert!(applied.store.is_some(), "{:?}", applied.outcome);

        // The same document turned into an e-service visit: no longer valid.
        doc::apply_patch(
            &mut am,
            &crate::Fields::from([("category".into(), json!("e_service"))]),
        )
        .unwrap();
        let push = prepare_push(rec.id, &mut am, None);
        let applied = merge_push(&Held::Nothing, &push, "mjolby");
        match applied.outcome {
            PushOutcome::Refused { reason } => assert!(reason.contains("services"), "{reason}"),
            other => panic!("accepted: {other:?}"),
        }
        assert!(applied.store.is_none());
    }
}
