//! Which storage backend the hub runs on, chosen once from the settings:
//! the embedded SQLite database (`hub.db` in the data dir, the default) or
//! a PostgreSQL database (`database = "postgres://…"`, `--database`,
//! `OUTPOST_HUB_DATABASE`), which several hub processes may share.
//!
//! Everything after the choice sees one `Arc<dyn HubStore>`; the few
//! operations that are not part of serving (`outpostd hub restored`) are
//! methods here, so the binary never names a backend.

use std::path::Path;
use std::sync::Arc;

use outpost_hub_db::{HubError, HubStore};
use outpost_hub_postgres::{PgHubStore, PgTarget};
use outpost_hub_sqlite::SqliteHubStore;

use crate::settings::HubSettings;

/// An opened hub store.
pub enum Backend {
    Sqlite(SqliteHubStore),
    Postgres(PgHubStore),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(_) => f.write_str("Backend::Sqlite"),
            Backend::Postgres(_) => f.write_str("Backend::Postgres"),
        }
    }
}

/// Where the hub's data is, for messages (never a password).
pub fn describe(database: Option<&str>, data_dir: &Path) -> String {
    match database {
        Some(url) => outpost_hub_postgres::describe(url),
        None => format!("{}", data_dir.join(outpost_hub_sqlite::HUB_FILE).display()),
    }
}

/// Checks a `database` setting names a backend this build has.
pub fn check_database(database: &str) -> Result<(), String> {
    if outpost_hub_postgres::is_postgres_url(database) {
        Ok(())
    } else {
        Err(format!(
            "database {database:?} is not a PostgreSQL URL; give one like postgres://outpost@localhost/outpost, or leave it unset for the embedded SQLite database in the data dir"
        ))
    }
}

impl Backend {
    /// Opens the store the settings name: PostgreSQL at `database` when
    /// given (over TLS as its URL's `sslmode` says, trusting
    /// `database_ca_file`; migrating it to this release's schema), else
    /// SQLite in `data_dir`.
    pub fn open(settings: &HubSettings, data_dir: &Path) -> Result<Backend, HubError> {
        match &settings.database {
            Some(url) => {
                check_database(url).map_err(HubError::Invalid)?;
                let target = PgTarget::new(url, settings.database_ca_file.as_deref())?;
                Ok(Backend::Postgres(PgHubStore::open_target(
                    target,
                    settings.database_pool_size,
                )?))
            }
            None => Ok(Backend::Sqlite(SqliteHubStore::open(data_dir)?)),
        }
    }

    pub fn store(&self) -> &dyn HubStore {
        match self {
            Backend::Sqlite(s) => s,
            Backend::Postgres(s) => s,
        }
    }

    /// The store, to share with the server.
    pub fn into_shared(self) -> Arc<dyn HubStore> {
        match self {
            Backend::Sqlite(s) => Arc::new(s),
            Backend::Postgres(s) => Arc::new(s),
        }
    }

    /// After a restore from a backup: every org's feed gets a new epoch
    /// (see `SqliteHubStore::rotate_feed_epochs`); returns how many orgs.
    pub fn rotate_feed_epochs(&self) -> Result<usize, HubError> {
        Ok(match self {
            Backend::Sqlite(s) => s.rotate_feed_epochs()?,
            Backend::Postgres(s) => s.rotate_feed_epochs()?,
        })
    }
}
