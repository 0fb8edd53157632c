//! The hub's side of the sync protocol, over storage primitives.
//!
//! Layout and flow:
//! - [`storage`]: the [`HubStorage`] trait a backend implements (get, a
//!   conditional put, erase, scan the feed, set the epoch, get and set an
//!   org's configuration entries) and its types.
//! - this module: what the hub does with a request from an authenticated
//!   device ([`push`], [`pull`]) or an admin ([`erase`]). Callers check the
//!   token first and pass the device and its organisation in as a
//!   [`Peer`]; the hub's clock (`now`) and randomness (new epochs) are
//!   passed in too, so the deterministic simulation runs this very code.
//! - [`mem`]: an in-memory backend (the simulation, tests).
//! - [`conformance`] (feature `test-support`): the tests every backend
//!   must pass.
//!
//! A push is answered in rounds: read what is stored for each document,
//! merge, validate and screen each one on its own (on all cores, outside
//! any lock), then write every merged document with one conditional put.
//! A put that lost a race to a concurrent push of the same record is
//! merged again from the newer copy in the next round. A request that
//! names one id twice sends the second copy in a later round, so it merges
//! into the first instead of replacing it.

pub mod cursor;
pub mod limits;
pub mod mem;
pub mod storage;

#[cfg(feature = "test-support")]
pub mod conformance;

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::central::OrgConfig;
use crate::doc;
use crate::par::par_map;
use crate::record::Record;
use crate::sync::{
    DocPush, DocResult, FeedBody, FeedItem, Heads, PROTOCOL_VERSION, PullRequest, PullResponse,
    PushOutcome, PushRequest, PushResponse, WireError, check_version,
};
use crate::untrusted;

pub use cursor::CursorKey;
pub use limits::{EnrolFailures, FeedLimits, LimitError, RateTake, RateTaken};
pub use storage::{
    ConfigEntry, Expect, FeedEntry, FeedMeta, FeedRow, Held, HubStorage, Put, PutResult,
    StorageError,
};

/// Most bytes of documents one pull page carries, so a page stays a
/// bounded answer however large the records are.
pub const PULL_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most entries one pull page may carry, whatever the laptop asks.
pub const MAX_PULL_LIMIT: u32 = 10_000;
/// How many times one document is merged again after losing a write race
/// before the request is answered "busy, retry later".
const MAX_CONFLICTS_PER_DOC: u32 = 8;

/// An authenticated device: its id and the organisation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub device: String,
    pub org: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Concurrent writes to the same records kept winning; the request
    /// changed nothing that was not answered and can simply be sent again.
    #[error("the hub is busy with other changes to the same records; try again shortly")]
    Busy,
}

// ---------------------------------------------------------------------------
// Push
// ---------------------------------------------------------------------------

/// The hub's decision for one pushed document.
#[derive(Debug)]
pub struct Merged {
    pub outcome: PushOutcome,
    /// Present when the hub must store a new version of the document.
    pub store: Option<MergedWrite>,
}

#[derive(Debug)]
pub struct MergedWrite {
    pub data: Vec<u8>,
    pub heads: Heads,
    pub record: Record,
}

fn refused(reason: impl Into<String>) -> Merged {
    Merged {
        outcome: PushOutcome::Refused {
            reason: reason.into(),
        },
        store: None,
    }
}

fn answer(outcome: PushOutcome) -> Merged {
    Merged {
        outcome,
        store: None,
    }
}

/// Merges one pushed document into what `org` holds for its id. The
/// merged record is validated and screened again. Pure CPU work.
pub fn merge_push(held: &Held, push: &DocPush, org: &str) -> Merged {
    // `merge_push`: whether the pushed bytes still have to be merged into
    // the hub's copy (false when the document was loaded from them).
    // Every decode below goes through `untrusted`: a decoder panic or a
    // bound refuses this one document; the rest of the batch goes on.
    let (am, before, merge_pushed) = match held {
        Held::Erased => return answer(PushOutcome::Erased),
        Held::Doc { data, .. } => match untrusted::load(data) {
            Ok(mut am) => {
                let before = am.get_heads();
                (am, before, true)
            }
            Err(_) => return refused("the hub's copy is damaged; an admin must restore it"),
        },
        Held::Nothing if !push.full => return answer(PushOutcome::NeedFull),
        // New to the hub: `load` the whole document directly. Going
        // through `load_incremental` on an empty document does the same
        // work plus patch bookkeeping, a quarter of the hub's push time.
        Held::Nothing => match untrusted::load(&push.data) {
            Ok(am) => (am, Vec::new(), false),
            Err(r) => return refused(r.to_string()),
        },
    };
    let mut am = if merge_pushed {
        match untrusted::merge(am, &push.data) {
            Ok(am) => am,
            Err(r) => return refused(r.to_string()),
        }
    } else {
        am
    };
    if !am.get_missing_deps(&[]).is_empty() {
        if push.full {
            return refused("the document is incomplete (changes are missing from it)");
        }
        return answer(PushOutcome::NeedFull);
    }
    // The whole history, not only the current values: what the hub held
    // before was checked when it came in.
    if let Err(r) = untrusted::check(&mut am, &before) {
        return refused(r.to_string());
    }
    let snapshot = match doc::read(&am) {
        Ok(s) => s,
        Err(e) => return refused(e.to_string()),
    };
    let record = match Record::from_fields(&snapshot.fields) {
        Ok(r) => r,
        Err(e) => return refused(e.to_string()),
    };
    if record.id != push.id {
        return refused("the document's id does not match the id it was sent under");
    }
    if record.org != org {
        return refused("the record belongs to another organisation than this device");
    }
    let after = am.get_heads();
    let hub_heads = Heads::from_hashes(&after);
    let missing = if hub_heads == push.heads {
        Vec::new()
    } else {
        am.save_after(&push.heads.hashes())
    };
    let changed = Heads::from_hashes(&before) != hub_heads;
    let new_here = before.is_empty() && push.full;
    Merged {
        outcome: PushOutcome::Merged {
            heads: hub_heads.clone(),
            missing,
        },
        store: changed.then(|| MergedWrite {
            // A whole document new to the hub is already in `save()` form
            // and loaded cleanly: keep its bytes instead of saving again.
            data: if new_here {
                push.data.clone()
            } else {
                am.save()
            },
            heads: hub_heads,
            record,
        }),
    }
}

/// Answers a device's push: merges every document into its org's copy and
/// records its erasures. Answers keep the request's order.
pub fn push<S: HubStorage + ?Sized>(
    storage: &S,
    who: &Peer,
    req: &PushRequest,
    now: DateTime<Utc>,
) -> Result<PushResponse, HubError> {
    check_version(req.v)?;
    let org = who.org.as_str();
    let mut outcomes: Vec<Option<PushOutcome>> = vec![None; req.docs.len()];
    let mut conflicts = vec![0u32; req.docs.len()];
    let mut todo: Vec<usize> = (0..req.docs.len()).collect();
    while !todo.is_empty() {
        // This round: the first waiting copy of each id; later copies of
        // the same id wait for the next round, to merge into this one.
        let mut ids = HashSet::with_capacity(todo.len());
        let (round, later): (Vec<usize>, Vec<usize>) =
            todo.iter().partition(|&&i| ids.insert(req.docs[i].id));
        let round_ids: Vec<Uuid> = round.iter().map(|&i| req.docs[i].id).collect();
        let held = storage.get(org, &round_ids)?;
        let pairs: Vec<(usize, &Held)> = round.iter().copied().zip(&held).collect();
        let merged = par_map(&pairs, |&(i, held)| merge_push(held, &req.docs[i], org));

        let mut puts = Vec::new();
        let mut put_of = Vec::new();
        for (k, m) in merged.iter().enumerate() {
            if let Some(w) = &m.store {
                let (i, held) = pairs[k];
                puts.push(Put {
                    id: req.docs[i].id,
                    expect: held.expect(),
                    data: &w.data,
                    heads: &w.heads,
                    origin: &who.device,
                    record: &w.record,
                    received_at: now,
                });
                put_of.push(k);
            }
        }
        let put_results = if puts.is_empty() {
            Vec::new()
        } else {
            storage.put(org, &puts)?
        };
        let mut lost = vec![false; merged.len()];
        for (&k, result) in put_of.iter().zip(&put_results) {
            if *result == PutResult::Conflict {
                lost[k] = true;
            }
        }
        let mut retry = Vec::new();
        for (k, m) in merged.into_iter().enumerate() {
            let i = pairs[k].0;
            if lost[k] {
                conflicts[i] += 1;
                if conflicts[i] > MAX_CONFLICTS_PER_DOC {
                    return Err(HubError::Busy);
                }
                retry.push(i);
            } else {
                outcomes[i] = Some(m.outcome);
            }
        }
        retry.extend(later);
        retry.sort_unstable();
        todo = retry;
    }
    let results = req
        .docs
        .iter()
        .zip(outcomes)
        .map(|(d, outcome)| DocResult {
            id: d.id,
            // Every index leaves `todo` only with an outcome.
            outcome: outcome.unwrap_or(PushOutcome::NeedFull),
        })
        .collect();
    if !req.erased.is_empty() {
        storage.erase(org, &req.erased, now)?;
    }
    Ok(PushResponse {
        v: PROTOCOL_VERSION,
        results,
        // Acknowledged all: each is erased in this device's own org (ids
        // are scoped by org, so no other org's record is touched).
        erased: req.erased.clone(),
    })
}

// ---------------------------------------------------------------------------
// Pull
// ---------------------------------------------------------------------------

/// What a pull's cursor turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorCheck {
    /// Within the feed: an ordinary page.
    InFeed,
    /// Beyond the feed, and signed by this hub in the current epoch: the
    /// hub was restored from a backup; the org's feed got a new epoch.
    Restored,
    /// Beyond the feed but not a cursor this hub issued in this epoch
    /// (forged, from another epoch, or from a laptop without signatures):
    /// only this device is told to start over (`next` below its cursor);
    /// the org's epoch is untouched.
    Unproven,
}

/// A pull's answer and what its cursor proved.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulled {
    pub response: PullResponse,
    pub cursor: CursorCheck,
}

/// Answers a device's pull: the next page of its org's feed after
/// `req.since`, without the entries this device caused itself (its push
/// answers already carried everything else the hub had for them). The
/// answer's cursor is signed with `key` (see [`cursor`]).
///
/// `new_epoch` is called, for a random non-zero number, only when the
/// device has read further than the feed goes *and* its cursor carries this
/// hub's signature for the current epoch: the hub was restored from a
/// backup, and every laptop of the org must send everything again. A
/// device cannot set that off by sending a large number.
pub fn pull<S: HubStorage + ?Sized>(
    storage: &S,
    who: &Peer,
    req: &PullRequest,
    key: &CursorKey,
    new_epoch: impl FnOnce() -> u64,
) -> Result<Pulled, HubError> {
    check_version(req.v)?;
    let limit = req.limit.clamp(1, MAX_PULL_LIMIT) as usize;
    // `limit` bounds the items sent. Entries this device caused are
    // skipped without a body, so a page may scan more rows than it sends,
    // up to `scan_cap`: after a first upload, the device's own entries
    // would otherwise cost it a round trip per page of nothing.
    let scan_cap = limit.saturating_mul(16).min(100_000);
    let mut items = Vec::new();
    let mut next = req.since;
    let mut more = false;
    let mut bytes = 0usize;
    let mut scanned = 0usize;
    let meta = storage.scan_feed(&who.org, req.since, &mut |row, body| {
        if items.len() == limit
            || scanned == scan_cap
            || (bytes >= PULL_PAGE_BYTES && !items.is_empty())
        {
            more = true;
            return Ok(false);
        }
        scanned += 1;
        next = row.seq;
        match row.entry {
            FeedEntry::Doc { origin } if origin == who.device => {}
            FeedEntry::Doc { .. } => {
                let (heads, data) = body()?;
                bytes += data.len();
                items.push(FeedItem {
                    id: row.id,
                    body: FeedBody::Doc { heads, data },
                });
            }
            FeedEntry::Erased => items.push(FeedItem {
                id: row.id,
                body: FeedBody::Erased,
            }),
        }
        Ok(true)
    })?;
    // The org's configuration goes with the page when the laptop holds
    // another version than the hub (older, or newer than a hub restored
    // from a backup): the hub's is the one in force. Equal versions (0 and
    // 0 for an org without one) send nothing.
    let config = OrgConfig::from_entries(&storage.config(&who.org)?);
    let config = (config.version != req.config_version).then_some(config);
    let page = |items, next, more, epoch| PullResponse {
        v: PROTOCOL_VERSION,
        items,
        next,
        more,
        epoch,
        sig: key.sign(&who.org, epoch, next),
        config: config.clone(),
    };
    if req.since > meta.head {
        let proven =
            req.epoch == meta.epoch && key.verify(&who.org, req.epoch, req.since, &req.sig);
        if !proven {
            // Not evidence of a restore. Answer the end of the feed: the
            // laptop sees `next` below its cursor and starts over by
            // itself, which costs the hub only this device's resend.
            return Ok(Pulled {
                response: page(Vec::new(), meta.head, false, meta.epoch),
                cursor: CursorCheck::Unproven,
            });
        }
        // The laptop has read further than this feed goes, at a position
        // this hub gave it: the hub was restored from a backup (or
        // replaced). A new epoch makes every laptop of the org send
        // everything again and re-read the feed.
        let epoch = new_epoch().max(1);
        storage.set_epoch(&who.org, epoch)?;
        return Ok(Pulled {
            response: page(Vec::new(), meta.head, false, epoch),
            cursor: CursorCheck::Restored,
        });
    }
    Ok(Pulled {
        response: page(items, next, more, meta.epoch),
        cursor: CursorCheck::InFeed,
    })
}

// ---------------------------------------------------------------------------
// Admin erasure
// ---------------------------------------------------------------------------

/// An admin's erasure of `id` in `org`, as if a device of the org had
/// deleted it. Returns whether the org held the record (an unknown id is
/// still tombstoned, so a copy that arrives later is refused).
pub fn erase<S: HubStorage + ?Sized>(
    storage: &S,
    org: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, HubError> {
    let held = storage.get(org, &[id])?;
    let existed = matches!(held.first(), Some(Held::Doc { .. }));
    storage.erase(org, &[id], now)?;
    Ok(existed)
}
