//! The hub's own settings, layered like the laptop's: defaults, then
//! `hub.toml` (beside the laptop's `config.toml`: in the data dir when
//! `--data-dir` is given), then `OUTPOST_HUB_*` environment variables, then
//! command-line flags (the binary applies those last).

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use outpost_base::paths::{ConfigError, Paths, read_toml};
use outpost_proto::hub::FeedLimits;

use crate::server::Limits;
use serde::{Deserialize, Serialize};

pub const HUB_CONFIG_FILE: &str = "hub.toml";
/// The largest `database_pool_size` accepted: more connections than this
/// from one process only make PostgreSQL switch between them.
pub const MAX_POOL_SIZE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The name people reach the hub at (`hub.kommun.se` or
    /// `hub.kommun.se:8443`, as the browser sends it in `Host`): the
    /// dashboard answers there and at the listen address, nowhere else.
    pub public_name: Option<String>,
    /// TLS certificate chain (PEM). With `tls_key`, the hub speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS proxy only).
    pub allow_insecure_http: bool,
    /// Where the hub keeps its data: a PostgreSQL URL
    /// (`postgres://user@host/db`), which several hub processes may
    /// share. Unset: the embedded SQLite database `hub.db` in the data dir.
    pub database: Option<String>,
    /// CA certificate(s) (PEM) the PostgreSQL server's certificate must
    /// be signed by, when the URL's `sslmode` checks certificates
    /// (`verify-ca`, `verify-full`; with a file, `prefer` and `require`
    /// check the chain too, as libpq does). Unset: the system's roots.
    pub database_ca_file: Option<PathBuf>,
    /// PostgreSQL connections this hub process opens at most (unused with
    /// SQLite). Requests beyond it wait for a free one.
    pub database_pool_size: usize,
    /// `tracing` filter, e.g. `info` or `outpost_hub=debug`.
    pub log: String,
    /// Seconds a connection may take to send a complete request head, from
    /// its start or from the previous answer (idle keep-alive).
    pub header_timeout_secs: u64,
    /// Seconds a request body may take to arrive.
    pub body_timeout_secs: u64,
    /// Open connections at most (also bounded by the open-file limit,
    /// which the hub raises to its hard limit at start).
    pub max_connections: usize,
    /// Wrong enrolment codes one client address may try a minute.
    pub enroll_failures_per_minute: u32,
    /// Documents one push may carry.
    pub max_documents_per_push: usize,
    /// Erasures one push may carry.
    pub max_erasures_per_push: usize,
    /// Documents one laptop may push in 24 hours.
    pub max_documents_per_device_per_day: u64,
    /// Erasures one laptop may push in 24 hours.
    pub max_erasures_per_device_per_day: u64,
}

impl Default for HubSettings {
    fn default() -> Self {
        // The limits' defaults live in one place, `server::Limits`.
        let limits = Limits::default();
        HubSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            public_name: None,
            tls_cert: None,
            tls_key: None,
            allow_insecure_http: false,
            database: None,
            database_ca_file: None,
            database_pool_size: outpost_hub_postgres::DEFAULT_POOL_SIZE,
            log: "info".into(),
            header_timeout_secs: limits.header_timeout.as_secs(),
            body_timeout_secs: limits.body_timeout.as_secs(),
            max_connections: limits.max_connections,
            enroll_failures_per_minute: limits.enroll_failures_per_minute,
            max_documents_per_push: limits.feed.docs_per_push,
            max_erasures_per_push: limits.feed.erasures_per_push,
            max_documents_per_device_per_day: limits.feed.docs_per_device_per_day,
            max_erasures_per_device_per_day: limits.feed.erasures_per_device_per_day,
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
        if let Some(v) = var("OUTPOST_HUB_PUBLIC_NAME") {
            self.public_name = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
        if let Some(v) = var("OUTPOST_HUB_DATABASE") {
            self.database = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = var("OUTPOST_HUB_DATABASE_CA_FILE") {
            self.database_ca_file = Some(v.into()).filter(|p: &PathBuf| !p.as_os_str().is_empty());
        }
        if let Some(v) = var("OUTPOST_HUB_LOG").or_else(|| var("OUTPOST_LOG")) {
            self.log = v;
        }
        // Every numeric setting, by its file name in upper case.
        fn number<T: std::str::FromStr>(
            var: &impl Fn(&str) -> Option<String>,
            name: &str,
            slot: &mut T,
        ) -> Result<(), ConfigError> {
            if let Some(v) = var(name) {
                *slot = v.trim().parse().map_err(|_| ConfigError::Env {
                    name: name.into(),
                    value: v,
                    reason: "expected a whole number".into(),
                })?;
            }
            Ok(())
        }
        number(
            &var,
            "OUTPOST_HUB_DATABASE_POOL_SIZE",
            &mut self.database_pool_size,
        )?;
        number(
            &var,
            "OUTPOST_HUB_HEADER_TIMEOUT_SECS",
            &mut self.header_timeout_secs,
        )?;
        number(
            &var,
            "OUTPOST_HUB_BODY_TIMEOUT_SECS",
            &mut self.body_timeout_secs,
        )?;
        number(
            &var,
            "OUTPOST_HUB_MAX_CONNECTIONS",
            &mut self.max_connections,
        )?;
        number(
            &var,
            "OUTPOST_HUB_ENROLL_FAILURES_PER_MINUTE",
            &mut self.enroll_failures_per_minute,
        )?;
        number(
            &var,
            "OUTPOST_HUB_MAX_DOCUMENTS_PER_PUSH",
            &mut self.max_documents_per_push,
        )?;
        number(
            &var,
            "OUTPOST_HUB_MAX_ERASURES_PER_PUSH",
            &mut self.max_erasures_per_push,
        )?;
        number(
            &var,
            "OUTPOST_HUB_MAX_DOCUMENTS_PER_DEVICE_PER_DAY",
            &mut self.max_documents_per_device_per_day,
        )?;
        number(
            &var,
            "OUTPOST_HUB_MAX_ERASURES_PER_DEVICE_PER_DAY",
            &mut self.max_erasures_per_device_per_day,
        )?;
        Ok(())
    }

    /// The bounds the server holds peers to.
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections,
            enroll_failures_per_minute: self.enroll_failures_per_minute,
            feed: FeedLimits {
                docs_per_push: self.max_documents_per_push,
                erasures_per_push: self.max_erasures_per_push,
                docs_per_device_per_day: self.max_documents_per_device_per_day,
                erasures_per_device_per_day: self.max_erasures_per_device_per_day,
            },
        }
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
        if self.header_timeout_secs == 0 || self.body_timeout_secs == 0 {
            return Err("header_timeout_secs and body_timeout_secs must be at least 1".into());
        }
        if self.max_connections < 16 {
            return Err(
                "max_connections must be at least 16 (200 laptops syncing at once need about 430)"
                    .into(),
            );
        }
        if let Some(db) = &self.database {
            crate::backend::check_database(db)?;
        }
        if !(1..=MAX_POOL_SIZE).contains(&self.database_pool_size) {
            return Err(format!(
                "database_pool_size must be between 1 and {MAX_POOL_SIZE} (PostgreSQL allows 100 connections by default, shared by every hub node)"
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
    fn every_setting_has_an_env_override_and_the_database_must_be_postgres() {
        let env = [
            (
                "OUTPOST_HUB_DATABASE",
                "postgres://outpost@db.example/outpost",
            ),
            ("OUTPOST_HUB_DATABASE_CA_FILE", "/etc/outpost/db-ca.pem"),
            ("OUTPOST_HUB_DATABASE_POOL_SIZE", "40"),
            ("OUTPOST_HUB_HEADER_TIMEOUT_SECS", "7"),
            ("OUTPOST_HUB_BODY_TIMEOUT_SECS", "8"),
            ("OUTPOST_HUB_MAX_CONNECTIONS", "900"),
            ("OUTPOST_HUB_ENROLL_FAILURES_PER_MINUTE", "3"),
            ("OUTPOST_HUB_MAX_DOCUMENTS_PER_PUSH", "11"),
            ("OUTPOST_HUB_MAX_ERASURES_PER_PUSH", "12"),
            ("OUTPOST_HUB_MAX_DOCUMENTS_PER_DEVICE_PER_DAY", "13"),
            ("OUTPOST_HUB_MAX_ERASURES_PER_DEVICE_PER_DAY", "14"),
        ];
        let lookup = |n: &str| {
            env.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        let mut s = HubSettings::default();
        s.apply_env(lookup).unwrap();
        assert_eq!(
            s.database.as_deref(),
            Some("postgres://outpost@db.example/outpost")
        );
        assert_eq!(
            s.database_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/outpost/db-ca.pem"))
        );
        assert_eq!(s.database_pool_size, 40);
        assert_eq!((s.header_timeout_secs, s.body_timeout_secs), (7, 8));
        assert_eq!((s.max_connections, s.enroll_failures_per_minute), (900, 3));
        assert_eq!(
            (s.max_documents_per_push, s.max_erasures_per_push),
            (11, 12)
        );
        assert_eq!(
            (
                s.max_documents_per_device_per_day,
                s.max_erasures_per_device_per_day
            ),
            (13, 14)
        );
        assert!(s.check().is_ok());
        let err = HubSettings::default()
            .apply_env(|n| (n == "OUTPOST_HUB_MAX_CONNECTIONS").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("OUTPOST_HUB_MAX_CONNECTIONS"));
        let file = HubSettings {
            database: Some("/var/lib/outpost/hub.db".into()),
            ..HubSettings::default()
        };
        assert!(file.check().unwrap_err().contains("postgres://"));
        let none = HubSettings {
            database_pool_size: 0,
            ..HubSettings::default()
        };
        assert!(none.check().unwrap_err().contains("database_pool_size"));
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
