//! `outpostd hub migrate --from DIR --database URL`: copies a stopped
//! SQLite hub (`hub.db` in DIR) into an empty PostgreSQL database, every
//! row of every table, in one PostgreSQL transaction: a failure half-way
//! leaves the target as empty as it was.
//!
//! Table-driven: [`TABLES`] lists each table with its columns and how a
//! SQLite value becomes a PostgreSQL one, so a new table is one more
//! entry. Before copying, the SQLite hub's own tables and columns are
//! compared with the list and the migration refuses to run when any is
//! missing from it ([`uncovered`]; a unit test runs the same check on a
//! fresh hub, so a table added to the SQLite schema without a line here
//! fails the build's tests, naming it). Nothing is interpreted: the feed
//! counters and epochs, token and code hashes, the cursor key (so cursors
//! the SQLite hub signed verify on PostgreSQL, and laptops carry on where
//! they were) and every document's bytes, heads, feed position and origin
//! are copied as they are.
//!
//! Why here: it needs both backends, and `outpost-hub` is the crate that
//! already sits above them ([`crate::backend`]).

use std::path::Path;
use std::time::{Duration, Instant};

use outpost_hub_db::HubError;
use outpost_hub_postgres::{PgHubStore, PgTarget};
use outpost_hub_sqlite::{HUB_FILE, SqliteHubStore};
use postgres::types::ToSql;
use rusqlite::OpenFlags;
use serde::Serialize;

/// How a SQLite value is read and bound for PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// TEXT, bound as text and cast in SQL (`::timestamptz`, `::uuid`, ...).
    Text,
    /// INTEGER → BIGINT.
    Int,
    /// BLOB → BYTEA.
    Blob,
    /// A column only PostgreSQL has: the folded site
    /// (`outpost_hub_postgres::site_key`) of the SQLite column named.
    SiteKey,
}

/// One column: its PostgreSQL name, the SQLite column it comes from, how,
/// and the PostgreSQL type a text value is cast to ("" for none).
#[derive(Debug, Clone, Copy)]
struct Col {
    pg: &'static str,
    sqlite: &'static str,
    ty: Ty,
    cast: &'static str,
}

const fn col(name: &'static str, ty: Ty, cast: &'static str) -> Col {
    Col {
        pg: name,
        sqlite: name,
        ty,
        cast,
    }
}

const TS: &str = "timestamptz";

/// One table and its columns.
#[derive(Debug, Clone, Copy)]
struct Table {
    name: &'static str,
    cols: &'static [Col],
}

/// Every table of the SQLite hub, in the order they are copied (rows a
/// foreign key names come first). Adding a table to the hub's schema:
/// add it here too (the tests fail, naming it, until you do).
const TABLES: &[Table] = &[
    Table {
        name: "orgs",
        cols: &[
            col("slug", Ty::Text, ""),
            col("name", Ty::Text, ""),
            col("created_at", Ty::Text, TS),
            col("seq", Ty::Int, ""),
            col("epoch", Ty::Int, ""),
        ],
    },
    Table {
        name: "admin_tokens",
        cols: &[
            col("hash", Ty::Text, ""),
            col("org", Ty::Text, ""),
            col("created_at", Ty::Text, TS),
            col("id", Ty::Text, ""),
            col("name", Ty::Text, ""),
            col("role", Ty::Text, ""),
            col("last_used", Ty::Text, TS),
            col("revoked_at", Ty::Text, TS),
        ],
    },
    Table {
        name: "enrol_codes",
        cols: &[
            col("hash", Ty::Text, ""),
            col("org", Ty::Text, ""),
            col("created_at", Ty::Text, TS),
            col("expires_at", Ty::Text, TS),
            col("used_at", Ty::Text, TS),
        ],
    },
    Table {
        name: "devices",
        cols: &[
            col("id", Ty::Text, ""),
            col("org", Ty::Text, ""),
            col("token_hash", Ty::Text, ""),
            col("enrolled_at", Ty::Text, TS),
            col("last_seen", Ty::Text, TS),
            col("clock_offset_secs", Ty::Int, ""),
            col("revoked_at", Ty::Text, TS),
            col("name", Ty::Text, ""),
            col("site", Ty::Text, ""),
            col("staff", Ty::Text, ""),
            col("waiting", Ty::Int, ""),
        ],
    },
    Table {
        name: "docs",
        cols: &[
            col("org", Ty::Text, ""),
            col("id", Ty::Text, "uuid"),
            col("doc", Ty::Blob, ""),
            col("heads", Ty::Blob, ""),
            col("seq", Ty::Int, ""),
            col("origin", Ty::Text, ""),
            col("first_received_at", Ty::Text, TS),
        ],
    },
    Table {
        name: "tombstones",
        cols: &[
            col("org", Ty::Text, ""),
            col("id", Ty::Text, "uuid"),
            col("seq", Ty::Int, ""),
            col("deleted_at", Ty::Text, TS),
        ],
    },
    Table {
        name: "records",
        cols: &[
            col("org", Ty::Text, ""),
            col("id", Ty::Text, "uuid"),
            col("kind", Ty::Text, ""),
            col("site", Ty::Text, ""),
            Col {
                pg: "site_key",
                sqlite: "site",
                ty: Ty::SiteKey,
                cast: "",
            },
            col("date_from", Ty::Text, "date"),
            col("date_to", Ty::Text, "date"),
            col("created_at", Ty::Text, ""),
            col("body", Ty::Text, ""),
        ],
    },
    Table {
        name: "secrets",
        cols: &[col("name", Ty::Text, ""), col("value", Ty::Blob, "")],
    },
    Table {
        name: "org_config",
        cols: &[
            col("org", Ty::Text, ""),
            col("kind", Ty::Text, ""),
            col("version", Ty::Int, ""),
            col("data", Ty::Blob, ""),
        ],
    },
    Table {
        name: "audit_log",
        cols: &[
            col("position", Ty::Int, ""),
            // Text on both sides: the entry's hash covers it byte for byte.
            col("at", Ty::Text, ""),
            col("actor_id", Ty::Text, ""),
            col("actor_name", Ty::Text, ""),
            col("action", Ty::Text, ""),
            col("org", Ty::Text, ""),
            col("detail", Ty::Text, ""),
            col("hash", Ty::Text, ""),
        ],
    },
    Table {
        name: AUDIT_HEAD,
        cols: &[
            col("id", Ty::Int, ""),
            col("position", Ty::Int, ""),
            col("hash", Ty::Text, ""),
        ],
    },
    Table {
        name: "signin_codes",
        cols: &[
            col("hash", Ty::Text, ""),
            col("token_hash", Ty::Text, ""),
            col("created_at", Ty::Text, TS),
            col("expires_at", Ty::Text, TS),
            col("used_at", Ty::Text, TS),
        ],
    },
    Table {
        name: "dash_sessions",
        cols: &[
            col("hash", Ty::Text, ""),
            col("token_hash", Ty::Text, ""),
            col("created_at", Ty::Text, TS),
            col("last_seen", Ty::Text, TS),
        ],
    },
    Table {
        name: "rate_counts",
        cols: &[
            col("key", Ty::Text, ""),
            col("period", Ty::Int, ""),
            col("expires", Ty::Int, ""),
            col("used", Ty::Int, ""),
        ],
    },
];

/// The audit chain's head row. PostgreSQL's migration seeds it (position
/// 0), the SQLite hub makes it at its first entry: not data, so the
/// emptiness check passes over it, and the copy replaces the seed with the
/// SQLite hub's row when it has one (and keeps the seed when it has none).
const AUDIT_HEAD: &str = "audit_head";

/// Rows per INSERT statement, and the bytes a batch may hold before it is
/// sent anyway (documents can be large; memory stays bounded).
const BATCH_ROWS: usize = 200;
const BATCH_BYTES: usize = 8 << 20;
/// How often progress is written for a large table.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read the SQLite hub {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{0} has no hub database ({HUB_FILE}); give the data dir of the SQLite hub with --from"
    )]
    NoHub(String),
    #[error(
        "the SQLite hub has data this outpostd does not know how to copy ({0}); nothing was copied. Use the outpostd release that made this hub"
    )]
    Uncovered(String),
    #[error(
        "the PostgreSQL database is not empty (table {table} has {rows} rows); nothing was copied. Migrate into a new, empty database"
    )]
    NotEmpty { table: String, rows: i64 },
    #[error("copying table {table} failed, nothing was kept in PostgreSQL: {source}")]
    Copy {
        table: &'static str,
        #[source]
        source: postgres::Error,
    },
    #[error(
        "table {table}: {copied} rows copied but the SQLite hub has {expected}; nothing was kept in PostgreSQL"
    )]
    Count {
        table: &'static str,
        copied: i64,
        expected: i64,
    },
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("PostgreSQL failed: {0}")]
    Postgres(#[from] postgres::Error),
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> MigrateError + '_ {
    move |source| MigrateError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}

/// What was copied: rows per table, in copy order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub tables: Vec<(String, i64)>,
}

/// The SQLite hub's tables and columns (`table` or `table.column`) that
/// [`TABLES`] does not copy. The hub's own (`sqlite_*`) tables are not
/// data.
fn uncovered(conn: &rusqlite::Connection) -> Result<Vec<String>, rusqlite::Error> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut missing = Vec::new();
    for name in tables {
        let Some(table) = TABLES.iter().find(|t| t.name == name) else {
            missing.push(name);
            continue;
        };
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([&name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for column in columns {
            if !table.cols.iter().any(|c| c.sqlite == column) {
                missing.push(format!("{name}.{column}"));
            }
        }
    }
    Ok(missing)
}

/// A value on its way from SQLite to PostgreSQL.
#[derive(Debug)]
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Text(v) => v,
            Value::Int(v) => v,
            Value::Blob(v) => v,
        }
    }
    fn len(&self) -> usize {
        match self {
            Value::Text(v) => v.as_ref().map_or(0, String::len),
            Value::Int(_) => 8,
            Value::Blob(v) => v.as_ref().map_or(0, Vec::len),
        }
    }
}

/// `INSERT INTO t (cols) VALUES (...), ...` for `rows` rows, each
/// parameter typed (`$1::text::timestamptz`) so PostgreSQL converts it.
fn insert_sql(table: &Table, rows: usize) -> String {
    let names: Vec<&str> = table.cols.iter().map(|c| c.pg).collect();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.name, names.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, c) in table.cols.iter().enumerate() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            let ty = match c.ty {
                Ty::Text | Ty::SiteKey => "text",
                Ty::Int => "bigint",
                Ty::Blob => "bytea",
            };
            sql.push_str(&format!("${n}::{ty}"));
            if !c.cast.is_empty() {
                sql.push_str("::");
                sql.push_str(c.cast);
            }
        }
        sql.push(')');
    }
    sql
}

/// Copies the SQLite hub in `from` into the empty PostgreSQL database at
/// `url` (TLS trusting `ca_file` when given, as the hub would connect),
/// telling `progress` how far it got now and then.
pub fn migrate(
    from: &Path,
    url: &str,
    ca_file: Option<&Path>,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary, MigrateError> {
    let path = from.join(HUB_FILE);
    if !path.is_file() {
        return Err(MigrateError::NoHub(from.display().to_string()));
    }
    // Opening it as the hub does first brings an older hub's schema up to
    // this release's (the tables listed here), as starting it would.
    drop(SqliteHubStore::open(from).map_err(HubError::from)?);
    let src = rusqlite::Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err(&path))?;
    let missing = uncovered(&src).map_err(sqlite_err(&path))?;
    if !missing.is_empty() {
        return Err(MigrateError::Uncovered(missing.join(", ")));
    }
    // The target's schema, migrated as a hub node would.
    let target = PgTarget::new(url, ca_file).map_err(HubError::from)?;
    drop(PgHubStore::open_target(target.clone(), 1).map_err(HubError::from)?);
    let mut pg = target.connect().map_err(HubError::from)?;
    let mut tx = pg.transaction()?;
    // Any row in any table but the migrations' own bookkeeping: refused,
    // so a second run (or a live hub's database) is never merged into.
    let pg_tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
               AND table_name <> 'schema_migrations' ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in pg_tables.iter().filter(|t| *t != AUDIT_HEAD) {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])?
            .get(0);
        if rows > 0 {
            return Err(MigrateError::NotEmpty {
                table: table.clone(),
                rows,
            });
        }
    }
    // One read transaction: a consistent snapshot of the whole hub.
    let src_tx = src.unchecked_transaction().map_err(sqlite_err(&path))?;
    let mut summary = Summary { tables: Vec::new() };
    for table in TABLES {
        let expected: i64 = src_tx
            .query_row(&format!("SELECT count(*) FROM {}", table.name), [], |r| {
                r.get(0)
            })
            .map_err(sqlite_err(&path))?;
        if table.name == AUDIT_HEAD {
            if expected == 0 {
                summary.tables.push((table.name.to_string(), 0));
                continue;
            }
            tx.execute("DELETE FROM audit_head", &[])?;
        }
        let copied = copy_table(&src_tx, &mut tx, table, expected, progress, &path)?;
        // The target's own count, in the same transaction: what commits
        // is what was read.
        let landed: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?
            .get(0);
        if copied != expected || landed != expected {
            return Err(MigrateError::Count {
                table: table.name,
                copied: landed,
                expected,
            });
        }
        reset_sequences(&mut tx, table)?;
        progress(&format!("{}: {expected} rows copied", table.name));
        summary.tables.push((table.name.to_string(), expected));
    }
    tx.commit()?;
    Ok(summary)
}

fn copy_table(
    src: &rusqlite::Connection,
    tx: &mut postgres::Transaction<'_>,
    table: &Table,
    expected: i64,
    progress: &mut dyn FnMut(&str),
    path: &Path,
) -> Result<i64, MigrateError> {
    let copy_err = |source| MigrateError::Copy {
        table: table.name,
        source,
    };
    let select: Vec<&str> = table.cols.iter().map(|c| c.sqlite).collect();
    let mut stmt = src
        .prepare(&format!(
            "SELECT {} FROM {} ORDER BY rowid",
            select.join(", "),
            table.name
        ))
        .map_err(sqlite_err(path))?;
    let full = tx
        .prepare(&insert_sql(table, BATCH_ROWS))
        .map_err(copy_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err(path))?;
    let mut batch: Vec<Value> = Vec::with_capacity(BATCH_ROWS * table.cols.len());
    let mut batch_rows = 0;
    let mut batch_bytes = 0;
    let mut copied = 0i64;
    let mut said = Instant::now();
    let flush = |tx: &mut postgres::Transaction<'_>,
                 batch: &mut Vec<Value>,
                 n: usize|
     -> Result<(), MigrateError> {
        if n == 0 {
            return Ok(());
        }
        let params: Vec<&(dyn ToSql + Sync)> = batch.iter().map(Value::sql).collect();
        if n == BATCH_ROWS {
            tx.execute(&full, &params).map_err(copy_err)?;
        } else {
            tx.execute(insert_sql(table, n).as_str(), &params)
                .map_err(copy_err)?;
        }
        batch.clear();
        Ok(())
    };
    while let Some(row) = rows.next().map_err(sqlite_err(path))? {
        for (i, c) in table.cols.iter().enumerate() {
            let v = match c.ty {
                Ty::Text => Value::Text(row.get(i).map_err(sqlite_err(path))?),
                Ty::SiteKey => Value::Text(
                    row.get::<_, Option<String>>(i)
                        .map_err(sqlite_err(path))?
                        .map(|s| outpost_hub_postgres::site_key(&s)),
                ),
                Ty::Int => Value::Int(row.get(i).map_err(sqlite_err(path))?),
                Ty::Blob => Value::Blob(row.get(i).map_err(sqlite_err(path))?),
            };
            batch_bytes += v.len();
            batch.push(v);
        }
        batch_rows += 1;
        copied += 1;
        if batch_rows == BATCH_ROWS || batch_bytes >= BATCH_BYTES {
            flush(tx, &mut batch, batch_rows)?;
            batch_rows = 0;
            batch_bytes = 0;
            if said.elapsed() >= PROGRESS_EVERY {
                progress(&format!("{}: {copied} of {expected} rows", table.name));
                said = Instant::now();
            }
        }
    }
    flush(tx, &mut batch, batch_rows)?;
    Ok(copied)
}

/// A table whose key PostgreSQL numbers itself (`BIGSERIAL`, identity)
/// continues after the copied rows, not from 1.
fn reset_sequences(tx: &mut postgres::Transaction<'_>, table: &Table) -> Result<(), MigrateError> {
    for c in table.cols {
        let seq: Option<String> = tx
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&table.name, &c.pg],
            )?
            .get(0);
        if let Some(seq) = seq {
            tx.execute(
                &format!(
                    "SELECT setval($1::regclass, coalesce((SELECT max({}) FROM {}), 0) + 1, false)",
                    c.pg, table.name
                ),
                &[&seq],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite hub's schema, as this release makes it, is copied whole:
    /// a table or column added to it without a line in [`TABLES`] fails
    /// here, named.
    #[test]
    fn every_table_and_column_of_the_sqlite_hub_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteHubStore::open(dir.path()).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join(HUB_FILE)).unwrap();
        let missing = uncovered(&conn).unwrap();
        assert!(
            missing.is_empty(),
            "`outpostd hub migrate` does not copy these tables/columns of the SQLite hub; add them to TABLES in daemon/hub/src/migrate.rs: {}",
            missing.join(", ")
        );
        // And the check itself finds what it should.
        conn.execute_batch(
            "CREATE TABLE later_table (id INTEGER PRIMARY KEY, what TEXT);
             ALTER TABLE devices ADD COLUMN later_column TEXT;",
        )
        .unwrap();
        assert_eq!(
            uncovered(&conn).unwrap(),
            vec!["devices.later_column", "later_table"]
        );
    }

    #[test]
    fn inserts_cast_each_parameter() {
        let sql = insert_sql(&TABLES[6], 2);
        assert!(sql.starts_with("INSERT INTO records (org, id, kind, site, site_key,"));
        assert!(sql.contains("$2::text::uuid"), "{sql}");
        assert!(sql.contains("$15::text::date"), "{sql}");
        assert!(sql.ends_with("$18::text)"), "{sql}");
    }
}
