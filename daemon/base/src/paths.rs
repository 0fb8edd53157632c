//! Where Outpost keeps its files, and reading a settings file.
//!
//! The data dir comes from `--data-dir` / `OUTPOST_DATA_DIR`, else the
//! platform's data dir from the `directories` crate; settings files live in
//! the data dir when one is given (so a test or a second laptop profile is
//! fully self-contained), else in the platform's config dir, and
//! `OUTPOST_CONFIG_DIR` overrides it. The laptop's and the hub's settings
//! are each layered the same way: defaults, then their TOML file
//! ([`read_toml`]), then `OUTPOST_*` environment variables.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub const CONFIG_FILE: &str = "config.toml";
pub const LOG_DIR: &str = "logs";
/// The organisation's service catalogue override, beside `config.toml`.
pub const CATALOGUE_FILE: &str = "catalogue.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no home directory found to keep Outpost's data in; pass --data-dir DIR or set OUTPOST_DATA_DIR"
    )]
    NoHome,
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid settings TOML: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("environment variable {name}={value:?} is not valid: {reason}")]
    Env {
        name: String,
        value: String,
        reason: String,
    },
}

/// The directories one Outpost installation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
}

impl Paths {
    /// Resolves the dirs: explicit `--data-dir` (already merged with
    /// `OUTPOST_DATA_DIR` by clap) first, then the platform default.
    pub fn resolve(data_dir: Option<&Path>) -> Result<Paths, ConfigError> {
        let config_override = std::env::var_os("OUTPOST_CONFIG_DIR").map(PathBuf::from);
        let (data_dir, config_dir) = match data_dir {
            Some(d) => (d.to_path_buf(), d.to_path_buf()),
            None => {
                let dirs = directories::ProjectDirs::from("se", "Outpost", "outpost")
                    .ok_or(ConfigError::NoHome)?;
                (
                    dirs.data_dir().to_path_buf(),
                    dirs.config_dir().to_path_buf(),
                )
            }
        };
        let config_dir = config_override.unwrap_or(config_dir);
        Ok(Paths {
            data_dir,
            config_file: config_dir.join(CONFIG_FILE),
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join(LOG_DIR)
    }
}

/// Reads a settings file: `None` when it does not exist, an error that
/// names the file when it cannot be read or is not valid TOML for `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map(Some)
            .map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
