//! `outpost stats` checked against a second, deliberately plain computation.
//!
//! A generated data set (visits over two years, three spellings of one site,
//! courses across month boundaries) is imported through the real CLI; the
//! figures `outpost --json stats` prints are compared with loops over the
//! records `outpost export --format jsonl` gives back. The loops share no
//! code with `proto::stats`: they know the few services used here by a
//! hand-written table and count with plain maps.

use std::collections::BTreeMap;

use outpost_tests::{ORG, TestDir};
use serde_json::{Value, json};

/// The services the generator uses and whether the catalogue says another
/// agency runs them (the built-in catalogue: BankID is the banks',
/// Försäkringskassan the state's, Skola and Förskola the municipality's).
const SERVICES: &[(&str, bool)] = &[
    ("BankID", true),
    ("Försäkringskassan", true),
    ("Skola", false),
    ("Förskola", false),
];
/// Spellings staff typed; the site list has the first two.
const SITES: &[&str] = &[
    "Mjölby bibliotek",
    "Mjölby Bibliotek",
    "Mjolby bibliotek",
    "Skänninge bibliotek",
    "Väderstad skola",
];
const ASSISTIVE: &[&str] = &["interpreter", "speech_synthesis", "large_text"];

/// A small deterministic generator (no randomness crate needed, and the same
/// data on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn pick<'a>(rng: &mut Lcg, from: &[&'a str]) -> &'a str {
    from[rng.next(from.len())]
}

fn uuid(n: u64, tag: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", tag, n)
}

fn generate(rng: &mut Lcg, device: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let stamp = "2026-01-10T10:00:00+01:00";
    for n in 0..400u64 {
        let year = 2024 + rng.next(2);
        let month = 1 + rng.next(12);
        let day = 1 + rng.next(28);
        let mut services: Vec<&str> = Vec::new();
        for _ in 0..1 + rng.next(2) {
            let s = SERVICES[rng.next(SERVICES.len())].0;
            if !services.contains(&s) {
                services.push(s);
            }
        }
        let mut assistive: Vec<&str> = Vec::new();
        for _ in 0..rng.next(3) {
            let a = ASSISTIVE[rng.next(ASSISTIVE.len())];
            if !assistive.contains(&a) {
                assistive.push(a);
            }
        }
        let outcome = pick(rng, &["solved", "partly", "referred", "not_solved"]);
        out.push(json!({
            "id": uuid(n, 1),
            "org": ORG,
            "site": SITES[rng.next(SITES.len())],
            "staff": pick(rng, &["AB", "CD"]),
            "device": device,
            "created_at": stamp,
            "updated_at": stamp,
            "kind": "visit",
            "date": format!("{year}-{month:02}-{day:02}"),
            "time": null,
            "minutes": 5 + rng.next(60),
            "channel": pick(rng, &["drop_in", "booked", "outreach"]),
            "services": services,
            "category": "e_service",
            "outcome": outcome,
            "referred_to": if outcome == "referred" { json!("Försäkringskassan") } else { json!(null) },
            "age_band": pick(rng, &["45_64", "65_79", "80_plus"]),
            "language": pick(rng, &["sv", "ar", "so"]),
            "assistive": assistive,
            "barriers": if rng.next(3) == 0 {
                json!([{"service": services[0], "kind": pick(rng, &["login", "bankid", "form"]), "note": null}])
            } else {
                json!([])
            },
            "sensitive": rng.next(4) == 0,
            "note": null,
        }));
    }
    for n in 0..12u64 {
        let sessions: Vec<Value> = (0..1 + rng.next(4) as u64)
            .map(|s| {
                json!({
                    "id": uuid(n * 10 + s, 3),
                    "date": format!("2025-{:02}-{:02}", 1 + rng.next(12), 1 + rng.next(28)),
                    "time": null,
                    "minutes": 60,
                    "participants": rng.next(15),
                    "instructor": null,
                    "note": null,
                })
            })
            .collect();
        out.push(json!({
            "id": uuid(n, 2),
            "org": ORG,
            "site": SITES[rng.next(SITES.len())],
            "staff": "AB",
            "device": device,
            "created_at": stamp,
            "updated_at": stamp,
            "kind": "course",
            "title": "Nybörjarkurs internet",
            "partner": pick(rng, &["Medborgarskolan", "SeniorNet"]),
            "target_group": null,
            "sessions": sessions,
            "note": null,
        }));
    }
    out
}

/// The plain computation: per key, visits, minutes, other-agency visits,
/// participations and the sum over courses of their largest session.
#[derive(Debug, Default, Clone, PartialEq)]
struct Plain {
    visits: u64,
    minutes: u64,
    other: u64,
    courses: u64,
    sessions: u64,
    participations: u64,
    largest: u64,
}

fn in_year(date: &str, year: &str) -> bool {
    date.starts_with(year)
}

/// `key` of a visit or session: site folded by hand to the list, and month.
fn site_key(site: &str) -> String {
    match site {
        "Mjölby bibliotek" | "Mjölby Bibliotek" | "Mjolby bibliotek" => "Mjölby bibliotek".into(),
        other => other.into(),
    }
}

fn plain(records: &[Value], year: &str) -> BTreeMap<(String, String), Plain> {
    let mut out: BTreeMap<(String, String), Plain> = BTreeMap::new();
    for r in records {
        let site = site_key(r["site"].as_str().unwrap());
        if r["kind"] == "visit" {
            let date = r["date"].as_str().unwrap();
            if !in_year(date, year) {
                continue;
            }
            let e = out.entry((site, date[..7].to_string())).or_default();
            e.visits += 1;
            e.minutes += r["minutes"].as_u64().unwrap();
            let other = r["services"].as_array().unwrap().iter().any(|s| {
                SERVICES
                    .iter()
                    .any(|(name, other)| *other && s.as_str() == Some(*name))
            });
            e.other += u64::from(other);
        } else {
            // Each month of a course separately: the largest session of the
            // course in that month.
            let mut months: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
            for s in r["sessions"].as_array().unwrap() {
                let date = s["date"].as_str().unwrap();
                if !in_year(date, year) {
                    continue;
                }
                let p = s["participants"].as_u64().unwrap();
                let m = months.entry(date[..7].to_string()).or_default();
                m.0 += 1;
                m.1 += p;
                m.2 = m.2.max(p);
                m.3 += s["minutes"].as_u64().unwrap();
            }
            for (month, (sessions, participations, largest, minutes)) in months {
                let e = out.entry((site.clone(), month)).or_default();
                e.courses += 1;
                e.sessions += sessions;
                e.participations += participations;
                e.largest += largest;
                e.minutes += minutes;
            }
        }
    }
    out
}

#[test]
fn stats_by_site_and_month_agree_with_a_plain_count_over_the_export() {
    let td = TestDir::initialised();
    let device = td.json(&["--json", "status"])["device"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rng = Lcg(20251);
    let records = generate(&mut rng, &device);
    let file = td.path().join("generated.jsonl");
    let text: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    td.ok(&["import", file.to_str().unwrap()]);

    let exported: Vec<Value> = td
        .ok(&["export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), records.len(), "every record imported");

    // Without the site list the three spellings of Mjölby are three sites,
    // so the plain count folds them by hand only for comparison below; here
    // the CLI must give each spelling as typed.
    let by_site = td.json(&["--json", "stats", "--year", "2025", "--by", "site"]);
    let sites: Vec<&str> = by_site["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert!(
        sites.contains(&"Mjolby bibliotek") && sites.contains(&"Mjölby Bibliotek"),
        "sites counted as typed without a list: {sites:?}"
    );

    let want = plain(&exported, "2025");
    let got = td.json(&["--json", "stats", "--year", "2025", "--by", "month,site"]);
    assert_eq!(
        got,
        td.json(&[
            "--json",
            "stats",
            "--from",
            "2025",
            "--to",
            "2025-12",
            "--by",
            "month,site"
        ]),
        "--year 2025 is --from 2025 --to 2025-12"
    );
    // Fold the CLI's groups by the same hand-made site key, then compare.
    let mut folded: BTreeMap<(String, String), Plain> = BTreeMap::new();
    let mut months_in_order = Vec::new();
    for g in got["groups"].as_array().unwrap() {
        let keys = &g["keys"];
        let month = keys["month"].as_str().unwrap().to_string();
        if months_in_order.last() != Some(&month) {
            months_in_order.push(month.clone());
        }
        let t = &g["totals"];
        let e = folded
            .entry((site_key(keys["site"].as_str().unwrap()), month))
            .or_default();
        e.visits += t["visits"].as_u64().unwrap();
        e.minutes += t["minutes"].as_u64().unwrap();
        e.other += t["visits_other_agency"].as_u64().unwrap();
        e.courses += t["courses"].as_u64().unwrap();
        e.sessions += t["course_sessions"].as_u64().unwrap();
        e.participations += t["participations"].as_u64().unwrap();
        e.largest += t["course_participants"].as_u64().unwrap();
        assert_eq!(
            t["people_reached"].as_u64().unwrap(),
            t["visits"].as_u64().unwrap() + t["course_participants"].as_u64().unwrap(),
            "{g}"
        );
    }
    assert_eq!(
        folded, want,
        "stats --by month,site against the plain count"
    );
    let mut sorted = months_in_order.clone();
    sorted.sort();
    assert_eq!(months_in_order, sorted, "months in date order: {got}");

    // The totals: plain sums, and the course estimate per course over the
    // whole year (not the sum of per-month estimates).
    let t = &got["total"];
    let visits: u64 = want.values().map(|p| p.visits).sum();
    assert_eq!(t["visits"], json!(visits));
    let participations: u64 = want.values().map(|p| p.participations).sum();
    assert_eq!(t["participations"], json!(participations));
    let largest: u64 = exported
        .iter()
        .filter(|r| r["kind"] == "course")
        .map(|r| {
            r["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| in_year(s["date"].as_str().unwrap(), "2025"))
                .map(|s| s["participants"].as_u64().unwrap())
                .max()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(t["course_participants"], json!(largest));
    assert_eq!(t["people_reached"], json!(visits + largest));

    // The annual report shows the same figures, in Swedish formats, from one
    // file that loads nothing.
    let html_path = td.path().join("rapport-2025.html");
    td.ok(&[
        "report",
        "--year",
        "2025",
        "-o",
        html_path.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("Årsrapport 2025 – mjolby"), "{html}");
    let other: u64 = want.values().map(|p| p.other).sum();
    let share = format!("{:.1}\u{a0}%", other as f64 * 100.0 / visits as f64).replace('.', ",");
    assert!(
        html.contains(&share),
        "other-agency share {share} in the report"
    );
    let swedish = |n: u64| {
        let d = n.to_string();
        let mut out = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i).is_multiple_of(3) {
                out.push('\u{a0}');
            }
            out.push(c);
        }
        out
    };
    for (label, n) in [
        ("Besök", visits),
        ("Personer nådda (uppskattat)", visits + largest),
        ("Deltagartillfällen", participations),
        ("Kursdeltagare (uppskattat)", largest),
    ] {
        let cell = format!(
            "<th scope=\"row\">{label}</th><td class=\"num\">{}</td>",
            swedish(n)
        );
        assert!(html.contains(&cell), "{cell} in the report's summary");
    }
    for banned in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !html.contains(banned),
            "the report must load nothing: {banned}"
        );
    }
    let en_path = td.path().join("report-2025.html");
    td.ok(&[
        "report",
        "--year",
        "2025",
        "--lang",
        "en",
        "-o",
        en_path.to_str().unwrap(),
    ]);
    let en = std::fs::read_to_string(&en_path).unwrap();
    assert!(en.contains("Annual report 2025") && en.contains(r#"lang="en""#));
    let err = td.fails(&["report", "--year", "2025", "-o", "r.pdf"]);
    assert!(err.contains(".html"), "{err}");
}

#[test]
fn a_visit_with_several_assistive_needs_counts_in_each_group_and_once_in_total() {
    let td = TestDir::initialised();
    td.add_visit(&[
        "--assistive",
        "interpreter",
        "--assistive",
        "large_text",
        "--language",
        "ar",
    ]);
    td.add_visit(&["--language", "sv"]);
    let s = td.json(&["--json", "stats", "--by", "assistive,language"]);
    assert_eq!(s["total"]["visits"], json!(2), "{s}");
    let groups: Vec<(String, String, u64)> = s["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["keys"]["assistive"].as_str().unwrap().to_string(),
                g["keys"]["language"].as_str().unwrap().to_string(),
                g["totals"]["visits"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert!(groups.contains(&("interpreter".into(), "ar".into(), 1)));
    assert!(groups.contains(&("large_text".into(), "ar".into(), 1)));
    assert!(groups.contains(&("(none)".into(), "sv".into(), 1)));
    assert!(
        s["note"].as_str().unwrap().contains("once in the total"),
        "{s}"
    );
    let text = td.ok(&["stats", "--by", "assistive"]);
    assert!(text.contains("Note: a visit with several values"), "{text}");
}

#[test]
fn unknown_dimensions_and_mixed_ranges_are_refused_with_the_choices() {
    let td = TestDir::initialised();
    let err = td.fails(&["stats", "--by", "site,weekday"]);
    assert!(err.contains("age_band") && err.contains("weekday"), "{err}");
    let err = td.fails(&["stats", "--year", "2025", "--from", "2025-03"]);
    assert!(
        err.contains("--year") || err.contains("cannot be used"),
        "{err}"
    );
    let err = td.fails(&["stats", "--from", "2025-13"]);
    assert!(err.contains("YYYY-MM"), "{err}");
}

/// The HTML report as a person sees it: rendered by headless Chromium, with
/// a screenshot under `target/screenshots/` for review, and the figures read
/// back from the rendered page's text.
#[test]
fn the_html_report_renders_in_chromium() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!("chromium is needed to render the report; install it with: apt-get install -y chromium chromium-driver")
        });
    let td = TestDir::initialised();
    td.add_visit(&["--service", "BankID", "--date", "2025-03-04"]);
    td.add_visit(&["--service", "Skola", "--date", "2025-05-04"]);
    let course = td.add_course("Nybörjarkurs internet", &["--partner", "Medborgarskolan"]);
    td.add_session(&course, "2025-03-10", 90, 8);
    td.add_session(&course, "2025-03-17", 90, 9);
    let html = td.path().join("rapport.html");
    td.ok(&["report", "--year", "2025", "-o", html.to_str().unwrap()]);

    let shots = outpost_tests::outpost_bin()
        .parent()
        .and_then(|p| p.parent())
        .expect("the target directory")
        .join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report-2025-sv.png");
    let _ = std::fs::remove_file(&png);
    let url = format!("file://{}", html.display());
    let profile = td.path().join("chromium-profile");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1000,2400",
    ]);
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "a real picture of the report, not a blank page ({} bytes)",
        bytes.len()
    );
    let dom = String::from_utf8(run(&["--dump-dom"])).unwrap();
    assert!(dom.contains("Årsrapport 2025"), "{dom}");
    // 2 visits + 9 (the course's largest session); 17 participations.
    assert!(
        dom.contains(r#"<th scope="row">Personer nådda (uppskattat)</th><td class="num">11</td>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<th scope="row">Deltagartillfällen</th><td class="num">17</td>"#),
        "{dom}"
    );
    assert!(
        dom.contains("50,0"),
        "one of two visits is another agency's: {dom}"
    );
}

/// The generated data set imported into a fresh laptop store; returns the
/// store and the records as `export --format jsonl` gives them back.
fn imported() -> (TestDir, Vec<Value>) {
    let td = TestDir::initialised();
    let device = td.json(&["--json", "status"])["device"]
        .as_str()
        .unwrap()
        .to_string();
    let records = generate(&mut Lcg(20251), &device);
    let file = td.path().join("generated.jsonl");
    let text: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    td.ok(&["import", file.to_str().unwrap()]);
    let exported: Vec<Value> = td
        .ok(&["export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), records.len(), "every record imported");
    (td, exported)
}

/// LibreOffice's `soffice`, or a failure that says how to install it.
fn soffice() -> &'static str {
    ["soffice", "libreoffice"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!("LibreOffice is needed to read the XLSX report back; install it with: apt-get install -y libreoffice-calc-nogui")
        })
}

/// Every sheet of `xlsx` as CSV rows, by sheet name, converted by
/// LibreOffice headless with a private profile (parallel tests do not
/// share one). Values are written unformatted (0.812, not 81,2 %).
fn sheets_by_libreoffice(
    xlsx: &std::path::Path,
    work: &std::path::Path,
) -> BTreeMap<String, Vec<Vec<String>>> {
    let out = work.join("csv");
    std::fs::create_dir_all(&out).unwrap();
    let profile = work.join("lo-profile");
    let result = std::process::Command::new(soffice())
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.display()
        ))
        .args([
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            "--outdir",
        ])
        .arg(&out)
        .arg(xlsx)
        .output()
        .expect("soffice runs");
    assert!(
        result.status.success(),
        "LibreOffice could not convert the report: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stem = xlsx.file_stem().unwrap().to_str().unwrap().to_string();
    let mut sheets = BTreeMap::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let sheet = name
            .strip_prefix(&format!("{stem}-"))
            .unwrap_or(&name)
            .to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        sheets.insert(sheet, outpost_tests::parse_csv(&text, ','));
    }
    sheets
}

fn int(cell: &str) -> u64 {
    cell.trim()
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("{cell:?} is not a number")) as u64
}

/// The rows of a sheet's block that starts with `header` (first cell),
/// until an empty row.
fn block<'a>(rows: &'a [Vec<String>], header: &str) -> &'a [Vec<String>] {
    let start = rows
        .iter()
        .position(|r| r.first().is_some_and(|c| c == header))
        .unwrap_or_else(|| panic!("no block {header:?} in {rows:?}"))
        + 1;
    let end = rows[start..]
        .iter()
        .position(|r| r.iter().all(|c| c.is_empty()))
        .map_or(rows.len(), |n| start + n);
    &rows[start..end]
}

#[test]
fn the_xlsx_report_read_back_by_libreoffice_agrees_with_the_plain_count() {
    let (td, exported) = imported();
    let xlsx = td.path().join("rapport-2025.xlsx");
    td.ok(&["report", "--year", "2025", "-o", xlsx.to_str().unwrap()]);

    // Native charts: one part per chart in the zip.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&xlsx).unwrap()).unwrap();
    let charts = zip
        .file_names()
        .filter(|n| n.starts_with("xl/charts/chart") && n.ends_with(".xml"))
        .count();
    // Sites × months, sites, owner share, agencies, barriers, outcomes,
    // referrals, age bands, languages, assistive needs, courses by partner.
    assert_eq!(charts, 11, "native charts in the workbook");
    let mut styles = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/styles.xml").unwrap(), &mut styles).unwrap();
    assert!(
        styles.contains("0.0 %"),
        "a Swedish percent format: {styles}"
    );

    let sheets = sheets_by_libreoffice(&xlsx, td.path());
    let want = plain(&exported, "2025");
    let visits: u64 = want.values().map(|p| p.visits).sum();
    let largest: u64 = want.values().map(|p| p.largest).sum();
    let participations: u64 = want.values().map(|p| p.participations).sum();
    let other: u64 = want.values().map(|p| p.other).sum();

    // The summary's key figures. The course estimate of the year is per
    // course over the year, which the per-month oracle would overstate, so
    // it is computed here per course.
    let summary = &sheets["Sammanfattning"];
    let figure = |label: &str| -> String {
        summary
            .iter()
            .find(|r| r.first().is_some_and(|c| c == label))
            .unwrap_or_else(|| panic!("no {label:?} in the summary: {summary:?}"))[1]
            .clone()
    };
    let year_largest: u64 = exported
        .iter()
        .filter(|r| r["kind"] == "course")
        .map(|r| {
            r["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| in_year(s["date"].as_str().unwrap(), "2025"))
                .map(|s| s["participants"].as_u64().unwrap())
                .max()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(int(&figure("Besök")), visits);
    assert_eq!(int(&figure("Deltagartillfällen")), participations);
    assert_eq!(int(&figure("Kursdeltagare (uppskattat)")), year_largest);
    assert_eq!(
        int(&figure("Personer nådda (uppskattat)")),
        visits + year_largest
    );
    // LibreOffice writes a percent cell as shown by its format even in an
    // unformatted export (`39.8%`), so the value is read back to a tenth of
    // a percent.
    let cell = figure("Andel frågor om andra myndigheters e-tjänster");
    let share: f64 = match cell.trim().strip_suffix('%') {
        Some(p) => p.trim().replace(',', ".").parse::<f64>().unwrap() / 100.0,
        None => cell.trim().parse().unwrap(),
    };
    assert!(
        (share - other as f64 / visits as f64).abs() <= 0.0005 + 1e-12,
        "share {cell} against {other}/{visits}"
    );

    // People reached per site and month: the table behind the chart.
    let mut reached: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in block(&sheets["Platser och månader"], "Plats") {
        for m in 1..=12 {
            let n = int(&row[m]);
            if n > 0 {
                *reached
                    .entry((site_key(&row[0]), format!("2025-{m:02}")))
                    .or_default() += n;
            }
        }
    }
    let want_reached: BTreeMap<(String, String), u64> = want
        .iter()
        .map(|(k, p)| (k.clone(), p.visits + p.largest))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(reached, want_reached, "people reached per site and month");
    assert!(largest >= year_largest);

    // Other agencies' share, barriers per e-service, courses by partner.
    let scopes = block(&sheets["Myndigheter"], "Vems e-tjänst");
    assert_eq!(int(&scopes[0][1]), other, "{scopes:?}");
    let mut barriers: BTreeMap<String, u64> = BTreeMap::new();
    for r in exported.iter().filter(|r| r["kind"] == "visit") {
        if in_year(r["date"].as_str().unwrap(), "2025") {
            for b in r["barriers"].as_array().unwrap() {
                *barriers
                    .entry(b["service"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    let got: BTreeMap<String, u64> = block(&sheets["Hinder"], "E-tjänst")
        .iter()
        .map(|r| (r[0].clone(), int(&r[1])))
        .collect();
    assert_eq!(got, barriers, "barriers per e-service");
    let mut partners: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in exported.iter().filter(|r| r["kind"] == "course") {
        let sizes: Vec<u64> = r["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| in_year(s["date"].as_str().unwrap(), "2025"))
            .map(|s| s["participants"].as_u64().unwrap())
            .collect();
        if sizes.is_empty() {
            continue;
        }
        let e = partners
            .entry(r["partner"].as_str().unwrap().to_string())
            .or_default();
        e.0 += sizes.iter().sum::<u64>();
        e.1 += sizes.iter().max().copied().unwrap_or(0);
    }
    let got: BTreeMap<String, (u64, u64)> = block(&sheets["Kurser per partner"], "Partner")
        .iter()
        .map(|r| (r[0].clone(), (int(&r[3]), int(&r[4]))))
        .collect();
    assert_eq!(got, partners, "participations and participants per partner");

    // The records of the year, one row per visit and per session.
    let sessions: usize = exported
        .iter()
        .filter(|r| r["kind"] == "course")
        .flat_map(|r| r["sessions"].as_array().unwrap().iter())
        .filter(|s| in_year(s["date"].as_str().unwrap(), "2025"))
        .count();
    assert_eq!(sheets["Visits"].len() as u64 - 1, visits, "visit rows");
    assert_eq!(sheets["Courses"].len() - 1, sessions, "session rows");

    // English labels on request.
    let en = td.path().join("report-2025.xlsx");
    td.ok(&[
        "report",
        "--year",
        "2025",
        "--lang",
        "en",
        "-o",
        en.to_str().unwrap(),
    ]);
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&en).unwrap()).unwrap();
    let mut workbook = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/workbook.xml").unwrap(), &mut workbook)
        .unwrap();
    assert!(
        workbook.contains(r#"name="Summary""#) && workbook.contains(r#"name="Sites and months""#),
        "{workbook}"
    );
}
