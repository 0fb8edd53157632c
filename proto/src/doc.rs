//! How a record lives in an Automerge document.
//!
//! One document per record, so erasing a record drops its whole history
//! (Automerge cannot truncate history inside a document). Layout:
//!
//! - every scalar field sits at the document root (a string, integer or
//!   boolean), so concurrent edits of *different* fields merge and edits of
//!   the *same* field pick one winner everywhere, with the losers readable via
//!   `get_all` (shown as `conflicts`);
//! - list fields (`services`, `assistive`, `barriers`) are one JSON-encoded
//!   string each: a list is edited as a whole from the CLI, so it behaves as
//!   one field with a visible conflict rather than an element-wise mix that
//!   nobody entered;
//! - `sessions` is a map created once with the document, keyed by session
//!   id, each value the session as JSON; two laptops adding sessions to the
//!   same course concurrently both keep theirs.
//!
//! Absent optional fields are absent keys. `updated_at` is metadata: when
//! edits race, the latest time wins and it is never reported as a conflict.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{
    ActorId, AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value as AmValue,
};
use serde_json::Value;

use crate::fields::Fields;
use crate::record::{Kind, Record, Session};

/// Marks the layout version, so a later layout can still read old documents.
pub const SCHEMA_KEY: &str = "$schema";
pub const SCHEMA_VERSION: i64 = 1;
pub const SESSIONS: &str = "sessions";
/// Fields stored as one JSON-encoded string each (see the module notes).
pub const LIST_FIELDS: &[&str] = &["services", "assistive", "barriers"];

/// The layout version a document says it has (`$schema`), if it is a
/// whole number.
pub fn layout_version<D: ReadDoc>(doc: &D) -> Option<i64> {
    match doc.get(ROOT, SCHEMA_KEY).ok()?? {
        (AmValue::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        },
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("record document is damaged: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("record document is damaged: field {field} holds {what}")]
    BadValue { field: String, what: &'static str },
}

/// What a document holds now: the winning value of each field, and the
/// values that lost a concurrent write (field → losing values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub fields: Fields,
    pub conflicts: BTreeMap<String, Vec<Value>>,
}

/// A new document holding `record`, written as one change by `actor`.
pub fn create(record: &Record, actor: ActorId) -> Result<AutoCommit, DocError> {
    let mut doc = AutoCommit::new().with_actor(actor);
    doc.put(ROOT, SCHEMA_KEY, SCHEMA_VERSION)?;
    // Only courses get the session map, created here once: a map created
    // independently on two replicas would shadow one of them after a merge.
    let sessions = match record.kind() {
        Kind::Course => Some(doc.put_object(ROOT, SESSIONS, ObjType::Map)?),
        Kind::Visit => None,
    };
    for (name, value) in record.to_fields() {
        if let (SESSIONS, Some(sessions)) = (name.as_str(), &sessions) {
            for s in value.as_array().into_iter().flatten() {
                put_session_value(&mut doc, sessions, s)?;
            }
        } else if let Some(scalar) = to_scalar(&name, &value) {
            doc.put(ROOT, name.as_str(), scalar)?;
        }
    }
    doc.commit();
    Ok(doc)
}

/// Writes the fields of `patch` that differ from the document (Null clears
/// an optional field) as one change. Unchanged fields are not rewritten, so
/// an edit never creates a conflict on a field it did not change. Returns
/// whether anything changed.
pub fn apply_patch(doc: &mut AutoCommit, patch: &Fields) -> Result<bool, DocError> {
    let current = read(doc)?.fields;
    let mut changed = false;
    for (name, value) in patch {
        if name == SESSIONS || name == "id" || name == "kind" {
            continue;
        }
        if current.get(name).unwrap_or(&Value::Null) == value {
            continue;
        }
        changed = true;
        match to_scalar(name, value) {
            Some(scalar) => doc.put(ROOT, name.as_str(), scalar)?,
            None => doc.delete(ROOT, name.as_str())?,
        }
    }
    if changed {
        doc.commit();
    }
    Ok(changed)
}

/// Adds (or replaces) one course session, as one change with `updated_at`.
pub fn put_session(
    doc: &mut AutoCommit,
    session: &Session,
    updated_at: &str,
) -> Result<(), DocError> {
    let sessions = match doc.get(ROOT, SESSIONS)? {
        Some((AmValue::Object(ObjType::Map), id)) => id,
        _ => {
            return Err(DocError::BadValue {
                field: SESSIONS.into(),
                what: "no session map (is this a visit?)",
            });
        }
    };
    let value = serde_json::to_value(session).unwrap_or(Value::Null);
    put_session_value(doc, &sessions, &value)?;
    doc.put(ROOT, "updated_at", updated_at)?;
    doc.commit();
    Ok(())
}

/// Removes one course session (from every session map, see
/// `read_sessions`), as one change with `updated_at`. Returns whether it
/// was there. A concurrent edit of the same session on another laptop
/// brings it back after the merge (Automerge keeps a concurrent write
/// over a delete), so nothing typed elsewhere is silently lost.
pub fn delete_session(
    doc: &mut AutoCommit,
    session_id: &str,
    updated_at: &str,
) -> Result<bool, DocError> {
    let maps: Vec<ObjId> = doc
        .get_all(ROOT, SESSIONS)?
        .into_iter()
        .filter(|(v, _)| matches!(v, AmValue::Object(ObjType::Map)))
        .map(|(_, id)| id)
        .collect();
    let mut found = false;
    for map in maps {
        if doc.get(&map, session_id)?.is_some() {
            doc.delete(&map, session_id)?;
            found = true;
        }
    }
    if found {
        doc.put(ROOT, "updated_at", updated_at)?;
        doc.commit();
    }
    Ok(found)
}

/// Resolves a conflict: writes `value` for `field` as a new change even
/// when it equals the current winner, so the new write supersedes every
/// concurrent value (the losers stay in the document's history, as all
/// changes do). `field` is a root field or `sessions.<session id>`.
pub fn resolve(
    doc: &mut AutoCommit,
    field: &str,
    value: &Value,
    updated_at: &str,
) -> Result<(), DocError> {
    if let Some(sid) = field.strip_prefix("sessions.") {
        let sessions = match doc.get(ROOT, SESSIONS)? {
            Some((AmValue::Object(ObjType::Map), id)) => id,
            _ => {
                return Err(DocError::BadValue {
                    field: SESSIONS.into(),
                    what: "no session map (is this a visit?)",
                });
            }
        };
        let mut value = value.clone();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("id".into(), Value::String(sid.to_string()));
        }
        put_session_value(doc, &sessions, &value)?;
    } else {
        match to_scalar(field, value) {
            Some(scalar) => doc.put(ROOT, field, scalar)?,
            None => doc.delete(ROOT, field)?,
        }
    }
    doc.put(ROOT, "updated_at", updated_at)?;
    doc.commit();
    Ok(())
}

fn put_session_value(
    doc: &mut AutoCommit,
    sessions: &ObjId,
    value: &Value,
) -> Result<(), DocError> {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .ok_or(DocError::BadValue {
            field: SESSIONS.into(),
            what: "a session without id",
        })?
        .to_string();
    doc.put(sessions, id.as_str(), value.to_string())?;
    Ok(())
}

/// Reads the current fields and conflicts of a record document.
pub fn read<D: ReadDoc>(doc: &D) -> Result<Snapshot, DocError> {
    let mut snap = Snapshot::default();
    // One pass over the root map; only a key whose item says `conflict`
    // is looked up again for all its values. (A `get_all` per key seeks
    // the op set once per field and cost as much as loading the document,
    // on the hub's push path and the laptop's pull path alike.)
    for item in doc.map_range(ROOT, ..) {
        let key = item.key.as_ref();
        if key == SCHEMA_KEY {
            continue;
        }
        if key == SESSIONS {
            let sessions = read_sessions(doc, &mut snap)?;
            snap.fields.insert(key.to_string(), sessions);
            continue;
        }
        if !item.conflict {
            let value = from_scalar(key, &item.value.into_value())?;
            snap.fields.insert(key.to_string(), value);
            continue;
        }
        let key = key.to_string();
        let all = doc.get_all(ROOT, key.as_str())?;
        let mut values = Vec::with_capacity(all.len());
        for (v, _) in &all {
            values.push(from_scalar(&key, v)?);
        }
        if key == "updated_at" {
            // Latest wins; RFC 3339 strings of one offset sort by time, and
            // parsing keeps it right across offsets.
            let latest = values
                .iter()
                .filter_map(|v| v.as_str())
                .max_by_key(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|s| Value::String(s.to_string()));
            if let Some(latest) = latest {
                snap.fields.insert(key, latest);
            }
            continue;
        }
        if let Some(winner) = values.pop() {
            // A "conflict" with the same value (two replicas wrote the
            // same thing) is no conflict for the person reading it.
            values.retain(|v| *v != winner);
            values.dedup();
            snap.fields.insert(key.clone(), winner);
        }
        if !values.is_empty() {
            snap.conflicts.insert(key, values);
        }
    }
    Ok(snap)
}

/// The course sessions, with their conflicts noted in `snap`.
fn read_sessions<D: ReadDoc>(doc: &D, snap: &mut Snapshot) -> Result<Value, DocError> {
    // Normally one map. Two replicas that created the same record id on
    // their own (e.g. both imported one export) each made a map; read them
    // all, so no session hides behind the other.
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (v, map) in doc.get_all(ROOT, SESSIONS)? {
        if !matches!(v, AmValue::Object(ObjType::Map)) {
            continue;
        }
        for sid in doc.keys(&map) {
            // get_all lists the winner last, same as `get`.
            for (v, _) in doc.get_all(&map, sid.as_str())? {
                let value = session_json(&v, &sid)?;
                let values = by_id.entry(sid.clone()).or_default();
                values.retain(|x| *x != value);
                values.push(value);
            }
        }
    }
    let mut sessions = Vec::with_capacity(by_id.len());
    for (sid, mut values) in by_id {
        if let Some(winner) = values.pop() {
            sessions.push(winner);
        }
        if !values.is_empty() {
            snap.conflicts.insert(format!("sessions.{sid}"), values);
        }
    }
    Ok(Value::Array(sessions))
}

fn session_json(v: &AmValue<'_>, sid: &str) -> Result<Value, DocError> {
    match v {
        AmValue::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(text) => serde_json::from_str(text).map_err(|_| DocError::BadValue {
                field: format!("sessions.{sid}"),
                what: "text that is not JSON",
            }),
            _ => Err(DocError::BadValue {
                field: format!("sessions.{sid}"),
                what: "a non-text value",
            }),
        },
        AmValue::Object(_) => Err(DocError::BadValue {
            field: format!("sessions.{sid}"),
            what: "an object",
        }),
    }
}

fn to_scalar(name: &str, value: &Value) -> Option<ScalarValue> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(ScalarValue::Boolean(*b)),
        Value::Number(n) => Some(
            n.as_i64()
                .map(ScalarValue::Int)
                .unwrap_or_else(|| ScalarValue::F64(n.as_f64().unwrap_or(0.0))),
        ),
        Value::String(s) => Some(ScalarValue::Str(s.as_str().into())),
        Value::Array(_) | Value::Object(_) => {
            debug_assert!(
                LIST_FIELDS.contains(&name),
                "unexpected structured field {name}"
            );
            Some(ScalarValue::Str(value.to_string().into()))
        }
    }
}

fn from_scalar(name: &str, v: &AmValue<'_>) -> Result<Value, DocError> {
    let bad = |what| DocError::BadValue {
        field: name.to_string(),
        what,
    };
    let AmValue::Scalar(s) = v else {
        return Err(bad("an object"));
    };
    Ok(match s.as_ref() {
        ScalarValue::Str(text) if LIST_FIELDS.contains(&name) => {
            serde_json::from_str(text).map_err(|_| bad("text that is not a JSON list"))?
        }
        ScalarValue::Str(text) => Value::String(text.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => Value::from(*f),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Null => Value::Null,
        _ => return Err(bad("an unsupported value type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_record_fields;
    use serde_json::json;

    fn visit() -> Record {
        crate::fixtures::visit_with_note("mjolby", "first note")
    }

    #[test]
    fn concurrent_edits_merge_per_field_and_keep_losers() {
        let rec = visit();
        let mut a = create(&rec, ActorId::from([1u8; 16])).unwrap();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        let mut c = a.fork().with_actor(ActorId::from([3u8; 16]));
        apply_patch(&mut a, &Fields::from([("outcome".into(), json!("partly"))])).unwrap();
        apply_patch(
            &mut b,
            &Fields::from([("outcome".into(), json!("referred"))]),
        )
        .unwrap();
        apply_patch(&mut c, &Fields::from([("minutes".into(), json!(45))])).unwrap();
        a.merge(&mut b).unwrap();
        a.merge(&mut c).unwrap();
        b.merge(&mut c).unwrap();
        b.merge(&mut a).unwrap();
        let (sa, sb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(sa, sb, "replicas converge");
        assert_eq!(sa.fields["minutes"], json!(45));
        let winner = sa.fields["outcome"].clone();
        let loser = &sa.conflicts["outcome"];
        assert_eq!(loser.len(), 1);
        let mut both = vec![winner, loser[0].clone()];
        both.sort_by_key(|v| v.to_string());
        assert_eq!(both, vec![json!("partly"), json!("referred")]);
        assert!(Record::from_fields(&sa.fields).is_ok());
    }

    #[test]
    fn resolving_a_conflict_with_the_loser_or_the_winner_ends_it_on_every_replica() {
        for pick_loser in [true, false] {
            let rec = visit();
            let mut a = create(&rec, ActorId::from([1u8; 16])).unwrap();
            let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
            apply_patch(&mut a, &Fields::from([("outcome".into(), json!("partly"))])).unwrap();
            apply_patch(
                &mut b,
                &Fields::from([("outcome".into(), json!("referred"))]),
            )
            .unwrap();
            a.merge(&mut b).unwrap();
            let snap = read(&a).unwrap();
            let chosen = if pick_loser {
                snap.conflicts["outcome"][0].clone()
            } else {
                snap.fields["outcome"].clone()
            };
            resolve(&mut a, "outcome", &chosen, "2025-03-05T10:00:00+01:00").unwrap();
            b.merge(&mut a).unwrap();
            for doc in [&a, &b] {
                let s = read(doc).unwrap();
                assert!(s.conflicts.is_empty(), "{s:?}");
                assert_eq!(s.fields["outcome"], chosen);
            }
        }
    }

    #[test]
    fn one_record_created_on_two_replicas_merges_without_hiding_sessions() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap();
        let mut f = new_record_fields(
            Kind::Course,
            "mjolby",
            "d1e5c0de-0000-4000-8000-000000000001",
            now,
            uuid::Uuid::new_v4(),
        );
        f.insert("site".into(), json!("Mjölby bibliotek"));
        f.insert("staff".into(), json!("AB"));
        f.insert("title".into(), json!("Nybörjarkurs"));
        f.insert(
            "sessions".into(),
            json!([{"id": "00000000-0000-4000-8000-000000000051", "date": "2025-03-04", "minutes": 60, "participants": 5}]),
        );
        let rec = Record::from_fields(&f).unwrap();
        // Two laptops import the same export: two independent documents.
        let mut a = create(&rec, ActorId::from([1u8; 16])).unwrap();
        let mut b = create(&rec, ActorId::from([2u8; 16])).unwrap();
        let s2: Session = serde_json::from_value(
            json!({"id": "00000000-0000-4000-8000-000000000052", "date": "2025-03-11", "minutes": 60, "participants": 7}),
        )
        .unwrap();
        put_session(&mut b, &s2, "2025-03-11T10:00:00+01:00").unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        let (sa, sb) = (read(&a).unwrap(), read(&b).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(sa.fields["sessions"].as_array().unwrap().len(), 2, "{sa:?}");
        assert!(
            sa.conflicts.is_empty(),
            "identical values are no conflict: {:?}",
            sa.conflicts
        );
        assert!(Record::from_fields(&sa.fields).is_ok());
        // The session both imported sits in both maps: removing it removes
        // it from each, on every replica.
        let sid = "00000000-0000-4000-8000-000000000051";
        assert!(delete_session(&mut a, sid, "2025-03-12T10:00:00+01:00").unwrap());
        assert!(!delete_session(&mut a, sid, "2025-03-12T10:00:00+01:00").unwrap());
        b.merge(&mut a).unwrap();
        for doc in [&a, &b] {
            let s = read(doc).unwrap();
            let left = s.fields["sessions"].as_array().unwrap();
            assert_eq!(left.len(), 1, "{s:?}");
            assert_eq!(left[0]["id"], json!(s2.id));
        }
    }

    #[test]
    fn clearing_an_optional_field_removes_it() {
        let rec = visit();
        let mut d = create(&rec, ActorId::random()).unwrap();
        assert!(apply_patch(&mut d, &Fields::from([("note".into(), Value::Null)])).unwrap());
        let snap = read(&d).unwrap();
        assert!(!snap.fields.contains_key("note"));
        assert!(!apply_patch(&mut d, &Fields::from([("minutes".into(), json!(30))])).unwrap());
    }
}
