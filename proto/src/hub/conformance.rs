//! The conformance suite every [`HubStorage`] backend passes: the
//! primitives' contract first, then the protocol's guarantees over them.
//!
//! A backend's test file runs it with one line, giving a function that
//! makes a fresh, empty storage holding the named organisations:
//!
//! ```ignore
//! outpost_proto::hub_storage_conformance!(|orgs: &[&str]| my_backend(orgs));
//! ```
//!
//! Each check is also a public function, for a backend that wants to run
//! them its own way.

use std::sync::Arc;

use automerge::{ActorId, AutoCommit, ReadDoc};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::storage::{
    ConfigEntry, Expect, FeedEntry, FeedMeta, FeedVisitor, Held, HubStorage, Put, PutResult,
    StorageError,
};
use super::{CursorCheck, CursorKey, Peer, pull, push};
use crate::doc;
use crate::fixtures;
use crate::record::Record;
use crate::sync::{
    DocPush, FeedBody, Heads, PROTOCOL_VERSION, PullRequest, PullResponse, PushOutcome, PushRequest,
};

/// A backend together with what must outlive it in a test (a temporary
/// directory, a throwaway database): what a backend's `make` returns. It
/// forwards every primitive to `store` and derefs to it, so the suites and
/// backend-specific checks use it as the backend itself; each backend's
/// test file then needs no forwarding code of its own.
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

impl<S, G> std::ops::Deref for Guarded<S, G> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

impl<S: HubStorage, G: Send + Sync> HubStorage for Guarded<S, G> {
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError> {
        self.store.get(org, ids)
    }
    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError> {
        self.store.put(org, puts)
    }
    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError> {
        self.store.erase(org, ids, at)
    }
    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        self.store.scan_feed(org, since, visit)
    }
    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError> {
        self.store.set_epoch(org, epoch)
    }
    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError> {
        self.store.config(org)
    }
    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError> {
        self.store.put_config(org, kind, data, expect)
    }
}

/// Runs every check as its own `#[test]` against the storage `$make`
/// returns (a closure `Fn(&[&str]) -> S`).
#[macro_export]
macro_rules! hub_storage_conformance {
    ($make:expr) => {
        $crate::hub_storage_conformance!(@tests $make;
            a_put_is_conditional_on_the_stored_heads,
            a_batch_takes_feed_positions_in_order,
            a_batch_mixes_new_changed_and_refused_documents,
            a_batch_with_one_id_twice_sees_its_own_first_write,
            an_erasure_tombstones_and_blocks_every_later_put,
            organisations_are_separate_in_ids_erasures_and_feeds,
            a_feed_scan_is_ordered_stoppable_and_lazy,
            the_epoch_is_kept_and_set,
            an_unknown_organisation_is_an_error,
            a_pushed_record_reaches_another_device_but_not_its_own,
            an_id_erased_by_another_org_is_stored_for_this_one,
            concurrent_pushes_of_one_record_both_merge,
            a_cursor_ahead_of_the_feed_gets_a_new_epoch,
            a_forged_cursor_ahead_of_the_feed_changes_no_epoch,
            configuration_entries_are_versioned_per_org,
            a_conditional_configuration_write_loses_to_an_earlier_one,
            a_pull_carries_the_configuration_when_the_laptop_holds_another
        );
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::hub::conformance::$name($make);
            }
        )*
    };
}

const A: &str = "mjolby";
const B: &str = "boxholm";

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 9, minute, 0)
        .single()
        .unwrap_or_default()
}

/// A valid visit of `org` with this id and note.
fn visit(org: &str, id: Uuid, note: &str) -> Record {
    let fields = fixtures::visit_fields_at(org, "conformance", id, at(0).fixed_offset());
    fixtures::with(fields, [("note", json!(note))])
}

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

/// A document for `record` and its bytes and heads.
fn document(record: &Record, actor: u8) -> (AutoCommit, Vec<u8>, Heads) {
    let mut am = doc::create(record, ActorId::from([actor; 16])).expect("a document");
    let heads = Heads::from_hashes(&am.get_heads());
    let data = am.save();
    (am, data, heads)
}

/// Edits the note of the visit in `am`; the record it now holds.
fn edited(am: &mut AutoCommit, note: &str) -> Record {
    doc::apply_patch(
        am,
        &[("note".to_string(), json!(note))].into_iter().collect(),
    )
    .expect("an edit");
    Record::from_fields(&doc::read(am).expect("readable").fields).expect("valid")
}

fn put<'a>(
    record: &'a Record,
    expect: Expect,
    data: &'a [u8],
    heads: &'a Heads,
    origin: &'a str,
) -> Put<'a> {
    Put {
        id: record.id,
        expect,
        data,
        heads,
        origin,
        record,
        received_at: at(1),
    }
}

/// Every row of `org`'s feed after `since`: (seq, id, erased, origin).
fn feed<S: HubStorage>(s: &S, org: &str, since: u64) -> Vec<(u64, Uuid, Option<String>)> {
    let mut rows = Vec::new();
    s.scan_feed(org, since, &mut |row, _| {
        let origin = match row.entry {
            FeedEntry::Doc { origin } => Some(origin.to_string()),
            FeedEntry::Erased => None,
        };
        rows.push((row.seq, row.id, origin));
        Ok(true)
    })
    .expect("scan the feed");
    rows
}

pub fn a_put_is_conditional_on_the_stored_heads<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    let r = visit(A, id(1), "första");
    let (mut am, data, heads) = document(&r, 1);
    assert_eq!(s.get(A, &[r.id]).unwrap(), vec![Held::Nothing]);

    let first = put(&r, Expect::Absent, &data, &heads, "dev-1");
    assert_eq!(
        s.put(A, std::slice::from_ref(&first)).unwrap(),
        vec![PutResult::Stored { seq: 1 }]
    );
    assert_eq!(
        s.get(A, &[r.id]).unwrap(),
        vec![Held::Doc {
            data: data.clone(),
            heads: heads.clone()
        }]
    );
    // Absent no longer holds; neither do heads the copy does not have.
    assert_eq!(s.put(A, &[first]).unwrap(), vec![PutResult::Conflict]);
    let wrong = Heads(vec![7; 32]);
    assert_eq!(
        s.put(A, &[put(&r, Expect::Heads(wrong), &data, &heads, "dev-1")])
            .unwrap(),
        vec![PutResult::Conflict]
    );

    // The right heads replace the copy, at the next feed position, and
    // the feed keeps only the latest entry of the id.
    doc::apply_patch(
        &mut am,
        &[("minutes".to_string(), json!(45))].into_iter().collect(),
    )
    .unwrap();
    let heads2 = Heads::from_hashes(&am.get_heads());
    let data2 = am.save();
    let r2 = Record::from_fields(&doc::read(&am).unwrap().fields).unwrap();
    assert_eq!(
        s.put(
            A,
            &[put(
                &r2,
                Expect::Heads(heads.clone()),
                &data2,
                &heads2,
                "dev-2"
            )]
        )
        .unwrap(),
        vec![PutResult::Stored { seq: 2 }]
    );
    assert_eq!(
        s.get(A, &[r.id]).unwrap(),
        vec![Held::Doc {
            data: data2,
            heads: heads2
        }]
    );
    assert_eq!(feed(&s, A, 0), vec![(2, r.id, Some("dev-2".into()))]);
}

pub fn a_batch_takes_feed_positions_in_order<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    let records: Vec<Record> = (1..=5).map(|n| visit(A, id(n), "besök")).collect();
    let docs: Vec<_> = records.iter().map(|r| document(r, 1)).collect();
    let mut puts: Vec<Put<'_>> = records
        .iter()
        .zip(&docs)
        .map(|(r, (_, data, heads))| put(r, Expect::Absent, data, heads, "dev-1"))
        .collect();
    // One of them already fails its condition: the others still apply.
    let wrong = Heads(vec![9; 32]);
    puts[2].expect = Expect::Heads(wrong);
    let results = s.put(A, &puts).unwrap();
    assert_eq!(
        results,
        vec![
            PutResult::Stored { seq: 1 },
            PutResult::Stored { seq: 2 },
            PutResult::Conflict,
            PutResult::Stored { seq: 3 },
            PutResult::Stored { seq: 4 },
        ]
    );
    let order: Vec<Uuid> = feed(&s, A, 0).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(
        order,
        vec![records[0].id, records[1].id, records[3].id, records[4].id]
    );
    let held = s.get(A, &[records[2].id, records[4].id]).unwrap();
    assert_eq!(held[0], Held::Nothing);
    assert!(matches!(held[1], Held::Doc { .. }));
}

/// New, changed and refused documents in one batch: each is judged
/// against what was stored before the batch, the stored ones take
/// consecutive positions in the batch's order, and a refused one changes
/// nothing (backends that write a batch in bulk must keep this).
pub fn a_batch_mixes_new_changed_and_refused_documents<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    let old = visit(A, id(1), "först");
    let (mut am, old_data, old_heads) = document(&old, 1);
    let gone = visit(A, id(2), "raderas");
    let (_, gone_data, gone_heads) = document(&gone, 1);
    s.put(
        A,
        &[
            put(&old, Expect::Absent, &old_data, &old_heads, "dev-1"),
            put(&gone, Expect::Absent, &gone_data, &gone_heads, "dev-1"),
        ],
    )
    .unwrap();
    s.erase(A, &[gone.id], at(2)).unwrap();
    let before = feed(&s, A, 0).last().map(|r| r.0).unwrap_or(0);

    let changed = edited(&mut am, "ändrad");
    let changed_heads = Heads::from_hashes(&am.get_heads());
    let changed_data = am.save();
    let fresh = visit(A, id(3), "ny");
    let (_, fresh_data, fresh_heads) = document(&fresh, 1);
    let other = visit(A, id(4), "annan");
    let (_, other_data, other_heads) = document(&other, 1);
    let results = s
        .put(
            A,
            &[
                put(&fresh, Expect::Absent, &fresh_data, &fresh_heads, "dev-2"),
                put(
                    &changed,
                    Expect::Heads(old_heads.clone()),
                    &changed_data,
                    &changed_heads,
                    "dev-2",
                ),
                // Erased: refused, as is a new document whose id is stored.
                put(&gone, Expect::Absent, &gone_data, &gone_heads, "dev-2"),
                put(
                    &other,
                    Expect::Heads(other_heads.clone()),
                    &other_data,
                    &other_heads,
                    "dev-2",
                ),
            ],
        )
        .unwrap();
    assert_eq!(
        results,
        vec![
            PutResult::Stored { seq: before + 1 },
            PutResult::Stored { seq: before + 2 },
            PutResult::Conflict,
            PutResult::Conflict,
        ]
    );
    let held = s.get(A, &[id(1), id(2), id(3), id(4)]).unwrap();
    assert!(matches!(&held[0], Held::Doc { heads, .. } if *heads == changed_heads));
    assert_eq!(held[1], Held::Erased);
    assert!(matches!(&held[2], Held::Doc { heads, .. } if *heads == fresh_heads));
    assert_eq!(held[3], Held::Nothing);
    let tail: Vec<(u64, Uuid, Option<String>)> = feed(&s, A, before);
    assert_eq!(
        tail,
        vec![
            (before + 1, id(3), Some("dev-2".into())),
            (before + 2, id(1), Some("dev-2".into())),
        ]
    );
}

/// One id twice in a batch: the second put is judged against the first
/// one's write (the protocol never sends this, but the primitive's meaning
/// must not depend on it).
pub fn a_batch_with_one_id_twice_sees_its_own_first_write<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A]);
    let first = visit(A, id(1), "först");
    let (mut am, data, heads) = document(&first, 1);
    let second = edited(&mut am, "sedan");
    let second_heads = Heads::from_hashes(&am.get_heads());
    let second_data = am.save();
    let results = s
        .put(
            A,
            &[
                put(&first, Expect::Absent, &data, &heads, "dev-1"),
                put(&first, Expect::Absent, &data, &heads, "dev-1"),
                put(
                    &second,
                    Expect::Heads(heads.clone()),
                    &second_data,
                    &second_heads,
                    "dev-1",
                ),
            ],
        )
        .unwrap();
    assert_eq!(
        results,
        vec![
            PutResult::Stored { seq: 1 },
            PutResult::Conflict,
            PutResult::Stored { seq: 2 },
        ]
    );
    let held = s.get(A, &[id(1)]).unwrap();
    assert!(matches!(&held[0], Held::Doc { heads, .. } if *heads == second_heads));
}

pub fn an_erasure_tombstones_and_blocks_every_later_put<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A]);
    let r = visit(A, id(1), "raderas");
    let (_, data, heads) = document(&r, 1);
    s.put(A, &[put(&r, Expect::Absent, &data, &heads, "dev-1")])
        .unwrap();
    let never_seen = id(2);
    s.erase(A, &[r.id, never_seen], at(5)).unwrap();
    assert_eq!(
        s.get(A, &[r.id, never_seen]).unwrap(),
        vec![Held::Erased, Held::Erased]
    );
    assert_eq!(
        feed(&s, A, 0),
        vec![(2, r.id, None), (3, never_seen, None)],
        "the tombstone replaces the document's feed entry"
    );
    // Erasing again changes nothing.
    s.erase(A, &[r.id], at(6)).unwrap();
    assert_eq!(feed(&s, A, 0).len(), 2);
    // No put brings it back, whatever it expects.
    for expect in [Expect::Absent, Expect::Heads(heads.clone())] {
        assert_eq!(
            s.put(A, &[put(&r, expect, &data, &heads, "dev-1")])
                .unwrap(),
            vec![PutResult::Conflict]
        );
    }
    assert_eq!(s.get(A, &[r.id]).unwrap(), vec![Held::Erased]);
}

pub fn organisations_are_separate_in_ids_erasures_and_feeds<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A, B]);
    let shared = id(1);
    let ra = visit(A, shared, "a");
    let rb = visit(B, shared, "b");
    let (_, da, ha) = document(&ra, 1);
    let (_, db, hb) = document(&rb, 2);
    assert_eq!(
        s.put(A, &[put(&ra, Expect::Absent, &da, &ha, "dev-a")])
            .unwrap(),
        vec![PutResult::Stored { seq: 1 }]
    );
    assert_eq!(
        s.get(B, &[shared]).unwrap(),
        vec![Held::Nothing],
        "org B sees nothing of org A's id"
    );
    assert_eq!(
        s.put(B, &[put(&rb, Expect::Absent, &db, &hb, "dev-b")])
            .unwrap(),
        vec![PutResult::Stored { seq: 1 }],
        "each org has its own feed"
    );
    s.erase(B, &[shared], at(3)).unwrap();
    assert_eq!(s.get(B, &[shared]).unwrap(), vec![Held::Erased]);
    assert_eq!(
        s.get(A, &[shared]).unwrap(),
        vec![Held::Doc {
            data: da,
            heads: ha
        }],
        "org B's erasure leaves org A's record alone"
    );
    assert_eq!(feed(&s, A, 0), vec![(1, shared, Some("dev-a".into()))]);
    assert_eq!(feed(&s, B, 0), vec![(2, shared, None)]);
}

pub fn a_feed_scan_is_ordered_stoppable_and_lazy<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    let records: Vec<Record> = (1..=6).map(|n| visit(A, id(n), "besök")).collect();
    let docs: Vec<_> = records.iter().map(|r| document(r, 1)).collect();
    let puts: Vec<Put<'_>> = records
        .iter()
        .zip(&docs)
        .map(|(r, (_, data, heads))| put(r, Expect::Absent, data, heads, "dev-1"))
        .collect();
    s.put(A, &puts).unwrap();
    s.erase(A, &[records[1].id], at(2)).unwrap();

    // After position 2, stopping after two rows; bodies only when asked.
    let mut seen = Vec::new();
    let meta = s
        .scan_feed(A, 2, &mut |row, body| {
            if seen.len() == 2 {
                return Ok(false);
            }
            if row.seq == 4 {
                let (heads, data) = body()?;
                assert_eq!(heads, docs[3].2, "the body is the row's document");
                assert_eq!(data, docs[3].1);
            }
            seen.push(row.seq);
            Ok(true)
        })
        .unwrap();
    assert_eq!(seen, vec![3, 4]);
    assert_eq!(meta.head, 7);
    assert!(meta.epoch > 0, "a feed has an epoch");
    assert_eq!(
        feed(&s, A, 0).last(),
        Some(&(7, records[1].id, None)),
        "the erasure is the latest entry"
    );
    assert!(feed(&s, A, 7).is_empty());
    assert!(feed(&s, A, 1000).is_empty());
}

pub fn the_epoch_is_kept_and_set<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A, B]);
    let epoch = |org| s.scan_feed(org, 0, &mut |_, _| Ok(true)).unwrap().epoch;
    let (a, b) = (epoch(A), epoch(B));
    assert!(a > 0 && b > 0);
    s.set_epoch(A, a + 41).unwrap();
    assert_eq!(epoch(A), a + 41);
    assert_eq!(epoch(B), b, "another org's epoch is untouched");
}

pub fn an_unknown_organisation_is_an_error<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    assert!(s.get("nope", &[id(1)]).is_err());
    assert!(s.scan_feed("nope", 0, &mut |_, _| Ok(true)).is_err());
    assert!(s.erase("nope", &[id(1)], at(1)).is_err());
}

fn peer(device: &str, org: &str) -> Peer {
    Peer {
        device: device.to_string(),
        org: org.to_string(),
    }
}

fn push_one<S: HubStorage>(s: &S, who: &Peer, record: &Record, actor: u8) -> PushOutcome {
    let (_, data, heads) = document(record, actor);
    let req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![DocPush {
            id: record.id,
            heads,
            data,
            full: true,
        }],
        erased: vec![],
    };
    let resp = push(s, who, &req, at(2)).unwrap();
    resp.results.into_iter().next().unwrap().outcome
}

/// The key every conformance test signs cursors with.
fn key() -> CursorKey {
    CursorKey::new([42; 32])
}

fn pull_all<S: HubStorage>(s: &S, who: &Peer) -> PullResponse {
    let req = PullRequest {
        device_time: None,
        report: None,
        v: PROTOCOL_VERSION,
        since: 0,
        limit: 100,
        epoch: 0,
        sig: Vec::new(),
        config_version: 0,
    };
    pull(s, who, &req, &key(), || 1234).unwrap().response
}

pub fn a_pushed_record_reaches_another_device_but_not_its_own<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A, B]);
    let (a1, a2, b1) = (peer("a1", A), peer("a2", A), peer("b1", B));
    let r = visit(A, id(1), "delas");
    assert!(matches!(
        push_one(&s, &a1, &r, 1),
        PushOutcome::Merged { .. }
    ));
    assert!(pull_all(&s, &a1).items.is_empty(), "not sent back");
    let got = pull_all(&s, &a2);
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].id, r.id);
    assert!(matches!(got.items[0].body, FeedBody::Doc { .. }));
    assert!(
        pull_all(&s, &b1).items.is_empty(),
        "another org's device gets nothing"
    );
    // A record claiming another org is refused.
    let foreign = visit(B, id(2), "fel org");
    assert!(matches!(
        push_one(&s, &a1, &foreign, 1),
        PushOutcome::Refused { .. }
    ));
}

/// The divergence the old hub had: a tombstone of one org answered
/// "erased" to another org's push of the same id, telling that laptop to
/// erase its own record.
pub fn an_id_erased_by_another_org_is_stored_for_this_one<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A, B]);
    let (a1, b1) = (peer("a1", A), peer("b1", B));
    let shared = id(1);
    let erase_req = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![],
        erased: vec![shared],
    };
    push(&s, &a1, &erase_req, at(3)).unwrap();
    assert_eq!(
        push_one(&s, &a1, &visit(A, shared, "a"), 1),
        PushOutcome::Erased,
        "in its own org the id stays erased"
    );
    let outcome = push_one(&s, &b1, &visit(B, shared, "b"), 2);
    assert!(
        matches!(outcome, PushOutcome::Merged { .. }),
        "org B's record is stored, not erased: {outcome:?}"
    );
    assert!(matches!(s.get(B, &[shared]).unwrap()[0], Held::Doc { .. }));
}

pub fn concurrent_pushes_of_one_record_both_merge<S: HubStorage + 'static>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = Arc::new(make(&[A]));
    let r = visit(A, id(1), "original");
    let (mut base, data, heads) = document(&r, 1);
    let first = PushRequest {
        report: None,
        v: PROTOCOL_VERSION,
        device_time: 0,
        docs: vec![DocPush {
            id: r.id,
            heads: heads.clone(),
            data,
            full: true,
        }],
        erased: vec![],
    };
    push(&*s, &peer("a1", A), &first, at(1)).unwrap();
    // Eight replicas each change their own field of one record and push
    // at the same time: every edit must be in the hub's copy.
    let edits = [
        ("minutes", json!(45)),
        ("outcome", json!("partly")),
        ("channel", json!("booked")),
        ("age_band", json!("80_plus")),
        ("language", json!("ar")),
        ("referred_to", json!("Skatteverket")),
        ("time", json!("13:30")),
        ("note", json!("ändrad")),
    ];
    std::thread::scope(|scope| {
        for (n, (key, value)) in edits.iter().enumerate() {
            let s = Arc::clone(&s);
            let mut am = base.fork().with_actor(ActorId::from([n as u8 + 10; 16]));
            let heads = heads.clone();
            scope.spawn(move || {
                doc::apply_patch(
                    &mut am,
                    &[(key.to_string(), value.clone())].into_iter().collect(),
                )
                .unwrap();
                let req = PushRequest {
                    report: None,
                    v: PROTOCOL_VERSION,
                    device_time: 0,
                    docs: vec![DocPush {
                        id: r.id,
                        heads: Heads::from_hashes(&am.get_heads()),
                        data: am.save_after(&heads.hashes()),
                        full: false,
                    }],
                    erased: vec![],
                };
                let resp = push(&*s, &peer(&format!("a{n}"), A), &req, at(2)).unwrap();
                assert!(
                    matches!(resp.results[0].outcome, PushOutcome::Merged { .. }),
                    "{resp:?}"
                );
            });
        }
    });
    let Held::Doc { data, .. } = &s.get(A, &[r.id]).unwrap()[0] else {
        panic!("the record is gone");
    };
    let merged = AutoCommit::load(data).unwrap();
    for (key, value) in &edits {
        let got = merged
            .get(automerge::ROOT, *key)
            .unwrap()
            .map(|(v, _)| v.to_string());
        assert_eq!(got, Some(value.to_string()), "the edit of {key} was lost");
    }
}

pub fn a_cursor_ahead_of_the_feed_gets_a_new_epoch<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    let s = make(&[A]);
    let a1 = peer("a1", A);
    push_one(&s, &a1, &visit(A, id(1), "en"), 1);
    let before = pull_all(&s, &a1).epoch;
    // A position this hub signed in this epoch (as before a restore from
    // a backup that ends at 1).
    let ahead = PullRequest {
        device_time: None,
        report: None,
        v: PROTOCOL_VERSION,
        since: 50,
        limit: 100,
        epoch: before,
        sig: key().sign(A, before, 50),
        config_version: 0,
    };
    let pulled = pull(&s, &a1, &ahead, &key(), || before + 7).unwrap();
    assert_eq!(pulled.cursor, CursorCheck::Restored);
    let resp = pulled.response;
    assert_eq!(resp.epoch, before + 7);
    assert_eq!(resp.next, 1, "the answer names where the feed ends");
    assert!(resp.items.is_empty() && !resp.more);
    assert!(
        key().verify(A, before + 7, 1, &resp.sig),
        "the answer is signed"
    );
    assert_eq!(pull_all(&s, &a1).epoch, before + 7, "the new epoch is kept");
    // The same cursor again names an epoch that is over: no second reset.
    let again = pull(&s, &a1, &ahead, &key(), || unreachable!("no new epoch")).unwrap();
    assert_eq!(again.cursor, CursorCheck::Unproven);
}

/// A device cannot make its org's laptops resend everything: a cursor
/// beyond the feed that this hub did not sign (forged, signed for another
/// org, or with another key) only tells that device to start over.
pub fn a_forged_cursor_ahead_of_the_feed_changes_no_epoch<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    let s = make(&[A, B]);
    let a1 = peer("a1", A);
    push_one(&s, &a1, &visit(A, id(1), "en"), 1);
    let before = pull_all(&s, &a1).epoch;
    let b_epoch = pull_all(&s, &peer("b1", B)).epoch;
    for sig in [
        Vec::new(),
        vec![0u8; 32],
        key().sign(B, b_epoch, 1_000_000),
        CursorKey::new([1; 32]).sign(A, before, 1_000_000),
    ] {
        let forged = PullRequest {
            device_time: None,
            report: None,
            v: PROTOCOL_VERSION,
            since: 1_000_000,
            limit: 100,
            epoch: before,
            sig,
            config_version: 0,
        };
        let pulled = pull(&s, &a1, &forged, &key(), || unreachable!("no new epoch")).unwrap();
        assert_eq!(pulled.cursor, CursorCheck::Unproven);
        assert_eq!(pulled.response.epoch, before, "the org's epoch is kept");
        assert_eq!(
            pulled.response.next, 1,
            "the device is sent back to the feed's end"
        );
    }
    assert_eq!(pull_all(&s, &a1).epoch, before);
}

/// Configuration entries: one blob per `(org, kind)`, replaced by a write,
/// each write at a version above every earlier one of the org.
pub fn configuration_entries_are_versioned_per_org<S: HubStorage>(make: impl Fn(&[&str]) -> S) {
    use crate::central::{ConfigEntry, KIND_CATALOGUE, KIND_SITES};
    let s = make(&[A, B]);
    assert!(s.config(A).unwrap().is_empty(), "a new org has none");
    let v1 = s
        .set_config(A, KIND_SITES, b"[\"Mj\xc3\xb6lby bibliotek\"]")
        .unwrap();
    let v2 = s.set_config(A, KIND_CATALOGUE, b"# empty").unwrap();
    let v3 = s.set_config(A, KIND_SITES, b"[]").unwrap();
    assert!(v1 >= 1 && v2 > v1 && v3 > v2, "{v1} {v2} {v3}");
    let mut entries = s.config(A).unwrap();
    entries.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(
        entries,
        vec![
            ConfigEntry {
                kind: KIND_CATALOGUE.into(),
                version: v2,
                data: b"# empty".to_vec()
            },
            ConfigEntry {
                kind: KIND_SITES.into(),
                version: v3,
                data: b"[]".to_vec()
            },
        ]
    );
    assert!(s.config(B).unwrap().is_empty(), "orgs are separate");
    let b1 = s.set_config(B, KIND_SITES, b"[\"Boxholm\"]").unwrap();
    assert!(b1 >= 1);
    assert_eq!(s.config(A).unwrap().len(), 2, "B's write left A alone");
    assert!(s.config("nowhere").is_err());
    assert!(s.set_config("nowhere", KIND_SITES, b"[]").is_err());
}

/// A conditional configuration write applies only while the entry still
/// has the version the writer read: of two edits made from one read, the
/// second writes nothing (and may read again and retry).
pub fn a_conditional_configuration_write_loses_to_an_earlier_one<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    use crate::central::{KIND_CATALOGUE, KIND_SITES};
    let s = make(&[A, B]);
    assert_eq!(
        s.put_config(A, KIND_SITES, b"[\"x\"]", Some(5)).unwrap(),
        None,
        "no entry yet: only expect 0 applies"
    );
    assert!(
        s.config(A).unwrap().is_empty(),
        "the refused write left nothing"
    );
    let v1 = s
        .put_config(A, KIND_SITES, b"[\"Boxholm\"]", Some(0))
        .unwrap()
        .expect("the first write applies");
    let other = s.set_config(A, KIND_CATALOGUE, b"# other kind").unwrap();
    assert!(other > v1);
    let v2 = s
        .put_config(A, KIND_SITES, b"[\"Boxholm\",\"Mantorp\"]", Some(v1))
        .unwrap()
        .expect("another kind's write does not break the condition");
    assert_eq!(
        s.put_config(A, KIND_SITES, b"[\"Boxholm\",\"Ydre\"]", Some(v1))
            .unwrap(),
        None,
        "written from a stale read: refused"
    );
    let sites = s.config(A).unwrap();
    let sites = sites.iter().find(|e| e.kind == KIND_SITES).unwrap();
    assert_eq!(
        (sites.version, sites.data.as_slice()),
        (v2, &b"[\"Boxholm\",\"Mantorp\"]"[..])
    );
    assert_eq!(
        s.put_config(B, KIND_SITES, b"[]", Some(0))
            .unwrap()
            .map(|v| v >= 1),
        Some(true),
        "another org's versions are its own"
    );
    assert!(s.put_config("nowhere", KIND_SITES, b"[]", Some(0)).is_err());
}

/// The protocol over those entries: a pull carries the org's configuration
/// only when the laptop names another version.
pub fn a_pull_carries_the_configuration_when_the_laptop_holds_another<S: HubStorage>(
    make: impl Fn(&[&str]) -> S,
) {
    use crate::central::{KIND_SITES, OrgConfig};
    let s = make(&[A, B]);
    let a1 = peer("a1", A);
    let with_version = |v: u64| PullRequest {
        device_time: None,
        report: None,
        v: PROTOCOL_VERSION,
        since: 0,
        limit: 100,
        epoch: 0,
        sig: Vec::new(),
        config_version: v,
    };
    let resp = pull(&s, &a1, &with_version(0), &key(), || 1)
        .unwrap()
        .response;
    assert_eq!(resp.config, None, "no configuration, nothing sent");
    let v = s
        .set_config(
            A,
            KIND_SITES,
            &OrgConfig::sites_blob(&["Mjölby bibliotek".into()]),
        )
        .unwrap();
    let resp = pull(&s, &a1, &with_version(0), &key(), || 1)
        .unwrap()
        .response;
    let config = resp.config.expect("a laptop without it gets it");
    assert_eq!(config.version, v);
    assert_eq!(config.sites, ["Mjölby bibliotek"]);
    let resp = pull(&s, &a1, &with_version(v), &key(), || 1)
        .unwrap()
        .response;
    assert_eq!(resp.config, None, "a laptop that holds it gets nothing");
    let b1 = peer("b1", B);
    let resp = pull(&s, &b1, &with_version(0), &key(), || 1)
        .unwrap()
        .response;
    assert_eq!(resp.config, None, "another org's configuration stays there");
}
