//! `outpost import`: records from the export formats (CSV, `--excel` CSV,
//! JSONL), e.g. the spreadsheets staff kept before Outpost.
//!
//! Every row becomes raw [`Fields`] and is validated and screened exactly
//! like `visit add`. Ids are kept, so re-importing an export duplicates
//! nothing; a row without an id gets a name-based UUID (v5) of its content,
//! so re-importing the same old spreadsheet duplicates nothing either. A
//! record of another organisation is refused: a laptop holds only its own
//! organisation's records.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset};
use outpost_files::export;
use outpost_proto::fields::Fields;
use outpost_proto::record::{Kind, Record};
use outpost_proto::schema::{self, Column, Scope, Shape};
use outpost_store::store::Identity;
use serde_json::{Value, json};

/// Namespace for ids made from the content of rows that had none.
const IMPORT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f75_7470_6f73_745f_696d_706f_7274_0001);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Jsonl,
}

impl ImportFormat {
    pub fn parse(given: Option<&str>, path: &Path) -> Result<ImportFormat> {
        let name = match given {
            Some(f) => f.to_lowercase(),
            None => path
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default(),
        };
        match name.as_str() {
            "csv" => Ok(ImportFormat::Csv),
            "jsonl" | "ndjson" => Ok(ImportFormat::Jsonl),
            "xlsx" => {
                bail!("XLSX cannot be imported; save the sheet as CSV (UTF-8) and import that")
            }
            _ => bail!("give --format csv or --format jsonl (could not tell from the file name)"),
        }
    }
}

/// One problem row: its line in the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRow {
    pub line: usize,
    pub problems: Vec<String>,
}

/// The file, parsed and validated; nothing written yet.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub bad: Vec<BadRow>,
}

pub fn parse_file(
    path: &Path,
    format: ImportFormat,
    me: &Identity,
    now: DateTime<FixedOffset>,
) -> Result<Parsed> {
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "{} is not UTF-8 text; save it as UTF-8 and try again",
            path.display()
        )
    })?;
    parse_text(&text, format, me, now)
}

/// [`parse_file`] on text already read: every row parsed, validated and
/// screened; nothing written.
pub fn parse_text(
    text: &str,
    format: ImportFormat,
    me: &Identity,
    now: DateTime<FixedOffset>,
) -> Result<Parsed> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows = match format {
        ImportFormat::Jsonl => jsonl_rows(text),
        ImportFormat::Csv => csv_rows(text)?,
    };
    let mut parsed = Parsed::default();
    for (line, fields) in rows {
        match fields.and_then(|f| finish(f, me, now)) {
            Ok(r) => parsed.records.push(r),
            Err(problems) => parsed.bad.push(BadRow { line, problems }),
        }
    }
    Ok(parsed)
}

/// Fuzz entry (`fuzz/`, and the corpus replay test): arbitrary bytes
/// imported as CSV and as JSONL by a fixed laptop identity.
#[doc(hidden)]
pub fn fuzz_rows(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let me = Identity {
        device: "d1e5c0de-0000-4000-8000-000000000001".into(),
        org: "mjolby".into(),
        site: "Mjölby bibliotek".into(),
        staff: "AB".into(),
    };
    let now = DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap_or_default();
    for format in [ImportFormat::Csv, ImportFormat::Jsonl] {
        let _ = parse_text(text, format, &me, now);
    }
}

type Row = (usize, Result<Fields, Vec<String>>);

fn jsonl_rows(text: &str) -> Vec<Row> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let row = match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(map)) => {
                    // `show --json` adds conflicts; they are not a field.
                    Ok(map.into_iter().filter(|(k, _)| k != "conflicts").collect())
                }
                Ok(_) => Err(vec!["the line is not a JSON object".to_string()]),
                Err(e) => Err(vec![format!("not valid JSON: {e}")]),
            };
            (i + 1, row)
        })
        .collect()
}

fn csv_rows(text: &str) -> Result<Vec<Row>> {
    let first = text.lines().next().unwrap_or("");
    // `--excel` exports use `;`; plain ones `,`.
    let excel = first.matches(';').count() > first.matches(',').count();
    let delimiter = if excel { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .context("the CSV has no header row")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    // Header → field through the field table: the export's column names, or
    // the Swedish or English labels of old spreadsheets. A course column
    // the visit columns lack (e.g. `title`) makes it a course CSV.
    let map = |kind: Kind| -> Vec<Option<Column>> {
        header
            .iter()
            .map(|h| schema::column_field(kind, h))
            .collect()
    };
    let (visit_cols, course_cols) = (map(Kind::Visit), map(Kind::Course));
    let unknown = |cols: &[Option<Column>]| -> Vec<String> {
        header
            .iter()
            .zip(cols)
            .filter(|(_, c)| c.is_none())
            .map(|(h, _)| h.to_lowercase())
            .collect()
    };
    let is_course = course_cols
        .iter()
        .flatten()
        .any(|c| matches!(c.field.scope, Scope::Course | Scope::Session))
        && unknown(&course_cols).len() < unknown(&visit_cols).len();
    let (kind, cols) = if is_course {
        (Kind::Course, course_cols)
    } else {
        (Kind::Visit, visit_cols)
    };
    let unknown = unknown(&cols);
    if !unknown.is_empty() {
        bail!(
            "unknown column(s) {unknown:?}; a {} CSV has the columns: {} (or their Swedish or English labels)",
            kind.as_str(),
            schema::column_names(kind).join(",")
        );
    }
    let mut rows = Vec::new();
    // Course rows are sessions; rows of one course id are gathered.
    let mut courses: BTreeMap<String, (usize, Fields, Vec<Value>)> = BTreeMap::new();
    for (i, rec) in reader.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                rows.push((line, Err(vec![format!("not a valid CSV row: {e}")])));
                continue;
            }
        };
        let mut f = Fields::new();
        f.insert("kind".into(), json!(kind.as_str()));
        let mut session = serde_json::Map::new();
        let mut problems = Vec::new();
        for (col, cell) in cols.iter().zip(rec.iter()) {
            let Some(col) = col else { continue };
            // An `--excel` export put an apostrophe before cells a
            // spreadsheet would run as formulas; exactly that one goes.
            let cell = if excel {
                outpost_files::export::excel_uncell(cell)
            } else {
                cell
            };
            let cell = cell.trim();
            // Derived columns (agencies) are for reading; empty cells are
            // absent fields.
            if col.derived || cell.is_empty() {
                continue;
            }
            match cell_value(col.field.shape, cell) {
                Ok(v) => {
                    if col.field.scope == Scope::Session {
                        session.insert(col.field.name.into(), v);
                    } else {
                        f.insert(col.field.name.into(), v);
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", col.field.name)),
            }
        }
        if !problems.is_empty() {
            rows.push((line, Err(problems)));
            continue;
        }
        match kind {
            Kind::Visit => rows.push((line, Ok(f))),
            Kind::Course => {
                let text = |name: &str| f.get(name).and_then(Value::as_str).map(str::to_string);
                let key = text("id").unwrap_or_else(|| {
                    // No id: one course per (title, site, partner).
                    format!("{:?}", (text("title"), text("site"), text("partner")))
                });
                let entry = courses.entry(key).or_insert_with(|| (line, f, Vec::new()));
                // A row with session cells but no session date is still a
                // session, so validation names what it lacks.
                if !session.is_empty() {
                    entry.2.push(Value::Object(session));
                }
            }
        }
    }
    for (_, (line, mut f, sessions)) in courses {
        let sessions = sessions
            .into_iter()
            .map(|mut s| {
                if let Value::Object(m) = &mut s
                    && !m.contains_key("id")
                {
                    let id = uuid::Uuid::new_v5(
                        &IMPORT_NAMESPACE,
                        Value::Object(m.clone()).to_string().as_bytes(),
                    );
                    m.insert("id".into(), json!(id.to_string()));
                }
                s
            })
            .collect();
        f.insert("sessions".into(), Value::Array(sessions));
        rows.push((line, Ok(f)));
    }
    rows.sort_by_key(|(line, _)| *line);
    Ok(rows)
}

/// A CSV cell as the raw value of a field of `shape`: lists are split at
/// `|` (barriers read back from `SERVICE:KIND[:NOTE]`), anything else stays
/// text for validation to check.
fn cell_value(shape: Shape, cell: &str) -> Result<Value, String> {
    Ok(match shape {
        Shape::TextList { .. } | Shape::EnumList(_) => json!(export::split_list(cell)),
        Shape::Barriers => {
            serde_json::to_value(export::parse_barriers(cell)?).unwrap_or(Value::Null)
        }
        _ => json!(cell),
    })
}

/// Fills what an old spreadsheet may lack, checks the organisation, and
/// validates like a new record.
fn finish(mut f: Fields, me: &Identity, now: DateTime<FixedOffset>) -> Result<Record, Vec<String>> {
    match f.get("org").and_then(Value::as_str) {
        Some(org) if org != me.org => {
            return Err(vec![format!(
                "org: the record belongs to '{org}', and this laptop holds only '{}' records",
                me.org
            )]);
        }
        _ => {}
    }
    f.insert("org".into(), json!(me.org));
    if !f.contains_key("id") {
        // Namespaced by this device: re-importing here duplicates nothing,
        // and two laptops importing one old spreadsheet make separate
        // records rather than two unrelated histories under one id.
        let content = format!(
            "{}\n{}",
            me.device,
            Value::Object(f.clone().into_iter().collect())
        );
        let id = uuid::Uuid::new_v5(&IMPORT_NAMESPACE, content.as_bytes());
        f.insert("id".into(), json!(id.to_string()));
    }
    f.entry("device".into()).or_insert_with(|| json!(me.device));
    f.entry("site".into()).or_insert_with(|| json!(me.site));
    f.entry("staff".into()).or_insert_with(|| json!(me.staff));
    let ts = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false));
    f.entry("created_at".into()).or_insert_with(|| ts.clone());
    f.entry("updated_at".into()).or_insert(ts);
    Record::from_fields(&f).map_err(|e| {
        e.0.into_iter()
            .map(|fe| format!("{}: {}", fe.field, fe.message))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_files::export::{ExportOptions, Format};
    use outpost_proto::catalogue::Catalogue;
    use outpost_proto::fixtures;

    fn me() -> Identity {
        Identity {
            device: fixtures::DEVICE.into(),
            org: "mjolby".into(),
            site: "Mjölby bibliotek".into(),
            staff: "AB".into(),
        }
    }

    /// A visit and a course with every field of the table filled in.
    fn full_records() -> Vec<Record> {
        let visit = fixtures::with(
            fixtures::visit_fields("mjolby"),
            [
                ("time", json!("09:05")),
                ("referred_to", json!("Kundtjänst")),
                ("assistive", json!(["interpreter", "large_text"])),
                ("barriers", json!(["BankID:login:glömt koden"])),
                ("sensitive", json!(true)),
                ("note", json!("en anteckning")),
            ],
        );
        let mut course = fixtures::course_fields_at(
            "mjolby",
            fixtures::DEVICE,
            uuid::Uuid::new_v4(),
            fixtures::now(),
            "s1",
        );
        course.insert("partner".into(), json!("SeniorNet"));
        course.insert("target_group".into(), json!("seniorer"));
        course.insert("note".into(), json!("kursanteckning"));
        course.insert(
            "sessions".into(),
            json!([{"id": fixtures::uuid_for("s1"), "date": "2025-03-04", "time": "13:00", "minutes": 90,
                    "participants": 6, "instructor": "CD", "note": "bra"}]),
        );
        vec![visit, fixtures::with(course, [])]
    }

    fn import_csv(text: &str) -> Parsed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, text).unwrap();
        parse_file(&path, ImportFormat::Csv, &me(), fixtures::now()).unwrap()
    }

    /// Every column of the field table is exported with a value and read
    /// back into the same field: a field added to the table but not wired
    /// into export or import fails here.
    #[test]
    fn every_field_round_trips_through_csv() {
        for record in full_records() {
            let mut out = Vec::new();
            let opts = ExportOptions {
                format: Format::Csv,
                excel: false,
            };
            export::export([record.clone()], &Catalogue::builtin(), &opts, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            assert_eq!(header, schema::column_names(record.kind()));
            let row = csv::Reader::from_reader(text.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap();
            for (col, cell) in header.iter().zip(row.iter()) {
                assert!(!cell.is_empty(), "{}: column {col} is empty", record.kind());
            }
            let parsed = import_csv(&text);
            assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
            assert_eq!(parsed.records, [record]);
        }
    }

    #[test]
    fn swedish_and_english_headers_import() {
        let text = "Datum,Minuter,Kanal,Tjänster,Kategori,Resultat,Åldersgrupp,Språk,Hjälpmedel\n\
                    2025-03-04,30,drop-in,BankID|1177,e_service,solved,65_79,SV,interpreter\n";
        let parsed = import_csv(text);
        assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
        let Record { body, .. } = &parsed.records[0];
        let outpost_proto::Body::Visit(v) = body else {
            panic!()
        };
        assert_eq!(v.services, ["BankID", "1177"]);
        assert_eq!(v.language, "sv");
    }

    #[test]
    fn the_services_rule_applies_to_imported_rows() {
        let header = "date,minutes,channel,services,category,outcome,age_band,language\n";
        let parsed = import_csv(&format!(
            "{header}2025-03-04,30,drop_in,,e_service,solved,65_79,sv\n\
             2025-03-04,30,drop_in,,device,solved,65_79,sv\n"
        ));
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].line, 2);
        assert!(
            parsed.bad[0].problems[0].starts_with("services: is required"),
            "{:?}",
            parsed.bad
        );
    }

    /// Issue 9: `device` and session ids have a fixed shape (UUIDs), so a
    /// personnummer in them is refused like one in a note.
    #[test]
    fn personal_data_in_device_and_session_ids_is_refused() {
        let mut visit = serde_json::to_value(fixtures::visit("mjolby")).unwrap();
        visit["device"] = json!("19121212-1212");
        let mut course = serde_json::to_value(fixtures::course("mjolby")).unwrap();
        course["sessions"][0]["id"] = json!("19121212-1212");
        let clean = serde_json::to_value(fixtures::visit("mjolby")).unwrap();
        let text = format!("{visit}\n{course}\n{clean}\n");
        let parsed = parse_text(&text, ImportFormat::Jsonl, &me(), fixtures::now()).unwrap();
        assert_eq!(parsed.records.len(), 1, "{:?}", parsed.bad);
        assert_eq!(parsed.bad.len(), 2, "{:?}", parsed.bad);
        assert!(
            parsed.bad[0].problems.iter().any(|p| p.contains("device")),
            "{:?}",
            parsed.bad
        );
        assert!(
            parsed.bad[1]
                .problems
                .iter()
                .any(|p| p.contains("sessions[0].id")),
            "{:?}",
            parsed.bad
        );
        let all = format!("{:?}", parsed.bad);
        assert!(!all.contains("1212"), "a refusal echoes the value: {all}");
    }
}
