//! End-to-end sync over real HTTP on 127.0.0.1 with real SQLite files:
//! convergence, tenant isolation, erasure, refusals, TLS, interruption.
//! The hub runs on SQLite and on PostgreSQL: every test that is about
//! the protocol runs on both (`on_both_backends!`, tests named
//! `NAME::sqlite` and `NAME::postgres`); TLS and restoring SQLite files
//! from a backup run on SQLite only.

mod common;

on_both_backends!(
    three_laptops_converge_field_for_field_and_another_org_sees_nothing,
    erasure_reaches_every_laptop_and_an_offline_copy_cannot_bring_it_back,
    revoked_wrong_token_and_used_code_are_refused,
    malformed_and_oversized_bodies_are_refused_and_store_nothing,
    a_record_the_hub_refuses_is_reported_and_the_rest_sync,
    a_sync_cut_anywhere_resumes_with_nothing_lost_or_duplicated,
    a_hub_restart_between_syncs_loses_nothing,
    hub_metrics_count_sync_requests_and_need_an_admin_token,
    an_admin_erasure_reaches_only_the_named_organisation,
    an_org_admin_cannot_revoke_another_orgs_laptop,
    a_crafted_document_from_one_org_stops_nothing_for_any_other
);

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Db, Hub, Laptop, now};
use outpost_proto::sync::{self, PROTOCOL_VERSION, PullRequest, PushRequest};
use outpost_store::store::Filter;
use serde_json::json;

fn enrolled(hub: &Hub, org: &str, site: &str) -> Laptop {
    let mut l = Laptop::new(org, site);
    l.enroll(&hub.url(), &hub.invite(org)).unwrap();
    l
}

fn hub_ids(hub: &Hub, org: &str) -> Vec<String> {
    let mut ids = Vec::new();
    hub.store
        .for_each_record(Some(org), &Filter::default(), &mut |r| {
            ids.push(r.id.to_string());
            true
        })
        .unwrap();
    ids.sort();
    ids
}

fn three_laptops_converge_field_for_field_and_another_org_sees_nothing(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    hub.add_org("ystad");
    let a = enrolled(&hub, "mjolby", "Mjölby bibliotek");
    let b = enrolled(&hub, "mjolby", "Skänninge bibliotek");
    let c = enrolled(&hub, "mjolby", "Väderstad");
    let other = enrolled(&hub, "ystad", "Ystad bibliotek");

    // Offline work on every laptop, more than one push batch and pull page.
    let mut a_ids: Vec<String> = (0..12)
        .map(|i| a.add_visit(&format!("a visit {i}")))
        .collect();
    for i in 0..9 {
        b.add_visit(&format!("b visit {i}"));
    }
    other.add_visit("ystad only");
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    assert!(c.sync().complete());
    assert_eq!(c.snapshot().len(), 21, "c pulled everything of its org");

    // Concurrent offline edits of one record: same field on a and c,
    // different fields on a and b.
    let shared = a_ids.remove(0);
    a.edit(&shared, "outcome", json!("partly"));
    c.edit(&shared, "outcome", json!("referred"));
    b.edit(&shared, "minutes", json!(55));
    a.add_visit("made after the first sync");

    // Varied orders, twice round so every change reaches everyone.
    for order in [[&c, &a, &b], [&b, &c, &a]] {
        for l in order {
            let o = l.sync();
            assert!(o.complete(), "{o:?}");
        }
    }
    other.sync();

    let sa = a.snapshot();
    assert_eq!(sa.len(), 22);
    assert_eq!(sa, b.snapshot(), "a and b differ");
    assert_eq!(sa, c.snapshot(), "a and c differ");
    let merged = sa
        .iter()
        .find(|v| v["record"]["id"] == json!(shared))
        .unwrap();
    assert_eq!(
        merged["record"]["minutes"],
        json!(55),
        "different fields both survive"
    );
    let winner = merged["record"]["outcome"].as_str().unwrap().to_string();
    let losers = merged["conflicts"]["outcome"].as_array().unwrap();
    assert_eq!(losers.len(), 1, "the losing value is visible");
    let mut both = vec![winner, losers[0].as_str().unwrap().to_string()];
    both.sort();
    assert_eq!(both, ["partly", "referred"]);

    let ids_a: Vec<String> = sa
        .iter()
        .map(|v| v["record"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hub_ids(&hub, "mjolby"), ids_a);
    let theirs = other.snapshot();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["record"]["org"], "ystad");

    // Forged requests with the other org's token: a pull from 0 returns
    // only its own org's feed, and pushing one of mjolby's documents under
    // its token is refused without touching mjolby's copy.
    let client = other.client();
    let page = client
        .pull(&PullRequest {
            device_time: None,
            report: None,
            v: PROTOCOL_VERSION,
            since: 0,
            limit: 10_000,
            epoch: 0,
            sig: Vec::new(),
            config_version: 0,
        })
        .unwrap();
    assert!(
        page.items
            .iter()
            .all(|i| !ids_a.contains(&i.id.to_string()))
    );
    let mut store = a.store();
    let (docs, _, _) = {
        store.reset_sync_state().unwrap();
        store.load_pending(0, 1).unwrap()
    };
    let resp = client
        .push(&PushRequest {
            report: None,
            v: PROTOCOL_VERSION,
            device_time: now().timestamp(),
            docs: docs.clone(),
            erased: vec![docs[0].id],
        })
        .unwrap();
    assert!(
        matches!(resp.results[0].outcome, sync::PushOutcome::Refused { .. }),
        "{resp:?}"
    );
    assert_eq!(
        hub_ids(&hub, "mjolby"),
        ids_a,
        "a forged erasure did nothing"
    );
}

fn erasure_reaches_every_laptop_and_an_offline_copy_cannot_bring_it_back(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let b = enrolled(&hub, "mjolby", "B");
    let offline = enrolled(&hub, "mjolby", "C");
    let id = a.add_visit("to be erased");
    let keep = a.add_visit("to be kept");
    a.sync();
    b.sync();
    offline.sync();
    // The offline laptop edits it while a deletes it.
    offline.edit(&id, "minutes", json!(99));
    a.store().delete(&id, now()).unwrap();
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    assert!(b.store().get(&id).unwrap().is_none(), "erased on b");
    assert!(b.store().is_deleted(&id).unwrap());
    let o = offline.sync();
    assert!(o.complete(), "{o:?}");
    assert!(
        offline.store().get(&id).unwrap().is_none(),
        "erased on the offline laptop too"
    );
    a.sync();
    b.sync();
    for l in [&a, &b, &offline] {
        let ids: Vec<_> = l
            .snapshot()
            .iter()
            .map(|v| v["record"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, vec![keep.clone()]);
    }
    assert_eq!(hub_ids(&hub, "mjolby"), vec![keep.clone()]);
    // And the hub's file no longer holds the erased text (SQLite: the
    // database is one file here; PostgreSQL's dead tuples are the
    // operator's VACUUM, checked by no test yet).
    if let Some(sqlite) = &hub.sqlite {
        sqlite.checkpoint().unwrap();
        let bytes = std::fs::read(hub.dir.path().join("hub.db")).unwrap();
        assert!(!contains(&bytes, b"to be erased"));
        assert!(contains(&bytes, b"to be kept"), "the check can fail");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn revoked_wrong_token_and_used_code_are_refused(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let code = hub.invite("mjolby");
    let mut a = Laptop::new("mjolby", "A");
    a.enroll(&hub.url(), &code).unwrap();
    let mut b = Laptop::new("mjolby", "B");
    let err = b.enroll(&hub.url(), &code).unwrap_err();
    assert!(err.contains("already used"), "{err}");
    let err = b.enroll(&hub.url(), "AAAA-BBBB-CCCC-DDDD").unwrap_err();
    assert!(err.contains("unknown"), "{err}");

    a.add_visit("before revoke");
    assert!(a.sync().complete());
    let device = a.store().identity().device.clone();
    hub.store.revoke(&device, chrono::Utc::now()).unwrap();
    a.add_visit("after revoke");
    let o = a.sync();
    // Retrying cannot help: the daemon stops probing and status says so.
    assert_eq!(o.error_kind, Some(sync::FailureKind::NeedsPerson));
    let e = o.error.unwrap();
    assert!(e.contains("enroll"), "{e}");
    assert_eq!(
        a.store().counts().unwrap().pending,
        1,
        "nothing lost; it waits"
    );
    assert_eq!(
        hub_ids(&hub, "mjolby").len(),
        1,
        "nothing stored after revoke"
    );

    let mut wrong = Laptop::new("mjolby", "W");
    wrong.url = hub.url();
    wrong.token = Some("opd_not_a_token".into());
    wrong
        .store()
        .set_hub_token(Some("opd_not_a_token"))
        .unwrap();
    wrong.add_visit("x");
    assert!(wrong.sync().error.unwrap().contains("not accepted"));
}

fn malformed_and_oversized_bodies_are_refused_and_store_nothing(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let token = a.token.clone().unwrap();
    let http = reqwest::blocking::Client::new();
    let post = |body: Vec<u8>, token: &str| {
        http.post(format!("{}{}", hub.url(), sync::PUSH_PATH))
            .bearer_auth(token)
            .body(body)
            .send()
            .unwrap()
    };
    let r = post(b"not gzip at all".to_vec(), &token);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("malformed"));
    // The hub answers 413 from the Content-Length, before reading the body,
    // and closes the connection: the client either reads that answer or,
    // still writing the 16 MiB, sees the connection closed under it. Both
    // mean the body was refused unread.
    let oversized = http
        .post(format!("{}{}", hub.url(), sync::PUSH_PATH))
        .bearer_auth(&token)
        .body(vec![0u8; sync::MAX_BODY_BYTES + 1])
        .send();
    match oversized {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(
            e.is_request() && !e.is_timeout() && !e.is_connect(),
            "an oversized body should be refused (413 or closed while sending), got {e:?}"
        ),
    }
    let r = post(sync::encode_body(&json!({"v": 1})).unwrap(), &token);
    assert_eq!(r.status(), 400);
    let r = post(b"x".to_vec(), "opd_wrong");
    assert_eq!(r.status(), 401);
    let bad_version = PushRequest {
        report: None,
        v: 99,
        device_time: 0,
        docs: vec![],
        erased: vec![],
    };
    let r = post(sync::encode_body(&bad_version).unwrap(), &token);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("protocol"));
    assert!(hub_ids(&hub, "mjolby").is_empty());
}

fn a_record_the_hub_refuses_is_reported_and_the_rest_sync(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let good = a.add_visit("fine");
    let bad = a.add_visit("will be altered");
    // Simulate an older laptop build that did not screen: write a phone
    // number straight into the document, past validation.
    {
        use automerge::transaction::Transactable;
        let mut store = a.store();
        let conn = store.connection();
        let bytes: Vec<u8> = conn
            .query_row("SELECT doc FROM docs WHERE id = ?1", [&bad], |r| r.get(0))
            .unwrap();
        let mut am = automerge::AutoCommit::load(&bytes).unwrap();
        am.put(automerge::ROOT, "note", "ring 070-123 45 67")
            .unwrap();
        am.commit();
        conn.execute(
            "UPDATE docs SET doc = ?2 WHERE id = ?1",
            rusqlite::params![bad, am.save()],
        )
        .unwrap();
    }
    let o = a.sync();
    assert_eq!(o.refused.len(), 1, "{o:?}");
    assert!(o.refused[0].1.contains("phone number"));
    assert!(
        !o.refused[0].1.contains("070"),
        "the reason never echoes the value"
    );
    assert_eq!(hub_ids(&hub, "mjolby"), vec![good]);
    let status = a.store().sync_status().unwrap();
    assert!(status.last_error.unwrap().contains("refused"));
}

#[test]
fn tls_with_a_pinned_ca_works_and_a_wrong_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, cert_pem, key_pem) = test_pki();
    let (other_ca, _, _) = test_pki();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let tls = outpost_hub::server::TlsFiles {
        cert: write("cert.pem", &cert_pem),
        key: write("key.pem", &key_pem),
    };
    let ca = write("ca.pem", &ca_pem);
    let wrong_ca = write("other-ca.pem", &other_ca);
    let hub = Hub::start_with(Some(tls), tempfile::tempdir().unwrap());
    hub.add_org("mjolby");
    assert!(hub.url().starts_with("https://"));
    let mut good = Laptop::new("mjolby", "A");
    good.ca = Some(ca);
    good.enroll(&hub.url(), &hub.invite("mjolby")).unwrap();
    good.add_visit("over tls");
    assert!(good.sync().complete());
    let mut bad = Laptop::new("mjolby", "B");
    bad.ca = Some(wrong_ca);
    let err = bad.enroll(&hub.url(), &hub.invite("mjolby")).unwrap_err();
    assert!(err.contains("could not reach"), "{err}");
    // An enrolled laptop whose pinned CA is wrong: a person must fix the
    // trust settings, so this is not retried with backoff.
    good.ca = bad.ca.clone();
    let o = good.sync();
    assert_eq!(o.error_kind, Some(sync::FailureKind::NeedsPerson), "{o:?}");
    assert!(o.error.unwrap().contains("trusted HTTPS"));
}

/// A CA, and a certificate for localhost/127.0.0.1 signed by it (PEM).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Forwards one connection at a time to `target`, cutting every connection
/// after `cut_after` bytes have gone through (both directions together).
fn cutting_proxy(
    target: std::net::SocketAddr,
    cut_after: usize,
) -> (std::net::SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            client.set_nonblocking(false).unwrap();
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let budget = Arc::new(std::sync::atomic::AtomicUsize::new(cut_after));
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let budget = budget.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let left = budget.load(Ordering::SeqCst);
                        let take = n.min(left);
                        budget.fetch_sub(take, Ordering::SeqCst);
                        if to.write_all(&buf[..take]).is_err() || take < n {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (addr, stop)
}

fn a_sync_cut_anywhere_resumes_with_nothing_lost_or_duplicated(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let b = enrolled(&hub, "mjolby", "B");
    for i in 0..20 {
        a.add_visit(&format!("visit {i}"));
    }
    for i in 0..5 {
        b.add_visit(&format!("b {i}"));
    }
    b.sync();
    // Cut the connection after N bytes, for N across the whole exchange.
    let mut cut_points = vec![1, 50, 200, 400, 700, 1000, 1500, 2200, 3000, 4500];
    cut_points.extend((1..12).map(|k| k * 800));
    for n in cut_points {
        let (proxy, stop) = cutting_proxy(hub.addr, n);
        let url = format!("http://127.0.0.1:{}", proxy.port());
        let _ = a.sync_via(&url);
        stop.store(true, Ordering::Relaxed);
        a.edit(
            a.snapshot()[0]["record"]["id"].as_str().unwrap(),
            "minutes",
            json!(10 + (n % 400) as i64),
        );
    }
    // Now a clean sync finishes everything.
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    assert!(a.sync().complete());
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.snapshot().len(), 25, "no record lost, none duplicated");
    assert_eq!(hub_ids(&hub, "mjolby").len(), 25);
    assert_eq!(a.store().counts().unwrap().pending, 0);
}

fn a_hub_restart_between_syncs_loses_nothing(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let b = enrolled(&hub, "mjolby", "B");
    for i in 0..10 {
        a.add_visit(&format!("visit {i}"));
    }
    assert!(a.sync().complete());
    let hub = hub.restart();
    let mut a = a;
    let mut b = b;
    a.url = hub.url();
    b.url = hub.url();
    assert!(b.sync().complete());
    assert_eq!(b.snapshot().len(), 10);
    assert_eq!(a.snapshot(), b.snapshot());
}

fn hub_metrics_count_sync_requests_and_need_an_admin_token(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    let code = hub.invite("mjolby");
    let mut a = Laptop::new("mjolby", "A");
    a.enroll(&hub.url(), &code).unwrap();
    a.add_visit("first");
    assert!(a.sync().complete());

    let get = |token: &str| {
        outpost_store::client::HubClient::new(&hub.url(), None, Some(token.to_string()))
            .unwrap()
            .admin(reqwest::Method::GET, "/v1/admin/metrics", &[], None)
    };
    // A device token is not an admin token.
    let err = get(a.token.as_deref().unwrap()).unwrap_err().to_string();
    assert!(err.contains("not accepted"), "{err}");

    let admin = hub.store.create_admin_token(None).unwrap();
    let report: outpost_hub::server::MetricsReport =
        serde_json::from_slice(&get(&admin).unwrap()).unwrap();
    // enroll + push + pull at least, plus the refused metrics call.
    assert!(report.requests >= 4, "{report:?}");
    assert!(report.max_request_ms > 0.0, "{report:?}");
}

fn copy_files(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Two laptops; A records one visit and syncs; the hub is backed up; A
/// records a second visit, both sync (so B's cursor and A's
/// acknowledgement count in a feed the backup lacks); the hub is stopped
/// and its files replaced by the backup. `after_restore` runs on the
/// restored data dir before the hub starts again.
fn hub_restored_from_backup(after_restore: impl FnOnce(&std::path::Path)) -> (Hub, Laptop, Laptop) {
    let hub = Hub::start();
    hub.add_org("mjolby");
    let mut a = enrolled(&hub, "mjolby", "A");
    let mut b = enrolled(&hub, "mjolby", "B");
    a.add_visit("before the backup");
    assert!(a.sync().complete());
    assert!(b.sync().complete());

    let dir = hub.stop();
    let backup = tempfile::tempdir().unwrap();
    copy_files(dir.path(), backup.path());
    let hub = Hub::start_with(None, dir);
    (a.url, b.url) = (hub.url(), hub.url());
    a.add_visit("acknowledged after the backup");
    assert!(a.sync().complete());
    assert!(b.sync().complete());
    assert_eq!(b.snapshot().len(), 2);

    let dir = hub.stop();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(path).unwrap();
        }
    }
    copy_files(backup.path(), dir.path());
    after_restore(dir.path());
    let hub = Hub::start_with(None, dir);
    assert_eq!(
        hub_ids(&hub, "mjolby").len(),
        1,
        "the backup holds one record"
    );
    (a.url, b.url) = (hub.url(), hub.url());
    (hub, a, b)
}

/// The hub's database is restored from a backup, then `outpostd hub
/// restored` runs: a record acknowledged after the backup comes back from
/// the laptop that has it, and a laptop whose cursor counts in the lost
/// feed still receives a record the restored feed numbers the same.
#[test]
fn a_hub_restored_from_a_backup_gets_everything_back() {
    let (hub, a, b) = hub_restored_from_backup(|dir| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpostd"))
            .args(["hub", "restored", "--data-dir"])
            .arg(dir)
            .env_remove("OUTPOST_DATA_DIR")
            .env_remove("OUTPOST_CONFIG_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    // Takes the feed position that B's cursor already counted.
    let c = enrolled(&hub, "mjolby", "C");
    c.add_visit("made after the restore");
    assert!(c.sync().complete());

    for laptop in [&a, &b, &c, &a, &b] {
        let o = laptop.sync();
        assert!(o.complete(), "{o:?}");
    }
    assert_eq!(hub_ids(&hub, "mjolby").len(), 3);
    assert_eq!(a.snapshot().len(), 3);
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.snapshot(), c.snapshot());
}

/// Restored from a backup and started without `outpostd hub restored`: a
/// laptop whose cursor is ahead of the feed makes the hub start a new
/// feed epoch itself, and the record acknowledged after the backup comes
/// back.
#[test]
fn a_cursor_ahead_of_a_restored_hub_brings_everything_back() {
    let (hub, a, b) = hub_restored_from_backup(|_| {});
    let o = b.sync();
    assert!(o.complete() && o.feed_resets == 1, "{o:?}");
    let o = a.sync();
    assert!(o.complete() && o.feed_resets == 1, "{o:?}");
    assert!(b.sync().complete());
    assert_eq!(hub_ids(&hub, "mjolby").len(), 2);
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.snapshot().len(), 2);
}

/// Ids are scoped by organisation on the hub: two orgs may hold a record
/// under one id, an admin erasure names which (or finds exactly one it may
/// see), and an org-scoped admin cannot erase, or learn of, another org's.
fn an_admin_erasure_reaches_only_the_named_organisation(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    hub.add_org("boxholm");
    let a = enrolled(&hub, "mjolby", "A");
    let b = enrolled(&hub, "boxholm", "B");
    let id = a.add_visit("mjölby's record");
    assert!(a.sync().complete());
    // A record of boxholm under the same id (as an import of a shared
    // spreadsheet would make).
    let mut twin = a.store().get(&id).unwrap().unwrap().record;
    twin.org = "boxholm".into();
    b.store().insert_records(&[twin]).unwrap();
    let o = b.sync();
    assert!(o.complete(), "{o:?}");
    assert_eq!(hub_ids(&hub, "mjolby"), vec![id.clone()]);
    assert_eq!(hub_ids(&hub, "boxholm"), vec![id.clone()]);

    let delete = |token: &str, org: Option<&str>| {
        let query: Vec<(&str, String)> = org.map(|o| ("org", o.to_string())).into_iter().collect();
        outpost_store::client::HubClient::new(&hub.url(), None, Some(token.to_string()))
            .unwrap()
            .admin(
                reqwest::Method::DELETE,
                &format!("/v1/admin/records/{id}"),
                &query,
                None,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = delete(&hub.admin, None).unwrap_err();
    assert!(err.contains("several organisations"), "{err}");
    let only_mjolby = hub.store.create_admin_token(Some("mjolby")).unwrap();
    let err = delete(&only_mjolby, Some("boxholm")).unwrap_err();
    assert!(err.contains("404") || err.contains("no record"), "{err}");
    assert_eq!(hub_ids(&hub, "boxholm"), vec![id.clone()], "not erased");

    delete(&hub.admin, Some("boxholm")).unwrap();
    assert!(hub_ids(&hub, "boxholm").is_empty());
    assert_eq!(
        hub_ids(&hub, "mjolby"),
        vec![id.clone()],
        "mjölby's is kept"
    );
    assert!(b.sync().complete());
    assert!(
        b.store().get(&id).unwrap().is_none(),
        "erased on boxholm's laptop"
    );
    assert!(a.sync().complete());
    assert!(
        a.store().get(&id).unwrap().is_some(),
        "kept on mjölby's laptop"
    );
    // Now only mjölby holds it: the org-scoped admin may erase it unnamed.
    delete(&only_mjolby, None).unwrap();
    assert!(hub_ids(&hub, "mjolby").is_empty());
}

/// Authorisation is decided above storage: an admin token of one org
/// cannot revoke another org's laptop, and is told no such device exists
/// (not "forbidden", which would confirm it does).
fn an_org_admin_cannot_revoke_another_orgs_laptop(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    hub.add_org("boxholm");
    let b = enrolled(&hub, "boxholm", "B");
    b.add_visit("boxholm's visit");
    let device = b.store().identity().device.clone();
    let only_mjolby = hub.store.create_admin_token(Some("mjolby")).unwrap();
    let revoke = |token: &str| {
        outpost_store::client::HubClient::new(&hub.url(), None, Some(token.to_string()))
            .unwrap()
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/devices/{device}/revoke"),
                &[],
                None,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = revoke(&only_mjolby).unwrap_err();
    assert!(err.contains("404") || err.contains("no device"), "{err}");
    assert!(b.sync().complete(), "the laptop still syncs");
    revoke(&hub.admin).unwrap();
    assert!(!b.sync().complete(), "revoked by an admin who may");
}

/// Crafted Automerge bytes: the decoder panics the fuzzer found (kept in
/// `fuzz/regressions/automerge_doc/`), a checksum-valid document cut in
/// half and Automerge's magic number followed by junk.
fn crafted_documents() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions/automerge_doc");
    let mut docs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    let rec = outpost_proto::fixtures::visit("mjolby");
    let mut am = outpost_proto::doc::create(&rec, automerge::ActorId::random()).unwrap();
    let mut whole = am.save();
    whole.truncate(whole.len() / 2);
    docs.push(whole);
    docs.push(b"\x85\x6f\x4a\x83\xde\xad\xbe\xef\x00\xff\xff\xff\xff\x0f".to_vec());
    docs
}

/// Issue 9: one org's laptop pushes crafted documents; each is refused on
/// its own, the hub's writes go on for every org (a sync of another org,
/// an admin's invite), and `/v1/health` says so throughout.
fn a_crafted_document_from_one_org_stops_nothing_for_any_other(db: Db) {
    let hub = Hub::start_on(db);
    hub.add_org("mjolby");
    hub.add_org("boxholm");
    let a = enrolled(&hub, "mjolby", "A");
    let b = enrolled(&hub, "boxholm", "B");
    let http = reqwest::blocking::Client::new();
    let health = || {
        http.get(format!("{}/v1/health", hub.url()))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(health(), 200);
    for crafted in crafted_documents() {
        let req = PushRequest {
            report: None,
            v: PROTOCOL_VERSION,
            device_time: 0,
            docs: vec![sync::DocPush {
                id: uuid::Uuid::new_v4(),
                heads: sync::Heads::default(),
                data: crafted,
                full: true,
            }],
            erased: vec![],
        };
        let r = http
            .post(format!("{}{}", hub.url(), sync::PUSH_PATH))
            .bearer_auth(a.token.clone().unwrap())
            .body(sync::encode_body(&req).unwrap())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let resp: sync::PushResponse = sync::decode_body(&r.bytes().unwrap()).unwrap();
        assert!(
            matches!(resp.results[0].outcome, sync::PushOutcome::Refused { .. }),
            "{resp:?}"
        );
        assert_eq!(health(), 200);
    }
    // Another org's sync and an admin's invite: writes work.
    let visit = b.add_visit("fine");
    let o = b.sync();
    assert!(o.complete(), "{o:?}");
    assert_eq!(hub_ids(&hub, "boxholm"), vec![visit]);
    let r = http
        .post(format!("{}/v1/admin/invites", hub.url()))
        .bearer_auth(&hub.admin)
        .header("content-type", "application/json")
        .body(json!({"org": "boxholm"}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The pushing org itself goes on too.
    a.add_visit("also fine");
    assert!(a.sync().complete());
    assert_eq!(health(), 200);
}

/// Issue 9: a DEFLATE bomb (about 10 KB that Automerge would inflate past
/// `MAX_INFLATED_BYTES`) pushed over HTTP beside a good record: that one
/// document is refused with a reason, the other is stored, and the hub
/// stays healthy and writable.
#[test]
fn a_deflate_bomb_pushed_over_http_is_refused_on_its_own() {
    let hub = Hub::start();
    hub.add_org("mjolby");
    let a = enrolled(&hub, "mjolby", "A");
    let http = reqwest::blocking::Client::new();
    let (bad, bomb) = outpost_proto::fixtures::deflate_bomb("mjolby");
    let good = outpost_proto::fixtures::visit("mjolby");
    let mut good_doc = outpost_proto::doc::create(&good, automerge::ActorId::random()).unwrap();
    let req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![
            sync::DocPush {
                id: bad,
                heads: sync::Heads::default(),
                data: bomb,
                full: true,
            },
            sync::prepare_push(good.id, &mut good_doc, None),
        ],
        erased: vec![],
    };
    let r = http
        .post(format!("{}{}", hub.url(), sync::PUSH_PATH))
        .bearer_auth(a.token.clone().unwrap())
        .body(sync::encode_body(&req).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp: sync::PushResponse = sync::decode_body(&r.bytes().unwrap()).unwrap();
    match &resp.results[0].outcome {
        sync::PushOutcome::Refused { reason } => {
            assert!(reason.contains("inflate"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(resp.results[1].outcome, sync::PushOutcome::Merged { .. }),
        "{resp:?}"
    );
    assert_eq!(hub_ids(&hub, "mjolby"), vec![good.id.to_string()]);
    let health = http
        .get(format!("{}/v1/health", hub.url()))
        .send()
        .unwrap()
        .status();
    assert_eq!(health, 200);
    a.add_visit("still fine");
    assert!(a.sync().complete());
}
