//! The hub's `/v1/admin/records` export is streamed: many chunks arrive
//! whole and in order, an org the token may not see is refused with a
//! status before any body, and `HubClient::admin_stream` reads it as it
//! comes.

mod common;

use std::io::{BufRead, BufReader};

use common::{Hub, Laptop};
use outpost_store::client::ClientError;

#[test]
fn the_admin_export_streams_every_record_and_refuses_other_orgs_up_front() {
    let hub = Hub::start();
    hub.add_org("mjolby");
    hub.add_org("ystad");
    let mut laptop = Laptop::new("mjolby", "Mjölby bibliotek");
    laptop.enroll(&hub.url(), &hub.invite("mjolby")).unwrap();
    // Each JSONL line is about 500 bytes: 400 of them span several of the
    // hub's 64 KiB chunks.
    let mut ids: Vec<String> = (0..400)
        .map(|i| laptop.add_visit(&format!("besök {i}")))
        .collect();
    ids.sort();
    assert!(laptop.sync().complete());

    let admin =
        outpost_store::client::HubClient::new(&hub.url(), None, Some(hub.admin.clone())).unwrap();
    let body = admin
        .admin_stream(reqwest::Method::GET, "/v1/admin/records", &[])
        .unwrap();
    let mut got: Vec<String> = BufReader::new(body)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    got.sort();
    assert_eq!(got, ids);

    // A coordinator token for ystad asking for mjolby: refused before any
    // record is sent.
    let ystad = hub.store.create_admin_token(Some("ystad")).unwrap();
    let scoped = outpost_store::client::HubClient::new(&hub.url(), None, Some(ystad)).unwrap();
    let err = scoped
        .admin_stream(
            reqwest::Method::GET,
            "/v1/admin/records",
            &[("org", "mjolby".to_string())],
        )
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Refused { status: 403, .. }),
        "{err:?}"
    );
    // Its own org streams (and is empty).
    let body = scoped
        .admin_stream(reqwest::Method::GET, "/v1/admin/records", &[])
        .unwrap();
    assert_eq!(BufReader::new(body).lines().count(), 0);
}
