//! The hub conformance suites on the PostgreSQL backend: the sync
//! primitives' (`outpost_proto::hub_storage_conformance!`) and the
//! accounts' (`outpost_hub_db::hub_store_conformance!`), the same ones the
//! SQLite backend runs, each check on a fresh database of the test
//! process's own PostgreSQL server (`outpost_hub_postgres::test_pg`).

use chrono::{DateTime, Utc};
use outpost_hub_db::HubStore;
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;
use outpost_proto::hub::storage::FeedVisitor;
use outpost_proto::hub::{ConfigEntry, FeedMeta, Held, HubStorage, Put, PutResult, StorageError};
use uuid::Uuid;

/// A PostgreSQL hub on a database that is dropped with it.
struct PgHub {
    store: PgHubStore,
    _db: TestDb,
}

fn make(orgs: &[&str]) -> PgHub {
    let db = TestDb::new();
    let store = PgHubStore::open(&db.url).unwrap();
    for org in orgs {
        store.add_org(org, "Kommun").unwrap();
    }
    PgHub { store, _db: db }
}

impl std::ops::Deref for PgHub {
    type Target = PgHubStore;
    fn deref(&self) -> &PgHubStore {
        &self.store
    }
}

impl HubStorage for PgHub {
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

/// Accounts and the audit log; `sql` runs on a client of its own, as a
/// psql session on the hub's database could.
mod accounts_audit {
    outpost_hub_db::hub_accounts_conformance!(
        || super::make(&[]),
        |hub: &super::PgHub, sql: &str| {
            let mut client = postgres::Client::connect(&hub._db.url, postgres::NoTls).unwrap();
            client.batch_execute(sql).unwrap();
        }
    );
}
