//! Device names and what a laptop reports about itself, with a real hub
//! process and laptops driven through the `outpost` CLI: names given at
//! enrolment or by default, site, staff and records waiting as `outpost
//! admin devices` shows them after a sync (complete or not), names with
//! personal data refused by the laptop and by the hub, and revoking by a
//! unique id prefix or an exact name.

use std::path::Path;

use outpost_proto::sync::{DeviceReport, EnrollRequest, PROTOCOL_VERSION, PushRequest};
use outpost_store::client::{ClientError, HubClient};
use outpost_tests::hub::{HubProc, add_visit, laptop_named, ok_at as ok, run_at as run};
use serde_json::Value;
use uuid::Uuid;

fn status(dir: &Path) -> Value {
    serde_json::from_str(&ok(dir, &["status", "--json"])).unwrap()
}

fn devices(hub: &HubProc, scratch: &Path) -> Vec<Value> {
    let text = hub.admin(scratch, &["devices", "--json"]);
    serde_json::from_str(&text).unwrap()
}

fn device<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("device {id} is not listed: {list:?}"))
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(!out.status.success(), "outpost {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn admin_devices_shows_each_laptops_name_site_staff_and_records_waiting() {
    let mut hub = HubProc::with_mjolby();
    let scratch = tempfile::tempdir().unwrap();
    let a = laptop_named(&hub, "mjolby", "Skänninge bibliotek", "AB", None);
    let b = laptop_named(
        &hub,
        "mjolby",
        "Mjölby bibliotek",
        "CD",
        Some("Mjölby datorhörnan"),
    );
    let (a_id, b_id) = (
        status(a.path())["device"].as_str().unwrap().to_string(),
        status(b.path())["device"].as_str().unwrap().to_string(),
    );
    let a_name = format!("Skänninge bibliotek · {}", &a_id[..4]);
    assert_eq!(
        status(a.path())["name"],
        a_name.as_str(),
        "the default name"
    );
    assert_eq!(status(b.path())["name"], "Mjölby datorhörnan");
    assert!(
        ok(a.path(), &["status"]).contains(&a_name),
        "`outpost status` shows the name"
    );

    // Known to the hub from enrolment on, before any sync.
    let list = devices(&hub, scratch.path());
    assert_eq!(device(&list, &a_id)["name"], a_name.as_str());
    assert_eq!(device(&list, &b_id)["name"], "Mjölby datorhörnan");

    add_visit(a.path(), "a");
    add_visit(b.path(), "b");
    add_visit(b.path(), "b2");
    ok(a.path(), &["sync"]);
    ok(b.path(), &["sync"]);
    let list = devices(&hub, scratch.path());
    for (id, name, site, staff) in [
        (&a_id, a_name.as_str(), "Skänninge bibliotek", "AB"),
        (&b_id, "Mjölby datorhörnan", "Mjölby bibliotek", "CD"),
    ] {
        let d = device(&list, id);
        assert_eq!(d["name"], name, "{d}");
        assert_eq!(d["site"], site, "{d}");
        assert_eq!(d["staff"], staff, "{d}");
        assert_eq!(d["waiting"], 0, "nothing waits after a complete sync: {d}");
        assert!(d["last_seen"].is_string(), "{d}");
        assert!(
            d["clock_offset_secs"].as_i64().unwrap().abs() < 300,
            "same machine, same clock: {d}"
        );
    }
    // The table for people: name, site, staff, waiting, state.
    let table = hub.admin(scratch.path(), &["devices"]);
    let line = table
        .lines()
        .find(|l| l.contains("Mjölby datorhörnan"))
        .unwrap_or_else(|| panic!("{table}"));
    for part in [&b_id[..8], "Mjölby bibliotek", "CD", "active"] {
        assert!(line.contains(part), "{part} missing from {line:?}");
    }

    // A rename reaches the hub with the next sync.
    ok(a.path(), &["rename", "Skänninge, studierummet"]);
    ok(a.path(), &["sync"]);
    let list = devices(&hub, scratch.path());
    assert_eq!(device(&list, &a_id)["name"], "Skänninge, studierummet");

    // A sync that does not finish: the restarted hub takes at most 2
    // documents a day from one laptop (it counts from its start), so a
    // push of 3 is refused whole. The laptop was still seen and said what waits: the
    // same count its `outpost status` shows.
    hub.kill9();
    std::fs::write(
        hub.dir.path().join("hub.toml"),
        "max_documents_per_device_per_day = 2\n",
    )
    .unwrap();
    hub.spawn();
    for n in 0..3 {
        add_visit(a.path(), &format!("offline {n}"));
    }
    assert_eq!(status(a.path())["pending"], 3);
    let err = fails(a.path(), &["sync"]);
    assert!(err.contains("a day"), "{err}");
    let list = devices(&hub, scratch.path());
    assert_eq!(device(&list, &a_id)["waiting"], 3, "{list:?}");
    assert_eq!(device(&list, &b_id)["waiting"], 0);
    assert_eq!(status(a.path())["pending"], 3);
}

#[test]
fn a_name_with_personal_data_is_refused_by_the_laptop_and_by_the_hub() {
    let hub = HubProc::with_mjolby();
    let dir = tempfile::tempdir().unwrap();
    ok(
        dir.path(),
        &[
            "init",
            "--org",
            "mjolby",
            "--site",
            "Mjölby bibliotek",
            "--staff",
            "AB",
        ],
    );
    let code = hub.admin(dir.path(), &["invite", "--org", "mjolby"]);
    for bad in [
        "Lisa 19121212-1212",
        "ring 070-123 45 67",
        "lisa@example.se",
    ] {
        let err = fails(dir.path(), &["enroll", &hub.url, &code, "--name", bad]);
        assert!(err.contains("the device name contains"), "{err}");
        assert!(!err.contains(bad), "the refused name is echoed: {err}");
    }
    let long = "x".repeat(61);
    let err = fails(dir.path(), &["enroll", &hub.url, &code, "--name", &long]);
    assert!(err.contains("at most 60"), "{err}");
    let err = fails(dir.path(), &["rename", "Lisa 19121212-1212"]);
    assert!(err.contains("personal identity number"), "{err}");

    // The hub checks too: a hand-made enrolment with such a name is
    // refused and binds nothing, so the same code still enrols.
    let client = HubClient::new(&hub.url, None, None).unwrap();
    let bad = |name: &str| EnrollRequest {
        v: PROTOCOL_VERSION,
        code: code.clone(),
        device: Uuid::new_v4(),
        device_time: chrono::Utc::now().timestamp(),
        org: Some("mjolby".into()),
        report: Some(DeviceReport {
            name: name.into(),
            site: "Mjölby bibliotek".into(),
            staff: "AB".into(),
            waiting: 0,
        }),
    };
    match client.enroll(&bad("Lisa 19121212-1212")) {
        Err(ClientError::Refused { status, message }) => {
            assert_eq!(status, 400);
            assert!(message.contains("personal identity number"), "{message}");
            assert!(!message.contains("19121212"), "{message}");
        }
        other => panic!("the hub accepted it: {other:?}"),
    }
    let scratch = tempfile::tempdir().unwrap();
    assert!(
        devices(&hub, scratch.path()).is_empty(),
        "nothing was bound"
    );

    ok(
        dir.path(),
        &["enroll", &hub.url, &code, "--name", "Mjölby, rum 2"],
    );
    assert_eq!(status(dir.path())["name"], "Mjölby, rum 2");

    // A hand-made push whose report carries personal data is refused
    // whole with the reason; the name the hub keeps is unchanged.
    let store = outpost_store::store::Store::open(dir.path()).unwrap();
    let token = store.hub_token().unwrap().unwrap();
    let client = HubClient::new(&hub.url, None, Some(token)).unwrap();
    let err = client
        .push(&PushRequest {
            v: PROTOCOL_VERSION,
            device_time: chrono::Utc::now().timestamp(),
            docs: vec![],
            erased: vec![],
            report: Some(DeviceReport {
                name: "Mjölby, rum 2".into(),
                site: "Mjölby bibliotek".into(),
                staff: "lisa@example.se".into(),
                waiting: 0,
            }),
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("e-mail"), "{err}");
    assert!(!err.contains("lisa@"), "{err}");
    let list = devices(&hub, scratch.path());
    assert_eq!(list[0]["name"], "Mjölby, rum 2");
    assert_eq!(list[0]["staff"], "AB");
}

#[test]
fn revoke_takes_a_unique_prefix_or_an_exact_name_and_lists_candidates_otherwise() {
    let hub = HubProc::with_mjolby();
    let scratch = tempfile::tempdir().unwrap();
    // Two devices whose ids share their first four characters, enrolled
    // by hand-made requests (ids are random otherwise).
    let twins = [
        Uuid::parse_str("abcd1111-0000-4000-8000-000000000001").unwrap(),
        Uuid::parse_str("abcd2222-0000-4000-8000-000000000002").unwrap(),
    ];
    for (n, id) in twins.iter().enumerate() {
        let code = hub.admin(scratch.path(), &["invite", "--org", "mjolby"]);
        HubClient::new(&hub.url, None, None)
            .unwrap()
            .enroll(&EnrollRequest {
                v: PROTOCOL_VERSION,
                code,
                device: *id,
                device_time: chrono::Utc::now().timestamp(),
                org: Some("mjolby".into()),
                report: Some(DeviceReport {
                    name: format!("Tvilling {n}"),
                    site: "Mjölby bibliotek".into(),
                    staff: "AB".into(),
                    waiting: 0,
                }),
            })
            .unwrap();
    }
    let a = laptop_named(&hub, "mjolby", "Mjölby bibliotek", "AB", Some("Hörnet"));
    let b = laptop_named(&hub, "mjolby", "Mjölby bibliotek", "CD", Some("Hörnet"));
    let c = laptop_named(&hub, "mjolby", "Skänninge bibliotek", "EF", Some("Kassan"));

    let admin = |args: &[&str]| {
        let file = scratch.path().join("admin-token");
        std::fs::write(&file, &hub.token).unwrap();
        let file = file.to_string_lossy().into_owned();
        let mut full = vec!["admin", "--hub", &hub.url, "--token-file", &file];
        full.extend_from_slice(args);
        run(scratch.path(), &full)
    };

    // An ambiguous prefix: refused, both candidates listed, nothing revoked.
    let out = admin(&["revoke", "ABCD"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for id in &twins {
        assert!(err.contains(&id.to_string()), "{err}");
    }
    assert!(
        err.contains("Tvilling 0") && err.contains("Tvilling 1"),
        "{err}"
    );
    // Too short, and unknown.
    let err = String::from_utf8_lossy(&admin(&["revoke", "abc"]).stderr).into_owned();
    assert!(err.contains("at least 4"), "{err}");
    let err = String::from_utf8_lossy(&admin(&["revoke", "ffff9"]).stderr).into_owned();
    assert!(err.contains("no device"), "{err}");
    // An ambiguous name: both laptops called "Hörnet" are listed.
    let out = admin(&["revoke", "Hörnet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for dir in [&a, &b] {
        let id = status(dir.path())["device"].as_str().unwrap().to_string();
        assert!(err.contains(&id), "{err}");
    }
    let revoked = |list: &[Value]| -> Vec<String> {
        let mut r: Vec<String> = list
            .iter()
            .filter(|d| d["revoked"] == true)
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    assert!(revoked(&devices(&hub, scratch.path())).is_empty());

    // A unique prefix, then an exact name.
    let out = admin(&["revoke", "abcd2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = admin(&["revoke", "Kassan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c_id = status(c.path())["device"].as_str().unwrap().to_string();
    let mut expected = vec![twins[1].to_string(), c_id];
    expected.sort();
    assert_eq!(revoked(&devices(&hub, scratch.path())), expected);
    // Revoked at once: the named laptop no longer syncs, the others do.
    let err = fails(c.path(), &["sync"]);
    assert!(err.contains("revoked"), "{err}");
    ok(a.path(), &["sync"]);
}
