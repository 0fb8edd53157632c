//! The SQLite set-up every Outpost database shares, the laptop store's and
//! the hub's: one place, so both keep the same durability and text rules.

use std::time::Duration;

use rusqlite::Connection;

/// The settings every Outpost database connection runs with, the laptop's
/// and the hub's: WAL (readers and one writer at once), a full sync on
/// every commit (a saved record survives power loss), erased bytes
/// overwritten, and `fold()` for case-insensitive Swedish text.
pub fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Another process (daemon or a second CLI) may hold the write lock for a
    // moment; wait rather than fail.
    conn.busy_timeout(Duration::from_secs(30))?;
    // Sync touches more distinct statements than the default 16-entry
    // cache holds; a miss means parsing SQL again for every document.
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;",
    )?;
    // Checkpoint when the WAL passes 10,000 pages (40 MiB) rather than
    // SQLite's 1,000. A sync writes its records in transactions of
    // thousands (one push batch or pull page each), and random-UUID keys make each one dirty thousands of index
    // pages (about 4,500 at 100,000 records), so with 1,000 every commit
    // also checkpointed: reading each page back from the WAL, writing it
    // into the database and syncing the database file, two thirds of the
    // page I/O of a large pull or push. Consecutive transactions dirty
    // mostly the same index pages, which a later checkpoint copies once.
    // The limit truncates the WAL file back to 64 MiB after a checkpoint.
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    register_fold(conn)
}

/// Registers `fold(text)`: Unicode lowercase. SQLite's own `lower()` only
/// folds A–Z, so `Ödeshög` would never match `ödeshög`.
pub fn register_fold(conn: &Connection) -> Result<(), rusqlite::Error> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|t| t.trim().to_lowercase()))
        },
    )
}
