//! Service catalogue: which agency runs an e-service, and whether that agency
//! is the organisation itself (`own`, the municipality) or another body
//! (`other`: a state agency, a bank, a region).
//!
//! The report admins care about is the share of questions that concern
//! *other* agencies' e-services, so every service name recorded on a visit is
//! resolved through this catalogue when statistics and exports are made.
//! Nothing is stored resolved: a record keeps the name the staff typed, so a
//! corrected catalogue also corrects old statistics.
//!
//! # Built-in default
//!
//! [`Catalogue::builtin`] covers the e-services people most often ask about
//! in Swedish libraries (BankID, Försäkringskassan, Skatteverket, 1177, …)
//! and the municipality's own typical e-services (school, preschool queue,
//! social services, building permits, library account), all with agency
//! `Kommunen` and scope `own`. [`Catalogue::entries`] lists it.
//!
//! # Lookup rules
//!
//! - Case-insensitive (full Unicode, so `FÖRSÄKRINGSKASSAN` matches), and
//!   surrounding whitespace is ignored. Runs of inner whitespace count as one
//!   space, because names are typed by hand and `Mobilt  BankID` is still
//!   Mobilt BankID.
//! - An alias resolves to its canonical entry (`FK` → Försäkringskassan).
//! - A canonical name always wins over an alias with the same spelling.
//! - An unknown service is not an error: [`Catalogue::resolve`] gives it
//!   agency `unknown` and scope [`AgencyScope::Unknown`], and the CLI warns.
//!
//! # Organisation override (TOML)
//!
//! An organisation extends the built-in catalogue with a TOML file
//! (`catalogue.toml` beside `config.toml` by default):
//!
//! ```toml
//! [[service]]
//! name = "Linköpings e-tjänst för färdtjänst"
//! agency = "Linköpings kommun"
//! scope = "own"          # own | other
//! aliases = ["Färdtjänst"]
//!
//! # Same name as a built-in entry (case-insensitive): replaces it.
//! [[service]]
//! name = "Skola"
//! agency = "Linköpings kommun"
//! scope = "own"
//! aliases = ["Vklass"]
//! ```
//!
//! - `name`, `agency` and `scope` are required; `aliases` is optional.
//!   `scope` is required rather than defaulted because a wrong guess would
//!   silently skew the own/other share, which is the number being reported.
//!   Only `own` and `other` are accepted: `unknown` is what the catalogue says
//!   about services it does *not* list.
//! - Unknown keys (e.g. a misspelt `agnecy` or `[[services]]`) are errors, so
//!   a typo cannot silently drop an entry.
//! - An entry whose name matches a built-in entry replaces its agency and
//!   scope; the built-in aliases keep pointing at it (`FK` still means
//!   Försäkringskassan after Försäkringskassan is overridden).
//! - An entry whose name matches an existing *alias* becomes its own entry
//!   and takes that spelling over from the alias.
//! - An alias that repeats an existing alias moves it to the new entry (the
//!   organisation's file wins over the built-in table, later entries over
//!   earlier ones). An alias spelled like a canonical name is ignored, since
//!   the canonical name wins anyway. Blank aliases are ignored.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

/// Whether an e-service belongs to the organisation itself or another body.
///
/// Ordered own < other < unknown so grouped reports list them in that order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum AgencyScope {
    /// Run by the organisation itself (the municipality).
    Own,
    /// Run by another body: a state agency, a bank, a region, a company.
    Other,
    /// Not in the catalogue.
    Unknown,
}

impl fmt::Display for AgencyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same spelling as the serde form, so text and JSON output agree.
        f.write_str(match self {
            AgencyScope::Own => "own",
            AgencyScope::Other => "other",
            AgencyScope::Unknown => "unknown",
        })
    }
}

/// What the catalogue knows about one e-service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceInfo {
    /// Canonical name (an alias is never reported here).
    pub name: String,
    /// The body that runs the service; `unknown` for an unknown service.
    pub agency: String,
    /// Own, other or unknown.
    pub scope: AgencyScope,
}

/// A service catalogue override that cannot be used.
///
/// Both variants name the file, since the message is shown to an admin who
/// may not remember which file the daemon or CLI read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file is not valid TOML or does not have the `[[service]]` shape
    /// (missing agency or scope, unknown key, scope not `own`/`other`, blank
    /// agency). The TOML error carries the line and column.
    #[error(
        "service catalogue {path}: {source}; fix the TOML (see the [[service]] example in the README)"
    )]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    /// A `[[service]]` entry without a name, or with a blank one.
    #[error(
        "service catalogue {path}: entry {index} has an empty name; every [[service]] needs name and agency"
    )]
    EmptyName {
        path: String,
        /// 1-based position among the file's `[[service]]` entries, counted
        /// the way a person reading the file counts them.
        index: usize,
    },
}

/// Agency for every service not in the catalogue.
const UNKNOWN_AGENCY: &str = "unknown";

/// Agency of the municipality's own e-services in the built-in table. An
/// organisation that wants its real name in reports overrides the entries.
const OWN: &str = "Kommunen";

/// The built-in table: canonical name, agency, scope, aliases.
///
/// Kept as data rather than code so a test can check it for clashing names.
const BUILTIN: &[(&str, &str, AgencyScope, &[&str])] = {
    use AgencyScope::{Other, Own};
    &[
        // Identification and banking: run by the banks, not the state.
        (
            "BankID",
            "BankID (bankerna)",
            Other,
            &["Bank-ID", "Bank ID"],
        ),
        (
            "Mobilt BankID",
            "BankID (bankerna)",
            Other,
            &["Mobil BankID", "Mobilt Bank-ID", "BankID-appen"],
        ),
        ("Freja eID", "Freja eID", Other, &["Freja", "Freja eID+"]),
        ("Swish", "Bankerna", Other, &[]),
        (
            "Internetbank",
            "Bankerna",
            Other,
            &["Internetbanken", "Nätbank", "Nätbanken"],
        ),
        // State agencies.
        (
            "Försäkringskassan",
            "Försäkringskassan",
            Other,
            &["FK", "Försäkringskassans e-tjänster"],
        ),
        (
            "Skatteverket",
            "Skatteverket",
            Other,
            &["SKV", "Deklaration", "Deklarationen"],
        ),
        ("Arbetsförmedlingen", "Arbetsförmedlingen", Other, &["AF"]),
        ("Pensionsmyndigheten", "Pensionsmyndigheten", Other, &[]),
        (
            "CSN",
            "CSN",
            Other,
            &["Centrala studiestödsnämnden", "Studiemedel"],
        ),
        (
            "Migrationsverket",
            "Migrationsverket",
            Other,
            &["Migrationsverkets e-tjänster"],
        ),
        ("Transportstyrelsen", "Transportstyrelsen", Other, &[]),
        (
            "Trafikverket",
            "Trafikverket",
            Other,
            &["Boka prov", "Förarprov"],
        ),
        (
            "Kronofogden",
            "Kronofogden",
            Other,
            &["Kronofogdemyndigheten"],
        ),
        ("Bolagsverket", "Bolagsverket", Other, &[]),
        (
            "Polisen",
            "Polisen",
            Other,
            &["Polismyndigheten", "Passbokning", "Pass", "Boka pass"],
        ),
        // Digital mail: Min myndighetspost is run by Digg.
        (
            "Min myndighetspost",
            "Digg",
            Other,
            &["Myndighetspost", "Mina meddelanden"],
        ),
        ("Kivra", "Kivra", Other, &[]),
        ("Postnord", "Postnord", Other, &["Posten"]),
        // Health care: 1177 is run by the regions, not the municipality.
        (
            "1177 Vårdguiden",
            "Region",
            Other,
            &["1177", "Vårdguiden", "1177.se", "Mina vårdkontakter"],
        ),
        // Travel.
        ("SJ", "Kollektivtrafik", Other, &["SJ-appen"]),
        (
            "Kollektivtrafik",
            "Kollektivtrafik",
            Other,
            &["Kollektivtrafiken", "Lokaltrafik", "Busskort"],
        ),
        // The municipality's own e-services.
        (
            "Skola",
            OWN,
            Own,
            &["Skolplattformen", "Skolans e-tjänst", "Skolan"],
        ),
        (
            "Förskola",
            OWN,
            Own,
            &["Förskolekö", "Förskolekön", "Förskoleplats", "Barnomsorg"],
        ),
        ("Fritids", OWN, Own, &["Fritidshem", "Fritidshemmet"]),
        (
            "Socialtjänst",
            OWN,
            Own,
            &["Socialtjänsten", "Ekonomiskt bistånd", "Försörjningsstöd"],
        ),
        ("Bygglov", OWN, Own, &["Bygglovsansökan"]),
        (
            "Bibliotek",
            OWN,
            Own,
            &["Biblioteket", "Bibliotekskonto", "Lånekort"],
        ),
        (
            "Kommunens e-tjänster",
            OWN,
            Own,
            &["Kommunen", "Kommunens e-tjänst", "E-tjänst kommunen"],
        ),
    ]
};

/// E-service name → agency and scope; see the module docs for the rules.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Canonical entries by normalised name.
    entries: HashMap<String, ServiceInfo>,
    /// Normalised alias → normalised canonical name. Points at a key, not a
    /// copy, so replacing an entry also updates what its aliases resolve to.
    aliases: HashMap<String, String>,
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Catalogue {
    /// The built-in catalogue of common Swedish e-services.
    pub fn builtin() -> Catalogue {
        let mut catalogue = Catalogue {
            entries: HashMap::with_capacity(BUILTIN.len()),
            aliases: HashMap::new(),
        };
        for &(name, agency, scope, aliases) in BUILTIN {
            catalogue.insert(
                ServiceInfo {
                    name: name.to_owned(),
                    agency: agency.to_owned(),
                    scope,
                },
                aliases.iter().copied(),
            );
        }
        catalogue
    }

    /// Built-in plus the entries of a TOML override (text already read; `path` only for messages).
    ///
    /// The whole file is checked before anything is applied, so an error
    /// never leaves a half-merged catalogue behind.
    pub fn with_overrides(
        mut self,
        toml_text: &str,
        path: &str,
    ) -> Result<Catalogue, CatalogueError> {
        let file: OverrideFile =
            toml::from_str(toml_text).map_err(|source| CatalogueError::Parse {
                path: path.to_owned(),
                source,
            })?;
        if let Some(pos) = file.service.iter().position(|e| e.name.trim().is_empty()) {
            return Err(CatalogueError::EmptyName {
                path: path.to_owned(),
                index: pos + 1,
            });
        }
        for entry in file.service {
            let info = ServiceInfo {
                name: entry.name.trim().to_owned(),
                agency: entry.agency.trim().to_owned(),
                scope: entry.scope.into(),
            };
            self.insert(info, entry.aliases.iter().map(String::as_str));
        }
        Ok(self)
    }

    /// Canonical info for a service name or alias; None when unknown.
    pub fn lookup(&self, service: &str) -> Option<&ServiceInfo> {
        let key = normalise(service);
        // Canonical names first: they win over an alias spelled the same.
        self.entries.get(&key).or_else(|| {
            self.aliases
                .get(&key)
                .and_then(|canonical| self.entries.get(canonical))
        })
    }

    /// Like lookup but an unknown service yields ServiceInfo { name: service.trim(), agency: "unknown", scope: Unknown }.
    pub fn resolve(&self, service: &str) -> ServiceInfo {
        self.lookup(service)
            .cloned()
            .unwrap_or_else(|| ServiceInfo {
                name: service.trim().to_owned(),
                agency: UNKNOWN_AGENCY.to_owned(),
                scope: AgencyScope::Unknown,
            })
    }

    /// The known service a name not in the catalogue was probably meant to
    /// be (`Skateverket` → `Skatteverket`), by canonical names and aliases;
    /// `None` for a known name or when nothing is close.
    pub fn suggest(&self, service: &str) -> Option<&str> {
        if self.lookup(service).is_some() {
            return None;
        }
        // Sorted, so a tie between two names is always settled the same way.
        let names = self.entries().into_iter().map(|info| info.name.as_str());
        let mut aliases: Vec<&str> = self.aliases.keys().map(String::as_str).collect();
        aliases.sort_unstable();
        let hit = crate::input::closest(service, names.chain(aliases))?;
        // An alias names its canonical entry, which is what gets counted.
        self.lookup(hit).map(|info| info.name.as_str())
    }

    /// All canonical entries, sorted by name (for `outpost services`-style listings and docs).
    ///
    /// Sorted in Swedish alphabetical order (… z, å, ä, ö) ignoring case,
    /// because plain code-point order would put Å after Ä and split
    /// `Bygglov` from `bankid`.
    pub fn entries(&self) -> Vec<&ServiceInfo> {
        let mut list: Vec<&ServiceInfo> = self.entries.values().collect();
        list.sort_by(|a, b| swedish_order(&a.name, &b.name));
        list
    }

    /// Adds or replaces a canonical entry and points its aliases at it.
    fn insert<'a>(&mut self, info: ServiceInfo, aliases: impl IntoIterator<Item = &'a str>) {
        let key = normalise(&info.name);
        // The name is canonical now; an old alias with this spelling would be
        // shadowed anyway, so drop it to keep the two maps disjoint.
        self.aliases.remove(&key);
        self.entries.insert(key.clone(), info);
        for alias in aliases {
            let alias_key = normalise(alias);
            // Blank aliases match nothing useful, and an alias spelled like a
            // canonical name (including the entry's own) would never be used.
            if alias_key.is_empty() || self.entries.contains_key(&alias_key) {
                continue;
            }
            self.aliases.insert(alias_key, key.clone());
        }
    }
}

/// The lookup key: trimmed, inner whitespace runs collapsed to one space,
/// lower-cased with full Unicode case mapping (Å/Ä/Ö included).
fn normalise(s: &str) -> String {
    let mut key = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
    }
    key
}

/// Case-insensitive Swedish collation, with the exact name as tie-break so
/// the order is total and listings are stable.
fn swedish_order(a: &str, b: &str) -> Ordering {
    fn weights(s: &str) -> impl Iterator<Item = u32> + '_ {
        const AFTER_Z: u32 = 'z' as u32;
        s.chars().flat_map(char::to_lowercase).map(|c| match c {
            'å' => AFTER_Z + 1,
            'ä' | 'æ' => AFTER_Z + 2,
            'ö' | 'ø' => AFTER_Z + 3,
            other => u32::from(other),
        })
    }
    weights(a).cmp(weights(b)).then_with(|| a.cmp(b))
}

/// The override file: a list of `[[service]]` tables, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    /// Optional so an empty (or all-comments) file is a valid no-op.
    #[serde(default)]
    service: Vec<OverrideEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideEntry {
    /// Defaulted so a missing name reports as `EmptyName` with the entry's
    /// position, the same as a blank one.
    #[serde(default)]
    name: String,
    /// Checked while parsing so the TOML error points at the line.
    #[serde(deserialize_with = "non_blank")]
    agency: String,
    scope: OverrideScope,
    #[serde(default)]
    aliases: Vec<String>,
}

/// The scopes a file may give: `unknown` is reserved for unlisted services.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OverrideScope {
    Own,
    Other,
}

impl From<OverrideScope> for AgencyScope {
    fn from(scope: OverrideScope) -> Self {
        match scope {
            OverrideScope::Own => AgencyScope::Own,
            OverrideScope::Other => AgencyScope::Other,
        }
    }
}

fn non_blank<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let s = String::deserialize(deserializer)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("agency must not be empty"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, agency: &str, scope: AgencyScope) -> ServiceInfo {
        ServiceInfo {
            name: name.to_owned(),
            agency: agency.to_owned(),
            scope,
        }
    }

    #[test]
    fn builtin_covers_the_required_services() {
        use AgencyScope::{Other, Own};
        let c = Catalogue::builtin();
        let expected = [
            ("BankID", "BankID", "BankID (bankerna)", Other),
            ("Mobilt BankID", "Mobilt BankID", "BankID (bankerna)", Other),
            (
                "Försäkringskassan",
                "Försäkringskassan",
                "Försäkringskassan",
                Other,
            ),
            ("FK", "Försäkringskassan", "Försäkringskassan", Other),
            ("Skatteverket", "Skatteverket", "Skatteverket", Other),
            ("1177 Vårdguiden", "1177 Vårdguiden", "Region", Other),
            ("1177", "1177 Vårdguiden", "Region", Other),
            ("Vårdguiden", "1177 Vårdguiden", "Region", Other),
            (
                "Arbetsförmedlingen",
                "Arbetsförmedlingen",
                "Arbetsförmedlingen",
                Other,
            ),
            ("AF", "Arbetsförmedlingen", "Arbetsförmedlingen", Other),
            (
                "Pensionsmyndigheten",
                "Pensionsmyndigheten",
                "Pensionsmyndigheten",
                Other,
            ),
            ("CSN", "CSN", "CSN", Other),
            (
                "Migrationsverket",
                "Migrationsverket",
                "Migrationsverket",
                Other,
            ),
            (
                "Transportstyrelsen",
                "Transportstyrelsen",
                "Transportstyrelsen",
                Other,
            ),
            ("Kivra", "Kivra", "Kivra", Other),
            ("Min myndighetspost", "Min myndighetspost", "Digg", Other),
            ("Freja eID", "Freja eID", "Freja eID", Other),
            ("Swish", "Swish", "Bankerna", Other),
            ("Internetbank", "Internetbank", "Bankerna", Other),
            ("Polisen", "Polisen", "Polisen", Other),
            ("Passbokning", "Polisen", "Polisen", Other),
            ("Postnord", "Postnord", "Postnord", Other),
            ("SJ", "SJ", "Kollektivtrafik", Other),
            (
                "Kollektivtrafik",
                "Kollektivtrafik",
                "Kollektivtrafik",
                Other,
            ),
            ("Skola", "Skola", "Kommunen", Own),
            ("Skolplattformen", "Skola", "Kommunen", Own),
            ("Skolans e-tjänst", "Skola", "Kommunen", Own),
            ("Förskola", "Förskola", "Kommunen", Own),
            ("Förskolekö", "Förskola", "Kommunen", Own),
            ("Fritids", "Fritids", "Kommunen", Own),
            ("Socialtjänst", "Socialtjänst", "Kommunen", Own),
            ("Bygglov", "Bygglov", "Kommunen", Own),
            ("Bibliotek", "Bibliotek", "Kommunen", Own),
            (
                "Kommunens e-tjänster",
                "Kommunens e-tjänster",
                "Kommunen",
                Own,
            ),
        ];
        for (query, name, agency, scope) in expected {
            assert_eq!(c.lookup(query), Some(&info(name, agency, scope)), "{query}");
        }
    }

    #[test]
    fn lookup_ignores_case_and_whitespace() {
        let c = Catalogue::builtin();
        for query in ["bankid", "  BANKID \t", "\nBankId\n"] {
            assert_eq!(
                c.lookup(query).map(|i| i.name.as_str()),
                Some("BankID"),
                "{query:?}"
            );
        }
        // Unicode case folding: Swedish capitals must match.
        assert_eq!(
            c.lookup("FÖRSÄKRINGSKASSAN").map(|i| i.name.as_str()),
            Some("Försäkringskassan")
        );
        // Aliases are case-insensitive too, and inner runs of spaces collapse.
        assert_eq!(
            c.lookup(" fk ").map(|i| i.name.as_str()),
            Some("Försäkringskassan")
        );
        assert_eq!(
            c.lookup("mobilt   bankid").map(|i| i.name.as_str()),
            Some("Mobilt BankID")
        );
        assert_eq!(
            c.lookup("SKOLPLATTFORMEN").map(|i| i.name.as_str()),
            Some("Skola")
        );
        // resolve of a known service returns the canonical entry, not the query.
        assert_eq!(c.resolve("  vårdguiden ").name, "1177 Vårdguiden");
    }

    #[test]
    fn unknown_service_resolves_to_unknown_scope() {
        let c = Catalogue::builtin();
        assert_eq!(c.lookup("Hemtjänstappen Ystad"), None);
        assert_eq!(
            c.resolve("  Hemtjänstappen Ystad "),
            info("Hemtjänstappen Ystad", "unknown", AgencyScope::Unknown)
        );
        // Blank input is unknown too, never a match for some entry.
        assert_eq!(c.lookup("   "), None);
        assert_eq!(c.resolve("  ").scope, AgencyScope::Unknown);
    }

    #[test]
    fn builtin_table_has_no_clashing_names() {
        // Every name and alias must be unique after normalisation; a clash
        // would make one of them silently unreachable.
        let mut seen: HashMap<String, &str> = HashMap::new();
        for &(name, _, _, aliases) in BUILTIN {
            for spelling in std::iter::once(name).chain(aliases.iter().copied()) {
                if let Some(earlier) = seen.insert(normalise(spelling), spelling) {
                    panic!("{spelling:?} clashes with {earlier:?}");
                }
            }
        }
        assert_eq!(Catalogue::builtin().entries().len(), BUILTIN.len());
    }

    #[test]
    fn entries_are_canonical_and_sorted_swedish() {
        let c = Catalogue::builtin();
        let names: Vec<&str> = c.entries().iter().map(|i| i.name.as_str()).collect();
        assert!(names.contains(&"Försäkringskassan"));
        assert!(!names.contains(&"FK"), "aliases are not entries");
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| swedish_order(a, b));
        assert_eq!(names, sorted);
        assert_eq!(names.first(), Some(&"1177 Vårdguiden"));
        // Swedish order: å < ä < ö, all after z, case ignored.
        let mut words = vec!["Örebro", "ärende", "Åre", "zebra", "Bygglov", "bankid"];
        words.sort_by(|a, b| swedish_order(a, b));
        assert_eq!(
            words,
            ["bankid", "Bygglov", "zebra", "Åre", "ärende", "Örebro"]
        );
    }

    #[test]
    fn default_is_builtin() {
        assert_eq!(
            Catalogue::default().entries(),
            Catalogue::builtin().entries()
        );
    }

    #[test]
    fn scope_display_and_serde_agree() {
        #[derive(Deserialize, serde::Serialize)]
        struct Wrap {
            scope: AgencyScope,
        }
        for scope in [AgencyScope::Own, AgencyScope::Other, AgencyScope::Unknown] {
            let text = toml::to_string(&Wrap { scope }).unwrap();
            assert_eq!(text.trim(), format!("scope = \"{scope}\""));
            assert_eq!(toml::from_str::<Wrap>(&text).unwrap().scope, scope);
        }
        assert!(AgencyScope::Own < AgencyScope::Other && AgencyScope::Other < AgencyScope::Unknown);
    }

    const EXAMPLE: &str = r#"
[[service]]
name = "Linköpings e-tjänst för färdtjänst"
agency = "Linköpings kommun"
scope = "own"          # own | other
aliases = ["Färdtjänst"]
"#;

    #[test]
    fn override_adds_a_service_with_aliases() {
        let before = Catalogue::builtin().entries().len();
        let c = Catalogue::builtin()
            .with_overrides(EXAMPLE, "catalogue.toml")
            .unwrap();
        let expected = info(
            "Linköpings e-tjänst för färdtjänst",
            "Linköpings kommun",
            AgencyScope::Own,
        );
        assert_eq!(
            c.lookup("linköpings e-tjänst för färdtjänst"),
            Some(&expected)
        );
        assert_eq!(c.lookup(" FÄRDTJÄNST "), Some(&expected));
        assert_eq!(c.entries().len(), before + 1);
        // The built-ins are still there.
        assert_eq!(c.resolve("BankID").scope, AgencyScope::Other);
    }

    #[test]
    fn override_replaces_builtin_and_keeps_its_aliases() {
        let text = r#"
[[service]]
name = "  skola "
agency = "Linköpings kommun"
scope = "own"
aliases = ["Vklass"]

[[service]]
name = "FÖRSÄKRINGSKASSAN"
agency = "Statens försäkringskassa"
scope = "other"
"#;
        let before = Catalogue::builtin().entries().len();
        let c = Catalogue::builtin()
            .with_overrides(text, "catalogue.toml")
            .unwrap();
        let skola = info("skola", "Linköpings kommun", AgencyScope::Own);
        assert_eq!(c.lookup("Skola"), Some(&skola));
        assert_eq!(
            c.lookup("Skolplattformen"),
            Some(&skola),
            "built-in alias follows"
        );
        assert_eq!(c.lookup("vklass"), Some(&skola), "new alias added");
        assert_eq!(c.resolve("FK").agency, "Statens försäkringskassa");
        // Replaced, not duplicated.
        assert_eq!(c.entries().len(), before);
        assert_eq!(
            c.entries()
                .iter()
                .filter(|i| i.name.eq_ignore_ascii_case("skola"))
                .count(),
            1
        );
    }

    #[test]
    fn override_alias_and_name_precedence() {
        let text = r#"
# Takes "Pass" over from Polisen's built-in aliases.
[[service]]
name = "Passfoto"
agency = "Fotobutiken"
scope = "other"
aliases = ["Pass", "Skatteverket", "", "  "]

# A name spelled like a built-in alias becomes its own entry.
[[service]]
name = "SKV"
agency = "Skogsvårdsstyrelsen"
scope = "other"
"#;
        let c = Catalogue::builtin().with_overrides(text, "x.toml").unwrap();
        assert_eq!(c.resolve("pass").name, "Passfoto");
        assert_eq!(
            c.resolve("Passbokning").name,
            "Polisen",
            "other aliases untouched"
        );
        assert_eq!(
            c.resolve("Skatteverket").agency,
            "Skatteverket",
            "an alias never shadows a canonical name"
        );
        assert_eq!(c.resolve("skv").agency, "Skogsvårdsstyrelsen");
        assert_eq!(
            c.resolve("").scope,
            AgencyScope::Unknown,
            "blank alias ignored"
        );
    }

    #[test]
    fn empty_override_changes_nothing() {
        for text in ["", "# only a comment\n"] {
            let c = Catalogue::builtin()
                .with_overrides(text, "empty.toml")
                .unwrap();
            assert_eq!(c.entries(), Catalogue::builtin().entries());
        }
    }

    #[test]
    fn bad_toml_is_a_parse_error_naming_the_path() {
        let cases = [
            // Not TOML at all.
            "[[service]\nname = ",
            // Missing agency.
            "[[service]]\nname = \"X\"\nscope = \"own\"\n",
            // Blank agency.
            "[[service]]\nname = \"X\"\nagency = \"  \"\nscope = \"own\"\n",
            // Missing scope.
            "[[service]]\nname = \"X\"\nagency = \"Y\"\n",
            // Scope not own/other.
            "[[service]]\nname = \"X\"\nagency = \"Y\"\nscope = \"unknown\"\n",
            // Misspelt key.
            "[[service]]\nname = \"X\"\nagnecy = \"Y\"\nscope = \"own\"\n",
            // Misspelt table.
            "[[services]]\nname = \"X\"\nagency = \"Y\"\nscope = \"own\"\n",
            // Aliases not a list.
            "[[service]]\nname = \"X\"\nagency = \"Y\"\nscope = \"own\"\naliases = \"Z\"\n",
        ];
        for text in cases {
            let err = Catalogue::builtin()
                .with_overrides(text, "/etc/outpost/catalogue.toml")
                .unwrap_err();
            assert!(
                matches!(err, CatalogueError::Parse { .. }),
                "{text:?}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains("/etc/outpost/catalogue.toml"), "{msg}");
            assert!(msg.contains("[[service]]"), "{msg}");
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    #[test]
    fn empty_name_is_reported_with_its_position() {
        let text = r#"
[[service]]
name = "Fine"
agency = "A"
scope = "own"

[[service]]
name = "   "
agency = "B"
scope = "other"
"#;
        let err = Catalogue::builtin()
            .with_overrides(text, "org/catalogue.toml")
            .unwrap_err();
        assert!(
            matches!(&err, CatalogueError::EmptyName { path, index: 2 } if path == "org/catalogue.toml"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("org/catalogue.toml") && msg.contains("entry 2"),
            "{msg}"
        );

        // A missing name is the same mistake as a blank one.
        let missing = "[[service]]\nagency = \"A\"\nscope = \"own\"\n";
        let err = Catalogue::builtin()
            .with_overrides(missing, "c.toml")
            .unwrap_err();
        assert!(
            matches!(err, CatalogueError::EmptyName { index: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_typo_of_a_service_suggests_the_known_one() {
        let c = Catalogue::builtin();
        assert_eq!(c.suggest("Skateverket"), Some("Skatteverket"));
        assert_eq!(c.suggest("Skatteverket"), None);
        assert_eq!(c.suggest("Kommunens bygglovsportal för fritidshus"), None);
    }
}
