//! Exports safe to open and to write, files private, a full disk said
//! plainly (issue 10), with the real `outpost` binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use outpost_tests::{TestDir, outpost_command, parse_csv};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Cells a spreadsheet would run as formulas come out of `--excel` CSV
/// with an apostrophe, and an import of that file gives back exactly the
/// records that went in.
#[test]
fn excel_csv_neutralises_formulas_and_imports_back_unchanged() {
    let td = TestDir::initialised();
    let notes = [
        "=1+2",
        "@SUM(A1:A2)",
        "+plus",
        "-minus",
        "'quoted already",
        "plain",
    ];
    for note in notes {
        // `--note=-minus`: one argument, so it is not taken for a flag.
        td.add_visit(&[&format!("--note={note}")]);
    }
    td.add_visit(&[
        "--service",
        "=HYPERLINK(\"http://example.invalid\",\"x\")",
        "--note",
        "service",
    ]);
    let out = td.path().join("visits.csv");
    let out_s = out.to_str().unwrap();
    td.ok(&["export", "--format", "csv", "--excel", "-o", out_s]);
    let text = std::fs::read_to_string(&out).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap();
    let rows = parse_csv(text, ';');
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let (note, services) = (col("note"), col("services"));
    let cells: Vec<&str> = rows[1..].iter().map(|r| r[note].as_str()).collect();
    for (typed, written) in [
        ("=1+2", "'=1+2"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("+plus", "'+plus"),
        ("-minus", "'-minus"),
        ("'quoted already", "'quoted already"),
        ("plain", "plain"),
    ] {
        assert!(
            cells.contains(&written),
            "{typed} should be written {written}: {cells:?}"
        );
    }
    assert!(
        rows[1..]
            .iter()
            .any(|r| r[services].starts_with("'=HYPERLINK")),
        "a list cell is neutralised too"
    );
    // No cell of the file starts a formula any more.
    for row in &rows[1..] {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "live formula in {cell:?}"
            );
        }
    }
    // Plain CSV stays raw, for machines.
    let raw = td.ok(&["export", "--format", "csv"]);
    assert!(raw.contains(",=1+2,"), "{raw}");

    // The round trip: the import removes exactly that apostrophe.
    let other = TestDir::initialised();
    other.ok(&["import", out_s]);
    let strip = |mut v: serde_json::Value| {
        let mut rows: Vec<serde_json::Value> = v
            .as_array_mut()
            .unwrap()
            .drain(..)
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("updated_at");
                r
            })
            .collect();
        rows.sort_by_key(|r| r["id"].as_str().unwrap().to_string());
        rows
    };
    assert_eq!(
        strip(other.json(&["list", "--json"])),
        strip(td.json(&["list", "--json"]))
    );
}

#[test]
fn export_never_follows_a_symlink_or_replaces_a_pipe_and_keeps_modes() {
    let td = TestDir::initialised();
    td.add_visit(&[]);
    let dir = td.path();
    let export = |target: &Path| {
        td.run(&[
            "export",
            "--format",
            "jsonl",
            "-o",
            target.to_str().unwrap(),
        ])
    };

    // A symlink at the target: refused, the file it points to untouched.
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let link = dir.join("out.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let (status, _, stderr) = export(&link);
    assert!(!status.success());
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    std::fs::remove_file(&link).unwrap();

    // A symlink planted at the name earlier releases used for their
    // temporary file: never opened.
    let planted = dir.join(".out.jsonl.partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let (status, _, stderr) = export(&link);
    assert!(status.success(), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert_eq!(mode(&link), 0o600, "a new export file is private");

    // An existing file keeps its mode.
    std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (status, _, _) = export(&link);
    assert!(status.success());
    assert_eq!(mode(&link), 0o640);

    // A named pipe (and a device) is refused, not replaced.
    let fifo = dir.join("pipe");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo is needed for this test: apt-get install -y coreutils");
    assert!(made.success());
    let (status, _, stderr) = export(&fifo);
    assert!(!status.success());
    assert!(stderr.contains("named pipe"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the pipe is still a pipe"
    );
    let (status, _, stderr) = export(Path::new("/dev/null"));
    assert!(!status.success());
    assert!(stderr.contains("a device"), "{stderr}");
    // No temporary file is left in the folder.
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") && n != ".out.jsonl.partial")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

use std::os::unix::fs::FileTypeExt;

#[test]
fn a_value_too_long_for_an_xlsx_cell_names_the_record_and_field() {
    let td = TestDir::initialised();
    // A valid record stays within its bounds (50 barriers, notes of 2,000
    // characters) yet its barriers cell can pass XLSX's 32,767 characters:
    // 50 barriers with 1,000-character notes.
    let note = "lång anteckning om inloggningen ".repeat(32);
    let barriers: Vec<String> = (0..50).map(|_| format!("BankID:login:{note}")).collect();
    let mut args = vec!["--service", "BankID"];
    for b in &barriers {
        args.extend(["--barrier", b.as_str()]);
    }
    let id = td.add_visit(&args);
    let out = td.path().join("all.xlsx");
    let stderr = td.fails(&["export", "--format", "xlsx", "-o", out.to_str().unwrap()]);
    assert!(stderr.contains(&id), "{stderr}");
    assert!(stderr.contains("barriers"), "{stderr}");
    assert!(stderr.contains("32767"), "{stderr}");
    assert!(!stderr.contains("TMPDIR"), "{stderr}");
    assert!(!out.exists(), "nothing half-written");
}

#[test]
fn the_store_and_settings_are_private() {
    let td = TestDir::initialised();
    td.add_visit(&[]);
    assert_eq!(mode(td.path()), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let f = td.path().join(format!("outpost.db{suffix}"));
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
    // A store left world-readable by an earlier release is tightened.
    std::fs::set_permissions(td.db(), std::fs::Permissions::from_mode(0o644)).unwrap();
    td.ok(&["list"]);
    assert_eq!(mode(&td.db()), 0o600);
}

/// A small tmpfs, filled: `visit add` says the disk is full and that
/// nothing was saved, and nothing was.
#[test]
fn a_full_disk_is_said_plainly_and_nothing_is_saved() {
    let mnt = tempfile::tempdir().unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mnt.path())
        .output()
        .expect("mount(8) is needed: apt-get install -y mount");
    assert!(
        mount.status.success(),
        "this test mounts a small tmpfs and must run as root (it does in CI); mount said: {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let data = mnt.path().join("data");
    let outpost = |args: &[&str]| {
        let mut cmd = outpost_command();
        cmd.arg("--data-dir").arg(&data).args(args);
        cmd.output().unwrap()
    };
    let init = outpost(&[
        "init",
        "--org",
        "mjolby",
        "--site",
        "Mjölby bibliotek",
        "--staff",
        "AB",
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let note = "x".repeat(500);
    let visit = TestDir::visit_args(&["--note", &note]);
    let first = outpost(&visit);
    assert!(first.status.success());
    // Fill the disk to the last byte.
    let filler = mnt.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", filler.display()))
        .output()
        .expect("dd is needed: apt-get install -y coreutils");
    let mut refused = None;
    for _ in 0..50 {
        let out = outpost(&visit);
        if !out.status.success() {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let stderr = refused.expect("a full disk never refused a visit");
    assert!(
        stderr.contains("disk") && stderr.contains("is full"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was saved"), "{stderr}");
    // Room again: the store is intact and holds only what was reported.
    std::fs::remove_file(&filler).unwrap();
    let list = outpost(&["list", "--json"]);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
}
