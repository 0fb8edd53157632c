//! What a laptop says about itself, and how people name things by id.
//!
//! - [`DeviceReport`]: the laptop's name, site, staff initials and the
//!   number of records waiting to be sent, carried by enrolment and sync
//!   requests (`crate::sync`) so `admin devices` (and the hub's dashboard)
//!   can tell laptops apart and see which are behind.
//! - [`check_name`] / [`DeviceReport::check`]: the one rule for what a
//!   report may hold, applied by the laptop before it sends and by the hub
//!   on receipt (the hub trusts nothing): a name is bounded, has no control
//!   characters and passes the privacy screen like any other free text;
//!   site and staff are checked by the record field table, as in records.
//! - [`pick`]: the one rule for naming something by its id (the whole id,
//!   or a unique prefix of at least [`MIN_PREFIX_CHARS`]), or by its exact
//!   name; an ambiguous one is refused with the candidates listed. Record
//!   ids, course session ids and device ids all go through it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::{self, Scope};
use crate::screen::{self, ScreenError};

/// Longest device name, in characters: long enough for a site and a room
/// ("Skänninge bibliotek, datorhörnan · 3f2a"), short enough for a table.
pub const MAX_NAME_CHARS: usize = 60;
/// Characters of the device id in a default name (and shown beside names).
pub const SHORT_ID_CHARS: usize = 4;
/// Shortest id prefix accepted in place of a whole id.
pub const MIN_PREFIX_CHARS: usize = 4;
/// Candidates listed when a prefix is ambiguous.
pub const MAX_CANDIDATES_SHOWN: usize = 10;

/// A laptop's account of itself, sent at enrolment and with every sync
/// request. Fields absent from a sender that lacks them read as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    /// The laptop's name (see [`check_name`]).
    pub name: String,
    /// The laptop's default site.
    #[serde(default)]
    pub site: String,
    /// The laptop's default staff initials.
    #[serde(default)]
    pub staff: String,
    /// Records and erasures on the laptop the hub has not acknowledged when
    /// the request was made (what `outpost status` shows as waiting).
    #[serde(default)]
    pub waiting: u64,
}

/// Why a device name or report was refused. The message says what to do
/// and never echoes refused text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("the device name is empty; give a name such as the site and the room")]
    EmptyName,
    #[error(
        "the device name is {got} characters long; at most {MAX_NAME_CHARS} are allowed, give a shorter one"
    )]
    NameTooLong { got: usize },
    #[error("the device name has control characters (a line break or tab); type it on one line")]
    NameControl,
    #[error(transparent)]
    Screen(#[from] ScreenError),
    /// Site or staff initials fail the record field table's rule.
    #[error("the laptop's {field} {message}; fix it in the laptop's settings")]
    Field { field: String, message: String },
}

/// Checks a device name; answers it trimmed.
pub fn check_name(name: &str) -> Result<String, DeviceError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DeviceError::EmptyName);
    }
    let got = name.chars().count();
    if got > MAX_NAME_CHARS {
        return Err(DeviceError::NameTooLong { got });
    }
    if name.chars().any(char::is_control) {
        return Err(DeviceError::NameControl);
    }
    screen::screen_field("the device name", name)?;
    Ok(name.to_string())
}

/// The first characters of a device id, shown beside or in a name.
pub fn short_id(device: &str) -> &str {
    match device.char_indices().nth(SHORT_ID_CHARS) {
        Some((i, _)) => &device[..i],
        None => device,
    }
}

/// A laptop's name when none was given: its site and a short id, e.g.
/// "Skänninge bibliotek · 3f2a" (cut so it stays within the bound).
pub fn default_name(site: &str, device: &str) -> String {
    let short = short_id(device);
    let site: String = site
        .trim()
        .chars()
        .take(MAX_NAME_CHARS - SHORT_ID_CHARS - 3)
        .collect();
    if site.is_empty() {
        short.to_string()
    } else {
        format!("{site} · {short}")
    }
}

impl DeviceReport {
    /// The report as it may be stored: name checked, site and staff checked
    /// by the field table (trimmed; empty when unknown). Used by the laptop
    /// before sending and by the hub on receipt.
    pub fn check(&self) -> Result<DeviceReport, DeviceError> {
        let name = check_name(&self.name)?;
        let text = |field: &str, value: &str| -> Result<String, DeviceError> {
            let def = schema::field(Scope::Common, field).expect("common fields are in the schema");
            match schema::validate_value(def, &Value::String(value.to_string())) {
                Ok(Value::String(s)) => Ok(s),
                Ok(_) => Ok(String::new()),
                Err(e) => Err(DeviceError::Field {
                    field: field.to_string(),
                    message: e
                        .0
                        .first()
                        .map(|f| f.message.clone())
                        .unwrap_or_else(|| "is not valid".into()),
                }),
            }
        };
        Ok(DeviceReport {
            name,
            site: text("site", &self.site)?,
            staff: text("staff", &self.staff)?,
            waiting: self.waiting,
        })
    }
}

/// Why [`pick`] found nothing to act on. Displays as the wanted text and,
/// in brackets, what to do; callers put it after "no record", "no device".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("{wanted} (give at least {MIN_PREFIX_CHARS} characters of the id)")]
    TooShort { wanted: String },
    #[error("{wanted}")]
    NoMatch { wanted: String },
    #[error(
        "{wanted} (more than one matches it: {}; give more of the id)",
        candidates.join(", ")
    )]
    Ambiguous {
        wanted: String,
        /// Up to [`MAX_CANDIDATES_SHOWN`], as `describe` gave them.
        candidates: Vec<String>,
    },
}

/// Picks the one item `wanted` names: the item whose id is `wanted`, else
/// the items named exactly `wanted` (when `name` gives names), else those
/// whose id starts with `wanted` (at least [`MIN_PREFIX_CHARS`]). Ids are
/// compared in lower case. More than one is [`PickError::Ambiguous`],
/// listing each as `describe` gives it.
pub fn pick<T>(
    wanted: &str,
    items: impl IntoIterator<Item = T>,
    id: impl Fn(&T) -> &str,
    name: impl Fn(&T) -> Option<&str>,
    describe: impl Fn(&T) -> String,
) -> Result<T, PickError> {
    let wanted = wanted.trim();
    let needle = wanted.to_lowercase();
    let mut named = Vec::new();
    let mut prefixed = Vec::new();
    for item in items {
        let item_id = id(&item).to_lowercase();
        if item_id == needle {
            return Ok(item);
        }
        if name(&item).is_some_and(|n| n.trim() == wanted) {
            named.push(item);
        } else if needle.chars().count() >= MIN_PREFIX_CHARS && item_id.starts_with(&needle) {
            prefixed.push(item);
        }
    }
    let hits = if named.is_empty() { prefixed } else { named };
    if hits.len() > 1 {
        return Err(PickError::Ambiguous {
            wanted: wanted.to_string(),
            candidates: hits
                .iter()
                .take(MAX_CANDIDATES_SHOWN)
                .map(&describe)
                .collect(),
        });
    }
    match hits.into_iter().next() {
        Some(one) => Ok(one),
        None if needle.chars().count() < MIN_PREFIX_CHARS => Err(PickError::TooShort {
            wanted: wanted.to_string(),
        }),
        None => Err(PickError::NoMatch {
            wanted: wanted.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_bounded_and_screened() {
        assert_eq!(
            check_name("  Skänninge bibliotek · 3f2a ").unwrap(),
            "Skänninge bibliotek · 3f2a"
        );
        assert_eq!(check_name(" "), Err(DeviceError::EmptyName));
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            check_name(&long),
            Err(DeviceError::NameTooLong {
                got: MAX_NAME_CHARS + 1
            })
        );
        assert_eq!(check_name("a\nb"), Err(DeviceError::NameControl));
        for bad in [
            "Lisa 19121212-1212",
            "ring 070-123 45 67",
            "anna@example.se",
        ] {
            let err = check_name(bad).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DeviceError::Screen(_)), "{bad}: {msg}");
            assert!(msg.contains("the device name"), "{msg}");
            assert!(!msg.contains(bad), "the refused text is echoed: {msg}");
        }
        // Ordinary names with numbers pass.
        assert!(check_name("Rum 2, plan 3 · 2025").is_ok());
    }

    #[test]
    fn the_default_name_is_the_site_and_a_short_id() {
        let id = "3f2a9c1e-0000-4000-8000-000000000000";
        assert_eq!(
            default_name("Skänninge bibliotek", id),
            "Skänninge bibliotek · 3f2a"
        );
        assert_eq!(default_name("", id), "3f2a");
        let long = default_name(&"å".repeat(200), id);
        assert!(check_name(&long).is_ok(), "{long}");
    }

    #[test]
    fn a_report_checks_site_and_staff_by_the_field_table() {
        let ok = DeviceReport {
            name: " Hörnet ".into(),
            site: " Mjölby ".into(),
            staff: "AB".into(),
            waiting: 3,
        };
        let checked = ok.check().unwrap();
        assert_eq!(checked.name, "Hörnet");
        assert_eq!(checked.site, "Mjölby");
        assert_eq!(checked.waiting, 3);
        let bad = DeviceReport {
            staff: "19121212-1212".into(),
            ..ok.clone()
        };
        let err = bad.check().unwrap_err().to_string();
        assert!(err.contains("staff"), "{err}");
        assert!(!err.contains("19121212"), "{err}");
    }

    #[test]
    fn pick_takes_a_whole_id_a_unique_prefix_or_an_exact_name() {
        let items = [
            ("3f2a0000-aaaa", "Skänninge"),
            ("3f2b0000-bbbb", "Mjölby"),
            ("77770000-cccc", "Mjölby"),
        ];
        let p = |w: &str| {
            pick(
                w,
                items.iter(),
                |i| i.0,
                |i| Some(i.1),
                |i| format!("{} ({})", i.0, i.1),
            )
        };
        assert_eq!(p("3F2A").unwrap().0, "3f2a0000-aaaa");
        assert_eq!(p("3f2b0000-bbbb").unwrap().1, "Mjölby");
        assert_eq!(p("Skänninge").unwrap().0, "3f2a0000-aaaa");
        assert!(matches!(p("3f2"), Err(PickError::TooShort { .. })));
        assert!(matches!(p("9999"), Err(PickError::NoMatch { .. })));
        let Err(PickError::Ambiguous { candidates, .. }) = p("Mjölby") else {
            panic!("an ambiguous name must be refused");
        };
        assert_eq!(
            candidates,
            vec!["3f2b0000-bbbb (Mjölby)", "77770000-cccc (Mjölby)"]
        );
        let Err(e @ PickError::Ambiguous { .. }) = pick(
            "3f2a0",
            [("3f2a01", ()), ("3f2a02", ())],
            |i| i.0,
            |_| None,
            |i| i.0.to_string(),
        ) else {
            panic!("an ambiguous prefix must be refused");
        };
        assert!(e.to_string().contains("3f2a01, 3f2a02"), "{e}");
    }
}
