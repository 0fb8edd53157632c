//! Valid records for tests, shared by every crate's tests (cargo feature
//! `test-support`).
//!
//! Why: "a valid visit" used to be spelled out in a dozen tests, and each
//! copy had to change when a rule did (e.g. the services rule). Tests take
//! these and override only what they are about.

use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fields::Fields;
use crate::record::{Kind, Record, new_record_fields};

/// The fixed device time of the fixtures: 2025-03-04T10:15:00+01:00.
pub fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").expect("a valid time")
}

/// The device id the fixtures use when none is given.
pub const DEVICE: &str = "d1e5c0de-0000-4000-8000-000000000001";

/// The visit-specific fields of a valid visit (no common fields), for
/// callers that start from a store's `new_fields`: a solved 30-minute
/// drop-in about BankID on 2025-03-04, in Swedish, age 65–79.
pub fn visit_body() -> Fields {
    [
        ("date", json!("2025-03-04")),
        ("minutes", json!(30)),
        ("channel", json!("drop_in")),
        ("services", json!(["BankID"])),
        ("category", json!("e_service")),
        ("outcome", json!("solved")),
        ("age_band", json!("65_79")),
        ("language", json!("sv")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Site and staff of the fixtures.
fn place(f: &mut Fields) {
    f.insert("site".into(), json!("Mjölby bibliotek"));
    f.insert("staff".into(), json!("AB"));
}

/// A UUID for a test's short name (`"dev-1"`, `"s1"`): ids are UUIDs in
/// records, and tests read better with names. A UUID stays as it is.
pub fn uuid_for(name: &str) -> String {
    match Uuid::parse_str(name) {
        Ok(u) => u.to_string(),
        Err(_) => Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string(),
    }
}

/// Every field of a valid visit of `org`, made by `device` (a UUID, or a
/// name turned into one by [`uuid_for`]) at `now`.
pub fn visit_fields_at(org: &str, device: &str, id: Uuid, now: DateTime<FixedOffset>) -> Fields {
    let mut f = new_record_fields(Kind::Visit, org, &uuid_for(device), now, id);
    place(&mut f);
    f.extend(visit_body());
    f
}

/// Every field of a valid visit of `org` (fresh id, [`DEVICE`], [`now`]).
pub fn visit_fields(org: &str) -> Fields {
    visit_fields_at(org, DEVICE, Uuid::new_v4(), now())
}

/// A valid visit of `org` (fresh id, [`DEVICE`], [`now`]).
pub fn visit(org: &str) -> Record {
    with(visit_fields(org), [])
}

/// A valid visit of `org` with `note`.
pub fn visit_with_note(org: &str, note: &str) -> Record {
    with(visit_fields(org), [("note", json!(note))])
}

/// Every field of a valid course of `org` made by `device` at `now`, with
/// one session (`session` is its id) of 6 participants on 2025-03-04.
pub fn course_fields_at(
    org: &str,
    device: &str,
    id: Uuid,
    now: DateTime<FixedOffset>,
    session: &str,
) -> Fields {
    let mut f = new_record_fields(Kind::Course, org, &uuid_for(device), now, id);
    place(&mut f);
    f.insert("title".into(), json!("Kom igång med BankID"));
    f.insert(
        "sessions".into(),
        json!([{"id": uuid_for(session), "date": "2025-03-04", "minutes": 90, "participants": 6}]),
    );
    f
}

/// A valid course of `org` with one session (fresh ids, [`DEVICE`], [`now`]).
pub fn course(org: &str) -> Record {
    with(
        course_fields_at(
            org,
            DEVICE,
            Uuid::new_v4(),
            now(),
            &Uuid::new_v4().to_string(),
        ),
        [],
    )
}

/// `fields` with `changes` laid over, validated; panics (it is for tests)
/// with the validation errors when the result is not a valid record.
pub fn with<const N: usize>(mut fields: Fields, changes: [(&str, Value); N]) -> Record {
    for (k, v) in changes {
        fields.insert(k.to_string(), v);
    }
    match Record::from_fields(&fields) {
        Ok(r) => r,
        Err(e) => panic!("fixture is not a valid record: {e}"),
    }
}

/// A valid visit of `org` whose note is `len` characters of ordinary
/// text: long enough (over 256 bytes) for Automerge to deflate the value
/// column when it saves, as it does for honest records.
pub fn visit_with_long_note(org: &str, len: usize) -> Record {
    let words = "hjälpte med BankID och Mina sidor, ";
    let note: String = words.chars().cycle().take(len).collect();
    visit_with_note(org, note.trim_end())
}

/// A DEFLATE bomb (issue 9): a checksum-valid record document, saved by
/// Automerge itself, whose note (deflated by Automerge, as any long value)
/// inflates to more than [`crate::untrusted::MAX_INFLATED_BYTES`] while
/// the bytes stay around 10 KB. Its id, and the bytes.
pub fn deflate_bomb(org: &str) -> (Uuid, Vec<u8>) {
    use automerge::{ROOT, transaction::Transactable};
    let rec = visit(org);
    let mut am = crate::doc::create(&rec, automerge::ActorId::random()).expect("a valid fixture");
    let huge = "a".repeat(crate::untrusted::MAX_INFLATED_BYTES + 4096);
    am.put(ROOT, "note", huge).expect("a put");
    am.commit();
    (rec.id, am.save())
}

/// The checksum Automerge expects in a chunk header of type `kind` over
/// `data` (the first 4 bytes of SHA-256 over the type, the uLEB128 length
/// and the data; for a compressed change chunk, over the inflated change
/// as type 1).
pub fn chunk_checksum(kind: u8, data: &[u8]) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let mut head = vec![kind];
    write_uleb(&mut head, data.len() as u64);
    let hash = Sha256::new()
        .chain_update(&head)
        .chain_update(data)
        .finalize();
    [hash[0], hash[1], hash[2], hash[3]]
}

/// A chunk: magic bytes, `checksum`, type `kind`, the length and `data`.
pub fn chunk(kind: u8, checksum: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x85, 0x6f, 0x4a, 0x83];
    out.extend(checksum);
    out.push(kind);
    write_uleb(&mut out, data.len() as u64);
    out.extend(data);
    out
}

/// Appends `n` as unsigned LEB128.
pub fn write_uleb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A compressed change chunk (type 2) holding `inflated` deflated, with
/// the checksum Automerge expects (over `inflated` as a change chunk).
/// Automerge inflates it whole before it looks at the change inside.
pub fn compressed_change_chunk(inflated: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(inflated).expect("writing to memory");
    let deflated = e.finish().expect("writing to memory");
    chunk(2, chunk_checksum(1, inflated), &deflated)
}
