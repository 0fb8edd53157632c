//! The hub conformance suites on the SQLite backend (the sync primitives',
//! `outpost_proto::hub_storage_conformance!`, and the accounts',
//! `outpost_hub_db::hub_store_conformance!`), each check on a fresh
//! database file in a temporary directory.

use outpost_hub_db::HubStore;
use outpost_hub_sqlite::SqliteHubStore;
use outpost_proto::hub::conformance::Guarded;

/// A SQLite hub that deletes its directory when dropped.
type TempHub = Guarded<SqliteHubStore, tempfile::TempDir>;

fn make(orgs: &[&str]) -> TempHub {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteHubStore::open(dir.path()).unwrap();
    for org in orgs {
        store.add_org(org, "Kommun").unwrap();
    }
    Guarded { store, guard: dir }
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
                rusqlite::Connection::open(hub.guard.path().join(outpost_hub_sqlite::HUB_FILE))
                    .unwrap();
            conn.execute_batch(sql).unwrap();
        }
    );
}
