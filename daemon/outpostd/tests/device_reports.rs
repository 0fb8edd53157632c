//! Device reports and revoking by prefix or name over real HTTP, on both
//! hub backends: an org-scoped admin token resolves a prefix or a name
//! only among its own org's devices, so neither a match nor an ambiguity
//! reveals a device of another org; a laptop with nothing to push is
//! still seen at its pull and reports its name.

mod common;

on_both_backends!(
    a_prefix_or_name_never_reaches_another_orgs_device,
    a_laptop_with_nothing_to_push_reports_at_its_pull
);

use common::{Db, Hub, Laptop};
use outpost_store::client::HubClient;
use serde_json::{Value, json};

fn enrolled(hub: &Hub, org: &str, site: &str) -> Laptop {
    let mut l = Laptop::new(org, site);
    l.enroll(&hub.url(), &hub.invite(org)).unwrap();
    l
}

fn revoke(hub: &Hub, token: &str, wanted: &str) -> Result<Value, String> {
    HubClient::new(&hub.url(), None, Some(token.to_string()))
        .unwrap()
        .admin(
            reqwest::Method::POST,
            "/v1/admin/devices/revoke",
            &[],
            Some(json!({ "device": wanted })),
        )
        .map(|body| serde_json::from_slice(&body).unwrap())
        .map_err(|e| e.to_string())
}

fn a_prefix_or_name_never_reaches_another_orgs_device(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    hub.add_org("boxholm");
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let b = enrolled(&hub, "boxholm", "Boxholms bibliotek");
    let b_store = b.store();
    b_store.set_device_name(Some("Hörnet")).unwrap();
    a.store().set_device_name(Some("Hörnet")).unwrap();
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    let b_id = b_store.identity().device.clone();
    let a_id = a.store().identity().device.clone();

    let only_mjolby = hub.store.create_admin_token(Some("mjolby")).unwrap();
    // Boxholm's laptop by its prefix: unknown to mjölby's admin.
    let err = revoke(&hub, &only_mjolby, &b_id[..6]).unwrap_err();
    assert!(err.contains("no device"), "{err}");
    assert!(!err.contains(&b_id), "{err}");
    // "Hörnet" names a laptop of each org: for mjölby's admin it is
    // mjölby's alone, not ambiguous, and boxholm's id is never shown.
    let revoked = revoke(&hub, &only_mjolby, "Hörnet").unwrap();
    assert_eq!(revoked["id"], a_id.as_str());
    assert_eq!(revoked["revoked"], true);
    assert!(b.sync().complete(), "boxholm's laptop still syncs");
    // A hub-wide admin sees both (a revoked device stays listed), so for
    // it the name is ambiguous and both are listed.
    let err = revoke(&hub, &hub.admin, "Hörnet").unwrap_err();
    assert!(err.contains(&a_id) && err.contains(&b_id), "{err}");
}

fn a_laptop_with_nothing_to_push_reports_at_its_pull(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let id = a.store().identity().device.clone();
    let listed = || {
        hub.store
            .devices(Some("mjolby"))
            .unwrap()
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
    };
    let before = listed();
    assert!(
        before
            .name
            .as_deref()
            .unwrap()
            .starts_with("Mjölby bibliotek · ")
    );
    a.store().set_device_name(Some("Läsesalen")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(a.sync().complete());
    let after = listed();
    assert_eq!(after.name.as_deref(), Some("Läsesalen"));
    assert_eq!(after.waiting, Some(0));
    assert!(
        after.last_seen > before.last_seen,
        "seen at the pull: {:?} then {:?}",
        before.last_seen,
        after.last_seen
    );
}
