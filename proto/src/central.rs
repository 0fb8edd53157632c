//! An organisation's central configuration: the service catalogue and the
//! site list the hub keeps for it, and which laptops receive at sync.
//!
//! Why central: statistics resolve services to agencies and sites to the
//! org's list when they count. With the catalogue on whichever machine runs
//! the command, a laptop and the hub counted the same records differently.
//! So the hub keeps one catalogue (the TOML override of
//! [`crate::catalogue`], the same format as a local `catalogue.toml`) and
//! one site list per org, and every laptop of the org uses the copy it last
//! received, offline too. An enrolled laptop ignores its local file (only
//! `outpost doctor` warns about it); an unenrolled one uses it.
//!
//! Storage is a generic primitive ([`crate::hub::HubStorage::config`] and
//! `set_config`): a blob per `(org, kind)` with a version taken from one
//! counter per org, so the org's configuration version is the largest of
//! its entries' versions and grows with every change. A pull request
//! carries the version the laptop holds (`PullRequest::config_version`);
//! the hub adds the whole configuration to its answer when it holds a
//! newer one (`PullResponse::config`). Old laptops send no version (0) and
//! ignore the field; old hubs never send it, which means "no central
//! configuration".

use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, CatalogueError};
use crate::record::MAX_SHORT_CHARS;
use crate::screen::screen_field;
use crate::sites::{SiteList, fold};

/// The kind under which the catalogue's TOML text is stored.
pub const KIND_CATALOGUE: &str = "catalogue";
/// The kind under which the site list is stored (a JSON array of names).
pub const KIND_SITES: &str = "sites";

/// One stored entry of an org's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub kind: String,
    pub version: u64,
    pub data: Vec<u8>,
}

/// The configuration of one org as laptops receive and keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgConfig {
    /// Grows with every change on the hub (0: nothing set).
    pub version: u64,
    /// Catalogue overrides (TOML, the `catalogue.toml` format) over the
    /// built-in catalogue; `None`: the built-in one alone.
    #[serde(default)]
    pub catalogue: Option<String>,
    /// The version of the catalogue entry (0: never set), which the report
    /// names.
    #[serde(default)]
    pub catalogue_version: u64,
    /// The org's sites, in the order given.
    #[serde(default)]
    pub sites: Vec<String>,
}

impl OrgConfig {
    /// The configuration the stored entries make. Unknown kinds (from a
    /// newer hub) are skipped; a site list that is not a JSON array of
    /// strings reads as empty.
    pub fn from_entries(entries: &[ConfigEntry]) -> OrgConfig {
        let mut config = OrgConfig::default();
        for e in entries {
            config.version = config.version.max(e.version);
            match e.kind.as_str() {
                KIND_CATALOGUE => {
                    config.catalogue = Some(String::from_utf8_lossy(&e.data).into_owned());
                    config.catalogue_version = e.version;
                }
                KIND_SITES => {
                    config.sites = serde_json::from_slice(&e.data).unwrap_or_default();
                }
                _ => {}
            }
        }
        config
    }

    /// The catalogue in force: the built-in one with the org's overrides.
    pub fn catalogue(&self) -> Result<Catalogue, CatalogueError> {
        match &self.catalogue {
            Some(text) => Catalogue::builtin().with_overrides(text, "the hub's catalogue"),
            None => Ok(Catalogue::builtin()),
        }
    }

    pub fn site_list(&self) -> SiteList {
        SiteList::new(&self.sites)
    }

    /// The site list as it is stored (a JSON array).
    pub fn sites_blob(sites: &[String]) -> Vec<u8> {
        serde_json::to_vec(sites).unwrap_or_default()
    }
}

/// The site list after removing and adding names (an admin's `sites add`
/// and `sites remove`). Names are trimmed, inner spaces collapsed, checked
/// like a record's `site` (length, privacy screen); a name already listed
/// in another case or accent is not added twice; removing matches the same
/// way. The error says what to fix.
pub fn edit_sites(
    current: &[String],
    add: &[String],
    remove: &[String],
) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = SiteList::new(current).names().to_vec();
    for name in remove {
        let key = fold(name);
        let before = names.len();
        names.retain(|n| fold(n) != key);
        if names.len() == before {
            return Err(format!(
                "{name:?} is not on the site list; `outpost admin sites list --org ORG` shows it"
            ));
        }
    }
    for name in add {
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err("a site name is empty; give the name as staff write it".into());
        }
        if name.chars().count() > MAX_SHORT_CHARS {
            return Err(format!(
                "a site name is longer than {MAX_SHORT_CHARS} characters; shorten it"
            ));
        }
        screen_field("site", &name).map_err(|e| e.to_string())?;
        let key = fold(&name);
        if !names.iter().any(|n| fold(n) == key) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::AgencyScope;

    #[test]
    fn entries_make_one_configuration_with_the_largest_version() {
        let config = OrgConfig::from_entries(&[
            ConfigEntry {
                kind: KIND_SITES.into(),
                version: 3,
                data: OrgConfig::sites_blob(&["Mjölby bibliotek".into()]),
            },
            ConfigEntry {
                kind: KIND_CATALOGUE.into(),
                version: 2,
                data:
                    b"[[service]]\nname = \"Hemtjanst\"\nagency = \"Kommunen\"\nscope = \"own\"\n"
                        .to_vec(),
            },
            ConfigEntry {
                kind: "future".into(),
                version: 1,
                data: b"?".to_vec(),
            },
        ]);
        assert_eq!(config.version, 3);
        assert_eq!(config.catalogue_version, 2);
        assert_eq!(
            config.site_list().canonical("MJOLBY bibliotek"),
            "Mjölby bibliotek"
        );
        let catalogue = config.catalogue().unwrap();
        assert_eq!(catalogue.resolve("hemtjanst").scope, AgencyScope::Own);
        assert_eq!(OrgConfig::from_entries(&[]), OrgConfig::default());
    }

    #[test]
    fn sites_are_added_once_and_removed_by_their_folded_name() {
        let list = edit_sites(
            &[],
            &[
                "  Mjölby   bibliotek ".into(),
                "MJOLBY BIBLIOTEK".into(),
                "Kalmar".into(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(list, ["Mjölby bibliotek", "Kalmar"]);
        let list = edit_sites(&list, &[], &["kalmar".into()]).unwrap();
        assert_eq!(list, ["Mjölby bibliotek"]);
        assert!(edit_sites(&list, &[], &["Boxholm".into()]).is_err());
        assert!(edit_sites(&list, &[" ".into()], &[]).is_err());
        let refused = edit_sites(&list, &["Ring 070-123 45 67".into()], &[]).unwrap_err();
        assert!(refused.contains("site"), "{refused}");
        assert!(
            !refused.contains("070"),
            "the number is not echoed: {refused}"
        );
    }
}
