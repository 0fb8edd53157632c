//! The hub's PostgreSQL backend: implements the sync primitives
//! (`outpost_proto::hub::HubStorage`, in [`feed`]) and the accounts side
//! (`outpost_hub_db::HubStore`, in [`accounts`]) with the same meaning as
//! the SQLite hub, so that several `outpostd hub` processes can serve the
//! same organisations from one database. No protocol decision is made
//! here. Both backends pass the same conformance suites
//! (`tests/conformance.rs`).
//!
//! Layout: [`migrations`] (numbered SQL files in `migrations/`, embedded,
//! applied in order at open, never edited once shipped), [`pool`] (a small
//! blocking pool with per-connection prepared statements), [`feed`] (docs,
//! tombstones, the per-org feed), [`accounts`] (orgs, tokens, codes,
//! devices, cursor key, record projection), `acct` (named accounts and
//! the hash-chained audit log), `rate` (the rate-limit counters every
//! node shares), `signin` (the dashboard's sign-in codes and sessions).
//! Nothing is kept in the
//! process that another node would need: every secret, code, epoch and
//! counter is in the database. `test_pg` (feature `test-support`) starts
//! a throwaway server for tests.
//!
//! # Driver choice
//! The hub's storage traits are blocking: the server calls them from
//! tokio's blocking pool (`spawn_blocking`), and the conformance suite and
//! the `outpostd hub init`-style commands call them with no runtime at
//! all. Candidates, weighed on maintenance, pooling, async fit and build
//! time on 2 cores (CI builds from a clean clone every time):
//! - **sqlx**: maintained, pooled, async only; its checked macros need a
//!   database at compile time (or a committed offline cache), and it
//!   brings its own large dependency tree (sqlx-core, sqlx-postgres,
//!   futures-intrusive, ...). Its async API would have to be driven with
//!   `block_on` from the blocking callers.
//! - **tokio-postgres + deadpool-postgres**: maintained (same authors as
//!   `postgres`), async; the pool would again be driven by `block_on`, and
//!   the conformance suite would need a runtime.
//! - **diesel(-async)**: an ORM and query DSL we do not need, and the
//!   slowest to compile.
//! - **postgres** (chosen): the blocking face of tokio-postgres (one
//!   small current-thread runtime per connection), maintained with it; it
//!   fits the blocking traits as rusqlite does, adds only tokio-postgres
//!   and its protocol crates to a tree that already has tokio, and needs
//!   no database to compile. Pooling is the ~100 lines of [`pool`] (r2d2
//!   would add a thread pool and an adapter crate for no gain here).
//!   Measured: `cargo build -p outpost-hub-postgres` from an empty target
//!   dir, 4 min 45 s CPU for the whole tree (README, "The hub on
//!   PostgreSQL").
//!
//! # TLS to the database
//! [`tls`] reads libpq's `sslmode` (`disable`, `prefer` — the default —,
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert` from the URL,
//! with the trust roots from a CA file ([`PgTarget::new`]'s `ca_file`, the
//! hub's `database_ca_file`) or the system's. Every connection, pooled or
//! not, is made by [`PgTarget::connect`], so the hub, `outpostd hub
//! init/token new/restored/migrate` and the tests reach the database the
//! same way. The connector is tokio-postgres-rustls over the workspace's
//! rustls with `ring` (no OpenSSL, no aws-lc); a certificate the roots do
//! not trust, a host name the certificate does not name and a server
//! without TLS under `require` are [`PgError`] variants of their own whose
//! messages name the setting to change.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use outpost_hub_db::HubError;
use outpost_proto::hub::StorageError;

mod accounts;
mod acct;
mod config;
mod feed;
pub use feed::site_key;
pub mod migrations;
mod pool;
mod rate;
mod signin;
#[cfg(feature = "test-support")]
pub mod test_pg;
pub mod tls;

use pool::{Pool, Pooled};

/// Connections one hub process opens at most unless its settings say
/// otherwise (`database_pool_size`). That many requests touch the database
/// at once; the rest wait in [`pool`], not in PostgreSQL. Why 16: writes of
/// one org are serialised on its counter row anyway, and on a few cores
/// more concurrent statements only make PostgreSQL switch between them;
/// and PostgreSQL's default `max_connections` of 100 leaves room for five
/// nodes and the operators' own sessions.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The PostgreSQL hub store.
pub struct PgHubStore {
    pool: Pool,
}

impl std::fmt::Debug for PgHubStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgHubStore")
    }
}

/// Whether `database` names a PostgreSQL database (a `postgres://` or
/// `postgresql://` URL) rather than anything else.
pub fn is_postgres_url(database: &str) -> bool {
    let d = database.trim_start();
    d.starts_with("postgres://") || d.starts_with("postgresql://")
}

/// `url` as it may be shown in messages and logs: host, port and
/// database, never the password.
pub fn describe(url: &str) -> String {
    let Some(config) = tls::split_url(url)
        .ok()
        .and_then(|u| postgres::Config::from_str(&u.rest).ok())
    else {
        return "an invalid PostgreSQL URL".into();
    };
    let host = host_of(&config);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("PostgreSQL database {db} on {host}:{port}")
}

impl PgHubStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`, TLS as its
    /// `sslmode` says, with the system's roots), applies the migrations
    /// the database lacks and returns the store.
    pub fn open(url: &str) -> Result<PgHubStore, PgError> {
        PgHubStore::open_with(url, DEFAULT_POOL_SIZE)
    }

    /// [`PgHubStore::open`] with at most `pool_size` connections.
    pub fn open_with(url: &str, pool_size: usize) -> Result<PgHubStore, PgError> {
        PgHubStore::open_target(PgTarget::new(url, None)?, pool_size)
    }

    /// [`PgHubStore::open`] for a [`PgTarget`] (the URL with a CA file).
    pub fn open_target(target: PgTarget, pool_size: usize) -> Result<PgHubStore, PgError> {
        let pool = Pool::new(target, pool_size);
        {
            let mut conn = pool.get()?;
            migrations::apply(&mut conn.client)?;
        }
        Ok(PgHubStore { pool })
    }

    fn conn(&self) -> Result<Pooled<'_>, PgError> {
        self.pool.get()
    }

    /// Gives every organisation's feed a new epoch (`outpostd hub
    /// restored`), as the SQLite hub does after its file was restored: a
    /// database restored to an earlier point in time no longer continues
    /// the laptops' cursors, and they may hold records acknowledged after
    /// that point. At their next sync laptops send everything again and
    /// re-read the feed.
    pub fn rotate_feed_epochs(&self) -> Result<usize, PgError> {
        let mut conn = self.conn()?;
        let slugs: Vec<String> = conn
            .client
            .query("SELECT slug FROM orgs", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for slug in &slugs {
            conn.client.execute(
                "UPDATE orgs SET epoch = $1 WHERE slug = $2",
                &[&new_epoch(), slug],
            )?;
        }
        Ok(slugs.len())
    }
}

/// Where the database is and how to reach it: the URL's connection
/// settings (with the hub's defaults for what it leaves out: a connect
/// timeout, the application name `pg_stat_activity` shows) and its TLS
/// (`sslmode`, the trust roots), read once. Every connection to the
/// database is made by [`PgTarget::connect`].
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    /// The host the certificate must name, for messages.
    host: String,
    mode: tls::SslMode,
    roots: tls::Roots,
    /// `None` under `sslmode=disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "PgTarget({}, sslmode={})", self.host, self.mode.as_str())
    }
}

impl PgTarget {
    /// `url` with TLS as its `sslmode` says; `ca_file` (PEM) holds the
    /// roots the server's certificate must lead to (the URL's
    /// `sslrootcert` may name it instead), else the system's are used
    /// where the mode checks certificates. A CA file that cannot be read
    /// is an error now, not at the first connection.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<PgTarget, PgError> {
        let invalid = |e: &dyn std::fmt::Display| {
            PgError::Hub(HubError::Invalid(format!(
                "the database URL is not valid ({e}); give one like postgres://outpost@localhost/outpost"
            )))
        };
        let parts = tls::split_url(url)?;
        let mut config = postgres::Config::from_str(&parts.rest).map_err(|e| invalid(&e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("outpostd-hub");
        }
        config.ssl_mode(parts.mode.driver());
        let roots = tls::Roots::choose(ca_file, parts.root_cert.as_deref())?;
        let tls = tls::connector(parts.mode, &roots)?;
        Ok(PgTarget {
            host: host_of(&config),
            config,
            mode: parts.mode,
            roots,
            tls,
        })
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> tls::SslMode {
        self.mode
    }

    /// A new connection with the hub's session settings, over TLS when
    /// the mode asks for it.
    pub fn connect(&self) -> Result<postgres::Client, PgError> {
        pool::connect(self)
    }
}

fn host_of(config: &postgres::Config) -> String {
    match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    }
}

/// A new random, non-zero feed epoch (a positive i64, as the SQLite hub).
pub(crate) fn new_epoch() -> i64 {
    i64::try_from(rand::random::<u64>() >> 1)
        .unwrap_or(1)
        .max(1)
}

/// Errors inside this backend: PostgreSQL's own, the pool's, or the hub's
/// answer (bad code, unknown org, ...), converted at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    #[error(
        "all {0} database connections of this hub stayed busy for 30 s; the database is overloaded, retry later"
    )]
    Busy(usize),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("no organisation {0} in the hub's storage")]
    NoOrg(String),
    #[error(
        "the database server's TLS certificate is not signed by an authority in {roots}; give the CA certificate that signed it (PEM) in {CA_SETTING}",
        CA_SETTING = tls::CA_SETTING
    )]
    TlsUntrusted { roots: String },
    #[error(
        "the database server's TLS certificate is not made out to {host}; put the host name the certificate names in the database URL, have the certificate reissued for {host}, or use sslmode=verify-ca (checks the certificate but not the name)"
    )]
    TlsHostMismatch { host: String },
    #[error(
        "the database server's TLS certificate was refused ({0}); have it renewed or fixed on the server"
    )]
    TlsCertificate(String),
    #[error(
        "the TLS handshake with the database server failed ({0}); check that the server's TLS settings and the database URL's sslmode agree"
    )]
    TlsHandshake(String),
    #[error(
        "the database server does not offer TLS, and sslmode={} in the database URL requires it; turn on ssl in the server's postgresql.conf, or (on a trusted private network only) use sslmode=prefer",
        mode.as_str()
    )]
    TlsRefused { mode: tls::SslMode },
    #[error(
        "cannot use {} as the database's CA file ({reason}); give a PEM file with the CA certificate in {CA_SETTING}",
        path.display(),
        CA_SETTING = tls::CA_SETTING
    )]
    CaFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot set up TLS to the database: {0}")]
    TlsSetup(String),
}

impl From<PgError> for HubError {
    fn from(e: PgError) -> HubError {
        match e {
            PgError::Hub(e) => e,
            PgError::NoOrg(org) => HubError::NoSuchOrg(org),
            other => HubError::backend(other),
        }
    }
}

impl From<PgError> for StorageError {
    fn from(e: PgError) -> StorageError {
        match e {
            PgError::NoOrg(org) => StorageError::NoOrg(org),
            other => StorageError::backend(other),
        }
    }
}
