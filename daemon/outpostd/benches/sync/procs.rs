//! Processes and plumbing for the benchmark: the hub process, the counting
//! proxy in front of it, child runs of this binary, peak memory, the S4
//! swarm and the median table.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use outpost_store::client::HubClient;
use outpost_store::store::Store;
use outpost_store::sync::SyncOptions;
use serde_json::{Value, json};

use crate::backend::Backend;

/// Peak resident memory of a process, from `/proc/PID/status` (`VmHWM`).
pub fn peak_rss_kb(pid: &str) -> Option<u64> {
    proc_status_field(&format!("/proc/{pid}/status"), "VmHWM:")
}

pub fn peak_rss_kb_self() -> Option<u64> {
    peak_rss_kb("self")
}

/// Folds a database's WAL into the main file, so a copy of the directory
/// is a clean starting state.
pub fn checkpoint_sqlite(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A running `outpostd hub` with a byte-counting proxy in front of it.
pub struct HubProcess {
    child: Child,
    direct: String,
    url: String,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl HubProcess {
    /// Starts the real `outpostd hub` binary on a free loopback port, on
    /// the SQLite hub in `dir`, or with `database` on that PostgreSQL
    /// database (`dir` is then the node's own data dir).
    pub fn start(dir: &Path, database: Option<&str>) -> HubProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpostd"));
        cmd.args(["hub", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir);
        if let Some(url) = database {
            cmd.args(["--database", url]);
        }
        let mut child = cmd
            .env_remove("OUTPOST_CONFIG_DIR")
            .env_remove("OUTPOST_HUB_DATABASE")
            .env_remove("OUTPOST_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start outpostd hub");
        // The hub prints the address it bound on stderr.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let direct = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("hub listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("outpostd hub exited before listening"),
            }
        };
        // Keep draining stderr so the hub never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let target: SocketAddr = direct.trim_start_matches("http://").parse().unwrap();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let proxy = counting_proxy(target, up.clone(), down.clone());
        HubProcess {
            child,
            direct,
            url: format!("http://{proxy}"),
            up,
            down,
        }
    }

    /// The URL laptops use: the counting proxy's.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system, clock ticks) the hub process used so far.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid()).unwrap_or(0)
    }

    /// Bytes through the proxy so far (laptop → hub, hub → laptop).
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::SeqCst),
            self.down.load(Ordering::SeqCst),
        )
    }

    /// The hub's own request timings (`GET /v1/admin/metrics`).
    pub fn metrics(&self, admin_token: &str) -> Value {
        let client = HubClient::new(&self.direct, None, Some(admin_token.to_string())).unwrap();
        let body = client
            .admin(reqwest::Method::GET, "/v1/admin/metrics", &[], None)
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Stops the hub (SIGTERM: it finishes in-flight requests) and returns
    /// its peak resident memory.
    pub fn stop(mut self) -> Option<u64> {
        let pid = self.child.id().to_string();
        let peak = peak_rss_kb(&pid);
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return peak;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        peak
    }
}

/// Bytes through the proxies of all `hubs` (laptops → hubs, hubs →
/// laptops).
pub fn traffic(hubs: &[HubProcess]) -> (u64, u64) {
    hubs.iter()
        .map(HubProcess::traffic)
        .fold((0, 0), |(u, d), (u1, d1)| (u + u1, d + d1))
}

/// Stops every hub; records each one's peak RSS in `out["hubs"]` (made
/// by [`CpuWatch::finish`] when there) and returns the largest.
pub fn stop_all(hubs: Vec<HubProcess>, out: &mut Value) -> Option<u64> {
    let peaks: Vec<Option<u64>> = hubs.into_iter().map(HubProcess::stop).collect();
    for (i, peak) in peaks.iter().enumerate() {
        if let Some(hub) = out.get_mut("hubs").and_then(|h| h.get_mut(i)) {
            hub["maxrss_kb"] = json!(peak);
        }
    }
    peaks.into_iter().flatten().max()
}

/// CPU time of the hub processes, and of the database server when it is
/// a server of its own, from a start to a finish: what serving the
/// requests in between cost, apart from the laptops' CPU (which runs in
/// other processes, in the idle scheduling class).
pub struct CpuWatch {
    hubs: Vec<u64>,
    server: Option<u64>,
}

impl CpuWatch {
    pub fn start(b: &dyn Backend, hubs: &[HubProcess]) -> CpuWatch {
        CpuWatch {
            hubs: hubs.iter().map(HubProcess::cpu_ticks).collect(),
            server: b.server_cpu_ticks(),
        }
    }

    /// Adds to `out`: per hub (`hubs`) its requests (from its
    /// `/v1/admin/metrics`), slowest request, slow requests (≥ 1 s), CPU
    /// ms and CPU ms per request; over all hubs `hub_requests`,
    /// `hub_max_request_ms`, `hub_slow_requests`, `hub_cpu_ms_per_request`
    /// and, for PostgreSQL, `db_cpu_ms_per_request` (the server's CPU over
    /// the hubs' requests). Requests counted since each hub started, which
    /// must be right before [`CpuWatch::start`].
    pub fn finish(self, b: &dyn Backend, hubs: &[HubProcess], admin: &str, out: &mut Value) {
        let server = b.server_cpu_ticks();
        let mut per_hub = Vec::new();
        let (mut requests, mut slow, mut max_ms, mut cpu_ms) = (0u64, 0u64, 0f64, 0f64);
        for (hub, cpu0) in hubs.iter().zip(&self.hubs) {
            let ms = hub.cpu_ticks().saturating_sub(*cpu0) as f64 * 10.0;
            let m = hub.metrics(admin);
            let r = m["requests"].as_u64().unwrap_or(0);
            let max = m["max_request_ms"].as_f64().unwrap_or(f64::NAN);
            requests += r;
            slow += m["slow_requests"].as_u64().unwrap_or(0);
            max_ms = max_ms.max(max);
            cpu_ms += ms;
            per_hub.push(json!({
                "requests": r,
                "max_request_ms": max,
                "slow_requests": m["slow_requests"],
                "cpu_ms": ms,
                "cpu_ms_per_request": ms / r.max(1) as f64,
            }));
        }
        out["hubs"] = json!(per_hub);
        out["hub_requests"] = json!(requests);
        out["hub_slow_requests"] = json!(slow);
        out["hub_max_request_ms"] = json!(max_ms);
        out["hub_cpu_ms"] = json!(cpu_ms);
        out["hub_cpu_ms_per_request"] = json!(cpu_ms / requests.max(1) as f64);
        if let (Some(s0), Some(s1)) = (self.server, server) {
            let ms = s1.saturating_sub(s0) as f64 * 10.0;
            out["db_cpu_ms"] = json!(ms);
            out["db_cpu_ms_per_request"] = json!(ms / requests.max(1) as f64);
        }
    }
}

/// A TCP proxy on 127.0.0.1 that counts payload bytes each way.
fn counting_proxy(target: SocketAddr, up: Arc<AtomicU64>, down: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            // Without NODELAY, small HTTP writes would wait on Nagle and
            // the proxy would add delays the product does not have.
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (up, down) = (up.clone(), down.clone());
            std::thread::spawn(move || pump(client, server, &up));
            std::thread::spawn(move || pump(s2, c2, &down));
        }
    });
    addr
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Starts the real laptop daemon (`outpostd`) on `data_dir`.
pub fn start_laptop_daemon(data_dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_outpostd"))
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("OUTPOST_CONFIG_DIR")
        .env_remove("OUTPOST_DATA_DIR")
        .env_remove("OUTPOST_HUB_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start outpostd")
}

fn proc_status_field(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The fields of `/proc/PID/stat` after the command name (which is in
/// parentheses and may hold spaces): index 0 is field 3 (`state`).
fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect()
}

/// utime + stime of a process (clock ticks of 10 ms), None once gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(&pid.to_string());
    // utime, stime are fields 14, 15: indices 11, 12.
    Some(f.get(11)? + f.get(12)?)
}

/// utime + stime + cutime + cstime: with the children it has reaped.
pub fn cpu_ticks_with_children(pid: u32) -> Option<u64> {
    let f = stat_fields(&pid.to_string());
    Some(f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?)
}

/// The parent of a process (field 4 of stat).
pub fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(&pid.to_string())
        .get(1)
        .and_then(|p| u32::try_from(*p).ok())
}

/// CPU time (user + system, in clock ticks of 10 ms) of a process so far,
/// and the context switches (voluntary + involuntary: each is a wake-up)
/// of each of its threads.
pub fn cpu_and_switches(pid: &str) -> (u64, BTreeMap<String, u64>) {
    let cpu = pid.parse().ok().and_then(cpu_ticks).unwrap_or(0);
    let mut switches = BTreeMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = task.path().join("status");
            let status = status.to_string_lossy();
            let n = proc_status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0)
                + proc_status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
            switches.insert(task.file_name().to_string_lossy().into_owned(), n);
        }
    }
    (cpu, switches)
}

/// Wake-ups between two samples of [`cpu_and_switches`]: per thread, so a
/// thread that ended in between does not make the sum go backwards.
pub fn wakeups_between(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

pub fn thread_count(pid: &str) -> Option<u64> {
    proc_status_field(&format!("/proc/{pid}/status"), "Threads:")
}

pub fn rss_kb(pid: &str) -> Option<u64> {
    proc_status_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Runs this benchmark binary in a child role and returns its RESULT.
pub fn run_child(args: &[&str]) -> Value {
    child_result(Command::new(std::env::current_exe().unwrap()).args(args))
}

/// As [`run_child`], under the idle scheduling class (`chrt --idle 0`):
/// its threads run only when the hub has nothing to do. Real laptops have
/// CPUs of their own; here 200 laptops share two cores with the hub, and
/// `nice` would not keep them from starving it, as CFS weighs every one of
/// their ~400 threads separately.
pub fn run_child_idle_class(args: &[&str]) -> Value {
    child_result(
        Command::new("chrt")
            .args(["--idle", "0"])
            .arg(std::env::current_exe().unwrap())
            .args(args),
    )
}

fn child_result(cmd: &mut Command) -> Value {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run a benchmark child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
        Some(json) if out.status.success() => serde_json::from_str(json).unwrap(),
        _ => json!({"error": format!("child failed ({}): {stdout}", out.status)}),
    }
}

/// Child role for S4: every laptop listed in `dirs_file` syncs at once,
/// each on a thread of its own with its own store and HTTP client;
/// laptop i through hub node i % nodes (`urls` is comma-separated).
pub fn swarm(dirs_file: &Path, urls: &str) -> Value {
    let urls: Vec<&str> = urls.split(',').collect();
    let dirs: Vec<String> = std::fs::read_to_string(dirs_file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let barrier = Arc::new(Barrier::new(dirs.len() + 1));
    let handles: Vec<_> = dirs
        .into_iter()
        .enumerate()
        .map(|(i, dir)| {
            let barrier = barrier.clone();
            let url = urls[i % urls.len()].to_string();
            std::thread::spawn(move || {
                let mut store = Store::open(Path::new(&dir)).unwrap();
                let client = HubClient::new(&url, None, store.hub_token().unwrap()).unwrap();
                barrier.wait();
                let t = Instant::now();
                let outcome = outpost_store::sync::run(
                    &mut store,
                    &client,
                    SyncOptions::default(),
                    chrono::Local::now().fixed_offset(),
                    |_| {},
                );
                let ok = matches!(&outcome, Ok(o) if o.complete());
                if !ok {
                    eprintln!("swarm laptop {dir}: {outcome:?}");
                }
                (
                    t.elapsed().as_secs_f64(),
                    ok,
                    client.traffic.max_request_micros.load(Ordering::Relaxed),
                    client.traffic.requests.load(Ordering::Relaxed),
                )
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = t.elapsed().as_secs_f64();
    let mut secs: Vec<f64> = results.iter().map(|r| r.0).collect();
    secs.sort_by(f64::total_cmp);
    let pct = |p: f64| secs[((secs.len() - 1) as f64 * p).round() as usize];
    json!({
        "sync_s": wall,
        "laptops": results.len(),
        "errors": results.iter().filter(|r| !r.1).count(),
        "laptop_sync_p50_s": pct(0.5),
        "laptop_sync_p95_s": pct(0.95),
        "laptop_sync_max_s": pct(1.0),
        "max_request_ms": results.iter().map(|r| r.2).max().unwrap_or(0) as f64 / 1000.0,
        "requests": results.iter().map(|r| r.3).sum::<u64>(),
        "client_maxrss_kb": peak_rss_kb_self(),
    })
}

/// Counts what is written through it.
pub struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<'a, W: Write> CountingWriter<'a, W> {
    pub fn new(inner: &'a mut W) -> Self {
        CountingWriter { inner, written: 0 }
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn human_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

/// Medians per (backend, hub nodes, scenario, N) over the runs without
/// an error.
pub fn median_table(rows: &[Value]) -> String {
    let key = |r: &Value| {
        (
            r["backend"].as_str().unwrap_or("sqlite").to_string(),
            r["nodes"].as_u64().unwrap_or(1),
            r["scenario"].as_str().unwrap_or("").to_string(),
            r["n"].as_u64().unwrap_or(0),
        )
    };
    // Backends in the order they ran, scenarios sorted within each.
    let mut keys: Vec<(String, u64, String, u64)> = Vec::new();
    for r in rows {
        if !keys.contains(&key(r)) {
            keys.push(key(r));
        }
    }
    let order: Vec<String> = keys.iter().fold(Vec::new(), |mut v, k| {
        if !v.contains(&k.0) {
            v.push(k.0.clone());
        }
        v
    });
    keys.sort_by_key(|k| (order.iter().position(|b| *b == k.0), k.2.clone(), k.3, k.1));
    let mut out = String::from(
        "| hub | scenario | N | runs ok | seconds (median) | bytes up | bytes down | laptop peak RSS | hub peak RSS | notes |\n|---|---|---:|---|---:|---:|---:|---:|---:|---|\n",
    );
    for k in keys {
        let (ref backend, nodes, ref scenario, n) = k;
        let scenario = scenario.as_str();
        let hub = if nodes > 1 {
            format!("{backend} ×{nodes}")
        } else {
            backend.clone()
        };
        let all: Vec<&Value> = rows.iter().filter(|r| key(r) == k).collect();
        let ok: Vec<&Value> = all
            .iter()
            .copied()
            .filter(|r| r.get("error").is_none())
            .collect();
        let med = |field: &str| median(ok.iter().filter_map(|r| r[field].as_f64()).collect());
        let fmt_b = |field: &str| med(field).map(human_bytes).unwrap_or_else(|| "–".into());
        let fmt_mb = |field: &str| {
            med(field)
                .map(|kb| format!("{:.0} MiB", kb / 1024.0))
                .unwrap_or_else(|| "–".into())
        };
        let mut notes = Vec::new();
        if let Some(c) = med("change_bytes") {
            notes.push(format!(
                "change bytes {}, wire/changes {:.2}",
                human_bytes(c),
                med("wire_over_changes").unwrap_or(0.0)
            ));
        }
        if let Some(e) = med("export_csv_s") {
            notes.push(format!(
                "list {:.3} s, CSV export {e:.3} s",
                med("list_s").unwrap_or(0.0)
            ));
        }
        if scenario == "idle" {
            notes.push(format!(
                "{:.0} s idle: CPU {:.0} ms, wake-ups {:.0}, RSS {:.1} MiB, threads {:.0}",
                med("idle_s").unwrap_or(f64::NAN),
                med("cpu_ms").unwrap_or(f64::NAN),
                med("wakeups").unwrap_or(f64::NAN),
                med("rss_kb").unwrap_or(f64::NAN) / 1024.0,
                med("threads").unwrap_or(f64::NAN),
            ));
        }
        if scenario == "s4" {
            notes.push(format!(
                "hub max request {:.0} ms, slow (≥1 s) {}, laptop max request {:.0} ms (second round {:.0} ms), p95 laptop sync {:.2} s, second round {:.2} s",
                med("hub_max_request_ms").unwrap_or(f64::NAN),
                med("hub_slow_requests").unwrap_or(f64::NAN),
                med("max_request_ms").unwrap_or(f64::NAN),
                med("second_round_max_request_ms").unwrap_or(f64::NAN),
                med("laptop_sync_p95_s").unwrap_or(f64::NAN),
                med("second_round_s").unwrap_or(f64::NAN),
            ));
        }
        if scenario == "peak" {
            notes.push(format!(
                "{:.0} syncs, {:.0} sync errors, {:.0} request errors; request p50/p90/p99/max {:.0}/{:.0}/{:.0}/{:.0} ms; sync p50/p99 {:.2}/{:.2} s; started late by >1 s: {:.0} (max {:.1} s); set-up {:.0} s",
                med("syncs").unwrap_or(f64::NAN),
                med("sync_errors").unwrap_or(f64::NAN),
                med("request_errors").unwrap_or(f64::NAN),
                med("request_p50_ms").unwrap_or(f64::NAN),
                med("request_p90_ms").unwrap_or(f64::NAN),
                med("request_p99_ms").unwrap_or(f64::NAN),
                med("request_max_ms").unwrap_or(f64::NAN),
                med("sync_p50_s").unwrap_or(f64::NAN),
                med("sync_p99_s").unwrap_or(f64::NAN),
                med("late_over_1s").unwrap_or(f64::NAN),
                med("late_max_s").unwrap_or(f64::NAN),
                med("setup_s").unwrap_or(f64::NAN),
            ));
        }
        if scenario == "s4" || scenario == "peak" {
            let db = med("db_cpu_ms_per_request")
                .map(|v| format!(", database server CPU {v:.2} ms/request"))
                .unwrap_or_default();
            notes.push(format!(
                "hub CPU {:.2} ms/request over {:.0} requests{db}",
                med("hub_cpu_ms_per_request").unwrap_or(f64::NAN),
                med("hub_requests").unwrap_or(f64::NAN),
            ));
        }
        for r in all.iter().filter_map(|r| r.get("error")) {
            notes.push(format!("ERROR: {}", r.as_str().unwrap_or("?")));
        }
        out.push_str(&format!(
            "| {hub} | {scenario} | {n} | {}/{} | {} | {} | {} | {} | {} | {} |\n",
            ok.len(),
            all.len(),
            med("sync_s")
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "–".into()),
            fmt_b("bytes_up"),
            fmt_b("bytes_down"),
            fmt_mb("client_maxrss_kb"),
            fmt_mb("server_maxrss_kb"),
            notes.join("; ")
        ));
    }
    out
}

/// Bytes a process has had written to storage so far (`/proc/PID/io`,
/// `write_bytes`): what the page cache will put on disk for it, so the
/// WAL and checkpoint writes a sync causes.
pub fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Writes the laptops' data dirs, a line each, to `run/laptops.txt` (what
/// the swarm roles read); returns its path.
pub fn write_laptops_file(run: &Path, dirs: &[PathBuf]) -> PathBuf {
    let file = run.join("laptops.txt");
    std::fs::write(
        &file,
        dirs.iter()
            .map(|d| format!("{}\n", d.display()))
            .collect::<String>(),
    )
    .unwrap();
    file
}

/// The hubs' URLs, comma-separated (the swarm roles' `--urls`).
pub fn urls(hubs: &[HubProcess]) -> String {
    hubs.iter()
        .map(HubProcess::url)
        .collect::<Vec<_>>()
        .join(",")
}
