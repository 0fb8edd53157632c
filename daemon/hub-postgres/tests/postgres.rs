//! What only the PostgreSQL backend has to show: migrations applied once
//! however many nodes open the database, and a feed that no cursor skips
//! while several nodes write to one organisation at once.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use outpost_hub_db::{HubError, HubStore};
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;
use outpost_proto::hub::{Expect, FeedEntry, HubStorage, Put, PutResult};
use outpost_proto::sync::Heads;
use uuid::Uuid;

#[test]
fn a_second_node_opens_the_same_database_without_migrating_again() {
    let db = TestDb::new();
    let first = PgHubStore::open(&db.url).unwrap();
    first.add_org("mjolby", "Mjölby kommun").unwrap();
    let token = first.create_admin_token(None).unwrap();
    let key = first.cursor_key().unwrap();
    // Two more nodes start at the same moment.
    let (second, third) = std::thread::scope(|s| {
        let a = s.spawn(|| PgHubStore::open(&db.url).unwrap());
        let b = s.spawn(|| PgHubStore::open(&db.url).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    for node in [&second, &third] {
        assert_eq!(node.orgs().unwrap().len(), 1);
        assert!(node.admin(&token).is_ok());
        assert_eq!(
            node.cursor_key().unwrap(),
            key,
            "one cursor key for all nodes"
        );
    }
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Every shipped migration once, in order (the primary key would refuse
    // a second row, but a node that re-ran one would have failed above).
    let expected = outpost_hub_postgres::migrations::versions();
    assert_eq!(versions, expected, "every embedded migration, once each");

    // A database migrated by a newer release is refused, not written to.
    client
        .execute(
            "INSERT INTO schema_migrations(version, name) VALUES (999, 'future')",
            &[],
        )
        .unwrap();
    let err = PgHubStore::open(&db.url).unwrap_err();
    assert!(
        matches!(&err, outpost_hub_postgres::PgError::Hub(HubError::Invalid(m)) if m.contains("999")),
        "{err}"
    );
}

#[test]
fn an_enrolment_code_used_on_two_nodes_at_once_enrols_one_device() {
    let db = TestDb::new();
    let a = PgHubStore::open(&db.url).unwrap();
    let b = PgHubStore::open(&db.url).unwrap();
    a.add_org("mjolby", "Mjölby kommun").unwrap();
    for _ in 0..10 {
        let code = a.invite("mjolby", Utc::now()).unwrap();
        let results: Vec<Result<(String, String), HubError>> = std::thread::scope(|s| {
            let x = s.spawn(|| a.enroll(&code, Uuid::new_v4(), None, Utc::now()));
            let y = s.spawn(|| b.enroll(&code, Uuid::new_v4(), None, Utc::now()));
            vec![x.join().unwrap(), y.join().unwrap()]
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(HubError::BadCode))));
    }
    assert_eq!(a.devices(None).unwrap().len(), 10);
}

/// Writers on two "nodes" (two stores, two pools) push into one org while
/// a reader follows the feed as a laptop does, moving its cursor to the
/// head each scan reports. Were positions handed out outside the
/// org's lock (a sequence), a row committed after a later one would fall
/// behind a cursor and never be read.
#[test]
fn a_cursor_following_the_feed_under_concurrent_writers_skips_nothing() {
    const WRITERS: usize = 8;
    const PUTS: usize = 40;
    let db = TestDb::new();
    let nodes = [
        PgHubStore::open(&db.url).unwrap(),
        PgHubStore::open(&db.url).unwrap(),
    ];
    nodes[0].add_org("mjolby", "Mjölby kommun").unwrap();
    let done = AtomicBool::new(false);
    let (written, read) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let node = &nodes[w % 2];
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for i in 0..PUTS {
                        let record = outpost_proto::fixtures::visit("mjolby");
                        let heads = Heads(vec![u8::try_from(i % 200).unwrap()]);
                        let data = vec![7u8; 64];
                        let origin = format!("writer-{w}");
                        // Two documents a transaction, as a push batch.
                        let other = outpost_proto::fixtures::visit("mjolby");
                        let puts = [&record, &other].map(|r| Put {
                            id: r.id,
                            expect: Expect::Absent,
                            data: &data,
                            heads: &heads,
                            origin: &origin,
                            record: r,
                            received_at: Utc::now(),
                        });
                        let res = node.put("mjolby", &puts).unwrap();
                        assert!(res.iter().all(|r| matches!(r, PutResult::Stored { .. })));
                        ids.push(record.id);
                        ids.push(other.id);
                    }
                    ids
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut cursor = 0u64;
            let mut seen = BTreeSet::new();
            let mut last_seq = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let meta = nodes[1]
                    .scan_feed("mjolby", cursor, &mut |row, _| {
                        assert!(row.seq > last_seq, "feed order");
                        last_seq = row.seq;
                        assert!(matches!(row.entry, FeedEntry::Doc { .. }));
                        seen.insert(row.id);
                        Ok(true)
                    })
                    .unwrap();
                // As a pull that reached the end: the cursor moves to the
                // head of the snapshot.
                assert!(meta.head >= last_seq);
                cursor = meta.head;
                last_seq = cursor;
                if finished {
                    return seen;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        });
        // The reader is told to finish even when a writer failed, so a
        // failure shows as one, not as a test that never ends.
        let joined: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::SeqCst);
        let mut written = BTreeSet::new();
        for ids in joined {
            written.extend(ids.unwrap());
        }
        (written, reader.join().unwrap())
    });
    assert_eq!(written.len(), WRITERS * PUTS * 2);
    let missed: Vec<_> = written.difference(&read).collect();
    assert!(
        missed.is_empty(),
        "{} of {} rows skipped by the cursor",
        missed.len(),
        written.len()
    );
}
