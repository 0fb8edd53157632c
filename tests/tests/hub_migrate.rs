//! `outpostd hub migrate --from DIR --database URL`: a SQLite hub that
//! served real laptops is copied into PostgreSQL (the test process's own
//! server, `outpost_hub_postgres::test_pg`) and the hub started on it
//! serves the same laptops as if nothing had happened: same records,
//! tombstones, devices, tokens, codes, configuration, feed positions and
//! epochs, and cursors the SQLite hub signed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_hub_db::HubStore;
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;
use outpost_hub_sqlite::SqliteHubStore;
use outpost_proto::filter::Filter;
use outpost_proto::hub::{FeedEntry, Held, HubStorage};
use outpost_tests::{TestDir, bin, clean_env};
use serde_json::Value;
use uuid::Uuid;

/// `outpostd ARGS`; (status ok, stdout, stderr).
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

/// An `outpostd hub` process, killed when dropped.
struct HubProc {
    child: Child,
}

impl HubProc {
    fn start(port: u16, dir: &Path, database: Option<&str>) -> HubProc {
        let mut cmd = Command::new(bin("outpostd"));
        clean_env(cmd.args(["hub", "--data-dir"]).arg(dir))
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if let Some(db) = database {
            cmd.args(["--database", db]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the hub did not listen in 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        HubProc { child }
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `outpost admin --hub URL --token-file F ARGS` (with `--json` first when
/// asked); (ok, stdout, stderr).
fn admin(url: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let scratch = TestDir::new();
    let file = scratch.path().join("token");
    std::fs::write(&file, token).unwrap();
    let file = file.to_string_lossy().into_owned();
    let mut full = vec!["admin", "--hub", url, "--token-file", &file];
    full.extend_from_slice(args);
    let (status, out, err) = scratch.run(&full);
    (status.success(), out.trim().to_string(), err)
}

fn admin_ok(url: &str, token: &str, args: &[&str]) -> String {
    let (ok, out, err) = admin(url, token, args);
    assert!(ok, "outpost admin {args:?} failed: {err}");
    out
}

fn laptop(url: &str, token: &str, org: &str, site: &str) -> TestDir {
    let td = TestDir::new();
    td.ok(&["init", "--org", org, "--site", site, "--staff", "AB"]);
    let code = admin_ok(url, token, &["invite", "--org", org]);
    td.ok(&["enroll", url, &code]);
    td
}

fn sync_json(td: &TestDir) -> Value {
    serde_json::from_str(&td.ok(&["--json", "sync"])).unwrap()
}

fn exported(td: &TestDir) -> Vec<Value> {
    let mut v: Vec<Value> = td
        .ok(&["export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    v
}

/// One configuration entry: kind, version, data.
type ConfigRow = (String, u64, Vec<u8>);

/// Everything a hub store answers about its data, in a comparable form:
/// orgs, devices, each org's feed (head, epoch, every entry with its
/// position, origin, heads and document bytes), configuration, projected
/// records and the cursor key.
#[derive(Debug, PartialEq)]
struct Snapshot {
    orgs: Vec<(String, String)>,
    devices: Vec<outpost_hub_db::DeviceInfo>,
    feeds: Vec<(String, u64, u64, Vec<String>)>,
    config: Vec<(String, Vec<ConfigRow>)>,
    records: Vec<String>,
    cursor_key: [u8; 32],
    accounts: Vec<outpost_hub_db::Account>,
    audit: Vec<outpost_hub_db::AuditEntry>,
    audit_verdict: outpost_hub_db::AuditVerdict,
}

fn snapshot<S: HubStore>(hub: &S) -> Snapshot {
    let orgs = hub.orgs().unwrap();
    let mut feeds = Vec::new();
    let mut config = Vec::new();
    for (org, _) in &orgs {
        let mut entries = Vec::new();
        let meta = hub
            .scan_feed(org, 0, &mut |row, load| {
                let entry = match row.entry {
                    FeedEntry::Doc { origin } => {
                        let (heads, doc) = load()?;
                        format!(
                            "{} {} doc {origin} {} {}",
                            row.seq,
                            row.id,
                            hex(&heads.0),
                            hex(&doc)
                        )
                    }
                    FeedEntry::Erased => format!("{} {} erased", row.seq, row.id),
                };
                entries.push(entry);
                Ok(true)
            })
            .unwrap();
        feeds.push((org.clone(), meta.head, meta.epoch, entries));
        let mut c: Vec<_> = hub
            .config(org)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.version, e.data))
            .collect();
        c.sort();
        config.push((org.clone(), c));
    }
    let mut records = Vec::new();
    hub.for_each_record(None, &Filter::default(), &mut |r| {
        records.push(serde_json::to_string(&r).unwrap());
        true
    })
    .unwrap();
    let mut audit = Vec::new();
    hub.for_each_audit(None, &mut |e| {
        audit.push(e);
        true
    })
    .unwrap();
    Snapshot {
        orgs,
        devices: hub.devices(None).unwrap(),
        feeds,
        config,
        records,
        cursor_key: hub.cursor_key().unwrap(),
        // Accounts made in one second list in either order.
        accounts: {
            let mut accounts = hub.accounts().unwrap();
            accounts.sort_by(|a, b| a.id.cmp(&b.id));
            accounts
        },
        audit,
        audit_verdict: outpost_hub_db::verify_audit(hub).unwrap(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Rows in every table of the database but the migrations' bookkeeping.
fn rows_in(url: &str) -> Vec<(String, i64)> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'schema_migrations' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables
        .into_iter()
        .map(|t| {
            // The audit chain's head row is made by the schema itself
            // (position 0, the genesis hash): only a moved head is data.
            let sql = if t == "audit_head" {
                "SELECT count(*) FROM audit_head WHERE position > 0".to_string()
            } else {
                format!("SELECT count(*) FROM \"{t}\"")
            };
            let n: i64 = client.query_one(&sql, &[]).unwrap().get(0);
            (t, n)
        })
        .collect()
}

#[test]
fn a_sqlite_hub_moved_to_postgres_keeps_everything_and_laptops_carry_on() {
    // The SQLite hub, with two orgs and their laptops.
    let hub_dir = tempfile::tempdir().unwrap();
    let h = hub_dir.path().to_str().unwrap();
    let (ok, token, err) = outpostd(&["hub", "init", "--data-dir", h]);
    assert!(ok, "{err}");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let sqlite_hub = HubProc::start(port, hub_dir.path(), None);
    admin_ok(&url, &token, &["org", "add", "mjolby", "Mjölby kommun"]);
    admin_ok(&url, &token, &["org", "add", "boxholm", "Boxholms kommun"]);
    admin_ok(
        &url,
        &token,
        &["sites", "add", "Mjölby bibliotek", "--org", "mjolby"],
    );
    let a = laptop(&url, &token, "mjolby", "Mjölby bibliotek");
    let b = laptop(&url, &token, "mjolby", "Mjölby bibliotek");
    let c = laptop(&url, &token, "boxholm", "Boxholm");
    let d = laptop(&url, &token, "mjolby", "Väderstad");
    let mut a_ids = Vec::new();
    for i in 0..3 {
        a_ids.push(
            a.add_visit(&["--note", &format!("A besök {i}")])
                .trim()
                .to_string(),
        );
    }
    for i in 0..2 {
        c.add_visit(&["--note", &format!("C besök {i}")]);
    }
    d.add_visit(&["--note", "D besök"]);
    for l in [&a, &c, &d, &b] {
        l.ok(&["sync"]);
    }
    // An erasure, a revoked laptop, an unused code.
    let erased = a_ids[0].clone();
    admin_ok(&url, &token, &["delete", &erased]);
    let d_status: Value = serde_json::from_str(&d.ok(&["--json", "status"])).unwrap();
    let d_device = d_status["device"].as_str().unwrap().to_string();
    admin_ok(&url, &token, &["revoke", &d_device]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(exported(&b).len(), 3, "2 of A's and D's, one erased");
    let unused_code = admin_ok(&url, &token, &["invite", "--org", "boxholm"]);
    drop(sqlite_hub);
    // A second admin token, for boxholm only.
    let before = {
        let store = SqliteHubStore::open(hub_dir.path()).unwrap();
        let scoped = store.create_admin_token(Some("boxholm")).unwrap();
        (snapshot(&store), scoped)
    };
    let (before, scoped_token) = before;
    assert_eq!(before.devices.len(), 4);
    assert!(before.devices.iter().any(|d| d.id == d_device && d.revoked));

    let db = TestDb::new();
    let (ok, out, err) = outpostd(&[
        "hub",
        "migrate",
        "--from",
        h,
        "--database",
        &db.url,
        "--json",
    ]);
    assert!(ok, "migrate failed: {err}");
    assert!(!err.contains("postgres@"), "no URL in messages: {err}");
    assert!(err.contains("docs: 5 rows copied"), "progress: {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    let t = &summary["tables"];
    assert_eq!(
        (
            &t["orgs"],
            &t["admin_tokens"],
            &t["devices"],
            &t["docs"],
            &t["tombstones"],
            &t["records"],
            &t["secrets"],
            &t["org_config"]
        ),
        (
            &Value::from(2),
            &Value::from(2),
            &Value::from(4),
            &Value::from(5),
            &Value::from(1),
            &Value::from(5),
            &Value::from(1),
            &Value::from(1)
        ),
        "{summary}"
    );
    assert_eq!(t["enrol_codes"], 5, "four used and one unused: {summary}");

    // Everything the hub answers is the same on PostgreSQL.
    {
        let pg = PgHubStore::open(&db.url).unwrap();
        let after = snapshot(&pg);
        assert_eq!(after, before);
        // The admin actions above (invites, a revocation) are in the
        // audit log, whose chain still verifies on PostgreSQL.
        assert!(after.audit.len() >= 3, "{:?}", after.audit);
        assert!(after.audit_verdict.intact, "{:?}", after.audit_verdict);
        let erased_id = Uuid::parse_str(&erased).unwrap();
        assert_eq!(pg.get("mjolby", &[erased_id]).unwrap(), vec![Held::Erased]);
    }
    // A second run is refused and changes nothing.
    let rows = rows_in(&db.url);
    let (ok, _, err) = outpostd(&["hub", "migrate", "--from", h, "--database", &db.url]);
    assert!(!ok && err.contains("not empty"), "{err}");
    assert_eq!(rows_in(&db.url), rows);

    // The hub on PostgreSQL, at the same address the laptops know.
    let pg_dir = tempfile::tempdir().unwrap();
    let _pg_hub = HubProc::start(port, pg_dir.path(), Some(&db.url));
    // Same epoch and a cursor the SQLite hub signed: nothing is sent or
    // read again.
    let s = sync_json(&a);
    assert_eq!(
        (&s["pushed"], &s["pulled"], &s["feed_resets"]),
        (&Value::from(0), &Value::from(0), &Value::from(0)),
        "{s}"
    );
    a.add_visit(&["--note", "efter flytten"]);
    assert_eq!(sync_json(&a)["pushed"], 1);
    let s = sync_json(&b);
    assert_eq!(
        (&s["pushed"], &s["pulled"], &s["feed_resets"]),
        (&Value::from(0), &Value::from(1), &Value::from(0)),
        "B reads on from its cursor: {s}"
    );
    assert_eq!(exported(&a), exported(&b));
    assert!(exported(&b).iter().all(|r| r["id"] != erased.as_str()));
    // The revoked laptop stays revoked.
    let (status, _, err) = d.run(&["sync"]);
    assert!(!status.success(), "a revoked laptop synced");
    assert!(
        err.to_lowercase().contains("token") || err.contains("revoked"),
        "{err}"
    );
    // Both admin tokens work, the second still only for its org.
    admin_ok(&url, &token, &["devices", "--org", "mjolby"]);
    admin_ok(&url, &scoped_token, &["devices", "--org", "boxholm"]);
    let (ok, _, _) = admin(&url, &scoped_token, &["devices", "--org", "mjolby"]);
    assert!(!ok, "a boxholm token read mjolby's devices");
    // The code made on SQLite enrols a laptop on PostgreSQL, which gets
    // its org's records.
    let e = TestDir::new();
    e.ok(&[
        "init", "--org", "boxholm", "--site", "Boxholm", "--staff", "CD",
    ]);
    e.ok(&["enroll", &url, &unused_code]);
    e.ok(&["sync"]);
    assert_eq!(exported(&e), exported(&c));
    assert_eq!(exported(&e).len(), 2);
}

/// A migration that fails half-way keeps nothing; a hub with data this
/// release does not know how to copy, or a database that is not empty,
/// are refused before anything is written.
#[test]
fn a_failed_migration_leaves_the_database_empty_and_unknown_tables_are_refused() {
    let hub_dir = tempfile::tempdir().unwrap();
    let h = hub_dir.path().to_str().unwrap();
    {
        let store = SqliteHubStore::open(hub_dir.path()).unwrap();
        store.add_org("mjolby", "Mjölby kommun").unwrap();
        store.create_admin_token(None).unwrap();
        store.invite("mjolby", chrono::Utc::now()).unwrap();
    }
    let hub_db = hub_dir.path().join(outpost_hub_sqlite::HUB_FILE);
    // A damaged document row (not a UUID): PostgreSQL refuses it, after
    // orgs, tokens, codes and devices were already sent.
    let conn = rusqlite::Connection::open(&hub_db).unwrap();
    conn.execute(
        "INSERT INTO docs(id, org, doc, heads, seq, origin, first_received_at)
         VALUES ('not-a-uuid', 'mjolby', x'00', x'00', 1, 'dev', '2025-03-04T09:00:00Z')",
        [],
    )
    .unwrap();
    let db = TestDb::new();
    let (ok, _, err) = outpostd(&["hub", "migrate", "--from", h, "--database", &db.url]);
    assert!(!ok, "a damaged row was copied");
    assert!(err.contains("docs"), "names the table: {err}");
    let rows = rows_in(&db.url);
    assert!(!rows.is_empty(), "the schema was made");
    assert!(rows.iter().all(|(_, n)| *n == 0), "nothing kept: {rows:?}");

    // Without the damaged row, but with a table this release does not
    // know (as one a newer release would add): refused, named.
    conn.execute("DELETE FROM docs", []).unwrap();
    conn.execute_batch("CREATE TABLE sessions (id TEXT PRIMARY KEY);")
        .unwrap();
    let (ok, _, err) = outpostd(&["hub", "migrate", "--from", h, "--database", &db.url]);
    assert!(!ok && err.contains("sessions"), "{err}");
    assert!(rows_in(&db.url).iter().all(|(_, n)| *n == 0));

    conn.execute_batch("DROP TABLE sessions;").unwrap();
    drop(conn);
    let (ok, out, err) = outpostd(&["hub", "migrate", "--from", h, "--database", &db.url]);
    assert!(ok, "{err}");
    assert!(out.contains("enrol_codes"), "a summary: {out}");
    // Not given a database, or not one at all: says what to give.
    let (ok, _, err) = outpostd(&["hub", "migrate", "--from", h]);
    assert!(!ok && err.contains("--database"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = outpostd(&[
        "hub",
        "migrate",
        "--from",
        empty.path().to_str().unwrap(),
        "--database",
        &TestDb::new().url,
    ]);
    assert!(!ok && err.contains("hub.db"), "{err}");
}
