//! The `outpost` command line contract (DESIGN.md sections 2, 3, 4 and 6),
//! checked by running the real binary against a temporary data directory.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use outpost_tests::{SITE, STAFF, TestDir, is_uuid, outpost_command, parse_csv};
use serde_json::{Value, json};

/// The contract's visit field names (section 2 and 3).
const VISIT_KEYS: &[&str] = &[
    "id",
    "kind",
    "org",
    "site",
    "staff",
    "device",
    "created_at",
    "updated_at",
    "date",
    "time",
    "minutes",
    "channel",
    "services",
    "category",
    "outcome",
    "referred_to",
    "age_band",
    "language",
    "assistive",
    "barriers",
    "sensitive",
    "note",
];

const CSV_HEADER: &str = "id,org,site,staff,date,time,minutes,channel,services,agencies,category,outcome,referred_to,age_band,language,assistive,barriers,sensitive,note,device,created_at,updated_at";

fn obj(v: &Value) -> &serde_json::Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("{v} is not an object"))
}

/// Updated_at is stored to the second; wait so an edit gets a new one.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

// ---- init -----------------------------------------------------------------

#[test]
fn init_prints_only_the_device_id_and_refuses_a_second_init() {
    let td = TestDir::new();
    let out = td.ok(&["init", "--org", "mjolby", "--site", SITE, "--staff", STAFF]);
    assert_eq!(
        out.lines().count(),
        1,
        "init printed more than the id: {out:?}"
    );
    let device = out.trim();
    assert!(is_uuid(device), "init printed {out:?}, not a UUID");
    assert_eq!(out, format!("{device}\n"));

    let err = td.fails(&["init", "--org", "mjolby", "--site", SITE, "--staff", STAFF]);
    assert!(
        err.contains("already"),
        "second init should say a store already exists: {err}"
    );
    // The first identity is kept.
    let status = td.json(&["--json", "status"]);
    assert_eq!(status["device"], json!(device));
}

#[test]
fn init_json_names_the_device() {
    let td = TestDir::new();
    let v = td.json(&[
        "--json", "init", "--org", "mjolby", "--site", SITE, "--staff", STAFF,
    ]);
    let map = obj(&v);
    assert_eq!(map.len(), 1, "init --json printed {v}");
    assert!(is_uuid(v["device"].as_str().unwrap_or("")), "{v}");
}

#[test]
fn commands_before_init_say_to_run_init() {
    let td = TestDir::new();
    for args in [
        TestDir::visit_args(&[]),
        vec!["list"],
        vec!["show", "12345678"],
        vec!["status"],
        vec!["export", "--format", "jsonl"],
        vec!["stats"],
        vec!["course", "add", "--title", "Nybörjarkurs internet"],
        vec!["delete", "00000000-0000-4000-8000-000000000000"],
    ] {
        let err = td.fails(&args);
        assert!(
            err.contains("outpost init"),
            "`outpost {}` before init should point at `outpost init`: {err}",
            args.join(" ")
        );
    }
}

// ---- visit add, list, show -----------------------------------------------

#[test]
fn visit_add_prints_only_the_id_and_list_has_every_contract_field() {
    let td = TestDir::initialised();
    let device = td.json(&["--json", "status"])["device"].clone();
    let out = td.ok(&TestDir::visit_args(&[
        "--date",
        "2025-03-04",
        "--time",
        "13:30",
        "--minutes",
        "25",
        "--service",
        "BankID",
        "--service",
        "Försäkringskassan",
        "1177",
        "--barrier",
        "BankID:login:glömt koden",
        "--barrier",
        "1177:navigation",
        "--assistive",
        "interpreter",
        "large_text",
        "--sensitive",
        "--referred-to",
        "Försäkringskassans kundtjänst",
        "--note",
        "Hjälp med inloggning, allt gick bra",
    ]));
    let id = out.trim();
    assert!(is_uuid(id), "visit add printed {out:?}");
    assert_eq!(out, format!("{id}\n"), "visit add must print only the id");

    let list = td.list(&[]);
    assert_eq!(list.len(), 1);
    let r = &list[0];
    let keys: BTreeSet<&str> = obj(r).keys().map(String::as_str).collect();
    for k in VISIT_KEYS {
        assert!(keys.contains(k), "list --json lacks `{k}`: {r}");
    }
    assert_eq!(r["id"], json!(id));
    assert_eq!(r["kind"], json!("visit"));
    assert_eq!(r["org"], json!("mjolby"));
    assert_eq!(r["site"], json!(SITE));
    assert_eq!(r["staff"], json!(STAFF));
    assert_eq!(r["device"], device);
    assert_eq!(r["date"], json!("2025-03-04"));
    assert_eq!(r["time"], json!("13:30"));
    assert_eq!(r["minutes"], json!(25));
    assert_eq!(r["channel"], json!("drop_in"));
    assert_eq!(
        r["services"],
        json!(["BankID", "Försäkringskassan", "1177"])
    );
    assert_eq!(r["category"], json!("e_service"));
    assert_eq!(r["outcome"], json!("solved"));
    assert_eq!(r["referred_to"], json!("Försäkringskassans kundtjänst"));
    assert_eq!(r["age_band"], json!("65_79"));
    assert_eq!(r["language"], json!("sv"));
    assert_eq!(r["assistive"], json!(["interpreter", "large_text"]));
    assert_eq!(r["sensitive"], json!(true));
    assert_eq!(r["note"], json!("Hjälp med inloggning, allt gick bra"));
    let barriers = r["barriers"].as_array().expect("barriers is a list");
    assert_eq!(barriers.len(), 2, "{r}");
    assert_eq!(barriers[0]["service"], json!("BankID"));
    assert_eq!(barriers[0]["kind"], json!("login"));
    assert_eq!(barriers[0]["note"], json!("glömt koden"));
    assert_eq!(barriers[1]["service"], json!("1177"));
    assert_eq!(barriers[1]["kind"], json!("navigation"));
    assert!(
        barriers[1]["note"].is_null(),
        "a barrier without a note has no note: {r}"
    );
    for ts in ["created_at", "updated_at"] {
        let t = r[ts].as_str().unwrap_or("");
        assert!(
            t.len() >= 20 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T',
            "{ts} is not RFC 3339: {t:?}"
        );
    }
}

#[test]
fn visit_add_json_names_the_id_and_defaults_and_overrides_apply() {
    let td = TestDir::initialised();
    let v = td.json(&{
        let mut a = vec!["--json"];
        a.extend(TestDir::visit_args(&[]));
        a
    });
    assert_eq!(obj(&v).len(), 1, "visit add --json printed {v}");
    let first = v["id"].as_str().expect("{\"id\": …}").to_string();
    assert!(is_uuid(&first));

    let other = td.add_visit(&["--site", "Skänninge bibliotek", "--staff", "CD"]);
    let a = td.show(&first);
    assert_eq!(a["site"], json!(SITE), "default site from init");
    assert_eq!(a["staff"], json!(STAFF));
    assert_eq!(a["sensitive"], json!(false), "no --sensitive means false");
    assert!(a["time"].is_null() && a["note"].is_null() && a["referred_to"].is_null());
    assert_eq!(a["assistive"], json!([]));
    assert_eq!(a["barriers"], json!([]));
    let b = td.show(&other);
    assert_eq!(b["site"], json!("Skänninge bibliotek"));
    assert_eq!(b["staff"], json!("CD"));
    assert_eq!(td.list_ids(&["--site", "skänninge bibliotek"]), vec![other]);
}

#[test]
fn list_site_filter_is_case_insensitive_for_swedish_letters() {
    let td = TestDir::initialised();
    let ods = td.add_visit(&["--site", "Ödeshögs bibliotek"]);
    let aby = td.add_visit(&["--site", "Åby bibliotek"]);
    td.add_visit(&[]);
    // The site exactly as it was typed.
    assert_eq!(
        td.list_ids(&["--site", "Ödeshögs bibliotek"]),
        vec![ods.clone()],
        "list --site with the exact site name finds nothing"
    );
    // Case-insensitive, as `outpost list --help` promises.
    assert_eq!(td.list_ids(&["--site", "ödeshögs bibliotek"]), vec![ods]);
    assert_eq!(td.list_ids(&["--site", "ÅBY BIBLIOTEK"]), vec![aby]);
    assert_eq!(td.list_ids(&["--site", "MJÖLBY BIBLIOTEK"]).len(), 1);
}

#[test]
fn an_unknown_service_is_saved_with_a_warning_and_stdout_stays_the_id() {
    let td = TestDir::initialised();
    let (status, stdout, stderr) =
        td.run(&TestDir::visit_args(&["--service", "Okänd lokal tjänst"]));
    assert!(status.success(), "{stderr}");
    let id = stdout.trim();
    assert!(is_uuid(id) && stdout == format!("{id}\n"), "{stdout:?}");
    assert!(
        stderr.contains("Okänd lokal tjänst") && stderr.contains("unknown"),
        "an unknown service is saved with a warning: {stderr}"
    );
    assert_eq!(td.show(id)["services"], json!(["Okänd lokal tjänst"]));
    let s = td.json(&["--json", "stats", "--by", "agency"]);
    assert_eq!(s["total"]["visits_unknown_agency"], json!(1), "{s}");
    assert_eq!(s["total"]["share_other_agency"], json!(0.0), "{s}");
}

#[test]
fn show_text_json_and_prefix() {
    let td = TestDir::initialised();
    let id = td.add_visit(&["--note", "Visade hur man byter lösenord"]);
    let text = td.ok(&["show", &id]);
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("Visade hur man byter lösenord"), "{text}");
    assert!(text.contains("2025-03-04"), "{text}");

    let v = td.show(&id);
    assert_eq!(v["id"], json!(id));
    assert_eq!(
        v["conflicts"],
        json!({}),
        "show --json has an empty conflicts object"
    );

    let by_prefix = td.show(&id[..8]);
    assert_eq!(by_prefix, v, "an 8-character prefix shows the same record");
    let text_prefix = td.ok(&["show", &id[..8]]);
    assert_eq!(text_prefix, text);
}

// ---- edit -------------------------------------------------------------------

#[test]
fn edit_changes_only_the_given_fields_and_updated_at() {
    let td = TestDir::initialised();
    let id = td.add_visit(&["--note", "Första versionen", "--time", "10:00"]);
    let before = td.show(&id);
    next_second();
    td.ok(&["edit", &id, "--outcome", "partly", "--minutes", "45"]);
    let after = td.show(&id);
    assert_eq!(after["outcome"], json!("partly"));
    assert_eq!(after["minutes"], json!(45));
    assert_ne!(
        after["updated_at"], before["updated_at"],
        "an edit must move updated_at"
    );
    assert_eq!(after["created_at"], before["created_at"]);
    for (k, v) in obj(&before) {
        if !["outcome", "minutes", "updated_at"].contains(&k.as_str()) {
            assert_eq!(&after[k], v, "edit changed `{k}`, which was not asked for");
        }
    }
    assert_eq!(obj(&after).len(), obj(&before).len());
}

#[test]
fn edit_course_title_and_clear_a_note() {
    let td = TestDir::initialised();
    let course = td.add_course("Nybörjarkurs internet", &["--note", "Fem träffar"]);
    td.ok(&["edit", &course, "--title", "Frihet och säkerhet på nätet"]);
    let c = td.show(&course);
    assert_eq!(c["title"], json!("Frihet och säkerhet på nätet"));
    assert_eq!(c["note"], json!("Fem träffar"));

    let visit = td.add_visit(&["--note", "Ska bort"]);
    td.ok(&["edit", &visit, "--note", ""]);
    let v = td.show(&visit);
    assert!(v["note"].is_null(), "--note \"\" must clear the note: {v}");
    assert_eq!(v["outcome"], json!("solved"));
}

// ---- courses ------------------------------------------------------------------

#[test]
fn course_add_session_show_and_list_by_kind() {
    let td = TestDir::initialised();
    let visit = td.add_visit(&[]);
    let out = td.ok(&[
        "course",
        "add",
        "--title",
        "Nybörjarkurs internet",
        "--partner",
        "Medborgarskolan",
        "--target-group",
        "Seniorer",
    ]);
    let course = out.trim().to_string();
    assert!(is_uuid(&course) && out == format!("{course}\n"), "{out:?}");

    let out = td.ok(&[
        "course",
        "session",
        &course[..8],
        "--date",
        "2025-03-10",
        "--time",
        "14:00",
        "--minutes",
        "90",
        "--participants",
        "12",
        "--instructor",
        "EF",
    ]);
    let session = out.trim().to_string();
    assert!(!session.is_empty() && out.lines().count() == 1, "{out:?}");
    let session2 = td.add_session(&course, "2025-03-17", 60, 0);
    assert_ne!(session, session2);

    let c = td.show(&course);
    assert_eq!(c["kind"], json!("course"));
    assert_eq!(c["title"], json!("Nybörjarkurs internet"));
    assert_eq!(c["partner"], json!("Medborgarskolan"));
    assert_eq!(c["target_group"], json!("Seniorer"));
    let sessions = c["sessions"].as_array().expect("sessions list");
    assert_eq!(sessions.len(), 2, "{c}");
    assert_eq!(sessions[0]["id"], json!(session));
    assert_eq!(sessions[0]["date"], json!("2025-03-10"));
    assert_eq!(sessions[0]["time"], json!("14:00"));
    assert_eq!(sessions[0]["minutes"], json!(90));
    assert_eq!(sessions[0]["participants"], json!(12));
    assert_eq!(sessions[0]["instructor"], json!("EF"));
    assert_eq!(sessions[1]["participants"], json!(0));

    let text = td.ok(&["show", &course]);
    assert!(
        text.contains("2025-03-10") && text.contains("2025-03-17"),
        "{text}"
    );
    assert!(text.contains(&session), "show lists the session: {text}");

    assert_eq!(td.list_ids(&["--kind", "course"]), vec![course.clone()]);
    assert_eq!(td.list_ids(&["--kind", "visit"]), vec![visit.clone()]);
    let mut all = vec![visit.clone(), course];
    all.sort();
    assert_eq!(td.list_ids(&[]), all);

    // A session cannot be added to a visit.
    let err = td.fails(&[
        "course",
        "session",
        &visit,
        "--date",
        "2025-03-10",
        "--minutes",
        "60",
        "--participants",
        "3",
    ]);
    assert!(err.contains("course"), "{err}");
}

#[test]
fn list_from_to_filters_visits_and_courses() {
    let td = TestDir::initialised();
    let jan = td.add_visit(&["--date", "2025-01-15"]);
    let feb = td.add_visit(&["--date", "2025-02-10"]);
    let mar = td.add_visit(&["--date", "2025-03-20"]);
    let course = td.add_course("Frihet och säkerhet på nätet", &[]);
    td.add_session(&course, "2025-02-01", 60, 5);
    td.add_session(&course, "2025-02-20", 60, 7);

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        td.list_ids(&["--from", "2025-02-01", "--to", "2025-02-28"]),
        sorted(vec![feb.clone(), course.clone()])
    );
    assert_eq!(td.list_ids(&["--from", "2025-03-01"]), vec![mar.clone()]);
    assert_eq!(td.list_ids(&["--to", "2025-01-31"]), vec![jan.clone()]);
    // Both ends are inclusive; a course counts if any of its sessions do.
    assert_eq!(
        td.list_ids(&["--from", "2025-02-10", "--to", "2025-02-10"]),
        sorted(vec![feb.clone(), course.clone()])
    );
    assert_eq!(
        td.list_ids(&["--from", "2025-01-15", "--to", "2025-01-15"]),
        vec![jan.clone()]
    );
    assert_eq!(
        td.list_ids(&["--kind", "course", "--from", "2025-02-21"]),
        Vec::<String>::new()
    );
    assert_eq!(
        td.list_ids(&[
            "--kind",
            "visit",
            "--from",
            "2025-02-01",
            "--to",
            "2025-12-31"
        ]),
        sorted(vec![feb, mar])
    );
}

// ---- delete -------------------------------------------------------------------

#[test]
fn delete_removes_the_record_and_edit_after_delete_fails() {
    let td = TestDir::initialised();
    let keep = td.add_visit(&["--note", "Behålls"]);
    let gone = td.add_visit(&["--note", "Raderas"]);
    td.ok(&["delete", &gone]);

    assert_eq!(td.list_ids(&[]), vec![keep.clone()]);
    let err = td.fails(&["show", &gone]);
    assert!(
        err.contains("deleted"),
        "show should say it was deleted: {err}"
    );

    let (status, _, stderr) = td.run(&["delete", &gone]);
    outpost_tests::assert_not_a_crash(&["delete", &gone], status, &stderr);
    assert!(
        status.success() || stderr.contains("deleted") || stderr.contains(&gone),
        "a second delete should succeed or say why: {stderr}"
    );

    let before = td.snapshot();
    let err = td.fails(&["edit", &gone, "--outcome", "partly"]);
    assert!(
        err.contains("deleted"),
        "edit after delete should say so: {err}"
    );
    assert_eq!(td.snapshot(), before);
    assert_eq!(td.show(&keep)["note"], json!("Behålls"));

    let status = td.json(&["--json", "status"]);
    assert_eq!(status["records"], json!(1));
}

// ---- export -------------------------------------------------------------------

#[test]
fn export_csv_has_the_contract_header_and_a_row_per_visit() {
    let td = TestDir::initialised();
    let a = td.add_visit(&[
        "--service",
        "BankID",
        "Förskola",
        "--barrier",
        "BankID:login:glömt koden",
        "--assistive",
        "interpreter",
        "large_text",
        "--note",
        "Komma, och \"citat\"",
        "--time",
        "09:05",
    ]);
    let b = td.add_visit(&["--date", "2025-04-01", "--minutes", "15"]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 60, 4);

    let text = td.ok(&["export", "--format", "csv"]);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER), "CSV header");
    let rows = parse_csv(&text, ',');
    assert_eq!(rows.len(), 3, "header and one row per visit: {text}");
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row_a = rows.iter().find(|r| r[0] == a).expect("row of visit a");
    let row_b = rows.iter().find(|r| r[0] == b).expect("row of visit b");
    for row in [row_a, row_b] {
        assert_eq!(row.len(), header.len());
    }
    assert_eq!(row_a[col("services")], "BankID|Förskola");
    // Each service's agency through the built-in catalogue, each once.
    assert_eq!(row_a[col("agencies")], "BankID (bankerna)|Kommunen");
    assert_eq!(row_a[col("assistive")], "interpreter|large_text");
    assert_eq!(row_a[col("barriers")], "BankID:login:glömt koden");
    assert_eq!(row_a[col("note")], "Komma, och \"citat\"");
    assert_eq!(row_a[col("time")], "09:05");
    assert_eq!(row_a[col("org")], "mjolby");
    assert_eq!(row_a[col("site")], SITE);
    assert_eq!(row_a[col("sensitive")], "false");
    assert_eq!(row_b[col("date")], "2025-04-01");
    assert_eq!(row_b[col("minutes")], "15");
    assert_eq!(row_b[col("time")], "");

    // --from/--to apply to exports too.
    let text = td.ok(&["export", "--format", "csv", "--from", "2025-04-01"]);
    let rows = parse_csv(&text, ',');
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[1][0], b);
}

#[test]
fn export_excel_csv_has_a_bom_and_semicolons() {
    let td = TestDir::initialised();
    let id = td.add_visit(&["--service", "BankID", "Skatteverket"]);
    let out = td
        .command(&["export", "--format", "csv", "--excel"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.starts_with(&[0xEF, 0xBB, 0xBF]),
        "--excel must start with a UTF-8 BOM: {:?}",
        &out.stdout[..out.stdout.len().min(8)]
    );
    let text = String::from_utf8(out.stdout[3..].to_vec()).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first.trim_end_matches('\r'), CSV_HEADER.replace(',', ";"));
    let rows = parse_csv(&text, ';');
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][0], id);
    assert_eq!(rows[1][8], "BankID|Skatteverket");
}

#[test]
fn export_jsonl_matches_list_json() {
    let td = TestDir::initialised();
    td.add_visit(&["--note", "Första"]);
    td.add_visit(&["--date", "2025-01-02", "--barrier", "BankID:bankid"]);
    let course = td.add_course("Nybörjarkurs internet", &["--partner", "SeniorNet"]);
    td.add_session(&course, "2025-03-10", 60, 4);

    let text = td.ok(&["export", "--format", "jsonl"]);
    let by_id = |items: Vec<Value>| -> BTreeMap<String, Value> {
        items
            .into_iter()
            .map(|v| (v["id"].as_str().unwrap().to_string(), v))
            .collect()
    };
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL line {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 3, "one line per record: {text}");
    assert_eq!(by_id(lines), by_id(td.list(&[])));
}

#[test]
fn export_xlsx_writes_a_zip_file() {
    let td = TestDir::initialised();
    td.add_visit(&[]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 60, 4);
    let file = td.path().join("export.xlsx");
    let out = td.ok(&["export", "--format", "xlsx", "-o", file.to_str().unwrap()]);
    assert!(out.is_empty(), "with -o nothing goes to stdout: {out:?}");
    let bytes = std::fs::read(&file).expect("the xlsx file");
    assert!(bytes.starts_with(b"PK"), "XLSX is a zip");
    assert!(
        bytes.len() > 1000,
        "{} bytes is too small for a workbook",
        bytes.len()
    );
    // One sheet per kind: zip entry names are stored uncompressed.
    for sheet in ["xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"] {
        assert!(
            outpost_tests::contains_bytes(&bytes, sheet.as_bytes()),
            "a workbook with visits and courses should have {sheet}"
        );
    }
    assert!(
        !outpost_tests::contains_bytes(&bytes, b"xl/worksheets/sheet3.xml"),
        "two kinds, two sheets"
    );

    // CSV to a file: the file has the export, stdout stays empty.
    let csv = td.path().join("visits.csv");
    let out = td.ok(&["export", "--format", "csv", "-o", csv.to_str().unwrap()]);
    assert!(out.is_empty(), "{out:?}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().next(), Some(CSV_HEADER));
    assert_eq!(text.lines().count(), 2);
}

/// `--from`/`--to` on a course export should give the sessions held in the
/// range, as `stats` counts them: a report made from the spreadsheet must
/// agree with `outpost stats` for the same period.
#[test]
fn course_csv_export_with_a_date_range_has_only_sessions_in_the_range() {
    let td = TestDir::initialised();
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-02-01", 60, 3);
    let march = td.add_session(&course, "2025-03-10", 60, 5);
    td.add_session(&course, "2025-04-01", 60, 7);
    let range = ["--from", "2025-03-01", "--to", "2025-03-31"];

    let stats = td.json(&[&["--json", "stats"][..], &range[..]].concat());
    assert_eq!(stats["total"]["course_sessions"], json!(1), "{stats}");
    assert_eq!(stats["total"]["course_participants"], json!(5), "{stats}");

    let text = td.ok(&[
        &["export", "--kind", "course", "--format", "csv"][..],
        &range[..],
    ]
    .concat());
    let rows = parse_csv(&text, ',');
    let col = rows[0].iter().position(|h| h == "session_id").unwrap();
    let sessions: Vec<&str> = rows[1..].iter().map(|r| r[col].as_str()).collect();
    assert_eq!(
        sessions,
        vec![march.as_str()],
        "export --from 2025-03-01 --to 2025-03-31 should hold only the March session \
         (stats counts 1 session, 5 participants):\n{text}"
    );
}

#[test]
fn export_course_csv_has_a_row_per_session() {
    let td = TestDir::initialised();
    td.add_visit(&[]);
    let c1 = td.add_course("Nybörjarkurs internet", &["--partner", "Medborgarskolan"]);
    let s1 = td.add_session(&c1, "2025-03-10", 90, 12);
    let s2 = td.add_session(&c1, "2025-03-17", 60, 8);
    let c2 = td.add_course("Frihet och säkerhet på nätet", &[]);
    let s3 = td.add_session(&c2, "2025-04-01", 45, 3);

    let text = td.ok(&["export", "--kind", "course", "--format", "csv"]);
    let rows = parse_csv(&text, ',');
    assert_eq!(rows.len(), 4, "header and one row per session: {text}");
    let header = &rows[0];
    assert_eq!(&header[..4], &["id", "org", "site", "staff"]);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no `{name}` column in {header:?}"))
    };
    let mut got: Vec<(String, String, String)> = rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len());
            (
                r[0].clone(),
                r[col("participants")].clone(),
                r[col("title")].clone(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (
            c1.clone(),
            "12".to_string(),
            "Nybörjarkurs internet".to_string(),
        ),
        (
            c1.clone(),
            "8".to_string(),
            "Nybörjarkurs internet".to_string(),
        ),
        (
            c2.clone(),
            "3".to_string(),
            "Frihet och säkerhet på nätet".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    let text_ids = [s1, s2, s3];
    for s in &text_ids {
        assert!(text.contains(s.as_str()), "session {s} missing from {text}");
    }
}

// ---- stats --------------------------------------------------------------------

#[test]
fn stats_counts_visits_minutes_people_and_other_agency_share() {
    let td = TestDir::initialised();
    // Two visits about another agency's e-service, two about the
    // municipality's own.
    td.add_visit(&["--service", "BankID", "--minutes", "30"]);
    td.add_visit(&["--service", "Försäkringskassan", "--minutes", "45"]);
    td.add_visit(&[
        "--service",
        "Förskola",
        "--minutes",
        "20",
        "--site",
        "Skänninge bibliotek",
    ]);
    td.add_visit(&[
        "--service",
        "Skola",
        "--minutes",
        "15",
        "--outcome",
        "partly",
    ]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 90, 12);
    td.add_session(&course, "2025-03-17", 60, 8);

    let s = td.json(&["--json", "stats"]);
    let t = &s["total"];
    assert_eq!(t["visits"], json!(4), "{s}");
    assert_eq!(t["course_sessions"], json!(2), "{s}");
    assert_eq!(
        t["people_reached"],
        json!(4 + 12),
        "visits + course participants, estimated as the largest session: {s}"
    );
    // Minutes of help: visit minutes plus course-session minutes.
    assert_eq!(t["minutes"], json!(30 + 45 + 20 + 15 + 90 + 60), "{s}");
    let share = t["share_other_agency"]
        .as_f64()
        .expect("share_other_agency");
    assert!(
        (share - 0.5).abs() < 1e-9,
        "2 of 4 visits are another agency's: {s}"
    );
    assert_eq!(t["outcomes"]["solved"], json!(3), "{s}");
    assert_eq!(t["outcomes"]["partly"], json!(1), "{s}");

    let by = td.json(&["--json", "stats", "--by", "site"]);
    let groups: BTreeMap<String, Value> = by["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["key"].as_str().unwrap().to_string(), g["totals"].clone()))
        .collect();
    assert_eq!(groups.len(), 2, "{by}");
    assert_eq!(groups[SITE]["visits"], json!(3), "{by}");
    assert_eq!(groups[SITE]["people_reached"], json!(3 + 12), "{by}");
    assert_eq!(groups[SITE]["participations"], json!(12 + 8), "{by}");
    assert_eq!(groups["Skänninge bibliotek"]["visits"], json!(1), "{by}");
    assert_eq!(groups["Skänninge bibliotek"]["minutes"], json!(20), "{by}");
    assert_eq!(
        by["total"], s["total"],
        "grouping does not change the total"
    );

    // A date range counts only what falls in it.
    let march = td.json(&[
        "--json",
        "stats",
        "--from",
        "2025-03-05",
        "--to",
        "2025-03-12",
    ]);
    assert_eq!(march["total"]["visits"], json!(0), "{march}");
    assert_eq!(march["total"]["people_reached"], json!(12), "{march}");

    let text = td.ok(&["stats"]);
    assert!(!text.trim().is_empty());
}

// ---- status -------------------------------------------------------------------

#[test]
fn status_json_reports_identity_counts_and_no_daemon() {
    let td = TestDir::new();
    let device = td.init();
    td.add_visit(&[]);
    td.add_visit(&["--date", "2025-03-05"]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 60, 4);
    let s = td.json(&["--json", "status"]);
    assert_eq!(s["device"], json!(device), "{s}");
    assert_eq!(s["org"], json!("mjolby"), "{s}");
    assert_eq!(s["records"], json!(3), "{s}");
    assert_eq!(s["pending"], json!(3), "nothing synced yet: {s}");
    assert_eq!(s["daemon_running"], json!(false), "{s}");
    let text = td.ok(&["status"]);
    assert!(text.contains(&device), "{text}");
}

// ---- refusals -----------------------------------------------------------------

/// A store with a visit and a course with a session, so "unchanged" means
/// something.
fn seeded() -> (TestDir, String, String) {
    let td = TestDir::initialised();
    let visit = td.add_visit(&["--note", "Grundpost"]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 60, 4);
    (td, visit, course)
}

/// Runs `args`, which must fail with every one of `needles` in the message
/// and none of `forbidden`, and leave the store as it was.
#[track_caller]
fn refused(td: &TestDir, args: &[&str], needles: &[&str], forbidden: &[&str]) -> String {
    let before = td.snapshot();
    let err = td.fails(args);
    for n in needles {
        assert!(
            err.contains(n),
            "`outpost {}` should mention {n:?}:\n{err}",
            args.join(" ")
        );
    }
    for f in forbidden {
        assert!(
            !err.contains(f),
            "`outpost {}` must not echo {f:?}:\n{err}",
            args.join(" ")
        );
    }
    assert_eq!(
        td.snapshot(),
        before,
        "`outpost {}` was refused but changed the store",
        args.join(" ")
    );
    err
}

#[test]
fn invalid_visit_fields_are_refused_and_nothing_is_saved() {
    let (td, _, _) = seeded();
    refused(
        &td,
        &TestDir::visit_args(&["--date", "2025-02-30"]),
        &["date"],
        &[],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--minutes", "0"]),
        &["minutes"],
        &[],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--minutes", "481"]),
        &["minutes"],
        &[],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--channel", "walk_in"]),
        &[
            "channel",
            "drop_in",
            "booked",
            "outreach",
            "phone",
            "course_followup",
        ],
        &[],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--language", "swedish"]),
        &["language"],
        &[],
    );
    // Every missing field at once, not just the first.
    refused(
        &td,
        &["visit", "add", "--date", "2025-03-04"],
        &[
            "minutes", "channel", "category", "outcome", "language", "services",
        ],
        &[],
    );
}

/// `--service` is required (section 3); an empty value must not get round
/// that and save a visit about no e-service at all.
#[test]
fn an_empty_service_does_not_satisfy_the_required_service() {
    let (td, visit, _) = seeded();
    refused(
        &td,
        &TestDir::visit_args(&["--service", ""]),
        &["services"],
        &[],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--service", "  "]),
        &["services"],
        &[],
    );
    refused(&td, &["edit", &visit, "--service", ""], &["services"], &[]);
}

/// The services rule is proto's (DESIGN.md section 2): an e-service visit
/// needs a service, a device (or internet basics, security, social media,
/// other) visit may have none, on add and on edit alike.
#[test]
fn only_an_e_service_visit_needs_a_service() {
    let (td, visit, _) = seeded();
    let err = refused(
        &td,
        &TestDir::visit_args(&["--service", "", "--category", "e_service"]),
        &["services", "e_service"],
        &[],
    );
    assert!(
        err.contains("device"),
        "the error says who may have none: {err}"
    );
    let id = td.add_visit(&["--service", "", "--category", "device"]);
    assert_eq!(td.show(&id)["services"], json!([]));
    // Changing the category back needs a service again.
    refused(
        &td,
        &["edit", &id, "--category", "e_service"],
        &["services"],
        &[],
    );
    td.ok(&[
        "edit",
        &id,
        "--category",
        "e_service",
        "--service",
        "BankID",
    ]);
    // A device visit may drop its services.
    td.ok(&["edit", &visit, "--category", "device", "--service", ""]);
    assert_eq!(td.show(&visit)["services"], json!([]));
}

/// `init` applies the same 40-character limit on staff as every record.
#[test]
fn init_refuses_staff_longer_than_40_characters() {
    let td = TestDir::new();
    let long = "x".repeat(41);
    let err = td.fails(&[
        "init",
        "--org",
        "mjolby",
        "--site",
        "Mjölby bibliotek",
        "--staff",
        &long,
    ]);
    assert!(err.contains("staff") && err.contains("40"), "{err}");
    // Nothing was created: an init with a valid staff still works.
    td.ok(&[
        "init",
        "--org",
        "mjolby",
        "--site",
        "Mjölby bibliotek",
        "--staff",
        &"x".repeat(40),
    ]);
}

#[test]
fn the_privacy_screen_refuses_identities_without_echoing_them() {
    let (td, visit, course) = seeded();
    let err = refused(
        &td,
        &TestDir::visit_args(&["--note", "Hjälpte 19121212-1212 med BankID"]),
        &["note", "personal identity number"],
        &["19121212", "1212-1212", "121212"],
    );
    assert!(!err.contains("Hjälpte"), "the note is not echoed: {err}");
    refused(
        &td,
        &TestDir::visit_args(&["--note", "Ring 070-123 45 67 imorgon"]),
        &["note", "phone number"],
        &["070-123", "45 67"],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--note", "Skicka till anna.svensson@example.se"]),
        &["note", "e-mail"],
        &["anna.svensson", "example.se"],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--barrier", "BankID:login:personnr 19121212-1212"]),
        &["barrier", "personal identity number"],
        &["19121212", "121212"],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--referred-to", "kontakt@kommun.se"]),
        &["referred_to", "e-mail"],
        &["kontakt@kommun.se"],
    );
    // Edits are screened like adds.
    refused(
        &td,
        &["edit", &visit, "--note", "pnr 191212121212"],
        &["note", "personal identity number"],
        &["191212121212"],
    );
    refused(
        &td,
        &[
            "course",
            "session",
            &course,
            "--date",
            "2025-03-17",
            "--minutes",
            "60",
            "--participants",
            "5",
            "--note",
            "Ring 070-123 45 67",
        ],
        &["note", "phone number"],
        &["070-123"],
    );
}

#[test]
fn every_screened_field_and_number_form_is_refused() {
    let (td, visit, course) = seeded();
    // Personnummer forms: YYMMDD-XXXX, YYMMDD+XXXX, YYMMDDXXXX, YYYYMMDDXXXX.
    for pnr in ["121212-1212", "121212+1212", "1212121212", "191212121212"] {
        let note = format!("nr {pnr}");
        refused(
            &td,
            &TestDir::visit_args(&["--note", &note]),
            &["note", "personal identity number"],
            &[pnr],
        );
    }
    // Coordination number: day + 60, valid check digit.
    refused(
        &td,
        &TestDir::visit_args(&["--note", "samordningsnr 19121272-1219"]),
        &["note", "coordination number"],
        &["1272-1219"],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--note", "ring +46 70 123 45 67"]),
        &["note", "phone number"],
        &["+46"],
    );
    refused(
        &td,
        &TestDir::visit_args(&["--site", "Ring 070-123 45 67"]),
        &["site", "phone number"],
        &["070-123"],
    );
    refused(
        &td,
        &[
            "course",
            "add",
            "--title",
            "Kurs, anmälan till kurs@example.se",
        ],
        &["title", "e-mail"],
        &["kurs@example.se"],
    );
    refused(
        &td,
        &["edit", &course, "--title", "Kurs 19121212-1212"],
        &["title", "personal identity number"],
        &["19121212"],
    );
    refused(
        &td,
        &[
            "edit",
            &visit,
            "--referred-to",
            "handläggare på 08-123 456 78",
        ],
        &["referred_to", "phone number"],
        &["123 456"],
    );
    refused(&td, &["edit", &visit], &["nothing to change"], &[]);
}

#[test]
fn number_like_text_that_is_not_an_identity_is_accepted() {
    let td = TestDir::initialised();
    // Wrong check digit: not a personnummer.
    let a = td.add_visit(&["--note", "Ärende 19121212-1213 hos FK"]);
    assert_eq!(td.show(&a)["note"], json!("Ärende 19121212-1213 hos FK"));
    // A year range is not a phone number.
    let b = td.add_visit(&["--note", "Deklaration för 2023-2024"]);
    assert_eq!(td.show(&b)["note"], json!("Deklaration för 2023-2024"));
}

#[test]
fn other_bad_input_is_refused() {
    let (td, _, course) = seeded();
    refused(
        &td,
        &[
            "course",
            "session",
            &course,
            "--date",
            "2025-03-17",
            "--minutes",
            "60",
            "--participants",
            "501",
        ],
        &["participants"],
        &[],
    );
    let unknown = "00000000-0000-4000-8000-000000000000";
    refused(
        &td,
        &["edit", unknown, "--outcome", "solved"],
        &[unknown],
        &[],
    );
    refused(&td, &["export", "--format", "pdf"], &["format", "csv"], &[]);
    for cmd in [
        vec!["list"],
        vec!["export", "--format", "jsonl"],
        vec!["stats"],
    ] {
        let mut args = cmd.clone();
        args.extend(["--from", "2025-03-01", "--to", "2025-02-01"]);
        refused(&td, &args, &["--from", "--to"], &[]);
    }
    refused(&td, &["list", "--from", "2025-13-01"], &["from"], &[]);
}

// ---- environment --------------------------------------------------------------

#[test]
fn outpost_data_dir_env_var_replaces_the_flag() {
    let td = TestDir::new();
    let run = |args: &[&str]| {
        let out = outpost_command()
            .env("OUTPOST_DATA_DIR", td.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`outpost {}` with OUTPOST_DATA_DIR failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let device = run(&["init", "--org", "mjolby", "--site", SITE, "--staff", STAFF]);
    assert!(td.db().exists(), "the store is made in OUTPOST_DATA_DIR");
    let id = run(&TestDir::visit_args(&[]));
    // The same store, seen through --data-dir.
    assert_eq!(td.list_ids(&[]), vec![id.trim().to_string()]);
    let status: Value = serde_json::from_str(&run(&["--json", "status"])).unwrap();
    assert_eq!(status["device"], json!(device.trim()));
}

// ---- concurrency --------------------------------------------------------------

/// Several `outpost` processes writing the same store at once (staff on one
/// laptop while the daemon syncs): each waits its turn, none fails.
#[test]
fn concurrent_writers_all_succeed() {
    let td = TestDir::initialised();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let td = &td;
                s.spawn(move || {
                    let note = format!("Tråd {t}");
                    (0..6)
                        .map(|_| td.add_visit(&["--note", &note]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids.len(), 24);
    assert_eq!(td.list_ids(&[]), ids);
}

// ---- closed stdout ----------------------------------------------------------

/// `outpost list | head -1`: when the reader of stdout goes away, every
/// command that writes to stdout ends quietly and successfully, as
/// ripgrep does, instead of reporting the broken pipe as an error.
#[test]
fn a_closed_stdout_ends_every_command_quietly_with_success() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let td = TestDir::initialised();
    let first = td.add_visit(&["--note", "mall"]);
    // Enough records that each command's output is far larger than a pipe
    // buffer (64 KiB), so it is still writing when the reader goes away.
    let template: Value = serde_json::from_str(td.ok(&["export", "--format", "jsonl"]).trim())
        .expect("one JSONL record");
    let mut jsonl = String::new();
    for i in 0..1500u32 {
        let mut r = template.clone();
        r["id"] = json!(format!("5eed0000-0000-4000-8000-{i:012x}"));
        jsonl.push_str(&r.to_string());
        jsonl.push('\n');
    }
    let file = td.path().join("many.jsonl");
    std::fs::write(&file, jsonl).unwrap();
    td.ok(&["import", file.to_str().unwrap()]);

    let commands: &[&[&str]] = &[
        &["list"],
        &["--json", "list"],
        &["export", "--format", "csv", "--kind", "visit"],
        &["export", "--format", "jsonl"],
        &["export", "--format", "xlsx"],
        &["stats", "--by", "month"],
        &["--json", "stats", "--by", "service"],
        &["--json", "show", &first],
        &["status"],
    ];
    for args in commands {
        // Read one line (or nothing: some answers are short), then close.
        let mut child = td
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("could not start the outpost binary");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        // The reader is dropped here, closing the pipe.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "`outpost {}` with a closed stdout exited {}:\n{stderr}",
            args.join(" "),
            out.status
        );
        assert!(
            stderr.trim().is_empty(),
            "`outpost {}` with a closed stdout said:\n{stderr}",
            args.join(" ")
        );
    }
}

// ---- status after a sync a person must fix --------------------------------------

/// A sync stopped by a revoked token (saved by the daemon or `outpost
/// sync`) shows in `outpost status` with what to do, and `--json` says
/// it is a person's job, not something retrying fixes.
#[test]
fn status_tells_a_revoked_laptop_what_to_do() {
    let td = TestDir::initialised();
    let error = "this laptop's token was not accepted by the hub (this laptop's token is unknown or revoked): ask an admin for a new enrolment code and run `outpost enroll HUB_URL CODE`";
    let saved = json!({
        "last_attempt": "2026-12-06T10:00:00+01:00",
        "last_success": null,
        "last_error": error,
        "last_error_kind": "needs_person",
        "last_outcome": null,
    });
    let conn = rusqlite::Connection::open(td.db()).unwrap();
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('sync_status', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [saved.to_string()],
    )
    .unwrap();
    drop(conn);
    let v = td.json(&["--json", "status"]);
    assert_eq!(v["last_error"], error);
    assert_eq!(v["last_error_kind"], "needs_person");
    let step = v["next_step"].as_str().unwrap();
    assert!(step.starts_with("a person must act"), "{step}");
    let text = td.ok(&["status"]);
    assert!(text.contains("outpost enroll HUB_URL CODE"), "{text}");
    assert!(text.contains("to do:         a person must act"), "{text}");
}
