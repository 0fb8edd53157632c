//! The hub's SQLite backend (the embedded default): implements the sync
//! primitives (`outpost_proto::hub::HubStorage`, checked by the shared
//! conformance suite in `tests/conformance.rs`) and the accounts side
//! (`outpost_hub_db::HubStore`). No protocol decision is made here.
//!
//! Flow: one writer connection behind a mutex and a few WAL readers; reads
//! (`get`, `scan_feed`, token checks) use the readers, so a pull never
//! queues behind a push, and an admin export reads on a connection of its
//! own with a small cache (see `for_each_record`); each write (`put`, `erase`, accounts) is one
//! short transaction. Errors are [`SqlError`] inside, converted to the
//! traits' errors at their boundary.
//!
//! SQLite layout: organisations, admin tokens, one-time enrolment codes
//! and devices (tokens and codes stored only as SHA-256 hashes: they are
//! random 256-bit secrets, so a plain hash is enough and a stolen database
//! yields no usable token); `docs` holds each record's merged Automerge
//! document with its position `seq` in the org's change feed and the device
//! that caused it (`origin`), `tombstones` the erased ids in the same feed,
//! and `records` the projection of current values for admin export/stats;
//! `org_config` each org's configuration blobs by kind with their version
//! (`outpost_proto::central`); `rate_counts` the rate-limit counters
//! (`outpost_proto::hub::limits`) by key and window; `admin_tokens` the
//! named accounts (see `migrate_accounts`), `audit_log` the hash-chained
//! audit entries and `audit_head` the chain's last position and hash
//! (`outpost_hub_db::accounts`). A device row also keeps the laptop's
//! latest report (name, site, staff, records waiting; columns added to
//! older hubs by `migrate_device_reports`).
//! `signin_codes` and `dash_sessions` the dashboard's one-time sign-in
//! codes and sessions (hashes only, each with the hash of the admin token
//! it acts for).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use chrono::{DateTime, Utc};
use outpost_base::sqlite::BackgroundCheckpoint;
use outpost_hub_db::accounts::{self, orgs_from_column, orgs_to_column};
use outpost_hub_db::{
    Account, AdminAuth, AuditDraft, AuditEntry, AuditHead, CLOCK_SKEW_LIMIT_SECS, CODE_TTL,
    DeviceAuth, DeviceInfo, HubError, HubStore, Role, SESSION_IDLE, SESSION_MAX, SIGNIN_CODE_TTL,
    hash_secret, new_code, new_secret, normalize_code, session_alive,
};
use outpost_proto::device::DeviceReport;
use outpost_proto::filter::Filter;
use outpost_proto::hub::storage::FeedVisitor;
use outpost_proto::hub::{
    ConfigEntry, Expect, FeedEntry, FeedMeta, FeedRow, Held, HubStorage, Put, PutResult, RateTake,
    RateTaken, StorageError,
};
use outpost_proto::record::{Kind, Record};
use outpost_proto::sync::Heads;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

pub const HUB_FILE: &str = "hub.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orgs (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq        INTEGER NOT NULL DEFAULT 0,
    epoch      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS admin_tokens (
    hash       TEXT PRIMARY KEY,
    org        TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS enrol_codes (
    hash       TEXT PRIMARY KEY,
    org        TEXT NOT NULL REFERENCES orgs(slug),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    id                TEXT PRIMARY KEY,
    org               TEXT NOT NULL REFERENCES orgs(slug),
    token_hash        TEXT NOT NULL UNIQUE,
    enrolled_at       TEXT NOT NULL,
    last_seen         TEXT,
    clock_offset_secs INTEGER,
    revoked_at        TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS docs (
    id                TEXT NOT NULL,
    org               TEXT NOT NULL,
    doc               BLOB NOT NULL,
    heads             BLOB NOT NULL,
    seq               INTEGER NOT NULL,
    origin            TEXT NOT NULL,
    first_received_at TEXT NOT NULL,
    PRIMARY KEY (org, id)
) STRICT;
CREATE INDEX IF NOT EXISTS docs_feed ON docs(org, seq);
CREATE TABLE IF NOT EXISTS tombstones (
    id         TEXT NOT NULL,
    org        TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (org, id)
) STRICT;
CREATE INDEX IF NOT EXISTS tombstones_feed ON tombstones(org, seq);
CREATE TABLE IF NOT EXISTS records (
    id         TEXT NOT NULL,
    org        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    site       TEXT NOT NULL,
    date_from  TEXT,
    date_to    TEXT,
    created_at TEXT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (org, id)
) STRICT;
CREATE INDEX IF NOT EXISTS records_org_day ON records(org, date_from);
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS org_config (
    org     TEXT NOT NULL REFERENCES orgs(slug),
    kind    TEXT NOT NULL,
    version INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (org, kind)
) STRICT;
CREATE TABLE IF NOT EXISTS rate_counts (
    key     TEXT NOT NULL,
    period  INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    used    INTEGER NOT NULL,
    PRIMARY KEY (key, period)
) STRICT;
CREATE INDEX IF NOT EXISTS rate_counts_expires ON rate_counts(expires);
CREATE TABLE IF NOT EXISTS audit_log (
    position   INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor_id   TEXT,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    org        TEXT,
    detail     TEXT NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_log_org ON audit_log(org, position);
CREATE TABLE IF NOT EXISTS audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL,
    hash     TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS signin_codes (
    hash       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS dash_sessions (
    hash       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL
) STRICT;
";

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A connection whose lock a panicking thread held: usable again once any
/// transaction it left open is rolled back (rusqlite's `Transaction`
/// already rolls back while unwinding; this covers a bare `BEGIN`). A
/// poisoned lock used to stop every write of every organisation until the
/// hub was restarted.
fn recover<'a>(
    lock: Result<MutexGuard<'a, Connection>, PoisonError<MutexGuard<'a, Connection>>>,
) -> MutexGuard<'a, Connection> {
    lock.unwrap_or_else(|poisoned| {
        let conn = poisoned.into_inner();
        if !conn.is_autocommit() {
            tracing::warn!("rolling back a transaction left open by a panic");
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    })
}

/// How many read connections serve pulls, token checks and exports.
const READERS: usize = 4;

/// The SQLite hub store: one writer connection behind a mutex (SQLite
/// serialises writers anyway; every write is one short transaction) and a
/// few read connections. In WAL mode readers see a consistent snapshot
/// while the writer commits, so a pull or a token check never waits behind
/// a push: when every laptop comes back at once, the queue on one mutex
/// was what made requests slow, not the work itself.
pub struct SqliteHubStore {
    conn: Mutex<Connection>,
    /// The writer's WAL checkpoints, off the pushes' path (after `conn`,
    /// so the writer closes first).
    checkpoints: BackgroundCheckpoint,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteHubStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteHubStore")
    }
}

impl SqliteHubStore {
    pub fn open(data_dir: &Path) -> Result<SqliteHubStore, SqlError> {
        // hub.db holds every org's records: only the hub's user may read
        // it (SQLite gives its -wal and -shm files the same mode).
        outpost_base::files::private_dir(data_dir)
            .map_err(|e| HubError::Invalid(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(HUB_FILE);
        outpost_base::files::private_database(&path).map_err(|e| {
            HubError::Invalid(format!("cannot make {} private: {e}", path.display()))
        })?;
        let open = || -> Result<Connection, SqlError> {
            let conn = Connection::open(&path)?;
            outpost_base::sqlite::configure(&conn)?;
            // A 32 MiB page cache a connection (the default is 2 MiB) keeps
            // in memory the indexes that every pushed document's
            // random-UUID insert descends, once an org holds 100,000
            // records.
            conn.execute_batch("PRAGMA cache_size = -32768;")?;
            Ok(conn)
        };
        let conn = open()?;
        // The writer gets 64 MiB: at 100,000 records the five indexes a
        // push wrote when this was measured (`docs` by (org, id), by id and
        // by feed position, `records` by (org, id) and by date; `docs_id`
        // and the wide date index are gone since) were 28 MiB of pages, and each
        // push batch also dirties about 3 MiB of appended table pages, so
        // with 32 MiB index pages were evicted and read back from the OS
        // on every batch. The readers keep 32 MiB: SQLite drops a
        // connection's cache whenever another connection commits, so a
        // reader's cache only lives for one request anyway.
        conn.execute_batch("PRAGMA cache_size = -65536;")?;
        migrate_org_scoped_ids(&conn)?;
        conn.execute_batch(SCHEMA)?;
        // Hubs made before this kept a `docs(id)` index for
        // `record_orgs`, which now probes the `(org, id)` key once per
        // org instead. It was one more random-UUID B-tree that every
        // pushed document was inserted into (1,227 pages at 100,000
        // records), for a lookup only an admin's erasure makes.
        conn.execute_batch("DROP INDEX IF EXISTS docs_id;")?;
        // `records_org_date` (org, date_from, created_at, id) is replaced by
        // `records_org_day` (org, date_from): admin exports read it in day
        // order and SQLite sorts one day's records by the rest as it reads.
        // The old entries were four times as large, and every pushed record
        // (random dates) dirtied a random one of their pages, so a push
        // batch of thousands rewrote nearly all of them into the WAL (a
        // 100,000-record first push wrote 512 MB, now 447 MB).
        conn.execute_batch("DROP INDEX IF EXISTS records_org_date;")?;
        migrate_feed_epochs(&conn)?;
        migrate_accounts(&conn)?;
        migrate_device_reports(&conn)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = open()?;
                reader.execute_batch("PRAGMA query_only = ON;")?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<_, SqlError>>()?;
        Ok(SqliteHubStore {
            checkpoints: BackgroundCheckpoint::install(&conn, &path),
            conn: Mutex::new(conn),
            readers,
            next_reader: AtomicUsize::new(0),
            path,
        })
    }

    /// A new connection to the database with the shared set-up and
    /// SQLite's default cache, for work that must not use the pooled ones.
    fn open_conn(&self) -> Result<Connection, SqlError> {
        let conn = Connection::open(&self.path)?;
        outpost_base::sqlite::configure(&conn)?;
        Ok(conn)
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, SqlError> {
        Ok(recover(self.conn.lock()))
    }

    /// A free read connection, or the next one in turn when all are busy.
    fn reader(&self) -> Result<MutexGuard<'_, Connection>, SqlError> {
        for reader in &self.readers {
            match reader.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Poisoned(p)) => return Ok(recover(Err(p))),
            }
        }
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        Ok(recover(self.readers[turn].lock()))
    }

    /// Gives every organisation's feed a new epoch. Run after the hub's
    /// database was restored from a backup (`outpostd hub restored`): the
    /// restored feed no longer continues the laptops' cursors, and they may
    /// hold records acknowledged after the backup was taken. At their next
    /// sync every laptop sees the new epoch, sends all its records again
    /// and reads the feed from the start, so nothing is lost.
    pub fn rotate_feed_epochs(&self) -> Result<usize, SqlError> {
        let conn = self.conn()?;
        let slugs: Vec<String> = conn
            .prepare("SELECT slug FROM orgs")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for slug in &slugs {
            set_new_epoch(&conn, slug)?;
        }
        Ok(slugs.len())
    }

    /// Moves the WAL into the main file and truncates it, so erased bytes
    /// leave the log (called after erasures).
    pub fn checkpoint(&self) -> Result<(), SqlError> {
        self.checkpoints.truncate(&*self.conn()?)?;
        Ok(())
    }
}

/// A new random, non-zero feed epoch for `org` (stored as a positive i64).
/// Who an admin token (given as its hash) is: the one lookup behind
/// `admin` and dashboard sessions, so both see alike.
fn admin_by_hash(conn: &Connection, token_hash: &str) -> Result<AdminAuth, SqlError> {
    Ok(account_by_hash(conn, token_hash)?.0)
}

/// The live (unrevoked) account of a token hash, and when it was last
/// used: the one lookup behind `admin` and dashboard sessions, so a
/// session sees what its token sees and ends when the token is revoked
/// or rotated.
fn account_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> Result<(AdminAuth, Option<String>), SqlError> {
    type Row = (String, String, String, Option<String>, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, name, role, org, last_used FROM admin_tokens
             WHERE hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([token_hash], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((id, name, role, orgs, last_used)) = row else {
        return Err(HubError::Unauthorized.into());
    };
    let auth = AdminAuth {
        id,
        name,
        role: Role::parse(&role)?,
        orgs: orgs_from_column(orgs),
    };
    Ok((auth, last_used))
}

/// A time as [`ts`] writes it.
fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn set_new_epoch(conn: &Connection, org: &str) -> Result<i64, SqlError> {
    let epoch = i64::try_from(rand::random::<u64>() >> 1)
        .unwrap_or(1)
        .max(1);
    conn.prepare_cached("UPDATE orgs SET epoch = ?1 WHERE slug = ?2")?
        .execute(params![epoch, org])?;
    Ok(epoch)
}

/// Hubs created before feed epochs lack the column; every org gets one.
fn migrate_feed_epochs(conn: &Connection) -> Result<(), SqlError> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('orgs') WHERE name = 'epoch'")?
        .exists([])?;
    if !has_column {
        conn.execute_batch("ALTER TABLE orgs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;")?;
    }
    let unset: Vec<String> = conn
        .prepare("SELECT slug FROM orgs WHERE epoch = 0")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for slug in &unset {
        set_new_epoch(conn, slug)?;
    }
    Ok(())
}

/// Admin tokens became named accounts: `admin_tokens` gains an id, a
/// name, a role, when it was last used and when it was revoked (its `org`
/// column now holds the orgs an account is scoped to, comma-separated, so
/// a token scoped to one org before reads the same). Tokens made before
/// keep working as admins, with a generated id and name. Run at every
/// open; a new database goes the same way.
fn migrate_accounts(conn: &Connection) -> Result<(), SqlError> {
    let has_id = conn
        .prepare("SELECT 1 FROM pragma_table_info('admin_tokens') WHERE name = 'id'")?
        .exists([])?;
    if !has_id {
        conn.execute_batch(
            "ALTER TABLE admin_tokens ADD COLUMN id TEXT;
             ALTER TABLE admin_tokens ADD COLUMN name TEXT;
             ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
             ALTER TABLE admin_tokens ADD COLUMN last_used TEXT;
             ALTER TABLE admin_tokens ADD COLUMN revoked_at TEXT;",
        )?;
    }
    conn.execute(
        "UPDATE admin_tokens SET id = 'tok_' || lower(hex(randomblob(4))), name = ?1
         WHERE id IS NULL",
        [accounts::LEGACY_NAME],
    )?;
    conn.execute_batch("CREATE UNIQUE INDEX IF NOT EXISTS admin_tokens_id ON admin_tokens(id);")?;
    Ok(())
}

/// Hubs created before device reports lack their columns (a laptop's
/// name, site, staff and records waiting, `HubStore::report_device`):
/// each missing one is added, empty, so existing hubs open unchanged.
fn migrate_device_reports(conn: &Connection) -> Result<(), SqlError> {
    for (column, ty) in [
        ("name", "TEXT"),
        ("site", "TEXT"),
        ("staff", "TEXT"),
        ("waiting", "INTEGER"),
    ] {
        let has_column = conn
            .prepare("SELECT 1 FROM pragma_table_info('devices') WHERE name = ?1")?
            .exists([column])?;
        if !has_column {
            conn.execute_batch(&format!("ALTER TABLE devices ADD COLUMN {column} {ty};"))?;
        }
    }
    Ok(())
}

/// Hubs created before ids were scoped by organisation keyed `docs`,
/// `tombstones` and `records` by id alone. Each table is rebuilt with the
/// key `(org, id)` in one transaction, rows unchanged.
fn migrate_org_scoped_ids(conn: &Connection) -> Result<(), SqlError> {
    let old = conn
        .prepare("SELECT 1 FROM pragma_table_info('docs') WHERE name = 'org' AND pk = 0")?
        .exists([])?;
    if !old {
        return Ok(());
    }
    tracing::info!("migrating the hub database: record ids scoped by organisation");
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE docs RENAME TO docs_v1;
         ALTER TABLE tombstones RENAME TO tombstones_v1;
         ALTER TABLE records RENAME TO records_v1;
         DROP INDEX IF EXISTS docs_feed;
         DROP INDEX IF EXISTS tombstones_feed;
         DROP INDEX IF EXISTS records_org_date;",
    )?;
    let rebuilt = conn.execute_batch(SCHEMA).and_then(|()| {
        conn.execute_batch(
            "INSERT INTO docs(id, org, doc, heads, seq, origin, first_received_at)
               SELECT id, org, doc, heads, seq, origin, first_received_at FROM docs_v1;
             INSERT INTO tombstones(id, org, seq, deleted_at)
               SELECT id, org, seq, deleted_at FROM tombstones_v1;
             INSERT INTO records(id, org, kind, site, date_from, date_to, created_at, body)
               SELECT id, org, kind, site, date_from, date_to, created_at, body FROM records_v1;
             DROP TABLE docs_v1;
             DROP TABLE tombstones_v1;
             DROP TABLE records_v1;
             COMMIT;",
        )
    });
    if let Err(e) = rebuilt {
        let _ = conn.execute_batch("ROLLBACK;");
        return Err(e.into());
    }
    Ok(())
}

fn next_org_seq(tx: &Connection, org: &str) -> Result<i64, SqlError> {
    // Once per stored document: keep the statement cached.
    let seq: i64 = tx
        .prepare_cached("UPDATE orgs SET seq = seq + 1 WHERE slug = ?1 RETURNING seq")?
        .query_row([org], |r| r.get(0))?;
    Ok(seq)
}

fn write_projection(tx: &Connection, record: &Record) -> Result<(), SqlError> {
    let body = serde_json::to_string(record).map_err(|e| HubError::Invalid(e.to_string()))?;
    let range = record.date_range();
    tx.prepare_cached(
        "INSERT INTO records(id, org, kind, site, date_from, date_to, created_at, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(org, id) DO UPDATE SET kind = excluded.kind, site = excluded.site,
           date_from = excluded.date_from, date_to = excluded.date_to, body = excluded.body",
    )?
    .execute(params![
        record.id.to_string(),
        record.org,
        record.kind().as_str(),
        record.site,
        range.map(|r| r.0.to_string()),
        range.map(|r| r.1.to_string()),
        record.created_at.to_rfc3339(),
        body
    ])?;
    Ok(())
}

impl SqliteHubStore {
    fn has_admin_token(&self) -> Result<bool, SqlError> {
        Ok(self
            .reader()?
            .query_row("SELECT count(*) FROM admin_tokens", [], |r| {
                r.get::<_, i64>(0)
            })?
            > 0)
    }

    // ---- dashboard: sign-in codes and sessions (dash) ----

    fn signin_code(&self, token: &str, now: DateTime<Utc>) -> Result<String, SqlError> {
        let token_hash = hash_secret(token);
        let conn = self.conn()?;
        admin_by_hash(&conn, &token_hash)?;
        // Codes and sessions past any use are dropped as new ones come,
        // so the tables stay small without a timer.
        conn.execute(
            "DELETE FROM signin_codes WHERE expires_at < ?1",
            [ts(now - SESSION_MAX)],
        )?;
        let code = new_code();
        conn.execute(
            "INSERT INTO signin_codes(hash, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash_secret(&normalize_code(&code)),
                token_hash,
                ts(now),
                ts(now + SIGNIN_CODE_TTL)
            ],
        )?;
        Ok(code)
    }

    fn signin(&self, code: &str, now: DateTime<Utc>) -> Result<(String, AdminAuth), SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hash = hash_secret(&normalize_code(code));
        let row: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT token_hash, expires_at, used_at FROM signin_codes WHERE hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((token_hash, expires, used)) = row else {
            return Err(HubError::BadCode.into());
        };
        if used.is_some() || parse_ts(&expires).is_none_or(|e| e < now) {
            return Err(HubError::BadCode.into());
        }
        let auth = match admin_by_hash(&tx, &token_hash) {
            Err(SqlError::Hub(HubError::Unauthorized)) => return Err(HubError::BadCode.into()),
            other => other?,
        };
        tx.execute(
            "UPDATE signin_codes SET used_at = ?1 WHERE hash = ?2",
            params![ts(now), hash],
        )?;
        tx.execute(
            "DELETE FROM dash_sessions WHERE created_at < ?1 OR last_seen < ?2",
            params![ts(now - SESSION_MAX), ts(now - SESSION_IDLE)],
        )?;
        let secret = new_secret("ops_");
        tx.execute(
            "INSERT INTO dash_sessions(hash, token_hash, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)",
            params![hash_secret(&secret), token_hash, ts(now)],
        )?;
        tx.commit()?;
        Ok((secret, auth))
    }

    fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<AdminAuth, SqlError> {
        let hash = hash_secret(secret);
        let conn = self.conn()?;
        let row: Option<(String, String, String)> = conn
            .prepare_cached(
                "SELECT token_hash, created_at, last_seen FROM dash_sessions WHERE hash = ?1",
            )?
            .query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((token_hash, created, last_seen)) = row else {
            return Err(HubError::Unauthorized.into());
        };
        let alive = match (parse_ts(&created), parse_ts(&last_seen)) {
            (Some(c), Some(l)) => session_alive(c, l, now),
            _ => false,
        };
        if !alive {
            conn.execute("DELETE FROM dash_sessions WHERE hash = ?1", [&hash])?;
            return Err(HubError::Unauthorized.into());
        }
        let auth = admin_by_hash(&conn, &token_hash)?;
        conn.prepare_cached("UPDATE dash_sessions SET last_seen = ?1 WHERE hash = ?2")?
            .execute(params![ts(now), hash])?;
        Ok(auth)
    }

    fn signout(&self, secret: &str) -> Result<(), SqlError> {
        self.conn()?.execute(
            "DELETE FROM dash_sessions WHERE hash = ?1",
            [hash_secret(secret)],
        )?;
        Ok(())
    }

    fn add_org(&self, slug: &str, name: &str) -> Result<(), SqlError> {
        if !outpost_proto::record::is_slug(slug) {
            return Err(HubError::Invalid(format!(
                "'{slug}' is not a valid slug: use lowercase letters a-z, digits and '-', e.g. mjolby"
            )).into());
        }
        if name.trim().is_empty() {
            return Err(HubError::Invalid("the organisation needs a name".into()).into());
        }
        let conn = self.conn()?;
        let n = conn.execute(
            "INSERT INTO orgs(slug, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![slug, name.trim(), ts(Utc::now())],
        )?;
        if n == 0 {
            return Err(HubError::OrgExists(slug.into()).into());
        }
        set_new_epoch(&conn, slug)?;
        Ok(())
    }

    fn orgs(&self) -> Result<Vec<(String, String)>, SqlError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare("SELECT slug, name FROM orgs ORDER BY slug")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn invite(&self, org: &str, now: DateTime<Utc>) -> Result<String, SqlError> {
        let conn = self.conn()?;
        let exists = conn
            .prepare_cached("SELECT 1 FROM orgs WHERE slug = ?1")?
            .exists([org])?;
        if !exists {
            return Err(HubError::NoSuchOrg(org.into()).into());
        }
        let code = new_code();
        conn.execute(
            "INSERT INTO enrol_codes(hash, org, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                hash_secret(&normalize_code(&code)),
                org,
                ts(now),
                ts(now + CODE_TTL)
            ],
        )?;
        Ok(code)
    }

    fn cursor_key(&self) -> Result<[u8; 32], SqlError> {
        let conn = self.conn()?;
        let fresh: [u8; 32] = rand::random();
        conn.execute(
            "INSERT INTO secrets(name, value) VALUES ('cursor_key', ?1) ON CONFLICT DO NOTHING",
            [fresh.as_slice()],
        )?;
        let stored: Vec<u8> = conn.query_row(
            "SELECT value FROM secrets WHERE name = 'cursor_key'",
            [],
            |r| r.get(0),
        )?;
        <[u8; 32]>::try_from(stored.as_slice()).map_err(|_| {
            HubError::Invalid(
                "the hub's cursor key in hub.db is damaged; delete the row `cursor_key` of table `secrets` (laptops then re-read the feed once)".into(),
            )
            .into()
        })
    }

    fn enroll(
        &self,
        code: &str,
        device: Uuid,
        laptop_org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hash = hash_secret(&normalize_code(code));
        let row: Option<(String, String, Option<String>)> = tx
            .query_row(
                "SELECT org, expires_at, used_at FROM enrol_codes WHERE hash = ?1",
                [&hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((org, expires, used)) = row else {
            return Err(HubError::BadCode.into());
        };
        let expired = DateTime::parse_from_rfc3339(&expires)
            .map(|e| e.with_timezone(&Utc) < now)
            .unwrap_or(true);
        if used.is_some() || expired {
            return Err(HubError::BadCode.into());
        }
        if let Some(want) = laptop_org
            && want != org
        {
            // Nothing is written: the code stays usable by its own org.
            return Err(HubError::CodeForOtherOrg(want.to_string()).into());
        }
        let exists = tx
            .prepare_cached("SELECT 1 FROM devices WHERE id = ?1")?
            .exists([device.to_string()])?;
        if exists {
            return Err(HubError::DeviceExists(device).into());
        }
        let token = new_secret("opd_");
        tx.execute(
            "UPDATE enrol_codes SET used_at = ?1 WHERE hash = ?2",
            params![ts(now), hash],
        )?;
        tx.execute(
            "INSERT INTO devices(id, org, token_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
            params![device.to_string(), org, hash_secret(&token), ts(now)],
        )?;
        tx.commit()?;
        Ok((org, token))
    }

    fn device(&self, token: &str) -> Result<DeviceAuth, SqlError> {
        let row: Option<(String, String)> = self
            .reader()?
            .prepare_cached(
                "SELECT id, org FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([hash_secret(token)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(device, org)| DeviceAuth { device, org })
            .ok_or(SqlError::from(HubError::Unauthorized))
    }

    fn seen(
        &self,
        device: &str,
        now: DateTime<Utc>,
        device_time: Option<i64>,
    ) -> Result<(), SqlError> {
        let offset = device_time.map(|t| t - now.timestamp());
        self.conn()?
            .prepare_cached(
                "UPDATE devices SET last_seen = ?1, clock_offset_secs = coalesce(?2, clock_offset_secs) WHERE id = ?3",
            )?
            .execute(params![ts(now), offset, device])?;
        Ok(())
    }

    fn devices(&self, org: Option<&str>) -> Result<Vec<DeviceInfo>, SqlError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, org, enrolled_at, last_seen, clock_offset_secs, revoked_at,
                    name, site, staff, waiting FROM devices
             WHERE ?1 IS NULL OR org = ?1 ORDER BY org, enrolled_at",
        )?;
        let rows = stmt.query_map([org], |r| {
            let offset: Option<i64> = r.get(4)?;
            Ok(DeviceInfo {
                id: r.get(0)?,
                org: r.get(1)?,
                enrolled_at: r.get(2)?,
                last_seen: r.get(3)?,
                clock_offset_secs: offset,
                clock_flag: offset.is_some_and(|o| o.abs() > CLOCK_SKEW_LIMIT_SECS),
                revoked: r.get::<_, Option<String>>(5)?.is_some(),
                name: r.get(6)?,
                site: r.get(7)?,
                staff: r.get(8)?,
                waiting: r.get::<_, Option<i64>>(9)?.map(|n| n.max(0) as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn report_device(&self, device: &str, report: &DeviceReport) -> Result<(), SqlError> {
        self.conn()?
            .prepare_cached(
                "UPDATE devices SET name = ?1, site = ?2, staff = ?3, waiting = ?4 WHERE id = ?5",
            )?
            .execute(params![
                report.name,
                report.site,
                report.staff,
                i64::try_from(report.waiting).unwrap_or(i64::MAX),
                device
            ])?;
        Ok(())
    }

    fn device_org(&self, device: &str) -> Result<Option<String>, SqlError> {
        Ok(self
            .reader()?
            .query_row("SELECT org FROM devices WHERE id = ?1", [device], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn revoke(&self, device: &str, now: DateTime<Utc>) -> Result<(), SqlError> {
        let n = self.conn()?.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
            params![ts(now), device],
        )?;
        if n == 0 {
            return Err(HubError::NoSuchDevice(device.into()).into());
        }
        Ok(())
    }

    fn record_orgs(&self, id: &str) -> Result<Vec<String>, SqlError> {
        let conn = self.reader()?;
        // One probe of the `(org, id)` key per org (few), in org order.
        let mut stmt = conn.prepare_cached(
            "SELECT org FROM docs WHERE org IN (SELECT slug FROM orgs) AND id = ?1 ORDER BY org",
        )?;
        let orgs = stmt.query_map([id], |r| r.get(0))?;
        Ok(orgs.collect::<Result<_, _>>()?)
    }

    fn for_each_record(
        &self,
        org: Option<&str>,
        filter: &Filter,
        f: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), SqlError> {
        // A connection of its own with a small page cache: an export reads
        // every row once, so caching gains nothing, and on a shared reader
        // it would fill the 32 MiB cache (hub memory then grows with the
        // data) and push out the pages pulls keep hot.
        let conn = self.open_conn()?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -2048;")?;
        let mut stmt = conn.prepare(
            "SELECT body FROM records
             WHERE (?1 IS NULL OR org = ?1) AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR date_to >= ?3) AND (?4 IS NULL OR date_from <= ?4)
               AND (?5 IS NULL OR fold(site) = fold(?5))
             ORDER BY org, date_from, created_at, id",
        )?;
        let mut rows = stmt.query(params![
            org,
            filter.kind.map(Kind::as_str),
            filter.from.map(|d| d.to_string()),
            filter.to.map(|d| d.to_string()),
            filter.site,
        ])?;
        while let Some(row) = rows.next()? {
            let body: String = row.get(0)?;
            match serde_json::from_str::<Record>(&body) {
                Ok(r) => {
                    if !f(r) {
                        break;
                    }
                }
                Err(e) => tracing::error!(error = %e, "damaged record projection on the hub"),
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The sync storage primitives (the protocol itself is `outpost_proto::hub`)
// ---------------------------------------------------------------------------

fn backend(e: impl Into<SqlError>) -> StorageError {
    e.into().into()
}

fn org_exists(conn: &Connection, org: &str) -> Result<bool, SqlError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM orgs WHERE slug = ?1")?
        .exists([org])?)
}

/// What `org` holds for `id`, read on `conn`.
fn held(conn: &Connection, org: &str, id: &str) -> Result<Held, SqlError> {
    let doc: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached("SELECT doc, heads FROM docs WHERE org = ?1 AND id = ?2")?
        .query_row([org, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((data, heads)) = doc {
        // A row and a tombstone never coexist (see `put_docs`).
        return Ok(Held::Doc {
            data,
            heads: Heads(heads),
        });
    }
    let erased = conn
        .prepare_cached("SELECT 1 FROM tombstones WHERE org = ?1 AND id = ?2")?
        .exists([org, id])?;
    Ok(if erased { Held::Erased } else { Held::Nothing })
}

impl SqliteHubStore {
    fn get_held(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, SqlError> {
        let conn = self.reader()?;
        if !org_exists(&conn, org)? {
            return Err(SqlError::NoOrg(org.into()));
        }
        ids.iter()
            .map(|id| held(&conn, org, &id.to_string()))
            .collect()
    }

    fn put_docs(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The feed counter is read once and written once per batch: this
        // transaction is the only writer, so a local count is exact.
        let head: Option<i64> = tx
            .prepare_cached("SELECT seq FROM orgs WHERE slug = ?1")?
            .query_row([org], |r| r.get(0))
            .optional()?;
        let Some(mut seq) = head else {
            return Err(SqlError::NoOrg(org.into()));
        };
        let start = seq;
        let mut results = Vec::with_capacity(puts.len());
        for put in puts {
            let id = put.id.to_string();
            let next = seq + 1;
            // Each condition is checked by the write itself, one statement
            // per document: the insert of a new document happens only if
            // neither a row nor a tombstone has appeared since it was read,
            // the update only if the row still has the heads it was read
            // with. (Reading first and writing after cost two more index
            // descents per document, a tenth of a 10,000-record upload.)
            let written = match &put.expect {
                Expect::Absent => tx
                    .prepare_cached(
                        "INSERT INTO docs(id, org, doc, heads, seq, origin, first_received_at)
                         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
                         WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE org = ?2 AND id = ?1)
                         ON CONFLICT(org, id) DO NOTHING",
                    )?
                    .execute(params![
                        id,
                        org,
                        put.data,
                        put.heads.0,
                        next,
                        put.origin,
                        ts(put.received_at)
                    ])?,
                Expect::Heads(want) => tx
                    .prepare_cached(
                        "UPDATE docs SET doc = ?3, heads = ?4, seq = ?5, origin = ?6
                         WHERE org = ?2 AND id = ?1 AND heads = ?7",
                    )?
                    .execute(params![
                        id,
                        org,
                        put.data,
                        put.heads.0,
                        next,
                        put.origin,
                        want.0
                    ])?,
            };
            if written == 0 {
                results.push(PutResult::Conflict);
                continue;
            }
            seq = next;
            write_projection(&tx, put.record)?;
            results.push(PutResult::Stored {
                seq: u64::try_from(seq).unwrap_or(0),
            });
        }
        if seq != start {
            tx.prepare_cached("UPDATE orgs SET seq = ?1 WHERE slug = ?2")?
                .execute(params![seq, org])?;
        }
        tx.commit()?;
        Ok(results)
    }

    fn erase_ids(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !org_exists(&tx, org)? {
            return Err(SqlError::NoOrg(org.into()));
        }
        let mut erased_any = false;
        for id in ids {
            let id = id.to_string();
            let already = tx
                .prepare_cached("SELECT 1 FROM tombstones WHERE org = ?1 AND id = ?2")?
                .exists([org, &id])?;
            if already {
                continue;
            }
            let seq = next_org_seq(&tx, org)?;
            tx.prepare_cached("DELETE FROM docs WHERE org = ?1 AND id = ?2")?
                .execute([org, &id])?;
            tx.prepare_cached("DELETE FROM records WHERE org = ?1 AND id = ?2")?
                .execute([org, &id])?;
            tx.prepare_cached(
                "INSERT INTO tombstones(id, org, seq, deleted_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, org, seq, ts(at)])?;
            erased_any = true;
        }
        tx.commit()?;
        drop(conn);
        if erased_any {
            // Erased bytes leave the WAL too (secure_delete clears them in
            // the main file).
            self.checkpoint()?;
        }
        Ok(())
    }

    fn scan(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        let mut conn = self.reader().map_err(backend)?;
        // One read transaction: the head, the epoch and the rows come from
        // the same snapshot of the feed.
        let tx = conn.transaction().map_err(backend)?;
        let meta: Option<(i64, i64)> = tx
            .prepare_cached("SELECT seq, epoch FROM orgs WHERE slug = ?1")
            .and_then(|mut s| {
                s.query_row([org], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend)?;
        let Some((head, epoch)) = meta else {
            return Err(StorageError::NoOrg(org.into()));
        };
        let meta = FeedMeta {
            head: u64::try_from(head).unwrap_or(0),
            epoch: u64::try_from(epoch).unwrap_or(0),
        };
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        // Both sides come in `seq` order from their (org, seq) index, so
        // SQLite merges them as it goes; the visitor stops the scan, so no
        // LIMIT is needed and rows past the page are never read.
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, id, origin, heads, doc FROM docs WHERE org = ?1 AND seq > ?2
                 UNION ALL
                 SELECT seq, id, NULL, NULL, NULL FROM tombstones WHERE org = ?1 AND seq > ?2
                 ORDER BY 1",
            )
            .map_err(backend)?;
        let mut rows = stmt.query(params![org, since]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let seq: i64 = row.get(0).map_err(backend)?;
            let id: String = row.get(1).map_err(backend)?;
            let origin: Option<String> = row.get(2).map_err(backend)?;
            let Ok(uuid) = Uuid::parse_str(&id) else {
                continue;
            };
            let entry = match &origin {
                Some(o) => FeedEntry::Doc { origin: o },
                None => FeedEntry::Erased,
            };
            let feed_row = FeedRow {
                seq: u64::try_from(seq).unwrap_or(0),
                id: uuid,
                entry,
            };
            // The body comes from the same row, read only when the visitor
            // sends it (a device's own entries are skipped unread).
            let mut load = || {
                let heads: Vec<u8> = row.get(3).map_err(backend)?;
                let doc: Vec<u8> = row.get(4).map_err(backend)?;
                Ok((Heads(heads), doc))
            };
            if !visit(feed_row, &mut load)? {
                break;
            }
        }
        Ok(meta)
    }
}

impl HubStorage for SqliteHubStore {
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError> {
        Ok(self.get_held(org, ids)?)
    }

    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError> {
        Ok(self.put_docs(org, puts)?)
    }

    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError> {
        Ok(self.erase_ids(org, ids, at)?)
    }

    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        self.scan(org, since, visit)
    }

    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError> {
        let epoch = i64::try_from(epoch).map_err(backend_msg)?;
        let n = self
            .conn()
            .map_err(backend)?
            .prepare_cached("UPDATE orgs SET epoch = ?1 WHERE slug = ?2")
            .and_then(|mut s| s.execute(params![epoch, org]))
            .map_err(backend)?;
        if n == 0 {
            return Err(StorageError::NoOrg(org.into()));
        }
        Ok(())
    }

    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError> {
        Ok(self.config_entries(org)?)
    }

    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError> {
        Ok(self.write_config(org, kind, data, expect)?)
    }
}

impl SqliteHubStore {
    fn config_entries(&self, org: &str) -> Result<Vec<ConfigEntry>, SqlError> {
        let conn = self.reader()?;
        if !org_exists(&conn, org)? {
            return Err(SqlError::NoOrg(org.into()));
        }
        let entries = conn
            .prepare_cached("SELECT kind, version, data FROM org_config WHERE org = ?1")?
            .query_map([org], |r| {
                Ok(ConfigEntry {
                    kind: r.get(0)?,
                    version: r.get::<_, i64>(1)?.max(0) as u64,
                    data: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(entries)
    }

    /// Entries are replaced, never deleted, so one above the org's largest
    /// version is above every version it ever had.
    /// The write lock (`IMMEDIATE`) is taken before the version is read, so
    /// the compare-and-set cannot interleave with another writer.
    fn write_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !org_exists(&tx, org)? {
            return Err(SqlError::NoOrg(org.into()));
        }
        if let Some(expect) = expect {
            let current: i64 = tx
                .query_row(
                    "SELECT version FROM org_config WHERE org = ?1 AND kind = ?2",
                    params![org, kind],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            if u64::try_from(current).ok() != Some(expect) {
                return Ok(None);
            }
        }
        let version: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) + 1 FROM org_config WHERE org = ?1",
            [org],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO org_config(org, kind, version, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(org, kind) DO UPDATE SET version = excluded.version, data = excluded.data",
            params![org, kind, version, data],
        )?;
        tx.commit()?;
        Ok(Some(version.max(0) as u64))
    }
}

/// Accounts and the audit log (see `outpost_hub_db::accounts`).
impl SqliteHubStore {
    fn admin(&self, token: &str) -> Result<AdminAuth, SqlError> {
        let hash = hash_secret(token);
        let (auth, last_used) = account_by_hash(&*self.reader()?, &hash)?;
        // Noted at most once a minute: an admin's requests do not each
        // take the writer.
        let now = Utc::now();
        let stale = ts(now - chrono::TimeDelta::minutes(1));
        if last_used.is_none_or(|l| l < stale) {
            self.conn()?.execute(
                "UPDATE admin_tokens SET last_used = ?1 WHERE hash = ?2",
                params![ts(now), hash],
            )?;
        }
        Ok(auth)
    }

    fn create_account(
        &self,
        name: &str,
        role: Role,
        orgs: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Account, String), SqlError> {
        let name = accounts::check_new_account(name, role, orgs)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for org in orgs.unwrap_or_default() {
            if !org_exists(&tx, org)? {
                return Err(HubError::NoSuchOrg(org.clone()).into());
            }
        }
        let token = new_secret("opa_");
        // 32 random bits: a clash is rare, and answered with another id.
        let mut id = accounts::new_account_id();
        while tx
            .prepare("SELECT 1 FROM admin_tokens WHERE id = ?1")?
            .exists([&id])?
        {
            id = accounts::new_account_id();
        }
        tx.execute(
            "INSERT INTO admin_tokens(hash, org, created_at, id, name, role)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                hash_secret(&token),
                orgs_to_column(orgs),
                ts(now),
                id,
                name,
                role.as_str()
            ],
        )?;
        tx.commit()?;
        let account = Account {
            id,
            name,
            role,
            orgs: orgs.map(<[String]>::to_vec),
            created_at: ts(now),
            last_used: None,
            revoked_at: None,
        };
        Ok((account, token))
    }

    fn accounts(&self) -> Result<Vec<Account>, SqlError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, name, role, org, created_at, last_used, revoked_at FROM admin_tokens
             ORDER BY created_at, rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, role, orgs, created_at, last_used, revoked_at) = row?;
            out.push(Account {
                id,
                name,
                role: Role::parse(&role)?,
                orgs: orgs_from_column(orgs),
                created_at,
                last_used,
                revoked_at,
            });
        }
        Ok(out)
    }

    fn revoke_account(&self, id: &str, now: DateTime<Utc>) -> Result<(), SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, Option<String>, Option<String>)> = tx
            .query_row(
                "SELECT role, org, revoked_at FROM admin_tokens WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((role, orgs, revoked)) = row else {
            return Err(HubError::NoSuchAccount(id.into()).into());
        };
        if revoked.is_some() {
            return Ok(());
        }
        if role == Role::Admin.as_str() && orgs.is_none() {
            let others: i64 = tx.query_row(
                "SELECT count(*) FROM admin_tokens
                 WHERE role = 'admin' AND org IS NULL AND revoked_at IS NULL AND id != ?1",
                [id],
                |r| r.get(0),
            )?;
            if others == 0 {
                return Err(HubError::LastAdmin(id.into()).into());
            }
        }
        tx.execute(
            "UPDATE admin_tokens SET revoked_at = ?1 WHERE id = ?2",
            params![ts(now), id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn rotate_account(&self, id: &str) -> Result<String, SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let revoked: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked_at FROM admin_tokens WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            None => return Err(HubError::NoSuchAccount(id.into()).into()),
            Some(Some(_)) => {
                return Err(HubError::Invalid(format!(
                    "token {id} is revoked; create a new one with `outpost admin token create`"
                ))
                .into());
            }
            Some(None) => {}
        }
        let token = new_secret("opa_");
        tx.execute(
            "UPDATE admin_tokens SET hash = ?1 WHERE id = ?2",
            params![hash_secret(&token), id],
        )?;
        tx.commit()?;
        Ok(token)
    }

    fn append_audit(&self, draft: &AuditDraft) -> Result<AuditEntry, SqlError> {
        // One writer connection and an immediate transaction: appends are
        // serialised, and the head moves with the entry or not at all.
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO audit_head(id, position, hash) VALUES (1, 0, ?1)",
            [accounts::GENESIS],
        )?;
        let (last, prev): (i64, String) = tx.query_row(
            "SELECT position, hash FROM audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let position = u64::try_from(last).unwrap_or(0) + 1;
        let entry = AuditEntry::chained(draft, position, &prev);
        tx.execute(
            "INSERT INTO audit_log(position, at, actor_id, actor_name, action, org, detail, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                position as i64,
                entry.at,
                entry.actor_id,
                entry.actor_name,
                entry.action,
                entry.org,
                entry.detail,
                entry.hash
            ],
        )?;
        tx.execute(
            "UPDATE audit_head SET position = ?1, hash = ?2 WHERE id = 1",
            params![position as i64, entry.hash],
        )?;
        tx.commit()?;
        Ok(entry)
    }

    fn for_each_audit(
        &self,
        orgs: Option<&[String]>,
        f: &mut dyn FnMut(AuditEntry) -> bool,
    ) -> Result<(), SqlError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT position, at, actor_id, actor_name, action, org, detail, hash
             FROM audit_log ORDER BY position",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let entry = AuditEntry {
                position: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                at: r.get(1)?,
                actor_id: r.get(2)?,
                actor_name: r.get(3)?,
                action: r.get(4)?,
                org: r.get(5)?,
                detail: r.get(6)?,
                hash: r.get(7)?,
            };
            let wanted = match (orgs, &entry.org) {
                (None, _) => true,
                (Some(orgs), Some(org)) => orgs.contains(org),
                (Some(_), None) => false,
            };
            if wanted && !f(entry) {
                break;
            }
        }
        Ok(())
    }

    fn audit_head(&self) -> Result<Option<AuditHead>, SqlError> {
        Ok(self
            .reader()?
            .query_row(
                "SELECT position, hash FROM audit_head WHERE id = 1",
                [],
                |r| {
                    Ok(AuditHead {
                        position: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }
}

fn backend_msg(e: impl std::fmt::Display) -> StorageError {
    backend(HubError::Invalid(e.to_string()))
}

/// Errors inside this backend: SQLite's own, or the hub's answer (bad
/// code, unknown org, ...), converted at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("no organisation {0} in the hub's storage")]
    NoOrg(String),
}

impl From<SqlError> for HubError {
    fn from(e: SqlError) -> HubError {
        match e {
            SqlError::Sqlite(e) => HubError::backend(e),
            SqlError::Hub(e) => e,
            SqlError::NoOrg(org) => HubError::NoSuchOrg(org),
        }
    }
}

impl From<SqlError> for StorageError {
    fn from(e: SqlError) -> StorageError {
        match e {
            SqlError::NoOrg(org) => StorageError::NoOrg(org),
            other => StorageError::backend(other),
        }
    }
}

/// The accounts side, for the HTTP layer (errors converted to
/// [`HubError`]).
impl HubStore for SqliteHubStore {
    fn health(&self) -> Result<(), HubError> {
        let conn = self.conn()?;
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(HubError::backend)?;
        Ok(())
    }

    fn create_admin_token(&self, org: Option<&str>) -> Result<String, HubError> {
        let orgs = org.map(|o| vec![o.to_string()]);
        Ok(
            SqliteHubStore::create_account(
                self,
                "admin",
                Role::Admin,
                orgs.as_deref(),
                Utc::now(),
            )?
            .1,
        )
    }
    fn has_admin_token(&self) -> Result<bool, HubError> {
        Ok(SqliteHubStore::has_admin_token(self)?)
    }
    fn admin(&self, token: &str) -> Result<AdminAuth, HubError> {
        Ok(SqliteHubStore::admin(self, token)?)
    }
    fn add_org(&self, slug: &str, name: &str) -> Result<(), HubError> {
        Ok(SqliteHubStore::add_org(self, slug, name)?)
    }
    fn orgs(&self) -> Result<Vec<(String, String)>, HubError> {
        Ok(SqliteHubStore::orgs(self)?)
    }
    fn invite(&self, org: &str, now: DateTime<Utc>) -> Result<String, HubError> {
        Ok(SqliteHubStore::invite(self, org, now)?)
    }
    fn cursor_key(&self) -> Result<[u8; 32], HubError> {
        Ok(SqliteHubStore::cursor_key(self)?)
    }

    fn enroll(
        &self,
        code: &str,
        device: Uuid,
        org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), HubError> {
        Ok(SqliteHubStore::enroll(self, code, device, org, now)?)
    }
    fn device(&self, token: &str) -> Result<DeviceAuth, HubError> {
        Ok(SqliteHubStore::device(self, token)?)
    }
    fn seen(
        &self,
        device: &str,
        now: DateTime<Utc>,
        device_time: Option<i64>,
    ) -> Result<(), HubError> {
        Ok(SqliteHubStore::seen(self, device, now, device_time)?)
    }
    fn devices(&self, org: Option<&str>) -> Result<Vec<DeviceInfo>, HubError> {
        Ok(SqliteHubStore::devices(self, org)?)
    }
    fn device_org(&self, device: &str) -> Result<Option<String>, HubError> {
        Ok(SqliteHubStore::device_org(self, device)?)
    }
    fn revoke(&self, device: &str, now: DateTime<Utc>) -> Result<(), HubError> {
        Ok(SqliteHubStore::revoke(self, device, now)?)
    }
    fn record_orgs(&self, id: &str) -> Result<Vec<String>, HubError> {
        Ok(SqliteHubStore::record_orgs(self, id)?)
    }
    fn for_each_record(
        &self,
        org: Option<&str>,
        filter: &Filter,
        f: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), HubError> {
        Ok(SqliteHubStore::for_each_record(self, org, filter, f)?)
    }

    // ---- dashboard: sign-in codes and sessions (dash) ----
    fn signin_code(&self, token: &str, now: DateTime<Utc>) -> Result<String, HubError> {
        Ok(SqliteHubStore::signin_code(self, token, now)?)
    }
    fn signin(&self, code: &str, now: DateTime<Utc>) -> Result<(String, AdminAuth), HubError> {
        Ok(SqliteHubStore::signin(self, code, now)?)
    }
    fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<AdminAuth, HubError> {
        Ok(SqliteHubStore::session(self, secret, now)?)
    }
    fn signout(&self, secret: &str) -> Result<(), HubError> {
        Ok(SqliteHubStore::signout(self, secret)?)
    }

    // --- Accounts and audit log (acct) ---
    fn create_account(
        &self,
        name: &str,
        role: Role,
        orgs: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Account, String), HubError> {
        Ok(SqliteHubStore::create_account(self, name, role, orgs, now)?)
    }
    fn accounts(&self) -> Result<Vec<Account>, HubError> {
        Ok(SqliteHubStore::accounts(self)?)
    }
    fn revoke_account(&self, id: &str, now: DateTime<Utc>) -> Result<(), HubError> {
        Ok(SqliteHubStore::revoke_account(self, id, now)?)
    }
    fn rotate_account(&self, id: &str) -> Result<String, HubError> {
        Ok(SqliteHubStore::rotate_account(self, id)?)
    }
    fn append_audit(&self, draft: &AuditDraft) -> Result<AuditEntry, HubError> {
        Ok(SqliteHubStore::append_audit(self, draft)?)
    }
    fn for_each_audit(
        &self,
        orgs: Option<&[String]>,
        f: &mut dyn FnMut(AuditEntry) -> bool,
    ) -> Result<(), HubError> {
        Ok(SqliteHubStore::for_each_audit(self, orgs, f)?)
    }
    fn audit_head(&self) -> Result<Option<AuditHead>, HubError> {
        Ok(SqliteHubStore::audit_head(self)?)
    }

    // devices (dev)
    fn report_device(&self, device: &str, report: &DeviceReport) -> Result<(), HubError> {
        Ok(SqliteHubStore::report_device(self, device, report)?)
    }

    // --- ops: rate limits
    fn rate_take(&self, takes: &[RateTake], now: i64) -> Result<RateTaken, HubError> {
        Ok(self.rate_take_sql(takes, now)?)
    }
    fn rate_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>, HubError> {
        Ok(self.rate_counts_sql(keys)?)
    }
}

// ---------------------------------------------------------------------------
// ops: rate-limit counters (the limits themselves: `outpost_proto::hub::limits`)
// ---------------------------------------------------------------------------

impl SqliteHubStore {
    fn rate_take_sql(&self, takes: &[RateTake], now: i64) -> Result<RateTaken, SqlError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM rate_counts WHERE expires < ?1")?
            .execute([now])?;
        let mut totals = Vec::with_capacity(takes.len());
        for (index, take) in takes.iter().enumerate() {
            let add = i64::try_from(take.add).unwrap_or(i64::MAX);
            let used: i64 = tx
                .prepare_cached(
                    "INSERT INTO rate_counts(key, period, expires, used) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(key, period) DO UPDATE SET used = used + excluded.used
                     RETURNING used",
                )?
                .query_row(params![take.key, take.period, take.expires, add], |r| {
                    r.get(0)
                })?;
            let used = u64::try_from(used).unwrap_or(0);
            if used > take.limit {
                // Dropping the transaction rolls every take back.
                return Ok(RateTaken::Refused {
                    index,
                    used: used.saturating_sub(take.add),
                });
            }
            totals.push(used);
        }
        tx.commit()?;
        Ok(RateTaken::Taken(totals))
    }

    fn rate_counts_sql(&self, keys: &[(String, i64)]) -> Result<Vec<u64>, SqlError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT used FROM rate_counts WHERE key = ?1 AND period = ?2")?;
        keys.iter()
            .map(|(key, period)| {
                let used: Option<i64> = stmt
                    .query_row(params![key, period], |r| r.get(0))
                    .optional()?;
                Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_proto::hub::{self, Peer};
    use outpost_proto::sync::{DocPush, PROTOCOL_VERSION, PullRequest, PushOutcome, PushRequest};

    /// A thread that panics while it holds the writer (and a reader), in
    /// the middle of a transaction, leaves no poisoned state: writes of
    /// every org work afterwards and health says so.
    #[test]
    fn a_panic_while_a_connection_is_held_poisons_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        hub.add_org("mjolby", "Mjölby kommun").unwrap();
        let panicked = std::thread::scope(|s| {
            s.spawn(|| {
                let conn = hub.conn().unwrap();
                let _reader = hub.reader().unwrap();
                conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO orgs(slug, name, created_at) VALUES ('half', 'x', '2025-01-01T00:00:00Z');")
                    .unwrap();
                panic!("a decoder panicked here");
            })
            .join()
            .is_err()
        });
        assert!(panicked);
        assert!(
            hub.conn.is_poisoned(),
            "the test must really poison the lock"
        );
        HubStore::health(&hub).unwrap();
        hub.add_org("boxholm", "Boxholms kommun").unwrap();
        hub.invite("mjolby", Utc::now()).unwrap();
        let orgs: Vec<String> = hub.orgs().unwrap().into_iter().map(|(s, _)| s).collect();
        assert!(
            !orgs.contains(&"half".to_string()),
            "the open transaction was rolled back"
        );
    }

    #[test]
    fn an_enrolment_code_works_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        hub.add_org("mjolby", "Mjölby kommun").unwrap();
        let now = Utc::now();
        let code = hub.invite("mjolby", now).unwrap();
        let late = now + CODE_TTL + chrono::TimeDelta::minutes(1);
        assert!(matches!(
            hub.enroll(&code, Uuid::new_v4(), None, late),
            Err(SqlError::Hub(HubError::BadCode))
        ));
        // A laptop of another org is refused, and nothing is bound: no
        // device, and the code still works for its own org.
        let stranger = Uuid::new_v4();
        assert!(matches!(
            hub.enroll(&code, stranger, Some("linkoping"), now),
            Err(SqlError::Hub(HubError::CodeForOtherOrg(o))) if o == "linkoping"
        ));
        assert_eq!(hub.device_org(&stranger.to_string()).unwrap(), None);
        // Lower case, without dashes, as a person might type it, works.
        let typed = code.to_lowercase().replace('-', "");
        let (org, token) = hub
            .enroll(&typed, Uuid::new_v4(), Some("mjolby"), now)
            .unwrap();
        assert_eq!(org, "mjolby");
        assert!(hub.device(&token).is_ok());
        assert!(matches!(
            hub.enroll(&code, Uuid::new_v4(), None, now),
            Err(SqlError::Hub(HubError::BadCode))
        ));
        assert!(matches!(
            hub.invite("nope", now),
            Err(SqlError::Hub(HubError::NoSuchOrg(_)))
        ));
    }

    #[test]
    fn tokens_are_stored_only_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        let token = hub.create_admin_token(None).unwrap();
        hub.checkpoint().unwrap();
        let bytes = std::fs::read(dir.path().join(HUB_FILE)).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(hub.admin(&token).is_ok());
        assert!(matches!(
            hub.admin("opa_wrong"),
            Err(SqlError::Hub(HubError::Unauthorized))
        ));
    }

    fn visit(org: &str, note: &str) -> Record {
        outpost_proto::fixtures::visit_with_note(org, note)
    }

    /// A new device of `mjolby`, enrolled.
    fn enrolled(hub: &SqliteHubStore) -> Peer {
        let code = hub.invite("mjolby", Utc::now()).unwrap();
        let (_, token) = hub.enroll(&code, Uuid::new_v4(), None, Utc::now()).unwrap();
        let who = hub.device(&token).unwrap();
        Peer {
            device: who.device,
            org: who.org,
        }
    }

    fn doc_push(am: &mut automerge::AutoCommit, id: Uuid) -> DocPush {
        DocPush {
            id,
            heads: Heads::from_hashes(&am.get_heads()),
            data: am.save(),
            full: true,
        }
    }

    /// Many documents merge on several threads; a request naming one id
    /// twice goes one by one, so the second copy merges into the first
    /// instead of replacing it.
    #[test]
    fn a_large_push_and_a_push_naming_one_id_twice_both_merge_everything() {
        use automerge::{ActorId, ReadDoc};
        let dir = tempfile::tempdir().unwrap();
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        hub.add_org("mjolby", "Mjölby kommun").unwrap();
        let who = enrolled(&hub);
        let push = |docs: Vec<DocPush>| {
            hub::push(
                &hub,
                &who,
                &PushRequest {
                    report: None,
                    v: PROTOCOL_VERSION,
                    device_time: Utc::now().timestamp(),
                    docs,
                    erased: vec![],
                },
                Utc::now(),
            )
            .unwrap()
        };

        let records: Vec<Record> = (0..200)
            .map(|i| visit("mjolby", &format!("besök {i}")))
            .collect();
        let docs = records
            .iter()
            .map(|r| {
                doc_push(
                    &mut outpost_proto::doc::create(r, ActorId::random()).unwrap(),
                    r.id,
                )
            })
            .collect();
        let resp = push(docs);
        assert_eq!(resp.results.len(), 200);
        for (result, record) in resp.results.iter().zip(&records) {
            assert_eq!(result.id, record.id, "answers keep the request order");
            assert!(
                matches!(result.outcome, PushOutcome::Merged { .. }),
                "{result:?}"
            );
        }
        let stored: i64 = hub
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 200);

        // Two replicas edit different fields of one record; both edits
        // arrive in one request.
        let record = visit("mjolby", "original");
        let mut a = outpost_proto::doc::create(&record, ActorId::from([1u8; 16])).unwrap();
        let mut b = a.fork().with_actor(ActorId::from([2u8; 16]));
        use automerge::transaction::Transactable;
        a.put(automerge::ROOT, "minutes", 45i64).unwrap();
        b.put(automerge::ROOT, "outcome", "partly").unwrap();
        push(vec![
            doc_push(&mut a, record.id),
            doc_push(&mut b, record.id),
        ]);
        let data: Vec<u8> = hub
            .conn()
            .unwrap()
            .query_row(
                "SELECT doc FROM docs WHERE id = ?1",
                [record.id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        let merged = automerge::AutoCommit::load(&data).unwrap();
        let text = |key: &str| {
            merged
                .get(automerge::ROOT, key)
                .unwrap()
                .unwrap()
                .0
                .to_string()
        };
        assert_eq!(text("minutes"), "45");
        assert_eq!(text("outcome"), "\"partly\"");
    }

    /// A page is bounded by items sent, not rows scanned: the pusher's own
    /// entries cost it few round trips, another device still gets pages of
    /// `limit` documents, and both reach the end of the feed.
    #[test]
    fn a_pull_skips_the_devices_own_entries_without_a_round_trip_per_page() {
        use automerge::ActorId;
        let dir = tempfile::tempdir().unwrap();
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        hub.add_org("mjolby", "Mjölby kommun").unwrap();
        let (a, b) = (enrolled(&hub), enrolled(&hub));
        let docs = (0..100)
            .map(|i| {
                let r = visit("mjolby", &format!("besök {i}"));
                doc_push(
                    &mut outpost_proto::doc::create(&r, ActorId::random()).unwrap(),
                    r.id,
                )
            })
            .collect();
        hub::push(
            &hub,
            &a,
            &PushRequest {
                report: None,
                v: PROTOCOL_VERSION,
                device_time: 0,
                docs,
                erased: vec![],
            },
            Utc::now(),
        )
        .unwrap();
        let pages = |who: &Peer| {
            let (mut since, mut pages, mut items) = (0, Vec::new(), 0);
            loop {
                let page = hub::pull(
                    &hub,
                    who,
                    &PullRequest {
                        device_time: None,
                        report: None,
                        v: PROTOCOL_VERSION,
                        since,
                        limit: 5,
                        epoch: 0,
                        sig: Vec::new(),
                        config_version: 0,
                    },
                    &hub::CursorKey::new([1; 32]),
                    || 1,
                )
                .unwrap()
                .response;
                assert!(page.items.len() <= 5);
                items += page.items.len();
                pages.push(page.items.len());
                since = page.next;
                if !page.more {
                    return (pages, items, since);
                }
            }
        };
        let (own_pages, own_items, own_end) = pages(&a);
        assert_eq!(own_items, 0, "a device is not sent back what it pushed");
        assert_eq!(
            own_pages.len(),
            2,
            "100 own entries, 80 scanned a page: {own_pages:?}"
        );
        assert_eq!(own_end, 100);
        let (other_pages, other_items, other_end) = pages(&b);
        assert_eq!(other_items, 100);
        assert_eq!(other_pages.len(), 20, "{other_pages:?}");
        assert_eq!(other_end, 100);
    }

    /// A hub created before feed epochs gets the column, and every org an
    /// epoch, when it is opened.
    #[test]
    fn an_older_hub_database_gets_feed_epochs_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = Connection::open(dir.path().join(HUB_FILE)).unwrap();
        old.execute_batch(
            "CREATE TABLE orgs (slug TEXT PRIMARY KEY, name TEXT NOT NULL,
                 created_at TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0) STRICT;
             INSERT INTO orgs(slug, name, created_at, seq) VALUES ('mjolby', 'Mjölby kommun', '2025-01-01T00:00:00Z', 7);",
        )
        .unwrap();
        drop(old);
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        let epoch = |hub: &SqliteHubStore| -> i64 {
            hub.conn()
                .unwrap()
                .query_row("SELECT epoch FROM orgs WHERE slug = 'mjolby'", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        let first = epoch(&hub);
        assert!(first > 0);
        drop(hub);
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        assert_eq!(epoch(&hub), first, "opening again keeps the epoch");
        assert_eq!(hub.rotate_feed_epochs().unwrap(), 1);
        assert_ne!(epoch(&hub), first, "a restore gives a new one");
    }

    /// The schema of hubs from before ids were scoped by organisation,
    /// exactly as that code created it.
    const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS orgs (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq        INTEGER NOT NULL DEFAULT 0,
    epoch      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE IF NOT EXISTS admin_tokens (
    hash       TEXT PRIMARY KEY,
    org        TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS enrol_codes (
    hash       TEXT PRIMARY KEY,
    org        TEXT NOT NULL REFERENCES orgs(slug),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    id                TEXT PRIMARY KEY,
    org               TEXT NOT NULL REFERENCES orgs(slug),
    token_hash        TEXT NOT NULL UNIQUE,
    enrolled_at       TEXT NOT NULL,
    last_seen         TEXT,
    clock_offset_secs INTEGER,
    revoked_at        TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS docs (
    id                TEXT PRIMARY KEY,
    org               TEXT NOT NULL,
    doc               BLOB NOT NULL,
    heads             BLOB NOT NULL,
    seq               INTEGER NOT NULL,
    origin            TEXT NOT NULL,
    first_received_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS docs_feed ON docs(org, seq);
CREATE TABLE IF NOT EXISTS tombstones (
    id         TEXT PRIMARY KEY,
    org        TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    deleted_at TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS tombstones_feed ON tombstones(org, seq);
CREATE TABLE IF NOT EXISTS records (
    id         TEXT PRIMARY KEY,
    org        TEXT NOT NULL,
    kind       TEXT NOT NULL,
    site       TEXT NOT NULL,
    date_from  TEXT,
    date_to    TEXT,
    created_at TEXT NOT NULL,
    body       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS records_org_date ON records(org, date_from, created_at, id);
";

    /// A hub database made by the code before org-scoped ids opens, keeps
    /// every document, tombstone and projection, and serves them.
    #[test]
    fn a_hub_database_from_before_org_scoped_ids_opens_and_serves_its_records() {
        use automerge::ActorId;
        let dir = tempfile::tempdir().unwrap();
        let record = visit("mjolby", "från förr");
        let mut am = outpost_proto::doc::create(&record, ActorId::random()).unwrap();
        let heads = Heads::from_hashes(&am.get_heads());
        let erased = Uuid::new_v4();
        {
            let old = Connection::open(dir.path().join(HUB_FILE)).unwrap();
            old.execute_batch(SCHEMA_V1).unwrap();
            old.execute(
                "INSERT INTO orgs(slug, name, created_at, seq, epoch) VALUES ('mjolby', 'Mjölby kommun', '2025-01-01T00:00:00Z', 2, 77)",
                [],
            )
            .unwrap();
            old.execute(
                "INSERT INTO docs(id, org, doc, heads, seq, origin, first_received_at) VALUES (?1, 'mjolby', ?2, ?3, 1, 'dev-1', '2025-01-01T00:00:00Z')",
                params![record.id.to_string(), am.save(), heads.0],
            )
            .unwrap();
            old.execute(
                "INSERT INTO tombstones(id, org, seq, deleted_at) VALUES (?1, 'mjolby', 2, '2025-01-01T00:00:00Z')",
                [erased.to_string()],
            )
            .unwrap();
            old.execute(
                "INSERT INTO records(id, org, kind, site, date_from, date_to, created_at, body) VALUES (?1, 'mjolby', 'visit', 'Mjölby bibliotek', '2025-03-04', '2025-03-04', ?2, ?3)",
                params![
                    record.id.to_string(),
                    record.created_at.to_rfc3339(),
                    serde_json::to_string(&record).unwrap()
                ],
            )
            .unwrap();
        }
        let hub = SqliteHubStore::open(dir.path()).unwrap();
        let held = hub.get("mjolby", &[record.id, erased]).unwrap();
        assert!(matches!(&held[0], Held::Doc { heads: h, .. } if *h == heads));
        assert_eq!(held[1], Held::Erased);
        let mut rows = Vec::new();
        let meta = hub
            .scan_feed("mjolby", 0, &mut |row, _| {
                rows.push((row.seq, row.id));
                Ok(true)
            })
            .unwrap();
        assert_eq!(rows, vec![(1, record.id), (2, erased)]);
        assert_eq!((meta.head, meta.epoch), (2, 77));
        let mut projected = Vec::new();
        hub.for_each_record(None, &Filter::default(), &mut |r| {
            projected.push(r.id);
            true
        })
        .unwrap();
        assert_eq!(projected, vec![record.id]);
        // The same id can now be held by another org.
        hub.add_org("boxholm", "Boxholms kommun").unwrap();
        assert_eq!(
            hub.get("boxholm", &[record.id]).unwrap(),
            vec![Held::Nothing]
        );
        drop(hub);
        SqliteHubStore::open(dir.path()).expect("opening again migrates nothing");
    }
}
