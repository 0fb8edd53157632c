//! Sync with real processes: a hub started as `outpostd hub`, laptops
//! driven through the `outpost` CLI, processes killed with SIGKILL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use outpost_tests::hub::{
    HubProc, add_visit, free_port, laptop, listening, ok_at as ok, run_at as run,
};
use outpost_tests::{bin, clean_env as clean};

/// `outpost export --format jsonl`, sorted: what must be equal everywhere.
fn exported(dir: &Path) -> Vec<Value> {
    let text = ok(dir, &["export", "--format", "jsonl"]);
    let mut rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
    rows
}

#[test]
fn laptops_converge_through_a_hub_process_and_orgs_stay_apart() {
    let hub = HubProc::with_mjolby();
    let scratch = tempfile::tempdir().unwrap();
    hub.admin(scratch.path(), &["org", "add", "ystad", "Ystad kommun"]);
    let a = laptop(&hub, "mjolby", "Mjölby bibliotek");
    let b = laptop(&hub, "mjolby", "Skänninge bibliotek");
    let c = laptop(&hub, "mjolby", "Väderstad");
    let y = laptop(&hub, "ystad", "Ystad bibliotek");
    let shared = add_visit(a.path(), "delad");
    for i in 0..5 {
        add_visit(a.path(), &format!("a {i}"));
        add_visit(b.path(), &format!("b {i}"));
    }
    add_visit(y.path(), "ystad");
    ok(a.path(), &["sync"]);
    ok(c.path(), &["sync"]);
    // Offline edits of the same record on two laptops.
    ok(a.path(), &["edit", &shared, "--outcome", "partly"]);
    ok(
        c.path(),
        &["edit", &shared, "--outcome", "referred", "--minutes", "50"],
    );
    for dir in [&b, &c, &a, &b, &c] {
        ok(dir.path(), &["sync"]);
    }
    ok(y.path(), &["sync"]);
    let ea = exported(a.path());
    assert_eq!(ea.len(), 11);
    assert_eq!(ea, exported(b.path()));
    assert_eq!(ea, exported(c.path()));
    let show: Value = serde_json::from_str(&ok(a.path(), &["show", "--json", &shared])).unwrap();
    assert_eq!(show["minutes"], 50);
    assert_eq!(show["conflicts"]["outcome"].as_array().unwrap().len(), 1);
    let ey = exported(y.path());
    assert_eq!(ey.len(), 1);
    assert_eq!(ey[0]["org"], "ystad");
    // The admin export over the hub matches the laptops.
    let admin = hub.admin(
        scratch.path(),
        &["export", "--format", "jsonl", "--org", "mjolby"],
    );
    let mut rows: Vec<Value> = admin
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.sort_by_key(|v| v["id"].as_str().unwrap().to_string());
    assert_eq!(rows, ea);
    let status: Value = serde_json::from_str(&ok(a.path(), &["status", "--json"])).unwrap();
    assert_eq!(status["pending"], 0);
    assert!(status["last_sync_success"].is_string());
}

#[test]
fn kill_9_of_hub_and_of_a_syncing_laptop_loses_nothing() {
    let mut hub = HubProc::with_mjolby();
    let a = laptop(&hub, "mjolby", "A");
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(add_visit(a.path(), &format!("visit {i}")));
    }
    // Kill the laptop's sync process at varying moments, then the hub.
    for delay_ms in [5u64, 30, 80] {
        let mut child = clean(
            Command::new(bin("outpost"))
                .arg("--data-dir")
                .arg(a.path())
                .arg("sync"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        ids.push(add_visit(a.path(), &format!("between kills {delay_ms}")));
    }
    hub.kill9();
    let out = run(a.path(), &["sync"]);
    assert!(
        !out.status.success(),
        "sync must fail while the hub is down"
    );
    let status: Value = serde_json::from_str(&ok(a.path(), &["status", "--json"])).unwrap();
    assert!(status["last_error"].is_string());
    hub.spawn();
    ok(a.path(), &["sync"]);
    let b = laptop(&hub, "mjolby", "B");
    ok(b.path(), &["sync"]);
    let eb = exported(b.path());
    let mut got: Vec<String> = eb
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "every saved record reached the hub exactly once");
    assert_eq!(exported(a.path()), eb);
}

/// Starts the laptop daemon on `dir`, syncing every `interval_secs`.
fn spawn_daemon(dir: &Path, interval_secs: u32) -> Child {
    clean(Command::new(bin("outpostd")).arg("--data-dir").arg(dir))
        .env("OUTPOST_SYNC_INTERVAL_SECS", interval_secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `outpost status --json` until `done` holds (at most 40 s, then
/// fails with `what`); returns that status.
fn wait_for_status(dir: &Path, what: &str, done: &dyn Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let s: Value = serde_json::from_str(&ok(dir, &["status", "--json"])).unwrap();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_syncs_by_itself_and_survives_kill_9() {
    let hub = HubProc::with_mjolby();
    let a = laptop(&hub, "mjolby", "A");
    let spawn_daemon = || spawn_daemon(a.path(), 10);
    let wait_synced = |what: &str| {
        wait_for_status(a.path(), &format!("daemon did not sync ({what})"), &|s| {
            s["pending"] == 0 && s["last_sync_success"].is_string()
        })
    };
    let mut daemon = spawn_daemon();
    add_visit(a.path(), "first");
    let s = wait_synced("after the first record");
    assert_eq!(s["daemon_running"], true);
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let s: Value = serde_json::from_str(&ok(a.path(), &["status", "--json"])).unwrap();
    assert_eq!(s["daemon_running"], false, "the lock died with the process");
    add_visit(a.path(), "while the daemon was dead");
    let mut daemon = spawn_daemon();
    wait_synced("after restart");
    let _ = daemon.kill();
    daemon.wait().unwrap();
    let b = laptop(&hub, "mjolby", "B");
    ok(b.path(), &["sync"]);
    assert_eq!(exported(b.path()).len(), 2);
}

/// Writes `n` valid visit records of `org` as JSONL (for a fast import).
fn visits_jsonl(path: &Path, org: &str, n: usize) {
    let mut text = String::new();
    for i in 0..n {
        let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
        let mut rec = outpost_proto::fixtures::visit_fields_at(
            org,
            "import",
            id.parse().unwrap(),
            outpost_proto::fixtures::now(),
        );
        rec.insert(
            "note".into(),
            serde_json::json!(format!("Hjälp med inloggning, besök nummer {i}")),
        );
        let rec = serde_json::Value::Object(rec.into_iter().collect());
        text.push_str(&rec.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn kill_9_of_the_hub_in_the_middle_of_a_sync_loses_nothing() {
    let mut hub = HubProc::with_mjolby();
    let a = laptop(&hub, "mjolby", "A");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("visits.jsonl");
    let n = 4500; // three push batches of 2,000
    visits_jsonl(&file, "mjolby", n);
    ok(a.path(), &["import", file.to_str().unwrap()]);
    let wal = hub.dir.path().join("hub.db-wal");
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let before = size(&wal);
    let mut sync = clean(
        Command::new(bin("outpost"))
            .arg("--data-dir")
            .arg(a.path())
            .arg("sync"),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Kill the hub as soon as it has committed the first batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while size(&wal) <= before + 64 * 1024 {
        assert!(Instant::now() < deadline, "the hub never committed a batch");
        std::thread::sleep(Duration::from_millis(2));
    }
    hub.kill9();
    let status = sync.wait().unwrap();
    assert!(!status.success(), "the sync was cut off by the hub's death");
    let s: Value = serde_json::from_str(&ok(a.path(), &["status", "--json"])).unwrap();
    let pending = s["pending"].as_u64().unwrap();
    // The hub may have committed a batch whose answer never arrived: the
    // laptop then still counts it as waiting, and resending is harmless.
    assert!(pending > 0, "records still wait for the hub: {pending}");
    hub.spawn();
    ok(a.path(), &["sync"]);
    let b = laptop(&hub, "mjolby", "B");
    ok(b.path(), &["sync"]);
    let eb = exported(b.path());
    assert_eq!(eb.len(), n, "every record arrived exactly once");
    assert_eq!(exported(a.path()), eb);
}

/// The periodic timer is an hour away, so only the store watcher can make
/// the daemon sync a record added after its start-up sync.
#[test]
fn the_daemon_syncs_a_new_record_because_it_watches_the_store() {
    let hub = HubProc::with_mjolby();
    let a = laptop(&hub, "mjolby", "A");
    let mut daemon = spawn_daemon(a.path(), 3600);
    let first = wait_for_status(a.path(), "no start-up sync", &|s| {
        s["last_sync_success"].is_string()
    });
    add_visit(a.path(), "after start-up");
    wait_for_status(a.path(), "the new record was not synced", &|s| {
        s["pending"] == 0 && s["last_sync_success"] != first["last_sync_success"]
    });
    let _ = daemon.kill();
    daemon.wait().unwrap();
    let b = laptop(&hub, "mjolby", "B");
    ok(b.path(), &["sync"]);
    assert_eq!(exported(b.path()).len(), 1);
}

/// The admin's restore procedure with real processes: stop the hub, put
/// the backup in place, `outpostd hub restored`, start the hub. A record
/// acknowledged after the backup comes back from the laptop that has it,
/// and `outpost sync` says what happened.
#[test]
fn restoring_the_hub_from_a_backup_loses_no_record() {
    let mut hub = HubProc::with_mjolby();
    let a = laptop(&hub, "mjolby", "A");
    let b = laptop(&hub, "mjolby", "B");
    add_visit(a.path(), "before the backup");
    ok(a.path(), &["sync"]);

    hub.kill9();
    let backup = tempfile::tempdir().unwrap();
    let files = |from: &Path, to: &Path| {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    };
    files(hub.dir.path(), backup.path());
    hub.spawn();
    add_visit(a.path(), "acknowledged after the backup");
    ok(a.path(), &["sync"]);
    ok(b.path(), &["sync"]);
    assert_eq!(exported(b.path()).len(), 2);

    hub.kill9();
    for entry in std::fs::read_dir(hub.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    files(backup.path(), hub.dir.path());
    let out = clean(
        Command::new(bin("outpostd"))
            .args(["hub", "restored", "--data-dir"])
            .arg(hub.dir.path()),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hub.spawn();

    let out = run(a.path(), &["sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("restored from a backup"), "{said}");
    ok(b.path(), &["sync"]);
    let c = laptop(&hub, "mjolby", "C");
    ok(c.path(), &["sync"]);
    assert_eq!(
        exported(c.path()).len(),
        2,
        "the hub has both records again"
    );
    assert_eq!(exported(a.path()), exported(c.path()));
    assert_eq!(exported(b.path()), exported(c.path()));
}

/// `outpostd hub` takes its settings from `hub.toml` and `OUTPOST_HUB_*`
/// (flags win), and says what to fix when they ask for something it will
/// not do.
#[test]
fn the_hub_reads_hub_toml_and_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let init = clean(
        Command::new(bin("outpostd"))
            .args(["hub", "init", "--data-dir"])
            .arg(dir.path()),
    )
    .output()
    .unwrap();
    assert!(init.status.success());
    let port = free_port();
    std::fs::write(
        dir.path().join("hub.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let mut child = clean(
        Command::new(bin("outpostd"))
            .args(["hub", "--data-dir"])
            .arg(dir.path()),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let up = listening(port);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(up, "the hub did not listen on the port hub.toml names");

    // Refusals name what to change: plain HTTP off loopback (from the
    // environment), and a database this build does not have.
    let refused = |envs: &[(&str, &str)]| {
        let mut cmd = Command::new(bin("outpostd"));
        clean(cmd.args(["hub", "--data-dir"]).arg(dir.path()));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{envs:?} was accepted");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let open = format!("0.0.0.0:{}", free_port());
    let err = refused(&[("OUTPOST_HUB_LISTEN", open.as_str())]);
    assert!(err.contains("--tls-cert"), "{err}");
    let err = refused(&[("OUTPOST_HUB_DATABASE", "postgres://hub@localhost/outpost")]);
    assert!(err.contains("database"), "{err}");
}

/// A laptop store and a hub database written by the previous version
/// (`tests/fixtures/v1`, made by the release binaries of commit f1fb31a)
/// open unchanged: every record reads back, the pending one syncs, the
/// hub (migrated to organisation-scoped ids on open) serves the merged
/// records to a new laptop, and the old erasure still holds.
#[test]
fn stores_made_by_the_previous_version_open_and_sync() {
    const V1: &str = "9bceeffb-97f4-4d92-972f-5b1f62b3eedf";
    const V2: &str = "b24ffa3b-d9b6-471c-8bbe-10b76a83ab9c";
    const V3: &str = "b6be0dd3-f6fe-440d-8108-6cb7e69972e3";
    const V4: &str = "5298f047-6d3e-479e-b9fb-d244d297dd40";
    const COURSE: &str = "4e8b96cc-1619-40f3-8705-cd4ea9f997b4";
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1");
    let copy = |from: &str| {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(fixtures.join(from)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        dir
    };
    let hub_dir = copy("hub");
    let token = std::fs::read_to_string(fixtures.join("admin_token"))
        .unwrap()
        .trim()
        .to_string();
    let port = free_port();
    let mut hub = HubProc {
        dir: hub_dir,
        url: format!("http://127.0.0.1:{port}"),
        token,
        child: None,
        nofile: None,
    };
    hub.spawn();

    let laptop = copy("laptop");
    let config = laptop.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let moved = text.replace("http://127.0.0.1:47391", &hub.url);
    assert_ne!(text, moved, "the fixture names the hub it synced with");
    std::fs::write(&config, moved).unwrap();

    let ids = |dir: &Path| -> Vec<String> {
        let list: Value = serde_json::from_str(&ok(dir, &["list", "--json"])).unwrap();
        let mut ids: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut want = vec![V1, V2, V4, COURSE];
    want.sort();
    assert_eq!(ids(laptop.path()), want, "every record reads back");
    let v1: Value = serde_json::from_str(&ok(laptop.path(), &["show", V1, "--json"])).unwrap();
    assert_eq!(v1["outcome"], "partly", "the edit is there: {v1}");
    assert!(run(laptop.path(), &["show", V3]).status.code() != Some(0));

    // The unsynced record goes up, nothing else changes.
    let sync = run(laptop.path(), &["sync"]);
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    assert_eq!(ids(laptop.path()), want);

    // A new laptop gets everything the old hub held, and not the erased one.
    let scratch = tempfile::tempdir().unwrap();
    let code = hub.admin(scratch.path(), &["invite", "--org", "mjolby"]);
    let fresh = tempfile::tempdir().unwrap();
    ok(
        fresh.path(),
        &[
            "init",
            "--org",
            "mjolby",
            "--site",
            "Skänninge bibliotek",
            "--staff",
            "CD",
        ],
    );
    ok(fresh.path(), &["enroll", &hub.url, &code]);
    ok(fresh.path(), &["sync"]);
    assert_eq!(ids(fresh.path()), want);
    let course: Value =
        serde_json::from_str(&ok(fresh.path(), &["show", COURSE, "--json"])).unwrap();
    assert_eq!(course["sessions"][0]["participants"], 8, "{course}");
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The open-file soft limit of a process.
fn nofile_soft(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Hostile sockets (DESIGN §7): a hub started at the usual soft limit of
/// 1,024 open files, with 1,000 idle or half-sent connections open, still
/// completes a normal sync; then tokenless 15 MiB bodies are refused from
/// their headers, and the hub's memory comes back down. Liveness only, with
/// generous bounds; `bench/hostile.sh` measures the figures.
#[test]
fn a_sync_completes_beside_1000_idle_or_half_sent_sockets_and_tokenless_bodies_cost_no_memory() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    // This process holds the 1,000 sockets.
    rlimit::increase_nofile_limit(4096).unwrap();
    let mut hub = HubProc::start();
    let scratch = tempfile::tempdir().unwrap();
    hub.admin(scratch.path(), &["org", "add", "mjolby", "Mjölby kommun"]);
    hub.kill9();
    hub.nofile = Some(1024);
    hub.spawn();
    let pid = hub.child.as_ref().unwrap().id();
    assert!(
        nofile_soft(pid) > 1024,
        "the hub raises its own open-file soft limit at start"
    );
    let a = laptop(&hub, "mjolby", "Mjölby bibliotek");
    add_visit(a.path(), "före");
    let addr = hub.url.trim_start_matches("http://").to_string();

    let mut sockets = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(&addr).unwrap();
        if i % 2 == 1 {
            // Half-sent: a request head that never ends.
            s.write_all(b"POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Le")
                .unwrap();
        }
        sockets.push(s);
    }
    // A normal sync, with all of them open.
    let out = run(a.path(), &["sync"]);
    assert!(
        out.status.success(),
        "sync beside 1,000 idle sockets failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(sockets);

    // Tokenless 15 MiB bodies, 8 at a time: each is refused from its
    // headers, so the hub buffers none of them.
    let before = rss_kib(pid);
    let body = vec![b'x'; 15 * 1024 * 1024];
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..5 {
                    let mut s = TcpStream::connect(&addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let head = format!(
                        "POST /v1/sync/push HTTP/1.1\r\nHost: hub\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    // The hub may answer and close before the body is sent.
                    let _ = s.write_all(&body);
                    let mut answer = [0u8; 64];
                    let n = s.read(&mut answer).unwrap_or(0);
                    let text = String::from_utf8_lossy(&answer[..n]);
                    assert!(
                        n == 0 || text.starts_with("HTTP/1.1 401"),
                        "a tokenless body got {text:?}"
                    );
                }
            });
        }
    });
    let after = rss_kib(pid);
    assert!(
        after.saturating_sub(before) < 100 * 1024,
        "40 tokenless 15 MiB bodies grew the hub from {before} KiB to {after} KiB"
    );
    add_visit(a.path(), "efter");
    ok(a.path(), &["sync"]);
}
