//! A real hub (axum on 127.0.0.1 over SQLite, or over PostgreSQL on the
//! test process's own server) and real laptop stores, for the daemon's
//! sync tests. The listener is bound before the server task starts, so
//! tests never sleep waiting for it. [`Db`] picks the backend; suites run
//! on both through `on_both_backends!`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use outpost_hub::server::{self, TlsFiles};
use outpost_hub_db::HubStore;
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::TestDb;
use outpost_hub_sqlite::SqliteHubStore;
use outpost_proto::Kind;
use outpost_proto::fields::Fields;
use outpost_proto::sync::Outcome;
use outpost_store::client::HubClient;
use outpost_store::store::{Filter, Store};
use outpost_store::sync::SyncOptions;
use serde_json::{Value, json};

/// Which backend a test hub runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named test function (`fn name(db: Db)`) as two tests,
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::common::Db::Sqlite)
                }
                #[test]
                fn postgres() {
                    super::$name($crate::common::Db::Postgres)
                }
            }
        )*
    };
}

pub struct Hub {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub store: Arc<dyn HubStore>,
    /// The SQLite store, when the hub runs on SQLite (for checks of its
    /// file).
    pub sqlite: Option<Arc<SqliteHubStore>>,
    /// The PostgreSQL database, when the hub runs on PostgreSQL; kept
    /// across [`Hub::restart`], dropped with the last hub.
    pub database: Option<Arc<TestDb>>,
    pub admin: String,
    tls: Option<TlsFiles>,
    limits: server::Limits,
    pub scheme: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hub {
    pub fn start() -> Hub {
        Self::start_with(None, tempfile::tempdir().unwrap())
    }

    /// Starts a hub over `dir` (reused across restarts), with TLS when given.
    pub fn start_with(tls: Option<TlsFiles>, dir: tempfile::TempDir) -> Hub {
        Self::start_limited(tls, dir, server::Limits::default())
    }

    /// [`Hub::start_with`] with the given limits.
    pub fn start_limited(
        tls: Option<TlsFiles>,
        dir: tempfile::TempDir,
        limits: server::Limits,
    ) -> Hub {
        Self::start_full(None, tls, dir, limits)
    }

    /// A hub on `db` with default limits, no TLS, a fresh data dir (and a
    /// fresh database on PostgreSQL).
    pub fn start_on(db: Db) -> Hub {
        let database = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(Arc::new(TestDb::new())),
        };
        Self::start_full(
            database,
            None,
            tempfile::tempdir().unwrap(),
            server::Limits::default(),
        )
    }

    /// Stops this hub and starts another on the same data (data dir, and
    /// database on PostgreSQL), on a new port.
    pub fn restart(mut self) -> Hub {
        let database = self.database.clone();
        let (tls, limits) = (self.tls.take(), self.limits);
        let dir = self.stop_keep();
        Self::start_full(database, tls, dir, limits)
    }

    fn start_full(
        database: Option<Arc<TestDb>>,
        tls: Option<TlsFiles>,
        dir: tempfile::TempDir,
        limits: server::Limits,
    ) -> Hub {
        outpost_base::install_crypto_provider();
        let (store, sqlite): (Arc<dyn HubStore>, _) = match &database {
            Some(db) => (Arc::new(PgHubStore::open(&db.url).unwrap()), None),
            None => {
                let s = Arc::new(SqliteHubStore::open(dir.path()).unwrap());
                (s.clone(), Some(s))
            }
        };
        let admin = if store.has_admin_token().unwrap() {
            String::new()
        } else {
            store.create_admin_token(None).unwrap()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared: Arc<dyn HubStore> = store.clone();
        let (kept_tls, kept_limits) = (tls.clone(), limits);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                server::serve_with(listener, shared, tls, limits, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        Hub {
            dir,
            addr,
            store,
            sqlite,
            database,
            admin,
            tls: kept_tls,
            limits: kept_limits,
            scheme,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        let host = if self.scheme == "https" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{}://{}:{}", self.scheme, host, self.addr.port())
    }

    pub fn add_org(&self, slug: &str) {
        self.store.add_org(slug, &format!("{slug} kommun")).unwrap();
    }

    pub fn invite(&self, org: &str) -> String {
        self.store.invite(org, chrono::Utc::now()).unwrap()
    }

    /// Stops the server (draining) and returns its data dir for a restart
    /// (SQLite; see [`Hub::restart`] for either backend).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.stop_keep()
    }

    fn stop_keep(&mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn now() -> DateTime<FixedOffset> {
    chrono::Local::now().fixed_offset()
}

pub struct Laptop {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: Option<String>,
    pub ca: Option<PathBuf>,
}

impl Laptop {
    pub fn new(org: &str, site: &str) -> Laptop {
        let dir = tempfile::tempdir().unwrap();
        Store::init(dir.path(), org, site, "AB").unwrap();
        Laptop {
            dir,
            url: String::new(),
            token: None,
            ca: None,
        }
    }

    pub fn store(&self) -> Store {
        Store::open(self.dir.path()).unwrap()
    }

    pub fn enroll(&mut self, hub_url: &str, code: &str) -> Result<(), String> {
        let mut store = self.store();
        let client =
            HubClient::new(hub_url, self.ca.as_deref(), None).map_err(|e| e.to_string())?;
        let (_, resp) =
            outpost_store::enrol::enroll(&mut store, &client, code, None, now().timestamp())
                .map_err(|e| e.to_string())?;
        self.url = hub_url.to_string();
        self.token = Some(resp.token);
        Ok(())
    }

    pub fn client(&self) -> HubClient {
        HubClient::new(&self.url, self.ca.as_deref(), self.token.clone()).unwrap()
    }

    pub fn sync(&self) -> Outcome {
        self.sync_via(&self.url)
    }

    pub fn sync_via(&self, url: &str) -> Outcome {
        let mut store = self.store();
        let client = HubClient::new(url, self.ca.as_deref(), self.token.clone()).unwrap();
        outpost_store::sync::run(
            &mut store,
            &client,
            SyncOptions {
                push_batch: 7,
                pull_page: 5,
            },
            now(),
            |_| {},
        )
        .unwrap()
    }

    pub fn add_visit(&self, note: &str) -> String {
        let mut store = self.store();
        let mut f = store.new_fields(Kind::Visit, now());
        f.extend(outpost_proto::fixtures::visit_body());
        f.insert("note".into(), json!(note));
        store.add(&f).unwrap().id.to_string()
    }

    pub fn edit(&self, id: &str, field: &str, value: Value) {
        self.store()
            .edit(id, &Fields::from([(field.to_string(), value)]), now())
            .unwrap();
    }

    /// Every record with its conflicts, sorted by id: what must converge.
    pub fn snapshot(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .store()
            .list(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|r| json!({"record": r.record, "conflicts": r.conflicts}))
            .collect();
        out.sort_by_key(|v| v["record"]["id"].as_str().unwrap_or("").to_string());
        out
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
