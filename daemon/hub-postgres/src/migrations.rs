//! The schema, as numbered SQL files in `migrations/`, embedded in the
//! binary and applied in order when a hub opens the database.
//!
//! A migration that has shipped is never edited: databases in the field
//! recorded it as applied and will not run it again, so an edit would
//! leave them with a schema this code does not expect. A change is a new
//! file with the next number, added to [`MIGRATIONS`]. Numbers may have
//! gaps (each branch in flight takes its own number); every one the
//! database lacks is applied, in rising order.
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
        3,
        "accounts_audit",
        include_str!("../migrations/0003_accounts_audit.sql"),
    ),
    (
        4,
        "dashboard_sessions",
        include_str!("../migrations/0004_dashboard_sessions.sql"),
    ),
    (
        5,
        "device_reports",
        include_str!("../migrations/0005_device_reports.sql"),
    ),
    (
        6,
        "rate_limits",
        include_str!("../migrations/0006_rate_limits.sql"),
    ),
];

/// The numbers of the migrations this release knows, in order (what a
/// fully migrated database lists in `schema_migrations`).
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

    /// Numbers run 1, 2, 3, … with no gap: a new migration takes the next
    /// one (a database applies, in order, whichever it lacks).
    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.0).ok(), Some(i + 1), "migration {}", m.1);
        }
    }
}
