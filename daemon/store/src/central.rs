//! Which service catalogue and site list are in force on this laptop.
//!
//! One rule for the CLI (`stats`, `report`, `services`, the unknown-service
//! warning of `visit add`) and the web app: on a laptop enrolled with a hub,
//! the org's configuration the hub delivered at the last sync
//! (`outpost_proto::central`, kept in the store) is the one in force, also
//! offline, and a local `catalogue.toml` is ignored (`outpost doctor` warns
//! about it), so every laptop and the hub count the same records alike. A
//! laptop that is not enrolled uses its local file over the built-in
//! catalogue, and has no site list.

use std::path::{Path, PathBuf};

use outpost_proto::catalogue::{Catalogue, CatalogueError};
use outpost_proto::central::OrgConfig;
use outpost_proto::sites::SiteList;

use crate::config::{CATALOGUE_FILE, Paths, Settings};
use crate::store::{Store, StoreError};

/// Where the catalogue in force comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The hub's configuration of the org (enrolled laptop), at this
    /// version; `catalogue_version` 0: the hub holds no catalogue, so the
    /// built-in one alone.
    Hub {
        version: u64,
        catalogue_version: u64,
    },
    /// Enrolled, but no configuration received yet (never synced, or a hub
    /// from before central configuration): the built-in catalogue.
    HubNotYet,
    /// Not enrolled: the local override file over the built-in catalogue.
    LocalFile(PathBuf),
    /// Not enrolled, no local file.
    Builtin,
}

/// The catalogue and site list statistics, reports and forms use.
#[derive(Debug, Clone)]
pub struct InForce {
    pub catalogue: Catalogue,
    pub sites: SiteList,
    pub source: Source,
    /// A local catalogue file that exists but is not used (enrolled laptop).
    pub ignored_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InForceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error("could not read the service catalogue {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The local override file: the configured one, else `catalogue.toml`
/// beside `config.toml`.
pub fn local_file(settings: &Settings, paths: &Paths) -> PathBuf {
    settings
        .catalogue_file
        .clone()
        .unwrap_or_else(|| paths.config_file.with_file_name(CATALOGUE_FILE))
}

/// Whether this laptop is enrolled (a hub URL and a device token).
pub fn enrolled(store: &Store, settings: &Settings) -> Result<bool, StoreError> {
    Ok(settings.hub_url.is_some() && store.hub_token()?.is_some())
}

/// The catalogue and site list in force (see the module note).
pub fn in_force(
    store: &Store,
    settings: &Settings,
    paths: &Paths,
) -> Result<InForce, InForceError> {
    let file = local_file(settings, paths);
    if enrolled(store, settings)? {
        let ignored_file = file.exists().then_some(file);
        return Ok(match store.org_config()? {
            Some(config) => InForce {
                catalogue: config.catalogue()?,
                sites: config.site_list(),
                source: Source::Hub {
                    version: config.version,
                    catalogue_version: config.catalogue_version,
                },
                ignored_file,
            },
            None => InForce {
                catalogue: Catalogue::builtin(),
                sites: SiteList::default(),
                source: Source::HubNotYet,
                ignored_file,
            },
        });
    }
    let (catalogue, source) = match local_catalogue(&file)? {
        Some(c) => (c, Source::LocalFile(file)),
        None => (Catalogue::builtin(), Source::Builtin),
    };
    Ok(InForce {
        catalogue,
        sites: SiteList::default(),
        source,
        ignored_file: None,
    })
}

/// The built-in catalogue with the file's overrides (None: no file).
pub fn local_catalogue(file: &Path) -> Result<Option<Catalogue>, InForceError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(
            Catalogue::builtin().with_overrides(&text, &file.display().to_string())?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(InForceError::Read {
            path: file.to_path_buf(),
            source,
        }),
    }
}

/// How a report names the catalogue it used, in Swedish or English.
pub fn describe(source: &Source, org: &str, english: bool) -> String {
    let builtin = if english {
        format!("built-in (Outpost {})", env!("CARGO_PKG_VERSION"))
    } else {
        format!("inbyggd (Outpost {})", env!("CARGO_PKG_VERSION"))
    };
    match source {
        Source::Hub {
            catalogue_version: 0,
            version,
        } => {
            if english {
                format!("{builtin}; the hub holds none for {org} (configuration version {version})")
            } else {
                format!("{builtin}; navet har ingen för {org} (konfigurationsversion {version})")
            }
        }
        Source::Hub {
            catalogue_version, ..
        } => {
            if english {
                format!("{builtin} + the hub's catalogue for {org}, version {catalogue_version}")
            } else {
                format!("{builtin} + navets katalog för {org}, version {catalogue_version}")
            }
        }
        Source::HubNotYet => {
            if english {
                format!("{builtin}; the hub's catalogue for {org} has not been received yet")
            } else {
                format!("{builtin}; navets katalog för {org} har inte tagits emot än")
            }
        }
        Source::LocalFile(path) => format!("{builtin} + {}", path.display()),
        Source::Builtin => builtin,
    }
}

/// The configuration as the hub sent it, for `describe` on the hub side
/// (`outpost admin report`).
pub fn hub_source(config: &OrgConfig) -> Source {
    Source::Hub {
        version: config.version,
        catalogue_version: config.catalogue_version,
    }
}
