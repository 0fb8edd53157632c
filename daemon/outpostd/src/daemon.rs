//! The laptop daemon's lifecycle: one instance per data dir (the lock in
//! `outpost_store::instance`), syncing by itself, serving the staff web
//! app (`outpost-web`) on 127.0.0.1, a clean stop.

use std::future::Future;
use std::path::Path;

use std::time::Duration;

use outpost_base::logging::Chain;
use outpost_proto::sync::{FailureKind, Outcome};
use outpost_store::client::HubClient;
use outpost_store::config::{Paths, Settings};
use outpost_store::store::{Store, StoreError};
use outpost_store::sync::{SyncLock, SyncOptions};
use outpost_store::transport::TransportError;

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

/// How long the daemon leaves a "person must act" failure alone before it
/// tries once more on its own (a hub upgraded to a compatible protocol, a
/// token an admin re-activated): long, because each try is a request the
/// hub refuses and logs. A change to the laptop's hub settings, its token
/// or its CA file is tried at once instead (see [`Blocked`]).
pub const NEEDS_PERSON_RECHECK: Duration = Duration::from_secs(60 * 60);

/// The daemon's waiting rules, in one place so they can be tested.
#[derive(Debug, Clone, Copy)]
struct Timing {
    backoff: outpost_proto::sync::Backoff,
    interval: Duration,
    needs_person: Duration,
}

impl Timing {
    fn from_settings(settings: &Settings) -> Timing {
        let interval = Duration::from_secs(settings.sync_interval_secs.max(10));
        Timing {
            backoff: outpost_proto::sync::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(settings.max_backoff_secs.max(5)),
            },
            interval,
            needs_person: NEEDS_PERSON_RECHECK.max(interval),
        }
    }
}

/// A sync stopped by something only a person can fix, and the transport
/// settings it failed with: until those change (new enrolment, a fixed
/// CA file or hub URL) a store change does not wake a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Blocked {
    settings: u64,
}

/// What to do after a sync attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Sleep this long (unless the store changes).
    delay: Duration,
    /// Consecutive transient failures, for the backoff.
    failures: u32,
    blocked: Option<Blocked>,
}

/// The daemon's decision after one attempt: retry with capped backoff and
/// jitter while the hub is unreachable or busy; after a "person must act"
/// failure stop probing and wait [`NEEDS_PERSON_RECHECK`] (or for the
/// settings to change); otherwise sync again after the interval. `unit` is
/// the jitter's random number in [0, 1).
fn plan_next(
    result: &Result<SyncResult, SyncFailure>,
    failures: u32,
    blocked: Option<Blocked>,
    timing: &Timing,
    unit: f64,
) -> Plan {
    match result {
        Ok(SyncResult::Done | SyncResult::Skipped) => Plan {
            delay: timing.interval,
            failures: 0,
            blocked: None,
        },
        Ok(SyncResult::NotEnrolled) => Plan {
            delay: timing.interval,
            failures: 0,
            blocked: None,
        },
        Ok(SyncResult::StillBlocked) => Plan {
            delay: timing.needs_person,
            failures: 0,
            blocked,
        },
        Err(f) if f.kind == FailureKind::NeedsPerson => Plan {
            delay: timing.needs_person,
            failures: 0,
            blocked: Some(Blocked {
                settings: f.settings,
            }),
        },
        Err(_) => Plan {
            delay: timing.backoff.delay(failures, unit),
            failures: failures.saturating_add(1),
            blocked: None,
        },
    }
}

/// Runs the daemon until `shutdown` resolves: syncs at start, shortly after
/// the store changes (debounced), periodically while online, and with
/// capped exponential backoff plus jitter while the hub is unreachable.
/// When a person must act (token revoked, wrong org, protocol or TLS
/// trouble) it stops probing and waits for the laptop's hub settings to
/// change, or an hour. Between those it sleeps on its timer and the file
/// watcher, using no CPU.
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

    // The staff web app runs beside the sync loop and stops with it. If it
    // cannot listen (a configured `ui_port` taken) the daemon still syncs:
    // records can be made with `outpost` meanwhile, and the log says why.
    let (web_stop, web_stopped) = tokio::sync::watch::channel(false);
    let web = match outpost_web::bind(settings.ui_port).await {
        Ok(listener) => {
            let config = outpost_web::WebConfig::from_settings(paths.clone(), &settings);
            let mut stopped = web_stopped.clone();
            Some(tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = outpost_web::serve(listener, config, stop).await {
                    tracing::error!(error = %e, "the web app stopped");
                }
            }))
        }
        Err(e) => {
            tracing::error!(
                port = settings.ui_port,
                error = %e,
                "the web app could not listen on 127.0.0.1; set another ui_port (0 picks a free one)"
            );
            None
        }
    };

    // The watcher thread only pokes a channel; all work happens here.
    let (poke_tx, mut poke_rx) = tokio::sync::mpsc::channel::<()>(1);
    let store_file = Store::file(&paths.data_dir);
    let _watcher = watch_store(&paths.data_dir, &store_file, poke_tx);

    let timing = Timing::from_settings(&settings);
    let debounce = Duration::from_secs(2);
    let mut failures: u32 = 0;
    let mut blocked: Option<Blocked> = None;
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
        let result =
            tokio::task::spawn_blocking(move || sync_once(&paths2, trigger, blocked)).await;
        let result = match result {
            Ok(r) => r,
            Err(e) => Err(SyncFailure {
                kind: FailureKind::Transient,
                message: format!("sync task failed: {e}"),
                settings: 0,
            }),
        };
        let plan = plan_next(&result, failures, blocked, &timing, rand::random::<f64>());
        match &result {
            Err(f) if f.kind == FailureKind::NeedsPerson => tracing::warn!(
                error = %f.message,
                recheck_in_secs = plan.delay.as_secs(),
                "sync needs a person to act; not retrying until the hub settings, token or CA file change"
            ),
            Err(f) => tracing::info!(
                error = %f.message,
                retry_in_secs = plan.delay.as_secs(),
                "hub unreachable; will retry"
            ),
            Ok(_) => {}
        }
        failures = plan.failures;
        blocked = plan.blocked;
        next_sync = tokio::time::Instant::now() + plan.delay;
        trigger = Trigger::Timer;
    }
    tracing::info!("outpostd stopping");
    let _ = web_stop.send(true);
    if let Some(web) = web {
        let _ = web.await;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncResult {
    Done,
    Skipped,
    NotEnrolled,
    /// Not tried: still blocked on a person, and the settings are as they
    /// were when it failed.
    StillBlocked,
}

/// A failed attempt (the store already recorded it for `outpost status`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SyncFailure {
    kind: FailureKind,
    message: String,
    /// Fingerprint of the hub settings it failed with ([`settings_print`]).
    settings: u64,
}

impl SyncFailure {
    fn transient(e: impl std::fmt::Display) -> SyncFailure {
        SyncFailure {
            kind: FailureKind::Transient,
            message: e.to_string(),
            settings: 0,
        }
    }
}

/// A fingerprint of everything on the laptop a person changes to fix a
/// "person must act" failure: hub URL, device token, CA file (path and
/// contents). Kept in memory only; the token never leaves this hash.
fn settings_print(settings: &Settings, token: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    settings.hub_url.hash(&mut h);
    token.hash(&mut h);
    settings.ca_file.hash(&mut h);
    if let Some(ca) = &settings.ca_file {
        std::fs::read(ca).ok().hash(&mut h);
    }
    h.finish()
}

/// One sync attempt on a blocking thread.
fn sync_once(
    paths: &Paths,
    trigger: Trigger,
    blocked: Option<Blocked>,
) -> Result<SyncResult, SyncFailure> {
    let settings = Settings::load(paths).map_err(|e| SyncFailure {
        kind: FailureKind::NeedsPerson,
        message: format!("the config file cannot be read: {e}"),
        settings: 0,
    })?;
    let mut store = Store::open(&paths.data_dir).map_err(SyncFailure::transient)?;
    let (Some(url), Some(token)) = (
        settings.hub_url.clone(),
        store.hub_token().map_err(SyncFailure::transient)?,
    ) else {
        return Ok(SyncResult::NotEnrolled);
    };
    let print = settings_print(&settings, &token);
    if let Some(b) = blocked {
        // Waiting for a person: only a change they made is worth a request
        // (the timer's hourly recheck goes through regardless).
        if trigger == Trigger::StoreChanged && b.settings == print {
            return Ok(SyncResult::StillBlocked);
        }
    } else if trigger == Trigger::StoreChanged
        && !store.has_pending().map_err(SyncFailure::transient)?
    {
        // The store changes under us too (our own pulls, sync bookkeeping):
        // only a change that left something to push is worth a sync.
        return Ok(SyncResult::Skipped);
    }
    let _lock = SyncLock::acquire(&paths.data_dir).map_err(SyncFailure::transient)?;
    let now = chrono::Local::now().fixed_offset();
    let client = match HubClient::new(&url, settings.ca_file.as_deref(), Some(token)) {
        Ok(c) => c,
        Err(e) => {
            // Bad URL or CA file: record it so `outpost status` says so.
            let e = TransportError::from(e);
            let outcome = Outcome {
                error: Some(Chain(&e).to_string()),
                error_kind: Some(e.kind()),
                ..Outcome::default()
            };
            store
                .record_sync(&outcome, now)
                .map_err(SyncFailure::transient)?;
            return Err(SyncFailure {
                kind: e.kind(),
                message: Chain(&e).to_string(),
                settings: print,
            });
        }
    };
    tracing::debug!(?trigger, "syncing");
    let outcome =
        outpost_store::sync::run(&mut store, &client, SyncOptions::default(), now, |_| {})
            .map_err(SyncFailure::transient)?;
    match outcome.error {
        Some(message) => Err(SyncFailure {
            kind: outcome.error_kind.unwrap_or_default(),
            message,
            settings: print,
        }),
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

    fn timing() -> Timing {
        Timing {
            backoff: outpost_proto::sync::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(600),
            },
            interval: Duration::from_secs(900),
            needs_person: NEEDS_PERSON_RECHECK,
        }
    }

    fn failed(kind: FailureKind) -> Result<SyncResult, SyncFailure> {
        Err(SyncFailure {
            kind,
            message: "x".into(),
            settings: 42,
        })
    }

    #[test]
    fn transient_failures_back_off_and_a_success_resets() {
        let t = timing();
        let mut failures = 0;
        let mut delays = Vec::new();
        for _ in 0..10 {
            // unit 1.0: the top of each jitter window.
            let plan = plan_next(&failed(FailureKind::Transient), failures, None, &t, 1.0);
            assert_eq!(plan.blocked, None);
            failures = plan.failures;
            delays.push(plan.delay);
        }
        assert_eq!(failures, 10);
        assert_eq!(delays[0], Duration::from_secs(5));
        assert_eq!(delays[1], Duration::from_secs(10));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(600), "capped");
        let plan = plan_next(&Ok(SyncResult::Done), failures, None, &t, 0.5);
        assert_eq!(plan.failures, 0);
        assert_eq!(plan.delay, t.interval);
    }

    #[test]
    fn a_person_must_act_stops_the_backoff_and_waits_long() {
        let t = timing();
        // After three quick transient retries, the hub says "revoked".
        let plan = plan_next(&failed(FailureKind::NeedsPerson), 3, None, &t, 0.0);
        assert_eq!(plan.delay, NEEDS_PERSON_RECHECK);
        assert_eq!(plan.failures, 0, "no backoff ladder to climb");
        assert_eq!(plan.blocked, Some(Blocked { settings: 42 }));
        // A store change with the same settings is not tried and keeps
        // the long wait and the block.
        let again = plan_next(&Ok(SyncResult::StillBlocked), 0, plan.blocked, &t, 0.0);
        assert_eq!(again.delay, NEEDS_PERSON_RECHECK);
        assert_eq!(again.blocked, plan.blocked);
        // Re-enrolled: the next sync works and the daemon is back to normal.
        let fixed = plan_next(&Ok(SyncResult::Done), 0, again.blocked, &t, 0.0);
        assert_eq!(fixed.blocked, None);
        assert_eq!(fixed.delay, t.interval);
        // The recheck is never sooner than the normal interval.
        let slow = Timing {
            interval: Duration::from_secs(2 * 3600),
            ..Timing::from_settings(&Settings {
                sync_interval_secs: 2 * 3600,
                ..Settings::default()
            })
        };
        assert_eq!(slow.needs_person, Duration::from_secs(2 * 3600));
    }

    #[test]
    fn the_settings_print_changes_with_token_url_and_ca_contents() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "one").unwrap();
        let s = Settings {
            hub_url: Some("https://hub.example.se".into()),
            ca_file: Some(ca.clone()),
            ..Settings::default()
        };
        let base = settings_print(&s, "tok");
        assert_eq!(base, settings_print(&s, "tok"));
        assert_ne!(base, settings_print(&s, "new token"));
        let other_hub = Settings {
            hub_url: Some("https://other.example.se".into()),
            ..s.clone()
        };
        assert_ne!(base, settings_print(&other_hub, "tok"));
        std::fs::write(&ca, "two").unwrap();
        assert_ne!(base, settings_print(&s, "tok"), "a fixed CA file counts");
    }

    #[test]
    fn a_revoked_laptop_waiting_on_a_person_skips_store_changes_until_reenrolled() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            data_dir: dir.path().to_path_buf(),
            config_file: dir.path().join("config.toml"),
        };
        let store = Store::init(dir.path(), "mjolby", "Mjölby bibliotek", "AB").unwrap();
        store.set_hub_token(Some("revoked-token")).unwrap();
        let settings = Settings {
            // Nothing listens here; the blocked path must not even try.
            hub_url: Some("http://127.0.0.1:9".into()),
            ..Settings::default()
        };
        settings.save(&paths).unwrap();
        let print = settings_print(&settings, "revoked-token");
        let blocked = Some(Blocked { settings: print });
        assert_eq!(
            sync_once(&paths, Trigger::StoreChanged, blocked),
            Ok(SyncResult::StillBlocked)
        );
        // A new enrolment changes the token: the store change is tried
        // (and here fails as unreachable, a transient failure).
        store.set_hub_token(Some("new-token")).unwrap();
        let tried = sync_once(&paths, Trigger::StoreChanged, blocked);
        assert!(
            matches!(&tried, Err(f) if f.kind == FailureKind::Transient),
            "{tried:?}"
        );
    }
}
