//! The record schema (DESIGN.md section 2) and its validation.
//!
//! [`Record`] is the typed, validated form. It is built only by
//! [`Record::from_fields`], which checks every field (types, ranges, enum
//! values, the privacy screen) and reports all problems at once; and it is
//! flattened back with [`Record::to_fields`]. JSON uses exactly the contract's
//! field names, so `serde_json` output is what `list --json` and JSONL export
//! print.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fields::{Fields, ValidationErrors};
use crate::screen::screen_field;

/// Longest free-text note we accept; long enough for a paragraph, short
/// enough that nobody pastes a letter (which is where identities hide).
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest short text (site, title, staff, referred_to, …).
pub const MAX_SHORT_CHARS: usize = 200;
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
                let norm = s.trim().to_lowercase().replace(['-', ' '], "_");
                match norm.as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("unknown value; use one of: {}", $name::allowed())),
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

/// Fields every record carries, whatever its kind.
pub const COMMON_FIELDS: &[&str] = &[
    "id",
    "kind",
    "org",
    "site",
    "staff",
    "device",
    "created_at",
    "updated_at",
];
pub const VISIT_FIELDS: &[&str] = &[
    "date",
    "time",
    "minutes",
    "channel",
    "services",
    "category",
    "outcome",
    "referred_to",
    "age_band",
    "language",
    "assistive",
    "barriers",
    "sensitive",
    "note",
];
pub const COURSE_FIELDS: &[&str] = &["title", "partner", "target_group", "sessions", "note"];

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
    pub fn from_fields(fields: &Fields) -> Result<Record, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut v = Validator {
            fields,
            errs: &mut errs,
        };
        let kind = v.parse::<Kind>("kind", true);
        let allowed: &[&str] = match kind {
            Some(Kind::Visit) => VISIT_FIELDS,
            Some(Kind::Course) => COURSE_FIELDS,
            None => &[],
        };
        if kind.is_some() {
            for name in fields.keys() {
                if !COMMON_FIELDS.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
                    v.errs.push(
                        name.as_str(),
                        format!(
                            "is not a field of a {}",
                            kind.map(Kind::as_str).unwrap_or("")
                        ),
                    );
                }
            }
        }
        let id = v.text("id", true, MAX_SHORT_CHARS, false).and_then(|s| {
            Uuid::parse_str(&s)
                .map_err(|_| v.errs.push("id", "is not a UUID"))
                .ok()
        });
        let org = v.slug("org");
        let site = v.text("site", true, MAX_SHORT_CHARS, true);
        let staff = v.text("staff", true, 40, true);
        let device = v.text("device", true, MAX_SHORT_CHARS, false);
        let created_at = v.timestamp("created_at");
        let updated_at = v.timestamp("updated_at");
        let body = match kind {
            Some(Kind::Visit) => v.visit().map(Body::Visit),
            Some(Kind::Course) => v.course().map(Body::Course),
            None => None,
        };
        match (id, org, site, staff, device, created_at, updated_at, body) {
            (
                Some(id),
                Some(org),
                Some(site),
                Some(staff),
                Some(device),
                Some(created_at),
                Some(updated_at),
                Some(body),
            ) if errs.is_empty() => Ok(Record {
                id,
                org,
                site,
                staff,
                device,
                created_at,
                updated_at,
                body,
            }),
            _ => {
                if errs.is_empty() {
                    errs.push("record", "is incomplete");
                }
                Err(errs)
            }
        }
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

/// Reads one field after another, collecting errors instead of stopping.
struct Validator<'a> {
    fields: &'a Fields,
    errs: &'a mut ValidationErrors,
}

impl<'a> Validator<'a> {
    fn raw(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    fn missing(&mut self, name: &str) {
        self.errs.push(name, "is required");
    }

    fn text(&mut self, name: &str, required: bool, max: usize, screen: bool) -> Option<String> {
        let Some(raw) = self.raw(name) else {
            if required {
                self.missing(name);
            }
            return None;
        };
        let Some(s) = raw.as_str() else {
            self.errs.push(name, "must be text");
            return None;
        };
        check_text(self.errs, name, s, required, max, screen)
    }

    fn opt_text(&mut self, name: &str, max: usize) -> Option<String> {
        self.text(name, false, max, true)
    }

    fn slug(&mut self, name: &str) -> Option<String> {
        let s = self.text(name, true, 64, false)?;
        if is_slug(&s) {
            Some(s)
        } else {
            self.errs.push(
                name,
                "must be a slug: lowercase letters a-z, digits and '-', e.g. mjolby",
            );
            None
        }
    }

    fn parse<T: FromStr<Err = String>>(&mut self, name: &str, required: bool) -> Option<T> {
        let Some(raw) = self.raw(name) else {
            if required {
                self.missing(name);
            }
            return None;
        };
        match raw.as_str().map(str::parse::<T>) {
            Some(Ok(t)) => Some(t),
            Some(Err(msg)) => {
                self.errs.push(name, msg);
                None
            }
            None => {
                self.errs.push(name, "must be text");
                None
            }
        }
    }

    fn date(&mut self, name: &str) -> Option<NaiveDate> {
        let s = self.text(name, true, 32, false)?;
        parse_date(&s).map_err(|m| self.errs.push(name, m)).ok()
    }

    fn time(&mut self, name: &str) -> Option<NaiveTime> {
        let s = self.text(name, false, 32, false)?;
        parse_time(&s).map_err(|m| self.errs.push(name, m)).ok()
    }

    fn timestamp(&mut self, name: &str) -> Option<DateTime<FixedOffset>> {
        let s = self.text(name, true, 64, false)?;
        DateTime::parse_from_rfc3339(&s)
            .map_err(|_| {
                self.errs.push(
                    name,
                    "must be an RFC 3339 time, e.g. 2025-03-04T10:15:00+01:00",
                )
            })
            .ok()
    }

    fn int(&mut self, name: &str, min: i64, max: i64) -> Option<u16> {
        let Some(raw) = self.raw(name) else {
            self.missing(name);
            return None;
        };
        let n = match raw {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => u16::try_from(n).ok(),
            Some(_) => {
                self.errs
                    .push(name, format!("must be between {min} and {max}"));
                None
            }
            None => {
                self.errs
                    .push(name, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }

    fn bool(&mut self, name: &str) -> Option<bool> {
        match self.raw(name) {
            None => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim().to_lowercase().as_str() {
                "true" | "yes" | "ja" | "1" => Some(true),
                "false" | "no" | "nej" | "0" | "" => Some(false),
                _ => {
                    self.errs.push(name, "must be true or false");
                    None
                }
            },
            Some(_) => {
                self.errs.push(name, "must be true or false");
                None
            }
        }
    }

    fn list(&mut self, name: &str) -> Option<Vec<Value>> {
        match self.raw(name) {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => Some(items.clone()),
            Some(_) => {
                self.errs.push(name, "must be a list");
                None
            }
        }
    }

    fn language(&mut self, name: &str) -> Option<String> {
        let s = self.text(name, true, 8, false)?.to_lowercase();
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase()) {
            Some(s)
        } else {
            self.errs.push(
                name,
                "must be a two-letter ISO 639-1 code, e.g. sv, ar, so, en",
            );
            None
        }
    }

    fn visit(&mut self) -> Option<Visit> {
        let date = self.date("date");
        let time = self.time("time");
        let minutes = self.int("minutes", 1, MAX_VISIT_MINUTES);
        let channel = self.parse::<Channel>("channel", true);
        let services = self.list("services").and_then(|items| {
            let mut out = Vec::new();
            for item in items {
                match item.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() && s.chars().count() <= MAX_SHORT_CHARS => {
                        if let Err(e) = screen_field("services", s) {
                            self.errs.push("services", refusal(&e));
                            return None;
                        }
                        if !out.iter().any(|o: &String| o == s) {
                            out.push(s.to_string());
                        }
                    }
                    _ => {
                        self.errs
                            .push("services", "each service must be a non-empty name");
                        return None;
                    }
                }
            }
            Some(out)
        });
        let category = self.parse::<Category>("category", true);
        let outcome = self.parse::<Outcome>("outcome", true);
        let referred_to = self.opt_text("referred_to", MAX_SHORT_CHARS);
        let age_band = self.parse::<AgeBand>("age_band", true);
        let language = self.language("language");
        let assistive = self.list("assistive").and_then(|items| {
            let mut out = Vec::new();
            for item in items {
                match item.as_str().map(str::parse::<Assistive>) {
                    Some(Ok(a)) => {
                        if !out.contains(&a) {
                            out.push(a);
                        }
                    }
                    Some(Err(m)) => {
                        self.errs.push("assistive", m);
                        return None;
                    }
                    None => {
                        self.errs.push("assistive", "each entry must be text");
                        return None;
                    }
                }
            }
            Some(out)
        });
        let barriers = self.list("barriers").and_then(|items| {
            let mut out = Vec::new();
            for item in items {
                match self.barrier(item) {
                    Some(b) => out.push(b),
                    None => return None,
                }
            }
            Some(out)
        });
        let sensitive = self.bool("sensitive");
        let note = self.opt_text("note", MAX_NOTE_CHARS);
        Some(Visit {
            date: date?,
            time,
            minutes: minutes?,
            channel: channel?,
            services: services?,
            category: category?,
            outcome: outcome?,
            referred_to,
            age_band: age_band?,
            language: language?,
            assistive: assistive?,
            barriers: barriers?,
            sensitive: sensitive?,
            note,
        })
    }

    fn barrier(&mut self, item: Value) -> Option<Barrier> {
        let field = "barriers";
        let parsed = match item {
            Value::String(s) => Barrier::parse_cli(&s),
            Value::Object(_) => serde_json::from_value::<Barrier>(item)
                .map_err(|_| "each barrier needs service and kind (and an optional note)".into()),
            _ => Err("each barrier must be SERVICE:KIND[:NOTE] or an object".into()),
        };
        match parsed {
            Ok(b) => {
                let service = check_text(self.errs, field, &b.service, true, MAX_SHORT_CHARS, true);
                let note = match &b.note {
                    Some(n) => {
                        check_text(self.errs, "barrier note", n, false, MAX_NOTE_CHARS, true)
                            .map(Some)
                    }
                    None => Some(None),
                };
                Some(Barrier {
                    service: service?,
                    kind: b.kind,
                    note: note?,
                })
            }
            Err(m) => {
                self.errs.push(field, m);
                None
            }
        }
    }

    fn course(&mut self) -> Option<Course> {
        let title = self.text("title", true, MAX_SHORT_CHARS, true);
        let partner = self.opt_text("partner", MAX_SHORT_CHARS);
        let target_group = self.opt_text("target_group", MAX_SHORT_CHARS);
        let note = self.opt_text("note", MAX_NOTE_CHARS);
        let sessions = self.list("sessions").and_then(|items| {
            let mut out = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let Value::Object(map) = item else {
                    self.errs.push("sessions", "each session must be an object");
                    return None;
                };
                let fields: Fields = map.into_iter().collect();
                match session_from_fields(&fields) {
                    Ok(s) => out.push(s),
                    Err(e) => {
                        for fe in e.0 {
                            self.errs
                                .push(format!("sessions[{i}].{}", fe.field), fe.message);
                        }
                        return None;
                    }
                }
            }
            Some(out)
        });
        let mut course = Course {
            title: title?,
            partner,
            target_group,
            sessions: sessions?,
            note,
        };
        course.sort_sessions();
        Some(course)
    }
}

/// Validates one course session; field names in errors are the session's own.
pub fn session_from_fields(fields: &Fields) -> Result<Session, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let mut v = Validator {
        fields,
        errs: &mut errs,
    };
    for name in fields.keys() {
        if !SESSION_FIELDS.contains(&name.as_str()) {
            v.errs
                .push(name.as_str(), "is not a field of a course session");
        }
    }
    let id = v.text("id", true, 64, false);
    let date = v.date("date");
    let time = v.time("time");
    let minutes = v.int("minutes", 1, MAX_VISIT_MINUTES);
    let participants = v.int("participants", 0, MAX_PARTICIPANTS);
    let instructor = v.opt_text("instructor", MAX_SHORT_CHARS);
    let note = v.opt_text("note", MAX_NOTE_CHARS);
    match (id, date, minutes, participants) {
        (Some(id), Some(date), Some(minutes), Some(participants)) if errs.is_empty() => {
            Ok(Session {
                id,
                date,
                time,
                minutes,
                participants,
                instructor,
                note,
            })
        }
        _ => Err(errs),
    }
}

pub const SESSION_FIELDS: &[&str] = &[
    "id",
    "date",
    "time",
    "minutes",
    "participants",
    "instructor",
    "note",
];

impl Session {
    pub fn to_fields(&self) -> Fields {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map.into_iter().collect(),
            _ => Fields::new(),
        }
    }
}

/// Length, emptiness and privacy checks shared by every free-text field.
fn check_text(
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
        let now = DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap();
        let mut f = new_record_fields(Kind::Visit, "mjolby", "dev-1", now, Uuid::new_v4());
        for (k, v) in [
            ("site", json!("Mjölby bibliotek")),
            ("staff", json!("AB")),
            ("date", json!("2025-03-04")),
            ("minutes", json!(30)),
            ("channel", json!("drop_in")),
            ("services", json!(["BankID", "Försäkringskassan"])),
            ("category", json!("e_service")),
            ("outcome", json!("solved")),
            ("age_band", json!("65_79")),
            ("language", json!("sv")),
        ] {
            f.insert(k.into(), v);
        }
        f
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
        let mut f = new_record_fields(Kind::Course, "mjolby", "dev-1", now, Uuid::new_v4());
        f.insert("site".into(), json!("Mjölby bibliotek"));
        f.insert("staff".into(), json!("AB"));
        f.insert("title".into(), json!("Nybörjarkurs internet"));
        f.insert(
            "sessions".into(),
            json!([
                {"id": "b", "date": "2025-03-11", "minutes": 90, "participants": 8},
                {"id": "a", "date": "2025-03-04", "minutes": 90, "participants": 10, "time": "13:00"},
            ]),
        );
        let rec = Record::from_fields(&f).unwrap();
        let Body::Course(c) = &rec.body else { panic!() };
        assert_eq!(c.sessions[0].id, "a");
        assert_eq!(
            rec.date_range(),
            Some((
                parse_date("2025-03-04").unwrap(),
                parse_date("2025-03-11").unwrap()
            ))
        );
        f.insert(
            "sessions".into(),
            json!([{"id": "c", "date": "2025-03-04", "minutes": 90, "participants": 501}]),
        );
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0[0].field, "sessions[0].participants");
    }

    #[test]
    fn json_uses_contract_field_names() {
        let rec = Record::from_fields(&visit_fields()).unwrap();
        let v = serde_json::to_value(&rec).unwrap();
        for k in COMMON_FIELDS.iter().chain(VISIT_FIELDS) {
            assert!(v.get(k).is_some(), "missing {k} in {v}");
        }
        assert_eq!(v["kind"], "visit");
    }
}
