//! Deterministic simulation of the sync protocol (DESIGN.md section 5,
//! `proto/docs/sync.md`).
//!
//! The hub ([`SimHub`]) is the real hub protocol, `outpost_proto::hub`'s
//! `push` and `pull`, over its in-memory storage backend (the SQLite hub
//! runs the same functions over SQLite). Laptops ([`SimLaptop`]) make every
//! sync decision through the public functions of `outpost_proto::sync`
//! (`prepare_push`, `apply_merged`, `apply_feed_item`, `Session`) and
//! `outpost_proto::doc`, exactly the functions the SQLite store calls, so
//! these tests exercise the real protocol logic. Only laptop storage and
//! transport are simulated: a
//! seeded lossy network ([`Net`]) drops requests, loses responses after the
//! hub acted on them, delivers requests twice, and now and then delivers an
//! old push again late; every message goes through
//! `encode_body`/`decode_body` as on the wire.
//!
//! Laptop sessions advance one effect at a time and interleave with other
//! laptops' sessions and with local edits (a record may change while its
//! push is in flight), so hub state moves between a laptop's push and its
//! pull, as it does in production.
//!
//! Reproduce one seed:  `OUTPOST_SIM_SEED=<n> cargo test -p outpost-proto --test sync_sim`
//! Long run:            `OUTPOST_SIM_SEEDS=20000 cargo test --release -p outpost-proto --test sync_sim`
//! (`OUTPOST_SIM_STEPS` sets the random steps per seed, default 160;
//! `OUTPOST_SIM_STATS=1` prints how often each interesting path was taken.)
//!
//! Runtime of this file, CI default (200 seeds x 160 steps), debug build
//! (dependencies at opt-level 1 per the workspace profile), measured on a
//! 2-core machine: about 18 s of CPU in all; seeds run on every core, so
//! about 10 s wall with both cores free, 19.5 s with the other core busy.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use chrono::{DateTime, FixedOffset};
use outpost_proto::Fields;
use outpost_proto::doc::{self, Snapshot};
use outpost_proto::fixtures;
use outpost_proto::hub::mem::{MemDoc, MemStorage};
use outpost_proto::hub::{self, FeedEntry, HubStorage, Peer};
use outpost_proto::record::{Kind, Record, Session as CourseSession};
use outpost_proto::sync::{
    Backoff, Effect, FeedApply, FeedBody, Heads, Input, LocalHeld, Outcome, PullRequest,
    PullResponse, PushOutcome, PushRequest, PushResponse, Session, apply_feed_item, apply_merged,
    decode_body, encode_body, prepare_push,
};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

const ORG_A: &str = "mjolby";
const ORG_B: &str = "boxholm";
const DEFAULT_SEEDS: u64 = 200;
const STEPS_PER_SEED: usize = 160;

// ---------------------------------------------------------------------------
// Trace (printed when a seed fails)
// ---------------------------------------------------------------------------

thread_local! {
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn trace(line: impl FnOnce() -> String) {
    TRACE.with(|t| t.borrow_mut().push(line()));
}

fn take_trace() -> Vec<String> {
    TRACE.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// Counts of the interesting paths the simulation took (over all seeds),
/// checked so a change that makes the simulation tame fails loudly.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A push answer carried changes the laptop lacked.
    MergedWithMissing,
    /// A record changed locally while its push was in flight.
    StillPendingAfterPush,
    /// A pushed record had been erased meanwhile (offline copy).
    PushAnsweredErased,
    /// The feed skipped a record the pulling device itself last changed.
    PullSkippedOwn,
    /// A pulled record merged into a local copy with unpushed changes.
    PulledIntoPending,
    /// A request was lost after the hub acted on it.
    ResponseLost,
    /// The hub got a request twice.
    Duplicated,
    /// The hub got an old push again, late.
    Replayed,
    /// A record ended with a same-field conflict.
    FinalConflict,
    /// A course ended with a conflict inside one of its sessions.
    FinalSessionConflict,
    /// Org B tried to erase an org-A record.
    ForeignErasure,
}

impl Event {
    const ALL: [Event; 11] = [
        Event::MergedWithMissing,
        Event::StillPendingAfterPush,
        Event::PushAnsweredErased,
        Event::PullSkippedOwn,
        Event::PulledIntoPending,
        Event::ResponseLost,
        Event::Duplicated,
        Event::Replayed,
        Event::FinalConflict,
        Event::FinalSessionConflict,
        Event::ForeignErasure,
    ];
}

type EventCounts = [u64; Event::ALL.len()];

thread_local! {
    static EVENTS: RefCell<EventCounts> = const { RefCell::new([0; Event::ALL.len()]) };
}

fn count(e: Event) {
    EVENTS.with(|c| c.borrow_mut()[e as usize] += 1);
}

fn take_events() -> EventCounts {
    EVENTS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

fn short(id: &Uuid) -> String {
    id.simple().to_string()[..6].to_string()
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

fn base_time() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap()
}

fn sim_time(minute: i64) -> DateTime<FixedOffset> {
    base_time() + chrono::Duration::minutes(minute)
}

fn ts(minute: i64) -> String {
    sim_time(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A valid visit, built like the unit tests in `proto/src/doc.rs`.
fn visit_record(org: &str, device: &str, id: Uuid, minute: i64) -> Record {
    fixtures::with(
        fixtures::visit_fields_at(org, device, id, sim_time(minute)),
        [("note", json!("first note"))],
    )
}

/// A valid course with one session.
fn course_record(org: &str, device: &str, id: Uuid, minute: i64, first_session: &str) -> Record {
    fixtures::with(
        fixtures::course_fields_at(org, device, id, sim_time(minute), first_session),
        [],
    )
}

const OUTCOMES: &[&str] = &["solved", "partly", "referred", "not_solved"];
const NOTES: &[&str] = &[
    "ringde tillbaka",
    "behöver mer hjälp",
    "kom med sin dotter",
    "glömt lösenordet",
    "vill ha en kurs",
];
const TITLES: &[&str] = &["Kom igång med BankID", "Surfa säkert", "Videosamtal"];

/// A random edit of one or two fields of a record of `kind`, plus
/// `updated_at`.
fn random_patch(rng: &mut ChaCha8Rng, kind: Kind, minute: i64) -> Fields {
    let mut patch = Fields::new();
    for _ in 0..rng.random_range(1..=2) {
        let (name, value) = match (kind, rng.random_range(0..4)) {
            (Kind::Visit, 0) => ("outcome", json!(*OUTCOMES.choose(rng).unwrap())),
            (Kind::Visit, 1) => ("minutes", json!(rng.random_range(5..=120))),
            (Kind::Course, 0) => ("title", json!(*TITLES.choose(rng).unwrap())),
            (Kind::Course, 1) => ("partner", json!("Seniornet")),
            (_, 2) => ("note", json!(*NOTES.choose(rng).unwrap())),
            _ => ("note", Value::Null),
        };
        patch.insert(name.into(), value);
    }
    patch.insert("updated_at".into(), json!(ts(minute)));
    patch
}

/// A new course session, or a changed copy of an existing one (so two
/// laptops may add sessions, or edit the same session, concurrently).
fn random_session(rng: &mut ChaCha8Rng, existing: &[Value]) -> CourseSession {
    let id = match existing.choose(rng) {
        Some(s) if rng.random_bool(0.5) => s["id"].as_str().unwrap().to_string(),
        _ => uuid_from(rng).to_string(),
    };
    CourseSession {
        id,
        date: chrono::NaiveDate::from_ymd_opt(2025, 3, rng.random_range(1..=28)).unwrap(),
        time: None,
        minutes: rng.random_range(30..=120),
        participants: rng.random_range(0..=20),
        instructor: None,
        note: None,
    }
}

fn uuid_from(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

fn wire<T: Serialize + DeserializeOwned>(value: &T) -> T {
    decode_body(&encode_body(value).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Hub
// ---------------------------------------------------------------------------

/// The hub: the protocol code of `outpost_proto::hub` over its in-memory
/// storage, exactly as the real hub runs it over SQLite. Only bookkeeping
/// for the checks is added here.
#[derive(Debug, Clone)]
struct SimHub {
    storage: MemStorage,
    /// Every document id each device was ever sent in a pull answer
    /// (tombstones are the device's own org's erasures, of any id).
    served: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// Source of new epochs (deterministic; the real hub draws at random).
    next_epoch: u64,
}

impl Default for SimHub {
    fn default() -> SimHub {
        SimHub {
            storage: MemStorage::with_orgs(&[ORG_A, ORG_B]),
            served: BTreeMap::new(),
            next_epoch: 1000,
        }
    }
}

fn peer(device: Uuid, org: &str) -> Peer {
    Peer {
        device: device.to_string(),
        org: org.to_string(),
    }
}

impl SimHub {
    /// What `outpostd hub restored` does after a restore from a backup.
    fn restored(&mut self) {
        self.storage.bump_epochs();
    }

    fn handle_push(&mut self, device: Uuid, org: &str, req: &PushRequest) -> PushResponse {
        let before = self.storage.feed_meta(org).map(|m| m.head).unwrap_or(0);
        let resp = hub::push(&self.storage, &peer(device, org), req, chrono::Utc::now()).unwrap();
        let docs = self.storage.docs(org);
        for r in &resp.results {
            if let Some(d) = docs.get(&r.id).filter(|d| d.seq > before) {
                assert_eq!(d.record.id, r.id, "hub stored a doc under another id");
                assert_eq!(d.record.org, org, "hub stored another org's record");
                trace(|| {
                    format!(
                        "  hub: store {} seq {} origin {}",
                        short(&r.id),
                        d.seq,
                        short(&device)
                    )
                });
            }
        }
        for id in &req.erased {
            trace(|| format!("  hub: erase {}", short(id)));
        }
        resp
    }

    fn handle_pull(&mut self, device: Uuid, org: &str, req: &PullRequest) -> PullResponse {
        let next_epoch = &mut self.next_epoch;
        let key = hub::CursorKey::new([9; 32]);
        let resp = hub::pull(&self.storage, &peer(device, org), req, &key, || {
            *next_epoch += 1;
            *next_epoch
        })
        .unwrap()
        .response;
        // The feed entries this page passed over that the device caused.
        let own = device.to_string();
        let mut skipped = 0;
        self.storage
            .scan_feed(org, req.since, &mut |row, _| {
                if row.seq > resp.next {
                    return Ok(false);
                }
                if row.entry == (FeedEntry::Doc { origin: &own }) {
                    skipped += 1;
                }
                Ok(true)
            })
            .unwrap();
        for _ in 0..skipped {
            count(Event::PullSkippedOwn);
        }
        for item in &resp.items {
            if matches!(item.body, FeedBody::Doc { .. }) {
                self.served.entry(device).or_default().insert(item.id);
            }
        }
        resp
    }

    fn org_docs(&self, org: &str) -> BTreeSet<Uuid> {
        self.storage.docs(org).into_keys().collect()
    }

    fn doc(&self, org: &str, id: &Uuid) -> Option<MemDoc> {
        self.storage.docs(org).remove(id)
    }

    fn has(&self, org: &str, id: &Uuid) -> bool {
        self.doc(org, id).is_some()
    }

    fn erased(&self, org: &str, id: &Uuid) -> bool {
        self.storage.tombstones(org).contains_key(id)
    }

    fn heads(&self, org: &str, id: &Uuid) -> Heads {
        self.doc(org, id).expect("the hub holds the record").heads
    }

    fn snapshot(&self, org: &str, id: &Uuid) -> (Snapshot, Heads) {
        let d = self.doc(org, id).expect("the hub holds the record");
        let mut am = AutoCommit::load(&d.data).unwrap();
        assert_eq!(Heads::from_hashes(&am.get_heads()), d.heads);
        (doc::read(&am).unwrap(), d.heads.clone())
    }
}

// ---------------------------------------------------------------------------
// Network
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    /// Lost before the hub saw it.
    DropRequest,
    /// The hub acted on it; the answer never arrived.
    LoseResponse,
    /// The hub got it twice; the laptop sees one answer.
    Duplicate,
}

/// A push already sent once, kept so the network can deliver it again late.
#[derive(Debug, Clone)]
struct SentPush {
    device: Uuid,
    org: String,
    req: PushRequest,
}

#[derive(Debug, Clone)]
struct Net {
    rng: ChaCha8Rng,
    p_drop: f64,
    p_lose: f64,
    p_dup: f64,
    /// Chance that, before a push, the hub receives an old push of the same
    /// device once more (a late retransmission; nobody sees the answer).
    p_replay: f64,
    /// Fates forced for given request numbers (0-based, counted by `sent`).
    script: BTreeMap<u64, Fate>,
    sent: u64,
    /// Every push request, in order.
    pushes: Vec<PushRequest>,
    history: Vec<SentPush>,
}

impl Net {
    fn lossy(seed: u64, p: f64) -> Net {
        Net {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_7477_6f72_6b00),
            p_drop: p,
            p_lose: p,
            p_dup: p,
            p_replay: p / 2.0,
            script: BTreeMap::new(),
            sent: 0,
            pushes: Vec::new(),
            history: Vec::new(),
        }
    }

    fn perfect() -> Net {
        Net::lossy(0, 0.0)
    }

    fn fate(&mut self) -> Fate {
        let n = self.sent;
        self.sent += 1;
        let r: f64 = self.rng.random();
        if let Some(f) = self.script.get(&n) {
            return *f;
        }
        if r < self.p_drop {
            Fate::DropRequest
        } else if r < self.p_drop + self.p_lose {
            Fate::LoseResponse
        } else if r < self.p_drop + self.p_lose + self.p_dup {
            Fate::Duplicate
        } else {
            Fate::Deliver
        }
    }

    fn push(&mut self, hub: &mut SimHub, device: Uuid, org: &str, req: &PushRequest) -> Input {
        self.pushes.push(req.clone());
        let fate = self.fate();
        trace(|| {
            format!(
                "  net: push #{} {fate:?} docs [{}] erased [{}]",
                self.sent - 1,
                req.docs
                    .iter()
                    .map(|d| format!("{}{}", short(&d.id), if d.full { "(full)" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(" "),
                req.erased.iter().map(short).collect::<Vec<_>>().join(" ")
            )
        });
        let req = wire(req);
        if self.p_replay > 0.0 && self.rng.random_bool(self.p_replay) {
            let old: Vec<&SentPush> = self.history.iter().filter(|p| p.device == device).collect();
            if let Some(old) = old.choose(&mut self.rng) {
                count(Event::Replayed);
                trace(|| format!("  net: replays an old push of {}", short(&device)));
                hub.handle_push(old.device, &old.org, &old.req);
            }
        }
        if self.p_replay > 0.0 {
            self.history.push(SentPush {
                device,
                org: org.to_string(),
                req: req.clone(),
            });
        }
        match fate {
            Fate::DropRequest => Input::Failed("push request lost".into()),
            Fate::LoseResponse => {
                count(Event::ResponseLost);
                hub.handle_push(device, org, &req);
                Input::Failed("push response lost".into())
            }
            Fate::Deliver => Input::PushAnswered(wire(&hub.handle_push(device, org, &req))),
            Fate::Duplicate => {
                count(Event::Duplicated);
                let first = hub.handle_push(device, org, &req);
                let second = hub.handle_push(device, org, &req);
                let seen = if self.rng.random_bool(0.5) {
                    first
                } else {
                    second
                };
                Input::PushAnswered(wire(&seen))
            }
        }
    }

    fn pull(&mut self, hub: &mut SimHub, device: Uuid, org: &str, req: &PullRequest) -> Input {
        let fate = self.fate();
        trace(|| {
            format!(
                "  net: pull #{} {fate:?} since {}",
                self.sent - 1,
                req.since
            )
        });
        let req = wire(req);
        match fate {
            Fate::DropRequest => Input::Failed("pull request lost".into()),
            Fate::LoseResponse => {
                hub.handle_pull(device, org, &req);
                Input::Failed("pull response lost".into())
            }
            Fate::Deliver => Input::PullAnswered(wire(&hub.handle_pull(device, org, &req))),
            Fate::Duplicate => {
                let first = hub.handle_pull(device, org, &req);
                let second = hub.handle_pull(device, org, &req);
                let seen = if self.rng.random_bool(0.5) {
                    first
                } else {
                    second
                };
                Input::PullAnswered(wire(&seen))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Laptop
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct LocalDoc {
    am: AutoCommit,
    acked: Option<Heads>,
    pending: bool,
    seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalTomb {
    pending: bool,
    seq: i64,
}

#[derive(Debug, Clone)]
struct SimLaptop {
    name: String,
    device: Uuid,
    org: String,
    actor: ActorId,
    docs: BTreeMap<Uuid, LocalDoc>,
    tombs: BTreeMap<Uuid, LocalTomb>,
    seq: i64,
    cursor: u64,
    feed_epoch: u64,
    cursor_sig: Vec<u8>,
    batch: usize,
    page: u32,
    inflight: Option<(Session, Effect)>,
    refused: Vec<(Uuid, String)>,
}

impl SimLaptop {
    fn new(name: &str, org: &str, device: Uuid, actor: ActorId) -> SimLaptop {
        SimLaptop {
            name: name.to_string(),
            device,
            org: org.to_string(),
            actor,
            docs: BTreeMap::new(),
            tombs: BTreeMap::new(),
            seq: 0,
            cursor: 0,
            feed_epoch: 0,
            cursor_sig: Vec::new(),
            batch: 2000,
            page: 2000,
            inflight: None,
            refused: Vec::new(),
        }
    }

    fn with_rng(name: &str, org: &str, rng: &mut ChaCha8Rng) -> SimLaptop {
        let device = uuid_from(rng);
        let actor = ActorId::from(rng.random::<[u8; 16]>());
        SimLaptop::new(name, org, device, actor)
    }

    fn next_seq(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    fn create(&mut self, id: Uuid, minute: i64) -> Uuid {
        let rec = visit_record(&self.org, &self.name, id, minute);
        self.create_record(&rec)
    }

    fn create_record(&mut self, rec: &Record) -> Uuid {
        let id = rec.id;
        let am = doc::create(rec, self.actor.clone()).unwrap();
        let seq = self.next_seq();
        trace(|| format!("{}: create {} seq {seq}", self.name, short(&id)));
        self.docs.insert(
            id,
            LocalDoc {
                am,
                acked: None,
                pending: true,
                seq,
            },
        );
        id
    }

    fn edit(&mut self, id: &Uuid, patch: &Fields) -> bool {
        let seq = self.seq + 1;
        let d = self
            .docs
            .get_mut(id)
            .expect("edit of a record the laptop holds");
        if !doc::apply_patch(&mut d.am, patch).unwrap() {
            return false;
        }
        d.pending = true;
        d.seq = seq;
        self.seq = seq;
        trace(|| format!("{}: edit {} {patch:?} seq {seq}", self.name, short(id)));
        true
    }

    fn put_session(&mut self, id: &Uuid, session: &CourseSession, minute: i64) {
        let seq = self.next_seq();
        let d = self.docs.get_mut(id).expect("a course the laptop holds");
        doc::put_session(&mut d.am, session, &ts(minute)).unwrap();
        d.pending = true;
        d.seq = seq;
        trace(|| {
            format!(
                "{}: session {} in {} seq {seq}",
                self.name,
                session.id,
                short(id)
            )
        });
    }

    fn kind_and_sessions(&self, id: &Uuid) -> (Kind, Vec<Value>) {
        let snap = doc::read(&self.docs[id].am).unwrap();
        let kind = snap.fields["kind"].as_str().unwrap().parse().unwrap();
        let sessions = match snap.fields.get("sessions") {
            Some(Value::Array(s)) => s.clone(),
            _ => Vec::new(),
        };
        (kind, sessions)
    }

    fn delete(&mut self, id: &Uuid) {
        self.docs.remove(id);
        let seq = self.next_seq();
        trace(|| format!("{}: delete {} seq {seq}", self.name, short(id)));
        self.tombs.insert(*id, LocalTomb { pending: true, seq });
    }

    // --- the driver's side of each effect ---

    fn load_pending(&mut self, after_seq: i64, limit: usize) -> Input {
        let mut items: Vec<(i64, Uuid, bool)> = self
            .docs
            .iter()
            .filter(|(_, d)| d.pending && d.seq > after_seq)
            .map(|(id, d)| (d.seq, *id, true))
            .chain(
                self.tombs
                    .iter()
                    .filter(|(_, t)| t.pending && t.seq > after_seq)
                    .map(|(id, t)| (t.seq, *id, false)),
            )
            .collect();
        items.sort();
        items.truncate(limit);
        let mut docs = Vec::new();
        let mut erased = Vec::new();
        let mut last_seq = after_seq;
        for (seq, id, is_doc) in items {
            last_seq = last_seq.max(seq);
            if is_doc {
                let d = self.docs.get_mut(&id).unwrap();
                let acked = d.acked.as_ref().map(Heads::hashes);
                docs.push(prepare_push(id, &mut d.am, acked.as_deref()));
            } else {
                erased.push(id);
            }
        }
        let waiting = (self.docs.values().filter(|d| d.pending).count()
            + self.tombs.values().filter(|t| t.pending).count()) as u64;
        Input::PendingLoaded {
            docs,
            waiting,
            erased,
            last_seq,
        }
    }

    fn apply_push(&mut self, resp: &PushResponse) {
        for r in &resp.results {
            match &r.outcome {
                PushOutcome::Merged { heads, missing } => {
                    // Deleted locally while the push was in flight: the
                    // pending tombstone goes out next.
                    if !missing.is_empty() {
                        count(Event::MergedWithMissing);
                    }
                    if let Some(d) = self.docs.get_mut(&r.id) {
                        let (acked, pending) = apply_merged(&mut d.am, heads, missing).unwrap();
                        if pending {
                            count(Event::StillPendingAfterPush);
                        }
                        d.acked = Some(acked);
                        d.pending = pending;
                    }
                }
                PushOutcome::NeedFull => {
                    let seq = self.seq + 1;
                    if let Some(d) = self.docs.get_mut(&r.id) {
                        d.acked = None;
                        d.seq = seq;
                        self.seq = seq;
                    }
                }
                PushOutcome::Erased => {
                    count(Event::PushAnsweredErased);
                    self.docs.remove(&r.id);
                    let seq = match self.tombs.get(&r.id) {
                        Some(t) => t.seq,
                        None => self.next_seq(),
                    };
                    self.tombs.insert(
                        r.id,
                        LocalTomb {
                            pending: false,
                            seq,
                        },
                    );
                }
                PushOutcome::Refused { reason } => {
                    self.refused.push((r.id, reason.clone()));
                }
            }
        }
        for id in &resp.erased {
            if let Some(t) = self.tombs.get_mut(id) {
                t.pending = false;
            }
        }
    }

    fn apply_pull(&mut self, resp: &PullResponse) {
        for item in &resp.items {
            match &item.body {
                FeedBody::Doc { heads, .. } => {
                    let old = self.docs.remove(&item.id);
                    let was_pending = old.as_ref().is_some_and(|d| d.pending);
                    let old_seq = old.as_ref().map(|d| d.seq);
                    let held = match (old, self.tombs.contains_key(&item.id)) {
                        (_, true) => LocalHeld::Erased,
                        (Some(d), false) => LocalHeld::Doc(Box::new(d.am)),
                        (None, false) => LocalHeld::Nothing,
                    };
                    let (mut am, pending) = match apply_feed_item(item, held).unwrap() {
                        FeedApply::Skip => continue,
                        FeedApply::Erase => unreachable!("a document item"),
                        FeedApply::New { am } => (am, false),
                        FeedApply::Merged { am, pending } => (am, pending),
                    };
                    if was_pending {
                        count(Event::PulledIntoPending);
                    }
                    let seq = match old_seq {
                        Some(seq) => seq,
                        None => self.next_seq(),
                    };
                    // A loaded document gets a random actor; edits here must
                    // carry this laptop's own.
                    am.set_actor(self.actor.clone());
                    assert!(
                        was_pending || !pending,
                        "{}: pulled {} and found local changes the hub lacks, \
                         but the record was not pending (a change was marked \
                         acknowledged without reaching the hub)",
                        self.name,
                        item.id
                    );
                    self.docs.insert(
                        item.id,
                        LocalDoc {
                            am,
                            acked: Some(heads.clone()),
                            pending,
                            seq,
                        },
                    );
                }
                FeedBody::Erased => {
                    self.docs.remove(&item.id);
                    let seq = match self.tombs.get(&item.id) {
                        Some(t) => t.seq,
                        None => self.next_seq(),
                    };
                    self.tombs.insert(
                        item.id,
                        LocalTomb {
                            pending: false,
                            seq,
                        },
                    );
                }
            }
        }
        self.cursor = resp.next;
        self.cursor_sig = resp.sig.clone();
        if resp.epoch != 0 {
            self.feed_epoch = resp.epoch;
        }
    }

    /// As `Store::reset_sync_state`.
    fn reset_sync_state(&mut self) {
        for d in self.docs.values_mut() {
            d.acked = None;
            d.pending = true;
        }
        for t in self.tombs.values_mut() {
            t.pending = true;
        }
        self.cursor = 0;
        self.feed_epoch = 0;
        self.cursor_sig = Vec::new();
    }

    // --- sessions ---

    fn start_session(&mut self, now: i64) {
        assert!(self.inflight.is_none());
        let session = Session::new(self.cursor, now, self.batch, self.page)
            .with_feed_epoch(self.feed_epoch)
            .with_cursor_sig(self.cursor_sig.clone());
        let effect = session.start();
        trace(|| format!("{}: session starts (cursor {})", self.name, self.cursor));
        self.inflight = Some((session, effect));
    }

    /// Does the in-flight session's current effect; returns the outcome
    /// when the session is over.
    fn step(&mut self, hub: &mut SimHub, net: &mut Net) -> Option<Outcome> {
        let (mut session, effect) = self.inflight.take().expect("a session in flight");
        let input = match effect {
            Effect::LoadPending { after_seq, limit } => self.load_pending(after_seq, limit),
            Effect::SendPush(req) => net.push(hub, self.device, &self.org.clone(), &req),
            Effect::ApplyPush(resp) => {
                self.apply_push(&resp);
                Input::Applied
            }
            Effect::SendPull(req) => net.pull(hub, self.device, &self.org.clone(), &req),
            Effect::ApplyPull(resp) => {
                self.apply_pull(&resp);
                Input::Applied
            }
            Effect::ResetSyncState => {
                self.reset_sync_state();
                Input::Applied
            }
            Effect::Done(outcome) => return Some(outcome),
        };
        match session.handle(input) {
            Effect::Done(outcome) => {
                trace(|| format!("{}: session done {outcome:?}", self.name));
                Some(outcome)
            }
            next => {
                self.inflight = Some((session, next));
                None
            }
        }
    }
}

/// Runs one whole session (finishing one already in flight, if any).
fn run_session(laptop: &mut SimLaptop, hub: &mut SimHub, net: &mut Net) -> Outcome {
    if laptop.inflight.is_none() {
        laptop.start_session(1_741_079_700);
    }
    for _ in 0..10_000 {
        if let Some(outcome) = laptop.step(hub, net) {
            return outcome;
        }
    }
    panic!("{}: a sync session did not end", laptop.name);
}

// ---------------------------------------------------------------------------
// State comparison
// ---------------------------------------------------------------------------

/// Everything observable about a laptop, for "same final state" checks.
#[derive(Debug, Clone, PartialEq)]
struct LaptopState {
    docs: BTreeMap<Uuid, (Heads, Option<Heads>, bool, Snapshot)>,
    tombs: BTreeMap<Uuid, LocalTomb>,
    cursor: u64,
}

fn laptop_state(l: &mut SimLaptop) -> LaptopState {
    LaptopState {
        docs: l
            .docs
            .iter_mut()
            .map(|(id, d)| {
                (
                    *id,
                    (
                        Heads::from_hashes(&d.am.get_heads()),
                        d.acked.clone(),
                        d.pending,
                        doc::read(&d.am).unwrap(),
                    ),
                )
            })
            .collect(),
        tombs: l.tombs.clone(),
        cursor: l.cursor,
    }
}

/// Everything observable about the hub, per org.
#[derive(Debug, Clone, PartialEq)]
struct HubState {
    docs: BTreeMap<(String, Uuid), (Heads, u64, String)>,
    tombs: BTreeMap<(String, Uuid), u64>,
    feed: BTreeMap<String, u64>,
}

fn hub_state(h: &SimHub) -> HubState {
    let mut state = HubState {
        docs: BTreeMap::new(),
        tombs: BTreeMap::new(),
        feed: BTreeMap::new(),
    };
    for org in h.storage.orgs() {
        for (id, d) in h.storage.docs(&org) {
            state
                .docs
                .insert((org.clone(), id), (d.heads, d.seq, d.origin));
        }
        for (id, t) in h.storage.tombstones(&org) {
            state.tombs.insert((org.clone(), id), t.seq);
        }
        let head = h.storage.feed_meta(&org).map_or(0, |m| m.head);
        state.feed.insert(org, head);
    }
    state
}

// ---------------------------------------------------------------------------
// The randomised simulation
// ---------------------------------------------------------------------------

type Fingerprint = (
    HubState,
    Vec<(
        Vec<(Uuid, Heads, Option<Heads>, bool)>,
        BTreeMap<Uuid, LocalTomb>,
        u64,
    )>,
);

struct World {
    hub: SimHub,
    laptops: Vec<SimLaptop>,
    net: Net,
    rng: ChaCha8Rng,
    minute: i64,
    /// Every record ever created, with its org.
    created: BTreeMap<Uuid, String>,
    /// Records deleted by a laptop of their own org.
    deleted: BTreeSet<Uuid>,
    /// Org-A ids that org B's laptop tried to erase.
    foreign_erasures: BTreeSet<Uuid>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n_a = rng.random_range(3..=5);
        let mut laptops = Vec::new();
        for i in 0..=n_a {
            let (name, org) = if i < n_a {
                (format!("a{i}"), ORG_A)
            } else {
                ("b0".to_string(), ORG_B)
            };
            let mut l = SimLaptop::with_rng(&name, org, &mut rng);
            // Small batches and pages, so sessions span several requests.
            l.batch = rng.random_range(1..=4);
            l.page = rng.random_range(1..=4);
            laptops.push(l);
        }
        World {
            hub: SimHub::default(),
            laptops,
            // 5, 10 or 20 % each of dropped requests, lost answers, duplicates.
            net: Net::lossy(seed, [0.05, 0.1, 0.2][(seed % 3) as usize]),
            rng,
            minute: 0,
            created: BTreeMap::new(),
            deleted: BTreeSet::new(),
            foreign_erasures: BTreeSet::new(),
        }
    }

    fn random_step(&mut self) {
        self.minute += 1;
        let li = self.rng.random_range(0..self.laptops.len());
        let minute = self.minute;
        if self.laptops[li].inflight.is_some() && self.rng.random_bool(0.7) {
            let (laptops, hub, net) = (&mut self.laptops, &mut self.hub, &mut self.net);
            laptops[li].step(hub, net);
            return;
        }
        let r: f64 = self.rng.random();
        let held: Vec<Uuid> = self.laptops[li].docs.keys().copied().collect();
        if r < 0.22 || (r < 0.67 && held.is_empty()) {
            let id = uuid_from(&mut self.rng);
            let l = &mut self.laptops[li];
            if self.rng.random_bool(0.25) {
                let first = format!("s{}", uuid_from(&mut self.rng).simple());
                l.create_record(&course_record(&l.org, &l.name, id, minute, &first));
            } else {
                l.create(id, minute);
            }
            self.created.insert(id, l.org.clone());
        } else if r < 0.62 {
            let id = *held.choose(&mut self.rng).unwrap();
            let (kind, sessions) = self.laptops[li].kind_and_sessions(&id);
            if kind == Kind::Course && self.rng.random_bool(0.5) {
                let session = random_session(&mut self.rng, &sessions);
                self.laptops[li].put_session(&id, &session, minute);
            } else {
                let patch = random_patch(&mut self.rng, kind, minute);
                self.laptops[li].edit(&id, &patch);
            }
        } else if r < 0.67 {
            let id = *held.choose(&mut self.rng).unwrap();
            self.laptops[li].delete(&id);
            self.deleted.insert(id);
        } else if r < 0.70 && self.laptops[li].org == ORG_B {
            // A misbehaving org-B client erasing a (leaked) org-A id.
            let targets: Vec<Uuid> = self.hub.org_docs(ORG_A).into_iter().collect();
            if let Some(id) = targets.choose(&mut self.rng) {
                let l = &mut self.laptops[li];
                let seq = l.next_seq();
                trace(|| format!("{}: erase foreign {}", l.name, short(id)));
                l.tombs.insert(*id, LocalTomb { pending: true, seq });
                self.foreign_erasures.insert(*id);
                count(Event::ForeignErasure);
            }
        } else if self.laptops[li].inflight.is_none() {
            self.laptops[li].start_session(minute);
        } else {
            let (laptops, hub, net) = (&mut self.laptops, &mut self.hub, &mut self.net);
            laptops[li].step(hub, net);
        }
    }

    /// What a lossless sync round can change: heads, acknowledgements,
    /// pending marks, tombstones, cursors, and the hub's feed.
    fn fingerprint(&mut self) -> Fingerprint {
        let laptops = self
            .laptops
            .iter_mut()
            .map(|l| {
                let docs = l
                    .docs
                    .iter_mut()
                    .map(|(id, d)| {
                        let heads = Heads::from_hashes(&d.am.get_heads());
                        (*id, heads, d.acked.clone(), d.pending)
                    })
                    .collect();
                (docs, l.tombs.clone(), l.cursor)
            })
            .collect();
        (hub_state(&self.hub), laptops)
    }

    /// Loss off; every laptop finishes its session in flight, then all sync
    /// in round-robin (at least twice each) until a whole round changes
    /// nothing. A lossless round-robin that changes nothing is a fixed
    /// point: running it again cannot change anything either.
    fn quiesce(&mut self) {
        self.net = Net::perfect();
        let (laptops, hub, net) = (&mut self.laptops, &mut self.hub, &mut self.net);
        for l in laptops.iter_mut() {
            if l.inflight.is_some() {
                run_session(l, hub, net);
            }
        }
        trace(|| "--- quiescence ---".to_string());
        let mut before = self.fingerprint();
        for round in 0..8 {
            let (laptops, hub, net) = (&mut self.laptops, &mut self.hub, &mut self.net);
            for l in laptops.iter_mut() {
                let outcome = run_session(l, hub, net);
                assert!(
                    outcome.complete(),
                    "{}: a lossless session did not complete: {outcome:?}",
                    l.name
                );
            }
            let after = self.fingerprint();
            if round >= 1 && after == before {
                return;
            }
            before = after;
        }
        panic!("no quiescence after 8 lossless rounds");
    }

    fn check(&mut self) {
        let hub_a = self.hub.org_docs(ORG_A);
        let hub_b = self.hub.org_docs(ORG_B);
        let hub_snaps: BTreeMap<(String, Uuid), (Snapshot, Heads)> = [ORG_A, ORG_B]
            .into_iter()
            .flat_map(|org| {
                let hub = &self.hub;
                hub.org_docs(org)
                    .into_iter()
                    .map(move |id| ((org.to_string(), id), hub.snapshot(org, &id)))
            })
            .collect();

        // (1) + (4): every replica holds exactly its org's records, with the
        // same fields, conflicts and heads as the hub.
        for l in &mut self.laptops {
            let expected = if l.org == ORG_A { &hub_a } else { &hub_b };
            let held: BTreeSet<Uuid> = l.docs.keys().copied().collect();
            assert_eq!(
                &held, expected,
                "{} holds a different set of records than the hub",
                l.name
            );
            for (id, d) in &mut l.docs {
                let snap = doc::read(&d.am).unwrap();
                let (hub_snap, hub_heads) = &hub_snaps[&(l.org.clone(), *id)];
                assert_eq!(
                    &snap, hub_snap,
                    "{}: record {id} differs from the hub's",
                    l.name
                );
                assert_eq!(
                    &Heads::from_hashes(&d.am.get_heads()),
                    hub_heads,
                    "{}: record {id} has other heads than the hub's",
                    l.name
                );
                assert_eq!(
                    snap.fields["org"],
                    json!(l.org),
                    "{}: foreign record",
                    l.name
                );
                if !snap.conflicts.is_empty() {
                    count(Event::FinalConflict);
                }
                if snap.conflicts.keys().any(|k| k.starts_with("sessions.")) {
                    count(Event::FinalSessionConflict);
                }
                // (5) no pending marks remain.
                assert!(!d.pending, "{}: record {id} still pending", l.name);
                assert_eq!(d.acked.as_ref(), Some(hub_heads));
            }
            for (id, t) in &l.tombs {
                assert!(!t.pending, "{}: erasure of {id} still pending", l.name);
            }
        }

        // (2) nothing acknowledged is lost.
        for (id, org) in &self.created {
            if self.deleted.contains(id) {
                continue;
            }
            assert!(
                self.hub.has(org, id),
                "record {id} of {org} was never deleted but the hub lost it"
            );
        }

        // (3) deleted records are gone everywhere and tombstoned.
        for id in &self.deleted {
            let org = &self.created[id];
            assert!(!self.hub.has(org, id), "erased {id} is on the hub");
            assert!(
                self.hub.erased(org, id),
                "erased {id} has no tombstone on the hub"
            );
            for l in &self.laptops {
                assert!(!l.docs.contains_key(id), "{}: erased {id} is back", l.name);
                if &l.org == org {
                    assert!(
                        l.tombs.contains_key(id),
                        "{}: erased {id} has no local tombstone",
                        l.name
                    );
                }
            }
        }

        // (4) org B never received anything of org A; org B's attempts to
        // erase org-A records had no effect.
        for l in &self.laptops {
            if l.org != ORG_B {
                continue;
            }
            for id in self.hub.served.get(&l.device).into_iter().flatten() {
                assert_eq!(
                    self.created.get(id).map(String::as_str),
                    Some(ORG_B),
                    "{}: the hub sent it {id}, not a record of its org",
                    l.name
                );
            }
        }
        for id in &self.foreign_erasures {
            if !self.deleted.contains(id) {
                assert!(self.hub.has(ORG_A, id), "org B erased org A's record {id}");
            }
        }
    }
}

fn simulate(seed: u64) -> usize {
    let steps = std::env::var("OUTPOST_SIM_STEPS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(STEPS_PER_SEED);
    let mut w = World::new(seed);
    for _ in 0..steps {
        w.random_step();
    }
    w.quiesce();
    w.check();
    w.hub.org_docs(ORG_A).len() + w.hub.org_docs(ORG_B).len()
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("OUTPOST_SIM_SEED") {
        return vec![s.trim().parse().expect("OUTPOST_SIM_SEED must be a number")];
    }
    let n = std::env::var("OUTPOST_SIM_SEEDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    (0..n).collect()
}

/// Runs one seed; returns the number of records and the paths taken, or on
/// failure the panic message and the trace's tail.
fn run_seed(seed: u64) -> Result<(usize, EventCounts), String> {
    take_trace();
    take_events();
    catch_unwind(AssertUnwindSafe(|| simulate(seed)))
        .map(|records| (records, take_events()))
        .map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let t = take_trace();
            let tail = t[t.len().saturating_sub(80)..].join("\n");
            format!("{msg}\nlast steps:\n{tail}")
        })
}

type SeedResult = (u64, Result<(usize, EventCounts), String>);

#[test]
fn convergence_under_loss_and_duplication() {
    let seeds = seeds();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Seeds run on all cores; each seed is independent and deterministic.
    let results: Vec<SeedResult> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let r = run_seed(seed);
                        let failed = r.is_err();
                        out.push((seed, r));
                        if failed {
                            // Stop handing out seeds; report the first failure.
                            next.store(seeds.len(), Ordering::Relaxed);
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut failures: Vec<&SeedResult> = results.iter().filter(|(_, r)| r.is_err()).collect();
    failures.sort_by_key(|(seed, _)| *seed);
    if let Some((seed, Err(msg))) = failures.first() {
        panic!(
            "sync simulation failed for seed {seed} \
             (rerun with OUTPOST_SIM_SEED={seed}): {msg}"
        );
    }
    let mut records = 0;
    let mut events: EventCounts = Default::default();
    for (n, counts) in results.iter().filter_map(|(_, r)| r.as_ref().ok()) {
        records += n;
        for (total, c) in events.iter_mut().zip(counts) {
            *total += c;
        }
    }
    assert!(records > 0, "the simulation created no records");
    if seeds.len() >= 50 {
        for e in Event::ALL {
            assert!(
                events[e as usize] > 0,
                "the simulation never took the path {e:?}; it has become too tame"
            );
        }
    }
    if std::env::var_os("OUTPOST_SIM_STATS").is_some() {
        for e in Event::ALL {
            eprintln!("{e:?}: {}", events[e as usize]);
        }
        eprintln!("records at the end, all seeds: {records}");
    }
}

// ---------------------------------------------------------------------------
// Deterministic scenarios
// ---------------------------------------------------------------------------

fn fixed_laptop(n: u8, org: &str) -> SimLaptop {
    SimLaptop::new(
        &format!("l{n}"),
        org,
        Uuid::from_bytes([n; 16]),
        ActorId::from([n; 16]),
    )
}

fn fixed_id(n: u8) -> Uuid {
    uuid::Builder::from_random_bytes([n.wrapping_mul(37).wrapping_add(1); 16]).into_uuid()
}

fn patch(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn sync_ok(l: &mut SimLaptop, hub: &mut SimHub) -> Outcome {
    let o = run_session(l, hub, &mut Net::perfect());
    assert!(o.complete(), "{}: {o:?}", l.name);
    o
}

#[test]
fn offline_copy_does_not_bring_back_an_erased_record() {
    let mut hub = SimHub::default();
    let mut l1 = fixed_laptop(1, ORG_A);
    let mut l2 = fixed_laptop(2, ORG_A);
    let mut l3 = fixed_laptop(3, ORG_A);
    let x = l1.create(fixed_id(1), 0);
    let y = l1.create(fixed_id(2), 0);
    sync_ok(&mut l1, &mut hub);
    sync_ok(&mut l2, &mut hub);
    sync_ok(&mut l3, &mut hub);
    assert!(l2.docs.contains_key(&x) && l3.docs.contains_key(&y));
    // An old push of x, captured in transit, to be replayed late.
    let mut stale_net = Net::perfect();
    l2.edit(&x, &patch(&[("outcome", json!("partly"))]));
    run_session(&mut l2.clone(), &mut hub.clone(), &mut stale_net);
    let stale_push = stale_net.pushes[0].clone();

    // l2 and l3 go offline; l2 keeps editing x, l3 leaves it alone.
    l2.edit(&x, &patch(&[("note", json!("ringde tillbaka"))]));
    l1.delete(&x);
    let o = sync_ok(&mut l1, &mut hub);
    assert_eq!(o.pushed_erasures, 1);
    assert!(!hub.has(ORG_A, &x) && hub.erased(ORG_A, &x));

    // The delayed duplicate of the old push arrives: not stored.
    let resp = hub.handle_push(l2.device, ORG_A, &stale_push);
    assert_eq!(resp.results[0].outcome, PushOutcome::Erased);
    assert!(!hub.has(ORG_A, &x));

    // l2 comes back with pending edits of x: the hub answers Erased.
    let o = sync_ok(&mut l2, &mut hub);
    assert!(!l2.docs.contains_key(&x), "l2 kept the erased record");
    assert_eq!(l2.tombs.get(&x).map(|t| t.pending), Some(false));
    assert_eq!(o.pushed_docs, 1, "x was answered (Erased)");
    assert!(!hub.has(ORG_A, &x), "l2 brought x back");
    // l3 had an unchanged copy: the feed erases it.
    let o = sync_ok(&mut l3, &mut hub);
    assert_eq!(o.pulled_erasures, 1);
    assert!(!l3.docs.contains_key(&x) && l3.tombs.contains_key(&x));
    // A laptop that never had x learns the tombstone too.
    let mut l4 = fixed_laptop(4, ORG_A);
    sync_ok(&mut l4, &mut hub);
    assert!(l4.tombs.contains_key(&x) && !l4.docs.contains_key(&x));
    for l in [&mut l1, &mut l2, &mut l3, &mut l4] {
        sync_ok(l, &mut hub);
        assert_eq!(l.docs.keys().collect::<Vec<_>>(), vec![&y]);
    }
    assert_eq!(hub.org_docs(ORG_A).iter().collect::<Vec<_>>(), vec![&y]);
}

/// Ids and erasures are scoped by organisation: another org's erasure of
/// an id touches nothing of this org, and a record of another org under an
/// id this org erased is that org's own record, stored and kept.
#[test]
fn other_org_cannot_erase_read_or_overwrite() {
    let mut hub = SimHub::default();
    let mut a = fixed_laptop(1, ORG_A);
    let mut b = fixed_laptop(2, ORG_B);
    let x = a.create(fixed_id(1), 0);
    let y = a.create(fixed_id(2), 0);
    sync_ok(&mut a, &mut hub);
    let heads_before = hub.heads(ORG_A, &x);

    // B erases A's id: acknowledged, and only B's own (empty) copy of that
    // id is tombstoned.
    let seq = b.next_seq();
    b.tombs.insert(x, LocalTomb { pending: true, seq });
    let o = sync_ok(&mut b, &mut hub);
    assert_eq!(o.pushed_erasures, 1);
    assert!(!b.tombs[&x].pending);
    assert!(hub.has(ORG_A, &x) && !hub.erased(ORG_A, &x));
    assert!(hub.erased(ORG_B, &x));
    let o = sync_ok(&mut a, &mut hub);
    assert_eq!(o.pulled_erasures, 0, "A hears nothing of B's erasure");
    assert!(a.docs.contains_key(&x));

    // A erases y; a laptop of B then saves its own record under the id y:
    // B's record is stored for B and kept on its laptop (the old hub told
    // it to erase its own record), A's y stays erased.
    a.delete(&y);
    sync_ok(&mut a, &mut hub);
    let mut b2 = fixed_laptop(3, ORG_B);
    b2.create(y, 5);
    let o = run_session(&mut b2, &mut hub, &mut Net::perfect());
    assert!(o.complete(), "{o:?}");
    assert!(b2.docs.contains_key(&y), "B's laptop lost its own record");
    assert!(hub.has(ORG_B, &y) && hub.erased(ORG_A, &y) && !hub.has(ORG_A, &y));
    assert_eq!(hub.heads(ORG_A, &x), heads_before);
    assert_eq!(o.pulled_docs, 0);
    for device in [b.device, b2.device] {
        assert!(
            hub.served
                .get(&device)
                .is_none_or(|s| !s.contains(&x) && !s.contains(&y)),
            "org A's records were served to org B"
        );
    }
    sync_ok(&mut a, &mut hub);
    assert!(!a.docs.contains_key(&y), "A's erased y came back from B");

    // A still syncs x normally.
    a.edit(&x, &patch(&[("minutes", json!(45))]));
    sync_ok(&mut a, &mut hub);
    assert_ne!(hub.heads(ORG_A, &x), heads_before);
}

/// A world where a session of `l` needs several push batches and pull pages:
/// pending creates, edits that race another laptop's edits of the same
/// field, an erasure of a synced record, one of a never-synced record, and
/// other laptops' records waiting in the feed.
fn busy_world() -> (SimHub, SimLaptop, SimLaptop) {
    let mut hub = SimHub::default();
    let mut l = fixed_laptop(1, ORG_A);
    let mut m = fixed_laptop(2, ORG_A);
    let shared: Vec<Uuid> = (0..3).map(|i| m.create(fixed_id(10 + i), 0)).collect();
    sync_ok(&mut m, &mut hub);
    sync_ok(&mut l, &mut hub);
    for (i, id) in shared.iter().enumerate() {
        m.edit(
            id,
            &patch(&[("outcome", json!("referred")), ("minutes", json!(50))]),
        );
        l.edit(id, &patch(&[("outcome", json!(OUTCOMES[1 + i % 3]))]));
    }
    for i in 0..5 {
        m.create(fixed_id(20 + i), 1);
        l.create(fixed_id(30 + i), 1);
    }
    sync_ok(&mut m, &mut hub);
    l.delete(&shared[2]);
    let tmp = l.create(fixed_id(40), 2);
    l.delete(&tmp);
    l.batch = 2;
    l.page = 2;
    (hub, l, m)
}

#[test]
fn interrupted_sync_resumes_without_duplicates() {
    let (hub0, l0, m0) = busy_world();

    let (mut ref_hub, mut ref_l) = (hub0.clone(), l0.clone());
    let mut net = Net::perfect();
    let o = run_session(&mut ref_l, &mut ref_hub, &mut net);
    assert!(o.complete());
    let requests = net.sent;
    assert!(requests >= 6, "the session should span many requests");
    let want_hub = hub_state(&ref_hub);
    let want_l = laptop_state(&mut ref_l);
    assert!(want_l.docs.values().all(|d| !d.2), "nothing left pending");

    for k in 0..requests {
        for fate in [Fate::DropRequest, Fate::LoseResponse, Fate::Duplicate] {
            let (mut hub, mut l) = (hub0.clone(), l0.clone());
            let mut net = Net::perfect();
            net.script.insert(k, fate);
            let mut sessions = 0;
            loop {
                sessions += 1;
                assert!(sessions <= 3, "request {k} {fate:?}: no recovery");
                if run_session(&mut l, &mut hub, &mut net).complete() {
                    break;
                }
            }
            let expect_sessions = if fate == Fate::Duplicate { 1 } else { 2 };
            assert_eq!(sessions, expect_sessions, "request {k} {fate:?}");
            assert_eq!(
                hub_state(&hub),
                want_hub,
                "hub differs after losing request {k} ({fate:?})"
            );
            assert_eq!(
                laptop_state(&mut l),
                want_l,
                "laptop differs after losing request {k} ({fate:?})"
            );
            // The other laptop converges to the same documents as well.
            let mut m = m0.clone();
            sync_ok(&mut m, &mut hub);
            for (id, d) in &mut m.docs {
                assert_eq!(doc::read(&d.am).unwrap(), hub.snapshot(ORG_A, id).0);
            }
            assert_eq!(
                m.docs.keys().collect::<Vec<_>>(),
                hub.org_docs(ORG_A).iter().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn hub_restored_from_backup_gets_full_documents() {
    let mut hub = SimHub::default();
    let mut l = fixed_laptop(1, ORG_A);
    let mut m = fixed_laptop(2, ORG_A);
    let [x, y, z] = [1, 2, 3].map(|i| l.create(fixed_id(i), 0));
    sync_ok(&mut l, &mut hub);
    let backup = hub.clone();
    l.edit(&y, &patch(&[("outcome", json!("partly"))]));
    sync_ok(&mut l, &mut hub);
    sync_ok(&mut m, &mut hub);
    for id in [x, y, z] {
        l.edit(&id, &patch(&[("minutes", json!(75))]));
    }

    // Restore: the hub forgets x and holds y as it was before l's edit
    // (the feed counter and z are unaffected).
    hub.storage.forget(ORG_A, &x);
    hub.storage
        .restore_doc(ORG_A, y, backup.doc(ORG_A, &y).unwrap());

    let mut net = Net::perfect();
    let o = run_session(&mut l, &mut hub, &mut net);
    assert!(o.complete(), "{o:?}");
    assert_eq!(net.pushes.len(), 2, "one incremental push, one full resend");
    let first: Vec<(Uuid, bool)> = net.pushes[0].docs.iter().map(|d| (d.id, d.full)).collect();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|(_, full)| !full));
    let mut resent: Vec<(Uuid, bool)> = net.pushes[1].docs.iter().map(|d| (d.id, d.full)).collect();
    resent.sort();
    let mut want = vec![(x, true), (y, true)];
    want.sort();
    assert_eq!(resent, want, "x and y resent whole in the same session");
    for id in [x, y, z] {
        let d = l.docs.get_mut(&id).unwrap();
        assert!(!d.pending);
        assert_eq!(hub.heads(ORG_A, &id), Heads::from_hashes(&d.am.get_heads()));
        assert_eq!(hub.snapshot(ORG_A, &id).0.fields["minutes"], json!(75));
    }
    assert_eq!(hub.snapshot(ORG_A, &y).0.fields["outcome"], json!("partly"));
    sync_ok(&mut m, &mut hub);
    for id in [x, y, z] {
        assert_eq!(
            doc::read(&m.docs[&id].am).unwrap(),
            hub.snapshot(ORG_A, &id).0
        );
    }
}

/// The whole hub restored from a backup, then `outpostd hub restored`
/// (new feed epochs): (a) records acknowledged after the backup must reach
/// the hub again, though laptops hold them as acknowledged, and (b) a
/// laptop whose cursor counts in the old feed must not skip the entries
/// the restored feed gives the same positions.
#[test]
fn hub_restored_whole_from_backup_converges() {
    let mut hub = SimHub::default();
    let mut l1 = fixed_laptop(1, ORG_A);
    let mut l2 = fixed_laptop(2, ORG_A);
    let x1 = l1.create(fixed_id(1), 0);
    sync_ok(&mut l1, &mut hub);
    sync_ok(&mut l2, &mut hub);
    let backup = hub.clone();
    let x2 = l1.create(fixed_id(2), 1);
    sync_ok(&mut l1, &mut hub);
    sync_ok(&mut l2, &mut hub);
    assert_eq!(l2.cursor, 2);

    hub = backup; // feed counter back at 1, x2 gone
    hub.restored();
    let x3 = l1.create(fixed_id(3), 2); // feed seq 2 again
    for _ in 0..2 {
        for l in [&mut l1, &mut l2] {
            // Whatever the session reports, it must not lose records.
            run_session(l, &mut hub, &mut Net::perfect());
        }
    }
    assert!(
        l2.docs.contains_key(&x3),
        "l2 never receives x3 (cursor ahead of the restored feed)"
    );
    assert!(
        hub.has(ORG_A, &x2),
        "x2, acknowledged after the backup, is never re-sent"
    );
    assert!(hub.has(ORG_A, &x1));
}

/// Restored from a backup and started without `outpostd hub restored`:
/// the first laptop whose cursor is ahead of the restored feed makes the
/// hub give the feed a new epoch itself, and every laptop then sends
/// everything again, so nothing acknowledged after the backup is lost.
#[test]
fn a_cursor_ahead_of_a_restored_feed_makes_everyone_resend() {
    let mut hub = SimHub::default();
    let mut l1 = fixed_laptop(1, ORG_A);
    let mut l2 = fixed_laptop(2, ORG_A);
    let x1 = l1.create(fixed_id(1), 0);
    sync_ok(&mut l1, &mut hub);
    let backup = hub.clone();
    let x2 = l1.create(fixed_id(2), 1);
    let y = l2.create(fixed_id(3), 2);
    sync_ok(&mut l1, &mut hub);
    sync_ok(&mut l2, &mut hub);
    sync_ok(&mut l1, &mut hub);
    assert_eq!(l2.cursor, 3);

    hub = backup; // feed back at 1: x2 and y gone from the hub
    let o = run_session(&mut l2, &mut hub, &mut Net::perfect());
    assert!(o.complete(), "{o:?}");
    assert_eq!(o.feed_resets, 1, "{o:?}");
    let o = run_session(&mut l1, &mut hub, &mut Net::perfect());
    assert!(o.complete(), "{o:?}");
    assert_eq!(o.feed_resets, 1, "l1 sees the new epoch: {o:?}");
    sync_ok(&mut l2, &mut hub);
    let all = BTreeSet::from([x1, x2, y]);
    assert_eq!(hub.org_docs(ORG_A), all);
    for l in [&l1, &l2] {
        assert_eq!(
            l.docs.keys().copied().collect::<BTreeSet<_>>(),
            all,
            "{}",
            l.name
        );
        for id in &all {
            assert_eq!(
                doc::read(&l.docs[id].am).unwrap(),
                hub.snapshot(ORG_A, id).0
            );
        }
    }
    // Settled: the next sessions reset nothing.
    for l in [&mut l1, &mut l2] {
        let o = run_session(l, &mut hub, &mut Net::perfect());
        assert!(o.complete() && o.feed_resets == 0, "{o:?}");
    }
}

#[test]
fn refused_document_does_not_block_others() {
    for batch in [1, 10] {
        let mut hub = SimHub::default();
        let mut l = fixed_laptop(1, ORG_A);
        l.batch = batch;
        let a = l.create(fixed_id(1), 0);
        let bad = l.create(fixed_id(2), 0);
        let b = l.create(fixed_id(3), 0);
        let c = l.create(fixed_id(4), 0);
        // Bypass validation: write the field straight into the document.
        {
            let d = l.docs.get_mut(&bad).unwrap();
            d.am.put(ROOT, "note", "19121212-1212").unwrap();
            d.am.commit();
            assert!(Record::from_fields(&doc::read(&d.am).unwrap().fields).is_err());
        }
        let o = run_session(&mut l, &mut hub, &mut Net::perfect());
        assert!(!o.complete());
        assert!(o.error.is_none(), "{o:?}");
        assert_eq!(o.refused.len(), 1, "{o:?}");
        let (id, reason) = &o.refused[0];
        assert_eq!(*id, bad);
        assert!(reason.contains("note"), "reason names the field: {reason}");
        assert!(
            !reason.contains("1212") && !reason.contains("19121212"),
            "reason repeats the personnummer: {reason}"
        );
        assert_eq!(o.pushed_docs, 3);
        assert_eq!(hub.org_docs(ORG_A), BTreeSet::from([a, b, c]));
        assert!(l.docs[&bad].pending, "the refused record stays pending");
        for id in [a, b, c] {
            assert!(!l.docs[&id].pending);
        }
        // Next session: refused again (once), still not stored.
        let o = run_session(&mut l, &mut hub, &mut Net::perfect());
        assert_eq!(o.refused.len(), 1);
        assert!(!hub.has(ORG_A, &bad));
        // Overwriting the note does not get it through: the personnummer
        // stays in the document's history, which the hub screens too
        // (issue 9); only erasing the record, history and all, removes it.
        l.edit(&bad, &patch(&[("note", json!("kort anteckning"))]));
        let o = run_session(&mut l, &mut hub, &mut Net::perfect());
        assert_eq!(o.refused.len(), 1, "{o:?}");
        assert!(o.refused[0].1.contains("history"), "{o:?}");
        assert!(!hub.has(ORG_A, &bad));
    }
}

#[test]
fn backoff_delay_is_bounded_growing_and_deterministic() {
    let b = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(300),
    };
    let mut prev = Duration::ZERO;
    for attempt in 0..100u32 {
        for unit in [0.0, 0.1, 0.5, 0.9, 0.999_999, 1.0] {
            let d = b.delay(attempt, unit);
            assert!(d <= b.cap, "attempt {attempt} unit {unit}: {d:?} > cap");
            assert!(
                d >= b.base / 2,
                "attempt {attempt} unit {unit}: {d:?} < base/2"
            );
            assert_eq!(d, b.delay(attempt, unit), "deterministic");
        }
        let top = b.delay(attempt, 1.0);
        assert!(top >= prev, "attempt {attempt}: {top:?} < {prev:?}");
        if attempt < 7 {
            assert!(top > prev, "grows while below the cap");
        }
        prev = top;
    }
    assert_eq!(b.delay(0, 1.0), b.base);
    assert_eq!(b.delay(3, 1.0), Duration::from_secs(16));
    assert_eq!(b.delay(40, 1.0), b.cap);
    assert_eq!(b.delay(u32::MAX, 1.0), b.cap);
    assert_eq!(b.delay(5, 0.0), b.base / 2);
}

proptest::proptest! {
    #[test]
    fn backoff_delay_stays_within_bounds(
        base_ms in 1u64..600_000,
        cap_factor in 1u64..1000,
        attempt in 0u32..200,
        unit in 0.0f64..1.0,
    ) {
        let base = Duration::from_millis(base_ms);
        let b = Backoff { base, cap: base * cap_factor as u32 };
        let d = b.delay(attempt, unit);
        proptest::prop_assert!(d <= b.cap);
        proptest::prop_assert!(d >= base / 2);
        proptest::prop_assert!(d <= b.delay(attempt, 1.0));
        proptest::prop_assert!(b.delay(attempt, 1.0) <= b.delay(attempt + 1, 1.0));
    }
}
