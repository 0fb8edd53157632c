//! The hub conformance suites on the PostgreSQL backend: the sync
//! primitives' (`outpost_proto::hub_storage_conformance!`) and the
//! accounts' (`outpost_hub_db::hub_store_conformance!`), the same ones the
//! SQLite backend runs, each check on a fresh database of the test
//! process's own PostgreSQL server (`outpost_hub_postgres::test_pg`).

use outpost_hub_db::HubStore;
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;
use outpost_proto::hub::conformance::Guarded;

/// A PostgreSQL hub on a database that is dropped with it.
type PgHub = Guarded<PgHubStore, TestDb>;

fn make(orgs: &[&str]) -> PgHub {
    let db = TestDb::new();
    let store = PgHubStore::open(&db.url).unwrap();
    for org in orgs {
        store.add_org(org, "Kommun").unwrap();
    }
    Guarded { store, guard: db }
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
            let mut client = postgres::Client::connect(&hub.guard.url, postgres::NoTls).unwrap();
            client.batch_execute(sql).unwrap();
        }
    );
}
