//! Documents from outside: loaded and merged with their faults contained,
//! bounded, and screened whole before anything keeps them.
//!
//! Every Automerge byte that reaches the hub (a push), a laptop (a pull, a
//! merged push answer, its own store) or `import` comes through here, so
//! the three places apply one rule:
//!
//! - [`load`] / [`merge`]: size bound first, then every compressed part
//!   inflated, counting only, against [`MAX_INFLATED_BYTES`] (`deflate`:
//!   a pre-parser of the chunk and column layout, because Automerge
//!   inflates without a limit), then Automerge's decoder under
//!   `catch_unwind`. The decoder has panicked on crafted, checksum-valid
//!   bytes; a panic refuses that one document ([`Refusal::DecoderPanic`])
//!   and the half-built document is dropped, so no caller ever sees it.
//!   Neither function is ever called with a lock held.
//! - [`check`]: bounds on the history (changes, operations) and the whole
//!   document screened: every key and every value ever written, in every
//!   change (so deleted fields, losers of concurrent writes and overwritten
//!   values too), change messages and actor ids, against the privacy screen
//!   (DESIGN.md section 4); fields with a fixed shape (ids, `device`,
//!   session ids) are checked for that shape instead, and only the layout
//!   `doc` writes is accepted (maps with scalar values; no text, lists,
//!   counters or marks, which could spread one number over many values).
//!   The current values are then validated as a record by the caller.
//!
//! A [`Refusal`] names the field and the kind of problem, never a value.

use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::legacy::{Key, ObjectId, OpType};
use automerge::{AutoCommit, ChangeHash, ObjType, ScalarValue};
use serde_json::Value;

use crate::doc;
use crate::screen::{ScreenError, screen_field};

mod deflate;
pub use deflate::{Inflated, inflated_size};

/// Largest document accepted, in stored (`save()`) bytes. An ordinary record
/// with years of edits is a few KB; 6 MB of hidden history was an attack.
pub const MAX_DOC_BYTES: usize = 1024 * 1024;
/// Most bytes the compressed parts of one input may inflate to, all
/// together. Automerge compresses a column or change of 256 bytes or more
/// when saving, at 2 to 10 times on record data; 8 times the largest input
/// taken leaves room for any honest document, while a DEFLATE bomb (about
/// 1,000 times) is refused before Automerge allocates its inflated size.
pub const MAX_INFLATED_BYTES: usize = 8 * MAX_DOC_BYTES;
/// Most compressed parts (deflated columns, compressed change chunks) in
/// one input: every change of a full history compressed, plus the columns
/// of the documents beside them. Each part costs a fresh decoder in
/// Automerge, so a flood of tiny ones would stall it.
pub const MAX_COMPRESSED_PARTS: usize = 2 * MAX_CHANGES;
/// Most changes in one document's history (each edit is one change).
pub const MAX_CHANGES: usize = 1_000;
/// Most operations in one document's history (a new visit is about 25).
pub const MAX_OPS: u64 = 20_000;

/// Why a document from outside was not taken. Never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the document is larger than {MAX_DOC_BYTES} bytes; a record is never that large, so it was refused"
    )]
    TooLarge,
    #[error(
        "the document's compressed parts inflate to more than {MAX_INFLATED_BYTES} bytes; a record is never that large, so it was refused"
    )]
    InflatesTooLarge,
    #[error(
        "the document has more than {MAX_COMPRESSED_PARTS} compressed parts; a record never has that many, so it was refused"
    )]
    TooManyCompressedParts,
    #[error("the document has more than {MAX_CHANGES} changes in its history; it was refused")]
    TooManyChanges,
    #[error("the document has more than {MAX_OPS} operations in its history; it was refused")]
    TooManyOps,
    #[error("the document bytes are damaged ({0})")]
    Damaged(String),
    #[error(
        "the document bytes crashed the Automerge decoder; the document was refused and nothing else was affected"
    )]
    DecoderPanic,
    #[error("the document is incomplete (changes are missing from it)")]
    Incomplete,
    /// Personal data somewhere in the document (current value or history).
    #[error("{0} (somewhere in the record's history)")]
    Screen(ScreenError),
    #[error("{field} {what}")]
    Shape { field: String, what: String },
    #[error(
        "the record was written by a newer Outpost (document layout {0}); upgrade the hub (or this laptop's Outpost) to read it"
    )]
    NewerLayout(i64),
}

fn shape(field: impl Into<String>, what: impl Into<String>) -> Refusal {
    Refusal::Shape {
        field: field.into(),
        what: what.into(),
    }
}

/// The bounds Automerge does not keep itself, before it sees the bytes:
/// their length, and what their compressed parts inflate to.
fn bounded(bytes: &[u8]) -> Result<(), Refusal> {
    if bytes.len() > MAX_DOC_BYTES {
        return Err(Refusal::TooLarge);
    }
    inflated_size(bytes).map(|_| ())
}

/// Loads a whole document from outside bytes: bounded, with a decoder
/// panic turned into a refusal. Does not [`check`] it.
pub fn load(bytes: &[u8]) -> Result<AutoCommit, Refusal> {
    bounded(bytes)?;
    match catch_unwind(|| AutoCommit::load(bytes)) {
        Ok(Ok(am)) => Ok(am),
        Ok(Err(e)) => Err(Refusal::Damaged(e.to_string())),
        Err(_) => Err(Refusal::DecoderPanic),
    }
}

/// Merges outside bytes (a whole document or changes) into `am`. Takes
/// `am` by value: after a decoder panic the half-merged document is
/// dropped here, never used again.
pub fn merge(am: AutoCommit, bytes: &[u8]) -> Result<AutoCommit, Refusal> {
    bounded(bytes)?;
    let mut am = am;
    match catch_unwind(AssertUnwindSafe(move || {
        am.load_incremental(bytes).map(|_| am)
    })) {
        Ok(Ok(am)) => Ok(am),
        Ok(Err(e)) => Err(Refusal::Damaged(e.to_string())),
        Err(_) => Err(Refusal::DecoderPanic),
    }
}

/// Bounds and screens the whole history of `am` (see the module notes).
/// `known` are heads already checked (what the hub or laptop held before
/// merging): only the changes after them are screened again, while the
/// bounds always count the whole history.
pub fn check(am: &mut AutoCommit, known: &[ChangeHash]) -> Result<(), Refusal> {
    // Reading the history decodes stored columns again: contained too.
    match catch_unwind(AssertUnwindSafe(|| check_inner(am, known))) {
        Ok(r) => r,
        Err(_) => Err(Refusal::DecoderPanic),
    }
}

fn check_inner(am: &mut AutoCommit, known: &[ChangeHash]) -> Result<(), Refusal> {
    if !am.get_missing_deps(&[]).is_empty() {
        return Err(Refusal::Incomplete);
    }
    let meta = am.get_changes_meta(&[]);
    if meta.len() > MAX_CHANGES {
        return Err(Refusal::TooManyChanges);
    }
    let ops: u64 = meta
        .iter()
        .map(|m| (m.max_op + 1).saturating_sub(m.start_op))
        .fold(0u64, u64::saturating_add);
    if ops > MAX_OPS {
        return Err(Refusal::TooManyOps);
    }
    drop(meta);
    for change in am.get_changes(known) {
        if change.message().is_some_and(|m| !m.is_empty()) {
            return Err(shape("a change message", "is not used by Outpost"));
        }
        if change.author().is_some() || !change.extra_bytes().is_empty() {
            return Err(shape("a change", "carries data Outpost does not write"));
        }
        for actor in change.actors() {
            let bytes = actor.to_bytes();
            if bytes.len() > 32 {
                return Err(shape("an actor id", "is longer than 32 bytes"));
            }
            screen_text("actor id", &String::from_utf8_lossy(bytes))?;
        }
        for op in change.decode().operations {
            check_op(&op.obj, &op.key, &op.action)?;
        }
    }
    check_layout_version(am)
}

/// One operation of a change: only the layout `doc` writes, every key and
/// value screened or shape-checked.
fn check_op(obj: &ObjectId, key: &Key, action: &OpType) -> Result<(), Refusal> {
    let Key::Map(key) = key else {
        return Err(shape(
            "a record",
            "holds a list or text object (not used by Outpost)",
        ));
    };
    let root = matches!(obj, ObjectId::Root);
    // Any other object can only be the sessions map (see `Make` below),
    // whose keys are session ids.
    if root {
        screen_text("a field name", key)?;
    } else {
        uuid_shape("a session id", key)?;
    }
    match action {
        OpType::Make(ObjType::Map) if root && key.as_str() == doc::SESSIONS => Ok(()),
        OpType::Make(_) => Err(shape(
            key.to_string(),
            "holds an object Outpost does not write",
        )),
        OpType::Delete => Ok(()),
        OpType::Put(value) => {
            if root {
                check_value(key, value)
            } else {
                check_session_value(key, value)
            }
        }
        OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_) => Err(shape(
            key.to_string(),
            "holds a counter or mark (not used by Outpost)",
        )),
    }
}

/// A root value, current or past.
fn check_value(key: &str, value: &ScalarValue) -> Result<(), Refusal> {
    let field = key;
    match value {
        ScalarValue::Str(s) => {
            if matches!(field, "id" | "device") {
                return uuid_shape(field, s);
            }
            if doc::LIST_FIELDS.contains(&field) {
                // Lists are JSON text: screen each entry, not the JSON
                // punctuation between them.
                return match serde_json::from_str::<Value>(s) {
                    Ok(v) => check_json(field, &v),
                    Err(_) => Err(shape(field, "is not a list")),
                };
            }
            screen_text(field, s)
        }
        ScalarValue::Int(_)
        | ScalarValue::Uint(_)
        | ScalarValue::F64(_)
        | ScalarValue::Boolean(_)
        | ScalarValue::Null => Ok(()),
        _ => Err(shape(field, "holds a value type Outpost does not write")),
    }
}

/// A course session: JSON text keyed by its id.
fn check_session_value(sid: &str, value: &ScalarValue) -> Result<(), Refusal> {
    let ScalarValue::Str(s) = value else {
        return Err(shape("a session", "is not text"));
    };
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => {
            if v.get("id").and_then(Value::as_str) != Some(sid) {
                return Err(shape(
                    "a session",
                    "is stored under another id than its own",
                ));
            }
            check_json("sessions", &v)
        }
        _ => Err(shape("a session", "is not a JSON object")),
    }
}

/// Every key and string inside a JSON value; `id` keys hold UUIDs.
fn check_json(field: &str, v: &Value) -> Result<(), Refusal> {
    match v {
        Value::String(s) => screen_text(field, s),
        Value::Array(items) => items.iter().try_for_each(|i| check_json(field, i)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            screen_text(field, k)?;
            match (k.as_str(), v) {
                ("id", Value::String(s)) => uuid_shape("a session id", s),
                _ => check_json(field, v),
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn screen_text(field: &str, text: &str) -> Result<(), Refusal> {
    screen_field(field, text).map_err(Refusal::Screen)
}

/// A fixed-shape id: a UUID in its usual hyphenated form. (Its hex digits
/// are not screened: a random UUID would now and then look like a number.)
fn uuid_shape(field: &str, s: &str) -> Result<(), Refusal> {
    match uuid::Uuid::parse_str(s) {
        Ok(u) if u.hyphenated().to_string() == s.to_ascii_lowercase() => Ok(()),
        _ => Err(shape(field, "is not a UUID")),
    }
}

/// `$schema`: a layout this build knows.
fn check_layout_version(am: &AutoCommit) -> Result<(), Refusal> {
    match doc::layout_version(am) {
        Some(v) if v == doc::SCHEMA_VERSION => Ok(()),
        Some(v) if v > doc::SCHEMA_VERSION => Err(Refusal::NewerLayout(v)),
        _ => Err(shape("$schema", "is not a document layout Outpost knows")),
    }
}

/// Loads outside bytes and checks them whole: what `import` of a raw
/// document and a laptop's store check use.
pub fn load_checked(bytes: &[u8]) -> Result<AutoCommit, Refusal> {
    let mut am = load(bytes)?;
    check(&mut am, &[])?;
    Ok(am)
}
