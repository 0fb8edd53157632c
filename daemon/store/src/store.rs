//! The laptop's record store: one Automerge document per record in SQLite,
//! plus a queryable projection of current values.
//!
//! Tables (see [`SCHEMA`]):
//! - `meta`: this device's identity (device id, org, default site/staff).
//! - `docs`: each record's Automerge document (`save()` bytes), its heads,
//!   the heads the hub has acknowledged and a `pending` flag, plus `seq`, the
//!   position of its latest local write in the store's change sequence.
//! - `records`: the projection: each record's current values as JSON and the
//!   columns `list`/`export`/`stats` filter on. Written in the same
//!   transaction as the document, so the two never disagree, and read
//!   without loading any Automerge document.
//! - `tombstones`: ids of erased records (id only), so a copy that comes
//!   back from an offline replica is refused instead of resurrected.
//!
//! Every write is one SQLite transaction taken with `BEGIN IMMEDIATE`, so
//! the CLI and the daemon can share the file (WAL mode) and two writers
//! never interleave a load-modify-save of the same document. `synchronous =
//! FULL` makes a commit durable before the command says "saved".
//! `secure_delete` zeroes erased content so it cannot be read back from the
//! file.

use std::path::{Path, PathBuf};

use automerge::{ActorId, AutoCommit, ChangeHash};
use chrono::{DateTime, FixedOffset};
use outpost_base::sqlite::BackgroundCheckpoint;
use outpost_proto::central::OrgConfig;
use outpost_proto::device::DeviceReport;
use outpost_proto::doc::{self, DocError, Snapshot};
use outpost_proto::fields::{Fields, ValidationErrors};
use outpost_proto::record::{self, Kind, Record, Session};
use outpost_proto::schema::{self, Scope};
use outpost_proto::sync::{
    self, DocPush, FailureKind, FeedBody, FeedItem, Heads, Outcome, PullResponse, PushOutcome,
    PushResponse,
};
use outpost_proto::untrusted::{self, Refusal};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;

/// File name of the store inside the data dir.
pub const STORE_FILE: &str = "outpost.db";

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS docs (
    id           TEXT PRIMARY KEY,
    doc          BLOB NOT NULL,
    heads        BLOB NOT NULL,
    synced_heads BLOB,
    pending      INTEGER NOT NULL DEFAULT 1,
    seq          INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS docs_pending ON docs(seq) WHERE pending = 1;
CREATE TABLE IF NOT EXISTS records (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    org        TEXT NOT NULL,
    site       TEXT NOT NULL,
    date_from  TEXT,
    date_to    TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body       TEXT NOT NULL,
    conflicts  TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS tombstones (
    id         TEXT PRIMARY KEY,
    deleted_at TEXT NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 1,
    seq        INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS tombstones_pending ON tombstones(seq) WHERE pending = 1;
";

/// Indexes added after stores were first created, made on every open
/// (a no-op once they exist; tables are never rebuilt). `load_pending`
/// and `has_pending` read only the pending rows through them: without
/// `tombstones_pending` every push scans all tombstones and sorts them.
/// `records_conflicts` lets the web app's conflict page read only the
/// (few) records with unresolved concurrent values, and
/// `records_kind_updated` its course list only the latest courses;
/// `records_date_to` its "today and recent" page only the rows it shows.
///
/// `quarantine` (added the same way): records that cannot be loaded or
/// validated, kept aside so the rest syncs. `source` is `pull` (the hub's
/// copy was refused; `doc` keeps its bytes unless they held personal data,
/// which is never written anywhere) or `store` (the copy here does not
/// load; it stays in `docs`, out of every push).
///
/// `records_day` (replacing `records_date`, then `records_when`): listings
/// come in date and time order (a visit's `time`; the expression must
/// match [`RECORD_ORDER`] for SQLite to read the index in order). It holds
/// only the day and the time: SQLite sorts the few records of one day and
/// time by the rest of the order as it reads. `records_when` also held
/// `created_at` and the 36-character id, so its entries were four times
/// as large, and every pulled or imported record (random dates) dirtied
/// a random one of its pages, so a pull page rewrote nearly all of them
/// into the WAL (a fresh laptop's pull of 100,000 records wrote 526 MB,
/// now 452 MB).
const LATER_INDEXES: &str = "
DROP INDEX IF EXISTS records_date;
DROP INDEX IF EXISTS records_when;
CREATE INDEX IF NOT EXISTS records_day ON records(date_from, json_extract(body, '$.time'));
CREATE INDEX IF NOT EXISTS docs_pending ON docs(seq) WHERE pending = 1;
CREATE INDEX IF NOT EXISTS tombstones_pending ON tombstones(seq) WHERE pending = 1;
CREATE INDEX IF NOT EXISTS records_date_to ON records(date_to);
CREATE INDEX IF NOT EXISTS records_kind_updated ON records(kind, updated_at);
CREATE INDEX IF NOT EXISTS records_conflicts ON records(updated_at) WHERE conflicts IS NOT NULL;
CREATE TABLE IF NOT EXISTS quarantine (
    id     TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    doc    BLOB,
    at     TEXT NOT NULL
) STRICT;
";

/// The order of every listing and export: day, then time of day (records
/// without one first), then when they were made (`records_day` serves the
/// first two).
const RECORD_ORDER: &str = "date_from, json_extract(body, '$.time'), created_at, id";

/// A record kept aside (see `quarantine` in [`LATER_INDEXES`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub id: String,
    pub reason: String,
    /// `pull` (the hub's copy was refused) or `store` (the copy here).
    pub source: String,
    pub at: String,
}

const FROM_PULL: &str = "pull";
const FROM_STORE: &str = "store";

/// Keeps a record aside with its reason (replacing an earlier entry).
/// Bytes refused for personal data are never kept.
fn quarantine(
    conn: &Connection,
    id: &str,
    reason: &str,
    source: &str,
    keep: Option<&[u8]>,
) -> Result<(), StoreError> {
    tracing::warn!(record = %id, %source, %reason, "record quarantined");
    conn.prepare_cached(
        "INSERT INTO quarantine(id, reason, source, doc, at) VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
         ON CONFLICT(id) DO UPDATE SET reason = excluded.reason, source = excluded.source, doc = excluded.doc, at = excluded.at",
    )?
    .execute(params![id, reason, source, keep])?;
    Ok(())
}

/// The bytes worth keeping for a retry: none when they were refused for
/// personal data.
fn keepable<'a>(refusal: &Refusal, bytes: &'a [u8]) -> Option<&'a [u8]> {
    (!matches!(refusal, Refusal::Screen(_))).then_some(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no Outpost store in {0}; run `outpost init --org ORG --site SITE --staff INITIALS` first"
    )]
    NotInitialized(PathBuf),
    #[error(
        "an Outpost store already exists in {0} (device {1}); use another --data-dir to start afresh"
    )]
    AlreadyInitialized(PathBuf, String),
    #[error("could not create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", sqlite_hint(.0))]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("no record with id {0}; `outpost list` shows the ids")]
    NotFound(String),
    /// A device name refused (too long, personal data): nothing was kept.
    #[error(transparent)]
    DeviceName(#[from] outpost_proto::device::DeviceError),
    #[error("record {0} was deleted and cannot be changed")]
    Deleted(String),
    #[error("record {id} is a {actual}, not a {expected}")]
    WrongKind {
        id: String,
        actual: Kind,
        expected: Kind,
    },
    #[error("record {id}: {source}")]
    Doc {
        id: String,
        #[source]
        source: DocError,
    },
    #[error("record {id} cannot be read: {source}")]
    Load {
        id: String,
        #[source]
        source: Refusal,
    },
    #[error("the store was written by a newer Outpost (schema {0}); upgrade outpost")]
    NewerSchema(i64),
    #[error("stored projection of {id} is damaged: {source}")]
    Projection {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("store metadata is damaged: {0}")]
    Meta(String),
    #[error(
        "record {id} is still quarantined: {reason}; fix the cause (upgrade Outpost, restore the record) and retry, or `outpost quarantine erase {id}`"
    )]
    StillQuarantined { id: String, reason: String },
    #[error("record {0} is not quarantined; `outpost quarantine list` shows those that are")]
    NotQuarantined(String),
    #[error(
        "course {course} has no session {session}; `outpost show {course}` lists its session ids"
    )]
    NoSession { course: String, session: String },
    #[error(
        "record {id} has no open conflict on {field} with that value (perhaps it was resolved already); `outpost show {id}` shows its conflicts"
    )]
    NoConflict { id: String, field: String },
}

impl StoreError {
    /// Whether reading or writing the store's files failed (a full disk
    /// among the causes; SQLite may report one as a plain I/O error).
    pub fn is_io(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DiskFull)
            ),
            StoreError::CreateDir { .. } => true,
            _ => false,
        }
    }
}

fn sqlite_hint(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => {
            format!("the disk is full, nothing was saved: free some space and try again ({e})")
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            format!("the store is busy (another outpost command is writing); try again ({e})")
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            format!("cannot write to the store; check the data directory's permissions ({e})")
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            format!("the store file is damaged; restore it from a backup ({e})")
        }
        _ => format!("store error: {e}"),
    }
}

/// Who this laptop is: set once by `outpost init`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    pub device: String,
    pub org: String,
    pub site: String,
    pub staff: String,
}

impl Identity {
    /// The Automerge actor for this device's edits. Derived from the random
    /// device id, so it carries nothing about the staff or visitors.
    pub fn actor(&self) -> ActorId {
        match Uuid::parse_str(&self.device) {
            Ok(u) => ActorId::from(u.as_bytes().as_slice()),
            Err(_) => ActorId::from(self.device.as_bytes()),
        }
    }
}

/// A record as read from the projection, with unresolved concurrent values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub record: Record,
    /// Field → the values that lost a concurrent write (empty when none).
    pub conflicts: serde_json::Map<String, Value>,
}

pub use outpost_proto::filter::Filter;

/// Counts for `outpost status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub records: u64,
    pub visits: u64,
    pub courses: u64,
    /// Records (and erasures) changed here that the hub has not acknowledged.
    pub pending: u64,
    pub tombstones: u64,
}

/// An open store. Not `Sync`: each thread or process opens its own.
pub struct Store {
    conn: Connection,
    /// After `conn`, so the connection closes first and the checkpoint
    /// thread's own closing, the last, folds the WAL into the file.
    checkpoints: BackgroundCheckpoint,
    path: PathBuf,
    identity: Identity,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn open_conn(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    outpost_base::sqlite::configure(&conn)?;
    Ok(conn)
}

impl Store {
    /// The store file inside `data_dir`.
    pub fn file(data_dir: &Path) -> PathBuf {
        data_dir.join(STORE_FILE)
    }

    /// Creates a new store and device identity. Refuses to overwrite one.
    pub fn init(data_dir: &Path, org: &str, site: &str, staff: &str) -> Result<Store, StoreError> {
        // The defaults go into every record, so they are checked by the
        // same field table as a record's own org, site and staff (length
        // limits included) rather than a rule of their own that may drift.
        let mut errs = ValidationErrors::default();
        for (name, value) in [("org", org), ("site", site), ("staff", staff)] {
            let def = schema::field(Scope::Common, name).expect("common fields are in the schema");
            match schema::validate_value(def, &Value::String(value.to_string())) {
                Ok(Value::Null) => errs.push(name, "must not be empty"),
                Ok(_) => {}
                Err(e) => errs.0.extend(e.0),
            }
        }
        errs.finish(())?;
        // The store holds records and the device token: only this user
        // may read it (SQLite gives its -wal and -shm files the same mode).
        outpost_base::files::private_dir(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = Self::file(data_dir);
        outpost_base::files::private_database(&path).map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let mut conn = open_conn(&path, true)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(LATER_INDEXES)?;
        let existing: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'device'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(device) = existing {
            return Err(StoreError::AlreadyInitialized(
                data_dir.to_path_buf(),
                device,
            ));
        }
        let identity = Identity {
            device: Uuid::new_v4().to_string(),
            org: org.to_string(),
            site: site.trim().to_string(),
            staff: staff.trim().to_string(),
        };
        for (k, v) in [
            ("device", identity.device.as_str()),
            ("org", identity.org.as_str()),
            ("site", identity.site.as_str()),
            ("staff", identity.staff.as_str()),
            ("schema", &SCHEMA_VERSION.to_string()),
            ("seq", "0"),
        ] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        tx.commit()?;
        Ok(Store {
            checkpoints: BackgroundCheckpoint::install(&conn, &path),
            conn,
            path,
            identity,
        })
    }

    /// Whether anything waits to be sent to the hub. Cheap (two index
    /// probes), unlike [`Store::counts`], so the daemon can ask on every
    /// store change.
    pub fn has_pending(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM docs WHERE pending = 1)
                 OR EXISTS(SELECT 1 FROM tombstones WHERE pending = 1)",
            [],
            |r| r.get(0),
        )?)
    }

    /// Opens an existing store for reading and writing.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = Self::file(data_dir);
        if !path.exists() {
            return Err(StoreError::NotInitialized(data_dir.to_path_buf()));
        }
        // Stores made by earlier releases were readable by everyone:
        // tighten them (best effort: a read-only medium still opens).
        if let Err(e) = outpost_base::files::private_database(&path) {
            tracing::warn!(path = %path.display(), error = %e, "could not make the store private (0600)");
        }
        let conn = open_conn(&path, false)?;
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?)
        };
        let schema: i64 = meta("schema")?
            .ok_or_else(|| StoreError::NotInitialized(data_dir.to_path_buf()))?
            .parse()
            .map_err(|_| StoreError::Meta("schema is not a number".into()))?;
        if schema > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(schema));
        }
        let get = |key: &str| -> Result<String, StoreError> {
            meta(key)?.ok_or_else(|| StoreError::Meta(format!("{key} is missing")))
        };
        let identity = Identity {
            device: get("device")?,
            org: get("org")?,
            site: get("site")?,
            staff: get("staff")?,
        };
        conn.execute_batch(LATER_INDEXES)?;
        Ok(Store {
            checkpoints: BackgroundCheckpoint::install(&conn, &path),
            conn,
            path,
            identity,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives this connection a 32 MiB page cache while it syncs (`true`),
    /// or SQLite's default 2 MiB again (`false`). Every record a sync
    /// stores or acknowledges descends three indexes keyed by random UUIDs
    /// (`docs` and `records` ids, `records_day`, and the web app's indexes): about 19 MiB of index
    /// pages at 100,000 records. With 2 MiB nearly every descent missed the
    /// cache (a fresh laptop's pull of 100,000 records read about 600,000
    /// pages back from the OS), and a pull page's dirty pages spilled to the
    /// WAL mid-transaction, to be written again at commit. Only syncs get
    /// it: `list`, `export` and `stats` read each page once, and through a
    /// large cache they only grew (73 -> 105 MiB peak at 100,000 records).
    pub fn set_sync_cache(&self, on: bool) -> Result<(), StoreError> {
        self.conn.execute_batch(if on {
            "PRAGMA cache_size = -32768;"
        } else {
            "PRAGMA cache_size = -2000;"
        })?;
        Ok(())
    }

    /// The underlying connection, for the sync engine's own queries.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Fresh fields for a new record of this device: id, kind, org, device,
    /// timestamps, and the default site and staff (which flags may replace).
    pub fn new_fields(&self, kind: Kind, now: DateTime<FixedOffset>) -> Fields {
        let mut f = record::new_record_fields(
            kind,
            &self.identity.org,
            &self.identity.device,
            now,
            Uuid::new_v4(),
        );
        f.insert("site".into(), Value::String(self.identity.site.clone()));
        f.insert("staff".into(), Value::String(self.identity.staff.clone()));
        f
    }

    /// Validates and saves a new record; returns it once it is committed.
    pub fn add(&mut self, fields: &Fields) -> Result<Record, StoreError> {
        let record = Record::from_fields(fields)?;
        self.insert_records(std::slice::from_ref(&record))?;
        Ok(record)
    }

    /// Saves already validated records in one transaction (import, benchmarks).
    /// A record whose id is tombstoned is skipped: erased stays erased.
    /// Returns how many were inserted; existing ids are left as they are.
    pub fn insert_records(&mut self, records: &[Record]) -> Result<usize, StoreError> {
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq = next_seq(&tx)?;
        let mut inserted = 0;
        {
            let mut exists = tx.prepare_cached(
                "SELECT 1 FROM docs WHERE id = ?1 UNION ALL SELECT 1 FROM tombstones WHERE id = ?1",
            )?;
            for record in records {
                let id = record.id.to_string();
                if exists.exists([&id])? {
                    continue;
                }
                let mut am =
                    doc::create(record, actor.clone()).map_err(|source| StoreError::Doc {
                        id: id.clone(),
                        source,
                    })?;
                seq += 1;
                write_doc(&tx, &id, &mut am, seq)?;
                write_projection(&tx, record, &Default::default())?;
                inserted += 1;
            }
        }
        set_seq(&tx, seq)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// Reads one record from the projection.
    pub fn get(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, body, conflicts FROM records WHERE id = ?1")?;
        let row = stmt
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .optional()?;
        row.map(|(id, body, conflicts)| parse_stored(&id, &body, conflicts.as_deref()))
            .transpose()
    }

    /// Resolves a full id or a unique prefix of one (ids are long to type).
    pub fn resolve_id(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let needle = id_or_prefix.trim().to_lowercase();
        if needle.len() >= 36 {
            return Ok(needle);
        }
        // A few more than one, so an ambiguous prefix lists candidates;
        // the decision is the shared rule (`outpost_proto::device::pick`).
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM records WHERE id >= ?1 AND id < ?1 || 'g' ORDER BY id LIMIT ?2",
        )?;
        let ids: Vec<String> = stmt
            .query_map(
                params![&needle, outpost_proto::device::MAX_CANDIDATES_SHOWN as i64],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        outpost_proto::device::pick(&needle, ids, |i| i.as_str(), |_| None, Clone::clone)
            .map_err(|e| StoreError::NotFound(e.to_string()))
    }

    pub fn is_deleted(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM tombstones WHERE id = ?1")?
            .exists([id])?)
    }

    /// Changes fields of a record. The merged result is validated like a new
    /// record; only fields that differ are written (one Automerge change).
    pub fn edit(
        &mut self,
        id: &str,
        patch: &Fields,
        now: DateTime<FixedOffset>,
    ) -> Result<Record, StoreError> {
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, id)?.with_actor(actor);
        let snapshot = read_snapshot(id, &am)?;
        let mut patch = patch.clone();
        for fixed in [
            "id",
            "kind",
            "org",
            "device",
            "created_at",
            "updated_at",
            "sessions",
        ] {
            patch.remove(fixed);
        }
        let mut merged = snapshot.fields.clone();
        merged.extend(patch.clone());
        // Validate before touching the document: a refused edit writes nothing.
        Record::from_fields(&merged)?;
        let changed = doc::apply_patch(&mut am, &patch).map_err(|source| StoreError::Doc {
            id: id.to_string(),
            source,
        })?;
        if changed {
            let ts = Value::String(rfc3339(now));
            doc::apply_patch(&mut am, &Fields::from([("updated_at".to_string(), ts)])).map_err(
                |source| StoreError::Doc {
                    id: id.to_string(),
                    source,
                },
            )?;
        }
        let record = self::project(&tx, id, &mut am, changed)?;
        tx.commit()?;
        Ok(record)
    }

    /// Adds a session to a course; `fields` are the session's own fields
    /// (an `id` is made if absent).
    pub fn add_session(
        &mut self,
        course_id: &str,
        fields: &Fields,
        now: DateTime<FixedOffset>,
    ) -> Result<Session, StoreError> {
        let mut fields = fields.clone();
        fields
            .entry("id".into())
            .or_insert_with(|| Value::String(Uuid::new_v4().to_string()));
        let session = record::session_from_fields(&fields).map_err(session_errors)?;
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, course_id)?.with_actor(actor);
        read_course(course_id, &am)?;
        doc::put_session(&mut am, &session, &rfc3339(now)).map_err(|source| StoreError::Doc {
            id: course_id.to_string(),
            source,
        })?;
        project(&tx, course_id, &mut am, true)?;
        tx.commit()?;
        Ok(session)
    }

    /// Changes fields of one course session, named by its stable id or a
    /// unique prefix of it (never by position: positions shift when a
    /// session is added elsewhere). `patch` holds the session fields to
    /// change; Null clears an optional one. The web app and `outpost
    /// course session edit` both come here. Returns the session as saved.
    pub fn edit_session(
        &mut self,
        course_id: &str,
        session: &str,
        patch: &Fields,
        now: DateTime<FixedOffset>,
    ) -> Result<Session, StoreError> {
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, course_id)?.with_actor(actor);
        let snapshot = read_course(course_id, &am)?;
        let current = find_session(course_id, &snapshot, session)?;
        let mut fields = current.to_fields();
        for (k, v) in patch {
            if k == "id" {
                continue;
            }
            if v.is_null() {
                fields.remove(k);
            } else {
                fields.insert(k.clone(), v.clone());
            }
        }
        let edited = record::session_from_fields(&fields).map_err(session_errors)?;
        if edited != current {
            doc::put_session(&mut am, &edited, &rfc3339(now)).map_err(|source| {
                StoreError::Doc {
                    id: course_id.to_string(),
                    source,
                }
            })?;
            project(&tx, course_id, &mut am, true)?;
            tx.commit()?;
        }
        Ok(edited)
    }

    /// One session of a course, by id or unique prefix, read from the
    /// projection (what a confirmation shows before
    /// [`Store::delete_session`]).
    pub fn session(&self, course_id: &str, session: &str) -> Result<Session, StoreError> {
        let stored = self
            .get(course_id)?
            .ok_or_else(|| StoreError::NotFound(course_id.to_string()))?;
        match stored.record.body {
            outpost_proto::Body::Course(c) => pick_session(course_id, c.sessions, session),
            outpost_proto::Body::Visit(_) => Err(StoreError::WrongKind {
                id: course_id.to_string(),
                actual: Kind::Visit,
                expected: Kind::Course,
            }),
        }
    }

    /// Removes one course session (by id or unique prefix), here now and
    /// everywhere at the next sync. Returns the session that was removed.
    pub fn delete_session(
        &mut self,
        course_id: &str,
        session: &str,
        now: DateTime<FixedOffset>,
    ) -> Result<Session, StoreError> {
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, course_id)?.with_actor(actor);
        let snapshot = read_course(course_id, &am)?;
        let current = find_session(course_id, &snapshot, session)?;
        doc::delete_session(&mut am, &current.id, &rfc3339(now)).map_err(|source| {
            StoreError::Doc {
                id: course_id.to_string(),
                source,
            }
        })?;
        project(&tx, course_id, &mut am, true)?;
        tx.commit()?;
        Ok(current)
    }

    /// Records whose dates reach `from` or later, latest last day first,
    /// at most `limit` (the web app's "today and recent": it reads through
    /// `records_date_to` only the rows it shows, so it answers as fast with
    /// 100,000 records as with 100).
    pub fn recent(
        &self,
        from: chrono::NaiveDate,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.stored_rows(
            "SELECT id, body, conflicts FROM records WHERE date_to >= ?1
             ORDER BY date_to DESC LIMIT ?2",
            params![from.to_string(), limit as i64],
        )
    }

    /// The `limit` records of `kind` changed most recently, newest first
    /// (the web app's course list; `records_kind_updated` serves it
    /// without reading the other records).
    pub fn recently_changed(
        &self,
        kind: Kind,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.stored_rows(
            "SELECT id, body, conflicts FROM records WHERE kind = ?1
             ORDER BY updated_at DESC, id DESC LIMIT ?2",
            params![kind.as_str(), limit as i64],
        )
    }

    /// Records with unresolved concurrent values, newest change first, at
    /// most `limit` (read from the projection; the partial index
    /// `records_conflicts` keeps this cheap however many records there are).
    pub fn conflicted(&self, limit: usize) -> Result<Vec<StoredRecord>, StoreError> {
        self.stored_rows(
            "SELECT id, body, conflicts FROM records WHERE conflicts IS NOT NULL
             ORDER BY updated_at DESC, id LIMIT ?1",
            [limit as i64],
        )
    }

    /// The records an `id, body, conflicts` query over the projection
    /// returns, in its order (the web app's bounded page queries).
    fn stored_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.iter()
            .map(|(id, body, c)| parse_stored(id, body, c.as_deref()))
            .collect()
    }

    /// How many records have unresolved concurrent values.
    pub fn conflicted_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM records WHERE conflicts IS NOT NULL")?
            .query_row([], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Resolves a conflict on `field` (a field name, or `sessions.<id>`)
    /// by writing the chosen value as a new change, which syncs like any
    /// edit. `chosen` must be the current value or one of the concurrent
    /// ones (a person picks among what was entered, nothing new); the
    /// result is validated like any edit.
    pub fn resolve_conflict(
        &mut self,
        id: &str,
        field: &str,
        chosen: &Value,
        now: DateTime<FixedOffset>,
    ) -> Result<Record, StoreError> {
        let actor = self.identity.actor();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, id)?.with_actor(actor);
        let snapshot = read_snapshot(id, &am)?;
        let Some(losers) = snapshot.conflicts.get(field) else {
            return Err(StoreError::NoConflict {
                id: id.to_string(),
                field: field.to_string(),
            });
        };
        let current = match field.strip_prefix("sessions.") {
            Some(sid) => snapshot
                .fields
                .get(doc::SESSIONS)
                .and_then(Value::as_array)
                .and_then(|all| all.iter().find(|s| s["id"] == sid))
                .cloned()
                .unwrap_or(Value::Null),
            None => snapshot.fields.get(field).cloned().unwrap_or(Value::Null),
        };
        if *chosen != current && !losers.contains(chosen) {
            return Err(StoreError::NoConflict {
                id: id.to_string(),
                field: field.to_string(),
            });
        }
        doc::resolve(&mut am, field, chosen, &rfc3339(now)).map_err(|source| StoreError::Doc {
            id: id.to_string(),
            source,
        })?;
        let record = project(&tx, id, &mut am, true)?;
        tx.commit()?;
        Ok(record)
    }

    /// Erases a record: its document (all history) and projection row are
    /// removed, a tombstone is kept, and the WAL is checkpointed so the
    /// erased bytes do not linger in the log. Deleting twice is not an error.
    pub fn delete(&mut self, id: &str, now: DateTime<FixedOffset>) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let known: bool = tx
            .prepare_cached(
                "SELECT 1 FROM docs WHERE id = ?1 UNION ALL SELECT 1 FROM tombstones WHERE id = ?1",
            )?
            .exists([id])?;
        if !known {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let seq = next_seq(&tx)? + 1;
        tx.execute("DELETE FROM docs WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM records WHERE id = ?1", [id])?;
        tx.execute(
            "INSERT INTO tombstones(id, deleted_at, pending, seq) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT(id) DO NOTHING",
            params![id, rfc3339(now), seq],
        )?;
        set_seq(&tx, seq)?;
        tx.commit()?;
        self.checkpoint()?;
        Ok(())
    }

    /// Moves the WAL into the main file and truncates it. Called after an
    /// erasure so the erased record's bytes leave the log; false if a reader
    /// kept part of the log busy (the next erasure tries again, and the log
    /// is overwritten from its start once a later checkpoint copied all of
    /// it).
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        Ok(self.checkpoints.truncate(&self.conn)?)
    }

    /// Calls `f` for each record matching `filter`, in date and time order, reading
    /// only the projection. Streams, so 100,000 records never sit in memory.
    pub fn for_each(
        &self,
        filter: &Filter,
        f: impl FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.try_for_each(filter, f)
    }

    /// [`Store::for_each`] with the caller's error type, so a callback that
    /// writes (an export, `list` into a pipe) can stop the scan with its
    /// own error, e.g. an `io::Error` a caller must recognise as a closed
    /// pipe, instead of flattening it into a store error.
    pub fn try_for_each<E: From<StoreError>>(
        &self,
        filter: &Filter,
        mut f: impl FnMut(StoredRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let (where_sql, args) = filter_sql(filter);
        let sql = format!(
            "SELECT id, body, conflicts FROM records WHERE {where_sql} ORDER BY {RECORD_ORDER}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let id: String = row.get(0).map_err(StoreError::from)?;
            let body: String = row.get(1).map_err(StoreError::from)?;
            let conflicts: Option<String> = row.get(2).map_err(StoreError::from)?;
            f(parse_stored(&id, &body, conflicts.as_deref())?)?;
        }
        Ok(())
    }

    /// How many records match `filter` (for a progress bar before a
    /// streamed export, which no longer has a list to take the length of).
    pub fn count(&self, filter: &Filter) -> Result<u64, StoreError> {
        let (where_sql, args) = filter_sql(filter);
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM records WHERE {where_sql}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// All matching records (convenience over [`Store::for_each`]).
    pub fn list(&self, filter: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each(filter, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Records and erasures changed here that the hub has not acknowledged
    /// (what `outpost status` shows as waiting, and what a sync reports).
    /// Cheap: it reads only the partial `pending` indexes.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM docs WHERE pending = 1) + (SELECT count(*) FROM tombstones WHERE pending = 1)",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    pub fn counts(&self) -> Result<Counts, StoreError> {
        let q = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(Counts {
            records: q("SELECT count(*) FROM records")?,
            visits: q("SELECT count(*) FROM records WHERE kind = 'visit'")?,
            courses: q("SELECT count(*) FROM records WHERE kind = 'course'")?,
            pending: self.pending_count()?,
            tombstones: q("SELECT count(*) FROM tombstones")?,
        })
    }

    /// Rebuilds one record's projection from its document (used after a
    /// merge, and by tests to check projection and document agree).
    pub fn reproject(&mut self, id: &str) -> Result<Record, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut am = load_doc(&tx, id)?;
        let record = project(&tx, id, &mut am, false)?;
        tx.commit()?;
        Ok(record)
    }

    /// Reads a record straight from its Automerge document, bypassing the
    /// projection (for checks and merges).
    pub fn load_from_doc(&self, id: &str) -> Result<StoredRecord, StoreError> {
        let am = load_doc(&self.conn, id)?;
        let snapshot = read_snapshot(id, &am)?;
        let record = Record::from_fields(&snapshot.fields)?;
        Ok(StoredRecord {
            record,
            conflicts: conflicts_json(&snapshot),
        })
    }
}

/// Sync bookkeeping shown by `outpost status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncStatus {
    pub last_attempt: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    /// Whether `last_error` clears by itself (retry) or needs a person.
    /// Absent in statuses saved before it existed.
    #[serde(default)]
    pub last_error_kind: Option<FailureKind>,
    pub last_outcome: Option<Outcome>,
}

/// Most bytes of stored documents one push batch carries (as a pull page
/// carries at most `outpost_proto::hub::PULL_PAGE_BYTES`), so the batch
/// can be counted in thousands of documents without an unbounded request.
pub const PUSH_BATCH_BYTES: usize = 4 * 1024 * 1024;

const META_PULL_CURSOR: &str = "pull_cursor";
/// The hub feed epoch the pull cursor counts in (see `PullResponse::epoch`).
const META_FEED_EPOCH: &str = "feed_epoch";
/// The hub's signature of the saved cursor (hex), sent back with pulls.
const META_CURSOR_SIG: &str = "cursor_sig";
const META_HUB_TOKEN: &str = "hub_token";
/// The name this laptop was given (`outpost enroll --name`, `outpost
/// rename`); absent: [`outpost_proto::device::default_name`].
const META_DEVICE_NAME: &str = "device_name";
const META_SYNC_STATUS: &str = "sync_status";
/// The org's central configuration as the hub last sent it (JSON of
/// `outpost_proto::central::OrgConfig`).
const META_ORG_CONFIG: &str = "org_config";

/// The laptop side of sync: what to push, and applying the hub's answers.
/// Each `apply_*` is one transaction, so an interrupted sync leaves either
/// the state before an answer or after it.
impl Store {
    fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn meta_set(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )?,
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    /// The device token issued at enrolment (kept in the store, not in the
    /// config file, so copying a config around never copies a secret).
    pub fn hub_token(&self) -> Result<Option<String>, StoreError> {
        self.meta_get(META_HUB_TOKEN)
    }

    pub fn set_hub_token(&self, token: Option<&str>) -> Result<(), StoreError> {
        self.meta_set(META_HUB_TOKEN, token)
    }

    /// Keeps a new enrolment: this laptop's device id (new when it enrolls
    /// again) and its token, in one transaction. Records keep the device
    /// that created them; new ones get the new id.
    pub fn set_enrolment(&mut self, device: &str, token: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in [("device", device), (META_HUB_TOKEN, token)] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        self.identity.device = device.to_string();
        Ok(())
    }

    /// The name given to this laptop, if any (see [`Store::device_name`]).
    pub fn given_device_name(&self) -> Result<Option<String>, StoreError> {
        self.meta_get(META_DEVICE_NAME)
    }

    /// This laptop's name as the hub sees it: the one given, else its site
    /// and a short id (the id changes when it enrols again, so the default
    /// is made when asked, never stored).
    pub fn device_name(&self) -> Result<String, StoreError> {
        Ok(self.given_device_name()?.unwrap_or_else(|| {
            outpost_proto::device::default_name(&self.identity.site, &self.identity.device)
        }))
    }

    /// Names this laptop (checked by the rule the hub applies too: bounded,
    /// screened); `None` goes back to the default. Reaches the hub at the
    /// next sync. Answers the name kept.
    pub fn set_device_name(&self, name: Option<&str>) -> Result<String, StoreError> {
        match name {
            Some(name) => {
                let name = outpost_proto::device::check_name(name)?;
                self.meta_set(META_DEVICE_NAME, Some(&name))?;
            }
            None => self.meta_set(META_DEVICE_NAME, None)?,
        }
        self.device_name()
    }

    /// What this laptop says about itself when it syncs (the session fills
    /// in `waiting` from [`Store::pending_count`]).
    pub fn device_report(&self) -> Result<DeviceReport, StoreError> {
        Ok(DeviceReport {
            name: self.device_name()?,
            site: self.identity.site.clone(),
            staff: self.identity.staff.clone(),
            waiting: self.pending_count()?,
        })
    }

    pub fn pull_cursor(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta_get(META_PULL_CURSOR)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The hub feed epoch saved with the pull cursor (0 if none).
    pub fn feed_epoch(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta_get(META_FEED_EPOCH)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The hub's signature of the saved cursor (empty if none).
    pub fn cursor_sig(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .meta_get(META_CURSOR_SIG)?
            .and_then(|v| hex::decode(v).ok())
            .unwrap_or_default())
    }

    /// Forgets what the hub acknowledged, so the next sync sends and
    /// fetches everything again (after enrolling with a different hub, or
    /// when the hub's feed was restored from a backup).
    pub fn reset_sync_state(&mut self) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("UPDATE docs SET synced_heads = NULL, pending = 1", [])?;
        tx.execute("UPDATE tombstones SET pending = 1", [])?;
        // The org's configuration goes too: another (or a restored) hub
        // sends its own at the next pull, and until then the built-in
        // catalogue is in force rather than one that hub may not hold.
        tx.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2, ?3, ?4)",
            [
                META_PULL_CURSOR,
                META_FEED_EPOCH,
                META_CURSOR_SIG,
                META_ORG_CONFIG,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The org's configuration the hub sent last (None: none received).
    /// A stored value this version cannot read counts as none, so the next
    /// sync's configuration replaces it.
    pub fn org_config(&self) -> Result<Option<OrgConfig>, StoreError> {
        Ok(self
            .meta_get(META_ORG_CONFIG)?
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// The version of [`Store::org_config`] (0: none), sent with pulls.
    pub fn org_config_version(&self) -> Result<u64, StoreError> {
        Ok(self.org_config()?.map_or(0, |c| c.version))
    }

    pub fn sync_status(&self) -> Result<SyncStatus, StoreError> {
        Ok(self
            .meta_get(META_SYNC_STATUS)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    /// Records how a sync attempt ended, for `outpost status`.
    pub fn record_sync(
        &self,
        outcome: &Outcome,
        at: DateTime<FixedOffset>,
    ) -> Result<(), StoreError> {
        let mut status = self.sync_status()?;
        let when = rfc3339(at);
        status.last_attempt = Some(when.clone());
        if outcome.complete() {
            status.last_success = Some(when);
            status.last_error = None;
            status.last_error_kind = None;
        } else if let Some(e) = &outcome.error {
            status.last_error = Some(e.clone());
            status.last_error_kind = outcome.error_kind;
        } else if let Some((id, reason)) = outcome.refused.first() {
            status.last_error = Some(format!(
                "the hub refused {} record(s), e.g. {id}: {reason}",
                outcome.refused.len()
            ));
            // Refused records wait for someone to correct them.
            status.last_error_kind = Some(FailureKind::NeedsPerson);
        }
        status.last_outcome = Some(outcome.clone());
        let text = serde_json::to_string(&status).map_err(|e| StoreError::Meta(e.to_string()))?;
        self.meta_set(META_SYNC_STATUS, Some(&text))
    }

    /// Up to `limit` pending documents and erasures with a change sequence
    /// after `after_seq`, in sequence order, prepared for a push; fewer
    /// once their bytes reach [`PUSH_BATCH_BYTES`].
    pub fn load_pending(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<(Vec<DocPush>, Vec<Uuid>, i64), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, id, doc, heads, synced_heads, 0 FROM docs WHERE pending = 1 AND seq > ?1
               AND id NOT IN (SELECT id FROM quarantine)
             UNION ALL
             SELECT seq, id, NULL, NULL, NULL, 1 FROM tombstones WHERE pending = 1 AND seq > ?1
             ORDER BY 1 LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after_seq, limit as i64])?;
        let (mut docs, mut erased, mut last_seq) = (Vec::new(), Vec::new(), after_seq);
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            if bytes >= PUSH_BATCH_BYTES || erased.len() >= sync::MAX_ERASURES_PER_PUSH {
                // The rest comes in the next batch (`last_seq` stops here);
                // the hub refuses a push with more erasures than that.
                break;
            }
            let seq: i64 = row.get(0)?;
            let id: String = row.get(1)?;
            last_seq = last_seq.max(seq);
            let Ok(uuid) = Uuid::parse_str(&id) else {
                tracing::warn!(%id, "skipping a record with a malformed id");
                continue;
            };
            if row.get::<_, i64>(5)? == 1 {
                erased.push(uuid);
                continue;
            }
            let data: Vec<u8> = row.get(2)?;
            let heads: Vec<u8> = row.get(3)?;
            let synced: Option<Vec<u8>> = row.get(4)?;
            bytes += data.len();
            match synced {
                // Never acknowledged: the stored bytes are already the
                // whole document in `save()` form, no need to load it.
                None => docs.push(DocPush {
                    id: uuid,
                    heads: Heads(heads),
                    data,
                    full: true,
                }),
                Some(acked) => match untrusted::load(&data) {
                    Ok(mut am) => docs.push(sync::prepare_push(
                        uuid,
                        &mut am,
                        Some(&decode_heads(&acked)),
                    )),
                    // One damaged record never stops the push of the rest.
                    Err(refusal) => {
                        quarantine(&self.conn, &id, &refusal.to_string(), FROM_STORE, None)?;
                    }
                },
            }
        }
        Ok((docs, erased, last_seq))
    }

    /// Applies the hub's answer to a push, in one transaction.
    pub fn apply_push(&mut self, resp: &PushResponse) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut erased_any = false;
        for result in &resp.results {
            let id = result.id.to_string();
            match &result.outcome {
                PushOutcome::Merged { heads, missing } => {
                    if missing.is_empty() {
                        // The common case: nothing new from the hub. (No
                        // row to update: the record was erased here while
                        // the push was in flight.)
                        tx.prepare_cached(
                            "UPDATE docs SET synced_heads = ?2, pending = (heads != ?2) WHERE id = ?1",
                        )?
                        .execute(params![id, heads.0])?;
                        continue;
                    }
                    let mut am = match load_doc(&tx, &id) {
                        Ok(am) => am,
                        Err(StoreError::NotFound(_) | StoreError::Deleted(_)) => continue,
                        Err(StoreError::Load { source, .. }) => {
                            quarantine(&tx, &id, &source.to_string(), FROM_STORE, None)?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    match sync::apply_merged(&mut am, heads, missing) {
                        Ok((acked, pending)) => save_merged(&tx, &id, &mut am, &acked, pending)?,
                        // The hub's changes are refused; the copy here stays
                        // as it was and is kept out of sync until retried.
                        Err(refusal) => {
                            quarantine(&tx, &id, &refusal.to_string(), FROM_PULL, None)?;
                        }
                    }
                }
                PushOutcome::NeedFull => {
                    let seq = next_seq(&tx)? + 1;
                    tx.execute(
                        "UPDATE docs SET synced_heads = NULL, pending = 1, seq = ?2 WHERE id = ?1",
                        params![id, seq],
                    )?;
                    set_seq(&tx, seq)?;
                }
                PushOutcome::Erased => {
                    let seq = next_seq(&tx)? + 1;
                    erase_local(&tx, &id, seq)?;
                    set_seq(&tx, seq)?;
                    erased_any = true;
                }
                PushOutcome::Refused { .. } => {}
            }
        }
        for id in &resp.erased {
            tx.prepare_cached("UPDATE tombstones SET pending = 0 WHERE id = ?1")?
                .execute([id.to_string()])?;
        }
        tx.commit()?;
        if erased_any {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Records kept aside because they could not be loaded or validated.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, reason, source, at FROM quarantine ORDER BY at, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Quarantined {
                id: r.get(0)?,
                reason: r.get(1)?,
                source: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Loads, checks and validates every stored document (`outpost
    /// doctor`); quarantines those that fail. Returns how many it newly
    /// quarantined.
    pub fn check_documents(&mut self) -> Result<usize, StoreError> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM docs WHERE id NOT IN (SELECT id FROM quarantine)")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut found = 0;
        for id in ids {
            let verdict = load_doc(&self.conn, &id).and_then(|mut am| {
                untrusted::check(&mut am, &[]).map_err(|source| StoreError::Load {
                    id: id.clone(),
                    source,
                })?;
                Record::from_fields(&read_snapshot(&id, &am)?.fields)?;
                Ok(())
            });
            let reason = match verdict {
                Ok(()) => continue,
                Err(StoreError::Load { source, .. }) => source.to_string(),
                Err(e) => e.to_string(),
            };
            quarantine(&self.conn, &id, &reason, FROM_STORE, None)?;
            found += 1;
        }
        Ok(found)
    }

    /// Tries a quarantined record again (after its cause was fixed: an
    /// upgrade, a restored copy). A copy here that now loads and validates
    /// is back in use and pending (errs, still quarantined, while it fails
    /// to); a refused copy of the hub's is fetched again at the next sync
    /// (the pull cursor starts over: merging what is already here is a
    /// no-op), which quarantines it again if the cause remains.
    pub fn quarantine_retry(&mut self, id: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, Option<Vec<u8>>)> = tx
            .query_row(
                "SELECT source, doc FROM quarantine WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((source, kept)) = row else {
            return Err(StoreError::NotQuarantined(id.to_string()));
        };
        let still = |tx: &Connection, reason: String| -> Result<(), StoreError> {
            quarantine(tx, id, &reason, &source, kept.as_deref())?;
            Err(StoreError::StillQuarantined {
                id: id.to_string(),
                reason,
            })
        };
        if source == FROM_STORE {
            let checked = load_doc(&tx, id).and_then(|mut am| {
                untrusted::check(&mut am, &[]).map_err(|source| StoreError::Load {
                    id: id.to_string(),
                    source,
                })?;
                let snapshot = read_snapshot(id, &am)?;
                let record = Record::from_fields(&snapshot.fields)?;
                Ok((record, conflicts_json(&snapshot)))
            });
            let (record, conflicts) = match checked {
                Ok(ok) => ok,
                Err(StoreError::Load { source, .. }) => {
                    let r = still(&tx, source.to_string());
                    tx.commit()?;
                    return r;
                }
                Err(e) => {
                    let r = still(&tx, e.to_string());
                    tx.commit()?;
                    return r;
                }
            };
            write_projection(&tx, &record, &conflicts)?;
            let seq = next_seq(&tx)? + 1;
            tx.execute(
                "UPDATE docs SET pending = 1, synced_heads = NULL, seq = ?2 WHERE id = ?1",
                params![id, seq],
            )?;
            set_seq(&tx, seq)?;
        } else {
            // The fix is the hub's (a restored copy) or this build's (an
            // upgrade): the next sync fetches the hub's copy again and
            // decides afresh. Read the org's feed again from the start (same epoch: nothing
            // is resent); merging what is already here is a no-op.
            tx.execute("DELETE FROM meta WHERE key = ?1", [META_PULL_CURSOR])?;
        }
        tx.execute("DELETE FROM quarantine WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Erases a quarantined record on this laptop only: the hub and other
    /// laptops keep theirs (`outpost delete` erases everywhere). An
    /// acknowledged tombstone keeps the refused copy from coming back.
    pub fn quarantine_erase(&mut self, id: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if tx.execute("DELETE FROM quarantine WHERE id = ?1", [id])? == 0 {
            return Err(StoreError::NotQuarantined(id.to_string()));
        }
        tx.execute("DELETE FROM docs WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM records WHERE id = ?1", [id])?;
        let seq = next_seq(&tx)? + 1;
        tx.execute(
            "INSERT INTO tombstones(id, deleted_at, pending, seq) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 0, ?2)
             ON CONFLICT(id) DO NOTHING",
            params![id, seq],
        )?;
        set_seq(&tx, seq)?;
        tx.commit()?;
        self.checkpoint()?;
        Ok(())
    }

    /// Applies one page of the hub's feed and saves the cursor, in one
    /// transaction.
    ///
    /// Three phases: read what the store holds for each item, merge and
    /// project every document in parallel (pure CPU work on each document
    /// alone), then write in feed order. A page naming an id twice (the
    /// hub never sends one) is merged one item at a time.
    pub fn apply_pull(&mut self, resp: &PullResponse) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut merged_ahead = if outpost_proto::par::all_distinct(resp.items.iter().map(|i| i.id))
        {
            let held = resp
                .items
                .iter()
                .map(|item| held_for(&tx, item))
                .collect::<Result<Vec<_>, _>>()?;
            let pairs: Vec<_> = resp.items.iter().zip(held).collect();
            Some(
                outpost_proto::par::par_map(&pairs, |(item, held)| merge_feed_item(item, held))
                    .into_iter(),
            )
        } else {
            None
        };
        let mut erased_any = false;
        // The change counter is read once and written once per page: this
        // transaction is the store's only writer, so a local count is
        // exact. (Read and written per stored document it cost two
        // statements on `meta` for every record a fresh laptop pulls.)
        let start_seq = next_seq(&tx)?;
        let mut seq = start_seq;
        for item in &resp.items {
            let merged = match merged_ahead.as_mut().and_then(Iterator::next) {
                Some(merged) => merged,
                None => merge_feed_item(item, &held_for(&tx, item)?),
            };
            let id = item.id.to_string();
            match merged? {
                FeedMerge::Erase => {
                    seq += 1;
                    erase_local(&tx, &id, seq)?;
                    erased_any = true;
                }
                FeedMerge::Skip => {}
                FeedMerge::Quarantine {
                    reason,
                    source,
                    keep,
                } => quarantine(&tx, &id, &reason, source, keep.as_deref())?,
                FeedMerge::New { heads, projection } => {
                    let FeedBody::Doc { data, .. } = &item.body else {
                        unreachable!("only a document merges as new")
                    };
                    // Store the hub's bytes as they are: already `save()` form.
                    seq += 1;
                    tx.prepare_cached(
                        "INSERT INTO docs(id, doc, heads, synced_heads, pending, seq) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                    )?
                    .execute(params![id, data, heads.0, heads.0, seq])?;
                    write_checked_projection(&tx, &id, projection)?;
                }
                FeedMerge::Merged {
                    bytes,
                    heads,
                    acked,
                    pending,
                    projection,
                } => {
                    tx.prepare_cached(
                        "UPDATE docs SET doc = ?2, heads = ?3, synced_heads = ?4, pending = ?5 WHERE id = ?1",
                    )?
                    .execute(params![id, bytes, heads, acked.0, pending])?;
                    write_checked_projection(&tx, &id, projection)?;
                }
            }
        }
        if seq != start_seq {
            set_seq(&tx, seq)?;
        }
        let set_meta = |key: &str, value: String| {
            tx.prepare_cached(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])
        };
        set_meta(META_PULL_CURSOR, resp.next.to_string())?;
        set_meta(META_CURSOR_SIG, hex::encode(&resp.sig))?;
        if resp.epoch != 0 {
            set_meta(META_FEED_EPOCH, resp.epoch.to_string())?;
        }
        if let Some(config) = &resp.config {
            set_meta(
                META_ORG_CONFIG,
                serde_json::to_string(config).map_err(|e| StoreError::Meta(e.to_string()))?,
            )?;
        }
        tx.commit()?;
        if erased_any {
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// What the store holds for a feed item's id (owned, read before the
/// parallel merge; see `sync::LocalHeld`).
enum Held {
    Tombstone,
    Doc(Vec<u8>),
    Nothing,
}

fn held_for(conn: &Connection, item: &FeedItem) -> Result<Held, StoreError> {
    if matches!(item.body, FeedBody::Erased) {
        return Ok(Held::Nothing);
    }
    let id = item.id.to_string();
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT doc FROM docs WHERE id = ?1")?
        .query_row([&id], |r| r.get(0))
        .optional()?;
    if let Some(bytes) = bytes {
        return Ok(Held::Doc(bytes));
    }
    let tombstoned = conn
        .prepare_cached("SELECT 1 FROM tombstones WHERE id = ?1")?
        .exists([&id])?;
    Ok(if tombstoned {
        Held::Tombstone
    } else {
        Held::Nothing
    })
}

/// A projection row computed off the transaction: the record and its
/// conflicts, or why the merged document does not validate.
type Projection = Result<(Record, serde_json::Map<String, Value>), String>;

/// The outcome of merging one feed item, ready to write.
enum FeedMerge {
    Erase,
    /// Refused (it does not load, is out of bounds, carries personal data
    /// or does not validate): kept aside, the rest of the page goes on.
    Quarantine {
        reason: String,
        source: &'static str,
        keep: Option<Vec<u8>>,
    },
    /// Erased here; our tombstone reaches the hub next push.
    Skip,
    New {
        heads: Heads,
        projection: Projection,
    },
    Merged {
        bytes: Vec<u8>,
        heads: Vec<u8>,
        acked: Heads,
        pending: bool,
        projection: Projection,
    },
}

/// Merges one feed item with what the store holds (the decision is
/// `sync::apply_feed_item`) and projects the result. Pure CPU work.
fn merge_feed_item(item: &FeedItem, held: &Held) -> Result<FeedMerge, StoreError> {
    let id = item.id.to_string();
    let local = match held {
        Held::Tombstone => sync::LocalHeld::Erased,
        Held::Doc(bytes) => match untrusted::load(bytes) {
            Ok(am) => sync::LocalHeld::Doc(Box::new(am)),
            Err(refusal) => {
                return Ok(FeedMerge::Quarantine {
                    reason: refusal.to_string(),
                    source: FROM_STORE,
                    keep: None,
                });
            }
        },
        Held::Nothing => sync::LocalHeld::Nothing,
    };
    let acked = match &item.body {
        FeedBody::Doc { heads, .. } => heads.clone(),
        FeedBody::Erased => Heads::default(),
    };
    let refused = |reason: String, keep: Option<&[u8]>| FeedMerge::Quarantine {
        reason,
        source: FROM_PULL,
        keep: keep.map(<[u8]>::to_vec),
    };
    let applied = match sync::apply_feed_item(item, local) {
        Ok(applied) => applied,
        Err(refusal) => {
            let keep = match &item.body {
                FeedBody::Doc { data, .. } => keepable(&refusal, data),
                FeedBody::Erased => None,
            };
            return Ok(refused(refusal.to_string(), keep));
        }
    };
    let data = match &item.body {
        FeedBody::Doc { data, .. } => Some(data.as_slice()),
        FeedBody::Erased => None,
    };
    Ok(match applied {
        sync::FeedApply::Erase => FeedMerge::Erase,
        sync::FeedApply::Skip => FeedMerge::Skip,
        sync::FeedApply::New { am } => match projection_of(&id, &am)? {
            Ok(projection) => FeedMerge::New {
                heads: acked,
                projection: Ok(projection),
            },
            Err(e) => refused(format!("the record does not validate: {e}"), data),
        },
        sync::FeedApply::Merged { mut am, pending } => match projection_of(&id, &am)? {
            Ok(projection) => FeedMerge::Merged {
                projection: Ok(projection),
                bytes: am.save(),
                heads: encode_heads(&am.get_heads()),
                acked,
                pending,
            },
            Err(e) => refused(format!("the merged record does not validate: {e}"), data),
        },
    })
}

fn projection_of(id: &str, am: &AutoCommit) -> Result<Projection, StoreError> {
    let snapshot = read_snapshot(id, am)?;
    Ok(Record::from_fields(&snapshot.fields)
        .map(|record| (record, conflicts_json(&snapshot)))
        .map_err(|e| e.to_string()))
}

/// Writes a merged document's projection. One that does not validate (it
/// cannot, unless a peer is broken) keeps its old row and is logged,
/// rather than failing the whole sync.
fn write_checked_projection(
    conn: &Connection,
    id: &str,
    projection: Projection,
) -> Result<(), StoreError> {
    match projection {
        Ok((record, conflicts)) => write_projection(conn, &record, &conflicts),
        Err(e) => {
            tracing::error!(record = %id, error = %e, "merged record does not validate; kept the previous view");
            Ok(())
        }
    }
}

/// Saves a document merged with the hub's changes and refreshes its
/// projection. Keeps its change sequence: a merge is not a local edit.
fn save_merged(
    conn: &Connection,
    id: &str,
    am: &mut AutoCommit,
    acked: &Heads,
    pending: bool,
) -> Result<(), StoreError> {
    let bytes = am.save();
    let heads = encode_heads(&am.get_heads());
    conn.prepare_cached(
        "UPDATE docs SET doc = ?2, heads = ?3, synced_heads = ?4, pending = ?5 WHERE id = ?1",
    )?
    .execute(params![id, bytes, heads, acked.0, pending])?;
    project_only(conn, id, am)
}

/// Rewrites a projection row from a merged document (see
/// [`write_checked_projection`]).
fn project_only(conn: &Connection, id: &str, am: &AutoCommit) -> Result<(), StoreError> {
    write_checked_projection(conn, id, projection_of(id, am)?)
}

/// Erasure that came from elsewhere: drop document and projection, keep an
/// acknowledged tombstone at change sequence `seq` (the caller counts, and
/// saves the counter).
fn erase_local(conn: &Connection, id: &str, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM docs WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM quarantine WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM records WHERE id = ?1")?
        .execute([id])?;
    conn.prepare_cached(
        "INSERT INTO tombstones(id, deleted_at, pending, seq) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT(id) DO UPDATE SET pending = 0",
    )?
    .execute(params![
        id,
        rfc3339(chrono::Local::now().fixed_offset()),
        seq
    ])?;
    Ok(())
}

/// The WHERE clause (and its positional arguments) for `filter` over the
/// `records` projection table.
fn filter_sql(filter: &Filter) -> (String, Vec<String>) {
    let mut sql = String::from("1 = 1");
    let mut args: Vec<String> = Vec::new();
    if let Some(kind) = filter.kind {
        args.push(kind.as_str().to_string());
        sql.push_str(&format!(" AND kind = ?{}", args.len()));
    }
    if let Some(from) = filter.from {
        args.push(from.to_string());
        sql.push_str(&format!(" AND date_to >= ?{}", args.len()));
    }
    if let Some(to) = filter.to {
        args.push(to.to_string());
        sql.push_str(&format!(" AND date_from <= ?{}", args.len()));
    }
    if let Some(site) = &filter.site {
        args.push(site.to_string());
        sql.push_str(&format!(" AND fold(site) = fold(?{})", args.len()));
    }
    (sql, args)
}

fn rfc3339(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

// next_seq/set_seq run for every local change and every push answer that
// re-queues or erases a document, so their statements are cached rather
// than parsed each time (a pulled page counts locally, see `apply_pull`).
fn next_seq(conn: &Connection) -> Result<i64, StoreError> {
    let s: String = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'seq'")?
        .query_row([], |r| r.get(0))?;
    s.parse()
        .map_err(|_| StoreError::Meta("seq is not a number".into()))
}

fn set_seq(conn: &Connection, seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'seq'")?
        .execute([seq.to_string()])?;
    Ok(())
}

/// Heads as stored: the 32-byte hashes, concatenated in sorted order.
pub fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

pub fn decode_heads(bytes: &[u8]) -> Vec<ChangeHash> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok().map(ChangeHash))
        .collect()
}

fn load_doc(conn: &Connection, id: &str) -> Result<AutoCommit, StoreError> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT doc FROM docs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match bytes {
        Some(b) => untrusted::load(&b).map_err(|source| StoreError::Load {
            id: id.to_string(),
            source,
        }),
        None => {
            let deleted = conn
                .prepare_cached("SELECT 1 FROM tombstones WHERE id = ?1")?
                .exists([id])?;
            Err(if deleted {
                StoreError::Deleted(id.to_string())
            } else {
                StoreError::NotFound(id.to_string())
            })
        }
    }
}

/// Session field errors named the way the user typed them.
fn session_errors(e: ValidationErrors) -> ValidationErrors {
    ValidationErrors(
        e.0.into_iter()
            .map(|mut fe| {
                fe.field = format!("session {}", fe.field);
                fe
            })
            .collect(),
    )
}

/// The snapshot of a course's document; any other kind is refused.
fn read_course(id: &str, am: &AutoCommit) -> Result<Snapshot, StoreError> {
    let snapshot = read_snapshot(id, am)?;
    let kind = snapshot
        .fields
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != Kind::Course.as_str() {
        return Err(StoreError::WrongKind {
            id: id.to_string(),
            actual: kind.parse().unwrap_or(Kind::Visit),
            expected: Kind::Course,
        });
    }
    Ok(snapshot)
}

/// The course's session whose id is `wanted` or starts with it (at least
/// 4 characters, like record ids); an unknown or ambiguous prefix is
/// refused, naming the course so `outpost show` can list the ids.
fn find_session(course_id: &str, snapshot: &Snapshot, wanted: &str) -> Result<Session, StoreError> {
    let all: Vec<Session> = snapshot
        .fields
        .get(doc::SESSIONS)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    pick_session(course_id, all, wanted)
}

fn pick_session(course_id: &str, all: Vec<Session>, wanted: &str) -> Result<Session, StoreError> {
    let needle = wanted.trim().to_lowercase();
    // The shared rule (whole id or unique prefix), as for record ids.
    outpost_proto::device::pick(&needle, all, |s| &s.id, |_| None, |s| s.id.clone()).map_err(|e| {
        StoreError::NoSession {
            course: course_id.to_string(),
            session: e.to_string(),
        }
    })
}

fn read_snapshot(id: &str, am: &AutoCommit) -> Result<Snapshot, StoreError> {
    doc::read(am).map_err(|source| StoreError::Doc {
        id: id.to_string(),
        source,
    })
}

fn write_doc(conn: &Connection, id: &str, am: &mut AutoCommit, seq: i64) -> Result<(), StoreError> {
    let bytes = am.save();
    let heads = encode_heads(&am.get_heads());
    conn.prepare_cached(
        "INSERT INTO docs(id, doc, heads, synced_heads, pending, seq) VALUES (?1, ?2, ?3, NULL, 1, ?4)
         ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, heads = excluded.heads, pending = 1, seq = excluded.seq",
    )?
    .execute(params![id, bytes, heads, seq])?;
    Ok(())
}

/// Saves the document (when `local_change`) and rewrites its projection row.
fn project(
    conn: &Connection,
    id: &str,
    am: &mut AutoCommit,
    local_change: bool,
) -> Result<Record, StoreError> {
    let snapshot = read_snapshot(id, am)?;
    let record = Record::from_fields(&snapshot.fields)?;
    if local_change {
        let seq = next_seq(conn)? + 1;
        write_doc(conn, id, am, seq)?;
        set_seq(conn, seq)?;
    }
    write_projection(conn, &record, &conflicts_json(&snapshot))?;
    Ok(record)
}

fn conflicts_json(snapshot: &Snapshot) -> serde_json::Map<String, Value> {
    snapshot
        .conflicts
        .iter()
        .map(|(k, v)| (k.clone(), Value::Array(v.clone())))
        .collect()
}

fn write_projection(
    conn: &Connection,
    record: &Record,
    conflicts: &serde_json::Map<String, Value>,
) -> Result<(), StoreError> {
    let id = record.id.to_string();
    let body = serde_json::to_string(record).map_err(|source| StoreError::Projection {
        id: id.clone(),
        source,
    })?;
    let conflicts = if conflicts.is_empty() {
        None
    } else {
        Some(Value::Object(conflicts.clone()).to_string())
    };
    let range = record.date_range();
    conn.prepare_cached(
        "INSERT INTO records(id, kind, org, site, date_from, date_to, created_at, updated_at, body, conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, org = excluded.org, site = excluded.site,
           date_from = excluded.date_from, date_to = excluded.date_to, created_at = excluded.created_at,
           updated_at = excluded.updated_at, body = excluded.body, conflicts = excluded.conflicts",
    )?
    .execute(params![
        id,
        record.kind().as_str(),
        record.org,
        record.site,
        range.map(|r| r.0.to_string()),
        range.map(|r| r.1.to_string()),
        rfc3339(record.created_at),
        rfc3339(record.updated_at),
        body,
        conflicts,
    ])?;
    Ok(())
}

fn parse_stored(id: &str, body: &str, conflicts: Option<&str>) -> Result<StoredRecord, StoreError> {
    let projection_err = |source| StoreError::Projection {
        id: id.to_string(),
        source,
    };
    let record: Record = serde_json::from_str(body).map_err(projection_err)?;
    let conflicts = match conflicts {
        Some(c) => serde_json::from_str(c).map_err(projection_err)?,
        None => serde_json::Map::new(),
    };
    Ok(StoredRecord { record, conflicts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;
    use serde_json::json;

    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path(), "mjolby", "Mjölby bibliotek", "AB").unwrap();
        (dir, store)
    }

    fn visit_fields(store: &Store) -> Fields {
        let mut f = store.new_fields(Kind::Visit, now());
        f.extend(outpost_proto::fixtures::visit_body());
        f.insert("note".into(), json!("glömt koden till BankID"));
        f
    }

    #[test]
    fn init_twice_is_refused_and_open_reads_the_identity() {
        let (dir, store) = store();
        let device = store.identity().device.clone();
        drop(store);
        assert!(matches!(
            Store::init(dir.path(), "mjolby", "x", "y"),
            Err(StoreError::AlreadyInitialized(..))
        ));
        assert_eq!(Store::open(dir.path()).unwrap().identity().device, device);
    }

    #[test]
    fn open_without_init_says_to_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("outpost init"), "{err}");
    }

    #[test]
    fn add_edit_and_the_projection_agree_with_the_document() {
        let (_dir, mut store) = store();
        let rec = store.add(&visit_fields(&store)).unwrap();
        let id = rec.id.to_string();
        assert_eq!(store.get(&id).unwrap().unwrap().record, rec);
        let later = DateTime::parse_from_rfc3339("2025-03-05T09:00:00+01:00").unwrap();
        let edited = store
            .edit(
                &id,
                &Fields::from([("outcome".into(), json!("partly"))]),
                later,
            )
            .unwrap();
        assert_eq!(edited.updated_at, later);
        assert_eq!(store.get(&id).unwrap().unwrap().record, edited);
        assert_eq!(store.load_from_doc(&id).unwrap().record, edited);
        assert_eq!(store.counts().unwrap().pending, 1);
    }

    #[test]
    fn a_refused_edit_changes_nothing() {
        let (_dir, mut store) = store();
        let rec = store.add(&visit_fields(&store)).unwrap();
        let id = rec.id.to_string();
        let err = store
            .edit(
                &id,
                &Fields::from([
                    ("minutes".into(), json!(0)),
                    ("note".into(), json!("ring 070-123 45 67")),
                ]),
                now(),
            )
            .unwrap_err();
        let StoreError::Invalid(errs) = err else {
            panic!("{err}")
        };
        assert_eq!(errs.0.len(), 2);
        assert_eq!(store.get(&id).unwrap().unwrap().record, rec);
        assert_eq!(store.load_from_doc(&id).unwrap().record, rec);
    }

    #[test]
    fn delete_leaves_a_tombstone_and_blocks_reinsert() {
        let (_dir, mut store) = store();
        let rec = store.add(&visit_fields(&store)).unwrap();
        let id = rec.id.to_string();
        store.delete(&id, now()).unwrap();
        assert!(store.get(&id).unwrap().is_none());
        assert!(store.is_deleted(&id).unwrap());
        assert!(matches!(
            store.edit(&id, &Fields::from([("minutes".into(), json!(5))]), now()),
            Err(StoreError::Deleted(_))
        ));
        assert_eq!(
            store.insert_records(&[rec]).unwrap(),
            0,
            "erased stays erased"
        );
        assert_eq!(store.counts().unwrap().records, 0);
        store.delete(&id, now()).unwrap();
    }

    #[test]
    fn sessions_are_added_to_courses_only() {
        let (_dir, mut store) = store();
        let mut f = store.new_fields(Kind::Course, now());
        f.insert("title".into(), json!("Nybörjarkurs internet"));
        let course = store.add(&f).unwrap();
        let cid = course.id.to_string();
        let s = store
            .add_session(
                &cid,
                &Fields::from([
                    ("date".into(), json!("2025-03-11")),
                    ("minutes".into(), json!(90)),
                    ("participants".into(), json!(8)),
                ]),
                now(),
            )
            .unwrap();
        let stored = store.get(&cid).unwrap().unwrap().record;
        let outpost_proto::Body::Course(c) = stored.body else {
            panic!()
        };
        assert_eq!(c.sessions, vec![s]);
        let visit = store.add(&visit_fields(&store)).unwrap();
        let session = Fields::from([
            ("date".into(), json!("2025-03-11")),
            ("minutes".into(), json!(90)),
            ("participants".into(), json!(8)),
        ]);
        assert!(matches!(
            store.add_session(&visit.id.to_string(), &session, now()),
            Err(StoreError::WrongKind { .. })
        ));
        assert!(matches!(
            store.add_session(&cid, &Fields::new(), now()),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn list_filters_by_kind_date_and_site() {
        let (_dir, mut store) = store();
        for (date, site) in [
            ("2025-01-10", "A"),
            ("2025-02-10", "B"),
            ("2025-03-10", "a"),
        ] {
            let mut f = visit_fields(&store);
            f.insert("date".into(), json!(date));
            f.insert("site".into(), json!(site));
            store.add(&f).unwrap();
        }
        let all = store.list(&Filter::default()).unwrap();
        assert_eq!(all.len(), 3);
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let feb = store
            .list(&Filter {
                from: Some(d("2025-02-01")),
                to: Some(d("2025-02-28")),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(feb.len(), 1);
        let site_a = store
            .list(&Filter {
                site: Some("A".into()),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(site_a.len(), 2);
        let courses = store
            .list(&Filter {
                kind: Some(Kind::Course),
                ..Filter::default()
            })
            .unwrap();
        assert!(courses.is_empty());
    }

    #[test]
    fn resolve_id_accepts_a_unique_prefix() {
        let (_dir, mut store) = store();
        let rec = store.add(&visit_fields(&store)).unwrap();
        let id = rec.id.to_string();
        assert_eq!(store.resolve_id(&id[..8]).unwrap(), id);
        assert!(store.resolve_id("ab").is_err());
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Letters, Swedish and Arabic characters and punctuation, no digits:
        // the screen would (rightly) refuse some digit strings.
        "[a-zA-ZåäöÅÄÖ ءاب.,!?-]{1,40}".prop_map(|s| {
            let t = s.trim().to_string();
            if t.is_empty() { "x".into() } else { t }
        })
    }

    prop_compose! {
        fn arb_visit_fields()(
            day in 0i64..3000,
            time in proptest::option::of((0u32..24, 0u32..60)),
            minutes in 1i64..=480,
            channel in proptest::sample::select(outpost_proto::record::Channel::ALL),
            services in proptest::collection::vec(proptest::sample::select(vec!["BankID", "1177 Vårdguiden", "Skatteverket", "Kivra", "Okänd tjänst"]), 0..4),
            category in proptest::sample::select(outpost_proto::record::Category::ALL),
            outcome in proptest::sample::select(outpost_proto::record::Outcome::ALL),
            referred_to in proptest::option::of(arb_text()),
            age in proptest::sample::select(outpost_proto::record::AgeBand::ALL),
            language in "[a-z]{2}",
            assistive in proptest::collection::vec(proptest::sample::select(outpost_proto::record::Assistive::ALL), 0..3),
            barriers in proptest::collection::vec((proptest::sample::select(vec!["BankID", "CSN"]), proptest::sample::select(outpost_proto::record::BarrierKind::ALL), proptest::option::of(arb_text())), 0..3),
            sensitive in any::<bool>(),
            note in proptest::option::of(arb_text()),
            site in arb_text(),
        ) -> Fields {
            let date = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(day as u64);
            let mut f = Fields::new();
            f.insert("date".into(), json!(date.to_string()));
            if let Some((h, m)) = time { f.insert("time".into(), json!(format!("{h:02}:{m:02}"))); }
            f.insert("minutes".into(), json!(minutes));
            f.insert("channel".into(), json!(channel.as_str()));
            let mut uniq: Vec<&str> = Vec::new();
            for s in services { if !uniq.contains(&s) { uniq.push(s); } }
            f.insert("services".into(), json!(uniq));
            // No service is valid only for the categories DESIGN.md allows.
            let category = if uniq.is_empty() && !schema::CATEGORIES_WITHOUT_SERVICE.contains(&category.as_str()) {
                outpost_proto::record::Category::Device
            } else {
                category
            };
            f.insert("category".into(), json!(category.as_str()));
            f.insert("outcome".into(), json!(outcome.as_str()));
            if let Some(r) = referred_to { f.insert("referred_to".into(), json!(r)); }
            f.insert("age_band".into(), json!(age.as_str()));
            f.insert("language".into(), json!(language));
            let mut aids: Vec<&str> = Vec::new();
            for a in assistive { if !aids.contains(&a.as_str()) { aids.push(a.as_str()); } }
            f.insert("assistive".into(), json!(aids));
            f.insert("barriers".into(), json!(barriers.into_iter().map(|(s, k, n)| json!({"service": s, "kind": k.as_str(), "note": n})).collect::<Vec<_>>()));
            f.insert("sensitive".into(), json!(sensitive));
            if let Some(n) = note { f.insert("note".into(), json!(n)); }
            f.insert("site".into(), json!(site));
            f
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any valid record survives Automerge → SQLite → hydrate unchanged,
        /// through both the projection and the document.
        #[test]
        fn any_valid_visit_round_trips_through_the_store(extra in arb_visit_fields()) {
            let (dir, mut store) = store();
            let mut f = store.new_fields(Kind::Visit, now());
            f.extend(extra);
            let rec = Record::from_fields(&f).unwrap();
            store.insert_records(std::slice::from_ref(&rec)).unwrap();
            drop(store);
            let store = Store::open(dir.path()).unwrap();
            let id = rec.id.to_string();
            prop_assert_eq!(&store.get(&id).unwrap().unwrap().record, &rec);
            prop_assert_eq!(&store.load_from_doc(&id).unwrap().record, &rec);
        }

        #[test]
        fn any_valid_course_round_trips_through_the_store(
            title in arb_text(),
            partner in proptest::option::of(arb_text()),
            sessions in proptest::collection::vec((0i64..2000, 1i64..=480, 0i64..=500, proptest::option::of(arb_text())), 0..5),
        ) {
            let (dir, mut store) = store();
            let mut f = store.new_fields(Kind::Course, now());
            f.insert("title".into(), json!(title));
            if let Some(p) = partner { f.insert("partner".into(), json!(p)); }
            let sessions: Vec<Value> = sessions.into_iter().enumerate().map(|(i, (d, m, p, n))| {
                let date = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(d as u64);
                json!({"id": uuid::Uuid::from_u128(i as u128 + 1).to_string(), "date": date.to_string(), "minutes": m, "participants": p, "instructor": n})
            }).collect();
            f.insert("sessions".into(), Value::Array(sessions));
            let rec = Record::from_fields(&f).unwrap();
            store.insert_records(std::slice::from_ref(&rec)).unwrap();
            drop(store);
            let store = Store::open(dir.path()).unwrap();
            let id = rec.id.to_string();
            prop_assert_eq!(&store.get(&id).unwrap().unwrap().record, &rec);
            prop_assert_eq!(&store.load_from_doc(&id).unwrap().record, &rec);
        }
    }
}
