//! `outpost import` with the real binary: export → import round trips,
//! idempotence, all-or-nothing, --skip-invalid, and tenant isolation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use outpost_tests::TestDir;

fn bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("outpost");
    if !path.exists() {
        static BUILD: std::sync::Once = std::sync::Once::new();
        BUILD.call_once(|| {
            let ok = Command::new(env!("CARGO"))
                .args(["build", "-p", "outpost-cli", "--bins"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "could not build outpost");
        });
    }
    path
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("OUTPOST_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--data-dir").arg(dir).args(args).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn store(org: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ok(
        d.path(),
        &[
            "init",
            "--org",
            org,
            "--site",
            "Mjölby bibliotek",
            "--staff",
            "AB",
        ],
    );
    d
}

fn sorted_jsonl(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = ok(dir, &["export", "--format", "jsonl"])
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn exports_round_trip_through_import_and_reimport_duplicates_nothing() {
    let a = store("mjolby");
    ok(
        a.path(),
        &[
            "visit",
            "add",
            "--date",
            "2025-03-04",
            "--time",
            "10:15",
            "--minutes",
            "30",
            "--channel",
            "drop_in",
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
            "BankID:login:koden: glömd | igen",
            "--sensitive",
            "--note",
            "Hjälp; \"citat\", komma",
        ],
    );
    let course = ok(
        a.path(),
        &[
            "course",
            "add",
            "--title",
            "Nybörjarkurs internet",
            "--partner",
            "Medborgarskolan",
        ],
    );
    let course = course.trim();
    ok(
        a.path(),
        &[
            "course",
            "session",
            course,
            "--date",
            "2025-03-06",
            "--minutes",
            "90",
            "--participants",
            "8",
        ],
    );
    ok(
        a.path(),
        &[
            "course",
            "session",
            course,
            "--date",
            "2025-03-13",
            "--minutes",
            "90",
            "--participants",
            "6",
            "--instructor",
            "EK",
        ],
    );
    let files = tempfile::tempdir().unwrap();
    let f = |n: &str| files.path().join(n).to_string_lossy().to_string();
    ok(
        a.path(),
        &[
            "export",
            "--format",
            "csv",
            "--kind",
            "visit",
            "-o",
            &f("v.csv"),
        ],
    );
    ok(
        a.path(),
        &[
            "export",
            "--format",
            "csv",
            "--kind",
            "visit",
            "--excel",
            "-o",
            &f("v-excel.csv"),
        ],
    );
    ok(
        a.path(),
        &[
            "export",
            "--format",
            "csv",
            "--kind",
            "course",
            "-o",
            &f("c.csv"),
        ],
    );
    ok(
        a.path(),
        &["export", "--format", "jsonl", "-o", &f("all.jsonl")],
    );
    let expected = sorted_jsonl(a.path());

    for files_to_import in [
        vec!["v.csv", "c.csv"],
        vec!["v-excel.csv", "c.csv"],
        vec!["all.jsonl"],
    ] {
        let b = store("mjolby");
        for name in &files_to_import {
            ok(b.path(), &["import", &f(name)]);
        }
        assert_eq!(
            sorted_jsonl(b.path()),
            expected,
            "import of {files_to_import:?}"
        );
        // Again: nothing doubles.
        for name in &files_to_import {
            ok(b.path(), &["import", &f(name)]);
        }
        assert_eq!(sorted_jsonl(b.path()), expected);
    }
}

#[test]
fn a_bad_row_stops_the_whole_import_unless_skip_invalid() {
    let a = store("mjolby");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.csv");
    std::fs::write(
        &file,
        "date,minutes,channel,services,category,outcome,age_band,language,note\n\
         2024-05-01,20,drop_in,Skatteverket,e_service,solved,65_79,sv,deklaration\n\
         2024-05-02,0,drop_in,CSN,e_service,solved,65_79,sv,x\n\
         2024-05-03,15,phone,CSN,e_service,solved,45_64,sv,ring 0701234567\n",
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let out = run(a.path(), &["import", &path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("minutes"), "{err}");
    assert!(
        err.contains("line 4") && err.contains("phone number"),
        "{err}"
    );
    assert!(
        !err.contains("0701234567"),
        "the refused value is not echoed"
    );
    assert!(sorted_jsonl(a.path()).is_empty(), "all or nothing");
    ok(a.path(), &["import", &path, "--skip-invalid"]);
    assert_eq!(sorted_jsonl(a.path()).len(), 1);
    // Rows without ids get content-based ids: importing again adds nothing.
    ok(a.path(), &["import", &path, "--skip-invalid"]);
    assert_eq!(sorted_jsonl(a.path()).len(), 1);
}

/// The services rule applies to imported rows as to `visit add`.
#[test]
fn an_imported_e_service_visit_needs_a_service() {
    let a = store("mjolby");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.csv");
    std::fs::write(
        &file,
        "Datum,Minuter,Kanal,Tjänster,Kategori,Resultat,Åldersgrupp,Språk\n\
         2024-05-01,20,drop_in,,e_service,solved,65_79,sv\n\
         2024-05-02,20,drop_in,,device,solved,65_79,sv\n",
    )
    .unwrap();
    let path = file.to_string_lossy().to_string();
    let out = run(a.path(), &["import", &path]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("services"), "{err}");
    assert!(!err.contains("line 3"), "{err}");
    ok(a.path(), &["import", &path, "--skip-invalid"]);
    let lines = sorted_jsonl(a.path());
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(r#""category":"device""#), "{}", lines[0]);
}

#[test]
fn records_of_another_org_are_refused() {
    let a = store("mjolby");
    ok(a.path(), &TestDir::visit_args(&[]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.jsonl").to_string_lossy().to_string();
    ok(a.path(), &["export", "--format", "jsonl", "-o", &file]);
    let other = store("ystad");
    let out = run(other.path(), &["import", &file]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mjolby"));
    assert!(sorted_jsonl(other.path()).is_empty());
}
