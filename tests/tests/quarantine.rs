//! Issue 9 with the real `outpost` binary: a record whose stored document
//! is damaged (here: planted bytes that are not Automerge) is found by
//! `doctor`, listed by `status` and `quarantine list` with its id and
//! reason, and comes back with `quarantine retry` once a good copy is
//! restored; `list` and `export` keep working meanwhile.

use outpost_tests::TestDir;

fn doc_bytes(t: &TestDir, id: &str) -> Vec<u8> {
    let conn = rusqlite::Connection::open(t.db()).unwrap();
    conn.query_row("SELECT doc FROM docs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn set_doc_bytes(t: &TestDir, id: &str, bytes: &[u8]) {
    let conn = rusqlite::Connection::open(t.db()).unwrap();
    conn.execute(
        "UPDATE docs SET doc = ?2 WHERE id = ?1",
        rusqlite::params![id, bytes],
    )
    .unwrap();
}

#[test]
fn a_damaged_record_is_quarantined_listed_and_retried_after_a_fix() {
    let t = TestDir::initialised();
    let bad = t.add_visit(&[]);
    let good = t.add_visit(&[]);
    let original = doc_bytes(&t, &bad);
    set_doc_bytes(&t, &bad, b"\x85\x6f\x4a\x83 not a document");

    // `doctor` finds it, says what to do, and exits non-zero.
    let (status, stdout, _) = t.run(&["doctor"]);
    assert!(!status.success());
    assert!(stdout.contains("FIX records"), "{stdout}");
    assert!(stdout.contains("outpost quarantine list"), "{stdout}");

    let status = t.json(&["status", "--json"]);
    let q = status["quarantined"].as_array().unwrap();
    assert_eq!(q.len(), 1, "{status}");
    assert_eq!(q[0]["id"], bad.as_str());
    assert!(
        q[0]["reason"].as_str().unwrap().contains("damaged"),
        "{status}"
    );
    assert!(t.ok(&["status"]).contains(&bad));
    let listed = t.json(&["quarantine", "list", "--json"]);
    assert_eq!(listed[0]["id"], bad.as_str());
    // The rest of the store works.
    assert!(t.list_ids(&[]).contains(&good));

    // Retry before the fix: still quarantined, and says so.
    let err = t.fails(&["quarantine", "retry", &bad]);
    assert!(err.contains("still quarantined"), "{err}");

    // The fix: a restored copy. Retry brings it back.
    set_doc_bytes(&t, &bad, &original);
    t.ok(&["quarantine", "retry", &bad]);
    assert_eq!(
        t.json(&["quarantine", "list", "--json"]),
        serde_json::json!([])
    );
    assert!(t.run(&["doctor"]).0.success());

    // Erase is local only and names what it does.
    set_doc_bytes(&t, &bad, b"junk");
    let _ = t.run(&["doctor"]);
    let (status, _, stderr) = t.run(&["quarantine", "erase", &bad]);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("the hub keeps its copy"), "{stderr}");
    assert!(!t.list_ids(&[]).contains(&bad));
}
