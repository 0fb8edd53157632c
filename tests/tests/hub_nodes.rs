//! Several `outpostd hub` processes on one PostgreSQL database (the test
//! process's own server, `outpost_hub_postgres::test_pg`): laptops driven
//! through the `outpost` CLI sync through either node at once and every
//! laptop ends with every record; `hub init --database` and `hub restored
//! --database` work on the shared database.

use std::process::Command;

use outpost_hub_postgres::test_pg::TestDb;
use outpost_tests::hub::{HubNode, add_visit, admin, ok_at as outpost, record_ids};
use outpost_tests::{bin, clean_env};

/// The nodes run on the hub's default settings.
const NODE_ENV: &[(&str, &str)] = &[];

/// `outpostd ARGS` with a clean environment; (status ok, stdout, stderr).
fn outpostd(args: &[&str]) -> (bool, String, String) {
    let out = clean_env(Command::new(bin("outpostd")).args(args))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hub_init_and_restored_work_on_a_postgres_database() {
    let db = TestDb::new();
    let (ok, token, err) = outpostd(&["hub", "init", "--database", &db.url]);
    assert!(ok, "{err}");
    assert!(token.starts_with("opa_"), "{token}");
    assert!(
        !err.contains("postgres@"),
        "no URL with credentials in messages: {err}"
    );
    let (ok, _, err) = outpostd(&["hub", "init", "--database", &db.url]);
    assert!(!ok && err.contains("already initialised"), "{err}");
    let node = HubNode::start(&db.url, NODE_ENV);
    let scratch = tempfile::tempdir().unwrap();
    admin(
        &node,
        &token,
        scratch.path(),
        &["org", "add", "mjolby", "Mjölby kommun"],
    );
    // The database also comes from the environment.
    let out = clean_env(Command::new(bin("outpostd")).args(["hub", "restored"]))
        .env("OUTPOST_HUB_DATABASE", &db.url)
        .env("OUTPOST_DATA_DIR", scratch.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 organisation"), "{err}");
    // Not a PostgreSQL URL: refused, saying what to give.
    let (ok, _, err) = outpostd(&["hub", "init", "--database", "/tmp/hub.db"]);
    assert!(!ok && err.contains("postgres://"), "{err}");
}

/// Twelve laptops, half enrolled through each of two nodes, push and pull
/// all at once, three rounds; each round's pushes race the others' pulls
/// on both nodes, which is where a feed position handed out before commit
/// would let a cursor pass a record for good.
#[test]
fn laptops_syncing_through_two_nodes_at_once_all_end_with_every_record() {
    const LAPTOPS: usize = 12;
    const VISITS: usize = 3;
    let db = TestDb::new();
    let (ok, token, err) = outpostd(&["hub", "init", "--database", &db.url]);
    assert!(ok, "{err}");
    let nodes = [
        HubNode::start(&db.url, NODE_ENV),
        HubNode::start(&db.url, NODE_ENV),
    ];
    let scratch = tempfile::tempdir().unwrap();
    admin(
        &nodes[0],
        &token,
        scratch.path(),
        &["org", "add", "mjolby", "Mjölby kommun"],
    );

    let laptops: Vec<tempfile::TempDir> = (0..LAPTOPS)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            outpost(
                dir.path(),
                &[
                    "init",
                    "--org",
                    "mjolby",
                    "--site",
                    &format!("Plats {i}"),
                    "--staff",
                    "AB",
                ],
            );
            // Codes made on one node are taken on the other.
            let code = admin(
                &nodes[(i + 1) % 2],
                &token,
                dir.path(),
                &["invite", "--org", "mjolby"],
            );
            outpost(dir.path(), &["enroll", &nodes[i % 2].url, &code]);
            dir
        })
        .collect();

    let mut all = Vec::new();
    for round in 0..3 {
        for (i, l) in laptops.iter().enumerate() {
            for v in 0..VISITS {
                all.push(add_visit(
                    l.path(),
                    &format!("runda {round} dator {i} besök {v}"),
                ));
            }
        }
        std::thread::scope(|s| {
            for l in &laptops {
                s.spawn(move || {
                    let out = clean_env(
                        Command::new(bin("outpost"))
                            .arg("--data-dir")
                            .arg(l.path())
                            .arg("sync"),
                    )
                    .output()
                    .unwrap();
                    assert!(
                        out.status.success(),
                        "sync failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                });
            }
        });
    }
    // Once more, one after the other: every laptop takes what the last
    // concurrent round left on the feed.
    for l in &laptops {
        outpost(l.path(), &["sync"]);
    }
    all.sort();
    assert_eq!(all.len(), LAPTOPS * VISITS * 3);
    for (i, l) in laptops.iter().enumerate() {
        let have = record_ids(l.path());
        let missing = all.iter().filter(|id| !have.contains(id)).count();
        assert_eq!(
            missing,
            0,
            "laptop {i} lacks {missing} of {} records",
            all.len()
        );
        assert_eq!(have, all, "laptop {i}");
    }
    let exported = admin(
        &nodes[1],
        &token,
        scratch.path(),
        &["export", "--format", "jsonl"],
    );
    assert_eq!(exported.lines().count(), all.len());
}
