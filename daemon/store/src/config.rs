//! Where Outpost keeps its files, and its settings.
//!
//! Settings are layered: built-in defaults, then `config.toml`, then
//! `OUTPOST_*` environment variables (env wins). The data dir comes from
//! `--data-dir` / `OUTPOST_DATA_DIR`, else the platform's data dir from the
//! `directories` crate; the config file lives in the data dir when one is
//! given (so a test or a second laptop profile is fully self-contained),
//! else in the platform's config dir, and `OUTPOST_CONFIG_DIR` overrides it.

use std::path::PathBuf;

pub use outpost_base::paths::{
    CATALOGUE_FILE, CONFIG_FILE, ConfigError, LOG_DIR, Paths, read_toml,
};

use serde::{Deserialize, Serialize};

/// The laptop's settings (the hub has its own, in `outpost-hub`). Every
/// field has a default, so an empty or missing config file is fine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Hub base URL, e.g. `https://hub.example.se`; set by `outpost enroll`.
    pub hub_url: Option<String>,
    /// A private CA certificate (PEM) to trust for the hub, pinned.
    pub ca_file: Option<PathBuf>,
    /// Seconds between periodic syncs while online.
    pub sync_interval_secs: u64,
    /// Upper bound of the offline probe backoff, seconds.
    pub max_backoff_secs: u64,
    /// `tracing` filter, e.g. `info` or `outpost_store=debug`.
    pub log: String,
    /// An extra service catalogue (TOML) to merge over the built-in one.
    pub catalogue_file: Option<PathBuf>,
    /// The web app's port on 127.0.0.1; 0 lets the system pick a free one
    /// (its address is then written to `ui.json` for `outpost ui`).
    pub ui_port: u16,
    /// Minutes without a request after which a web app session ends (a
    /// shared laptop left open at a drop-in).
    pub ui_idle_minutes: u64,
    /// The web app's language: `sv` (default) or `en`.
    pub ui_lang: String,
    /// The visit form's channel when none was chosen before (e.g. `drop_in`).
    pub default_channel: Option<String>,
    /// The visit form's language of help when none was chosen before.
    pub default_language: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hub_url: None,
            ca_file: None,
            sync_interval_secs: 15 * 60,
            max_backoff_secs: 10 * 60,
            log: "info".into(),
            catalogue_file: None,
            ui_port: 0,
            ui_idle_minutes: 30,
            ui_lang: "sv".into(),
            default_channel: None,
            default_language: None,
        }
    }
}

/// Fuzz entry (`fuzz/`, and the corpus replay test): a `config.toml` as
/// [`Settings::load`] reads it.
#[cfg(feature = "test-support")]
pub fn fuzz_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(mut s) = toml::from_str::<Settings>(text)
    {
        let _ = s.apply_env(|_| None);
    }
}

impl Settings {
    /// Defaults, then the TOML file (if present), then `OUTPOST_*` env vars.
    pub fn load(paths: &Paths) -> Result<Settings, ConfigError> {
        let mut settings: Settings = read_toml(&paths.config_file)?.unwrap_or_default();
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
    }

    /// Env layer, with the lookup passed in so tests need not touch the
    /// process environment.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let num = |name: &str, value: String| -> Result<u64, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                value,
                reason: "expected a whole number".into(),
            })
        };
        if let Some(v) = var("OUTPOST_HUB_URL") {
            self.hub_url = Some(v);
        }
        if let Some(v) = var("OUTPOST_CA_FILE") {
            self.ca_file = Some(v.into());
        }
        if let Some(v) = var("OUTPOST_SYNC_INTERVAL_SECS") {
            self.sync_interval_secs = num("OUTPOST_SYNC_INTERVAL_SECS", v)?;
        }
        if let Some(v) = var("OUTPOST_MAX_BACKOFF_SECS") {
            self.max_backoff_secs = num("OUTPOST_MAX_BACKOFF_SECS", v)?;
        }
        if let Some(v) = var("OUTPOST_LOG") {
            self.log = v;
        }
        if let Some(v) = var("OUTPOST_CATALOGUE_FILE") {
            self.catalogue_file = Some(v.into());
        }
        if let Some(v) = var("OUTPOST_UI_PORT") {
            self.ui_port = v.trim().parse().map_err(|_| ConfigError::Env {
                name: "OUTPOST_UI_PORT".into(),
                value: v,
                reason: "expected a port number (0 picks a free one)".into(),
            })?;
        }
        if let Some(v) = var("OUTPOST_UI_IDLE_MINUTES") {
            self.ui_idle_minutes = num("OUTPOST_UI_IDLE_MINUTES", v)?;
        }
        if let Some(v) = var("OUTPOST_UI_LANG") {
            self.ui_lang = v;
        }
        Ok(())
    }

    /// Writes the settings file (used by `enroll`), atomically: a crash
    /// leaves either the old file or the new one. A new file is 0600.
    pub fn save(&self, paths: &Paths) -> std::io::Result<()> {
        if let Some(dir) = paths.config_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = toml::to_string_pretty(self).map_err(std::io::Error::other)?;
        outpost_base::files::replace_atomically(&paths.config_file, |f| {
            std::io::Write::write_all(f, text.as_bytes()).map_err(|source| {
                outpost_base::files::ReplaceError::Io {
                    path: paths.config_file.clone(),
                    source,
                }
            })
        })
        .map_err(|e| match e {
            outpost_base::files::ReplaceError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(Some(dir.path())).unwrap();
        std::fs::write(
            &paths.config_file,
            "sync_interval_secs = 60\nlog = \"debug\"\n",
        )
        .unwrap();
        let mut s =
            toml::from_str::<Settings>(&std::fs::read_to_string(&paths.config_file).unwrap())
                .unwrap();
        assert_eq!(s.sync_interval_secs, 60);
        assert_eq!(s.max_backoff_secs, Settings::default().max_backoff_secs);
        s.apply_env(|n| (n == "OUTPOST_SYNC_INTERVAL_SECS").then(|| "5".to_string()))
            .unwrap();
        assert_eq!(s.sync_interval_secs, 5, "env wins over the file");
        assert_eq!(s.log, "debug", "file wins over the default");
    }

    #[test]
    fn a_bad_env_number_names_the_variable() {
        let mut s = Settings::default();
        let err = s
            .apply_env(|n| (n == "OUTPOST_MAX_BACKOFF_SECS").then(|| "soon".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("OUTPOST_MAX_BACKOFF_SECS"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Settings>("hub_ur = \"x\"").is_err());
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(Some(dir.path())).unwrap();
        let s = Settings {
            hub_url: Some("https://hub.example".into()),
            ..Settings::default()
        };
        s.save(&paths).unwrap();
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        assert_eq!(toml::from_str::<Settings>(&text).unwrap(), s);
    }
}
