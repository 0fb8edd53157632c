//! Entry points for the fuzz targets in `fuzz/` and for the stable test that
//! replays their corpora (`tests/fuzz_corpus.rs`), so both run one code
//! path: the one the hub and the laptop run on outside bytes. Each takes
//! arbitrary bytes and must return without panicking, whatever they are.
//!
//! (Feature `test-support`: never in a release build.)

use std::sync::LazyLock;

use automerge::{ActorId, AutoCommit};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::hub::{self, HubStorage, Peer, mem::MemStorage};
use crate::sync::{self, FeedBody, LocalHeld, PullResponse, PushRequest};
use crate::{catalogue, doc, fixtures, record::Record, screen, untrusted};

/// The org every fuzzed peer belongs to (the fixtures' org).
pub const ORG: &str = "mjolby";

/// A valid record document, the "already held" side of a merge.
static HELD: LazyLock<(Uuid, Vec<u8>)> = LazyLock::new(|| {
    let rec = fixtures::visit_with_note(ORG, "en anteckning");
    let mut am = doc::create(&rec, ActorId::from([7u8; 16])).expect("a valid fixture");
    (rec.id, am.save())
});

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_741_079_700, 0).expect("a valid time")
}

/// A push body (gzip + CBOR) as the hub answers it: decoded, then every
/// document merged (into nothing, and into a held copy) and checked.
pub fn push_body(data: &[u8]) {
    let Ok(req) = sync::decode_body::<PushRequest>(data) else {
        return;
    };
    let store = MemStorage::with_orgs(&[ORG]);
    let peer = Peer {
        device: fixtures::DEVICE.into(),
        org: ORG.into(),
    };
    let _ = hub::push(&store, &peer, &req, now());
    // The same documents again, now that the hub holds some of them.
    let _ = hub::push(&store, &peer, &req, now());
    let _ = store.get(ORG, &[HELD.0]);
}

/// A pull answer (gzip + CBOR) as a laptop applies it: every document
/// loaded new, and merged into a held copy, then checked.
pub fn pull_body(data: &[u8]) {
    let Ok(resp) = sync::decode_body::<PullResponse>(data) else {
        return;
    };
    for item in &resp.items {
        let _ = sync::apply_feed_item(item, LocalHeld::Nothing);
        if let FeedBody::Doc { .. } = item.body
            && let Ok(held) = untrusted::load(&HELD.1)
        {
            let _ = sync::apply_feed_item(item, LocalHeld::Doc(Box::new(held)));
        }
    }
}

/// Raw Automerge bytes, loaded and merged exactly as the hub and the
/// laptop do (bounded, contained), then checked and read as a record.
pub fn automerge_doc(data: &[u8]) {
    if let Ok(mut am) = untrusted::load(data)
        && untrusted::check(&mut am, &[]).is_ok()
        && let Ok(snap) = doc::read(&am)
    {
        let _ = Record::from_fields(&snap.fields);
    }
    if let Ok(mut held) = untrusted::load(&HELD.1) {
        let known = held.get_heads();
        if let Ok(mut am) = untrusted::merge(held, data)
            && untrusted::check(&mut am, &known).is_ok()
        {
            let _ = doc::read(&am);
        }
    }
}

/// The screen: the text alone, and a document holding it as a field name,
/// a current value and an overwritten value.
pub fn screen_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = screen::find_sensitive(&text);
    let _ = screen::normalise(&text);
    let mut am = AutoCommit::new();
    use automerge::ROOT;
    use automerge::transaction::Transactable;
    let key: String = text.chars().take(64).collect();
    if am.put(ROOT, "note", text.as_ref()).is_ok()
        && am.put(ROOT, "note", "ok").is_ok()
        && am.put(ROOT, key.as_str(), 1).is_ok()
    {
        am.commit();
        let _ = untrusted::check(&mut am, &[]);
    }
}

/// A service catalogue override file.
pub fn catalogue_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = catalogue::Catalogue::builtin().with_overrides(text, "fuzz.toml");
    }
}

/// The inflation pre-parser alone (`untrusted::inflated_size`): whatever
/// the bytes, it returns, within its bounds.
pub fn inflate_walk(data: &[u8]) {
    if let Ok(seen) = untrusted::inflated_size(data) {
        assert!(seen.bytes <= untrusted::MAX_INFLATED_BYTES as u64);
        assert!(seen.parts <= untrusted::MAX_COMPRESSED_PARTS);
    }
}

/// [`automerge_doc`] on the bytes with every chunk's checksum (and length)
/// made right, so that mutated bytes get past Automerge's checksum test
/// into its loader instead of stopping there.
pub fn automerge_fixed(data: &[u8]) {
    automerge_doc(&fix_checksums(data));
}

/// Rewrites the chunk framing of `data`: each chunk's magic bytes, its
/// checksum recomputed over its data, its length clipped to the bytes
/// that are left. Bytes too short for a header are kept as they are.
pub fn fix_checksums(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut rest = data;
    // Magic (4), checksum (4), type (1), at least one length byte.
    while rest.len() >= 10 {
        let kind = rest[8];
        let mut at = 9;
        let mut len = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = rest.get(at) else { break };
            at += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        let body = &rest[at.min(rest.len())..];
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(body.len());
        let (chunk, after) = body.split_at(len);
        let checksum = if kind == 2 {
            // A compressed change's checksum is its inflated change's
            // (bounded like everything else here).
            let mut inflated = Vec::new();
            let limit = untrusted::MAX_INFLATED_BYTES as u64;
            match flate2::bufread::DeflateDecoder::new(chunk)
                .take(limit)
                .read_to_end(&mut inflated)
            {
                Ok(_) => fixtures::chunk_checksum(1, &inflated),
                Err(_) => fixtures::chunk_checksum(kind, chunk),
            }
        } else {
            fixtures::chunk_checksum(kind, chunk)
        };
        out.extend(fixtures::chunk(kind, checksum, chunk));
        rest = after;
    }
    out.extend(rest);
    out
}
