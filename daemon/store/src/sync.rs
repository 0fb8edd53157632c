//! The laptop's sync driver: carries out the effects of
//! [`outpost_proto::sync::Session`] against the store and the hub.
//!
//! All decisions live in the session; this loop only does I/O. A file
//! lock (`sync.lock`) serialises sync runs on one data dir, so
//! `outpost sync` is safe while the daemon syncs too (the second waits).

use std::fs::{File, OpenOptions};
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use outpost_base::logging::Chain;
use outpost_proto::sync::{
    self, DEFAULT_PULL_PAGE, DEFAULT_PUSH_BATCH, Effect, Failure, Input, Outcome, Session,
};

use crate::store::{Store, StoreError};
use crate::transport::{Transport, TransportError};

pub const SYNC_LOCK: &str = "sync.lock";

/// Holds the data dir's sync lock until dropped.
#[derive(Debug)]
pub struct SyncLock {
    _file: File,
}

impl SyncLock {
    /// Waits for any other sync of this data dir to finish.
    pub fn acquire(data_dir: &Path) -> std::io::Result<SyncLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join(SYNC_LOCK))?;
        file.lock()?;
        Ok(SyncLock { _file: file })
    }
}

/// Tunables for one run (the benchmark varies them).
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    pub push_batch: usize,
    pub pull_page: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            push_batch: DEFAULT_PUSH_BATCH,
            pull_page: DEFAULT_PULL_PAGE,
        }
    }
}

/// A transport failure as the session sees it: its kind, and the whole
/// chain as the message (the stored status has no `caused by:` lines).
fn transport_failed(e: &TransportError) -> Input {
    Input::Failed(Failure::new(e.kind(), Chain(e).to_string()))
}

/// A local store failure: retried later (a busy or full disk may recover);
/// if it persists, the message names the store problem to fix.
fn store_failed(what: &str, e: &StoreError) -> Input {
    Input::Failed(Failure::transient(format!("{what}: {e}")))
}

/// Runs one sync session to its end and records the outcome in the store.
/// `progress` is told after every applied batch (pushed, pulled so far).
/// `transport` is anything that carries the exchanges: the HTTPS client,
/// or an in-process one in tests (see [`crate::transport`]).
pub fn run(
    store: &mut Store,
    transport: &dyn Transport,
    options: SyncOptions,
    now: DateTime<FixedOffset>,
    mut progress: impl FnMut(&Outcome),
) -> Result<Outcome, StoreError> {
    store.set_sync_cache(true)?;
    let outcome = run_session(store, transport, options, now, &mut progress);
    store.set_sync_cache(false)?;
    outcome
}

fn run_session(
    store: &mut Store,
    transport: &dyn Transport,
    options: SyncOptions,
    now: DateTime<FixedOffset>,
    progress: &mut impl FnMut(&Outcome),
) -> Result<Outcome, StoreError> {
    let cursor = store.pull_cursor()?;
    let mut session = Session::new(
        cursor,
        now.timestamp(),
        options.push_batch,
        options.pull_page,
    )
    .with_feed_epoch(store.feed_epoch()?)
    .with_cursor_sig(store.cursor_sig()?)
    .with_config_version(store.org_config_version()?)
    .with_report(store.device_report()?);
    let mut effect = session.start();
    let outcome = loop {
        let input = match effect {
            Effect::LoadPending { after_seq, limit } => {
                match store
                    .load_pending(after_seq, limit)
                    .and_then(|loaded| Ok((loaded, store.pending_count()?)))
                {
                    Ok(((docs, erased, last_seq), waiting)) => Input::PendingLoaded {
                        docs,
                        waiting,
                        erased,
                        last_seq,
                    },
                    Err(e) => store_failed("could not read the local store", &e),
                }
            }
            Effect::SendPush(req) => match transport.push(&req) {
                Ok(resp) if resp.results.len() == req.docs.len() => Input::PushAnswered(resp),
                Ok(_) => transport_failed(&TransportError::BadAnswer(
                    "the hub answered a push with the wrong number of results".into(),
                )),
                Err(e) => transport_failed(&e),
            },
            Effect::ApplyPush(resp) => match store.apply_push(&resp) {
                Ok(()) => {
                    progress(session.outcome());
                    Input::Applied
                }
                Err(e) => store_failed("could not save the hub's answer", &e),
            },
            Effect::SendPull(req) => match transport.pull(&req) {
                Ok(resp) => match sync::check_version(resp.v) {
                    Ok(()) => Input::PullAnswered(resp),
                    Err(e) => transport_failed(&TransportError::Protocol {
                        message: e.to_string(),
                    }),
                },
                Err(e) => transport_failed(&e),
            },
            Effect::ApplyPull(resp) => match store.apply_pull(&resp) {
                Ok(()) => {
                    progress(session.outcome());
                    Input::Applied
                }
                Err(e) => store_failed("could not save records from the hub", &e),
            },
            Effect::ResetSyncState => match store.reset_sync_state() {
                Ok(()) => {
                    tracing::warn!(
                        "the hub's feed was restored or replaced; sending every record again and re-reading the feed"
                    );
                    Input::Applied
                }
                Err(e) => store_failed("could not reset the sync state", &e),
            },
            Effect::Done(outcome) => break outcome,
        };
        effect = session.handle(input);
    };
    match &outcome.error {
        Some(e) => tracing::warn!(error = %e, kind = ?outcome.error_kind, "sync stopped early"),
        None => tracing::info!(
            pushed = outcome.pushed_docs,
            pulled = outcome.pulled_docs,
            refused = outcome.refused.len(),
            "sync finished"
        ),
    }
    store.record_sync(&outcome, now)?;
    Ok(outcome)
}
