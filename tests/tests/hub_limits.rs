//! Rate limits are kept in the database, so two `outpostd hub` processes
//! on one PostgreSQL database (the test process's own server,
//! `outpost_hub_postgres::test_pg`) count together: a laptop's daily
//! quota spent through one node is spent on the other, and wrong
//! enrolment codes tried on one node block the address on the other.
//! Also here, with the same nodes: a database failure is logged with
//! PostgreSQL's own words, and the laptop is told to try again later.

use std::process::Command;
use std::time::Duration;

use chrono::{Timelike, Utc};
use outpost_hub_postgres::test_pg::TestDb;
use outpost_tests::hub::HubNode;
use outpost_tests::{TestDir, bin, clean_env};

/// Each node runs with low limits, so a test reaches them quickly.
const NODE_ENV: &[(&str, &str)] = &[
    ("OUTPOST_HUB_MAX_DOCUMENTS_PER_DEVICE_PER_DAY", "5"),
    ("OUTPOST_HUB_ENROLL_FAILURES_PER_MINUTE", "3"),
];

fn admin(node: &HubNode, token: &str, args: &[&str]) -> String {
    let scratch = TestDir::new();
    outpost_tests::hub::admin(node, token, scratch.path(), args)
}

/// A fresh laptop enrolled in `mjolby` through `node`.
fn enrolled(node: &HubNode, token: &str) -> TestDir {
    let laptop = TestDir::initialised();
    let code = admin(node, token, &["invite", "--org", "mjolby"]);
    laptop.ok(&["enroll", &node.url, &code]);
    laptop
}

/// `outpost sync` through `node` (whatever hub the laptop enrolled with).
fn sync_through(laptop: &TestDir, node: &HubNode) -> (bool, String) {
    let out = laptop
        .command(&["sync"])
        .env("OUTPOST_HUB_URL", &node.url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn init_hub() -> (TestDb, String, [HubNode; 2]) {
    let db = TestDb::new();
    let out = clean_env(Command::new(bin("outpostd")).args(["hub", "init", "--database", &db.url]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let nodes = [
        HubNode::start(&db.url, NODE_ENV),
        HubNode::start(&db.url, NODE_ENV),
    ];
    admin(
        &nodes[0],
        &token,
        &["org", "add", "mjolby", "Mjölby kommun"],
    );
    (db, token, nodes)
}

#[test]
fn a_laptops_daily_quota_is_counted_across_nodes() {
    let (_db, token, nodes) = init_hub();
    let laptop = enrolled(&nodes[0], &token);
    for i in 0..3 {
        laptop.add_visit(&["--note", &format!("första {i}")]);
    }
    let (ok, err) = sync_through(&laptop, &nodes[0]);
    assert!(ok, "3 of 5 through node 0: {err}");
    for i in 0..3 {
        laptop.add_visit(&["--note", &format!("andra {i}")]);
    }
    // Node 1 has seen nothing from this laptop itself, but the day's
    // count is in the database: 3 + 3 > 5.
    let (ok, err) = sync_through(&laptop, &nodes[1]);
    assert!(!ok, "node 1 let the laptop pass its daily quota");
    assert!(
        err.contains("max_documents_per_device_per_day") && err.contains('3'),
        "{err}"
    );
    // Two more fit (5 in all), on either node; the rest stays waiting.
    let other = enrolled(&nodes[1], &token);
    let (ok, err) = sync_through(&other, &nodes[1]);
    assert!(ok, "another laptop has its own quota: {err}");
    let exported = admin(&nodes[1], &token, &["export", "--format", "jsonl"]);
    assert_eq!(exported.lines().count(), 3, "only the first push landed");
}

#[test]
fn wrong_enrolment_codes_tried_on_one_node_block_the_address_on_the_other() {
    let (_db, token, nodes) = init_hub();
    // The count is per minute: start early in one, so all tries share it.
    let second = Utc::now().second();
    if second > 40 {
        std::thread::sleep(Duration::from_secs(u64::from(61 - second)));
    }
    let laptop = TestDir::initialised();
    for _ in 0..3 {
        let err = laptop.fails(&["enroll", &nodes[0].url, "AAAA-BBBB-CCCC-DDDD"]);
        assert!(err.contains("unknown"), "a wrong code: {err}");
    }
    // Node 1 never saw a wrong code, yet refuses this address now, even
    // with a good code.
    let code = admin(&nodes[1], &token, &["invite", "--org", "mjolby"]);
    let err = laptop.fails(&["enroll", &nodes[1].url, &code]);
    assert!(err.contains("too many wrong enrolment codes"), "{err}");
    let err = laptop.fails(&["enroll", &nodes[0].url, &code]);
    assert!(err.contains("too many wrong enrolment codes"), "{err}");
}

#[test]
fn a_failing_query_is_logged_with_postgresqls_own_words() {
    let (db, token, nodes) = init_hub();
    let laptop = enrolled(&nodes[0], &token);
    laptop.add_visit(&["--note", "före felet"]);
    // The documents' table is gone from under the hub: every push fails
    // inside the database.
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    client
        .batch_execute("ALTER TABLE docs RENAME TO docs_elsewhere")
        .unwrap();
    let (ok, err) = sync_through(&laptop, &nodes[0]);
    assert!(!ok, "the push succeeded without a docs table");
    assert!(err.contains("try again later"), "{err}");
    assert!(
        !err.contains("docs"),
        "the database's words reached the laptop: {err}"
    );
    // The hub's log names the cause (the driver's own text is only
    // "db error"; the server's words are in its cause).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = nodes[0].log_text();
        if log.contains("request failed inside the hub") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let line = log
        .lines()
        .find(|l| l.contains("request failed inside the hub"))
        .unwrap_or_else(|| panic!("no failed request logged:\n{log}"));
    assert!(
        line.contains(r#"relation "docs" does not exist"#),
        "the log line lacks PostgreSQL's words: {line}"
    );
    assert!(
        !line.contains("hub database error: hub database error"),
        "{line}"
    );
    // Put back, the same laptop's record goes through.
    client
        .batch_execute("ALTER TABLE docs_elsewhere RENAME TO docs")
        .unwrap();
    let (ok, err) = sync_through(&laptop, &nodes[0]);
    assert!(ok, "{err}");
    let exported = admin(&nodes[0], &token, &["export", "--format", "jsonl"]);
    assert!(exported.contains("före felet"), "{exported}");
}
