//! An in-memory [`HubStorage`]: the deterministic simulation's hub and a
//! reference for backends (it passes the same conformance suite).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::storage::{
    ConfigEntry, Expect, FeedEntry, FeedMeta, FeedRow, FeedVisitor, Held, HubStorage, Put,
    PutResult, StorageError,
};
use crate::record::Record;
use crate::sync::Heads;

/// A stored document, as a test may inspect it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemDoc {
    pub data: Vec<u8>,
    pub heads: Heads,
    pub seq: u64,
    pub origin: String,
    pub first_received_at: DateTime<Utc>,
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemTomb {
    pub seq: u64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
struct Org {
    seq: u64,
    epoch: u64,
    /// Feed position → id, for the latest entry of each id.
    feed: BTreeMap<u64, Uuid>,
    docs: BTreeMap<Uuid, MemDoc>,
    tombs: BTreeMap<Uuid, MemTomb>,
    /// Configuration: kind → (version, blob), versions from `config_seq`.
    config: BTreeMap<String, (u64, Vec<u8>)>,
    config_seq: u64,
}

impl Org {
    fn bump(&mut self, id: Uuid, old: Option<u64>) -> u64 {
        if let Some(old) = old {
            self.feed.remove(&old);
        }
        self.seq += 1;
        self.feed.insert(self.seq, id);
        self.seq
    }
}

/// The hub's storage in memory, one mutex around everything (a test
/// backend: simple beats fast).
#[derive(Debug, Default)]
pub struct MemStorage {
    orgs: Mutex<BTreeMap<String, Org>>,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// A storage holding these organisations, each with epoch 1.
    pub fn with_orgs(orgs: &[&str]) -> MemStorage {
        let s = MemStorage::new();
        for org in orgs {
            s.add_org(org, 1);
        }
        s
    }

    /// Adds an organisation with an empty feed (no-op if it exists).
    pub fn add_org(&self, org: &str, epoch: u64) {
        self.lock().entry(org.to_string()).or_insert_with(|| Org {
            epoch,
            ..Org::default()
        });
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Org>> {
        // Nothing in this module can panic half-way through a change.
        self.orgs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every document of `org`, by id.
    pub fn docs(&self, org: &str) -> BTreeMap<Uuid, MemDoc> {
        self.lock()
            .get(org)
            .map(|o| o.docs.clone())
            .unwrap_or_default()
    }

    /// Every tombstone of `org`, by id.
    pub fn tombstones(&self, org: &str) -> BTreeMap<Uuid, MemTomb> {
        self.lock()
            .get(org)
            .map(|o| o.tombs.clone())
            .unwrap_or_default()
    }

    /// The organisations' slugs.
    pub fn orgs(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// The feed's head and epoch of `org`.
    pub fn feed_meta(&self, org: &str) -> Option<FeedMeta> {
        self.lock().get(org).map(|o| FeedMeta {
            head: o.seq,
            epoch: o.epoch,
        })
    }

    /// What `outpostd hub restored` does after a restore from a backup:
    /// every feed gets a new epoch.
    pub fn bump_epochs(&self) {
        for org in self.lock().values_mut() {
            org.epoch += 1;
        }
    }

    /// A copy of everything, as a backup taken now (for restore tests).
    pub fn backup(&self) -> MemStorage {
        MemStorage {
            orgs: Mutex::new(self.lock().clone()),
        }
    }
}

fn no_org(org: &str) -> StorageError {
    StorageError::NoOrg(org.to_string())
}

impl HubStorage for MemStorage {
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError> {
        let orgs = self.lock();
        let o = orgs.get(org).ok_or_else(|| no_org(org))?;
        Ok(ids
            .iter()
            .map(|id| match (o.docs.get(id), o.tombs.contains_key(id)) {
                (_, true) => Held::Erased,
                (Some(d), false) => Held::Doc {
                    data: d.data.clone(),
                    heads: d.heads.clone(),
                },
                (None, false) => Held::Nothing,
            })
            .collect())
    }

    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError> {
        let mut orgs = self.lock();
        let o = orgs.get_mut(org).ok_or_else(|| no_org(org))?;
        let mut results = Vec::with_capacity(puts.len());
        for put in puts {
            let current = match (o.docs.get(&put.id), o.tombs.contains_key(&put.id)) {
                (_, true) => None,
                (Some(d), false) => Some(Expect::Heads(d.heads.clone())),
                (None, false) => Some(Expect::Absent),
            };
            if current.as_ref() != Some(&put.expect) {
                results.push(PutResult::Conflict);
                continue;
            }
            let old = o.docs.get(&put.id);
            let old_seq = old.map(|d| d.seq);
            let first = old.map_or(put.received_at, |d| d.first_received_at);
            let seq = o.bump(put.id, old_seq);
            o.docs.insert(
                put.id,
                MemDoc {
                    data: put.data.to_vec(),
                    heads: put.heads.clone(),
                    seq,
                    origin: put.origin.to_string(),
                    first_received_at: first,
                    record: put.record.clone(),
                },
            );
            results.push(PutResult::Stored { seq });
        }
        Ok(results)
    }

    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError> {
        let mut orgs = self.lock();
        let o = orgs.get_mut(org).ok_or_else(|| no_org(org))?;
        for id in ids {
            if o.tombs.contains_key(id) {
                continue;
            }
            let old = o.docs.remove(id).map(|d| d.seq);
            let seq = o.bump(*id, old);
            o.tombs.insert(*id, MemTomb { seq, at });
        }
        Ok(())
    }

    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        // One snapshot, as a database read transaction gives: the lock is
        // held for the whole scan.
        let orgs = self.lock();
        let o = orgs.get(org).ok_or_else(|| no_org(org))?;
        let meta = FeedMeta {
            head: o.seq,
            epoch: o.epoch,
        };
        for (&seq, &id) in o.feed.range(since.saturating_add(1)..) {
            let keep_going = match o.docs.get(&id) {
                Some(d) => {
                    let row = FeedRow {
                        seq,
                        id,
                        entry: FeedEntry::Doc { origin: &d.origin },
                    };
                    visit(row, &mut || Ok((d.heads.clone(), d.data.clone())))?
                }
                None => {
                    let row = FeedRow {
                        seq,
                        id,
                        entry: FeedEntry::Erased,
                    };
                    visit(row, &mut || Ok((Heads::default(), Vec::new())))?
                }
            };
            if !keep_going {
                break;
            }
        }
        Ok(meta)
    }

    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError> {
        let mut orgs = self.lock();
        orgs.get_mut(org).ok_or_else(|| no_org(org))?.epoch = epoch;
        Ok(())
    }

    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError> {
        let orgs = self.lock();
        let o = orgs.get(org).ok_or_else(|| no_org(org))?;
        Ok(o.config
            .iter()
            .map(|(kind, (version, data))| ConfigEntry {
                kind: kind.clone(),
                version: *version,
                data: data.clone(),
            })
            .collect())
    }

    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError> {
        let mut orgs = self.lock();
        let o = orgs.get_mut(org).ok_or_else(|| no_org(org))?;
        let current = o.config.get(kind).map_or(0, |(v, _)| *v);
        if expect.is_some_and(|v| v != current) {
            return Ok(None);
        }
        o.config_seq += 1;
        let version = o.config_seq;
        o.config.insert(kind.to_string(), (version, data.to_vec()));
        Ok(Some(version))
    }
}

/// Surgery for tests that simulate a partial restore from a backup.
impl MemStorage {
    /// Forgets `id` in `org` (document and tombstone), leaving the feed
    /// counter where it is.
    pub fn forget(&self, org: &str, id: &Uuid) {
        if let Some(o) = self.lock().get_mut(org) {
            if let Some(d) = o.docs.remove(id) {
                o.feed.remove(&d.seq);
            }
            if let Some(t) = o.tombs.remove(id) {
                o.feed.remove(&t.seq);
            }
        }
    }

    /// Puts `doc` back as `id`'s copy in `org` at its own feed position,
    /// as a restored backup would hold it.
    pub fn restore_doc(&self, org: &str, id: Uuid, doc: MemDoc) {
        self.forget(org, &id);
        if let Some(o) = self.lock().get_mut(org) {
            o.feed.insert(doc.seq, id);
            o.docs.insert(id, doc);
        }
    }
}

impl Clone for MemStorage {
    fn clone(&self) -> MemStorage {
        self.backup()
    }
}
