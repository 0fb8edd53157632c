//! Two hub nodes (two `PgHubStore`s, each with its own pool) appending to
//! the audit log of one database at once make one chain: the head row
//! each append locks serialises them, so no two entries share a position
//! and every entry chains onto the one before.

use outpost_hub_db::{Actor, HubStore, verify_audit};
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;

#[test]
fn two_nodes_appending_at_once_make_one_chain() {
    let db = TestDb::new();
    let a = PgHubStore::open(&db.url).unwrap();
    let b = PgHubStore::open(&db.url).unwrap();
    std::thread::scope(|s| {
        for (node, name) in [(&a, "a"), (&b, "b"), (&a, "a2"), (&b, "b2")] {
            s.spawn(move || {
                let who = Actor {
                    id: None,
                    name: format!("node {name}"),
                };
                for i in 0..25 {
                    outpost_hub_db::audit(node, &who, "test", None, &format!("{name} {i}"))
                        .unwrap();
                }
            });
        }
    });
    for node in [&a, &b] {
        let v = verify_audit(node).unwrap();
        assert!(v.intact, "{v:?}");
        assert_eq!(v.entries, 100);
        assert_eq!(node.audit_head().unwrap().unwrap().position, 100);
    }
}
