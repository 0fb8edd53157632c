//! The typed records (DESIGN.md section 2) and their validation.
//!
//! [`Record`] is the typed, validated form. It is built only by
//! [`Record::from_fields`], which checks every field by its entry in the
//! field table ([`crate::schema`]: types, ranges, enum values, the privacy
//! screen, cross-field rules) and reports all problems at once; and it is
//! flattened back with [`Record::to_fields`]. JSON uses exactly the contract's
//! field names, so `serde_json` output is what `list --json` and JSONL export
//! print.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fields::{Fields, ValidationErrors};
use crate::schema::{self, Scope};
use crate::screen::screen_field;

/// Longest free-text note we accept; long enough for a paragraph, short
/// enough that nobody pastes a letter (which is where identities hide).
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest short text (site, title, staff, referred_to, …).
pub const MAX_SHORT_CHARS: usize = 200;
/// Longest `staff` (initials or a short name): it is shown in every list.
pub const MAX_STAFF_CHARS: usize = 40;
pub const MAX_VISIT_MINUTES: i64 = 480;
pub const MAX_PARTICIPANTS: i64 = 500;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The values as text, in order: what [`crate::schema`] lists.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The accepted values, for error messages.
            pub fn allowed() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            /// Case-insensitive, and `-` or space may stand for `_`, because
            /// staff type `drop-in` as often as `drop_in`.
            fn from_str(s: &str) -> Result<Self, String> {
                let norm = crate::schema::normalize_enum(s);
                match norm.as_str() {
                    $($text => Ok($name::$variant),)+
                    // The typed value is not echoed (it could be anything,
                    // personal data included); a suggestion comes only
                    // from the allowed values.
                    _ => Err(format!(
                        "unknown value{}; use one of: {}",
                        crate::input::did_you_mean(s, $name::NAMES.iter().copied()),
                        $name::allowed()
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// What a record describes.
    Kind { Visit = "visit", Course = "course" }
);
string_enum!(Channel {
    DropIn = "drop_in",
    Booked = "booked",
    Outreach = "outreach",
    Phone = "phone",
    CourseFollowup = "course_followup",
});
string_enum!(Category {
    EService = "e_service",
    Device = "device",
    InternetBasics = "internet_basics",
    Security = "security",
    SocialMedia = "social_media",
    Other = "other",
});
string_enum!(Outcome {
    Solved = "solved",
    Partly = "partly",
    Referred = "referred",
    NotSolved = "not_solved",
});
string_enum!(AgeBand {
    Under25 = "under_25",
    From25To44 = "25_44",
    From45To64 = "45_64",
    From65To79 = "65_79",
    Over80 = "80_plus",
    Unknown = "unknown",
});
string_enum!(Assistive {
    Interpreter = "interpreter",
    SpeechSynthesis = "speech_synthesis",
    LargeText = "large_text",
    ScreenReader = "screen_reader",
});
string_enum!(BarrierKind {
    Login = "login",
    Bankid = "bankid",
    Language = "language",
    Navigation = "navigation",
    Form = "form",
    Accessibility = "accessibility",
    Device = "device",
    Other = "other",
});

/// What got in the way, in which e-service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Barrier {
    pub service: String,
    pub kind: BarrierKind,
    #[serde(default)]
    pub note: Option<String>,
}

impl Barrier {
    /// Parses the CLI form `SERVICE:KIND[:NOTE]`.
    pub fn parse_cli(s: &str) -> Result<Barrier, String> {
        let mut parts = s.splitn(3, ':');
        let service = parts.next().unwrap_or("").trim();
        let kind = parts.next().map(str::trim).unwrap_or("");
        let note = parts.next().map(str::trim).filter(|n| !n.is_empty());
        if service.is_empty() || kind.is_empty() {
            return Err("write a barrier as SERVICE:KIND[:NOTE], e.g. BankID:login".into());
        }
        Ok(Barrier {
            service: service.to_string(),
            kind: kind.parse()?,
            note: note.map(str::to_string),
        })
    }
}

/// One help visit: one person helped once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub date: NaiveDate,
    #[serde(default, with = "hhmm")]
    pub time: Option<NaiveTime>,
    pub minutes: u16,
    pub channel: Channel,
    pub services: Vec<String>,
    pub category: Category,
    pub outcome: Outcome,
    pub referred_to: Option<String>,
    pub age_band: AgeBand,
    pub language: String,
    pub assistive: Vec<Assistive>,
    pub barriers: Vec<Barrier>,
    pub sensitive: bool,
    pub note: Option<String>,
}

/// One meeting of a course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Made on the device; lets two laptops add sessions to one course
    /// concurrently without either being lost in the merge.
    pub id: String,
    pub date: NaiveDate,
    #[serde(default, with = "hhmm")]
    pub time: Option<NaiveTime>,
    pub minutes: u16,
    pub participants: u16,
    pub instructor: Option<String>,
    pub note: Option<String>,
}

/// A course or workshop series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    pub title: String,
    pub partner: Option<String>,
    pub target_group: Option<String>,
    /// Ordered by date, time, then id, so every replica lists them alike.
    pub sessions: Vec<Session>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Visit(Visit),
    Course(Course),
}

/// A validated record, with the contract's field names in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: Uuid,
    pub org: String,
    pub site: String,
    pub staff: String,
    pub device: String,
    pub created_at: DateTime<FixedOffset>,
    pub updated_at: DateTime<FixedOffset>,
    #[serde(flatten)]
    pub body: Body,
}

/// Field names every record carries, whatever its kind (from [`schema`]).
pub static COMMON_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::names(Scope::Common));
/// Field names of a visit (from [`schema`]).
pub static VISIT_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::names(Scope::Visit));
/// Field names of a course (from [`schema`]).
pub static COURSE_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::names(Scope::Course));
/// Field names of a course session (from [`schema`]).
pub static SESSION_FIELDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| schema::names(Scope::Session));

impl Record {
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Visit(_) => Kind::Visit,
            Body::Course(_) => Kind::Course,
        }
    }

    /// Flattens to raw fields (the inverse of [`Record::from_fields`]).
    pub fn to_fields(&self) -> Fields {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            // A Record always serializes to an object; keep the signature total.
            _ => Fields::new(),
        }
    }

    /// Validates raw fields into a record, reporting every problem at once.
    /// Unknown fields are refused so a typo never silently drops data.
    ///
    /// Each field is checked by its [`schema::FIELDS`] entry (shape, then
    /// the cross-field presence rules such as "at least one service"), so
    /// the CLI, import, a laptop's pull and the hub refuse the same things
    /// with the same words; the checked values then fill the typed record.
    pub fn from_fields(fields: &Fields) -> Result<Record, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let kind_def = schema::field(Scope::Common, "kind").expect("kind is in the schema");
        let kind =
            match schema::validate_value(kind_def, fields.get("kind").unwrap_or(&Value::Null)) {
                Ok(v) => v.as_str().and_then(|k| k.parse::<Kind>().ok()),
                Err(e) => {
                    errs.0.extend(e.0);
                    None
                }
            };
        let Some(kind) = kind else {
            // Without a kind the body cannot be judged; still report what
            // is wrong with the common fields.
            let mut common = fields.clone();
            common.retain(|k, _| k != "kind" && schema::field(Scope::Common, k).is_some());
            let mut rest = ValidationErrors::default();
            schema::check_scopes(&[Scope::Common], &common, None, &mut rest);
            errs.0
                .extend(rest.0.into_iter().filter(|e| e.field != "kind"));
            return Err(errs);
        };
        let unknown = format!("is not a field of a {}", kind.as_str());
        let checked =
            schema::check_scopes(&Scope::of_kind(kind), fields, Some(&unknown), &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        match Record::from_checked(kind, checked) {
            Ok(mut record) => {
                if let Body::Course(c) = &mut record.body {
                    c.sort_sessions();
                }
                Ok(record)
            }
            Err(e) => {
                // The schema and the typed record disagree: a bug, but
                // name it rather than panic on a record from the network.
                errs.push("record", format!("does not fit the record type: {e}"));
                Err(errs)
            }
        }
    }

    /// The typed record from the checked map of `kind`. The common fields
    /// and the body are deserialized apart: through `Record`'s flattened,
    /// `kind`-tagged body, serde first copies every field into a buffer of
    /// its own and then reads the body from that, allocations repeated for
    /// every record a sync validates (each one it stores, on the hub and
    /// on the laptop). The result is the same.
    fn from_checked(
        kind: Kind,
        checked: serde_json::Map<String, Value>,
    ) -> Result<Record, serde_json::Error> {
        #[derive(Deserialize)]
        struct Common {
            id: Uuid,
            org: String,
            site: String,
            staff: String,
            device: String,
            created_at: DateTime<FixedOffset>,
            updated_at: DateTime<FixedOffset>,
        }
        // Split in key order, so each map is built in one pass.
        let (common, body): (Vec<_>, Vec<_>) = checked
            .into_iter()
            .partition(|(name, _)| COMMON_FIELDS.contains(&name.as_str()));
        let object = |entries: Vec<(String, Value)>| Value::Object(entries.into_iter().collect());
        let c: Common = serde_json::from_value(object(common))?;
        let body = match kind {
            Kind::Visit => Body::Visit(serde_json::from_value(object(body))?),
            Kind::Course => Body::Course(serde_json::from_value(object(body))?),
        };
        Ok(Record {
            id: c.id,
            org: c.org,
            site: c.site,
            staff: c.staff,
            device: c.device,
            created_at: c.created_at,
            updated_at: c.updated_at,
            body,
        })
    }

    /// The dates this record covers: the visit day, or the first and last
    /// session of a course (None for a course with no sessions yet).
    pub fn date_range(&self) -> Option<(NaiveDate, NaiveDate)> {
        match &self.body {
            Body::Visit(v) => Some((v.date, v.date)),
            Body::Course(c) => {
                let first = c.sessions.iter().map(|s| s.date).min()?;
                let last = c.sessions.iter().map(|s| s.date).max()?;
                Some((first, last))
            }
        }
    }
}

impl Course {
    /// Sorts sessions into the one order every replica uses.
    pub fn sort_sessions(&mut self) {
        self.sessions
            .sort_by(|a, b| (a.date, a.time, &a.id).cmp(&(b.date, b.time, &b.id)));
    }
}

/// Validates one course session; field names in errors are the session's own.
pub fn session_from_fields(fields: &Fields) -> Result<Session, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let checked = schema::check_scopes(
        &[Scope::Session],
        fields,
        Some("is not a field of a course session"),
        &mut errs,
    );
    if !errs.is_empty() {
        return Err(errs);
    }
    serde_json::from_value::<Session>(Value::Object(checked)).map_err(|e| {
        errs.push("session", format!("does not fit the session type: {e}"));
        errs
    })
}

impl Session {
    pub fn to_fields(&self) -> Fields {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => Fields::new(),
        }
    }
}

/// Length, emptiness and privacy checks shared by every free-text field.
pub(crate) fn check_text(
    errs: &mut ValidationErrors,
    name: &str,
    s: &str,
    required: bool,
    max: usize,
    screen: bool,
) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        if required {
            errs.push(name, "must not be empty");
        }
        return None;
    }
    if s.chars().count() > max {
        errs.push(name, format!("is longer than {max} characters"));
        return None;
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errs.push(name, "contains control characters");
        return None;
    }
    if screen && let Err(e) = screen_field(name, s) {
        errs.push(name, refusal(&e));
        return None;
    }
    Some(s.to_string())
}

/// The screen's refusal, worded to follow the field name it is listed under.
pub fn refusal(e: &crate::screen::ScreenError) -> String {
    format!(
        "contains {}; records must stay anonymous, so remove it and try again",
        e.kind
    )
}

/// An organisation slug: what `org add` accepts and tokens are scoped to.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// `YYYY-MM-DD`, a real calendar day.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        format!(
            "'{}' is not a date; write YYYY-MM-DD, e.g. 2025-03-04",
            s.trim()
        )
    })
}

/// `HH:MM` (24-hour).
pub fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("'{}' is not a time; write HH:MM, e.g. 13:30", s.trim()))
}

/// A fresh record's raw fields with the common part filled in; the caller
/// adds the kind-specific fields and validates with [`Record::from_fields`].
pub fn new_record_fields(
    kind: Kind,
    org: &str,
    device: &str,
    now: DateTime<FixedOffset>,
    id: Uuid,
) -> Fields {
    let mut f = Fields::new();
    f.insert("id".into(), json!(id.to_string()));
    f.insert("kind".into(), json!(kind.as_str()));
    f.insert("org".into(), json!(org));
    f.insert("device".into(), json!(device));
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    f.insert("created_at".into(), json!(ts));
    f.insert("updated_at".into(), json!(ts));
    f
}

/// Serde for `Option<NaiveTime>` as `"HH:MM"`.
mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.format("%H:%M").to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => super::parse_time(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit_fields() -> Fields {
        crate::fixtures::visit_fields("mjolby")
    }

    #[test]
    fn a_valid_visit_round_trips_through_fields() {
        let rec = Record::from_fields(&visit_fields()).unwrap();
        assert_eq!(rec.kind(), Kind::Visit);
        let again = Record::from_fields(&rec.to_fields()).unwrap();
        assert_eq!(rec, again);
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_field() {
        let mut f = visit_fields();
        f.insert("date".into(), json!("2025-02-30"));
        f.insert("minutes".into(), json!(481));
        f.insert("channel".into(), json!("carrier_pigeon"));
        f.insert("language".into(), json!("swedish"));
        let errs = Record::from_fields(&f).unwrap_err();
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["date", "minutes", "channel", "language"]);
        let text = errs.to_string();
        assert!(
            text.contains("drop_in, booked, outreach, phone, course_followup"),
            "{text}"
        );
        assert!(text.contains("between 1 and 480"), "{text}");
    }

    #[test]
    fn minutes_bounds_are_inclusive() {
        for (m, ok) in [(0, false), (1, true), (480, true), (481, false)] {
            let mut f = visit_fields();
            f.insert("minutes".into(), json!(m));
            assert_eq!(Record::from_fields(&f).is_ok(), ok, "minutes {m}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut f = visit_fields();
        f.insert("name".into(), json!("Anna"));
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0[0].field, "name");
    }

    #[test]
    fn enum_values_accept_dashes_and_case() {
        assert_eq!("Drop-In".parse::<Channel>(), Ok(Channel::DropIn));
        assert_eq!("80_PLUS".parse::<AgeBand>(), Ok(AgeBand::Over80));
        assert!(
            "nope"
                .parse::<Outcome>()
                .unwrap_err()
                .contains("not_solved")
        );
    }

    #[test]
    fn barrier_cli_form_parses_with_and_without_note() {
        let b = Barrier::parse_cli("BankID:login:forgot the code").unwrap();
        assert_eq!(b.service, "BankID");
        assert_eq!(b.kind, BarrierKind::Login);
        assert_eq!(b.note.as_deref(), Some("forgot the code"));
        assert_eq!(Barrier::parse_cli("1177:form").unwrap().note, None);
        assert!(Barrier::parse_cli("1177").is_err());
        assert!(
            Barrier::parse_cli("1177:flying")
                .unwrap_err()
                .contains("navigation")
        );
    }

    #[test]
    fn a_note_with_a_personnummer_is_refused_without_echoing_it() {
        let mut f = visit_fields();
        f.insert(
            "note".into(),
            json!("hjälpte 19121212-1212 med deklarationen"),
        );
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0[0].field, "note");
        assert!(!errs.to_string().contains("1212"), "{errs}");
    }

    #[test]
    fn a_barrier_note_is_screened_too() {
        let mut f = visit_fields();
        f.insert(
            "barriers".into(),
            json!([{"service": "BankID", "kind": "login", "note": "call 070-123 45 67"}]),
        );
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0[0].field, "barrier note");
    }

    #[test]
    fn course_sessions_validate_and_sort() {
        let now = DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap();
        let mut f = new_record_fields(
            Kind::Course,
            "mjolby",
            "d1e5c0de-0000-4000-8000-000000000001",
            now,
            Uuid::new_v4(),
        );
        f.insert("site".into(), json!("Mjölby bibliotek"));
        f.insert("staff".into(), json!("AB"));
        f.insert("title".into(), json!("Nybörjarkurs internet"));
        f.insert(
            "sessions".into(),
            json!([
                {"id": "00000000-0000-4000-8000-00000000000b", "date": "2025-03-11", "minutes": 90, "participants": 8},
                {"id": "00000000-0000-4000-8000-00000000000a", "date": "2025-03-04", "minutes": 90, "participants": 10, "time": "13:00"},
            ]),
        );
        let rec = Record::from_fields(&f).unwrap();
        let Body::Course(c) = &rec.body else { panic!() };
        assert_eq!(c.sessions[0].id, "00000000-0000-4000-8000-00000000000a");
        assert_eq!(
            rec.date_range(),
            Some((
                parse_date("2025-03-04").unwrap(),
                parse_date("2025-03-11").unwrap()
            ))
        );
        f.insert(
            "sessions".into(),
            json!([{"id": "00000000-0000-4000-8000-00000000000c", "date": "2025-03-04", "minutes": 90, "participants": 501}]),
        );
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0[0].field, "sessions[0].participants");
    }

    #[test]
    fn json_uses_contract_field_names() {
        let rec = Record::from_fields(&visit_fields()).unwrap();
        let v = serde_json::to_value(&rec).unwrap();
        for k in COMMON_FIELDS.iter().chain(VISIT_FIELDS.iter()) {
            assert!(v.get(k).is_some(), "missing {k} in {v}");
        }
        assert_eq!(v["kind"], "visit");
    }
}
