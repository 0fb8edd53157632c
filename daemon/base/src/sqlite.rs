//! The SQLite set-up every Outpost database shares, the laptop store's and
//! the hub's: one place, so both keep the same durability and text rules.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// The settings every Outpost database connection runs with, the laptop's
/// and the hub's: WAL (readers and one writer at once), a full sync on
/// every commit (a saved record survives power loss), erased bytes
/// overwritten, and `fold()` for case-insensitive Swedish text.
pub fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Another process (daemon or a second CLI) may hold the write lock for a
    // moment; wait rather than fail.
    conn.busy_timeout(Duration::from_secs(30))?;
    // Sync touches more distinct statements than the default 16-entry
    // cache holds; a miss means parsing SQL again for every document.
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA foreign_keys = ON;",
    )?;
    // Checkpoint when the WAL passes 10,000 pages (40 MiB) rather than
    // SQLite's 1,000. A sync writes its records in transactions of
    // thousands (one push batch or pull page each), and random-UUID keys make each one dirty thousands of index
    // pages (about 4,500 at 100,000 records), so with 1,000 every commit
    // also checkpointed: reading each page back from the WAL, writing it
    // into the database and syncing the database file, two thirds of the
    // page I/O of a large pull or push. Consecutive transactions dirty
    // mostly the same index pages, which a later checkpoint copies once.
    // The limit truncates the WAL file back to 64 MiB after a checkpoint.
    // The laptop store's and the hub's writers hand these checkpoints to a
    // thread of their own ([`BackgroundCheckpoint`]), at the same limit.
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint = 10000;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    register_fold(conn)
}

/// Registers `fold(text)`: Unicode lowercase. SQLite's own `lower()` only
/// folds A–Z, so `Ödeshög` would never match `ödeshög`.
pub fn register_fold(conn: &Connection) -> Result<(), rusqlite::Error> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|t| t.trim().to_lowercase()))
        },
    )
}

/// WAL frames (4 KiB pages) a writer may add before its log is copied into
/// the database: the limit [`configure`] gives SQLite's own checkpoint.
const CHECKPOINT_FRAMES: i64 = 10_000;

/// WAL frames past which the writer copies the log itself, in its commit,
/// as SQLite would: the thread has not caught up (commits keep overtaking
/// it, so the log never starts again from its beginning; the disk is slow;
/// or it could not start), and the log must not grow without end (160 MiB
/// at most, against 40 MiB before; a fresh laptop's pull of 100,000
/// records reaches it once).
const INLINE_CHECKPOINT_FRAMES: i64 = 40_000;

/// How long the background thread waits before it tries again to finish a
/// checkpoint that a commit overtook.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A writer connection's WAL checkpoints, run on a thread of its own.
///
/// Why: SQLite checkpoints in the commit that crosses the WAL limit. A
/// large push on the hub, or a fresh laptop's pull, commits thousands of
/// records per transaction, and random-UUID keys make each one dirty
/// nearly every index page; the commit that crossed the limit then read
/// those pages back, wrote them into the database and synced it before it
/// returned: a sync of 100,000 records stalled its commits that way
/// several times, one of 10,000 never (its WAL stays under the limit), so
/// large syncs paid more per record.
/// Here the commit only wakes this thread, which checkpoints on its own
/// connection (`PASSIVE`: it never blocks the writer or readers) while
/// the writer goes on. Nothing about durability changes: a commit is in
/// the fully synced WAL before it returns, and a checkpoint cut short by
/// a crash is finished by the next one.
///
/// The thread starts with the first checkpoint it is needed for (most
/// CLI commands never write that much), waits without waking while
/// nothing is written, and ends when this value is dropped: the drop
/// waits for a checkpoint under way. Installing it replaces SQLite's own
/// checkpoint on `conn` with its own hooks; other connections to the
/// same file keep SQLite's.
pub struct BackgroundCheckpoint {
    shared: Arc<Checkpoints>,
}

/// What the writer's hooks and the owner share.
struct Checkpoints {
    path: PathBuf,
    frames: i64,
    inline_frames: i64,
    /// The WAL's size (frames) when the thread was last woken.
    woken_at: AtomicI64,
    /// Set when the owner is dropped, or the thread could not run: the
    /// writer's own commits checkpoint again, as SQLite would.
    inline: AtomicBool,
    /// Checkpoints the thread has run (for tests).
    runs: AtomicU64,
    /// Held by the thread while it checkpoints, so [`BackgroundCheckpoint::truncate`]
    /// waits for it instead of failing (SQLite lets one checkpoint run
    /// at a time and answers any other "busy" at once).
    running: Mutex<()>,
    worker: Mutex<Option<Worker>>,
}

struct Worker {
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

thread_local! {
    /// The checkpoints of the connection committing on this thread: set by
    /// the commit hook, taken by the WAL hook that SQLite calls right after
    /// the same commit, on the same thread (the WAL hook is a plain `fn`
    /// and cannot hold it itself).
    static COMMITTING: RefCell<Option<Arc<Checkpoints>>> = const { RefCell::new(None) };
}

impl BackgroundCheckpoint {
    /// Moves `conn`'s checkpoints (a writer connection to the database at
    /// `path`, set up by [`configure`]) to a thread of their own.
    pub fn install(conn: &Connection, path: &Path) -> BackgroundCheckpoint {
        Self::install_at(conn, path, CHECKPOINT_FRAMES, INLINE_CHECKPOINT_FRAMES)
    }

    fn install_at(
        conn: &Connection,
        path: &Path,
        frames: i64,
        inline_frames: i64,
    ) -> BackgroundCheckpoint {
        let shared = Arc::new(Checkpoints {
            path: path.to_path_buf(),
            frames,
            inline_frames,
            woken_at: AtomicI64::new(0),
            inline: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            running: Mutex::new(()),
            worker: Mutex::new(None),
        });
        let hooked = Arc::clone(&shared);
        conn.commit_hook(Some(move || {
            // `try_with`: a commit while this thread's locals are torn down
            // finds nothing here, and the WAL hook checkpoints in the
            // commit, as SQLite would.
            let _ = COMMITTING.try_with(|c| *c.borrow_mut() = Some(Arc::clone(&hooked)));
            false
        }));
        conn.wal_hook(Some(on_wal_commit));
        BackgroundCheckpoint { shared }
    }

    /// Copies the whole WAL into the database and empties it, on the
    /// writer `conn`, after any checkpoint the thread is running (after
    /// an erasure: the erased bytes must leave the log). False if a reader
    /// still holds part of the log.
    pub fn truncate(&self, conn: &Connection) -> rusqlite::Result<bool> {
        let _alone = self
            .shared
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// How many checkpoints the thread has run.
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::Relaxed)
    }
}

impl Drop for BackgroundCheckpoint {
    fn drop(&mut self) {
        self.shared.inline.store(true, Ordering::SeqCst);
        let worker = self
            .shared
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(Worker { wake, thread }) = worker {
            drop(wake);
            let _ = thread.join();
        }
    }
}

/// SQLite's WAL hook on a writer with a [`BackgroundCheckpoint`]: called
/// after each commit with the WAL's size in frames. It never fails the
/// commit (which is already durable): a checkpoint that cannot run now
/// runs later.
fn on_wal_commit(wal: &Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    let frames = i64::from(frames);
    match COMMITTING
        .try_with(|c| c.borrow_mut().take())
        .ok()
        .flatten()
    {
        Some(checkpoints) => checkpoints.committed(wal, frames),
        // The commit hook left nothing (see there): checkpoint as SQLite.
        None if frames >= CHECKPOINT_FRAMES => inline_checkpoint(wal),
        None => {}
    }
    Ok(())
}

fn inline_checkpoint(wal: &Wal) {
    if let Err(e) = wal.checkpoint() {
        tracing::debug!(error = %e, "WAL checkpoint in the commit did not finish");
    }
}

impl Checkpoints {
    fn committed(self: &Arc<Self>, wal: &Wal, frames: i64) {
        let mut woken_at = self.woken_at.load(Ordering::Relaxed);
        if frames < woken_at {
            // The WAL started again from its beginning.
            woken_at = 0;
            self.woken_at.store(0, Ordering::Relaxed);
        }
        if frames - woken_at < self.frames && frames < self.inline_frames {
            return;
        }
        self.woken_at.store(frames, Ordering::Relaxed);
        // `wake` answers false once the owner is dropped or the thread
        // could not run.
        if frames >= self.inline_frames || !self.wake() {
            inline_checkpoint(wal);
        }
    }

    /// Wakes the thread (starting it the first time); false if it cannot
    /// run.
    fn wake(self: &Arc<Self>) -> bool {
        let mut worker = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.inline.load(Ordering::SeqCst) {
            return false;
        }
        if worker.is_none() {
            // One wake-up may wait while the thread checkpoints: commits
            // in between add nothing it would not copy anyway.
            let (wake, asleep) = std::sync::mpsc::sync_channel(1);
            let me = Arc::clone(self);
            match std::thread::Builder::new()
                .name("wal-checkpoint".into())
                .spawn(move || me.run(&asleep))
            {
                Ok(thread) => *worker = Some(Worker { wake, thread }),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the checkpoint thread; checkpointing in commits");
                    self.inline.store(true, Ordering::SeqCst);
                    return false;
                }
            }
        }
        if let Some(w) = worker.as_ref() {
            // Full means a wake-up is already waiting.
            let _ = w.wake.try_send(());
        }
        true
    }

    /// The thread: a checkpoint per wake-up, and again a second later while
    /// commits keep overtaking it, until it has copied the whole WAL (so
    /// the next commit can start the log from its beginning).
    fn run(&self, asleep: &Receiver<()>) {
        let conn = match Connection::open(&self.path).and_then(|c| configure(&c).map(|()| c)) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot open the database for checkpoints; checkpointing in commits");
                self.inline.store(true, Ordering::SeqCst);
                return;
            }
        };
        while asleep.recv().is_ok() {
            let mut copied_before = -1;
            loop {
                let done = {
                    let _alone = self
                        .running
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                };
                self.runs.fetch_add(1, Ordering::Relaxed);
                let (log, copied) = match done {
                    Ok(done) => done,
                    Err(e) => {
                        tracing::debug!(error = %e, "background WAL checkpoint did not finish");
                        break;
                    }
                };
                // Caught up, or a reader holds the rest back and trying
                // again would only copy nothing.
                if copied >= log || copied == copied_before {
                    break;
                }
                copied_before = copied;
                match asleep.recv_timeout(RETRY_AFTER) {
                    Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a fresh database with the shared set-up, and a table to
    /// fill.
    fn writer(dir: &Path) -> (Connection, PathBuf) {
        let path = dir.join("t.db");
        let conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB NOT NULL);")
            .unwrap();
        (conn, path)
    }

    /// One transaction of `rows` rows of 4 KiB each (a WAL frame or more
    /// each).
    fn fill(conn: &mut Connection, rows: usize) {
        let tx = conn.transaction().unwrap();
        for i in 0..rows {
            tx.execute("INSERT INTO t(v) VALUES (?1)", [vec![i as u8; 4096]])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn a_large_commit_is_checkpointed_by_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = writer(dir.path());
        let bg = BackgroundCheckpoint::install_at(&conn, &path, 64, 1_000_000);
        let before = file_len(&path);
        fill(&mut conn, 200);
        // The writer never checkpoints below the inline limit, so the
        // rows reach the database file only through the thread.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while file_len(&path) < before + 200 * 4096 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread did not checkpoint (runs: {})",
                bg.runs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(bg.runs() >= 1);
        drop(bg);
        drop(conn);
        let reopened = Connection::open(&path).unwrap();
        let n: i64 = reopened
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 200);
    }

    #[test]
    fn small_commits_never_start_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = writer(dir.path());
        let bg = BackgroundCheckpoint::install_at(&conn, &path, 64, 1_000_000);
        for _ in 0..10 {
            fill(&mut conn, 2);
        }
        assert!(bg.shared.worker.lock().unwrap().is_none());
        assert_eq!(bg.runs(), 0);
    }

    #[test]
    fn once_dropped_the_writer_checkpoints_in_its_commits_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = writer(dir.path());
        let bg = BackgroundCheckpoint::install_at(&conn, &path, 64, 1_000_000);
        fill(&mut conn, 100);
        drop(bg);
        let before = file_len(&path);
        fill(&mut conn, 100);
        // Copied in the commit itself: no waiting.
        assert!(
            file_len(&path) >= before + 100 * 4096,
            "the commit did not checkpoint: {} -> {}",
            before,
            file_len(&path)
        );
    }

    #[test]
    fn past_the_inline_limit_the_writer_checkpoints_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = writer(dir.path());
        // The thread is woken only past a limit this test never reaches.
        let bg = BackgroundCheckpoint::install_at(&conn, &path, 1_000_000, 64);
        let before = file_len(&path);
        fill(&mut conn, 100);
        assert!(file_len(&path) >= before + 100 * 4096);
        assert_eq!(bg.runs(), 0);
    }

    #[test]
    fn truncate_empties_the_log_after_the_threads_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut conn, path) = writer(dir.path());
        let bg = BackgroundCheckpoint::install_at(&conn, &path, 64, 1_000_000);
        fill(&mut conn, 300);
        // The thread is (or was) checkpointing what the fill woke it for;
        // truncate waits for it rather than being told "busy".
        assert!(bg.truncate(&conn).unwrap());
        let wal = dir.path().join("t.db-wal");
        assert_eq!(file_len(&wal), 0, "the log still holds frames");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 300);
    }
}
