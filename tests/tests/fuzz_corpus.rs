//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`, and
//! the crashes kept in `fuzz/regressions/<target>/`) through the same entry
//! functions the cargo-fuzz targets call, so the stable suite (no nightly)
//! checks that none of them panics, and a crash the fuzzer found stays
//! fixed.
//!
//! `OUTPOST_WRITE_SEEDS=1 cargo test -p outpost-tests --test fuzz_corpus`
//! (re)writes the generated seed files (`seed-*`) from valid records.

use std::path::{Path, PathBuf};

use automerge::{ActorId, AutoCommit, ROOT, transaction::Transactable};
use outpost_proto::sync::{self, DocPush, FeedBody, FeedItem, Heads, PullResponse, PushRequest};
use outpost_proto::{doc, fixtures};

type Entry = fn(&[u8]);

const TARGETS: &[(&str, Entry)] = &[
    ("push_body", outpost_proto::fuzzing::push_body),
    ("pull_body", outpost_proto::fuzzing::pull_body),
    ("automerge_doc", outpost_proto::fuzzing::automerge_doc),
    ("automerge_fixed", outpost_proto::fuzzing::automerge_fixed),
    ("inflate_walk", outpost_proto::fuzzing::inflate_walk),
    ("screen_text", outpost_proto::fuzzing::screen_text),
    ("catalogue_toml", outpost_proto::fuzzing::catalogue_toml),
    ("config_toml", outpost_store::config::fuzz_config),
    ("import_rows", outpost_cli::import::fuzz_rows),
    ("xlsx_rows", outpost_files::import::fuzz_xlsx),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.is_file());
    out.sort();
    out
}

#[test]
fn every_corpus_file_replays_without_a_panic() {
    if std::env::var_os("OUTPOST_WRITE_SEEDS").is_some() {
        write_seeds();
    }
    let mut replayed = 0;
    for (target, entry) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{target} is empty; run this test with OUTPOST_WRITE_SEEDS=1"
        );
        for file in corpus
            .iter()
            .chain(&files(&fuzz_dir().join("regressions").join(target)))
        {
            let bytes = std::fs::read(file).unwrap();
            entry(&bytes);
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len());
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// Valid inputs of every kind the targets take, for the fuzzer to start
/// from (a fuzzer rarely guesses a valid checksum or gzip header).
fn write_seeds() {
    let visit = fixtures::visit_with_note(outpost_proto::fuzzing::ORG, "hjälpte med BankID");
    let course = fixtures::course(outpost_proto::fuzzing::ORG);
    let mut v = doc::create(&visit, ActorId::from([1u8; 16])).unwrap();
    let mut c = doc::create(&course, ActorId::from([2u8; 16])).unwrap();
    let v_bytes = v.save();
    let c_bytes = c.save();
    // An edited visit: a change after the first.
    let mut edited = v.fork().with_actor(ActorId::from([3u8; 16]));
    edited.put(ROOT, "note", "ny anteckning").unwrap();
    edited.commit();
    let edit_changes = edited.save_after(&v.get_heads());
    // A raw document that is no record.
    let mut raw = AutoCommit::new();
    raw.put(ROOT, "x", "y").unwrap();
    raw.commit();

    write("automerge_doc", "visit", &v_bytes);
    write("automerge_doc", "course", &c_bytes);
    write("automerge_doc", "edit-changes", &edit_changes);
    write("automerge_doc", "edited-visit", &edited.save());
    write("automerge_doc", "not-a-record", &raw.save());
    // Honest records with columns Automerge deflated when saving.
    let long = fixtures::visit_with_long_note(outpost_proto::fuzzing::ORG, 1500);
    let long_bytes = doc::create(&long, ActorId::from([4u8; 16])).unwrap().save();
    write("automerge_doc", "long-note", &long_bytes);
    // The checksum-fixing target starts from the same documents.
    for (name, bytes) in [
        ("visit", &v_bytes),
        ("course", &c_bytes),
        ("edit-changes", &edit_changes),
        ("edited-visit", &edited.save()),
        ("long-note", &long_bytes),
    ] {
        write("automerge_fixed", name, bytes);
    }
    // The inflation walk: documents and a change with deflated parts, a
    // bomb, and a compressed change chunk.
    write("inflate_walk", "long-note", &long_bytes);
    write("inflate_walk", "course", &c_bytes);
    write(
        "inflate_walk",
        "bomb",
        &fixtures::deflate_bomb(outpost_proto::fuzzing::ORG).1,
    );
    write(
        "inflate_walk",
        "compressed-change",
        &fixtures::compressed_change_chunk(&[7u8; 4096]),
    );

    let push = |docs: Vec<DocPush>| {
        sync::encode_body(&PushRequest {
            report: None,
            v: sync::PROTOCOL_VERSION,
            device_time: 0,
            docs,
            erased: vec![uuid::Uuid::from_u128(9)],
        })
        .unwrap()
    };
    let full = |id, am: &mut AutoCommit| sync::prepare_push(id, am, None);
    write(
        "push_body",
        "two-new",
        &push(vec![full(visit.id, &mut v), full(course.id, &mut c)]),
    );
    let acked = v.get_heads();
    write(
        "push_body",
        "edit",
        &push(vec![sync::prepare_push(
            visit.id,
            &mut edited,
            Some(&acked),
        )]),
    );
    let item = |id, am: &mut AutoCommit| FeedItem {
        id,
        body: FeedBody::Doc {
            heads: Heads::from_hashes(&am.get_heads()),
            data: am.save(),
        },
    };
    let pull = PullResponse {
        v: sync::PROTOCOL_VERSION,
        items: vec![
            item(visit.id, &mut edited),
            item(course.id, &mut c),
            FeedItem {
                id: uuid::Uuid::from_u128(9),
                body: FeedBody::Erased,
            },
        ],
        next: 3,
        more: false,
        epoch: 1,
        sig: vec![0; 32],
        config: None,
    };
    write("pull_body", "page", &sync::encode_body(&pull).unwrap());

    for (name, text) in [
        (
            "note",
            "Besökaren behövde hjälp med BankID 2025-03-04 kl 10:30, 1 250 kr",
        ),
        ("pnr", "pnr 19811218-9876 och 070-123 45 67"),
        (
            "evasion",
            "1981\u{200D}1218 9876 anna\u{FF20}example\u{FF0E}se",
        ),
        ("card", "4111 1111 1111 1111"),
        ("digits", "१९८११२१८-९८७६ 𝟏𝟗𝟖"),
    ] {
        write("screen_text", name, text.as_bytes());
    }
    write(
        "catalogue_toml",
        "override",
        b"[[service]]\nname = \"Mina sidor\"\nagency = \"Mjolby kommun\"\nscope = \"own\"\n",
    );
    write(
        "config_toml",
        "config",
        b"hub_url = \"https://hub.example:8443\"\nsync_interval_secs = 300\n",
    );
    let mut csv = String::from(
        "id,org,site,staff,date,time,minutes,channel,services,category,outcome,referred_to,age_band,language,assistive,barriers,sensitive,note,device,created_at,updated_at\n",
    );
    csv.push_str(&format!(
        "{},mjolby,Mjölby bibliotek,AB,2025-03-04,10:00,30,drop_in,BankID|1177,e_service,solved,,65_79,sv,interpreter,BankID:login:glömt koden,false,en anteckning,{},2025-03-04T10:15:00+01:00,2025-03-04T10:15:00+01:00\n",
        visit.id,
        fixtures::DEVICE
    ));
    write("import_rows", "visit-csv", csv.as_bytes());
    let jsonl = serde_json::to_string(&visit).unwrap()
        + "\n"
        + &serde_json::to_string(&course).unwrap()
        + "\n";
    write("import_rows", "records-jsonl", jsonl.as_bytes());
    // The tool's own workbook of both kinds; the corpus also holds one
    // LibreOffice re-saved (`lo-resaved`, made by hand: see fuzz/README.md).
    let mut xlsx = Vec::new();
    outpost_files::export::export(
        [visit.clone(), course.clone()],
        &outpost_proto::catalogue::Catalogue::builtin(),
        &outpost_files::export::ExportOptions {
            format: outpost_files::export::Format::Xlsx,
            excel: false,
        },
        &mut xlsx,
    )
    .unwrap();
    write("xlsx_rows", "export-xlsx", &xlsx);
}
