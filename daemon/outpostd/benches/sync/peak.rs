//! The `peak` scenario: a Monday morning. By default 3,000 laptops in 300
//! organisations (10 each) each sync three times at random (seeded)
//! moments within ten minutes; before each sync the laptop records 2–5
//! visits, then it runs a full sync (push, then pull of its org's feed)
//! with the real `outpost_store::sync::run` on its real `Store`.
//!
//! Set-up (untimed, reported as `setup_s`): the orgs are made and the
//! laptops enrolled through the hub's store directly, on two threads.
//!
//! The laptops run in one child process in the idle scheduling class (so
//! they take no CPU the hub wants), as a pool of `--peak-concurrency`
//! (64) threads taking the syncs in schedule order: at most that many
//! syncs are in flight. When every thread is busy the next sync starts
//! late; how late is reported (`late_over_1s`, `late_max_s`) instead of
//! silently compressing the schedule. A laptop's syncs never overlap (a
//! laptop's daemon runs one at a time).
//!
//! Measured client-side: every request's time (push or pull, from the
//! call to the decoded answer, through a timing [`Transport`] around the
//! real `HubClient`), every sync's time, errors by kind; hub-side: each
//! hub's metrics, peak RSS and CPU per request, and the database server's
//! CPU per request (PostgreSQL). At the end the hub must hold every record
//! the laptops made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use outpost_proto::record::Record;
use outpost_proto::sync::{PullRequest, PullResponse, PushRequest, PushResponse};
use outpost_store::client::HubClient;
use outpost_store::store::Store;
use outpost_store::sync::SyncOptions;
use outpost_store::transport::{Transport, TransportError};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::procs;
use crate::{path_str, workload};

#[derive(Debug, Clone)]
pub struct PeakArgs {
    pub laptops: u32,
    pub orgs: u32,
    pub minutes: f64,
    /// Syncs per laptop within the window.
    pub syncs_each: u32,
    /// Syncs in flight at most.
    pub concurrency: u32,
    pub seed: u64,
}

impl PeakArgs {
    fn child_args(&self) -> Vec<String> {
        [
            ("--peak-laptops", self.laptops.to_string()),
            ("--peak-orgs", self.orgs.to_string()),
            ("--peak-minutes", (self.minutes as u32).to_string()),
            ("--peak-syncs", self.syncs_each.to_string()),
            ("--peak-concurrency", self.concurrency.to_string()),
            ("--peak-seed", self.seed.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }
}

fn org_slug(o: u32) -> String {
    format!("peak{o:03}")
}

/// splitmix64: a small seeded generator, so the schedule is the same on
/// every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Driver side: set-up on `state`, the hubs, the child, the checks.
pub fn run(b: &dyn Backend, nodes: usize, state: &str, run: &Path, a: &PeakArgs) -> Value {
    let t = Instant::now();
    let hub = b.create(state);
    let admin = hub.create_admin_token(None).unwrap();
    for o in 0..a.orgs {
        hub.add_org(&org_slug(o), &format!("Peak kommun {o}"))
            .unwrap();
    }
    // Stores made and enrolled on two threads: the SQLite files and the
    // hub's writes overlap.
    let next = AtomicUsize::new(0);
    let dirs: Vec<PathBuf> = (0..a.laptops)
        .map(|l| run.join("laptops").join(l.to_string()))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let l = next.fetch_add(1, Ordering::Relaxed);
                    let Some(dir) = dirs.get(l) else { break };
                    let org = org_slug(l as u32 % a.orgs);
                    Store::init(dir, &org, "Husby bibliotek", "AB").unwrap();
                    crate::enroll(hub.as_ref(), dir);
                }
            });
        }
    });
    drop(hub);
    let dirs_file = procs::write_laptops_file(run, &dirs);
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!(
        "setup: {} hub, {} orgs, {} enrolled laptops in {setup_s:.1} s (untimed)",
        b.name(),
        a.orgs,
        a.laptops
    );
    let hubs = b.start(state, nodes);
    let urls = procs::urls(&hubs);
    let cpu = procs::CpuWatch::start(b, &hubs);
    let traffic0 = procs::traffic(&hubs);
    let mut args: Vec<String> = [
        "--role",
        "peak",
        "--dirs",
        path_str(&dirs_file),
        "--url",
        &urls,
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(a.child_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut out = procs::run_child_idle_class(&args);
    let traffic1 = procs::traffic(&hubs);
    out["bytes_up"] = json!(traffic1.0 - traffic0.0);
    out["bytes_down"] = json!(traffic1.1 - traffic0.1);
    out["setup_s"] = json!(setup_s);
    cpu.finish(b, &hubs, &admin, &mut out);
    out["server_maxrss_kb"] = json!(procs::stop_all(hubs, &mut out));
    let (held, _) = b.docs(state);
    out["hub_records"] = json!(held);
    let made = out["records_made"].as_u64().unwrap_or(0);
    let errors = out["sync_errors"].as_u64().unwrap_or(1);
    crate::check(&mut out, errors == 0 && held == made, || {
        format!(
            "{errors} syncs failed; the hub holds {held} of the {made} records the laptops made"
        )
    });
    out
}

/// The real client, timing each request and naming each failure.
struct Timed<'a> {
    client: &'a HubClient,
    times_us: Mutex<Vec<u64>>,
    errors: Mutex<Vec<String>>,
}

impl Timed<'_> {
    fn time<T>(&self, f: impl FnOnce() -> Result<T, TransportError>) -> Result<T, TransportError> {
        let t = Instant::now();
        let r = f();
        let us = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.times_us.lock().unwrap().push(us);
        if let Err(e) = &r {
            self.errors.lock().unwrap().push(error_kind(e));
        }
        r
    }
}

impl Transport for Timed<'_> {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        self.time(|| self.client.push(req))
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        self.time(|| self.client.pull(req))
    }
}

/// A short name for a failure: its variant, and the HTTP status if any.
fn error_kind(e: &TransportError) -> String {
    match e {
        TransportError::HubUnavailable { status, .. } => format!("hub_unavailable_{status}"),
        TransportError::Refused { status, .. } => format!("refused_{status}"),
        other => format!("{other:?}")
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("?")
            .to_string(),
    }
}

struct SyncResult {
    sync_us: u64,
    late_us: u64,
    requests_us: Vec<u64>,
    request_errors: Vec<String>,
    /// None: complete.
    error: Option<String>,
    made: u64,
}

/// Child role: the schedule, run by a bounded pool of threads.
pub fn child(dirs_file: &Path, urls: &str, a: &PeakArgs) -> Value {
    let dirs: Vec<String> = std::fs::read_to_string(dirs_file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let urls: Vec<&str> = urls.split(',').collect();
    let window = a.minutes * 60.0;
    let mut rng = Rng(a.seed);
    // (seconds from the start, laptop, its sync number)
    let mut jobs: Vec<(f64, usize, u32)> = (0..dirs.len())
        .flat_map(|l| (0..a.syncs_each).map(move |k| (l, k)))
        .map(|(l, k)| (rng.unit() * window, l, k))
        .collect();
    jobs.sort_by(|x, y| x.0.total_cmp(&y.0));
    let busy: Vec<Mutex<()>> = dirs.iter().map(|_| Mutex::new(())).collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..a.concurrency {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(at, l, k)) = jobs.get(i) else {
                        break;
                    };
                    let due = start + Duration::from_secs_f64(at);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let _one_at_a_time = busy[l].lock().unwrap();
                    let late = Instant::now().saturating_duration_since(due);
                    let mut r = one_sync(Path::new(&dirs[l]), urls[l % urls.len()], l, k);
                    r.late_us = late.as_micros() as u64;
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let wall_s = start.elapsed().as_secs_f64();
    let results = results.into_inner().unwrap();
    let mut requests: Vec<u64> = results.iter().flat_map(|r| r.requests_us.clone()).collect();
    let mut syncs: Vec<u64> = results.iter().map(|r| r.sync_us).collect();
    let mut late: Vec<u64> = results.iter().map(|r| r.late_us).collect();
    let mut errors_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for e in results.iter().flat_map(|r| &r.request_errors) {
        *errors_by_kind.entry(format!("request: {e}")).or_default() += 1;
    }
    for e in results.iter().filter_map(|r| r.error.as_ref()) {
        eprintln!("peak sync failed: {e}");
        let kind: String = e.chars().take(60).collect();
        *errors_by_kind.entry(format!("sync: {kind}")).or_default() += 1;
    }
    let ms = |v: &mut Vec<u64>, p: f64| pct(v, p) as f64 / 1000.0;
    let s = |v: &mut Vec<u64>, p: f64| pct(v, p) as f64 / 1e6;
    json!({
        "sync_s": wall_s,
        "laptops": dirs.len(),
        "orgs": a.orgs,
        "window_s": window,
        "concurrency": a.concurrency,
        "syncs": results.len(),
        "sync_errors": results.iter().filter(|r| r.error.is_some()).count(),
        "requests": requests.len(),
        "request_errors": results.iter().map(|r| r.request_errors.len()).sum::<usize>(),
        "errors_by_kind": errors_by_kind,
        "request_p50_ms": ms(&mut requests, 0.5),
        "request_p90_ms": ms(&mut requests, 0.9),
        "request_p99_ms": ms(&mut requests, 0.99),
        "request_max_ms": ms(&mut requests, 1.0),
        "requests_over_2s": requests.iter().filter(|&&us| us > 2_000_000).count(),
        "sync_p50_s": s(&mut syncs, 0.5),
        "sync_p99_s": s(&mut syncs, 0.99),
        "sync_max_s": s(&mut syncs, 1.0),
        "late_over_1s": late.iter().filter(|&&us| us > 1_000_000).count(),
        "late_p99_s": s(&mut late, 0.99),
        "late_max_s": s(&mut late, 1.0),
        "records_made": results.iter().map(|r| r.made).sum::<u64>(),
        "client_maxrss_kb": procs::peak_rss_kb_self(),
    })
}

/// The `p` quantile (nearest rank) of `v`, sorting it; 0 when empty.
fn pct(v: &mut [u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Laptop `l`'s sync number `k`: 2–5 new visits, then a full sync.
fn one_sync(dir: &Path, url: &str, l: usize, k: u32) -> SyncResult {
    let mut result = SyncResult {
        sync_us: 0,
        late_us: 0,
        requests_us: Vec::new(),
        request_errors: Vec::new(),
        error: None,
        made: 0,
    };
    let mut store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(format!("store: {e}"));
            return result;
        }
    };
    let identity = store.identity().clone();
    let mut rng = Rng(((l as u64) << 8) | u64::from(k));
    let count = 2 + (rng.next() % 4) as u32;
    let now = crate::now();
    let records: Vec<Record> = (0..count)
        .map(|i| {
            workload::record(
                20_000_000 + l as u32 * 256 + k * 8 + i,
                &identity.org,
                &identity.device,
                now,
            )
        })
        .collect();
    if let Err(e) = store.insert_records(&records) {
        result.error = Some(format!("store: {e}"));
        return result;
    }
    result.made = u64::from(count);
    let token = store.hub_token().unwrap();
    let client = HubClient::new(url, None, token).unwrap();
    let timed = Timed {
        client: &client,
        times_us: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
    };
    let t = Instant::now();
    let outcome = outpost_store::sync::run(&mut store, &timed, SyncOptions::default(), now, |_| {});
    result.sync_us = t.elapsed().as_micros() as u64;
    result.requests_us = timed.times_us.into_inner().unwrap();
    result.request_errors = timed.errors.into_inner().unwrap();
    result.error = match outcome {
        Ok(o) if o.complete() => None,
        Ok(o) => Some(format!(
            "incomplete: {}",
            o.error
                .unwrap_or_else(|| format!("{} refused", o.refused.len()))
        )),
        Err(e) => Some(format!("store: {e}")),
    };
    result
}
