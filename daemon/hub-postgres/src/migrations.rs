//! The schema, as numbered SQL files in `migrations/`, embedded in the
//! binary and applied in order when a hub opens the database.
//!
//! A migration that has shipped is never edited: databases in the field
//! recorded it as applied and will not run it again, so an edit would
//! leave them with a schema this code does not expect. A change is a new
//! file with the next number, added to [`MIGRATIONS`].
//!
//! Several hub nodes may start at once against one database: the
//! migrations run in one transaction holding a transaction-level advisory
//! lock, each skipped when `schema_migrations` already names it, so
//! exactly one node applies them and the others wait, then see them done.

use postgres::Client;

use crate::PgError;

/// Every migration, in order: (number, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "org_config",
        include_str!("../migrations/0002_org_config.sql"),
    ),
    (
        4,
        "dashboard_sessions",
        include_str!("../migrations/0004_dashboard_sessions.sql"),
    ),
];

/// The numbers of the embedded migrations, in order (what a migrated
/// database records in `schema_migrations`).
pub fn versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|m| m.0).collect()
}

/// The advisory lock key all nodes take while migrating ("outpost" in
/// ASCII, so it is recognisable in `pg_locks`).
const LOCK_KEY: i64 = 0x006f_7574_706f_7374;

/// Applies the migrations this database lacks; returns how many.
pub(crate) fn apply(client: &mut Client) -> Result<usize, PgError> {
    // One transaction for all: the lock is taken before the bookkeeping
    // table is created, so two nodes never race to create it either.
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )?
            .is_some();
        if done {
            continue;
        }
        tracing::info!(version, name, "applying a hub database migration");
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)",
            &[version, name],
        )?;
        applied += 1;
    }
    tx.commit()?;
    // A database migrated by a newer release than this one: refuse rather
    // than write into a schema this code does not know.
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if newest.is_some_and(|n| n > known) {
        return Err(PgError::Hub(outpost_hub_db::HubError::Invalid(format!(
            "the hub database has schema version {} but this outpostd knows only up to {known}; run the newer outpostd that migrated it",
            newest.unwrap_or_default()
        ))));
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        // Strictly increasing from 1: numbers are handed out per branch of
        // work, so one may be missing until its branch is merged.
        assert_eq!(MIGRATIONS.first().map(|m| m.0), Some(1));
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
    }
}
