//! `outpost delete` erases (DESIGN.md section 5): the record's content and
//! its history leave the device. Checked on the raw bytes of the SQLite
//! files (`outpost.db`, and `-wal`/`-shm` when present), not through the
//! store's own API, which could hide leftovers.
//!
//! The current note is in the files as plain text (the JSON projection).
//! The note it was edited away from lives only in the record's Automerge
//! history, which `save()` stores DEFLATE-compressed, so a plain byte search
//! cannot find it even before the delete. For that one the control decodes
//! the stored document and reads the note at its first change, and after the
//! delete the test looks for the document's own bytes (compressed history
//! included) in the files.

use outpost_tests::{TestDir, contains_bytes};

/// The note the visit was saved with (later edited away, so it lives only
/// in the record's history). Letters only: nothing for the screen to refuse.
const FIRST_NOTE: &str = "Raderingsprov Zebra Kvastfening";
/// The note it was edited to.
const SECOND_NOTE: &str = "Raderingsprov Giraff Lyktstolpe";
/// The note of a record that is not deleted.
const KEPT_NOTE: &str = "Kontrollprov Elefant Mossgrotta";
const BARRIER_NOTE: &str = "Zebran glömde koden";
/// Length of the document slices searched for after the delete.
const CHUNK: usize = 24;

/// Which of the store files hold `needle`.
fn files_with(td: &TestDir, needle: &[u8]) -> Vec<String> {
    td.store_files()
        .into_iter()
        .filter(|(_, bytes)| contains_bytes(bytes, needle))
        .map(|(name, _)| name)
        .collect()
}

fn doc_blob(td: &TestDir, id: &str) -> Vec<u8> {
    let conn = rusqlite::Connection::open(td.db()).unwrap();
    conn.query_row("SELECT doc FROM docs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// Every text and blob cell of the store's tables, except the rows of
/// record `id`: what the files may legitimately still hold after it is
/// erased. (Other records' documents share field names and the device's
/// actor id with the erased one.)
fn live_cells(td: &TestDir, id: &str) -> Vec<Vec<u8>> {
    let conn = rusqlite::Connection::open(td.db()).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut cells = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let id_col = stmt.column_index("id").ok();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            if let Some(i) = id_col
                && row.get_ref(i).unwrap().as_str().ok() == Some(id)
            {
                continue;
            }
            for i in 0..n {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        cells.push(b.to_vec())
                    }
                    _ => {}
                }
            }
        }
    }
    cells
}

/// The note at each change of a stored document, oldest first.
fn note_history(blob: &[u8]) -> Vec<Option<String>> {
    let mut am = automerge::AutoCommit::load(blob).expect("a loadable document");
    let hashes: Vec<_> = am.get_changes(&[]).iter().map(|c| c.hash()).collect();
    hashes
        .iter()
        .map(|h| {
            let at = am.fork_at(&[*h]).expect("fork at a change");
            let snap = outpost_proto::doc::read(&at).expect("a readable document");
            snap.fields
                .get("note")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn delete_removes_current_and_historic_text_from_the_files() {
    let td = TestDir::initialised();
    td.add_visit(&["--date", "2025-03-01", "--note", "Vanlig anteckning"]);
    let barrier = format!("BankID:login:{BARRIER_NOTE}");
    let victim = td.add_visit(&["--note", FIRST_NOTE, "--barrier", &barrier]);
    let kept = td.add_visit(&["--date", "2025-03-05", "--note", KEPT_NOTE]);
    td.ok(&["edit", &victim, "--note", SECOND_NOTE]);
    let course = td.add_course("Nybörjarkurs internet", &[]);
    td.add_session(&course, "2025-03-10", 60, 4);
    td.add_visit(&["--date", "2025-03-06"]);
    assert_eq!(td.show(&victim)["note"].as_str(), Some(SECOND_NOTE));

    // Controls: before the delete the content is there to be found.
    for text in [SECOND_NOTE, BARRIER_NOTE] {
        assert!(
            !files_with(&td, text.as_bytes()).is_empty(),
            "control failed: {text:?} is not in the store files before the delete"
        );
    }
    let blob = doc_blob(&td, &victim);
    let history = note_history(&blob);
    assert!(
        history.contains(&Some(FIRST_NOTE.to_string()))
            && history.contains(&Some(SECOND_NOTE.to_string())),
        "control failed: the history should hold both notes: {history:?}"
    );
    // Slices of the stored document (compressed history and all) that no
    // other row holds: the files hold them now and must not after the delete.
    let live = live_cells(&td, &victim);
    let chunks: Vec<(usize, &[u8])> = (0..blob.len().saturating_sub(CHUNK))
        .step_by(8)
        .map(|at| (at, &blob[at..at + CHUNK]))
        .filter(|(_, c)| !live.iter().any(|cell| contains_bytes(cell, c)))
        .collect();
    assert!(
        chunks.len() >= 10,
        "only {} slices of the {}-byte document are its own",
        chunks.len(),
        blob.len()
    );
    for (_, chunk) in &chunks {
        assert!(
            !files_with(&td, chunk).is_empty(),
            "control failed: the stored document is not in the files as stored"
        );
    }

    td.ok(&["delete", &victim]);

    for text in [FIRST_NOTE, SECOND_NOTE, BARRIER_NOTE] {
        let found = files_with(&td, text.as_bytes());
        assert!(
            found.is_empty(),
            "after delete, {text:?} is still in {found:?}"
        );
    }
    let lingering: Vec<(usize, Vec<String>)> = chunks
        .iter()
        .map(|(at, c)| (*at, files_with(&td, c)))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    assert!(
        lingering.is_empty(),
        "after delete, bytes of the erased document (with its history) are still in the files, \
         at document offsets and files: {lingering:?}"
    );
    // The check can fail: a record that was not deleted is still found.
    assert!(
        !files_with(&td, KEPT_NOTE.as_bytes()).is_empty(),
        "the note of a record that was not deleted should still be in the files"
    );

    let conn = rusqlite::Connection::open(td.db()).unwrap();
    let tombstones: i64 = conn
        .query_row(
            "SELECT count(*) FROM tombstones WHERE id = ?1",
            [&victim],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tombstones, 1, "a tombstone keeps the erased id");
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM docs WHERE id = ?1) + (SELECT count(*) FROM records WHERE id = ?1)",
            [&victim],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        left, 0,
        "no document or projection row of the erased record"
    );
    drop(conn);

    let err = td.fails(&["show", &victim]);
    assert!(err.contains("deleted"), "{err}");
    assert_eq!(td.show(&kept)["note"].as_str(), Some(KEPT_NOTE));
    assert_eq!(td.list(&[]).len(), 4);
}
