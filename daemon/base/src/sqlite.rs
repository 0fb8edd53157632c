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
