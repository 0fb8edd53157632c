//! The laptop daemon's lifecycle: one instance per data dir, a clean stop.
//!
//! The lock file `outpostd.lock` in the data dir is held (an OS file lock,
//! released by the kernel even on kill -9) for as long as the daemon runs;
//! `outpost status` probes it to tell whether a daemon is running.

use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::client::HubClient;
use crate::config::{Paths, Settings};
use crate::store::{Store, StoreError};
use crate::sync::{SyncLock, SyncOptions};

pub const LOCK_FILE: &str = "outpostd.lock";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "another outpostd is already running for {0}; stop it first (or use another --data-dir)"
    )]
    AlreadyRunning(PathBuf),
    #[error("could not open the lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Proof that this process is the data dir's only daemon.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(data_dir: &Path) -> Result<InstanceLock, DaemonError> {
        let path = data_dir.join(LOCK_FILE);
        let lock_err = |source| DaemonError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(DaemonError::AlreadyRunning(data_dir.to_path_buf()));
            }
            Err(TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        // The pid is for people reading the file; the lock is what counts.
        file.set_len(0).map_err(lock_err)?;
        writeln!(file, "{}", std::process::id()).map_err(lock_err)?;
        Ok(InstanceLock { _file: file })
    }
}

/// Whether a daemon holds the data dir's lock right now.
pub fn is_running(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
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
    let outcome = crate::sync::run(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_is_refused_and_status_sees_the_first() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_running(dir.path()));
        let first = InstanceLock::acquire(dir.path()).unwrap();
        assert!(is_running(dir.path()));
        assert!(matches!(
            InstanceLock::acquire(dir.path()),
            Err(DaemonError::AlreadyRunning(_))
        ));
        drop(first);
        assert!(!is_running(dir.path()));
        InstanceLock::acquire(dir.path()).unwrap();
    }
}
