//! Sync and read benchmark: real SQLite files, a real hub on 127.0.0.1,
//! real HTTP. Run with
//!
//! ```sh
//! cargo bench -p outpost-daemon --bench sync -- --n 10000
//! cargo bench -p outpost-daemon --bench sync -- --n 100000 --scenarios list
//! ```
//!
//! Scenarios (as in `shared/peers/README.md`):
//! - `s1`: a laptop with N offline records syncs to an empty hub;
//! - `s2`: then it adds 100 and edits 100 records and syncs;
//! - `s3`: a fresh laptop pulls the N records;
//! - `list`: read all N records from the projection, and export them as CSV.
//!
//! Records follow the peers' workload (`shared/peers/common/workload.mjs`,
//! mulberry32), mapped onto Outpost's visit schema. Bytes are HTTP body
//! bytes as sent (compressed), both directions; "change bytes" is the size
//! of the Automerge changes themselves, the floor any sync must move.

use std::time::Instant;

use chrono::{DateTime, FixedOffset};
use outpost_daemon::client::HubClient;
use outpost_daemon::export::{self, ExportOptions, Format};
use outpost_daemon::hub::store::{HubStore, SqliteHubStore};
use outpost_daemon::store::{Filter, Store};
use outpost_daemon::sync::SyncOptions;
use outpost_proto::catalogue::Catalogue;
use outpost_proto::fields::Fields;
use outpost_proto::record::{Kind, Record};
use outpost_proto::sync::{EnrollRequest, PROTOCOL_VERSION};
use serde_json::{Value, json};

const SITES: &[&str] = &[
    "Stadsbiblioteket",
    "Tensta bibliotek",
    "Rinkeby bibliotek",
    "Husby bibliotek",
    "Skärholmens bibliotek",
];
const SERVICES: &[&str] = &[
    "Försäkringskassan",
    "Skatteverket",
    "BankID",
    "1177",
    "Arbetsförmedlingen",
    "Migrationsverket",
    "CSN",
    "Pensionsmyndigheten",
    "Polisen",
    "Transportstyrelsen",
    "Kivra",
    "Swish",
    "Mina meddelanden",
    "Bolagsverket",
    "Lantmäteriet",
];
const CATEGORIES: &[&str] = &[
    "e_service",
    "e_service",
    "e_service",
    "e_service",
    "other",
    "device",
];
const OUTCOMES: &[&str] = &["solved", "partly", "referred", "not_solved"];
const SUBJECTS: &[&str] = &[
    "Besökaren",
    "Hen",
    "Kunden",
    "En äldre man",
    "En kvinna",
    "Paret",
    "Studenten",
    "Pensionären",
];
const VERBS: &[&str] = &[
    "behövde hjälp med",
    "fick stöd med",
    "frågade om",
    "ville förstå",
    "hade problem med",
    "kom tillbaka för",
];
const OBJECTS: &[&str] = &[
    "inloggning",
    "att fylla i en blankett",
    "att boka en tid",
    "en betalning",
    "sitt ärende",
    "ett brev från myndigheten",
    "mobilt BankID",
    "att ladda ner en app",
    "lösenordet",
    "en ansökan",
];
const TAILS: &[&str] = &[
    "och det löste sig",
    "men behöver komma tillbaka",
    "vi hänvisade vidare",
    "tog längre tid än väntat",
    "med hjälp av tolk",
    "på telefonen",
    "på bibliotekets dator",
    "tillsammans med en anhörig",
    "",
    "",
];

/// mulberry32, as in the peers' workload.
struct Mulberry(u32);

impl Mulberry {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x6d2b_79f5);
        let mut t = self.0;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        t ^ (t >> 14)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

fn record_fields(i: u32, org: &str, device: &str, now: DateTime<FixedOffset>) -> Fields {
    let mut r = Mulberry(1_000_003u32.wrapping_add(i));
    let (a, b, c, d) = (r.next(), r.next(), r.next(), r.next());
    let id = format!(
        "{a:08x}-{:04x}-4{:03x}-{:04x}-{:04x}{d:08x}",
        b >> 16,
        b & 0xfff,
        0x8000 | ((c >> 16) & 0x3fff),
        c & 0xffff
    );
    let day = r.next() % 730;
    let date =
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(u64::from(day));
    let site = r.pick(SITES);
    let service = r.pick(SERVICES);
    let category = r.pick(CATEGORIES);
    let outcome = r.pick(OUTCOMES);
    let minutes = 5 + r.next() % 86;
    let mut note = format!(
        "{} {} {} hos {service}",
        r.pick(SUBJECTS),
        r.pick(VERBS),
        r.pick(OBJECTS)
    );
    let tail = r.pick(TAILS);
    if !tail.is_empty() {
        note.push_str(", ");
        note.push_str(tail);
    }
    note.push('.');
    while note.chars().count() < 40 {
        note.push_str(" Uppföljning bokad.");
    }
    let mut f = outpost_proto::record::new_record_fields(
        Kind::Visit,
        org,
        device,
        now,
        id.parse().unwrap(),
    );
    for (k, v) in [
        ("site", json!(site)),
        ("staff", json!("AB")),
        ("date", json!(date.to_string())),
        ("minutes", json!(minutes)),
        ("channel", json!("drop_in")),
        ("services", json!([service])),
        ("category", json!(category)),
        ("outcome", json!(outcome)),
        ("age_band", json!("65_79")),
        ("language", json!("sv")),
        ("note", json!(note)),
    ] {
        f.insert(k.into(), v);
    }
    f
}

fn edit_for(j: u32) -> Fields {
    let mut r = Mulberry(7919u32.wrapping_add(j).wrapping_add(0x5eed));
    let outcome = r.pick(OUTCOMES);
    let minutes = 5 + r.next() % 86;
    let note = format!(
        "Uppdaterad: följde upp ärendet igen, {} efter {} min.",
        r.pick(OUTCOMES),
        5 + r.next() % 40
    );
    Fields::from([
        ("outcome".to_string(), json!(outcome)),
        ("minutes".to_string(), json!(minutes)),
        ("note".to_string(), json!(note)),
    ])
}

fn edit_indices(n: u32) -> Vec<u32> {
    (0..100u32)
        .map(|t| ((u64::from(t) * u64::from(n) / 100) as u32 + t % 7).min(n - 1))
        .collect()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Hub {
    url: String,
    store: std::sync::Arc<SqliteHubStore>,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn start_hub() -> Hub {
    outpost_daemon::client::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteHubStore::open(dir.path()).unwrap());
    store.create_admin_token(None).unwrap();
    store.add_org("bench", "Bench kommun").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared: std::sync::Arc<dyn HubStore> = store.clone();
    rt.spawn(outpost_daemon::hub::server::serve(
        listener,
        shared,
        None,
        std::future::pending(),
    ));
    Hub {
        url,
        store,
        _dir: dir,
        _rt: rt,
    }
}

fn laptop(hub: &Hub) -> (tempfile::TempDir, HubClient) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path(), "bench", "Stadsbiblioteket", "AB").unwrap();
    let code = hub.store.invite("bench", chrono::Utc::now()).unwrap();
    let client = HubClient::new(&hub.url, None, None).unwrap();
    let resp = client
        .enroll(&EnrollRequest {
            v: PROTOCOL_VERSION,
            code,
            device: store.identity().device.parse().unwrap(),
            device_time: 0,
        })
        .unwrap();
    store.set_hub_token(Some(&resp.token)).unwrap();
    (
        dir,
        HubClient::new(&hub.url, None, Some(resp.token)).unwrap(),
    )
}

fn timed_sync(dir: &std::path::Path, client: &HubClient) -> (f64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut store = Store::open(dir).unwrap();
    let (up0, down0) = (
        client.traffic.up.load(Relaxed),
        client.traffic.down.load(Relaxed),
    );
    let t = Instant::now();
    let outcome =
        outpost_daemon::sync::run(&mut store, client, SyncOptions::default(), now(), |_| {})
            .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(outcome.complete(), "sync failed: {outcome:?}");
    (
        secs,
        client.traffic.up.load(Relaxed) - up0,
        client.traffic.down.load(Relaxed) - down0,
    )
}

fn now() -> DateTime<FixedOffset> {
    chrono::Local::now().fixed_offset()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: u32 = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let scenarios = arg("--scenarios").unwrap_or_else(|| "s1,s2,s3,list".into());
    let want = |s: &str| scenarios.split(',').any(|x| x == s);
    let mut results: Vec<Value> = Vec::new();
    let mut report = |name: &str, v: Value| {
        eprintln!("{name:<6} {v}");
        results.push(json!({"scenario": name, "n": n, "result": v}));
    };

    let hub = start_hub();
    let (laptop_dir, client) = laptop(&hub);
    {
        let mut store = Store::open(laptop_dir.path()).unwrap();
        let device = store.identity().device.clone();
        let t = Instant::now();
        let records: Vec<Record> = (0..n)
            .map(|i| Record::from_fields(&record_fields(i, "bench", &device, now())).unwrap())
            .collect();
        for chunk in records.chunks(5000) {
            store.insert_records(chunk).unwrap();
        }
        eprintln!(
            "setup: {n} records stored in {:.2} s (untimed)",
            t.elapsed().as_secs_f64()
        );
    }

    if want("list") {
        let store = Store::open(laptop_dir.path()).unwrap();
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
        let mut sink = std::io::Cursor::new(Vec::new());
        export::export(
            records,
            &Catalogue::builtin(),
            &ExportOptions {
                format: Format::Csv,
                excel: false,
            },
            &mut sink,
        )
        .unwrap();
        let export_s = t.elapsed().as_secs_f64();
        report(
            "list",
            json!({"records": count, "list_s": list_s, "export_csv_s": export_s, "csv_bytes": sink.get_ref().len(), "peak_rss_mb": peak_rss_mb()}),
        );
    }

    if want("s1") || want("s2") || want("s3") {
        let (s, up, down) = timed_sync(laptop_dir.path(), &client);
        report(
            "s1",
            json!({"sync_s": s, "bytes_up": up, "bytes_down": down, "peak_rss_mb": peak_rss_mb()}),
        );
    }

    if want("s2") {
        let mut store = Store::open(laptop_dir.path()).unwrap();
        let device = store.identity().device.clone();
        let new: Vec<Record> = (n..n + 100)
            .map(|i| Record::from_fields(&record_fields(i, "bench", &device, now())).unwrap())
            .collect();
        store.insert_records(&new).unwrap();
        for j in edit_indices(n) {
            let id = record_fields(j, "bench", &device, now())["id"]
                .as_str()
                .unwrap()
                .to_string();
            store.edit(&id, &edit_for(j), now()).unwrap();
        }
        // The floor: the Automerge change bytes the hub lacks.
        let (docs, _, _) = store.load_pending(0, 10_000).unwrap();
        let change_bytes: usize = docs.iter().map(|d| d.data.len()).sum();
        drop(store);
        let (s, up, down) = timed_sync(laptop_dir.path(), &client);
        report(
            "s2",
            json!({"sync_s": s, "bytes_up": up, "bytes_down": down, "change_bytes": change_bytes,
                   "wire_over_changes": (up + down) as f64 / change_bytes.max(1) as f64, "peak_rss_mb": peak_rss_mb()}),
        );
    }

    if want("s3") {
        let (fresh, client2) = laptop(&hub);
        let (s, up, down) = timed_sync(fresh.path(), &client2);
        let got = Store::open(fresh.path()).unwrap().counts().unwrap().records;
        report(
            "s3",
            json!({"sync_s": s, "bytes_up": up, "bytes_down": down, "records": got, "peak_rss_mb": peak_rss_mb()}),
        );
    }
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
}
