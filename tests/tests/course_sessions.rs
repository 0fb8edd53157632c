//! `outpost course session edit|delete COURSE SESSION` (issue 11 point 3):
//! sessions named by their stable id or a unique prefix, never by position,
//! through the real binary; the web app's session pages use the same store
//! functions (tests/web.rs).

use outpost_tests::{TestDir, is_uuid};
use serde_json::{Value, json};

fn sessions(td: &TestDir, course: &str) -> Vec<Value> {
    td.show(course)["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn course_session_edit_by_id_or_prefix_changes_only_that_session() {
    let td = TestDir::initialised();
    let course = td.add_course("Nybörjarkurs internet", &[]);
    let first = td.add_session(&course, "2025-03-03", 60, 5);
    let second = td.add_session(&course, "2025-03-10", 90, 6);
    assert!(is_uuid(&first) && is_uuid(&second));

    // Full ids; the optional fields set, then cleared with an empty value.
    td.ok(&[
        "course",
        "session",
        "edit",
        &course,
        &second,
        "--participants",
        "8",
        "--instructor",
        "EK",
        "--note",
        "Flyttad till stora salen",
    ]);
    let s = sessions(&td, &course);
    assert_eq!(s.len(), 2);
    let edited = s.iter().find(|x| x["id"] == json!(second)).unwrap();
    assert_eq!(edited["participants"], json!(8));
    assert_eq!(edited["minutes"], json!(90), "unflagged fields stay");
    assert_eq!(edited["instructor"], json!("EK"));
    assert_eq!(edited["note"], json!("Flyttad till stora salen"));
    let untouched = s.iter().find(|x| x["id"] == json!(first)).unwrap();
    assert_eq!(untouched["participants"], json!(5));

    // Prefixes of both ids; --json names the course and the session.
    let out = td.json(&[
        "--json",
        "course",
        "session",
        "edit",
        &course[..8],
        &second[..6],
        "--note",
        "",
        "--date",
        "2025-03-11",
    ]);
    assert_eq!(out["course"], json!(course));
    assert_eq!(out["session"]["id"], json!(second));
    let s = sessions(&td, &course);
    let edited = s.iter().find(|x| x["id"] == json!(second)).unwrap();
    assert_eq!(edited["note"], Value::Null, "an empty value clears it");
    assert_eq!(edited["date"], json!("2025-03-11"));
    assert_eq!(edited["instructor"], json!("EK"));

    // A refused value (the privacy screen, a bad number) changes nothing.
    let before = td.show(&course);
    let err = td.fails(&[
        "course",
        "session",
        "edit",
        &course,
        &second,
        "--note",
        "ring 070-123 45 67",
    ]);
    assert!(err.contains("note"), "{err}");
    assert!(!err.contains("070-123"), "the error does not echo: {err}");
    let err = td.fails(&[
        "course",
        "session",
        "edit",
        &course,
        &second,
        "--participants",
        "lots",
    ]);
    assert!(err.contains("participants"), "{err}");
    assert_eq!(td.show(&course), before);

    // Adding a session keeps working alongside the subcommands.
    td.add_session(&course, "2025-03-17", 60, 4);
    assert_eq!(sessions(&td, &course).len(), 3);
}

#[test]
fn course_session_delete_removes_one_session_and_refuses_unknown_ids() {
    let td = TestDir::initialised();
    let course = td.add_course("Frihet och säkerhet på nätet", &[]);
    let keep = td.add_session(&course, "2025-02-01", 60, 5);
    let gone = td.add_session(&course, "2025-02-08", 60, 7);

    // Unknown session id, unknown course, too short a prefix, a visit.
    let err = td.fails(&[
        "course",
        "session",
        "delete",
        &course,
        "00000000-0000-4000-8000-000000000000",
        "--yes",
    ]);
    assert!(err.contains("no session"), "{err}");
    assert!(err.contains("outpost show"), "says what to do: {err}");
    let err = td.fails(&["course", "session", "delete", "ffffffff", &gone, "--yes"]);
    assert!(err.contains("no record"), "{err}");
    let err = td.fails(&["course", "session", "delete", &course, &gone[..2], "--yes"]);
    assert!(err.contains("at least 4"), "{err}");
    let visit = td.add_visit(&[]);
    let err = td.fails(&["course", "session", "edit", &visit, &gone, "--minutes", "5"]);
    assert!(err.contains("not a course"), "{err}");
    assert_eq!(sessions(&td, &course).len(), 2, "nothing removed");

    // No terminal: a script is not asked; a prefix names the session.
    let out = td.json(&[
        "--json",
        "course",
        "session",
        "delete",
        &course[..8],
        &gone[..8],
    ]);
    assert_eq!(out["deleted_session"], json!(gone));
    let s = sessions(&td, &course);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["id"], json!(keep));
    // Gone means gone: editing or deleting it again is refused.
    let err = td.fails(&["course", "session", "delete", &course, &gone, "--yes"]);
    assert!(err.contains("no session"), "{err}");
    let listed = td.list(&["--kind", "course"]);
    assert_eq!(listed[0]["sessions"].as_array().unwrap().len(), 1);
}
