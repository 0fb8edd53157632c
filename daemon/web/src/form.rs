//! The visit form's values: from a POST body to `proto` fields, and from a
//! stored record (or the last visit) back into the form.
//!
//! The contract (DESIGN.md §8) names the form fields exactly as the record
//! fields, lists repeated (`services`, `assistive`, `barriers` as
//! `SERVICE:KIND[:NOTE]`), `sensitive=on`. The form also sends, per
//! service row, `barrier_kind` and `barrier_note`, so a barrier can be
//! picked next to its service without JavaScript; a POST that carries
//! only the contract's names saves the same visit.

use chrono::{Local, NaiveTime, Timelike};
use outpost_proto::fields::Fields;
use outpost_proto::record::{Body, Record, Visit};
use serde_json::{Value, json};

/// Service rows shown in the form (with a barrier picker each).
pub const SERVICE_ROWS: usize = 3;

/// Every value as typed, so a refused form comes back as it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisitForm {
    pub date: String,
    pub time: String,
    pub minutes: String,
    pub channel: String,
    pub services: Vec<String>,
    pub category: String,
    pub outcome: String,
    pub referred_to: String,
    pub age_band: String,
    pub language: String,
    pub assistive: Vec<String>,
    /// Per service row: barrier kind ("" for none) and note.
    pub row_barriers: Vec<(String, String)>,
    /// `barriers` given in the contract's `SERVICE:KIND[:NOTE]` form.
    pub barriers: Vec<String>,
    pub sensitive: bool,
    pub note: String,
    /// Where the help was given; empty means the laptop's own site (a new
    /// visit) or the record's site unchanged (an edit).
    pub site: String,
}

/// Form bodies are read as the dashboard reads them.
pub use outpost_web_kit::{first, pairs};

fn all(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

impl VisitForm {
    pub fn from_pairs(p: &[(String, String)]) -> VisitForm {
        let get = |n: &str| first(p, n).unwrap_or("").to_string();
        let kinds = all(p, "barrier_kind");
        let notes = all(p, "barrier_note");
        let row_barriers = kinds
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, notes.get(i).cloned().unwrap_or_default()))
            .collect();
        VisitForm {
            date: get("date"),
            time: get("time"),
            minutes: get("minutes"),
            channel: get("channel"),
            services: all(p, "services"),
            category: get("category"),
            outcome: get("outcome"),
            referred_to: get("referred_to"),
            age_band: get("age_band"),
            language: get("language"),
            assistive: all(p, "assistive"),
            row_barriers,
            barriers: all(p, "barriers"),
            sensitive: matches!(first(p, "sensitive"), Some("on" | "true" | "1" | "yes")),
            note: get("note"),
            site: get("site"),
        }
    }

    /// A blank form for now: today, this minute, the remembered channel
    /// and language.
    pub fn fresh(channel: &str, language: &str) -> VisitForm {
        let now = Local::now();
        let time = NaiveTime::from_hms_opt(now.hour(), now.minute(), 0).unwrap_or_default();
        VisitForm {
            date: now.date_naive().format("%Y-%m-%d").to_string(),
            time: time.format("%H:%M").to_string(),
            channel: channel.to_string(),
            language: language.to_string(),
            ..VisitForm::default()
        }
    }

    /// The form filled with a stored visit (editing).
    pub fn from_visit(v: &Visit) -> VisitForm {
        let services = v.services.clone();
        // A barrier of a listed service goes on that service's row; any
        // other (a service the row list cannot show) stays in `barriers`.
        let mut rows = vec![(String::new(), String::new()); services.len().max(SERVICE_ROWS)];
        let mut rest = Vec::new();
        for b in &v.barriers {
            match services.iter().position(|s| *s == b.service) {
                Some(i) if rows[i].0.is_empty() => {
                    rows[i] = (
                        b.kind.as_str().to_string(),
                        b.note.clone().unwrap_or_default(),
                    );
                }
                _ => rest.push(match &b.note {
                    Some(n) => format!("{}:{}:{n}", b.service, b.kind),
                    None => format!("{}:{}", b.service, b.kind),
                }),
            }
        }
        VisitForm {
            date: v.date.format("%Y-%m-%d").to_string(),
            time: v
                .time
                .map(|t| t.format("%H:%M").to_string())
                .unwrap_or_default(),
            minutes: v.minutes.to_string(),
            channel: v.channel.as_str().to_string(),
            services,
            category: v.category.as_str().to_string(),
            outcome: v.outcome.as_str().to_string(),
            referred_to: v.referred_to.clone().unwrap_or_default(),
            age_band: v.age_band.as_str().to_string(),
            language: v.language.clone(),
            assistive: v.assistive.iter().map(|a| a.as_str().to_string()).collect(),
            row_barriers: rows,
            barriers: rest,
            sensitive: v.sensitive,
            note: v.note.clone().unwrap_or_default(),
            site: String::new(),
        }
    }

    /// "Same as last visit": everything of `v` but the day, the time and
    /// the note, which belong to the new visitor.
    pub fn same_as(v: &Visit) -> VisitForm {
        let fresh = VisitForm::fresh(v.channel.as_str(), &v.language);
        VisitForm {
            date: fresh.date,
            time: fresh.time,
            note: String::new(),
            ..VisitForm::from_visit(v)
        }
    }

    pub fn service_rows(&self) -> usize {
        self.services.len().max(SERVICE_ROWS)
    }

    /// The service typed on row `i` ("" when none).
    pub fn service(&self, i: usize) -> &str {
        self.services.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn row_barrier(&self, i: usize) -> (&str, &str) {
        self.row_barriers
            .get(i)
            .map(|(k, n)| (k.as_str(), n.as_str()))
            .unwrap_or(("", ""))
    }

    /// The visit's fields for `proto`. `clear` (editing): an empty optional
    /// field is sent as `Null`, which clears it; when adding it is left out.
    /// Barriers picked on an empty service row are reported by name.
    pub fn to_fields(&self, clear: bool) -> (Fields, Vec<(String, String)>) {
        let mut f = Fields::new();
        let mut problems = Vec::new();
        let mut text = |name: &str, v: &str| {
            let v = v.trim();
            if !v.is_empty() {
                f.insert(name.into(), json!(v));
            } else if clear {
                f.insert(name.into(), Value::Null);
            }
        };
        text("date", &self.date);
        text("time", &self.time);
        text("minutes", &self.minutes);
        text("channel", &self.channel);
        text("category", &self.category);
        text("outcome", &self.outcome);
        text("referred_to", &self.referred_to);
        text("age_band", &self.age_band);
        text("language", &self.language);
        text("note", &self.note);
        // Never cleared: an empty site keeps the laptop's (new visit) or
        // the record's (edit).
        if !self.site.trim().is_empty() {
            f.insert("site".into(), json!(self.site.trim()));
        }
        let services: Vec<String> = self
            .services
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        f.insert("services".into(), json!(services));
        f.insert(
            "assistive".into(),
            json!(
                self.assistive
                    .iter()
                    .filter(|a| !a.trim().is_empty())
                    .collect::<Vec<_>>()
            ),
        );
        let mut barriers: Vec<Value> = self
            .barriers
            .iter()
            .filter(|b| !b.trim().is_empty())
            .map(|b| json!(b))
            .collect();
        for (i, (kind, note)) in self.row_barriers.iter().enumerate() {
            if kind.trim().is_empty() {
                continue;
            }
            let service = self.service(i).trim();
            if service.is_empty() {
                problems.push((
                    "barriers".to_string(),
                    format!("row {}: a barrier needs its service", i + 1),
                ));
                continue;
            }
            let note = note.trim();
            barriers.push(json!({
                "service": service,
                "kind": kind,
                "note": if note.is_empty() { Value::Null } else { json!(note) },
            }));
        }
        f.insert("barriers".into(), Value::Array(barriers));
        f.insert("sensitive".into(), Value::Bool(self.sensitive));
        (f, problems)
    }
}

/// The visit inside a record, if it is one.
pub fn visit_of(r: &Record) -> Option<&Visit> {
    match &r.body {
        Body::Visit(v) => Some(v),
        Body::Course(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_fields_alone_make_a_visit() {
        let body =
            b"date=2025-03-04&minutes=20&channel=drop_in&services=Mobilt+BankID&services=1177\
&category=e_service&outcome=solved&age_band=65_79&language=sv&assistive=interpreter\
&barriers=1177%3Alogin%3Agl%C3%B6mt+l%C3%B6senord&sensitive=on&note=";
        let form = VisitForm::from_pairs(&pairs(body));
        let (f, problems) = form.to_fields(false);
        assert!(problems.is_empty());
        assert_eq!(f["services"], json!(["Mobilt BankID", "1177"]));
        assert_eq!(f["barriers"], json!(["1177:login:glömt lösenord"]));
        assert_eq!(f["sensitive"], json!(true));
        assert!(!f.contains_key("note"), "an empty note is left out");
    }

    #[test]
    fn a_row_barrier_belongs_to_its_rows_service() {
        let body = b"services=BankID&barrier_kind=login&barrier_note=&services=&barrier_kind=form&barrier_note=x";
        let form = VisitForm::from_pairs(&pairs(body));
        let (f, problems) = form.to_fields(true);
        assert_eq!(
            f["barriers"],
            json!([{"service": "BankID", "kind": "login", "note": null}])
        );
        assert_eq!(problems.len(), 1, "a barrier on an empty row is named");
        assert_eq!(f["note"], Value::Null, "editing clears an emptied field");
    }
}
