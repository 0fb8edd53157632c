//! Point-in-time restore of a hub on PostgreSQL, as an operator does it:
//! WAL archiving on, a base backup (`pg_basebackup`), more records synced,
//! the database restored into a new data directory to a point before them
//! (`restore_command`, `recovery_target_lsn`), `outpostd hub restored
//! --database URL`, the hub started on it. The laptops that hold the
//! records the restored hub lost send them again, and every laptop ends
//! with every record.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_hub_postgres::test_pg::{Cluster, INSTALL};
use outpost_tests::hub::record_ids;
use outpost_tests::{TestDir, bin, clean_env};

struct HubProc {
    child: Child,
}

impl HubProc {
    fn start(port: u16, database: &str, dir: &Path) -> HubProc {
        let child = clean_env(
            Command::new(bin("outpostd"))
                .args(["hub", "--database", database, "--data-dir"])
                .arg(dir)
                .args(["--listen", &format!("127.0.0.1:{port}")]),
        )
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

fn admin(url: &str, token: &str, args: &[&str]) -> String {
    let scratch = TestDir::new();
    let file = scratch.path().join("token");
    std::fs::write(&file, token).unwrap();
    let file = file.to_string_lossy().into_owned();
    let mut full = vec!["admin", "--hub", url, "--token-file", &file];
    full.extend_from_slice(args);
    scratch.ok(&full).trim().to_string()
}

fn laptop(url: &str, token: &str) -> TestDir {
    let td = TestDir::initialised();
    let code = admin(url, token, &["invite", "--org", "mjolby"]);
    td.ok(&["enroll", url, &code]);
    td
}

fn query_text(url: &str, sql: &str) -> String {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_point_in_time_restore_loses_no_record() {
    let mut cluster = Cluster::init().unwrap_or_else(|e| panic!("{e}; {INSTALL}"));
    let archive = cluster.dir.join("archive");
    cluster.make_dir(&archive).unwrap();
    let archiving = [
        "wal_level=replica".to_string(),
        "archive_mode=on".to_string(),
        format!("archive_command='cp %p {}/%f'", archive.display()),
        "fsync=off".to_string(),
    ];
    let archiving: Vec<&str> = archiving.iter().map(String::as_str).collect();
    cluster.start(&archiving).unwrap();
    let admin_url = cluster.url("postgres");
    postgres::Client::connect(&admin_url, postgres::NoTls)
        .unwrap()
        .batch_execute("CREATE DATABASE outpost")
        .unwrap();
    let db = cluster.url("outpost");

    let out = clean_env(Command::new(bin("outpostd")).args(["hub", "init", "--database", &db]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let node_dir = tempfile::tempdir().unwrap();
    let hub = HubProc::start(port, &db, node_dir.path());
    admin(&url, &token, &["org", "add", "mjolby", "Mjölby kommun"]);
    let a = laptop(&url, &token);
    let b = laptop(&url, &token);
    a.add_visit(&["--note", "före säkerhetskopian"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);

    // The base backup, then the point to restore to.
    let backup = cluster.dir.join("backup");
    let mut basebackup = cluster.command("pg_basebackup");
    basebackup
        .arg("-D")
        .arg(&backup)
        .args(["-h", "127.0.0.1", "-p", &cluster.port.to_string()])
        .args(["-U", "postgres", "-X", "stream", "--no-sync"])
        // At once, not spread over the next checkpoint interval.
        .arg("--checkpoint=fast");
    cluster.run(basebackup, "pg_basebackup").unwrap();
    b.add_visit(&["--note", "efter säkerhetskopian, före punkten"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);
    let point = query_text(&admin_url, "SELECT pg_current_wal_lsn()::text");

    // Records the restore will lose: acknowledged by the hub after the point.
    a.add_visit(&["--note", "efter punkten 1"]);
    a.add_visit(&["--note", "efter punkten 2"]);
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    assert_eq!(record_ids(b.path()).len(), 4);
    // Every WAL segment up to now into the archive.
    let last = query_text(&admin_url, "SELECT pg_walfile_name(pg_switch_wal())::text");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !archive.join(&last).exists() {
        assert!(Instant::now() < deadline, "WAL {last} was not archived");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(hub);
    cluster.stop().unwrap();

    // The restore into a new data directory, to the point.
    let restored_data = cluster.dir.join("restored");
    // `cp -a` keeps the owner (the server's user) and the modes.
    let status = Command::new("cp")
        .arg("-a")
        .arg(&backup)
        .arg(&restored_data)
        .status()
        .unwrap();
    assert!(status.success());
    cluster
        .write_file(&restored_data.join("recovery.signal"), "")
        .unwrap();
    let mut restored = cluster.with_data(restored_data.clone()).unwrap();
    let restore_command = format!("restore_command='cp {}/%f %p'", archive.display());
    let target = format!("recovery_target_lsn='{point}'");
    restored
        .start(&[
            &restore_command,
            &target,
            "recovery_target_action=promote",
            "fsync=off",
        ])
        .unwrap();
    let restored_db = restored.url("outpost");
    // Wait for the promotion at the end of recovery.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let in_recovery = query_text(
            &restored.url("postgres"),
            "SELECT pg_is_in_recovery()::text",
        );
        if in_recovery == "false" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restored server stayed in recovery"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = clean_env(Command::new(bin("outpostd")).args([
        "hub",
        "restored",
        "--database",
        &restored_db,
    ]))
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 organisation"), "{said}");
    let _hub = HubProc::start(port, &restored_db, node_dir.path());
    // The restored hub has the first two records only.
    let exported = admin(&url, &token, &["export", "--format", "jsonl"]);
    assert_eq!(
        exported.lines().count(),
        2,
        "restored to the point: {exported}"
    );

    let out = a.command(&["sync"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("restored from a backup"), "{said}");
    b.ok(&["sync"]);
    let c = laptop(&url, &token);
    c.ok(&["sync"]);
    assert_eq!(
        record_ids(c.path()).len(),
        4,
        "the hub has every record again"
    );
    assert_eq!(record_ids(a.path()), record_ids(c.path()));
    assert_eq!(record_ids(b.path()), record_ids(c.path()));
    restored.stop().unwrap();
}
