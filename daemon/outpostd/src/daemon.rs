//! The laptop daemon's lifecycle: one instance per data dir (the lock in
//! `outpost_store::instance`), syncing by itself, a clean stop.

use std::future::Future;
use std::path::Path;

use std::time::Duration;

use outpost_store::client::HubClient;
use outpost_store::config::{Paths, Settings};
use outpost_store::store::{Store, StoreError};
use outpost_store::sync::{SyncLock, SyncOptions};

pub use outpost_store::instance::{InstanceError, InstanceLock, LOCK_FILE, is_running};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a sync is being started (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Startup,
    StoreChanged,
    Timer,
}

/// Runs the daemon until `shutdown` resolves: syncs at start, shortly after
/// the store changes (debounced), periodically while online, and with
/// capped exponential backoff plus jitter while the hub is unreachable.
/// Between those it sleeps on its timer and the file watcher, using no CPU.
pub async fn run(
    paths: Paths,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let _lock = InstanceLock::acquire(&paths.data_dir)?;
    let store = Store::open(&paths.data_dir)?;
    let id = store.identity().clone();
    let counts = store.counts()?;
    drop(store);
    tracing::info!(
        device = %id.device,
        org = %id.org,
        records = counts.records,
        pending = counts.pending,
        hub = settings.hub_url.as_deref().unwrap_or("(not enrolled)"),
        "outpostd started"
    );

    // The watcher thread only pokes a channel; all work happens here.
    let (poke_tx, mut poke_rx) = tokio::sync::mpsc::channel::<()>(1);
    let store_file = Store::file(&paths.data_dir);
    let _watcher = watch_store(&paths.data_dir, &store_file, poke_tx);

    let backoff = outpost_proto::sync::Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(settings.max_backoff_secs.max(5)),
    };
    let interval = Duration::from_secs(settings.sync_interval_secs.max(10));
    let debounce = Duration::from_secs(2);
    let mut failures: u32 = 0;
    let mut next_sync = tokio::time::Instant::now();
    let mut trigger = Trigger::Startup;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(next_sync) => {}
            Some(()) = poke_rx.recv() => {
                // Let a burst of writes settle, then sync once.
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(debounce) => {}
                }
                while poke_rx.try_recv().is_ok() {}
                trigger = Trigger::StoreChanged;
            }
        }
        let paths2 = paths.clone();
        let result = tokio::task::spawn_blocking(move || sync_once(&paths2, trigger)).await;
        let outcome = match result {
            Ok(r) => r,
            Err(e) => Err(format!("sync task failed: {e}")),
        };
        next_sync = tokio::time::Instant::now()
            + match outcome {
                Ok(SyncResult::Done | SyncResult::Skipped) => {
                    failures = 0;
                    interval
                }
                Ok(SyncResult::NotEnrolled) => interval,
                Err(e) => {
                    let delay = backoff.delay(failures, rand::random::<f64>());
                    failures = failures.saturating_add(1);
                    tracing::info!(error = %e, retry_in_secs = delay.as_secs(), "hub unreachable; will retry");
                    delay
                }
            };
        trigger = Trigger::Timer;
    }
    tracing::info!("outpostd stopping");
    Ok(())
}

enum SyncResult {
    Done,
    Skipped,
    NotEnrolled,
}

/// One sync attempt on a blocking thread. Errors are strings: they go to
/// the log and into the backoff, and the store already recorded them.
fn sync_once(paths: &Paths, trigger: Trigger) -> Result<SyncResult, String> {
    let settings = Settings::load(paths).map_err(|e| e.to_string())?;
    let mut store = Store::open(&paths.data_dir).map_err(|e| e.to_string())?;
    let (Some(url), Some(token)) = (
        settings.hub_url.clone(),
        store.hub_token().map_err(|e| e.to_string())?,
    ) else {
        return Ok(SyncResult::NotEnrolled);
    };
    // The store changes under us too (our own pulls, sync bookkeeping):
    // only a change that left something to push is worth a sync.
    if trigger == Trigger::StoreChanged && !store.has_pending().map_err(|e| e.to_string())? {
        return Ok(SyncResult::Skipped);
    }
    let client = HubClient::new(&url, settings.ca_file.as_deref(), Some(token))
        .map_err(|e| e.to_string())?;
    let _lock = SyncLock::acquire(&paths.data_dir).map_err(|e| e.to_string())?;
    tracing::debug!(?trigger, "syncing");
    let outcome = outpost_store::sync::run(
        &mut store,
        &client,
        SyncOptions::default(),
        chrono::Local::now().fixed_offset(),
        |_| {},
    )
    .map_err(|e| e.to_string())?;
    match outcome.error {
        Some(e) => Err(e),
        None => Ok(SyncResult::Done),
    }
}

/// Watches the data dir for committed writes to the store and pokes `tx`.
/// Returns None (and the daemon falls back to its timer) when the platform
/// watcher cannot start.
///
/// Only data written to the WAL counts: in WAL mode every commit lands
/// there first, while merely opening and reading the store (as the daemon
/// itself does on every wake-up) creates and removes the `-wal` and `-shm`
/// files and writes `-shm`. Reacting to those made the daemon wake itself
/// every debounce period for ever instead of sleeping.
fn watch_store(
    data_dir: &Path,
    store_file: &Path,
    tx: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::event::ModifyKind;
    use notify::{EventKind, RecursiveMode, Watcher};
    let wal_name = format!("{}-wal", store_file.file_name()?.to_string_lossy());
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if !matches!(event.kind, EventKind::Modify(ModifyKind::Data(_))) {
            return;
        }
        let touches_store = event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy() == wal_name)
        });
        if touches_store {
            // A full channel already means "sync soon".
            let _ = tx.try_send(());
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(mut w) => match w.watch(data_dir, RecursiveMode::NonRecursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the store; syncing on the timer only");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a file watcher; syncing on the timer only");
            None
        }
    }
}
