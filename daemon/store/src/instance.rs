//! One daemon per data dir.
//!
//! The lock file `outpostd.lock` in the data dir is held (an OS file lock,
//! released by the kernel even on kill -9) for as long as the daemon runs;
//! `outpost status` probes it to tell whether a daemon is running. It lives
//! with the store because both the daemon and the CLI need it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "outpostd.lock";

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
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
}

/// Proof that this process is the data dir's only daemon.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(data_dir: &Path) -> Result<InstanceLock, InstanceError> {
        let path = data_dir.join(LOCK_FILE);
        let lock_err = |source| InstanceError::Lock {
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
                return Err(InstanceError::AlreadyRunning(data_dir.to_path_buf()));
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
            Err(InstanceError::AlreadyRunning(_))
        ));
        drop(first);
        assert!(!is_running(dir.path()));
        InstanceLock::acquire(dir.path()).unwrap();
    }
}
