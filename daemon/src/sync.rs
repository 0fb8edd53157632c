//! The laptop's sync driver: carries out the effects of
//! [`outpost_proto::sync::Session`] against the store and the hub.
//!
//! All decisions live in the session; this loop only does I/O. A file
//! lock (`sync.lock`) serialises sync runs on one data dir, so
//! `outpost sync` is safe while the daemon syncs too (the second waits).

use std::fs::{File, OpenOptions};
use std::path::Path;

use chrono::{DateTime, FixedOffset};
use outpost_proto::sync::{
    self, DEFAULT_PULL_PAGE, DEFAULT_PUSH_BATCH, Effect, Input, Outcome, Session,
};

use crate::client::HubClient;
use crate::store::{Store, StoreError};

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

/// Runs one sync session to its end and records the outcome in the store.
/// `progress` is told after every applied batch (pushed, pulled so far).
pub fn run(
    store: &mut Store,
    client: &HubClient,
    options: SyncOptions,
    now: DateTime<FixedOffset>,
    mut progress: impl FnMut(&Outcome),
) -> Result<Outcome, StoreError> {
    store.set_sync_cache(true)?;
    let outcome = run_session(store, client, options, now, &mut progress);
    store.set_sync_cache(false)?;
    outcome
}

fn run_session(
    store: &mut Store,
    client: &HubClient,
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
    .with_feed_epoch(store.feed_epoch()?);
    let mut effect = session.start();
    let outcome = loop {
        let input = match effect {
            Effect::LoadPending { after_seq, limit } => {
                match store.load_pending(after_seq, limit) {
                    Ok((docs, erased, last_seq)) => Input::PendingLoaded {
                        docs,
                        erased,
                        last_seq,
                    },
                    Err(e) => Input::Failed(format!("could not read the local store: {e}")),
                }
            }
            Effect::SendPush(req) => match client.push(&req) {
                Ok(resp) if resp.results.len() == req.docs.len() => Input::PushAnswered(resp),
                Ok(_) => {
                    Input::Failed("the hub answered a push with the wrong number of results".into())
                }
                Err(e) => Input::Failed(e.to_string()),
            },
            Effect::ApplyPush(resp) => match store.apply_push(&resp) {
                Ok(()) => {
                    progress(session.outcome());
                    Input::Applied
                }
                Err(e) => Input::Failed(format!("could not save the hub's answer: {e}")),
            },
            Effect::SendPull(req) => match client.pull(&req) {
                Ok(resp) => match sync::check_version(resp.v) {
                    Ok(()) => Input::PullAnswered(resp),
                    Err(e) => Input::Failed(e.to_string()),
                },
                Err(e) => Input::Failed(e.to_string()),
            },
            Effect::ApplyPull(resp) => match store.apply_pull(&resp) {
                Ok(()) => {
                    progress(session.outcome());
                    Input::Applied
                }
                Err(e) => Input::Failed(format!("could not save records from the hub: {e}")),
            },
            Effect::ResetSyncState => match store.reset_sync_state() {
                Ok(()) => {
                    tracing::warn!(
                        "the hub's feed was restored or replaced; sending every record again and re-reading the feed"
                    );
                    Input::Applied
                }
                Err(e) => Input::Failed(format!("could not reset the sync state: {e}")),
            },
            Effect::Done(outcome) => break outcome,
        };
        effect = session.handle(input);
    };
    match &outcome.error {
        Some(e) => tracing::warn!(error = %e, "sync stopped early"),
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
