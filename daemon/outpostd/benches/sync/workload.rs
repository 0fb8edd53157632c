//! The benchmark's records: the peers' workload (`shared/peers/common/
//! workload.mjs`, mulberry32 seeded per record) mapped onto Outpost's visit
//! schema, so Outpost and the peers move the same data.

use chrono::{DateTime, FixedOffset};
use outpost_proto::fields::Fields;
use outpost_proto::record::Record;
use serde_json::json;

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

pub fn record_fields(i: u32, org: &str, device: &str, now: DateTime<FixedOffset>) -> Fields {
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
    // The shared valid visit, with this workload's varied values laid over.
    let mut f = outpost_proto::fixtures::visit_fields_at(org, device, id.parse().unwrap(), now);
    for (k, v) in [
        ("site", json!(site)),
        ("date", json!(date.to_string())),
        ("minutes", json!(minutes)),
        ("services", json!([service])),
        ("category", json!(category)),
        ("outcome", json!(outcome)),
        ("note", json!(note)),
    ] {
        f.insert(k.into(), v);
    }
    f
}

pub fn edit_for(j: u32) -> Fields {
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

pub fn edit_indices(n: u32) -> Vec<u32> {
    (0..100u32)
        .map(|t| ((u64::from(t) * u64::from(n) / 100) as u32 + t % 7).min(n - 1))
        .collect()
}

/// Record `i` as a validated visit of `org`, made on `device`.
pub fn record(i: u32, org: &str, device: &str, now: DateTime<FixedOffset>) -> Record {
    Record::from_fields(&record_fields(i, org, device, now)).expect("workload records are valid")
}

/// The id of record `i` (ids do not depend on org or device).
pub fn record_id(i: u32) -> String {
    let now = chrono::Local::now().fixed_offset();
    record_fields(i, "x", "00000000-0000-4000-8000-000000000000", now)["id"]
        .as_str()
        .unwrap()
        .to_string()
}
