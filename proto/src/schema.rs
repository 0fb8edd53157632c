//! Every record field, declared once (DESIGN.md section 2).
//!
//! [`FIELDS`] is the single list of what a record may hold: for each field
//! its kind ([`Scope`]), its [`Shape`] (type and allowed values), whether it
//! is required, its CLI flag, its export column(s) and its Swedish and
//! English label and help text. Everything that handles fields reads it:
//!
//! - validation ([`crate::record::Record::from_fields`] checks each field by
//!   its shape, then the cross-field [`Presence::RequiredUnless`] rules);
//! - the CSV/XLSX export columns ([`columns`]) and their cells (the daemon's
//!   `export` module renders a value by its shape);
//! - `outpost import` (header name → field through [`column_field`], which
//!   accepts the column name and the Swedish or English label);
//! - the `outpost` add/edit flags and their help, allowed values included.
//!
//! Why: a field used to be spelled out in half a dozen places that drifted
//! apart (the "at least one service" rule lived only in `visit add`). Adding
//! a field is now a row here plus, for a typed field, a member of the
//! matching struct in [`crate::record`]; the `every_field_…` tests fail
//! until each consumer knows it.

use serde_json::{Value, json};

use crate::fields::{Fields, ValidationErrors};
use crate::record::{
    AgeBand, Assistive, Barrier, Category, Channel, Kind, MAX_NOTE_CHARS, MAX_PARTICIPANTS,
    MAX_SHORT_CHARS, MAX_STAFF_CHARS, MAX_VISIT_MINUTES, Outcome, check_text, is_slug, parse_date,
    parse_time, refusal,
};
use crate::screen::screen_field;

/// Which part of a record a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every record, whatever its kind.
    Common,
    Visit,
    Course,
    /// One meeting of a course (an entry of the course's `sessions`).
    Session,
}

impl Scope {
    /// The scopes whose fields a record of `kind` holds at its top level.
    pub fn of_kind(kind: Kind) -> [Scope; 2] {
        match kind {
            Kind::Visit => [Scope::Common, Scope::Visit],
            Kind::Course => [Scope::Common, Scope::Course],
        }
    }
}

/// A field's type and the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A UUID made on the device.
    Uuid,
    /// An organisation slug: a-z, 0-9 and '-'.
    Slug,
    /// RFC 3339 device time.
    Timestamp,
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM`.
    Time,
    /// A whole number in `min..=max`.
    Int { min: i64, max: i64 },
    /// One of the values (case-insensitive, `-` or space for `_`).
    Enum(&'static [&'static str]),
    /// Free text; `screened` runs the privacy screen (DESIGN.md section 4).
    Text { max: usize, screened: bool },
    /// A two-letter ISO 639-1 code.
    Language,
    /// A list of texts, each at most `max` characters, duplicates dropped.
    TextList { max: usize, screened: bool },
    /// A list of enum values, duplicates dropped.
    EnumList(&'static [&'static str]),
    /// `SERVICE:KIND[:NOTE]` items or `{service, kind, note}` objects.
    Barriers,
    /// true/false (also yes/no, ja/nej, 1/0); absent is false.
    Bool,
    /// A course's sessions, each validated by the [`Scope::Session`] fields.
    Sessions,
}

impl Shape {
    /// The accepted values of an enum or enum list, for help and errors.
    pub fn values(self) -> Option<&'static [&'static str]> {
        match self {
            Shape::Enum(v) | Shape::EnumList(v) => Some(v),
            _ => None,
        }
    }

    /// A list shape: absent is an empty list, and a CLI flag may repeat.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Shape::TextList { .. } | Shape::EnumList(_) | Shape::Barriers | Shape::Sessions
        )
    }
}

/// Whether a field must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    /// Required (a non-empty list) unless the record's `field` holds one of
    /// `values`: the DESIGN.md section 2 rule for `services`.
    RequiredUnless {
        field: &'static str,
        values: &'static [&'static str],
    },
}

/// How a field is given on the `outpost` command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag {
    /// `--long`, e.g. `service` for `services`.
    pub long: &'static str,
    /// Shown in help, e.g. `SERVICE`.
    pub value_name: &'static str,
    /// A bool field's switch that sets it false (`edit --not-sensitive`).
    pub off: Option<&'static str>,
}

/// Text in both languages of the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text2 {
    pub sv: &'static str,
    pub en: &'static str,
}

/// One field of one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// The contract's name, as in JSON and [`Fields`].
    pub name: &'static str,
    pub scope: Scope,
    pub shape: Shape,
    pub presence: Presence,
    /// `None`: set by the program, not by a flag (id, device, timestamps).
    pub flag: Option<Flag>,
    /// The field's export column; `None` for fields no CSV row holds.
    pub column: Option<&'static str>,
    /// Read-only columns derived from this field, written after it and
    /// ignored on import (`agencies` from `services`).
    pub derived: &'static [&'static str],
    /// Exported after every column without it: the trailing common
    /// columns (device, timestamps), and any field added to a kind later,
    /// so the contract's leading columns (DESIGN.md section 6) stay put.
    pub export_last: bool,
    /// Short name (a form label, a Swedish or English import header).
    pub label: Text2,
    /// One sentence for the user (CLI help, form hint).
    pub help: Text2,
}

impl FieldDef {
    const fn new(name: &'static str, scope: Scope, shape: Shape) -> FieldDef {
        FieldDef {
            name,
            scope,
            shape,
            presence: Presence::Required,
            flag: None,
            column: Some(name),
            derived: &[],
            export_last: false,
            label: Text2 { sv: "", en: "" },
            help: Text2 { sv: "", en: "" },
        }
    }
    const fn optional(mut self) -> Self {
        self.presence = Presence::Optional;
        self
    }
    const fn presence(mut self, p: Presence) -> Self {
        self.presence = p;
        self
    }
    const fn flag(mut self, long: &'static str, value_name: &'static str) -> Self {
        self.flag = Some(Flag {
            long,
            value_name,
            off: None,
        });
        self
    }
    const fn switch(mut self, long: &'static str, off: &'static str) -> Self {
        self.flag = Some(Flag {
            long,
            value_name: "",
            off: Some(off),
        });
        self
    }
    const fn column(mut self, column: Option<&'static str>) -> Self {
        self.column = column;
        self
    }
    const fn derived(mut self, derived: &'static [&'static str]) -> Self {
        self.derived = derived;
        self
    }
    const fn last(mut self) -> Self {
        self.export_last = true;
        self
    }
    const fn label(mut self, sv: &'static str, en: &'static str) -> Self {
        self.label = Text2 { sv, en };
        self
    }
    const fn help(mut self, sv: &'static str, en: &'static str) -> Self {
        self.help = Text2 { sv, en };
        self
    }

    /// CLI help: the English help, with the allowed values when there are any.
    pub fn cli_help(&self) -> String {
        let mut help = self.help.en.to_string();
        if let Some(values) = self.shape.values() {
            help.push_str(&format!(" One of: {}.", values.join(", ")));
        }
        if let Presence::RequiredUnless { field, values } = self.presence {
            help.push_str(&format!(
                " Required unless {field} is {}.",
                values.join(", ")
            ));
        }
        help
    }
}

/// Categories of visit that may name no e-service (DESIGN.md section 2).
pub const CATEGORIES_WITHOUT_SERVICE: &[&str] = &[
    "device",
    "internet_basics",
    "security",
    "social_media",
    "other",
];

const NOTE: Shape = Shape::Text {
    max: MAX_NOTE_CHARS,
    screened: true,
};
const SHORT: Shape = Shape::Text {
    max: MAX_SHORT_CHARS,
    screened: true,
};
const MINUTES: Shape = Shape::Int {
    min: 1,
    max: MAX_VISIT_MINUTES,
};

use Scope::{Common, Course as C, Session as S, Visit as V};

/// Every field of every record kind. Order matters: it is the order of
/// validation errors, of `show`, and of the export columns (fields without
/// `export_last`: common, the kind's, the course's sessions'; then those
/// with it, in the same order). A new field of a kind goes at the end of
/// its kind's rows with `.last()`, so existing exports keep their columns.
pub static FIELDS: &[FieldDef] = &[
    // ---- common ----
    FieldDef::new("id", Common, Shape::Uuid)
        .label("Id", "Id")
        .help("Postens id, skapat på enheten.", "The record's id, made on the device."),
    FieldDef::new("kind", Common, Shape::Enum(Kind::NAMES))
        .column(None)
        .label("Typ", "Kind")
        .help("Besök eller kurs.", "Visit or course."),
    FieldDef::new("org", Common, Shape::Slug)
        .label("Organisation", "Organisation")
        .help("Organisationens kortnamn, t.ex. mjolby.", "Organisation slug, e.g. mjolby."),
    FieldDef::new("site", Common, SHORT)
        .flag("site", "SITE")
        .label("Plats", "Site")
        .help(
            "Platsen, om inte datorns förval.",
            "Site, if not this laptop's default.",
        ),
    FieldDef::new(
        "staff",
        Common,
        Shape::Text {
            max: MAX_STAFF_CHARS,
            screened: true,
        },
    )
    .flag("staff", "STAFF")
    .label("Personal", "Staff")
    .help(
        "Personalens initialer, om inte datorns förval.",
        "Staff initials, if not this laptop's default.",
    ),
    // A UUID, like every id: a fixed shape leaves no room for free text.
    FieldDef::new("device", Common, Shape::Uuid)
    .last()
    .label("Enhet", "Device")
    .help("Enheten som skapade posten.", "The device that created the record."),
    FieldDef::new("created_at", Common, Shape::Timestamp)
        .last()
        .label("Skapad", "Created at")
        .help("När posten skapades (enhetens tid).", "When the record was created (device time)."),
    FieldDef::new("updated_at", Common, Shape::Timestamp)
        .last()
        .label("Ändrad", "Updated at")
        .help("När posten senast ändrades (enhetens tid).", "When the record was last changed (device time)."),
    // ---- visit ----
    FieldDef::new("date", V, Shape::Date)
        .flag("date", "DATE")
        .label("Datum", "Date")
        .help("Besöksdagen, ÅÅÅÅ-MM-DD.", "Day of the visit, YYYY-MM-DD."),
    FieldDef::new("time", V, Shape::Time)
        .optional()
        .flag("time", "TIME")
        .label("Tid", "Time")
        .help("Klockslag, TT:MM.", "Time of day, HH:MM."),
    FieldDef::new("minutes", V, MINUTES)
        .flag("minutes", "MINUTES")
        .label("Minuter", "Minutes")
        .help("Minuter av hjälp, 1–480.", "Minutes of help, 1–480."),
    FieldDef::new("channel", V, Shape::Enum(Channel::NAMES))
        .flag("channel", "CHANNEL")
        .label("Kanal", "Channel")
        .help("Hur besöket kom till.", "How the visit came about."),
    FieldDef::new(
        "services",
        V,
        Shape::TextList {
            max: MAX_SHORT_CHARS,
            screened: true,
        },
    )
    .presence(Presence::RequiredUnless {
        field: "category",
        values: CATEGORIES_WITHOUT_SERVICE,
    })
    .flag("service", "SERVICE")
    .derived(&["agencies"])
    .label("Tjänster", "Services")
    .help(
        "E-tjänst(er) besöket gällde, t.ex. BankID (upprepa eller lista flera).",
        "E-service(s) the visit was about, e.g. BankID (repeat or list several).",
    ),
    FieldDef::new("category", V, Shape::Enum(Category::NAMES))
        .flag("category", "CATEGORY")
        .label("Kategori", "Category")
        .help("Vad besöket gällde.", "What the visit was about."),
    FieldDef::new("outcome", V, Shape::Enum(Outcome::NAMES))
        .flag("outcome", "OUTCOME")
        .label("Resultat", "Outcome")
        .help("Hur det gick.", "How it went."),
    FieldDef::new("referred_to", V, SHORT)
        .optional()
        .flag("referred-to", "REFERRED_TO")
        .label("Hänvisad till", "Referred to")
        .help("Vart personen hänvisades.", "Where the person was referred (optional)."),
    FieldDef::new("age_band", V, Shape::Enum(AgeBand::NAMES))
        .flag("age-band", "AGE_BAND")
        .label("Åldersgrupp", "Age band")
        .help("Personens åldersgrupp.", "The person's age band."),
    FieldDef::new("language", V, Shape::Language)
        .flag("language", "LANGUAGE")
        .label("Språk", "Language")
        .help(
            "ISO 639-1-kod för språket hjälpen gavs på, t.ex. sv, ar.",
            "ISO 639-1 code of the language the help was given in, e.g. sv, ar.",
        ),
    FieldDef::new("assistive", V, Shape::EnumList(Assistive::NAMES))
        .optional()
        .flag("assistive", "AID")
        .label("Hjälpmedel", "Assistive")
        .help("Hjälpmedel som användes (upprepa för flera).", "Assistive aids used (repeatable)."),
    FieldDef::new("barriers", V, Shape::Barriers)
        .optional()
        .flag("barrier", "SERVICE:KIND[:NOTE]")
        .label("Hinder", "Barriers")
        .help(
            "Vad som stod i vägen: TJÄNST:TYP[:ANTECKNING], t.ex. BankID:login (upprepa för flera).",
            "What got in the way: SERVICE:KIND[:NOTE], e.g. BankID:login (repeatable). KIND is one of: login, bankid, language, navigation, form, accessibility, device, other.",
        ),
    FieldDef::new("sensitive", V, Shape::Bool)
        .optional()
        .switch("sensitive", "not-sensitive")
        .label("Känsligt", "Sensitive")
        .help("Besöket rörde bankärenden eller köp.", "The visit touched banking or purchases."),
    FieldDef::new("note", V, NOTE)
        .optional()
        .flag("note", "NOTE")
        .label("Anteckning", "Note")
        .help(
            "Fri text (inga namn, nummer eller adresser: den granskas).",
            "Free-text note (no names, numbers or addresses: it is screened).",
        ),
    // ---- course ----
    FieldDef::new("title", C, SHORT)
        .flag("title", "TITLE")
        .label("Titel", "Title")
        .help("Kursens titel, t.ex. \"Nybörjarkurs internet\".", "Course title, e.g. \"Nybörjarkurs internet\"."),
    FieldDef::new("partner", C, SHORT)
        .optional()
        .flag("partner", "PARTNER")
        .label("Partner", "Partner")
        .help("Samarbetspartner, t.ex. Medborgarskolan.", "Partner organisation, e.g. Medborgarskolan."),
    FieldDef::new("target_group", C, SHORT)
        .optional()
        .flag("target-group", "TARGET_GROUP")
        .label("Målgrupp", "Target group")
        .help("Vem kursen är för.", "Who the course is for."),
    FieldDef::new("note", C, NOTE)
        .optional()
        .flag("note", "NOTE")
        .column(Some("course_note"))
        .label("Kursanteckning", "Course note")
        .help("Fri text (granskas).", "Free-text note (screened)."),
    FieldDef::new("sessions", C, Shape::Sessions)
        .optional()
        .column(None)
        .label("Tillfällen", "Sessions")
        .help("Kursens tillfällen.", "The course's meetings."),
    // ---- course session ----
    FieldDef::new("id", S, Shape::Uuid)
    .column(Some("session_id"))
    .label("Tillfälle-id", "Session id")
    .help("Tillfällets id, skapat på enheten.", "The session's id, made on the device."),
    FieldDef::new("date", S, Shape::Date)
        .flag("date", "DATE")
        .column(Some("session_date"))
        .label("Tillfällets datum", "Session date")
        .help("Tillfällets dag, ÅÅÅÅ-MM-DD.", "Day of the session, YYYY-MM-DD."),
    FieldDef::new("time", S, Shape::Time)
        .optional()
        .flag("time", "TIME")
        .column(Some("session_time"))
        .label("Tillfällets tid", "Session time")
        .help("Starttid, TT:MM.", "Start time, HH:MM."),
    FieldDef::new("minutes", S, MINUTES)
        .flag("minutes", "MINUTES")
        .column(Some("session_minutes"))
        .label("Tillfällets minuter", "Session minutes")
        .help("Längd i minuter, 1–480.", "Length in minutes, 1–480."),
    FieldDef::new(
        "participants",
        S,
        Shape::Int {
            min: 0,
            max: MAX_PARTICIPANTS,
        },
    )
    .flag("participants", "PARTICIPANTS")
    .label("Deltagare", "Participants")
    .help("Hur många som kom, 0–500.", "How many came, 0–500."),
    FieldDef::new("instructor", S, SHORT)
        .optional()
        .flag("instructor", "INSTRUCTOR")
        .label("Kursledare", "Instructor")
        .help("Vem som ledde tillfället.", "Who led it."),
    FieldDef::new("note", S, NOTE)
        .optional()
        .flag("note", "NOTE")
        .column(Some("session_note"))
        .label("Tillfällesanteckning", "Session note")
        .help("Fri text (granskas).", "Free-text note (screened)."),
];

/// The fields of one scope, in table order.
pub fn fields_of(scope: Scope) -> impl Iterator<Item = &'static FieldDef> {
    FIELDS.iter().filter(move |d| d.scope == scope)
}

/// The field `name` of `scope`.
pub fn field(scope: Scope, name: &str) -> Option<&'static FieldDef> {
    fields_of(scope).find(|d| d.name == name)
}

/// The names of a scope's fields, in table order.
pub fn names(scope: Scope) -> Vec<&'static str> {
    fields_of(scope).map(|d| d.name).collect()
}

/// One export column: the field it shows, and whether it is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub field: &'static FieldDef,
    /// A read-only column computed from `field` (e.g. `agencies`).
    pub derived: bool,
}

/// The CSV/XLSX columns of a kind, in order (DESIGN.md section 6). A course
/// row is one session, so a course's columns include the session fields.
pub fn columns(kind: Kind) -> Vec<Column> {
    let body: &[Scope] = match kind {
        Kind::Visit => &[Scope::Visit],
        Kind::Course => &[Scope::Course, Scope::Session],
    };
    let scopes = || std::iter::once(&Scope::Common).chain(body.iter());
    let mut defs: Vec<&'static FieldDef> = Vec::new();
    for last in [false, true] {
        for scope in scopes() {
            defs.extend(fields_of(*scope).filter(|d| d.export_last == last));
        }
    }
    let mut out = Vec::new();
    for d in defs {
        if let Some(name) = d.column {
            out.push(Column {
                name,
                field: d,
                derived: false,
            });
        }
        for name in d.derived {
            out.push(Column {
                name,
                field: d,
                derived: true,
            });
        }
    }
    out
}

/// The column names of a kind, in order.
pub fn column_names(kind: Kind) -> Vec<&'static str> {
    columns(kind).into_iter().map(|c| c.name).collect()
}

/// The export column a header names: its column name, or the field's
/// Swedish or English label, in any case and spacing (`  Hänvisad  TILL`),
/// so old spreadsheets with Swedish headers import too.
pub fn column_field(kind: Kind, header: &str) -> Option<Column> {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let h = norm(header);
    columns(kind).into_iter().find(|c| {
        c.name == h || (!c.derived && (norm(c.field.label.sv) == h || norm(c.field.label.en) == h))
    })
}

/// Lowercase, with `-` and space read as `_`: how enum values are matched.
pub fn normalize_enum(s: &str) -> String {
    s.trim().to_lowercase().replace(['-', ' '], "_")
}

/// Finds `s` among `values` the way [`normalize_enum`] matches.
pub fn parse_enum(s: &str, values: &'static [&'static str]) -> Result<&'static str, String> {
    // A stored or synced value is already in normal form (lowercase ASCII,
    // digits, `_`), which `normalize_enum` leaves as it is: match it
    // without building the normalised copy (validation runs for every
    // record a sync stores).
    if s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && let Some(v) = values.iter().copied().find(|v| *v == s)
    {
        return Ok(v);
    }
    let norm = normalize_enum(s);
    values.iter().copied().find(|v| *v == norm).ok_or_else(|| {
        format!(
            "unknown value{}; use one of: {}",
            crate::input::did_you_mean(s, values.iter().copied()),
            values.join(", ")
        )
    })
}

/// Validates one value of `def` alone (no cross-field rules): the
/// normalised value, `Null` for an absent optional field. Used where a
/// single field is checked outside a record, e.g. `Store::init`'s staff.
pub fn validate_value(def: &FieldDef, value: &Value) -> Result<Value, ValidationErrors> {
    let mut fields = Fields::new();
    fields.insert(def.name.to_string(), value.clone());
    let mut errs = ValidationErrors::default();
    let v = check(def, &fields, &mut errs);
    match v {
        Some(v) if errs.is_empty() => Ok(v),
        _ => Err(errs),
    }
}

/// Checks every field of `scopes` in `fields`, then the presence rules;
/// returns the normalised map (absent optionals as `Null`, absent lists as
/// `[]`), complete when nothing is wrong. Fields of other scopes are refused
/// with `unknown_msg` (when given).
pub(crate) fn check_scopes(
    scopes: &[Scope],
    fields: &Fields,
    unknown_msg: Option<&str>,
    errs: &mut ValidationErrors,
) -> serde_json::Map<String, Value> {
    if let Some(msg) = unknown_msg {
        // Names are distinct across the scopes of one check (a test says
        // so), so when as many of the scopes' fields are present as there
        // are keys, no key is unknown: the search per key (a scan of the
        // whole table) is only needed to name the unknown ones.
        let known = scopes
            .iter()
            .flat_map(|s| fields_of(*s))
            .filter(|d| fields.contains_key(d.name))
            .count();
        if known != fields.len() {
            for name in fields.keys() {
                if !scopes.iter().any(|s| field(*s, name).is_some()) {
                    errs.push(name.as_str(), msg);
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    for scope in scopes {
        for def in fields_of(*scope) {
            if let Some(v) = check(def, fields, errs) {
                out.insert(def.name.to_string(), v);
            }
        }
    }
    for scope in scopes {
        for def in fields_of(*scope) {
            if let Presence::RequiredUnless { field, values } = def.presence {
                let empty = match out.get(def.name) {
                    Some(Value::Array(items)) => items.is_empty(),
                    Some(Value::Null) => true,
                    // Invalid: already reported.
                    _ => false,
                };
                let excused = out
                    .get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| values.contains(&v));
                if empty && !excused {
                    let when = match out.get(field).and_then(Value::as_str) {
                        Some(v) => format!(" when {field} is {v}"),
                        None => String::new(),
                    };
                    errs.push(
                        def.name,
                        format!(
                            "is required{when}: give at least one (only {field} {} may have none)",
                            values.join(", ")
                        ),
                    );
                }
            }
        }
    }
    out
}

/// Checks one field by its shape; `None` when it is wrong (the problem is
/// in `errs`).
fn check(def: &FieldDef, fields: &Fields, errs: &mut ValidationErrors) -> Option<Value> {
    let name = def.name;
    let raw = fields.get(name).filter(|v| !v.is_null());
    let required = def.presence == Presence::Required;
    let Some(raw) = raw else {
        return match def.shape {
            _ if def.shape.is_list() && def.shape != Shape::Sessions => Some(json!([])),
            Shape::Sessions => Some(json!([])),
            Shape::Bool => Some(Value::Bool(false)),
            _ if required => {
                errs.push(name, "is required");
                None
            }
            _ => Some(Value::Null),
        };
    };
    let text =
        |errs: &mut ValidationErrors, max: usize, screened: bool| -> Option<Option<String>> {
            match raw.as_str() {
                Some(s) => {
                    let before = errs.0.len();
                    let out = check_text(errs, name, s, required, max, screened);
                    if errs.0.len() > before {
                        None
                    } else {
                        Some(out)
                    }
                }
                None => {
                    errs.push(name, "must be text");
                    None
                }
            }
        };
    // A text-like field: its checked text, or Null when empty and optional.
    macro_rules! text_or_null {
        ($max:expr, $screened:expr, |$s:ident| $then:expr) => {
            match text(errs, $max, $screened)? {
                None => Some(Value::Null),
                Some($s) => $then,
            }
        };
    }
    match def.shape {
        Shape::Uuid => text_or_null!(
            MAX_SHORT_CHARS,
            false,
            |s| match uuid::Uuid::parse_str(&s) {
                Ok(u) => Some(json!(u.to_string())),
                Err(_) => {
                    errs.push(name, "is not a UUID");
                    None
                }
            }
        ),
        Shape::Slug => text_or_null!(64, false, |s| if is_slug(&s) {
            Some(json!(s))
        } else {
            errs.push(
                name,
                "must be a slug: lowercase letters a-z, digits and '-', e.g. mjolby",
            );
            None
        }),
        Shape::Timestamp => text_or_null!(
            64,
            false,
            |s| match chrono::DateTime::parse_from_rfc3339(&s) {
                Ok(_) => Some(json!(s)),
                Err(_) => {
                    errs.push(
                        name,
                        "must be an RFC 3339 time, e.g. 2025-03-04T10:15:00+01:00",
                    );
                    None
                }
            }
        ),
        Shape::Date => text_or_null!(32, false, |s| match parse_date(&s) {
            // A shape check, never against a clock: any day of this
            // century is a date someone may record.
            Ok(d)
                if !(FIRST_DATE..=LAST_DATE)
                    .contains(&d.format("%Y-%m-%d").to_string().as_str()) =>
            {
                errs.push(name, "must be a day between 2000-01-01 and 2099-12-31");
                None
            }
            Ok(d) => Some(json!(d.format("%Y-%m-%d").to_string())),
            Err(m) => {
                errs.push(name, m);
                None
            }
        }),
        Shape::Time => text_or_null!(32, false, |s| match parse_time(&s) {
            Ok(t) => Some(json!(t.format("%H:%M").to_string())),
            Err(m) => {
                errs.push(name, m);
                None
            }
        }),
        Shape::Int { min, max } => {
            let n = match raw {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if (min..=max).contains(&n) => Some(json!(n)),
                Some(_) => {
                    errs.push(name, format!("must be between {min} and {max}"));
                    None
                }
                None => {
                    errs.push(name, format!("must be a whole number from {min} to {max}"));
                    None
                }
            }
        }
        Shape::Enum(values) => match raw.as_str() {
            Some(s) if s.trim().is_empty() && !required => Some(Value::Null),
            Some(s) => match parse_enum(s, values) {
                Ok(v) => Some(json!(v)),
                Err(m) => {
                    errs.push(name, m);
                    None
                }
            },
            None => {
                errs.push(name, "must be text");
                None
            }
        },
        Shape::Text { max, screened } => text_or_null!(max, screened, |s| Some(json!(s))),
        Shape::Language => text_or_null!(8, false, |s| {
            let s = s.to_lowercase();
            if s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase()) {
                Some(json!(s))
            } else {
                errs.push(
                    name,
                    "must be a two-letter ISO 639-1 code, e.g. sv, ar, so, en",
                );
                None
            }
        }),
        Shape::Bool => match raw {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "yes" | "ja" | "1" => Some(Value::Bool(true)),
                "false" | "no" | "nej" | "0" | "" => Some(Value::Bool(false)),
                _ => {
                    errs.push(name, "must be true or false");
                    None
                }
            },
            _ => {
                errs.push(name, "must be true or false");
                None
            }
        },
        Shape::TextList { max, screened } => {
            let items = list(name, raw, errs)?;
            let mut out: Vec<String> = Vec::new();
            for item in items {
                match item.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() && s.chars().count() <= max => {
                        if screened && let Err(e) = screen_field(name, s) {
                            errs.push(name, refusal(&e));
                            return None;
                        }
                        if !out.iter().any(|o| o == s) {
                            out.push(s.to_string());
                        }
                    }
                    _ => {
                        errs.push(
                            name,
                            format!(
                                "each entry must be a non-empty name of at most {max} characters"
                            ),
                        );
                        return None;
                    }
                }
            }
            Some(json!(out))
        }
        Shape::EnumList(values) => {
            let items = list(name, raw, errs)?;
            let mut out: Vec<&str> = Vec::new();
            for item in items {
                match item.as_str().map(|s| parse_enum(s, values)) {
                    Some(Ok(v)) => {
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                    Some(Err(m)) => {
                        errs.push(name, m);
                        return None;
                    }
                    None => {
                        errs.push(name, "each entry must be text");
                        return None;
                    }
                }
            }
            Some(json!(out))
        }
        Shape::Barriers => {
            let items = list(name, raw, errs)?;
            let mut out = Vec::new();
            for item in items {
                out.push(barrier(name, item, errs)?);
            }
            Some(serde_json::to_value(out).unwrap_or(Value::Null))
        }
        Shape::Sessions => {
            let items = list(name, raw, errs)?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Value::Object(map) = item else {
                    errs.push(name, "each session must be an object");
                    return None;
                };
                let fields: Fields = map.clone().into_iter().collect();
                let mut session_errs = ValidationErrors::default();
                let s = check_scopes(
                    &[Scope::Session],
                    &fields,
                    Some("is not a field of a course session"),
                    &mut session_errs,
                );
                if !session_errs.is_empty() {
                    for fe in session_errs.0 {
                        errs.push(format!("{name}[{i}].{}", fe.field), fe.message);
                    }
                    return None;
                }
                out.push(Value::Object(s));
            }
            Some(Value::Array(out))
        }
    }
}

/// Earliest and latest day a date field accepts (`YYYY-MM-DD` compares
/// as text in date order).
const FIRST_DATE: &str = "2000-01-01";
const LAST_DATE: &str = "2099-12-31";

/// Most entries of a list field (services, assistive, barriers): a visit
/// is about a handful; 3,000 services was an attack that broke XLSX export.
pub const MAX_LIST_ITEMS: usize = 50;
/// Most sessions of one course (two a week for five years).
pub const MAX_SESSIONS: usize = 500;

fn list<'v>(name: &str, raw: &'v Value, errs: &mut ValidationErrors) -> Option<&'v Vec<Value>> {
    let max = if name == "sessions" {
        MAX_SESSIONS
    } else {
        MAX_LIST_ITEMS
    };
    match raw {
        Value::Array(items) if items.len() > max => {
            errs.push(name, format!("has more than {max} entries"));
            None
        }
        Value::Array(items) => Some(items),
        _ => {
            errs.push(name, "must be a list");
            None
        }
    }
}

fn barrier(name: &str, item: &Value, errs: &mut ValidationErrors) -> Option<Barrier> {
    let parsed = match item {
        Value::String(s) => Barrier::parse_cli(s),
        Value::Object(_) => serde_json::from_value::<Barrier>(item.clone())
            .map_err(|_| "each barrier needs service and kind (and an optional note)".into()),
        _ => Err("each barrier must be SERVICE:KIND[:NOTE] or an object".into()),
    };
    match parsed {
        Ok(b) => {
            let service = check_text(errs, name, &b.service, true, MAX_SHORT_CHARS, true);
            let before = errs.0.len();
            let note = match &b.note {
                Some(n) => check_text(errs, "barrier note", n, false, MAX_NOTE_CHARS, true),
                None => None,
            };
            if errs.0.len() > before {
                return None;
            }
            Some(Barrier {
                service: service?,
                kind: b.kind,
                note,
            })
        }
        Err(m) => {
            errs.push(name, m);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::record::{COURSE_FIELDS, Record, VISIT_FIELDS};

    /// `check_scopes` counts present fields to skip its unknown-field
    /// search, which is only right while no name occurs twice in the
    /// scopes checked together.
    #[test]
    fn field_names_are_distinct_in_each_check() {
        use crate::record::Kind;
        let sets: Vec<Vec<Scope>> = vec![
            vec![Scope::Common],
            vec![Scope::Session],
            Scope::of_kind(Kind::Visit).to_vec(),
            Scope::of_kind(Kind::Course).to_vec(),
        ];
        for scopes in sets {
            let mut names: Vec<&str> = scopes
                .iter()
                .flat_map(|s| fields_of(*s))
                .map(|d| d.name)
                .collect();
            let all = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), all, "a name repeats in {scopes:?}");
        }
    }

    /// Every enum value of the table is in normal form, so the exact-match
    /// shortcut of `parse_enum` answers what normalising would; other
    /// spellings still normalise.
    #[test]
    fn enum_values_are_normal_and_parse_alike() {
        for def in FIELDS {
            let Some(values) = def.shape.values() else {
                continue;
            };
            for v in values {
                assert_eq!(normalize_enum(v), *v, "{}: {v}", def.name);
                assert_eq!(parse_enum(v, values), Ok(*v));
            }
        }
        assert_eq!(
            parse_enum(" Drop-In ", crate::record::Channel::NAMES),
            Ok("drop_in")
        );
        assert!(parse_enum("drop_inn", crate::record::Channel::NAMES).is_err());
    }

    /// A visit with every optional field filled in too.
    fn full_visit() -> Fields {
        let mut f = fixtures::visit_fields("mjolby");
        for (k, v) in [
            ("time", json!("09:05")),
            ("referred_to", json!("Kundtjänst")),
            ("assistive", json!(["interpreter"])),
            ("barriers", json!(["BankID:login:glömt koden"])),
            ("sensitive", json!(true)),
            ("note", json!("en anteckning")),
        ] {
            f.insert(k.into(), v);
        }
        f
    }

    fn full_course() -> Fields {
        let mut f = fixtures::course_fields_at(
            "mjolby",
            "d1e5c0de-0000-4000-8000-000000000001",
            uuid::Uuid::new_v4(),
            fixtures::now(),
            "00000000-0000-4000-8000-000000000051",
        );
        f.insert("partner".into(), json!("SeniorNet"));
        f.insert("target_group".into(), json!("seniorer"));
        f.insert("note".into(), json!("en anteckning"));
        f.insert(
            "sessions".into(),
            json!([{"id": "00000000-0000-4000-8000-000000000051", "date": "2025-03-04", "time": "13:00", "minutes": 90,
                    "participants": 6, "instructor": "CD", "note": "bra"}]),
        );
        f
    }

    /// A field in the table but not in the typed record would be dropped
    /// on the way to JSON (and so from sync, export and `show`).
    #[test]
    fn every_field_reaches_the_typed_record() {
        let visit = Record::from_fields(&full_visit()).unwrap().to_fields();
        for d in fields_of(Scope::Common).chain(fields_of(Scope::Visit)) {
            assert!(visit.contains_key(d.name), "visit lacks {}", d.name);
        }
        let course = Record::from_fields(&full_course()).unwrap();
        let fields = course.to_fields();
        for d in fields_of(Scope::Common).chain(fields_of(Scope::Course)) {
            assert!(fields.contains_key(d.name), "course lacks {}", d.name);
        }
        let crate::Body::Course(c) = &course.body else {
            panic!()
        };
        let session = c.sessions[0].to_fields();
        for d in fields_of(Scope::Session) {
            assert!(
                session.get(d.name).is_some_and(|v| !v.is_null()),
                "session lacks {}",
                d.name
            );
        }
        assert_eq!(*VISIT_FIELDS, names(Scope::Visit));
        assert_eq!(*COURSE_FIELDS, names(Scope::Course));
    }

    /// A value no shape accepts (an object) is refused for every field,
    /// under the field's own name: the validator knows every field.
    #[test]
    fn every_field_is_validated() {
        let bad = json!({"not": "a valid value"});
        for (scopes, base) in [
            (Scope::of_kind(Kind::Visit), full_visit()),
            (Scope::of_kind(Kind::Course), full_course()),
        ] {
            for d in scopes.iter().flat_map(|s| fields_of(*s)) {
                let mut f = base.clone();
                f.insert(d.name.into(), bad.clone());
                let errs = Record::from_fields(&f).unwrap_err();
                assert!(
                    errs.0.iter().any(|e| e.field == d.name),
                    "{}: {errs}",
                    d.name
                );
            }
        }
        for d in fields_of(Scope::Session) {
            let mut s = full_course()["sessions"][0].as_object().unwrap().clone();
            s.insert(d.name.into(), bad.clone());
            let errs = crate::record::session_from_fields(&s.into_iter().collect()).unwrap_err();
            assert_eq!(errs.0[0].field, d.name, "{errs}");
        }
    }

    #[test]
    fn every_required_field_is_required_and_optional_ones_are_not() {
        for (scopes, base) in [
            (Scope::of_kind(Kind::Visit), full_visit()),
            (Scope::of_kind(Kind::Course), full_course()),
        ] {
            for d in scopes.iter().flat_map(|s| fields_of(*s)) {
                let mut f = base.clone();
                f.remove(d.name);
                let result = Record::from_fields(&f);
                match d.presence {
                    Presence::Required => {
                        let errs = result.unwrap_err();
                        assert!(
                            errs.0.iter().any(|e| e.field == d.name),
                            "{}: {errs}",
                            d.name
                        );
                    }
                    Presence::Optional => {
                        assert!(result.is_ok(), "{}: {:?}", d.name, result.err())
                    }
                    // The services rule has its own tests.
                    Presence::RequiredUnless { .. } => {}
                }
            }
        }
    }

    /// DESIGN.md section 6: visit columns *start with* these; fields added
    /// later come after them.
    #[test]
    fn export_columns_start_with_the_contract() {
        let visit = column_names(Kind::Visit).join(",");
        assert!(
            visit.starts_with(
                "id,org,site,staff,date,time,minutes,channel,services,agencies,category,outcome,referred_to,age_band,language,assistive,barriers,sensitive,note,device,created_at,updated_at"
            ),
            "{visit}"
        );
        let course = column_names(Kind::Course).join(",");
        assert!(
            course.starts_with(
                "id,org,site,staff,title,partner,target_group,course_note,session_id,session_date,session_time,session_minutes,participants,instructor,session_note,device,created_at,updated_at"
            ),
            "{course}"
        );
    }

    /// Import maps a header by column name or label; two columns of a kind
    /// answering to one header would make that ambiguous.
    #[test]
    fn headers_and_labels_are_unique_per_kind() {
        for kind in Kind::ALL {
            let mut seen = std::collections::BTreeSet::new();
            for c in columns(*kind) {
                let mut names = vec![c.name.to_string()];
                if !c.derived {
                    names.push(c.field.label.sv.to_lowercase());
                    names.push(c.field.label.en.to_lowercase());
                }
                names.dedup();
                for n in names {
                    assert!(
                        seen.insert(n.clone()) || n == c.name,
                        "{kind}: '{n}' names two columns"
                    );
                }
                assert_eq!(column_field(*kind, c.name).unwrap().name, c.name);
                if !c.derived {
                    assert_eq!(column_field(*kind, c.field.label.sv).unwrap().name, c.name);
                    assert_eq!(column_field(*kind, c.field.label.en).unwrap().name, c.name);
                }
            }
        }
    }

    #[test]
    fn every_field_has_labels_and_help_in_both_languages() {
        for d in FIELDS {
            for t in [d.label.sv, d.label.en, d.help.sv, d.help.en] {
                assert!(!t.is_empty(), "{:?} {} lacks a text", d.scope, d.name);
            }
        }
    }

    #[test]
    fn a_service_visit_without_a_service_is_refused_naming_the_field() {
        let mut f = fixtures::visit_fields("mjolby");
        f.insert("services".into(), json!([]));
        let errs = Record::from_fields(&f).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert_eq!(errs.0[0].field, "services");
        assert!(errs.0[0].message.contains("e_service"), "{errs}");
        f.remove("services");
        assert_eq!(Record::from_fields(&f).unwrap_err().0[0].field, "services");
        // Blank names do not count as a service.
        f.insert("services".into(), json!(["  "]));
        assert_eq!(Record::from_fields(&f).unwrap_err().0[0].field, "services");
    }

    #[test]
    fn categories_without_an_e_service_may_name_none() {
        for category in CATEGORIES_WITHOUT_SERVICE {
            let mut f = fixtures::visit_fields("mjolby");
            f.insert("services".into(), json!([]));
            f.insert("category".into(), json!(category));
            let r = Record::from_fields(&f).unwrap();
            let crate::Body::Visit(v) = r.body else {
                panic!()
            };
            assert!(v.services.is_empty());
        }
        // Every excused category is a real category.
        for c in CATEGORIES_WITHOUT_SERVICE {
            assert!(Category::NAMES.contains(c), "{c}");
        }
    }

    #[test]
    fn staff_is_at_most_40_characters() {
        let staff = field(Scope::Common, "staff").unwrap();
        assert!(validate_value(staff, &json!("x".repeat(40))).is_ok());
        let errs = validate_value(staff, &json!("x".repeat(41))).unwrap_err();
        assert_eq!(errs.0[0].field, "staff");
        assert!(errs.to_string().contains("40"), "{errs}");
    }
}
