//! Untrusted peers (issue 10), against a real hub on 127.0.0.1 over real
//! HTTP: another org's laptop, a stolen token, or anyone with a socket.
//! Each test shows one class of attack failing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use chrono::Utc;
use common::{Hub, Laptop, now};
use outpost_hub::server::Limits;
use outpost_proto::fixtures;
use outpost_proto::hub::FeedLimits;
use outpost_proto::sync::{
    DocPush, Heads, PROTOCOL_VERSION, PullRequest, PushOutcome, PushRequest,
};
use outpost_store::store::Store;
use uuid::Uuid;

fn enrolled(hub: &Hub, org: &str, site: &str) -> Laptop {
    let mut l = Laptop::new(org, site);
    l.enroll(&hub.url(), &hub.invite(org)).unwrap();
    l
}

fn hub_with_orgs(limits: Limits) -> Hub {
    let hub = Hub::start_limited(None, tempfile::tempdir().unwrap(), limits);
    hub.add_org("mjolby");
    hub.add_org("ystad");
    hub
}

/// A record of `org` under a chosen id, saved on `laptop` (as an import
/// would: ids are made on devices, so two orgs can hold the same one).
fn insert_with_id(laptop: &Laptop, org: &str, id: Uuid, note: &str) {
    let fields = fixtures::visit_fields_at(org, &laptop.store().identity().device, id, now());
    let record = fixtures::with(fields, [("note", serde_json::json!(note))]);
    laptop.store().insert_records(&[record]).unwrap();
}

fn note_of(laptop: &Laptop, id: Uuid) -> Option<String> {
    laptop
        .store()
        .get(&id.to_string())
        .unwrap()
        .and_then(|r| r.record.to_fields().get("note").cloned())
        .and_then(|v| v.as_str().map(str::to_string))
}

/// Whatever another org erases or pushes first under an id, this org's
/// record of that id is stored, kept and served, never erased or refused.
#[test]
fn another_orgs_tombstone_or_first_push_changes_nothing_for_this_org() {
    let hub = hub_with_orgs(Limits::default());
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let a2 = enrolled(&hub, "mjolby", "Skänninge bibliotek");
    let y = enrolled(&hub, "ystad", "Ystad bibliotek");

    // First push by the other org: ystad pushes id X before mjolby does.
    let x = Uuid::new_v4();
    insert_with_id(&y, "ystad", x, "ystad först");
    assert!(y.sync().complete());
    insert_with_id(&a, "mjolby", x, "mjölby sedan");
    let outcome = a.sync();
    assert!(outcome.complete(), "{outcome:?}");
    assert_eq!(outcome.pushed_docs, 1);

    // Tombstone by the other org: ystad erases X; mjolby keeps its X.
    y.store().delete(&x.to_string(), now()).unwrap();
    assert!(y.sync().complete());
    assert!(a.sync().complete());
    assert!(a2.sync().complete());
    assert_eq!(note_of(&a, x).as_deref(), Some("mjölby sedan"));
    assert_eq!(note_of(&a2, x).as_deref(), Some("mjölby sedan"));
    assert!(matches!(
        hub.store.get("mjolby", &[x]).unwrap()[0],
        outpost_proto::hub::Held::Doc { .. }
    ));

    // And the other way round: an id mjolby erased first is stored for
    // ystad, and mjolby's tombstone stays.
    let z = Uuid::new_v4();
    insert_with_id(&a, "mjolby", z, "kort");
    assert!(a.sync().complete());
    a.store().delete(&z.to_string(), now()).unwrap();
    assert!(a.sync().complete());
    insert_with_id(&y, "ystad", z, "ystads egen");
    let outcome = y.sync();
    assert!(outcome.complete(), "{outcome:?}");
    assert_eq!(note_of(&y, z).as_deref(), Some("ystads egen"));
    assert!(a.sync().complete());
    assert_eq!(note_of(&a, z), None, "mjolby's erasure holds");
    assert_eq!(
        hub.store.get("mjolby", &[z]).unwrap()[0],
        outpost_proto::hub::Held::Erased
    );
}

/// Whether an id exists in another org cannot be told: a push or an
/// admin erasure of an id another org holds (or erased) is answered
/// exactly as one of an id nobody has.
#[test]
fn the_existence_probe_answers_alike_for_another_orgs_id_and_an_unknown_one() {
    let hub = hub_with_orgs(Limits::default());
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let y = enrolled(&hub, "ystad", "Ystad bibliotek");
    let held = Uuid::new_v4();
    let erased = Uuid::new_v4();
    insert_with_id(&a, "mjolby", held, "finns");
    insert_with_id(&a, "mjolby", erased, "borta");
    assert!(a.sync().complete());
    a.store().delete(&erased.to_string(), now()).unwrap();
    assert!(a.sync().complete());
    let nobody = Uuid::new_v4();

    // Incremental pushes (what a probe would send): "send it whole".
    let client = y.client();
    let probe = |id: Uuid| -> PushOutcome {
        let resp = client
            .push(&PushRequest {
                report: None,
                v: PROTOCOL_VERSION,
                device_time: Utc::now().timestamp(),
                docs: vec![DocPush {
                    id,
                    heads: Heads(vec![7; 32]),
                    data: vec![1, 2, 3],
                    full: false,
                }],
                erased: vec![],
            })
            .unwrap();
        resp.results.into_iter().next().unwrap().outcome
    };
    let answers: Vec<PushOutcome> = [held, erased, nobody].into_iter().map(probe).collect();
    assert!(
        answers.iter().all(|o| *o == PushOutcome::NeedFull),
        "{answers:?}"
    );

    // An admin of ystad erasing the ids: the same 404 for all three.
    let ystad_admin = hub.store.create_admin_token(Some("ystad")).unwrap();
    let http = reqwest::blocking::Client::new();
    let bodies: Vec<(u16, String)> = [held, erased, nobody]
        .into_iter()
        .map(|id| {
            let r = http
                .delete(format!("{}/v1/admin/records/{id}", hub.url()))
                .bearer_auth(&ystad_admin)
                .send()
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().unwrap().replace(&id.to_string(), "ID");
            (status, body)
        })
        .collect();
    assert!(bodies.iter().all(|b| *b == bodies[2]), "{bodies:?}");
    assert_eq!(bodies[0].0, 404);
    assert!(matches!(
        hub.store.get("mjolby", &[held]).unwrap()[0],
        outpost_proto::hub::Held::Doc { .. }
    ));
}

#[test]
fn pushes_are_bounded_per_request_and_per_device_per_day() {
    let limits = Limits {
        feed: FeedLimits {
            erasures_per_push: 10,
            erasures_per_device_per_day: 15,
            ..FeedLimits::default()
        },
        ..Limits::default()
    };
    let hub = hub_with_orgs(limits);
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let b = enrolled(&hub, "mjolby", "Skänninge bibliotek");
    let push = |l: &Laptop, n: usize| {
        l.client().push(&PushRequest {
            report: None,
            v: PROTOCOL_VERSION,
            device_time: Utc::now().timestamp(),
            docs: vec![],
            erased: (0..n).map(|_| Uuid::new_v4()).collect(),
        })
    };
    let err = push(&a, 11).unwrap_err().to_string();
    assert!(err.contains("413") && err.contains("11 erasures"), "{err}");
    push(&a, 10).unwrap();
    let err = push(&a, 6).unwrap_err().to_string();
    assert!(
        err.contains("429") && err.contains("max_erasures_per_device_per_day"),
        "{err}"
    );
    // Nothing of the refused push was applied: the feed has 10 entries.
    let page = b
        .client()
        .pull(&PullRequest {
            device_time: None,
            report: None,
            v: PROTOCOL_VERSION,
            since: 0,
            limit: 1000,
            epoch: 0,
            sig: Vec::new(),
            config_version: 0,
        })
        .unwrap();
    assert_eq!(page.items.len(), 10);
    // Another laptop has its own day.
    push(&b, 5).unwrap();
    // The laptop cuts its batches at the hub's default per-push bound.
    assert_eq!(
        outpost_proto::sync::MAX_ERASURES_PER_PUSH,
        FeedLimits::default().erasures_per_push
    );
}

/// A device cannot make its org's laptops resend everything: a cursor
/// beyond the feed that the hub did not sign sends back only that device.
#[test]
fn a_forged_cursor_beyond_the_feed_resets_nobody_else() {
    let hub = hub_with_orgs(Limits::default());
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let b = enrolled(&hub, "mjolby", "Skänninge bibliotek");
    a.add_visit("ett");
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    let epoch = b.store().feed_epoch().unwrap();
    // The attacker's laptop claims a position far beyond the feed.
    for sig in [Vec::new(), vec![0u8; 32]] {
        let page = b
            .client()
            .pull(&PullRequest {
                device_time: None,
                report: None,
                v: PROTOCOL_VERSION,
                since: 1_000_000,
                limit: 10,
                epoch,
                sig,
                config_version: 0,
            })
            .unwrap();
        assert_eq!(page.epoch, epoch, "the org's epoch is unchanged");
        assert!(page.next < 1_000_000);
    }
    // Its own store tampered with: it starts over by itself...
    b.store()
        .connection()
        .execute(
            "UPDATE meta SET value = '999999' WHERE key = 'pull_cursor'",
            [],
        )
        .unwrap();
    let outcome = b.sync();
    assert!(outcome.complete(), "{outcome:?}");
    assert_eq!(outcome.feed_resets, 1);
    // ...and nobody else does.
    let outcome = a.sync();
    assert_eq!(outcome.feed_resets, 0, "{outcome:?}");
    assert_eq!(a.store().feed_epoch().unwrap(), epoch);
}

#[test]
fn a_revoked_laptop_enrols_again_as_a_new_device_and_sends_what_it_kept() {
    let hub = hub_with_orgs(Limits::default());
    let mut a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    a.add_visit("före");
    assert!(a.sync().complete());
    let old_device = a.store().identity().device.clone();
    hub.store.revoke(&old_device, Utc::now()).unwrap();
    let offline = [a.add_visit("under"), a.add_visit("spärren")];
    let outcome = a.sync();
    assert!(outcome.error.is_some(), "the revoked token is refused");

    // A code typed in lower case without dashes.
    let code = hub.invite("mjolby").to_lowercase().replace('-', "");
    a.enroll(&hub.url(), &code).unwrap();
    let new_device = a.store().identity().device.clone();
    assert_ne!(new_device, old_device, "a new device identity");
    let outcome = a.sync();
    assert!(outcome.complete(), "{outcome:?}");
    let held: Vec<Uuid> = offline.iter().map(|i| i.parse().unwrap()).collect();
    assert!(
        hub.store
            .get("mjolby", &held)
            .unwrap()
            .iter()
            .all(|h| matches!(h, outpost_proto::hub::Held::Doc { .. })),
        "the records kept while revoked reached the hub"
    );
    let devices = hub.store.devices(Some("mjolby")).unwrap();
    assert!(devices.iter().any(|d| d.id == old_device && d.revoked));
    assert!(devices.iter().any(|d| d.id == new_device && !d.revoked));
}

#[test]
fn a_code_of_another_org_is_refused_and_binds_nothing() {
    let hub = hub_with_orgs(Limits::default());
    let mut a = Laptop::new("mjolby", "Mjölby bibliotek");
    let code = hub.invite("ystad");
    let err = a.enroll(&hub.url(), &code).unwrap_err();
    assert!(err.contains("another organisation"), "{err}");
    assert!(err.contains("outpost admin invite --org mjolby"), "{err}");
    assert!(
        hub.store.devices(None).unwrap().is_empty(),
        "no device bound"
    );
    assert!(a.store().hub_token().unwrap().is_none());
    // The code still works for a laptop of its own org.
    let mut y = Laptop::new("ystad", "Ystad bibliotek");
    y.enroll(&hub.url(), &code).unwrap();
    // And the mjolby laptop enrols with a code of its own.
    a.enroll(&hub.url(), &hub.invite("mjolby")).unwrap();
}

#[test]
fn wrong_codes_are_rate_limited_per_address() {
    let limits = Limits {
        enroll_failures_per_minute: 5,
        ..Limits::default()
    };
    let hub = hub_with_orgs(limits);
    let mut a = Laptop::new("mjolby", "Mjölby bibliotek");
    for _ in 0..5 {
        let err = a.enroll(&hub.url(), "AAAA-BBBB-CCCC-DDDD").unwrap_err();
        assert!(err.contains("403"), "{err}");
    }
    // Even the right code waits now: guessing is slowed to 5 a minute.
    let err = a.enroll(&hub.url(), &hub.invite("mjolby")).unwrap_err();
    assert!(
        err.contains("429") && err.contains("wait a minute"),
        "{err}"
    );
}

/// Sends raw bytes and reads the whole answer (the hub closes or the
/// answer is complete within the read timeout).
fn raw(hub: &Hub, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(hub.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&answer);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if len.is_some_and(|n| body.len() >= n) {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn assert_error_json(status: u16, body: &str, want: u16) {
    assert_eq!(status, want, "{body}");
    let v: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("a {status} answer is not JSON ({e}): {body:?}"));
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 1, "one shape: {body}");
    assert!(
        obj["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[test]
fn every_error_answer_has_one_json_shape() {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let hub = hub_with_orgs(limits);
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let token = a.token.clone().unwrap();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 404),
        (b"GET /v1/enroll HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 405),
        // No token: refused from the headers, the 15 MiB never read.
        (
            b"POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Length: 15728640\r\nConnection: close\r\n\r\npartial".to_vec(),
            401,
        ),
        // A token, and a body larger than the hub takes.
        (
            format!("POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n").into_bytes(),
            413,
        ),
        // A token, and a body that stops half-way: 408 once the body
        // timeout passes.
        (
            format!("POST /v1/sync/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\nConnection: close\r\n\r\nhalf").into_bytes(),
            408,
        ),
        (
            format!("POST /v1/sync/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello").into_bytes(),
            400,
        ),
        (
            b"POST /v1/admin/orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
            401,
        ),
        (
            format!("POST /v1/admin/orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}", hub.admin).into_bytes(),
            422,
        ),
    ];
    for (request, want) in cases {
        let (status, body) = raw(&hub, &request);
        assert_error_json(status, &body, want);
    }
}

#[test]
fn databases_and_settings_are_private() {
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let hub = hub_with_orgs(Limits::default());
    let mut a = Laptop::new("mjolby", "Mjölby bibliotek");
    a.enroll(&hub.url(), &hub.invite("mjolby")).unwrap();
    a.add_visit("privat");
    assert!(a.sync().complete());
    let store = Store::file(a.path());
    for f in outpost_base::files::sqlite_files(&store) {
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    assert_eq!(mode(a.path()), 0o700);
    let db = hub.dir.path().join(outpost_hub_sqlite::HUB_FILE);
    let files = outpost_base::files::sqlite_files(&db);
    assert!(files[1].exists(), "the hub keeps a WAL while running");
    for f in files {
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    assert_eq!(mode(hub.dir.path()), 0o700);
}
