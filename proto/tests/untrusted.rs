//! Issue 9: documents from outside, as an attacker with an enrolled
//! device's token would craft them, against the hub's push and the
//! laptop's pull (both run `outpost_proto::untrusted`).

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use chrono::Utc;
use outpost_proto::hub::{self, Peer, mem::MemStorage};
use outpost_proto::record::Record;
use outpost_proto::sync::{
    self, DocPush, FeedBody, FeedItem, Heads, LocalHeld, PROTOCOL_VERSION, PushOutcome, PushRequest,
};
use outpost_proto::untrusted::{self, MAX_CHANGES, MAX_DOC_BYTES, Refusal};
use outpost_proto::{doc, fixtures};
use serde_json::json;

const ORG: &str = "mjolby";
/// A valid personnummer (the Skatteverket test person).
const PNR: &str = "19121212-1212";

fn peer() -> Peer {
    Peer {
        device: fixtures::DEVICE.into(),
        org: ORG.into(),
    }
}

fn visit_doc() -> (uuid::Uuid, AutoCommit) {
    let rec = fixtures::visit_with_note(ORG, "hjälpte med BankID");
    (rec.id, doc::create(&rec, ActorId::random()).unwrap())
}

/// Pushes `am` whole to a fresh hub: the outcome, and whether it was stored.
fn push(id: uuid::Uuid, am: &mut AutoCommit) -> (PushOutcome, bool) {
    let hub = MemStorage::with_orgs(&[ORG]);
    let req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![sync::prepare_push(id, am, None)],
        erased: vec![],
    };
    let resp = hub::push(&hub, &peer(), &req, Utc::now()).unwrap();
    let stored = hub.docs(ORG).contains_key(&id);
    (resp.results[0].outcome.clone(), stored)
}

/// The reason a push was refused (panics when it was not).
fn refused(id: uuid::Uuid, am: &mut AutoCommit) -> String {
    match push(id, am) {
        (PushOutcome::Refused { reason }, false) => {
            assert!(
                !reason.contains("1212"),
                "the reason echoes the value: {reason}"
            );
            reason
        }
        other => panic!("not refused: {other:?}"),
    }
}

/// The laptop's side: the same bytes as a pulled feed item.
fn pulled(id: uuid::Uuid, am: &mut AutoCommit) -> Result<(), Refusal> {
    let item = FeedItem {
        id,
        body: FeedBody::Doc {
            heads: Heads::from_hashes(&am.get_heads()),
            data: am.save(),
        },
    };
    sync::apply_feed_item(&item, LocalHeld::Nothing).map(|_| ())
}

#[test]
fn a_clean_record_passes_hub_and_pull() {
    let (id, mut am) = visit_doc();
    assert!(matches!(
        push(id, &mut am),
        (PushOutcome::Merged { .. }, true)
    ));
    pulled(id, &mut am).unwrap();
}

#[test]
fn a_personnummer_in_the_history_only_is_refused_at_hub_and_pull() {
    let (id, mut am) = visit_doc();
    am.put(ROOT, "note", PNR).unwrap();
    am.commit();
    am.put(ROOT, "note", "kort anteckning").unwrap();
    am.commit();
    // The current value is clean: only the history holds it.
    let now = doc::read(&am).unwrap();
    assert_eq!(now.fields["note"], json!("kort anteckning"));
    assert!(Record::from_fields(&now.fields).is_ok());
    let reason = refused(id, &mut am);
    assert!(
        reason.contains("note") && reason.contains("history"),
        "{reason}"
    );
    assert!(matches!(pulled(id, &mut am), Err(Refusal::Screen(_))));
}

#[test]
fn personal_data_in_device_session_ids_keys_deleted_fields_and_losers_is_refused() {
    // `device`: a UUID, nothing else.
    let (id, mut am) = visit_doc();
    am.put(ROOT, "device", PNR).unwrap();
    am.commit();
    assert!(refused(id, &mut am).contains("device"));
    assert!(pulled(id, &mut am).is_err());

    // A key (field name) holding it.
    let (id, mut am) = visit_doc();
    am.put(ROOT, PNR, "x").unwrap();
    am.commit();
    refused(id, &mut am);
    assert!(pulled(id, &mut am).is_err());

    // A deleted field.
    let (id, mut am) = visit_doc();
    am.put(ROOT, "referred_to", "ring 070-123 45 67").unwrap();
    am.commit();
    am.delete(ROOT, "referred_to").unwrap();
    am.commit();
    assert!(Record::from_fields(&doc::read(&am).unwrap().fields).is_ok());
    refused(id, &mut am);
    assert!(pulled(id, &mut am).is_err());

    // The loser of a concurrent write.
    let (id, mut a) = visit_doc();
    let mut b = a.fork().with_actor(ActorId::random());
    a.put(ROOT, "note", "anna@example.se").unwrap();
    a.commit();
    b.put(ROOT, "note", "ok").unwrap();
    b.commit();
    a.merge(&mut b).unwrap();
    refused(id, &mut a);

    // A course session id (a map key) and a session's own id.
    let course = fixtures::course(ORG);
    let mut am = doc::create(&course, ActorId::random()).unwrap();
    let (_, sessions) = am.get(ROOT, doc::SESSIONS).unwrap().unwrap();
    am.put(
        &sessions,
        PNR,
        json!({"id": PNR, "date": "2025-03-04", "minutes": 60, "participants": 3}).to_string(),
    )
    .unwrap();
    am.commit();
    assert!(refused(course.id, &mut am).contains("session id"));
    assert!(pulled(course.id, &mut am).is_err());

    // `$schema` holding text, and a change message.
    let (id, mut am) = visit_doc();
    am.put(ROOT, doc::SCHEMA_KEY, PNR).unwrap();
    am.commit();
    refused(id, &mut am);
    let (id, mut am) = visit_doc();
    am.put(ROOT, "note", "x").unwrap();
    am.commit_with(automerge::transaction::CommitOptions::default().with_message(PNR));
    refused(id, &mut am);
}

#[test]
fn a_text_object_cannot_spread_a_number_over_many_values() {
    let (id, mut am) = visit_doc();
    let text = am.put_object(ROOT, "extra", ObjType::Text).unwrap();
    am.splice_text(&text, 0, 0, PNR).unwrap();
    am.commit();
    refused(id, &mut am);
}

#[test]
fn a_newer_layout_asks_to_upgrade_the_hub() {
    let (id, mut am) = visit_doc();
    am.put(ROOT, doc::SCHEMA_KEY, doc::SCHEMA_VERSION + 1)
        .unwrap();
    am.commit();
    let reason = refused(id, &mut am);
    assert!(reason.contains("upgrade the hub"), "{reason}");
    assert!(matches!(pulled(id, &mut am), Err(Refusal::NewerLayout(_))));
}

#[test]
fn decoding_is_bounded() {
    // Bytes: refused before Automerge sees them.
    let big = vec![0u8; MAX_DOC_BYTES + 1];
    assert_eq!(untrusted::load(&big).err(), Some(Refusal::TooLarge));
    let (_, am) = visit_doc();
    assert_eq!(untrusted::merge(am, &big).err(), Some(Refusal::TooLarge));

    // Changes: a history longer than any record's.
    let (id, mut am) = visit_doc();
    for i in 0..=MAX_CHANGES {
        am.put(ROOT, "minutes", (i % 400 + 1) as i64).unwrap();
        am.commit();
    }
    let reason = refused(id, &mut am);
    assert_eq!(reason, Refusal::TooManyChanges.to_string());
    assert_eq!(pulled(id, &mut am), Err(Refusal::TooManyChanges));

    // Operations: one change that writes tens of thousands of keys.
    let (id, mut am) = visit_doc();
    for i in 0..(untrusted::MAX_OPS + 1) {
        am.put(ROOT, format!("k{i}").as_str(), 1).unwrap();
    }
    am.commit();
    assert_eq!(refused(id, &mut am), Refusal::TooManyOps.to_string());

    // List lengths: 3,000 services.
    let (id, mut am) = visit_doc();
    let services: Vec<String> = (0..3000).map(|i| format!("tjänst {i}")).collect();
    am.put(ROOT, "services", serde_json::to_string(&services).unwrap())
        .unwrap();
    am.commit();
    let reason = refused(id, &mut am);
    assert!(
        reason.contains("services") && reason.contains("more than"),
        "{reason}"
    );
}

#[test]
fn garbage_and_truncated_bytes_refuse_one_document_and_the_batch_goes_on() {
    let hub = MemStorage::with_orgs(&[ORG]);
    let (good_id, mut good) = visit_doc();
    let (bad_id, mut bad) = visit_doc();
    let mut bytes = bad.save();
    bytes.truncate(bytes.len() / 2);
    let req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![
            DocPush {
                id: bad_id,
                heads: Heads::from_hashes(&bad.get_heads()),
                data: bytes,
                full: true,
            },
            sync::prepare_push(good_id, &mut good, None),
        ],
        erased: vec![],
    };
    let resp = hub::push(&hub, &peer(), &req, Utc::now()).unwrap();
    assert!(matches!(
        resp.results[0].outcome,
        PushOutcome::Refused { .. }
    ));
    assert!(matches!(
        resp.results[1].outcome,
        PushOutcome::Merged { .. }
    ));
    assert!(hub.docs(ORG).contains_key(&good_id));
}

/// Documents that panic Automerge 0.12's loader: checksum-valid, with a
/// change's dependency index pointing past the document's changes (made
/// by hand from a valid two-change record, see `fuzz/README.md`).
fn panicking_documents() -> Vec<(String, Vec<u8>)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/automerge_doc");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

#[test]
fn a_document_that_panics_automerge_is_refused_on_its_own() {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (name, bytes) in panicking_documents() {
        // The bytes really panic Automerge's loader...
        let raw = std::panic::catch_unwind(|| AutoCommit::load(&bytes));
        assert!(raw.is_err(), "{name} no longer panics Automerge: {raw:?}");
        // ...and are one refusal here, at the hub and in a laptop's pull.
        assert_eq!(
            untrusted::load(&bytes).err(),
            Some(Refusal::DecoderPanic),
            "{name}"
        );
        let (_, held) = visit_doc();
        assert!(untrusted::merge(held, &bytes).is_err(), "{name}");
        let id = uuid::Uuid::new_v4();
        let hub = MemStorage::with_orgs(&[ORG]);
        let (good_id, mut good) = visit_doc();
        let req = PushRequest {
            report: None,
            v: PROTOCOL_VERSION,
            device_time: 0,
            docs: vec![
                DocPush {
                    id,
                    heads: Heads::default(),
                    data: bytes.clone(),
                    full: true,
                },
                sync::prepare_push(good_id, &mut good, None),
            ],
            erased: vec![],
        };
        let resp = hub::push(&hub, &peer(), &req, Utc::now()).unwrap();
        match &resp.results[0].outcome {
            PushOutcome::Refused { reason } => assert!(reason.contains("crashed"), "{reason}"),
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(
            resp.results[1].outcome,
            PushOutcome::Merged { .. }
        ));
        let item = FeedItem {
            id,
            body: FeedBody::Doc {
                heads: Heads::default(),
                data: bytes.clone(),
            },
        };
        assert_eq!(
            sync::apply_feed_item(&item, LocalHeld::Nothing).err(),
            Some(Refusal::DecoderPanic)
        );
    }
    std::panic::set_hook(quiet);
}

/// DEFLATE bombs: bytes well under `MAX_DOC_BYTES` whose compressed parts
/// inflate past `MAX_INFLATED_BYTES` are refused before Automerge sees
/// them (Automerge 0.12 would inflate them whole), at the hub and in a pull.
#[test]
fn a_deflate_bomb_is_refused_before_automerge_inflates_it() {
    let (id, bomb) = fixtures::deflate_bomb(ORG);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    // A document Automerge wrote and still loads whole, checksum and all:
    // only its inflated size is wrong.
    let raw = AutoCommit::load(&bomb).unwrap();
    let note = raw.get(ROOT, "note").unwrap().unwrap().0.to_string();
    assert!(note.len() > untrusted::MAX_INFLATED_BYTES, "{}", note.len());
    drop(raw);
    assert_eq!(
        untrusted::inflated_size(&bomb).err(),
        Some(Refusal::InflatesTooLarge)
    );
    assert_eq!(
        untrusted::load(&bomb).err(),
        Some(Refusal::InflatesTooLarge)
    );
    let (_, held) = visit_doc();
    assert_eq!(
        untrusted::merge(held, &bomb).err(),
        Some(Refusal::InflatesTooLarge)
    );
    // At the hub, beside a good record: that one refused, the other merged.
    let hub = MemStorage::with_orgs(&[ORG]);
    let (good_id, mut good) = visit_doc();
    let req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![
            DocPush {
                id,
                heads: Heads::default(),
                data: bomb.clone(),
                full: true,
            },
            sync::prepare_push(good_id, &mut good, None),
        ],
        erased: vec![],
    };
    let resp = hub::push(&hub, &peer(), &req, Utc::now()).unwrap();
    match &resp.results[0].outcome {
        PushOutcome::Refused { reason } => assert!(reason.contains("inflate"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        resp.results[1].outcome,
        PushOutcome::Merged { .. }
    ));
    assert!(!hub.docs(ORG).contains_key(&id));
    // In a pull.
    let item = FeedItem {
        id,
        body: FeedBody::Doc {
            heads: Heads::default(),
            data: bomb,
        },
    };
    assert_eq!(
        sync::apply_feed_item(&item, LocalHeld::Nothing).err(),
        Some(Refusal::InflatesTooLarge)
    );

    // Hand-built: a compressed change chunk (Automerge inflates those
    // before it even reads the checksum) of twice the cap in zeros, about
    // 1,000 times smaller on the wire.
    let zeros = vec![0u8; 2 * untrusted::MAX_INFLATED_BYTES];
    let chunk = fixtures::compressed_change_chunk(&zeros);
    assert!(chunk.len() < zeros.len() / 500, "{}", chunk.len());
    assert_eq!(
        untrusted::load(&chunk).err(),
        Some(Refusal::InflatesTooLarge)
    );
    let (_, held) = visit_doc();
    assert_eq!(
        untrusted::merge(held, &chunk).err(),
        Some(Refusal::InflatesTooLarge)
    );
    // The budget runs over all chunks: two halves of it pass the walk,
    // three do not.
    let third = fixtures::compressed_change_chunk(&zeros[..untrusted::MAX_INFLATED_BYTES / 2]);
    let two = [third.clone(), third.clone()].concat();
    assert_eq!(
        untrusted::inflated_size(&two).unwrap().bytes,
        untrusted::MAX_INFLATED_BYTES as u64
    );
    // (Zeros are no change: Automerge refuses them as damaged.)
    assert!(matches!(untrusted::load(&two), Err(Refusal::Damaged(_))));
    let three = [two, third].concat();
    assert_eq!(
        untrusted::load(&three).err(),
        Some(Refusal::InflatesTooLarge)
    );
}

#[test]
fn a_flood_of_tiny_compressed_parts_is_refused() {
    let tiny = fixtures::compressed_change_chunk(b"");
    let flood = tiny.repeat(untrusted::MAX_COMPRESSED_PARTS + 1);
    assert!(flood.len() < MAX_DOC_BYTES);
    assert_eq!(
        untrusted::load(&flood).err(),
        Some(Refusal::TooManyCompressedParts)
    );
    assert_eq!(
        untrusted::inflated_size(&tiny.repeat(untrusted::MAX_COMPRESSED_PARTS))
            .unwrap()
            .parts,
        untrusted::MAX_COMPRESSED_PARTS
    );
}

/// Honest records whose columns Automerge deflated when saving (a long
/// note, a course with many sessions, an edit sent as changes) pass the
/// inflation walk, the hub and a pull.
#[test]
fn ordinary_records_with_deflated_columns_pass() {
    let long = fixtures::visit_with_long_note(ORG, outpost_proto::record::MAX_NOTE_CHARS);
    let mut am = doc::create(&long, ActorId::random()).unwrap();
    let seen = untrusted::inflated_size(&am.save()).unwrap();
    assert!(seen.parts >= 1 && seen.bytes > 0, "{seen:?}");
    assert!(matches!(
        push(long.id, &mut am),
        (PushOutcome::Merged { .. }, true)
    ));
    pulled(long.id, &mut am).unwrap();

    let course = fixtures::course(ORG);
    let sessions: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "date": format!("2025-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                "minutes": 60 + i % 60,
                "participants": 1 + i % 20,
            })
        })
        .collect();
    let course = fixtures::with(course.to_fields(), [("sessions", json!(sessions))]);
    let mut am = doc::create(&course, ActorId::random()).unwrap();
    let seen = untrusted::inflated_size(&am.save()).unwrap();
    assert!(seen.parts >= 1, "{seen:?}");
    assert!(matches!(
        push(course.id, &mut am),
        (PushOutcome::Merged { .. }, true)
    ));
    pulled(course.id, &mut am).unwrap();

    // An edit with a long note, sent as changes after acknowledged heads,
    // merged by the hub into what it holds.
    let hub = MemStorage::with_orgs(&[ORG]);
    let (id, mut am) = visit_doc();
    let first = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![sync::prepare_push(id, &mut am, None)],
        erased: vec![],
    };
    hub::push(&hub, &peer(), &first, Utc::now()).unwrap();
    let acked = am.get_heads();
    let note = fixtures::visit_with_long_note(ORG, 1800).to_fields()["note"].clone();
    am.put(ROOT, "note", note.as_str().unwrap()).unwrap();
    am.commit();
    let edit = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![sync::prepare_push(id, &mut am, Some(&acked))],
        erased: vec![],
    };
    let resp = hub::push(&hub, &peer(), &edit, Utc::now()).unwrap();
    assert!(
        matches!(resp.results[0].outcome, PushOutcome::Merged { .. }),
        "{resp:?}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// The inflation walk on mutated honest documents (raw, and with the
    /// chunk checksums fixed up as the `automerge_fixed` fuzz target does):
    /// it returns, within its bounds. (The fuzz targets do this
    /// coverage-guided; this keeps a stable check of it.)
    #[test]
    fn the_inflation_walk_stays_within_its_bounds_on_mutated_documents(
        flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let rec = fixtures::visit_with_long_note(ORG, 1500);
        let mut bytes = doc::create(&rec, ActorId::from([5u8; 16])).unwrap().save();
        for (at, b) in flips {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        for input in [bytes.clone(), outpost_proto::fuzzing::fix_checksums(&bytes)] {
            if let Ok(seen) = untrusted::inflated_size(&input) {
                proptest::prop_assert!(seen.bytes <= untrusted::MAX_INFLATED_BYTES as u64);
            }
        }
    }
}
