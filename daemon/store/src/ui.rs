//! Where the CLI and the daemon meet for the staff web app (DESIGN.md §8).
//!
//! The web app is served by `outpostd` (crate `outpost-web`); `outpost ui`
//! only has to find it and let the browser in. Both sides link this
//! module, so the CLI needs no server code and no control socket:
//!
//! - [`UI_ADDR_FILE`] (`ui.json` in the data dir) holds the app's base URL;
//!   the daemon writes it once it listens and removes it when it stops.
//!   It is only believed while the daemon's instance lock is held.
//! - A launch token is made by the CLI ([`mint_launch_token`]): the random
//!   token goes into the URL the browser opens, and only its SHA-256 lands
//!   on disk, under [`LAUNCH_DIR`]. The daemon redeems it once
//!   ([`redeem_launch_token`]) by removing that file, so a URL seen in the
//!   process list or the browser history is worthless afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The web app's address, written by the daemon.
pub const UI_ADDR_FILE: &str = "ui.json";
/// Pending launch tokens (their hashes), made by `outpost ui`.
pub const LAUNCH_DIR: &str = "ui-launch";
/// How long an unused launch token stays valid: long enough for a slow
/// browser to start, short enough that a forgotten URL expires.
pub const LAUNCH_TOKEN_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, serde::Serialize, serde::Deserialize, Clone, PartialEq, Eq)]
pub struct UiAddr {
    /// Base URL, e.g. `http://127.0.0.1:43117/`.
    pub url: String,
}

/// Writes the app's address atomically (a reader never sees half a file).
pub fn write_addr(data_dir: &Path, url: &str) -> std::io::Result<()> {
    let path = data_dir.join(UI_ADDR_FILE);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string(&UiAddr {
        url: url.to_string(),
    })
    .map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Removes the address file (the daemon is stopping).
pub fn remove_addr(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(UI_ADDR_FILE));
}

/// The app's base URL while a daemon runs for `data_dir`; `None` when no
/// daemon holds the lock (a file left by a killed daemon is ignored).
pub fn running_url(data_dir: &Path) -> Option<String> {
    if !crate::instance::is_running(data_dir) {
        return None;
    }
    let text = std::fs::read_to_string(data_dir.join(UI_ADDR_FILE)).ok()?;
    serde_json::from_str::<UiAddr>(&text).ok().map(|a| a.url)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn launch_file(data_dir: &Path, token: &str) -> PathBuf {
    data_dir.join(LAUNCH_DIR).join(token_hash(token))
}

/// Makes a one-time launch token and records its hash for the daemon.
pub fn mint_launch_token(data_dir: &Path) -> std::io::Result<String> {
    // Two v4 UUIDs: 244 random bits from the OS generator.
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let dir = data_dir.join(LAUNCH_DIR);
    std::fs::create_dir_all(&dir)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut f = std::fs::File::create(launch_file(data_dir, &token))?;
    write!(f, "{now}")?;
    f.sync_all()?;
    Ok(token)
}

/// Redeems a launch token: true once, for a token minted within
/// [`LAUNCH_TOKEN_TTL`]; false for an unknown, used or expired one.
/// Removing the file is what makes it one-time: of two racing requests
/// only one removal succeeds.
pub fn redeem_launch_token(data_dir: &Path, token: &str) -> bool {
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let path = launch_file(data_dir, token);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return false;
    };
    if std::fs::remove_file(&path).is_err() {
        return false;
    }
    let made: u64 = text.trim().parse().unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    now.saturating_sub(made) <= LAUNCH_TOKEN_TTL.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_token_works_once_and_only_its_hash_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let token = mint_launch_token(dir.path()).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join(LAUNCH_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1);
        assert_ne!(names[0], token, "the token itself is never written");
        assert!(!redeem_launch_token(dir.path(), "abcd"));
        assert!(redeem_launch_token(dir.path(), &token));
        assert!(!redeem_launch_token(dir.path(), &token), "used once");
    }

    #[test]
    fn an_address_file_is_ignored_without_a_running_daemon() {
        let dir = tempfile::tempdir().unwrap();
        write_addr(dir.path(), "http://127.0.0.1:1/").unwrap();
        assert_eq!(running_url(dir.path()), None);
        let _lock = crate::instance::InstanceLock::acquire(dir.path()).unwrap();
        assert_eq!(
            running_url(dir.path()).as_deref(),
            Some("http://127.0.0.1:1/")
        );
    }
}
