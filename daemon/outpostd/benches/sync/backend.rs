//! The hub's storage backend in the benchmark, as one abstraction: a
//! backend keeps named hub states (the untimed starting states and one
//! per timed run), copies them, opens them for set-up as a
//! `&dyn HubStore`, starts `outpostd hub` processes on them and counts
//! what they hold. The scenarios never ask which backend they run on.
//!
//! - SQLite: a state is a hub data dir (`hub.db`) under the bench's
//!   scratch dir, copied as files; one node at most (the SQLite hub is a
//!   single process).
//! - PostgreSQL: one throwaway server for the whole bench
//!   (`outpost_hub_postgres::test_pg::Cluster`), a state is a database,
//!   copied with `CREATE DATABASE … TEMPLATE …`; any number of nodes, each
//!   an `outpostd hub --database URL` with a data dir of its own. The
//!   server runs with PostgreSQL's own defaults for durability and memory
//!   ([`PG_SETTINGS`]), as the SQLite hub runs with its durable default.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outpost_hub_db::HubStore;
use outpost_hub_postgres::PgHubStore;
use outpost_hub_postgres::test_pg::Cluster;
use outpost_hub_sqlite::SqliteHubStore;

use crate::procs::{self, HubProcess};

/// The PostgreSQL server's settings, stated so the comparison is fair:
/// `fsync=on` and `synchronous_commit=on` (every commit waits for its WAL
/// flush, as the SQLite hub's `synchronous=FULL` waits for its fsync),
/// `full_page_writes=on`, `shared_buffers=128MB` (PostgreSQL's default;
/// the hub's working set at 100,000 records fits), `max_connections=100`
/// (the default; two nodes open 16 each). All are PostgreSQL's defaults,
/// written out so a changed distribution default cannot move the figures.
pub const PG_SETTINGS: &[&str] = &[
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "shared_buffers=128MB",
    "max_connections=100",
];

pub trait Backend {
    /// `sqlite` or `postgres`, as in the rows' `backend` field.
    fn name(&self) -> &'static str;
    /// How many hub processes may serve one state at once.
    fn max_nodes(&self) -> usize;
    /// A new, empty hub state (schema made), open for untimed set-up.
    /// Drop the store before copying or starting the state.
    fn create(&self, state: &str) -> Box<dyn HubStore>;
    /// Copies a (closed) state; `to` must not exist.
    fn copy(&self, from: &str, to: &str);
    /// Replaces `to` by a copy of `from`.
    fn replace(&self, from: &str, to: &str) {
        self.remove(to);
        self.copy(from, to);
    }
    fn remove(&self, state: &str);
    /// Starts `nodes` hub processes on the state.
    fn start(&self, state: &str, nodes: usize) -> Vec<HubProcess>;
    /// Documents in the state and their Automerge bytes (`save()` form).
    fn docs(&self, state: &str) -> (u64, u64);
    /// CPU time (clock ticks) the database server has used so far, when
    /// it is a server of its own (PostgreSQL); None for SQLite, whose work
    /// is inside the hub process.
    fn server_cpu_ticks(&self) -> Option<u64>;
}

/// The backends named in `--backends`, in that order.
pub fn open_all(names: &[String], scratch: &Path) -> Vec<Box<dyn Backend>> {
    names
        .iter()
        .map(|name| -> Box<dyn Backend> {
            match name.as_str() {
                "sqlite" => Box::new(Sqlite {
                    dir: scratch.join("sqlite"),
                }),
                "postgres" => Box::new(Postgres::start(scratch.join("pg-nodes"))),
                other => panic!("unknown backend {other:?}: use sqlite or postgres"),
            }
        })
        .collect()
}

struct Sqlite {
    dir: PathBuf,
}

impl Sqlite {
    fn path(&self, state: &str) -> PathBuf {
        self.dir.join(state)
    }
}

impl Backend for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn max_nodes(&self) -> usize {
        1
    }

    fn create(&self, state: &str) -> Box<dyn HubStore> {
        Box::new(SqliteHubStore::open(&self.path(state)).unwrap())
    }

    fn copy(&self, from: &str, to: &str) {
        // Fold the WAL into the main file so the copy is the whole state.
        procs::checkpoint_sqlite(&self.path(from).join(outpost_hub_sqlite::HUB_FILE));
        procs::copy_dir(&self.path(from), &self.path(to));
    }

    fn remove(&self, state: &str) {
        let _ = std::fs::remove_dir_all(self.path(state));
    }

    fn start(&self, state: &str, nodes: usize) -> Vec<HubProcess> {
        assert!(nodes == 1, "the SQLite hub runs as one process");
        vec![HubProcess::start(&self.path(state), None)]
    }

    fn docs(&self, state: &str) -> (u64, u64) {
        let conn = rusqlite::Connection::open(self.path(state).join(outpost_hub_sqlite::HUB_FILE))
            .unwrap();
        conn.query_row(
            "SELECT count(*), coalesce(sum(length(doc)), 0) FROM docs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn server_cpu_ticks(&self) -> Option<u64> {
        None
    }
}

struct Postgres {
    cluster: Cluster,
    /// The hub nodes' own data dirs (hub.toml, logs), one per node and run.
    nodes_dir: PathBuf,
}

impl Postgres {
    fn start(nodes_dir: PathBuf) -> Postgres {
        let t = Instant::now();
        let mut cluster = Cluster::init().unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
        cluster
            .start(PG_SETTINGS)
            .unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
        eprintln!(
            "postgres: server on port {} with {} in {:.1} s",
            cluster.port,
            PG_SETTINGS.join(" "),
            t.elapsed().as_secs_f64()
        );
        Postgres { cluster, nodes_dir }
    }

    fn admin(&self, sql: &str) {
        // CREATE DATABASE … TEMPLATE fails while a session is still on the
        // template; a closed pool's sessions may take a moment to end.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = outpost_hub_postgres::PgTarget::new(&self.cluster.url("postgres"), None)
            .and_then(|t| t.connect())
            .unwrap();
        loop {
            match conn.batch_execute(sql) {
                Ok(()) => return,
                Err(e)
                    if Instant::now() < deadline && format!("{e:?}").contains("being accessed") =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("{sql}: {e:?}"),
            }
        }
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn max_nodes(&self) -> usize {
        usize::MAX
    }

    fn create(&self, state: &str) -> Box<dyn HubStore> {
        self.admin(&format!("CREATE DATABASE {state}"));
        Box::new(PgHubStore::open(&self.cluster.url(state)).unwrap())
    }

    fn copy(&self, from: &str, to: &str) {
        self.admin(&format!("CREATE DATABASE {to} TEMPLATE {from}"));
    }

    fn remove(&self, state: &str) {
        self.admin(&format!("DROP DATABASE IF EXISTS {state} WITH (FORCE)"));
    }

    fn start(&self, state: &str, nodes: usize) -> Vec<HubProcess> {
        let url = self.cluster.url(state);
        (0..nodes)
            .map(|i| {
                let dir = self.nodes_dir.join(format!("{state}-node{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                HubProcess::start(&dir, Some(&url))
            })
            .collect()
    }

    fn docs(&self, state: &str) -> (u64, u64) {
        let mut conn = outpost_hub_postgres::PgTarget::new(&self.cluster.url(state), None)
            .and_then(|t| t.connect())
            .unwrap();
        let row = conn
            .query_one(
                "SELECT count(*), coalesce(sum(length(doc)), 0)::bigint FROM docs",
                &[],
            )
            .unwrap();
        let (count, bytes): (i64, i64) = (row.get(0), row.get(1));
        (count as u64, bytes as u64)
    }

    fn server_cpu_ticks(&self) -> Option<u64> {
        // The postmaster's pid is the first line of postmaster.pid. Its
        // own CPU, that of the sessions and helpers it reaped (cutime,
        // cstime), and that of its live children: every backend's work.
        let pid_file = std::fs::read_to_string(self.cluster.data().join("postmaster.pid")).ok()?;
        let postmaster: u32 = pid_file.lines().next()?.trim().parse().ok()?;
        let mut ticks = procs::cpu_ticks_with_children(postmaster)?;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if procs::parent_pid(pid) == Some(postmaster) {
                ticks += procs::cpu_ticks(pid).unwrap_or(0);
            }
        }
        Some(ticks)
    }
}
