//! The hub's own settings, layered like the laptop's: defaults, then
//! `hub.toml` (beside the laptop's `config.toml`: in the data dir when
//! `--data-dir` is given), then `OUTPOST_HUB_*` environment variables, then
//! command-line flags (the binary applies those last).

use std::net::SocketAddr;
use std::path::PathBuf;

use outpost_base::paths::{ConfigError, Paths, read_toml};
use serde::{Deserialize, Serialize};

pub const HUB_CONFIG_FILE: &str = "hub.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM). With `tls_key`, the hub speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS proxy only).
    pub allow_insecure_http: bool,
    /// Where the hub keeps its data. Unset: the embedded SQLite database
    /// `hub.db` in the data dir.
    pub database: Option<String>,
    /// `tracing` filter, e.g. `info` or `outpost_hub=debug`.
    pub log: String,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            tls_cert: None,
            tls_key: None,
            allow_insecure_http: false,
            database: None,
            log: "info".into(),
        }
    }
}

impl HubSettings {
    /// The settings file for these paths.
    pub fn file(paths: &Paths) -> PathBuf {
        paths.config_file.with_file_name(HUB_CONFIG_FILE)
    }

    /// Defaults, then `hub.toml` (if present), then `OUTPOST_HUB_*` env.
    pub fn load(paths: &Paths) -> Result<HubSettings, ConfigError> {
        let mut settings: HubSettings = read_toml(&HubSettings::file(paths))?.unwrap_or_default();
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
    }

    /// Env layer, with the lookup passed in so tests need not touch the
    /// process environment. `OUTPOST_LOG` is honoured too, as on laptops.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let bad = |name: &str, value: String, reason: &str| ConfigError::Env {
            name: name.into(),
            value,
            reason: reason.into(),
        };
        if let Some(v) = var("OUTPOST_HUB_LISTEN") {
            self.listen = v.trim().parse().map_err(|_| {
                bad(
                    "OUTPOST_HUB_LISTEN",
                    v,
                    "expected an address and port, e.g. 127.0.0.1:7878",
                )
            })?;
        }
        if let Some(v) = var("OUTPOST_HUB_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = var("OUTPOST_HUB_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        if let Some(v) = var("OUTPOST_HUB_ALLOW_INSECURE_HTTP") {
            self.allow_insecure_http = match v.trim() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => {
                    return Err(bad(
                        "OUTPOST_HUB_ALLOW_INSECURE_HTTP",
                        v,
                        "expected true or false",
                    ));
                }
            };
        }
        if let Some(v) = var("OUTPOST_HUB_DATABASE") {
            self.database = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = var("OUTPOST_HUB_LOG").or_else(|| var("OUTPOST_LOG")) {
            self.log = v;
        }
        Ok(())
    }

    /// Checks what the settings ask for can be served: TLS files come in
    /// pairs, plain HTTP only on loopback unless allowed, and the database
    /// is one this build has.
    pub fn check(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("give both a TLS certificate and its key (tls_cert and tls_key, or --tls-cert and --tls-key)".into());
        }
        if self.tls_cert.is_none() && !self.listen.ip().is_loopback() && !self.allow_insecure_http {
            return Err(format!(
                "refusing plain HTTP on {}: give --tls-cert and --tls-key, or --allow-insecure-http if a TLS proxy sits in front",
                self.listen
            ));
        }
        if let Some(db) = &self.database {
            return Err(format!(
                "database {db:?}: this hub keeps its data in the embedded SQLite database (hub.db in the data dir); remove the database setting (PostgreSQL support is planned)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::resolve(Some(dir.path())).unwrap();
        std::fs::write(
            HubSettings::file(&paths),
            "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n",
        )
        .unwrap();
        let mut s = read_toml::<HubSettings>(&HubSettings::file(&paths))
            .unwrap()
            .unwrap();
        assert_eq!(s.listen.port(), 9000);
        s.apply_env(|n| (n == "OUTPOST_HUB_LISTEN").then(|| "127.0.0.1:9001".to_string()))
            .unwrap();
        assert_eq!(s.listen.port(), 9001, "env wins over the file");
        assert_eq!(s.log, "debug", "file wins over the default");
        assert!(s.check().is_ok());
    }

    #[test]
    fn bad_values_name_the_variable_or_setting() {
        let mut s = HubSettings::default();
        let err = s
            .apply_env(|n| (n == "OUTPOST_HUB_LISTEN").then(|| "everywhere".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("OUTPOST_HUB_LISTEN"));
        assert!(toml::from_str::<HubSettings>("listn = \"x\"").is_err());
        let open = HubSettings {
            listen: "0.0.0.0:7878".parse().unwrap(),
            ..HubSettings::default()
        };
        assert!(open.check().unwrap_err().contains("--tls-cert"));
        let half = HubSettings {
            tls_cert: Some("cert.pem".into()),
            ..HubSettings::default()
        };
        assert!(half.check().is_err());
    }
}
