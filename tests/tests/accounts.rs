//! Hub accounts and the audit log (DESIGN §3 "Hub admin", §9): named
//! admin tokens and read-only coordinator tokens scoped to orgs, revoke
//! and rotate, a lost token replaced on the hub machine while the hub
//! runs (SQLite and PostgreSQL), an audit entry for each admin action and
//! an edited entry found by `outpost admin audit`. A real `outpostd hub`
//! process, laptops and admins driven through the `outpost` CLI, and raw
//! HTTP for the walk over every admin route.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_hub::server::{ADMIN_ROUTES, Access};
use outpost_hub_postgres::test_pg::TestDb;
use outpost_tests::{TestDir, bin, clean_env};
use serde_json::Value;

const MJOLBY: &str = "mjolby";
const BOXHOLM: &str = "boxholm";

/// A hub process (SQLite in its data dir, or a PostgreSQL database),
/// killed when dropped.
struct Hub {
    dir: tempfile::TempDir,
    database: Option<String>,
    url: String,
    child: Child,
    /// Runs the CLI (its own empty data dir).
    cli: TestDir,
}

/// `outpostd ARGS` with a clean environment: (ok, stdout, stderr).
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

impl Hub {
    fn start(database: Option<&str>) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap().to_string();
        let mut init = vec!["hub", "init", "--data-dir", &data_dir];
        if let Some(db) = database {
            init.extend(["--database", db]);
        }
        let (ok, token, stderr) = outpostd(&init);
        assert!(ok, "{stderr}");
        Hub::spawn(dir, database, &token)
    }

    /// Runs the hub on `dir` (and `database`), with `token` as "root".
    fn spawn(dir: tempfile::TempDir, database: Option<&str>, token: &str) -> Hub {
        let data_dir = dir.path().to_str().unwrap().to_string();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(bin("outpostd"));
        cmd.args(["hub", "--data-dir", &data_dir])
            .args(["--listen", &format!("127.0.0.1:{port}")]);
        if let Some(db) = database {
            cmd.args(["--database", db]);
        }
        let child = clean_env(&mut cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the hub did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let hub = Hub {
            dir,
            database: database.map(str::to_string),
            url: format!("http://127.0.0.1:{port}"),
            child,
            cli: TestDir::new(),
        };
        hub.save_token("root", token);
        hub
    }

    /// Keeps `token` in a file named `name` (tokens never go in argv).
    fn save_token(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.token"));
        std::fs::write(&path, token).unwrap();
        path
    }

    fn args<'a>(&'a self, token_file: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["admin", "--hub", &self.url, "--token-file", token_file];
        full.extend_from_slice(args);
        full
    }

    fn token_path(&self, who: &str) -> String {
        self.dir
            .path()
            .join(format!("{who}.token"))
            .to_str()
            .unwrap()
            .to_string()
    }

    /// `outpost admin ARGS` as `who`, which must succeed: stdout.
    fn ok(&self, who: &str, args: &[&str]) -> String {
        let path = self.token_path(who);
        self.cli.ok(&self.args(&path, args))
    }

    /// `outpost admin ARGS` as `who`, which must fail cleanly: stderr.
    fn fails(&self, who: &str, args: &[&str]) -> String {
        let path = self.token_path(who);
        self.cli.fails(&self.args(&path, args))
    }

    fn json(&self, who: &str, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(who, &full)).unwrap()
    }

    /// `outpost admin token create …` as root; keeps the token as `who`
    /// and answers its id.
    fn create_token(&self, who: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", who];
        args.extend_from_slice(extra);
        let made = self.json("root", &args);
        let token = made["admin_token"].as_str().unwrap();
        assert!(token.starts_with("opa_"));
        self.save_token(who, token);
        made["id"].as_str().unwrap().to_string()
    }

    /// A laptop of `org` enrolled with this hub, with one visit synced.
    fn laptop(&self, org: &str, site: &str) -> (TestDir, String) {
        let td = TestDir::new();
        let device = td.ok(&["init", "--org", org, "--site", site, "--staff", "AB"]);
        let code = self.ok("root", &["invite", "--org", org]);
        td.ok(&["enroll", &self.url, code.trim()]);
        td.add_visit(&[]);
        td.ok(&["sync"]);
        (td, device.trim().to_string())
    }

    fn audit(&self, who: &str, args: &[&str]) -> Value {
        let mut full = vec!["audit"];
        full.extend_from_slice(args);
        self.json(who, &full)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request: (status, body).
fn http(url: &str, method: &str, path: &str, token: &str) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = "{}";
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn a_coordinator_reads_its_orgs_only_and_is_refused_every_change() {
    let hub = Hub::start(None);
    hub.ok("root", &["org", "add", MJOLBY, "Mjölby kommun"]);
    hub.ok("root", &["org", "add", BOXHOLM, "Boxholms kommun"]);
    let (_m, m_device) = hub.laptop(MJOLBY, "Mjölby bibliotek");
    let (_b, b_device) = hub.laptop(BOXHOLM, "Boxholms bibliotek");
    hub.create_token("coord", &["--coordinator", "--org", MJOLBY]);

    // Reads of its own org work.
    let stats = hub.json("coord", &["stats", "--org", MJOLBY]);
    assert_eq!(stats["total"]["visits"], 1, "{stats}");
    let devices = hub.json("coord", &["devices"]);
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![m_device.as_str()], "only its org's laptops");
    let out = hub.cli.path().join("m.csv");
    hub.ok(
        "coord",
        &["export", "--format", "csv", "-o", out.to_str().unwrap()],
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.contains("Mjölby bibliotek") && !csv.contains("Boxholm"));
    let report = hub.cli.path().join("m.html");
    hub.ok(
        "coord",
        &[
            "report",
            "--year",
            &chrono::Local::now().format("%Y").to_string(),
            "--org",
            MJOLBY,
            "-o",
            report.to_str().unwrap(),
        ],
    );
    let orgs = hub.ok("coord", &["org", "list"]);
    assert!(orgs.contains(MJOLBY) && !orgs.contains(BOXHOLM), "{orgs}");

    // Another org's data: refused.
    let err = hub.fails("coord", &["stats", "--org", BOXHOLM]);
    assert!(err.contains("may not") && err.contains(BOXHOLM), "{err}");
    hub.fails("coord", &["devices", "--org", BOXHOLM]);
    // Every change, even in its own org: refused, saying why.
    for args in [
        vec!["invite", "--org", MJOLBY],
        vec!["org", "add", "ny", "Ny kommun"],
        vec!["revoke", m_device.as_str()],
        vec!["sites", "add", "Nytt kontor", "--org", MJOLBY],
        vec!["token", "list"],
        vec!["token", "create", "--name", "x"],
    ] {
        let err = hub.fails("coord", &args);
        assert!(err.contains("read-only coordinator"), "{args:?}: {err}");
    }

    // Every admin route the hub has: a change is refused (403, before any
    // body is read), a read of another org answers nothing of it. A route
    // added without its access declared cannot exist (the router is built
    // from ADMIN_ROUTES), and one added as a read that leaks shows here.
    let coord = std::fs::read_to_string(hub.token_path("coord")).unwrap();
    for route in ADMIN_ROUTES {
        let path = route.path.replace("{id}", &b_device);
        match route.access {
            Access::Change => {
                let (status, body) = http(&hub.url, route.method, &path, &coord);
                assert_eq!(status, 403, "{route:?}: {body}");
                assert!(body.contains("read-only coordinator"), "{route:?}: {body}");
            }
            Access::Read => {
                let query = format!("{path}?org={BOXHOLM}");
                let (status, body) = http(&hub.url, route.method, &query, &coord);
                assert!(status < 500, "{route:?}: {status} {body}");
                assert!(
                    status == 403 || !body.contains(BOXHOLM),
                    "{route:?} showed another org: {status} {body}"
                );
                assert!(!body.contains(&b_device), "{route:?}: {body}");
            }
        }
    }
    // The root token is allowed what the coordinator was refused.
    let root = std::fs::read_to_string(hub.token_path("root")).unwrap();
    let (status, _) = http(&hub.url, "GET", "/v1/admin/tokens", &root);
    assert_eq!(status, 200);

    // The coordinator's audit view holds its org's entries only.
    let audit = hub.audit("coord", &[]);
    let entries = audit["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["org"] == MJOLBY), "{audit}");
    assert_eq!(audit["verdict"]["intact"], true);
}

#[test]
fn tokens_are_listed_rotated_and_revoked_and_the_last_admin_stays() {
    let hub = Hub::start(None);
    hub.ok("root", &["org", "add", MJOLBY, "Mjölby kommun"]);
    let bo = hub.create_token("Bo Admin", &[]);
    assert!(bo.starts_with("tok_") && bo.len() == 12, "{bo}");
    hub.create_token("Cecilia", &["--coordinator", "--org", MJOLBY]);

    let list = hub.json("root", &["token", "list"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["name"], "admin");
    assert_eq!(rows[0]["orgs"], Value::Null);
    assert!(rows[0]["last_used"].is_string(), "root was used: {list}");
    assert_eq!(rows[1]["name"], "Bo Admin");
    assert_eq!(rows[2]["role"], "coordinator");
    assert_eq!(rows[2]["orgs"], serde_json::json!([MJOLBY]));
    let text = hub.ok("root", &["token", "list"]);
    assert!(text.contains("Cecilia") && text.contains(&bo), "{text}");
    assert!(!text.contains("opa_") && !list.to_string().contains("opa_"));

    // Rotate by a prefix of the id: the old secret stops at once.
    let old = std::fs::read_to_string(hub.token_path("Bo Admin")).unwrap();
    let rotated = hub.json("root", &["token", "rotate", &bo[..8]]);
    assert_eq!(rotated["id"], bo.as_str());
    let new = rotated["admin_token"].as_str().unwrap();
    assert_ne!(new, old);
    let err = hub.fails("Bo Admin", &["org", "list"]);
    assert!(err.contains("unknown or revoked"), "{err}");
    hub.save_token("Bo Admin", new);
    hub.ok("Bo Admin", &["org", "list"]);

    // Bo revokes root; then Bo is the last hub-wide admin and cannot go.
    let root_id = rows[0]["id"].as_str().unwrap().to_string();
    hub.ok("Bo Admin", &["token", "revoke", &root_id]);
    hub.fails("root", &["org", "list"]);
    let err = hub.fails("Bo Admin", &["token", "revoke", &bo]);
    assert!(err.contains("last active hub-wide admin"), "{err}");
    hub.ok("Bo Admin", &["org", "list"]);
    let err = hub.fails("Bo Admin", &["token", "revoke", "tok_"]);
    assert!(err.contains("at least 4"), "{err}");
    let list = hub.json("Bo Admin", &["token", "list"]);
    assert!(list[0]["revoked_at"].is_string());
    assert!(list[1]["revoked_at"].is_null());
}

/// The lost-token path on one hub: a new admin token made by `outpostd hub
/// token new` while the hub runs works at once, the old ones still work,
/// and the audit log says it was made on the hub machine.
fn replace_a_lost_token(hub: &Hub) {
    let data_dir = hub.dir.path().to_str().unwrap().to_string();
    let mut args = vec!["hub", "token", "new", "--data-dir", &data_dir];
    if let Some(db) = &hub.database {
        args.extend(["--database", db.as_str()]);
    }
    args.extend(["--name", "Ersättning"]);
    let (ok, token, stderr) = outpostd(&args);
    assert!(ok, "{stderr}");
    assert!(
        token.starts_with("opa_") && !token.contains('\n'),
        "{token}"
    );
    assert!(stderr.contains("revoke"), "{stderr}");
    hub.save_token("new", &token);
    hub.ok("new", &["org", "add", MJOLBY, "Mjölby kommun"]);
    hub.ok("root", &["org", "list"]);
    let audit = hub.audit("new", &[]);
    let made = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail"].as_str().unwrap().contains("Ersättning"))
        .unwrap_or_else(|| panic!("{audit}"))
        .clone();
    assert_eq!(made["actor_name"], "hub machine");
    assert_eq!(made["actor_id"], Value::Null);
    assert_eq!(made["action"], "token.create");
    assert_eq!(audit["verdict"]["intact"], true);
}

#[test]
fn a_lost_token_is_replaced_on_the_hub_machine_while_the_hub_runs() {
    replace_a_lost_token(&Hub::start(None));
}

#[test]
fn a_lost_token_is_replaced_on_the_hub_machine_with_postgresql() {
    let db = TestDb::new();
    replace_a_lost_token(&Hub::start(Some(&db.url)));
}

#[test]
fn every_admin_action_is_audited_and_an_edited_entry_is_detected() {
    let hub = Hub::start(None);
    hub.ok("root", &["org", "add", MJOLBY, "Mjölby kommun"]);
    let (laptop, device) = hub.laptop(MJOLBY, "Mjölby bibliotek");
    let record = laptop.list(&[])[0]["id"].as_str().unwrap().to_string();
    let out = |name: &str| hub.cli.path().join(name).to_str().unwrap().to_string();
    hub.ok(
        "root",
        &["export", "--format", "jsonl", "-o", &out("x.jsonl")],
    );
    hub.ok("root", &["stats", "--org", MJOLBY]);
    let year = chrono::Local::now().format("%Y").to_string();
    hub.ok(
        "root",
        &[
            "report",
            "--year",
            &year,
            "--org",
            MJOLBY,
            "-o",
            &out("r.html"),
        ],
    );
    let catalogue = hub.cli.path().join("catalogue.toml");
    std::fs::write(
        &catalogue,
        "[[service]]\nname = \"Färdtjänst\"\nagency = \"Region Östergötland\"\nscope = \"other\"\n",
    )
    .unwrap();
    hub.ok(
        "root",
        &[
            "catalogue",
            "set",
            catalogue.to_str().unwrap(),
            "--org",
            MJOLBY,
        ],
    );
    hub.ok("root", &["sites", "add", "Skänninge", "--org", MJOLBY]);
    hub.ok("root", &["delete", &record, "--org", MJOLBY]);
    hub.ok("root", &["revoke", &device]);
    let id = hub.create_token("Bo", &[]);
    hub.ok("root", &["token", "rotate", &id]);
    hub.ok("root", &["token", "revoke", &id]);

    let audit = hub.audit("root", &[]);
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for wanted in [
        "token.create",
        "org.add",
        "invite",
        "export",
        "stats",
        "report",
        "catalogue.set",
        "sites.edit",
        "record.erase",
        "device.revoke",
        "token.rotate",
        "token.revoke",
    ] {
        assert!(actions.contains(&wanted), "no {wanted} in {actions:?}");
    }
    assert_eq!(actions[0], "token.create", "hub init comes first");
    assert_eq!(entries[0]["actor_name"], "hub machine");
    let erase = entries
        .iter()
        .find(|e| e["action"] == "record.erase")
        .unwrap();
    assert_eq!(erase["actor_name"], "admin");
    assert_eq!(erase["org"], MJOLBY);
    assert!(erase["actor_id"].as_str().unwrap().starts_with("tok_"));
    // Never a secret, never record content.
    let all = audit.to_string();
    assert!(!all.contains("opa_") && !all.contains("opd_"), "{all}");
    let positions: Vec<u64> = entries
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (1..=entries.len() as u64).collect::<Vec<_>>());
    let text = hub.ok("root", &["audit"]);
    assert!(
        text.contains("record.erase") && text.contains("hub machine"),
        "{text}"
    );

    // Someone with the database file edits an entry while the hub runs.
    let db = rusqlite::Connection::open(hub.dir.path().join("hub.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let n = db
        .execute(
            "UPDATE audit_log SET detail = 'nothing happened' WHERE action = 'record.erase'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    let edited = erase["position"].as_u64().unwrap();
    let err = hub.fails("root", &["audit"]);
    assert!(
        err.contains(&format!("broken at entry {edited}")) && err.contains("changed"),
        "{err}"
    );
    let path = hub.token_path("root");
    let (status, stdout, _) = hub.cli.run(&hub.args(&path, &["--json", "audit"]));
    assert!(!status.success());
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["verdict"]["intact"], false);
    assert_eq!(answer["verdict"]["broken_at"], edited);
}

/// A hub database from before accounts (`tests/fixtures/v1`, made by the
/// release binaries of commit f1fb31a): its admin token keeps working,
/// as an admin account with a generated id and name, and the first entry
/// of the new audit log chains from nothing.
#[test]
fn a_token_from_before_accounts_keeps_working_as_a_named_admin() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures.join("hub/hub.db"), dir.path().join("hub.db")).unwrap();
    let token = std::fs::read_to_string(fixtures.join("admin_token")).unwrap();
    let hub = Hub::spawn(dir, None, token.trim());
    let list = hub.json("root", &["token", "list"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["name"], "admin (made before account names)");
    assert_eq!(rows[0]["role"], "admin");
    assert_eq!(rows[0]["orgs"], Value::Null);
    let id = rows[0]["id"].as_str().unwrap();
    assert!(id.starts_with("tok_") && id.len() == 12, "{id}");
    hub.create_token("Ny", &[]);
    let audit = hub.audit("Ny", &[]);
    assert_eq!(audit["entries"][0]["position"], 1);
    assert_eq!(audit["entries"][0]["actor_id"], id);
    assert_eq!(audit["verdict"]["intact"], true);
}
