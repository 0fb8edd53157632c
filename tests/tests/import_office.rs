//! `outpost import` of what offices have (issue 13, item 6), with the real
//! binary and real files: the tool's own XLSX after LibreOffice re-saved
//! and edited it, a Windows-1252 CSV with Swedish headers as Swedish Excel
//! saves it, the mapping error for a header nobody knows, and hostile
//! workbooks (not a zip, a zip bomb, absurd dimensions) refused cleanly
//! under a memory limit.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use outpost_proto::record::Kind;
use outpost_proto::schema;
use outpost_tests::{TestDir, assert_not_a_crash, clean_env, outpost_bin};
use serde_json::Value;

/// LibreOffice's `soffice`, or a failure that says how to install it.
fn soffice() -> &'static str {
    ["soffice", "libreoffice"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!(
                "LibreOffice is needed to re-save the XLSX; install it with: apt-get install -y libreoffice-calc-nogui"
            )
        })
}

/// `soffice --headless --convert-to TO FILE` into `out/`, with a private
/// profile (parallel tests do not share one); returns the new file.
fn convert(file: &Path, to: &str, infilter: Option<&str>, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let profile = out.join("lo-profile");
    let mut cmd = Command::new(soffice());
    cmd.arg(format!(
        "-env:UserInstallation=file://{}",
        profile.display()
    ))
    .arg("--headless");
    if let Some(f) = infilter {
        cmd.arg(format!("--infilter={f}"));
    }
    let result = cmd
        .args(["--convert-to", to, "--outdir"])
        .arg(out)
        .arg(file)
        .output()
        .expect("soffice runs");
    assert!(
        result.status.success(),
        "LibreOffice could not convert {}: {}",
        file.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    let ext = to.split(':').next().unwrap();
    let made = out.join(format!(
        "{}.{ext}",
        file.file_stem().unwrap().to_str().unwrap()
    ));
    assert!(made.exists(), "LibreOffice wrote no {}", made.display());
    made
}

/// The whole store as `list --json` shows it, sorted by id.
fn records(td: &TestDir) -> Vec<Value> {
    let mut all = td.list(&[]);
    all.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
    assert!(!all.is_empty());
    all
}

/// A laptop with visits and a course of two sessions, every kind of cell
/// the export writes (text with å/ä/ö, lists, barriers, a bool, a time,
/// numbers and dates).
fn laptop_with_records() -> TestDir {
    let td = TestDir::initialised();
    td.add_visit(&[
        "--date",
        "2025-03-04",
        "--time",
        "10:15",
        "--minutes",
        "30",
        "--service",
        "BankID",
        "Försäkringskassan",
        "--category",
        "e_service",
        "--outcome",
        "referred",
        "--referred-to",
        "Servicekontoret",
        "--age-band",
        "80_plus",
        "--language",
        "ar",
        "--assistive",
        "interpreter",
        "--barrier",
        "BankID:login:koden glömd",
        "--sensitive",
        "--note",
        "Hjälp; \"citat\", komma och åäö ÅÄÖ",
    ]);
    td.add_visit(&[
        "--date",
        "2025-04-01",
        "--minutes",
        "15",
        "--site",
        "Skänninge bibliotek",
    ]);
    let course = td.add_course("Nybörjarkurs internet", &["--partner", "Medborgarskolan"]);
    td.add_session(&course, "2025-03-06", 90, 8);
    td.add_session(&course, "2025-03-13", 90, 6);
    td
}

/// Runs `outpost import FILE` in `td` under an address-space limit of
/// `limit_mb` (util-linux `prlimit`), so a file that made the importer
/// allocate its unpacked size would fail with an allocation error instead
/// of passing. Returns (success, stderr).
fn import_limited(td: &TestDir, file: &Path, limit_mb: u64) -> (bool, String) {
    let mut cmd = Command::new("prlimit");
    clean_env(&mut cmd);
    let out = cmd
        .arg(format!("--as={}", limit_mb * 1024 * 1024))
        .arg(outpost_bin())
        .arg("--data-dir")
        .arg(td.path())
        .arg("import")
        .arg(file)
        .output()
        .expect("prlimit (util-linux) runs; install it with: apt-get install -y util-linux");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_not_a_crash(
        &["import", &file.display().to_string()],
        out.status,
        &stderr,
    );
    (out.status.success(), stderr)
}

/// Copies the zip `src` to `dst`, passing each part through `edit` (which
/// may write a different content for it), and adds the `extra` parts.
fn rezip(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&str, Vec<u8>) -> Vec<u8>,
    extra: impl FnOnce(&mut zip::ZipWriter<std::fs::File>),
) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for i in 0..zin.len() {
        let mut part = zin.by_index(i).unwrap();
        let name = part.name().to_string();
        let mut bytes = Vec::new();
        part.read_to_end(&mut bytes).unwrap();
        zout.start_file(&name, opts).unwrap();
        zout.write_all(&edit(&name, bytes)).unwrap();
    }
    extra(&mut zout);
    zout.finish().unwrap();
}

#[test]
fn an_xlsx_export_resaved_by_libreoffice_imports_as_the_same_records() {
    let a = laptop_with_records();
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("export.xlsx");
    a.ok(&["export", "--format", "xlsx", "-o", export.to_str().unwrap()]);
    let resaved = convert(&export, "xlsx", None, &files.path().join("lo"));
    assert_ne!(
        std::fs::read(&export).unwrap(),
        std::fs::read(&resaved).unwrap(),
        "LibreOffice wrote its own workbook"
    );

    let b = TestDir::initialised();
    b.ok(&["import", resaved.to_str().unwrap()]);
    assert_eq!(records(&b), records(&a));
    // Ids are kept: importing again duplicates nothing.
    b.ok(&["import", resaved.to_str().unwrap()]);
    assert_eq!(records(&b), records(&a));
}

/// The visits sheet goes to CSV and back to XLSX through LibreOffice, with
/// a cell changed, the rows in the other order and the time and date as
/// typed cells (unquoted, so LibreOffice makes them a time and a date):
/// the change shows up and nothing else differs.
#[test]
fn a_cell_edited_in_libreoffice_shows_up_after_import() {
    let a = laptop_with_records();
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("visits.xlsx");
    a.ok(&[
        "export",
        "--format",
        "xlsx",
        "--kind",
        "visit",
        "-o",
        export.to_str().unwrap(),
    ]);
    let csv = convert(
        &export,
        "csv:Text - txt - csv (StarCalc):44,34,76,1",
        None,
        &files.path().join("to-csv"),
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{text}");
    let edited: Vec<String> = lines
        .iter()
        .map(|l| l.replace(",30,", ",45,").replace("\"10:15\"", "10:15"))
        .collect();
    assert_ne!(edited, lines, "the edit found its cell: {text}");
    lines = vec![edited[0].clone(), edited[2].clone(), edited[1].clone()];
    let edited_csv = files.path().join("edited.csv");
    std::fs::write(&edited_csv, lines.join("\n") + "\n").unwrap();
    let xlsx = convert(
        &edited_csv,
        "xlsx",
        Some("CSV:44,34,76,1"),
        &files.path().join("to-xlsx"),
    );

    let b = TestDir::initialised();
    b.ok(&["import", xlsx.to_str().unwrap()]);
    let mut expected: Vec<Value> = records(&a)
        .into_iter()
        .filter(|r| r["kind"] == "visit")
        .collect();
    for r in &mut expected {
        if r["minutes"] == 30 {
            r["minutes"] = 45.into();
        }
    }
    assert!(expected.iter().any(|r| r["minutes"] == 45));
    assert_eq!(records(&b), expected);
}

/// The `--excel` export with Swedish header labels, saved as Windows-1252
/// without a byte order mark (`;`, CRLF): what Swedish Excel's
/// "CSV (semikolonavgränsad)" is.
#[test]
fn a_windows_1252_csv_with_swedish_headers_round_trips() {
    let a = laptop_with_records();
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("v.csv");
    a.ok(&[
        "export",
        "--format",
        "csv",
        "--kind",
        "visit",
        "--excel",
        "-o",
        export.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&export).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap();
    let (header, body) = text.split_once("\r\n").unwrap();
    assert!(body.contains("\r\n") && body.contains("åäö"));
    let swedish: Vec<String> = header
        .split(';')
        .map(|name| {
            let col = schema::column_field(Kind::Visit, name).unwrap();
            if col.derived {
                name.to_string()
            } else {
                col.field.label.sv.to_string()
            }
        })
        .collect();
    assert!(swedish.contains(&"Åldersgrupp".to_string()));
    let text = format!("{}\r\n{body}", swedish.join(";"));
    // Windows-1252 is Latin-1 for every character here (å, ä, ö, Å, Ä,
    // Ö): one byte each.
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect();
    assert!(std::str::from_utf8(&bytes).is_err(), "not UTF-8 any more");
    let cp1252 = files.path().join("excel.csv");
    std::fs::write(&cp1252, &bytes).unwrap();

    let b = TestDir::initialised();
    b.ok(&["import", cp1252.to_str().unwrap()]);
    let expected: Vec<Value> = records(&a)
        .into_iter()
        .filter(|r| r["kind"] == "visit")
        .collect();
    assert_eq!(records(&b), expected);
}

#[test]
fn an_unknown_header_is_a_mapping_error_and_nothing_is_imported() {
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("old.csv");
    std::fs::write(
        &csv,
        "Datm;Minuter;Kanal;Tjänster;Kategori;Resultat;Åldersgrupp;Språk\r\n\
         2025-03-04;30;drop_in;BankID;e_service;solved;65_79;sv\r\n",
    )
    .unwrap();
    let b = TestDir::initialised();
    let err = b.fails(&["import", csv.to_str().unwrap()]);
    assert!(
        err.contains("unknown column 'Datm'; did you mean 'Datum'?"),
        "{err}"
    );
    assert!(
        err.contains("the required column 'date' is missing"),
        "{err}"
    );
    assert!(err.contains("minutes (Minuter, Minutes)"), "{err}");
    assert!(err.contains("Nothing was imported"), "{err}");
    assert!(b.list(&[]).is_empty());

    // The same in a workbook: the sheet is named.
    let a = laptop_with_records();
    let export = files.path().join("export.xlsx");
    a.ok(&["export", "--format", "xlsx", "-o", export.to_str().unwrap()]);
    let renamed = files.path().join("renamed.xlsx");
    rezip(
        &export,
        &renamed,
        |name, bytes| {
            if name.starts_with("xl/worksheets/") {
                String::from_utf8(bytes)
                    .unwrap()
                    .replacen(">minutes<", ">minuter x<", 1)
                    .into_bytes()
            } else {
                bytes
            }
        },
        |_| {},
    );
    let err = b.fails(&["import", renamed.to_str().unwrap()]);
    assert!(err.contains("(sheet 'Visits')"), "{err}");
    assert!(err.contains("unknown column 'minuter x'"), "{err}");
    assert!(b.list(&[]).is_empty());
}

#[test]
fn hostile_workbooks_are_refused_without_a_panic_or_memory() {
    let files = tempfile::tempdir().unwrap();
    let b = TestDir::initialised();

    // Not a zip at all.
    let not_zip = files.path().join("notes.xlsx");
    std::fs::write(&not_zip, "Datum;Minuter\n2025-03-04;30\n").unwrap();
    let (ok, err) = import_limited(&b, &not_zip, 256);
    assert!(!ok && err.contains("not an XLSX workbook"), "{err}");

    let a = laptop_with_records();
    let export = files.path().join("export.xlsx");
    a.ok(&["export", "--format", "xlsx", "-o", export.to_str().unwrap()]);

    // A zip bomb: the real export plus a shared-strings part of one string
    // of 600 MiB, about 0.6 MB packed. Refused before any part is kept.
    let bomb = files.path().join("bomb.xlsx");
    rezip(
        &export,
        &bomb,
        |_, bytes| bytes,
        |z| {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            z.start_file("xl/sharedStrings.xml", opts).unwrap();
            z.write_all(
                b"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>",
            )
            .unwrap();
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..600 {
                z.write_all(&chunk).unwrap();
            }
            z.write_all(b"</t></si></sst>").unwrap();
        },
    );
    assert!(std::fs::metadata(&bomb).unwrap().len() < 5 << 20);
    let (ok, err) = import_limited(&b, &bomb, 256);
    assert!(!ok && err.contains("unpacks to more than"), "{err}");

    // Absurd declared dimensions alone are harmless: never allocated.
    let wide = files.path().join("wide.xlsx");
    let sheet_edit = |extra_row: &'static str| {
        move |name: &str, bytes: Vec<u8>| {
            if !name.starts_with("xl/worksheets/sheet") {
                return bytes;
            }
            let xml = String::from_utf8(bytes).unwrap();
            let start = xml.find("<dimension ref=\"").expect("a dimension") + 16;
            let end = start + xml[start..].find('"').unwrap();
            let xml = format!("{}A1:XFD1048576{}", &xml[..start], &xml[end..]);
            xml.replacen("</sheetData>", &format!("{extra_row}</sheetData>"), 1)
                .into_bytes()
        }
    };
    rezip(&export, &wide, sheet_edit(""), |_| {});
    let (ok, err) = import_limited(&b, &wide, 256);
    assert!(ok, "{err}");
    assert_eq!(records(&b), records(&a));

    // A value in the last cell of the sheet is refused, by name.
    let far = files.path().join("far.xlsx");
    rezip(
        &export,
        &far,
        sheet_edit(
            "<row r=\"1048577\"><c r=\"XFD1048577\" t=\"inlineStr\"><is><t>x</t></is></c></row>",
        ),
        |_| {},
    );
    let c = TestDir::initialised();
    let (ok, err) = import_limited(&c, &far, 256);
    assert!(!ok && err.contains("XFD1048577"), "{err}");
    assert!(c.list(&[]).is_empty());
}
