//! Sync benchmark: real SQLite files, real `outpostd hub` processes on
//! 127.0.0.1 (on SQLite, or on a real PostgreSQL server), real HTTP, and
//! each laptop sync in a process of its own so the laptop's and the hub's
//! peak memory are measured apart.
//!
//! ```sh
//! cargo bench -p outpost-daemon --bench sync -- --n 10000 --reps 3
//! cargo bench -p outpost-daemon --bench sync -- --n 100000 --scenarios s1,s3,list
//! cargo bench -p outpost-daemon --bench sync -- --backends sqlite,postgres --scenarios s1,s2,s3
//! cargo bench -p outpost-daemon --bench sync -- --backends postgres --scenarios s4 --nodes 1,2
//! cargo bench -p outpost-daemon --bench sync -- --backends sqlite,postgres --nodes 1,2 --scenarios peak
//! cargo bench -p outpost-daemon --bench sync -- --scenarios peak --peak-minutes 1 --peak-laptops 100
//! ```
//!
//! Scenarios (the first three as in `shared/peers/README.md`, so the
//! figures sit beside the peers' in `bench/compare.sh`):
//! - `s1`: a laptop with N offline records syncs to an empty hub;
//! - `s2`: hub and laptop share N records (the state S1 left); the laptop
//!   adds 100 and edits 100, then syncs;
//! - `s3`: a fresh laptop pulls the N records from the hub;
//! - `s4`: 200 laptops of one org (`--s4-laptops`), each with 50 new
//!   records (`--s4-records`), sync at once against the hub, laptop i
//!   through hub node i % nodes; then all sync once more and every laptop
//!   must hold every record;
//! - `peak` ([`peak`]): a Monday morning: 3,000 laptops in 300 orgs
//!   (`--peak-laptops`, `--peak-orgs`) each record 2–5 visits and sync,
//!   three times (`--peak-syncs`) at seeded random moments within
//!   `--peak-minutes` (10), at most `--peak-concurrency` (64) syncs in
//!   flight;
//! - `list`: list all N records from the projection and export them as CSV
//!   (the laptop alone: run once, `backend` "none");
//! - `idle`: the laptop daemon (`outpostd`) with the N synced records and a
//!   reachable hub, left alone for `--idle-secs` (60): CPU time, wake-ups
//!   (context switches of all its threads), resident memory, bytes sent.
//!
//! Hub backends (`--backends sqlite,postgres`, default `sqlite`; see
//! [`backend`]): every hub scenario runs on each, in that order, in the
//! same run; rows carry `backend`. PostgreSQL is one throwaway server for
//! the whole bench with its durable defaults (`fsync`, `synchronous_commit`
//! on, `shared_buffers` 128MB: [`backend::PG_SETTINGS`]), as the SQLite hub
//! runs with `synchronous=FULL`. Hub nodes (`--nodes 1,2`, default 1):
//! S4 and the peak run once per value, with that many `outpostd hub`
//! processes on the same PostgreSQL database (SQLite: 1 only; larger
//! values are skipped with a note). Rows carry `nodes`.
//!
//! Every timed run starts fresh hub processes on a copy of the scenario's
//! starting state, like the peers' driver. What is measured:
//! - `sync_s`: the sync alone, timed inside the laptop process;
//! - `bytes_up` / `bytes_down`: TCP payload through a counting proxy in
//!   front of each hub (HTTP headers and compressed bodies, as the peers'
//!   `netcount.cjs` counts them);
//! - `client_maxrss_kb` / `server_maxrss_kb`: peak RSS (`VmHWM`) of the
//!   laptop process and of the hub process (the largest of the nodes);
//! - `change_bytes` (S2): the Automerge bytes the hub lacked, the floor any
//!   sync must move;
//! - `hub_cpu_s` / `laptop_cpu_s` and `hub_write_mb` / `laptop_write_mb`
//!   (S1–S3): CPU time and bytes handed to storage (`/proc/PID/io`) by
//!   the hub process and by the laptop during the sync, which tell work
//!   that grows with N (CPU) from write amplification (SQLite's WAL and
//!   checkpoints); a PostgreSQL server's own writes are not in
//!   `hub_write_mb`;
//! - S4 and peak: each hub's `/v1/admin/metrics` (requests, slowest, slow
//!   ≥ 1 s) and CPU time (utime + stime from `/proc/PID/stat`, from just
//!   after it started to the end) per request it served; for PostgreSQL
//!   also the database server's CPU (postmaster, the sessions it reaped,
//!   its live children) per request, as `db_cpu_ms_per_request`.
//!
//! The hub and the laptops share this machine's cores; real laptops bring
//! their own. So the S4 swarm and the peak's laptops run in a child
//! process in the idle scheduling class (`chrt --idle 0`,
//! [`procs::run_child_idle_class`]): their threads get CPU only when the
//! hubs and PostgreSQL have none to use, and the hubs' CPU is read per
//! process, never from the machine's total.
//!
//! Output: a line per run on stderr, a median table per (backend, nodes,
//! scenario, N) on stdout, and with `--jsonl FILE` one JSON line per run
//! appended to FILE in the peers' `results.jsonl` schema (`system`
//! "outpost", plus `backend` and `nodes`; `bench/compare.mjs` keeps only
//! the SQLite single-hub rows, the peers' setting).

mod backend;
mod peak;
mod procs;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Instant;

use outpost_files::export::{self, ExportOptions, Format};
use outpost_hub_db::HubStore;
use outpost_proto::catalogue::Catalogue;
use outpost_proto::record::Record;
use outpost_store::client::HubClient;
use outpost_store::store::{Filter, Store};
use outpost_store::sync::SyncOptions;
use serde_json::{Value, json};

use backend::Backend;
use procs::{HubProcess, copy_dir, peak_rss_kb_self, run_child};

const ORG: &str = "bench";

pub struct Args {
    n: u32,
    reps: u32,
    scenarios: Vec<String>,
    jsonl: Option<PathBuf>,
    /// Hub backends to run every scenario on, in this order.
    backends: Vec<String>,
    /// Hub processes for S4 and the peak (each value is a run of its own).
    nodes: Vec<usize>,
    s4_laptops: u32,
    s4_records: u32,
    /// Run the S4 laptops at normal priority (by default they run in the
    /// idle scheduling class, since real laptops do not take CPU from the
    /// hub).
    s4_same_priority: bool,
    idle_secs: u64,
    pub peak: peak::PeakArgs,
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn list_arg(args: &[String], name: &str, default: &str) -> Vec<String> {
    arg_value(args, name)
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(str::to_string)
        .collect()
}

fn parse_args(args: &[String]) -> Args {
    let num = |name: &str, default: u32| {
        arg_value(args, name)
            .map(|v| {
                v.replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} wants a number, got {v:?}"))
            })
            .unwrap_or(default)
    };
    Args {
        n: num("--n", 10_000),
        reps: num("--reps", 1).max(1),
        scenarios: list_arg(args, "--scenarios", "s1,s2,s3,list"),
        jsonl: arg_value(args, "--jsonl").map(PathBuf::from),
        backends: list_arg(args, "--backends", "sqlite"),
        nodes: list_arg(args, "--nodes", "1")
            .iter()
            .map(|v| {
                v.parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| panic!("--nodes wants numbers ≥ 1, got {v:?}"))
            })
            .collect(),
        s4_laptops: num("--s4-laptops", 200),
        s4_records: num("--s4-records", 50),
        s4_same_priority: args.iter().any(|a| a == "--s4-same-priority"),
        idle_secs: u64::from(num("--idle-secs", 60)),
        peak: peak::PeakArgs {
            laptops: num("--peak-laptops", 3000),
            orgs: num("--peak-orgs", 300).max(1),
            minutes: f64::from(num("--peak-minutes", 10)),
            syncs_each: num("--peak-syncs", 3).max(1),
            concurrency: num("--peak-concurrency", 64).max(1),
            seed: u64::from(num("--peak-seed", 14)),
        },
    }
}

fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Local::now().fixed_offset()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The laptop side of a timed run, in a process of its own.
    if let Some(role) = arg_value(&args, "--role") {
        let out = match role.as_str() {
            "laptop-sync" => laptop_sync(
                Path::new(&arg_value(&args, "--dir").unwrap()),
                &arg_value(&args, "--url").unwrap(),
            ),
            "list" => list_and_export(Path::new(&arg_value(&args, "--dir").unwrap())),
            "swarm" => procs::swarm(
                Path::new(&arg_value(&args, "--dirs").unwrap()),
                &arg_value(&args, "--url").unwrap(),
            ),
            "peak" => peak::child(
                Path::new(&arg_value(&args, "--dirs").unwrap()),
                &arg_value(&args, "--url").unwrap(),
                &parse_args(&args).peak,
            ),
            other => panic!("unknown role {other}"),
        };
        println!("RESULT {out}");
        return;
    }
    let a = parse_args(&args);
    let mut bench = Bench::new(&a);
    let backends = backend::open_all(&a.backends, &bench.dir);
    let want = |s: &str| a.scenarios.iter().any(|x| x == s);
    if want("s1") || want("s2") || want("s3") || want("list") || want("idle") {
        bench.setup_laptops(a.n);
    }
    // The laptop alone: the same on every backend, run once.
    if want("list") {
        for rep in 1..=a.reps {
            let dir = bench.fresh_run_dir();
            copy_dir(&bench.dir.join("laptop-a"), &dir.join("laptop"));
            let out = run_child(&["--role", "list", "--dir", path_str(&dir.join("laptop"))]);
            bench.report("list", a.n, rep, out);
        }
    }
    for b in &backends {
        let b = b.as_ref();
        bench.backend = b.name();
        if want("s1") || want("s2") || want("s3") || want("idle") {
            bench.setup_hub(b);
            for rep in 1..=a.reps {
                bench.s1(b, a.n, rep);
            }
        }
        if want("s2") {
            for rep in 1..=a.reps {
                bench.s2(b, a.n, rep);
            }
        }
        if want("s3") {
            for rep in 1..=a.reps {
                bench.s3(b, a.n, rep);
            }
        }
        for &nodes in &a.nodes {
            if (want("s4") || want("peak")) && nodes > b.max_nodes() {
                eprintln!(
                    "{}: {nodes} hub nodes skipped (at most {})",
                    b.name(),
                    b.max_nodes()
                );
                continue;
            }
            if want("s4") {
                for rep in 1..=a.reps {
                    bench.s4(b, nodes, &a, rep);
                }
            }
            if want("peak") {
                for rep in 1..=a.reps {
                    let run = bench.fresh_run_dir();
                    let state = run_state(&run);
                    let out = peak::run(b, nodes, &state, &run, &a.peak);
                    b.remove(&state);
                    bench.report_nodes("peak", a.peak.laptops, rep, nodes, out);
                }
            }
        }
        if want("idle") {
            bench.idle(b, a.n, a.idle_secs);
        }
    }
    bench.print_table();
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("benchmark paths are UTF-8")
}

/// The name of a run's hub state: `run_K` for the run dir `run-K`.
fn run_state(run: &Path) -> String {
    run.file_name().unwrap().to_string_lossy().replace('-', "_")
}

/// The driver's state: a scratch dir with the starting states, the runs.
struct Bench {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rows: Vec<Value>,
    jsonl: Option<PathBuf>,
    runs: u32,
    /// The backend the scenarios now run on (the rows' `backend`).
    backend: &'static str,
}

impl Bench {
    fn new(a: &Args) -> Bench {
        let tmp = tempfile::Builder::new()
            .prefix("outpost-bench-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        Bench {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            rows: Vec::new(),
            jsonl: a.jsonl.clone(),
            runs: 0,
            backend: "sqlite",
        }
    }

    fn fresh_run_dir(&mut self) -> PathBuf {
        self.runs += 1;
        let dir = self.dir.join(format!("run-{}", self.runs));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// This backend's copy of a laptop's starting state.
    fn laptop(&self, name: &str) -> PathBuf {
        self.dir.join(self.backend).join(name)
    }

    /// Untimed: laptop A holding N offline records and laptop B empty,
    /// neither enrolled yet (each backend enrols copies of them).
    fn setup_laptops(&mut self, n: u32) {
        let t = Instant::now();
        let a = self.dir.join("laptop-a");
        Store::init(&a, ORG, "Stadsbiblioteket", "AB").unwrap();
        Store::init(&self.dir.join("laptop-b"), ORG, "Tensta bibliotek", "AB").unwrap();
        let mut store = Store::open(&a).unwrap();
        let device = store.identity().device.clone();
        let now = now();
        for start in (0..n).step_by(5000) {
            let chunk: Vec<Record> = (start..(start + 5000).min(n))
                .map(|i| workload::record(i, ORG, &device, now))
                .collect();
            store.insert_records(&chunk).unwrap();
        }
        store.checkpoint().unwrap();
        eprintln!(
            "setup: laptop with {n} records in {:.1} s (untimed)",
            t.elapsed().as_secs_f64()
        );
    }

    /// Untimed: an empty hub (`hub_empty`) with the org, and laptops A and
    /// B enrolled with it.
    fn setup_hub(&mut self, b: &dyn Backend) {
        let t = Instant::now();
        let (hub, _) = new_hub(b, "hub_empty");
        for name in ["laptop-a", "laptop-b"] {
            copy_dir(&self.dir.join(name), &self.laptop(name));
            enroll(hub.as_ref(), &self.laptop(name));
        }
        drop(hub);
        eprintln!(
            "setup: {} hub with two laptops in {:.1} s (untimed)",
            b.name(),
            t.elapsed().as_secs_f64()
        );
    }

    /// Starts one hub on a copy of `from`; returns it, the run dir and the
    /// run's hub state.
    fn start_hub_on_copy(&mut self, b: &dyn Backend, from: &str) -> (HubProcess, PathBuf, String) {
        let run = self.fresh_run_dir();
        let state = run_state(&run);
        b.copy(from, &state);
        let hub = b.start(&state, 1).pop().unwrap();
        (hub, run, state)
    }

    fn s1(&mut self, b: &dyn Backend, n: u32, rep: u32) {
        let (hub, run, state) = self.start_hub_on_copy(b, "hub_empty");
        let laptop = run.join("laptop");
        copy_dir(&self.laptop("laptop-a"), &laptop);
        let change_bytes = doc_bytes(&Store::file(&laptop), "WHERE pending = 1");
        let mut out = timed_laptop_sync(&hub, &laptop);
        out["server_maxrss_kb"] = json!(hub.stop());
        let (records, _) = b.docs(&state);
        with_change_bytes(&mut out, change_bytes);
        check(&mut out, records == u64::from(n), || {
            format!("the hub holds {records} records, not {n}")
        });
        // S2 and S3 start from the state the last S1 left, as in the peers.
        b.replace(&state, "hub_after_s1");
        b.remove(&state);
        replace_dir(&laptop, &self.laptop("laptop-a-after-s1"));
        self.report("s1", n, rep, out);
    }

    fn s2(&mut self, b: &dyn Backend, n: u32, rep: u32) {
        let run = self.fresh_run_dir();
        let state = run_state(&run);
        let laptop = run.join("laptop");
        copy_dir(&self.laptop("laptop-a-after-s1"), &laptop);
        let change_bytes = add_100_edit_100(&laptop, n);
        b.copy("hub_after_s1", &state);
        let hub = b.start(&state, 1).pop().unwrap();
        let mut out = timed_laptop_sync(&hub, &laptop);
        out["server_maxrss_kb"] = json!(hub.stop());
        with_change_bytes(&mut out, change_bytes as u64);
        let (records, _) = b.docs(&state);
        b.remove(&state);
        check(&mut out, records == u64::from(n) + 100, || {
            format!("the hub holds {records} records, not {}", n + 100)
        });
        self.report("s2", n, rep, out);
    }

    fn s3(&mut self, b: &dyn Backend, n: u32, rep: u32) {
        let (hub, run, state) = self.start_hub_on_copy(b, "hub_after_s1");
        let laptop = run.join("laptop");
        copy_dir(&self.laptop("laptop-b"), &laptop);
        let (_, change_bytes) = b.docs(&state);
        let mut out = timed_laptop_sync(&hub, &laptop);
        out["server_maxrss_kb"] = json!(hub.stop());
        b.remove(&state);
        with_change_bytes(&mut out, change_bytes);
        let got = Store::open(&laptop).unwrap().counts().unwrap().records;
        out["records"] = json!(got);
        check(&mut out, got == u64::from(n), || {
            format!("the fresh laptop holds {got} records, not {n}")
        });
        self.report("s3", n, rep, out);
    }

    fn s4(&mut self, b: &dyn Backend, nodes: usize, a: &Args, rep: u32) {
        let (laptops, per) = (a.s4_laptops, a.s4_records);
        let t = Instant::now();
        let run = self.fresh_run_dir();
        let state = run_state(&run);
        let (hub_store, admin) = new_hub(b, &state);
        let mut dirs = Vec::new();
        for l in 0..laptops {
            let dir = run.join(format!("laptop-{l}"));
            Store::init(&dir, ORG, "Husby bibliotek", "AB").unwrap();
            enroll(hub_store.as_ref(), &dir);
            let mut store = Store::open(&dir).unwrap();
            let device = store.identity().device.clone();
            let now = now();
            let records: Vec<Record> = (0..per)
                .map(|i| workload::record(1_000_000 + l * per + i, ORG, &device, now))
                .collect();
            store.insert_records(&records).unwrap();
            dirs.push(dir);
        }
        drop(hub_store);
        let dirs_file = procs::write_laptops_file(&run, &dirs);
        eprintln!(
            "setup: {} hub ×{nodes} + {laptops} laptops with {per} records each in {:.1} s (untimed)",
            b.name(),
            t.elapsed().as_secs_f64()
        );
        let hubs = b.start(&state, nodes);
        let urls = procs::urls(&hubs);
        let cpu = procs::CpuWatch::start(b, &hubs);
        let swarm = |label: &str| {
            let traffic0 = procs::traffic(&hubs);
            let args = [
                "--role",
                "swarm",
                "--dirs",
                path_str(&dirs_file),
                "--url",
                &urls,
            ];
            let mut out = if a.s4_same_priority {
                run_child(&args)
            } else {
                procs::run_child_idle_class(&args)
            };
            let traffic1 = procs::traffic(&hubs);
            out["bytes_up"] = json!(traffic1.0 - traffic0.0);
            out["bytes_down"] = json!(traffic1.1 - traffic0.1);
            out["round"] = json!(label);
            out
        };
        let mut first = swarm("first");
        let second = swarm("second");
        cpu.finish(b, &hubs, &admin, &mut first);
        first["server_maxrss_kb"] = json!(procs::stop_all(hubs, &mut first));
        first["second_round_s"] = second["sync_s"].clone();
        first["second_round_errors"] = second["errors"].clone();
        first["second_round_max_request_ms"] = second["max_request_ms"].clone();
        let total = u64::from(laptops * per);
        let short: Vec<u64> = dirs
            .iter()
            .map(|d| Store::open(d).unwrap().counts().unwrap().records)
            .filter(|&c| c != total)
            .collect();
        b.remove(&state);
        first["laptops_missing_records"] = json!(short.len());
        let errors = first["errors"].as_u64().unwrap_or(1) + second["errors"].as_u64().unwrap_or(1);
        check(&mut first, errors == 0 && short.is_empty(), || {
            format!(
                "{errors} laptop syncs failed; {} laptops do not hold all {total} records",
                short.len()
            )
        });
        self.report_nodes("s4", a.s4_laptops * a.s4_records, rep, nodes, first);
    }

    /// The laptop daemon at rest: started on the synced laptop with the
    /// hub up, given 15 s for its start-up sync (and for the blocking
    /// thread that ran it to retire), then watched for `secs`.
    fn idle(&mut self, b: &dyn Backend, n: u32, secs: u64) {
        let (hub, run, state) = self.start_hub_on_copy(b, "hub_after_s1");
        let laptop = run.join("laptop");
        copy_dir(&self.laptop("laptop-a-after-s1"), &laptop);
        std::fs::write(
            laptop.join("config.toml"),
            format!("hub_url = \"{}\"\n", hub.url()),
        )
        .unwrap();
        let mut daemon = procs::start_laptop_daemon(&laptop);
        std::thread::sleep(std::time::Duration::from_secs(15));
        let pid = daemon.id().to_string();
        let (cpu0, switches0) = procs::cpu_and_switches(&pid);
        let (up0, down0) = hub.traffic();
        std::thread::sleep(std::time::Duration::from_secs(secs));
        let (cpu1, switches1) = procs::cpu_and_switches(&pid);
        let (up1, down1) = hub.traffic();
        let out = json!({
            "sync_s": null,
            "idle_s": secs,
            "cpu_ms": (cpu1 - cpu0) as f64 * 10.0,
            "wakeups": procs::wakeups_between(&switches0, &switches1),
            "threads": procs::thread_count(&pid),
            "rss_kb": procs::rss_kb(&pid),
            "client_maxrss_kb": procs::peak_rss_kb(&pid),
            "bytes_up": up1 - up0,
            "bytes_down": down1 - down0,
        });
        let _ = daemon.kill();
        let _ = daemon.wait();
        hub.stop();
        b.remove(&state);
        self.report("idle", n, 1, out);
    }

    fn report(&mut self, scenario: &str, n: u32, rep: u32, result: Value) {
        self.report_nodes(scenario, n, rep, 1, result);
    }

    /// Appends a row: the peers' schema (`system` stays "outpost", so
    /// `bench/compare.sh` reads it as before) plus `backend` and `nodes`.
    fn report_nodes(&mut self, scenario: &str, n: u32, rep: u32, nodes: usize, result: Value) {
        let mut row = json!({
            "ts": chrono::Utc::now().to_rfc3339(),
            "system": "outpost",
            "layout": "perdoc",
            "backend": if scenario == "list" { "none" } else { self.backend },
            "nodes": nodes,
            "scenario": scenario,
            "n": n,
            "rep": rep,
        });
        if let (Some(row), Value::Object(fields)) = (row.as_object_mut(), result) {
            row.extend(fields);
        }
        eprintln!("{scenario:<4} n={n} rep={rep} {row}");
        if let Some(path) = &self.jsonl {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(f, "{row}").unwrap();
        }
        self.rows.push(row);
    }

    fn print_table(&self) {
        println!("{}", procs::median_table(&self.rows));
    }
}

/// Marks a run as failed (the peers' schema: an `error` field) when `ok`
/// is false.
fn check(out: &mut Value, ok: bool, why: impl FnOnce() -> String) {
    if !ok && out.get("error").is_none() {
        out["error"] = json!(why());
    }
}

/// Creates a hub state (as `outpostd hub init` does) with the benchmark
/// org; returns it, open, and its admin token.
fn new_hub(b: &dyn Backend, state: &str) -> (Box<dyn HubStore>, String) {
    let store = b.create(state);
    let admin = store.create_admin_token(None).unwrap();
    store.add_org(ORG, "Bench kommun").unwrap();
    (store, admin)
}

/// Enrols the laptop store in `dir` with `hub`, through the hub's store:
/// enrolment is not what is measured.
pub fn enroll(hub: &dyn HubStore, dir: &Path) {
    let store = Store::open(dir).unwrap();
    let identity = store.identity();
    let code = hub.invite(&identity.org, chrono::Utc::now()).unwrap();
    let device = identity.device.parse().unwrap();
    let (_, token) = hub
        .enroll(&code, device, Some(&identity.org), chrono::Utc::now())
        .unwrap();
    store.set_hub_token(Some(&token)).unwrap();
}

fn replace_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    copy_dir(from, to);
}

/// The Automerge bytes of the documents in a store or hub database (the
/// floor any sync of them must move): `save()` form, as stored.
fn doc_bytes(db: &Path, filter: &str) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        &format!("SELECT coalesce(sum(length(doc)), 0) FROM docs {filter}"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Adds the change bytes and how the bytes on the wire compare to them.
fn with_change_bytes(out: &mut Value, change_bytes: u64) {
    let wire = out["bytes_up"].as_u64().unwrap_or(0) + out["bytes_down"].as_u64().unwrap_or(0);
    out["change_bytes"] = json!(change_bytes);
    out["wire_over_changes"] = json!(wire as f64 / change_bytes.max(1) as f64);
}

/// Untimed S2 preparation; returns the Automerge bytes the hub lacks.
fn add_100_edit_100(laptop: &Path, n: u32) -> usize {
    let mut store = Store::open(laptop).unwrap();
    let device = store.identity().device.clone();
    let now = now();
    let new: Vec<Record> = (n..n + 100)
        .map(|i| workload::record(i, ORG, &device, now))
        .collect();
    store.insert_records(&new).unwrap();
    for j in workload::edit_indices(n) {
        store
            .edit(&workload::record_id(j), &workload::edit_for(j), now)
            .unwrap();
    }
    let (docs, _, _) = store.load_pending(0, 10_000).unwrap();
    docs.iter().map(|d| d.data.len()).sum()
}

/// Runs one laptop sync in a child process through the hub's counting
/// proxy.
fn timed_laptop_sync(hub: &HubProcess, laptop: &Path) -> Value {
    let (up0, down0) = hub.traffic();
    let (c0, w0) = (hub.cpu_ticks(), procs::write_bytes(hub.pid()));
    let mut out = run_child(&[
        "--role",
        "laptop-sync",
        "--dir",
        path_str(laptop),
        "--url",
        hub.url(),
    ]);
    let (up1, down1) = hub.traffic();
    let (c1, w1) = (hub.cpu_ticks(), procs::write_bytes(hub.pid()));
    out["hub_cpu_s"] = json!((c1 - c0) as f64 / 100.0);
    out["hub_write_mb"] = json!((w1 - w0) as f64 / 1e6);
    out["bytes_up"] = json!(up1 - up0);
    out["bytes_down"] = json!(down1 - down0);
    out
}

/// Child role: one sync of the laptop in `dir`, as `outpost sync` does it.
fn laptop_sync(dir: &Path, url: &str) -> Value {
    let mut store = Store::open(dir).unwrap();
    let token = store.hub_token().unwrap();
    let client = HubClient::new(url, None, token).unwrap();
    let me = std::process::id();
    let (c0, w0) = (procs::cpu_ticks(me).unwrap_or(0), procs::write_bytes(me));
    let t = Instant::now();
    let outcome =
        outpost_store::sync::run(&mut store, &client, SyncOptions::default(), now(), |_| {})
            .unwrap();
    let sync_s = t.elapsed().as_secs_f64();
    let (c1, w1) = (procs::cpu_ticks(me).unwrap_or(0), procs::write_bytes(me));
    let traffic = &client.traffic;
    let mut out = json!({
        "sync_s": sync_s,
        "pushed": outcome.pushed_docs,
        "pulled": outcome.pulled_docs,
        "requests": traffic.requests.load(std::sync::atomic::Ordering::Relaxed),
        "max_request_ms": traffic.max_request_micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0,
        "client_maxrss_kb": peak_rss_kb_self(),
        "laptop_cpu_s": (c1 - c0) as f64 / 100.0,
        "laptop_write_mb": (w1 - w0) as f64 / 1e6,
    });
    if !outcome.complete() {
        out["error"] = json!(format!("sync did not complete: {outcome:?}"));
    }
    out
}

/// Child role: `list` and CSV `export` of every record.
fn list_and_export(dir: &Path) -> Value {
    let store = Store::open(dir).unwrap();
    let t = Instant::now();
    let mut count = 0u64;
    store
        .for_each(&Filter::default(), |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    let list_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let records = store
        .list(&Filter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.record);
    let mut sink = std::io::sink();
    let mut counting = procs::CountingWriter::new(&mut sink);
    export::export(
        records,
        &Catalogue::builtin(),
        &ExportOptions {
            format: Format::Csv,
            excel: false,
        },
        &mut counting,
    )
    .unwrap();
    let csv_bytes = counting.written();
    json!({
        "records": count,
        "sync_s": list_s,
        "list_s": list_s,
        "export_csv_s": t.elapsed().as_secs_f64(),
        "csv_bytes": csv_bytes,
        "client_maxrss_kb": peak_rss_kb_self(),
    })
}
