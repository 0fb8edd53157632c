//! The hub conformance suites on the SQLite backend (the sync primitives',
//! `outpost_proto::hub_storage_conformance!`, and the accounts',
//! `outpost_hub_db::hub_store_conformance!`), each check on a fresh
//! database file in a temporary directory.

use chrono::{DateTime, Utc};
use outpost_hub_db::HubStore;
use outpost_hub_sqlite::SqliteHubStore;
use outpost_proto::hub::storage::FeedVisitor;
use outpost_proto::hub::{ConfigEntry, FeedMeta, Held, HubStorage, Put, PutResult, StorageError};
use uuid::Uuid;

/// A SQLite hub that deletes its directory when dropped.
struct TempHub {
    store: SqliteHubStore,
    _dir: tempfile::TempDir,
}

fn make(orgs: &[&str]) -> TempHub {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteHubStore::open(dir.path()).unwrap();
    for org in orgs {
        store.add_org(org, "Kommun").unwrap();
    }
    TempHub { store, _dir: dir }
}

impl std::ops::Deref for TempHub {
    type Target = SqliteHubStore;
    fn deref(&self) -> &SqliteHubStore {
        &self.store
    }
}

impl HubStorage for TempHub {
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError> {
        self.store.get(org, ids)
    }
    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError> {
        self.store.put(org, puts)
    }
    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError> {
        self.store.erase(org, ids, at)
    }
    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        self.store.scan_feed(org, since, visit)
    }
    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError> {
        self.store.set_epoch(org, epoch)
    }
    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError> {
        self.store.config(org)
    }
    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError> {
        self.store.put_config(org, kind, data, expect)
    }
}

outpost_proto::hub_storage_conformance!(make);

mod accounts {
    outpost_hub_db::hub_store_conformance!(|| super::make(&[]));
}

/// Accounts and the audit log; `sql` edits the database file directly,
/// on a connection of its own, as someone holding hub.db could.
mod accounts_audit {
    outpost_hub_db::hub_accounts_conformance!(
        || super::make(&[]),
        |hub: &super::TempHub, sql: &str| {
            let conn =
                rusqlite::Connection::open(hub._dir.path().join(outpost_hub_sqlite::HUB_FILE))
                    .unwrap();
            conn.execute_batch(sql).unwrap();
        }
    );
}
