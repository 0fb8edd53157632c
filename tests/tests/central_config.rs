//! The org's catalogue and site list kept on the hub (DESIGN §2, §6): set by
//! an admin, received by laptops at sync, used offline, and the same
//! statistics on every laptop and on the hub. A real `outpostd hub`
//! process and laptops driven through the `outpost` CLI.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_tests::{ORG, TestDir, bin, clean_env};
use serde_json::{Value, json};

/// A hub process with the organisation `mjolby`, killed when dropped.
struct Hub {
    dir: tempfile::TempDir,
    url: String,
    child: Child,
}

impl Hub {
    fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let out = clean_env(
            Command::new(bin("outpostd"))
                .args(["hub", "init", "--data-dir"])
                .arg(dir.path()),
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.path().join("admin-token"), out.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = clean_env(
            Command::new(bin("outpostd"))
                .args(["hub", "--data-dir"])
                .arg(dir.path())
                .args(["--listen", &format!("127.0.0.1:{port}")]),
        )
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
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        hub.admin(&["org", "add", ORG, "Mjölby kommun"]);
        hub
    }

    fn admin_args<'a>(&'a self, token: &'a str, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = vec!["admin", "--hub", &self.url, "--token-file", token];
        full.extend_from_slice(args);
        full
    }

    /// `outpost admin …` with the token from a file (never in argv).
    fn admin(&self, args: &[&str]) -> String {
        let token = self.dir.path().join("admin-token");
        let token = token.to_str().unwrap();
        let scratch = TestDir::new();
        scratch.ok(&self.admin_args(token, args))
    }

    fn admin_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.admin(&full)).unwrap()
    }

    fn laptop(&self, site: &str) -> TestDir {
        let td = TestDir::new();
        td.ok(&["init", "--org", ORG, "--site", site, "--staff", "AB"]);
        let code = self.admin(&["invite", "--org", ORG]);
        td.ok(&["enroll", &self.url, code.trim()]);
        td
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service the built-in catalogue does not know (agency `unknown`) until
/// the org's catalogue on the hub names it.
const LOCAL_SERVICE: &str = "Färdtjänst Östergötland";

const HUB_CATALOGUE: &str = r#"
[[service]]
name = "Färdtjänst Östergötland"
agency = "Region Östergötland"
scope = "other"
"#;

/// The same service as the municipality's own: what a stray local file on
/// one laptop says.
const LOCAL_CATALOGUE: &str = r#"
[[service]]
name = "Färdtjänst Östergötland"
agency = "Mjölby kommun"
scope = "own"
"#;

fn visit(td: &TestDir, service: &str, site: &str) {
    td.add_visit(&["--date", "2025-04-02", "--service", service, "--site", site]);
}

fn stats(td: &TestDir, by: &str) -> Value {
    td.json(&["--json", "stats", "--year", "2025", "--by", by])
}

/// The figures of a stats answer, without the note that names where they
/// were counted.
fn figures(v: &Value) -> Value {
    json!({"total": v["total"], "groups": v["groups"]})
}

fn group<'a>(v: &'a Value, dim: &str, key: &str) -> &'a Value {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["keys"][dim] == json!(key))
        .unwrap_or_else(|| panic!("no {dim} group {key:?} in {v}"))
}

#[test]
fn laptops_and_the_hub_count_alike_after_a_catalogue_change_on_the_hub() {
    let hub = Hub::start();
    let a = hub.laptop("Mjölby bibliotek");
    let b = hub.laptop("Skänninge bibliotek");
    // Typed three ways, before any site list exists: stored as typed.
    visit(&a, LOCAL_SERVICE, "Mjölby bibliotek");
    visit(&a, "BankID", "Mjolby Bibliotek");
    visit(&b, LOCAL_SERVICE, "MJÖLBY bibliotek");
    visit(&b, "Skola", "Väderstad skola");
    visit(&b, "BankID", "Skänninge bibliotek");
    a.ok(&["sync"]);
    b.ok(&["sync"]);
    a.ok(&["sync"]);

    let before = stats(&a, "agency");
    assert_eq!(before["total"]["visits"], json!(5), "{before}");
    assert_eq!(
        before["total"]["visits_unknown_agency"],
        json!(2),
        "{before}"
    );

    // The admin moves the service from "unknown" to another agency and
    // lists the org's sites, on the hub only.
    let catalogue = hub.dir.path().join("catalogue.toml");
    std::fs::write(&catalogue, HUB_CATALOGUE).unwrap();
    hub.admin(&[
        "catalogue",
        "set",
        catalogue.to_str().unwrap(),
        "--org",
        ORG,
    ]);
    let sites = hub.admin_json(&[
        "sites",
        "add",
        "Mjölby bibliotek",
        "Skänninge bibliotek",
        "--org",
        ORG,
    ]);
    assert_eq!(
        sites["sites"],
        json!(["Mjölby bibliotek", "Skänninge bibliotek"])
    );
    let shown = hub.admin_json(&["catalogue", "show", "--org", ORG]);
    assert!(shown["catalogue_version"].as_u64().unwrap() >= 1, "{shown}");

    // Not synced yet: the laptops still count with what they had.
    assert_eq!(
        stats(&a, "agency")["total"]["visits_unknown_agency"],
        json!(2)
    );
    a.ok(&["sync"]);
    b.ok(&["sync"]);

    for by in ["agency", "site", "site,month", "service"] {
        let on_a = stats(&a, by);
        let on_b = stats(&b, by);
        let on_hub = hub.admin_json(&["stats", "--year", "2025", "--by", by, "--org", ORG]);
        assert_eq!(
            figures(&on_a),
            figures(&on_hub),
            "laptop A and the hub, --by {by}"
        );
        assert_eq!(
            figures(&on_b),
            figures(&on_hub),
            "laptop B and the hub, --by {by}"
        );
    }
    let after = stats(&a, "agency");
    assert_eq!(after["total"]["visits_unknown_agency"], json!(0), "{after}");
    assert_eq!(after["total"]["visits_other_agency"], json!(4), "{after}");
    assert_eq!(
        group(&after, "agency", "Region Östergötland")["totals"]["visits"],
        json!(2),
        "{after}"
    );

    // Site list matching: three spellings are one listed site, an unlisted
    // name is counted as typed; the records themselves are not rewritten.
    let by_site = stats(&b, "site");
    assert_eq!(
        group(&by_site, "site", "Mjölby bibliotek")["totals"]["visits"],
        json!(3),
        "{by_site}"
    );
    assert_eq!(
        group(&by_site, "site", "Väderstad skola")["totals"]["visits"],
        json!(1)
    );
    assert_eq!(by_site["groups"].as_array().unwrap().len(), 3, "{by_site}");
    let typed: Vec<String> = b
        .list(&[])
        .iter()
        .map(|r| r["site"].as_str().unwrap().to_string())
        .collect();
    assert!(typed.contains(&"MJÖLBY bibliotek".to_string()), "{typed:?}");
    // A new visit typed in another case is saved in the listed spelling.
    visit(&b, "BankID", "skanninge BIBLIOTEK");
    assert!(
        b.list(&[])
            .iter()
            .filter(|r| r["site"] == json!("Skänninge bibliotek"))
            .count()
            == 2
    );

    // The report names the catalogue version it used.
    let version = shown["catalogue_version"].as_u64().unwrap();
    let html = a.path().join("rapport.html");
    a.ok(&["report", "--year", "2025", "-o", html.to_str().unwrap()]);
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(
        text.contains(&format!("navets katalog för {ORG}, version {version}")),
        "the report names the hub's catalogue version {version}"
    );

    // A local file on an enrolled laptop changes nothing and only warns.
    std::fs::write(a.path().join("catalogue.toml"), LOCAL_CATALOGUE).unwrap();
    assert_eq!(figures(&stats(&a, "agency")), figures(&after));
    let doctor = a.json(&["--json", "doctor"]);
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == json!("catalogue"))
        .unwrap()
        .clone();
    assert_eq!(check["warning"], json!(true), "{doctor}");
    assert!(
        check["detail"].as_str().unwrap().contains("is not used"),
        "{check}"
    );
    let text = a.ok(&["doctor"]);
    assert!(text.contains("WARN catalogue"), "{text}");

    // Offline (the hub gone), the laptop still counts with the hub's copy.
    drop(hub);
    assert_eq!(figures(&stats(&a, "agency")), figures(&after));
}

#[test]
fn an_unenrolled_laptop_uses_its_local_catalogue() {
    let td = TestDir::initialised();
    visit(&td, LOCAL_SERVICE, "Mjölby bibliotek");
    let s = stats(&td, "agency");
    assert_eq!(s["total"]["visits_unknown_agency"], json!(1), "{s}");
    std::fs::write(td.path().join("catalogue.toml"), LOCAL_CATALOGUE).unwrap();
    let s = stats(&td, "agency");
    assert_eq!(s["total"]["visits_own_agency"], json!(1), "{s}");
    assert_eq!(
        group(&s, "agency", "Mjölby kommun")["totals"]["visits"],
        json!(1)
    );
    let doctor = td.json(&["--json", "doctor"]);
    let check = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == json!("catalogue"))
        .unwrap()
        .clone();
    assert_eq!(check["ok"], json!(true), "{doctor}");
    assert!(check.get("warning").is_none(), "{check}");
}

#[test]
fn a_bad_catalogue_or_site_is_refused_by_the_hub_and_nothing_changes() {
    let hub = Hub::start();
    let bad = hub.dir.path().join("bad.toml");
    std::fs::write(&bad, "[[service]]\nname = \"X\"\nagnecy = \"Y\"\n").unwrap();
    let token = hub.dir.path().join("admin-token");
    let scratch = TestDir::new();
    let err = scratch.fails(&hub.admin_args(
        token.to_str().unwrap(),
        &["catalogue", "set", bad.to_str().unwrap(), "--org", ORG],
    ));
    assert!(err.contains("agnecy"), "{err}");
    let err = scratch.fails(&hub.admin_args(
        token.to_str().unwrap(),
        &["sites", "add", "Ring 070-123 45 67", "--org", ORG],
    ));
    assert!(!err.contains("070"), "the number is not echoed: {err}");
    let err = scratch.fails(&hub.admin_args(
        token.to_str().unwrap(),
        &["sites", "remove", "Boxholm", "--org", ORG],
    ));
    assert!(err.contains("not on the site list"), "{err}");
    let shown = hub.admin_json(&["catalogue", "show", "--org", ORG]);
    assert_eq!(shown["catalogue_version"], json!(0), "{shown}");
    let sites = hub.admin_json(&["sites", "list", "--org", ORG]);
    assert_eq!(sites["sites"], json!([]));
}

/// Site-list edits read the list, change it and write it back: made at
/// once by several admins, each must land (a write made from a stale read
/// is refused by the storage and made again over the newer list).
#[test]
fn site_list_edits_made_at_once_all_land() {
    let hub = Hub::start();
    let names: Vec<String> = (1..=8).map(|i| format!("Filial {i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let hub = &hub;
            s.spawn(move || hub.admin(&["sites", "add", name, "--org", ORG]));
        }
    });
    let sites = hub.admin_json(&["sites", "list", "--org", ORG]);
    let mut listed: Vec<String> = serde_json::from_value(sites["sites"].clone()).unwrap();
    listed.sort();
    assert_eq!(listed, names, "every concurrent edit landed");
}
