//! `outpost import`: records from the export formats (CSV, `--excel` CSV,
//! JSONL), e.g. the spreadsheets staff kept before Outpost.
//!
//! Every row becomes raw [`Fields`] and is validated and screened exactly
//! like `visit add`. Ids are kept, so re-importing an export duplicates
//! nothing; a row without an id gets a name-based UUID (v5) of its content,
//! so re-importing the same old spreadsheet duplicates nothing either. A
//! record of another organisation is refused: a laptop holds only its own
//! organisation's records.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use outpost_files::import::{self, Place, Source};
use outpost_proto::fields::Fields;
use outpost_proto::record::Record;
use outpost_store::store::Identity;
use serde_json::{Value, json};

/// Namespace for ids made from the content of rows that had none.
const IMPORT_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f75_7470_6f73_745f_696d_706f_7274_0001);

/// The format of the file: `--format`, else the file name's extension.
pub type ImportFormat = Source;

/// One problem row: where it is in the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadRow {
    #[serde(flatten)]
    pub place: Place,
    pub problems: Vec<String>,
}

/// The file, parsed and validated; nothing written yet.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub bad: Vec<BadRow>,
    /// XLSX sheets without record columns, left alone.
    pub skipped_sheets: Vec<String>,
}

/// Reads `path` (at most [`import::MAX_FILE_BYTES`], checked before it is
/// read), then [`parse_bytes`].
pub fn parse_file(
    path: &Path,
    format: ImportFormat,
    me: &Identity,
    now: DateTime<FixedOffset>,
) -> Result<Parsed> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut bytes = Vec::new();
    // One byte over the limit tells a file that is too large, without
    // reading all of it.
    file.take(import::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read {}", path.display()))?;
    parse_bytes(&bytes, format, me, now).with_context(|| format!("{}", path.display()))
}

/// Every row of a file read ([`outpost_files::import::read`]), validated
/// and screened; nothing written.
pub fn parse_bytes(
    bytes: &[u8],
    format: ImportFormat,
    me: &Identity,
    now: DateTime<FixedOffset>,
) -> Result<Parsed> {
    let rows = import::read(bytes, format)?;
    let mut parsed = Parsed {
        skipped_sheets: rows.skipped_sheets,
        ..Parsed::default()
    };
    for (place, fields) in rows.rows {
        match fields.and_then(|f| finish(f, me, now)) {
            Ok(r) => parsed.records.push(r),
            Err(problems) => parsed.bad.push(BadRow { place, problems }),
        }
    }
    Ok(parsed)
}

/// [`parse_bytes`] on text already read.
pub fn parse_text(
    text: &str,
    format: ImportFormat,
    me: &Identity,
    now: DateTime<FixedOffset>,
) -> Result<Parsed> {
    parse_bytes(text.as_bytes(), format, me, now)
}

/// Fuzz entry (`fuzz/`, and the corpus replay test): arbitrary bytes
/// imported as CSV and as JSONL by a fixed laptop identity.
#[doc(hidden)]
pub fn fuzz_rows(data: &[u8]) {
    let me = Identity {
        device: "d1e5c0de-0000-4000-8000-000000000001".into(),
        org: "mjolby".into(),
        site: "Mjölby bibliotek".into(),
        staff: "AB".into(),
    };
    let now = DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap_or_default();
    for format in [ImportFormat::Csv, ImportFormat::Jsonl] {
        let _ = parse_bytes(data, format, &me, now);
    }
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
    use outpost_files::export::{self, ExportOptions, Format};
    use outpost_proto::catalogue::Catalogue;
    use outpost_proto::fixtures;
    use outpost_proto::schema;

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

    /// The same through the tool's own XLSX, both kinds in one workbook
    /// (dates, numbers and booleans as typed cells).
    #[test]
    fn every_field_round_trips_through_xlsx() {
        let records = full_records();
        let mut out = Vec::new();
        let opts = ExportOptions {
            format: Format::Xlsx,
            excel: false,
        };
        export::export(records.clone(), &Catalogue::builtin(), &opts, &mut out).unwrap();
        let parsed = parse_bytes(&out, ImportFormat::Xlsx, &me(), fixtures::now()).unwrap();
        assert!(parsed.bad.is_empty(), "{:?}", parsed.bad);
        assert_eq!(parsed.records, records);
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
        assert_eq!(parsed.bad[0].place.line, 2);
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
