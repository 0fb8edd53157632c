//! Files that hold records or secrets, and files written for people.
//!
//! - Data directories are private (0700) and so are the files in them that
//!   hold records or tokens: the SQLite databases with their `-wal` and
//!   `-shm` files (SQLite gives those the main file's mode), settings and
//!   token files (0600). [`private_dir`] and [`private_file`] also tighten
//!   files left readable by earlier releases.
//! - [`replace_atomically`] writes a file a person named (`export -o`,
//!   `config.toml`) through a new temporary file created exclusively
//!   (`O_EXCL`, which never follows a symlink planted at its name) in the
//!   target's own folder, then renamed over the target: a crash leaves the
//!   old file or the new one, never half of one. It refuses a target that
//!   is a symbolic link, a device, a pipe, a socket or a folder (writing
//!   there would not give a file, or would write somewhere else), keeps an
//!   existing file's mode, and makes new files 0600.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of files that hold records or secrets.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of data directories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (with its parents) and makes it 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Makes `path` 0600, creating it empty first if it does not exist (so a
/// database is never created readable by others, not even for a moment).
pub fn private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::set_permissions(path, Permissions::from_mode(PRIVATE_FILE_MODE))
        }
        Err(e) => Err(e),
    }
}

/// A SQLite database file and the files SQLite keeps beside it.
pub fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Makes a database and its `-wal`/`-shm` files 0600 (those that exist;
/// the database itself is created if missing).
pub fn private_database(db: &Path) -> io::Result<()> {
    let [main, wal, shm] = sqlite_files(db);
    private_file(&main)?;
    for extra in [wal, shm] {
        if extra.exists() {
            std::fs::set_permissions(&extra, Permissions::from_mode(PRIVATE_FILE_MODE))?;
        }
    }
    Ok(())
}

/// Space below which a filesystem counts as full: SQLite grows its files
/// in steps of up to a few hundred KiB, so with less than this a write
/// fails with whatever error the step happened to hit (SQLite often
/// reports a full tmpfs as a "disk I/O error" while resizing its
/// shared-memory file, not as "database or disk is full").
pub const FULL_BELOW_BYTES: u64 = 1024 * 1024;

/// Whether the filesystem holding `path` (or its nearest existing parent)
/// is full, so an I/O error there can be told to people as "the disk is
/// full". False when it cannot be told.
pub fn is_full(path: &Path) -> bool {
    let mut at = Some(path);
    while let Some(p) = at {
        if let Ok(st) = rustix::fs::statvfs(p) {
            return st.f_bavail.saturating_mul(st.f_frsize) < FULL_BELOW_BYTES;
        }
        at = p.parent();
    }
    false
}

#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    #[error(
        "{0} is a symbolic link; refusing to write through it. Give the path of a regular file (or a new name)"
    )]
    Symlink(PathBuf),
    #[error(
        "{0} is {1}, not a regular file; refusing to replace it. Give the path of a regular file (or a new name)"
    )]
    NotAFile(PathBuf, &'static str),
    #[error("could not write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ReplaceError {
    /// The I/O error underneath, if any (e.g. to tell a full disk).
    pub fn io(&self) -> Option<&io::Error> {
        match self {
            ReplaceError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes `target` with `write` as described in the module docs. On any
/// error (from `write` too) the temporary file is removed and `target` is
/// untouched.
pub fn replace_atomically<T, E: From<ReplaceError>>(
    target: &Path,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    let io_err = |path: &Path, source: io::Error| ReplaceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mode = match std::fs::symlink_metadata(target) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_symlink() {
                return Err(ReplaceError::Symlink(target.to_path_buf()).into());
            }
            let what = if kind.is_dir() {
                Some("a folder")
            } else if kind.is_fifo() {
                Some("a named pipe")
            } else if kind.is_block_device() || kind.is_char_device() {
                Some("a device")
            } else if kind.is_socket() {
                Some("a socket")
            } else {
                None
            };
            if let Some(what) = what {
                return Err(ReplaceError::NotAFile(target.to_path_buf(), what).into());
            }
            meta.permissions().mode() & 0o7777
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => PRIVATE_FILE_MODE,
        Err(e) => return Err(io_err(target, e).into()),
    };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A fresh random name, created exclusively: whatever sits at a
    // predictable name (a planted symlink) is never opened.
    let (tmp, mut file) = {
        let mut attempt = 0;
        loop {
            let tmp = dir.join(format!(".{name}.{:016x}.partial", rand::random::<u64>()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(PRIVATE_FILE_MODE)
                .open(&tmp)
            {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err(&tmp, e).into()),
            }
        }
    };
    let result = write(&mut file).and_then(|v| {
        // The umask may have narrowed the mode asked for at creation.
        file.set_permissions(Permissions::from_mode(mode))
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(target, e))?;
        Ok(v)
    });
    drop(file);
    match result.and_then(|v| {
        std::fs::rename(&tmp, target).map_err(|e| io_err(target, e))?;
        Ok(v)
    }) {
        Ok(v) => Ok(v),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_hello(f: &mut File) -> Result<(), ReplaceError> {
        use std::io::Write;
        f.write_all(b"hello").map_err(|source| ReplaceError::Io {
            path: PathBuf::new(),
            source,
        })
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_and_existing_ones_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.csv");
        replace_atomically(&new, write_hello).unwrap();
        assert_eq!(mode(&new), 0o600);
        let shared = dir.path().join("shared.csv");
        std::fs::write(&shared, "old").unwrap();
        std::fs::set_permissions(&shared, Permissions::from_mode(0o640)).unwrap();
        replace_atomically(&shared, write_hello).unwrap();
        assert_eq!(mode(&shared), 0o640);
        assert_eq!(std::fs::read(&shared).unwrap(), b"hello");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn symlinks_and_special_files_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = replace_atomically(&link, write_hello).unwrap_err();
        assert!(matches!(err, ReplaceError::Symlink(_)), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let err = replace_atomically(Path::new("/dev/null"), write_hello).unwrap_err();
        assert!(err.to_string().contains("a device"), "{err}");
    }

    #[test]
    fn private_files_and_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        private_dir(&data).unwrap();
        let m = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, 0o700);
        let db = data.join("x.db");
        std::fs::write(&db, "").unwrap();
        std::fs::set_permissions(&db, Permissions::from_mode(0o644)).unwrap();
        private_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
