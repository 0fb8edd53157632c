//! Statistics over visits and courses (DESIGN.md section 6).
//!
//! What is counted, and why:
//! - **visits**: one person helped once.
//! - **courses**: a course reaches people at its meetings, so sessions are
//!   the unit of time: a course that runs across a reporting boundary counts
//!   only the sessions held inside the `from`/`to` range, and grouped by
//!   month each session lands in its own month. Three figures are kept apart
//!   because they answer different questions: **course sessions**;
//!   **participations** (participants summed over sessions: 8 + 7 + 9 = 24);
//!   and **course participants**, *estimated* as each course's largest
//!   session (9), since the same people usually come back and records hold
//!   no identities to count them by. Within a group the estimate is the
//!   largest of that course's sessions in the group.
//! - **people reached** = visits + course participants (estimated). Labelled
//!   so wherever it is shown, because it is an estimate.
//! - **minutes of help** = visit minutes + course-session minutes.
//! - **other agency**: a visit counts if at least one of its e-services
//!   resolves (through the [`Catalogue`]) to a body other than the
//!   organisation itself; `share_other_agency` is that count as a fraction
//!   0..1 of all visits. This is the figure municipalities report, since it
//!   shows how much of their help desk work is done on behalf of state
//!   agencies, banks and regions. Visits touching an own or an unknown
//!   service are counted too; one visit may count in several of the three.
//! - **outcomes**: visits per outcome; every outcome is listed, zeros
//!   included, so reports and spreadsheets always have the same columns.
//! - **referrals**: visits referred elsewhere, per agency (`referred_to`
//!   resolved through the catalogue when it names a service or an agency).
//! - **top barriers**: for each e-service named in a barrier, how often each
//!   kind of barrier was met, most frequent first.
//!
//! Grouping (`--by`) takes one or more [`Grouping`]s. A group is one
//! combination of values. A visit with two services (or two assistive needs)
//! is counted in each of its groups and once in the totals, so groups may
//! add up to more than the total; the output says so.
//!
//! Service names are resolved to their canonical catalogue name and sites to
//! the org's [`SiteList`] before they are counted, so `Bank-ID` and `BankID`
//! are one service and `Mjolby Bibliotek` is `Mjölby bibliotek`. Nothing
//! resolved is stored: a corrected catalogue or site list also corrects old
//! statistics.
//!
//! [`StatsBuilder`] is a streaming accumulator: records are added one at a
//! time and only the running counts are kept, so 100,000 records never need
//! to be in memory at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::ser::{SerializeMap, Serializer};

use crate::catalogue::{AgencyScope, Catalogue};
use crate::record::{BarrierKind, Body, Course, Outcome, Record, Session, Visit};
use crate::sites::{SiteList, fold};

/// Group of course sessions for a dimension courses do not have (service,
/// agency, channel, category, outcome, age band, language, assistive needs):
/// their sessions must still appear somewhere so every figure has a group.
pub const COURSE_GROUP: &str = "(course)";
/// Group of visits for a dimension only courses have (partner).
pub const VISIT_GROUP: &str = "(visit)";
/// Group of visits that name no e-service, by service or agency.
pub const NO_SERVICE_GROUP: &str = "(no service)";
/// Group of visits with no assistive need.
pub const NONE_GROUP: &str = "(none)";
/// Group of courses without a partner.
pub const NO_PARTNER_GROUP: &str = "(no partner)";
/// Referral key of a referred visit that does not say where to.
pub const REFERRAL_NOT_GIVEN: &str = "(not given)";

/// Keys that stand for "not applicable" rather than a value; they are listed
/// after the real values.
const PLACEHOLDERS: &[&str] = &[
    COURSE_GROUP,
    VISIT_GROUP,
    NO_SERVICE_GROUP,
    NONE_GROUP,
    NO_PARTNER_GROUP,
];

/// One dimension `--by` can split the statistics by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The record's site, matched to the org's site list.
    Site,
    /// `YYYY` of the visit day or the session day.
    Year,
    /// `YYYY-Qn`.
    Quarter,
    /// `YYYY-MM`.
    Month,
    /// ISO week, `YYYY-Www` (the ISO year, so 2024-12-30 is `2025-W01`).
    Week,
    /// Each e-service of a visit (a visit with two services is in both).
    Service,
    /// The agency of each e-service, once per visit.
    Agency,
    Channel,
    Category,
    Outcome,
    AgeBand,
    /// The language the help was given in.
    Language,
    /// Each assistive need of a visit.
    Assistive,
    /// A course's partner (study association).
    Partner,
    /// Who recorded it.
    Staff,
}

impl Grouping {
    pub const ALL: &'static [Grouping] = &[
        Grouping::Site,
        Grouping::Year,
        Grouping::Quarter,
        Grouping::Month,
        Grouping::Week,
        Grouping::Service,
        Grouping::Agency,
        Grouping::Channel,
        Grouping::Category,
        Grouping::Outcome,
        Grouping::AgeBand,
        Grouping::Language,
        Grouping::Assistive,
        Grouping::Partner,
        Grouping::Staff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Site => "site",
            Grouping::Year => "year",
            Grouping::Quarter => "quarter",
            Grouping::Month => "month",
            Grouping::Week => "week",
            Grouping::Service => "service",
            Grouping::Agency => "agency",
            Grouping::Channel => "channel",
            Grouping::Category => "category",
            Grouping::Outcome => "outcome",
            Grouping::AgeBand => "age_band",
            Grouping::Language => "language",
            Grouping::Assistive => "assistive",
            Grouping::Partner => "partner",
            Grouping::Staff => "staff",
        }
    }

    /// Periods list in date order; every other dimension busiest first.
    pub fn is_period(self) -> bool {
        matches!(
            self,
            Grouping::Year | Grouping::Quarter | Grouping::Month | Grouping::Week
        )
    }

    /// Dimensions in which one visit can have several values.
    pub fn is_multi_valued(self) -> bool {
        matches!(
            self,
            Grouping::Service | Grouping::Agency | Grouping::Assistive
        )
    }

    /// `site,month` → `[Site, Month]`: comma-separated, case-insensitive,
    /// `-` or space for `_`; a dimension named twice is refused.
    pub fn parse_list(s: &str) -> Result<Vec<Grouping>, String> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let g: Grouping = part.parse()?;
            if out.contains(&g) {
                return Err(format!("'{}' is named twice", g.as_str()));
            }
            out.push(g);
        }
        Ok(out)
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Grouping {
    type Err = String;

    /// Case-insensitive, surrounding whitespace ignored, `-` or space for `_`.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = crate::schema::normalize_enum(s);
        Grouping::ALL
            .iter()
            .copied()
            .find(|g| g.as_str() == norm)
            .ok_or_else(|| {
                let values: Vec<&str> = Grouping::ALL.iter().map(|g| g.as_str()).collect();
                format!(
                    "cannot group by '{}'; use one or more of: {} (comma-separated)",
                    s.trim(),
                    values.join(", ")
                )
            })
    }
}

/// How often one kind of barrier was met in one e-service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindCount {
    pub kind: String,
    pub count: u64,
}

/// The barriers met in one e-service, most frequent kind first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceBarriers {
    /// Canonical catalogue name (as typed, for a service not in the catalogue).
    pub service: String,
    /// All barriers in this service.
    pub total: u64,
    /// Per kind, sorted by count descending, then kind name.
    pub kinds: Vec<KindCount>,
}

/// Referred visits to one agency.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Referral {
    /// The agency (as typed when the catalogue does not know it).
    pub agency: String,
    pub visits: u64,
}

/// The figures of DESIGN.md section 6, for everything or for one group.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub visits: u64,
    /// Visits plus course participants (estimated).
    pub people_reached: u64,
    /// Courses with at least one session in the period (and group).
    pub courses: u64,
    pub course_sessions: u64,
    /// Participants summed over sessions.
    pub participations: u64,
    /// Estimated as each course's largest session.
    pub course_participants: u64,
    /// Visit minutes plus course-session minutes.
    pub minutes: u64,
    /// Visits with at least one e-service of another agency.
    pub visits_other_agency: u64,
    /// `visits_other_agency / visits`, 0..1; 0 when there are no visits.
    pub share_other_agency: f64,
    /// Visits with at least one of the organisation's own e-services.
    pub visits_own_agency: u64,
    /// Visits with at least one e-service the catalogue does not know.
    pub visits_unknown_agency: u64,
    /// Visits that touched banking or purchases.
    pub sensitive_visits: u64,
    /// Visits per outcome; every outcome is present, zeros included.
    pub outcomes: BTreeMap<String, u64>,
    /// Referred visits per agency, most first.
    pub referrals: Vec<Referral>,
    /// Per e-service, sorted by total descending, then service name.
    pub top_barriers: Vec<ServiceBarriers>,
}

/// The values of one group, dimension by dimension, in `--by` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys(pub Vec<(Grouping, String)>);

impl Keys {
    /// The value of one dimension.
    pub fn get(&self, dim: Grouping) -> Option<&str> {
        self.0
            .iter()
            .find(|(g, _)| *g == dim)
            .map(|(_, v)| v.as_str())
    }
}

impl serde::Serialize for Keys {
    /// An object, dimension → value, in `--by` order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (g, v) in &self.0 {
            map.serialize_entry(g.as_str(), v)?;
        }
        map.end()
    }
}

/// One `--by` group.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    pub keys: Keys,
    /// The value, when grouping by one dimension (as before several were
    /// possible, so scripts that read `key` keep working).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub totals: Totals,
}

/// The finished statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub by: Vec<Grouping>,
    pub total: Totals,
    /// Empty unless `by` is set. Periods are in date order, other values
    /// busiest first, with placeholders such as `(course)` last.
    pub groups: Vec<Group>,
    /// How to read the groups, when it matters (several values per visit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Running counts for one set of figures.
#[derive(Debug, Default)]
struct Acc {
    visits: u64,
    courses: u64,
    course_sessions: u64,
    participations: u64,
    course_participants: u64,
    minutes: u64,
    other: u64,
    own: u64,
    unknown: u64,
    sensitive: u64,
    /// Indexed like `Outcome::ALL`.
    outcomes: [u64; Outcome::ALL.len()],
    referrals: HashMap<String, u64>,
    /// Canonical service → counts indexed like `BarrierKind::ALL`.
    barriers: HashMap<String, [u64; BarrierKind::ALL.len()]>,
}

/// What one visit contributes, worked out once and added to the total and to
/// each of its groups.
struct VisitFacts<'v> {
    visit: &'v Visit,
    other: bool,
    own: bool,
    unknown: bool,
    /// Canonical services and their agencies, each once.
    services: Vec<String>,
    agencies: Vec<String>,
    /// Where the visit was referred, if it was.
    referral: Option<String>,
    /// Canonical service of each barrier, with its kind.
    barriers: Vec<(String, BarrierKind)>,
}

/// What one course's sessions inside the period (and one group) add up to.
#[derive(Debug, Default, Clone, Copy)]
struct CourseFacts {
    sessions: u64,
    participations: u64,
    minutes: u64,
    largest: u64,
}

impl CourseFacts {
    fn add(&mut self, s: &Session) {
        self.sessions += 1;
        self.participations += u64::from(s.participants);
        self.minutes += u64::from(s.minutes);
        self.largest = self.largest.max(u64::from(s.participants));
    }
}

impl Acc {
    fn add_visit(&mut self, f: &VisitFacts<'_>) {
        self.visits += 1;
        self.minutes += u64::from(f.visit.minutes);
        self.other += u64::from(f.other);
        self.own += u64::from(f.own);
        self.unknown += u64::from(f.unknown);
        self.sensitive += u64::from(f.visit.sensitive);
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == f.visit.outcome) {
            self.outcomes[i] += 1;
        }
        if let Some(agency) = &f.referral {
            *bump(&mut self.referrals, agency) += 1;
        }
        for (service, kind) in &f.barriers {
            let counts = match self.barriers.get_mut(service) {
                Some(c) => c,
                None => self.barriers.entry(service.clone()).or_default(),
            };
            if let Some(i) = BarrierKind::ALL.iter().position(|k| k == kind) {
                counts[i] += 1;
            }
        }
    }

    fn add_course(&mut self, c: &CourseFacts) {
        self.courses += 1;
        self.course_sessions += c.sessions;
        self.participations += c.participations;
        self.course_participants += c.largest;
        self.minutes += c.minutes;
    }

    fn finish(self) -> Totals {
        let outcomes = Outcome::ALL
            .iter()
            .zip(self.outcomes)
            .map(|(o, n)| (o.as_str().to_string(), n))
            .collect();
        let mut top_barriers: Vec<ServiceBarriers> = self
            .barriers
            .into_iter()
            .map(|(service, counts)| {
                let mut kinds: Vec<KindCount> = BarrierKind::ALL
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(k, count)| KindCount {
                        kind: k.as_str().to_string(),
                        count,
                    })
                    .collect();
                kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
                ServiceBarriers {
                    service,
                    total: counts.iter().sum(),
                    kinds,
                }
            })
            .collect();
        top_barriers.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.service.cmp(&b.service))
        });
        let mut referrals: Vec<Referral> = self
            .referrals
            .into_iter()
            .map(|(agency, visits)| Referral { agency, visits })
            .collect();
        referrals.sort_by(|a, b| {
            b.visits
                .cmp(&a.visits)
                .then_with(|| a.agency.cmp(&b.agency))
        });
        Totals {
            visits: self.visits,
            people_reached: self.visits + self.course_participants,
            courses: self.courses,
            course_sessions: self.course_sessions,
            participations: self.participations,
            course_participants: self.course_participants,
            minutes: self.minutes,
            visits_other_agency: self.other,
            share_other_agency: if self.visits == 0 {
                0.0
            } else {
                self.other as f64 / self.visits as f64
            },
            visits_own_agency: self.own,
            visits_unknown_agency: self.unknown,
            sensitive_visits: self.sensitive,
            outcomes,
            referrals,
            top_barriers,
        }
    }
}

/// The counter for `key`, allocating the key only the first time.
fn bump<'m>(map: &'m mut HashMap<String, u64>, key: &str) -> &'m mut u64 {
    if !map.contains_key(key) {
        map.insert(key.to_string(), 0);
    }
    map.get_mut(key).expect("inserted above")
}

/// Streaming accumulator: [`StatsBuilder::add`] each record, then
/// [`StatsBuilder::finish`]. Only counts are kept, never records.
pub struct StatsBuilder<'c> {
    catalogue: &'c Catalogue,
    sites: SiteList,
    /// Folded agency name → agency, to read a `referred_to` that names an
    /// agency rather than a service.
    agencies: HashMap<String, String>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    by: Vec<Grouping>,
    total: Acc,
    groups: HashMap<Vec<String>, Acc>,
}

impl<'c> StatsBuilder<'c> {
    /// Counts visits and course sessions dated within `from..=to` (either end
    /// open when `None`), grouped by the dimensions in `by` (none: totals
    /// only).
    pub fn new(
        catalogue: &'c Catalogue,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        by: Vec<Grouping>,
    ) -> Self {
        let agencies = catalogue
            .entries()
            .into_iter()
            .filter(|e| e.scope != AgencyScope::Unknown)
            .map(|e| (fold(&e.agency), e.agency.clone()))
            .collect();
        StatsBuilder {
            catalogue,
            sites: SiteList::default(),
            agencies,
            from,
            to,
            by,
            total: Acc::default(),
            groups: HashMap::new(),
        }
    }

    /// Counts sites under their spelling on this list (see [`SiteList`]).
    pub fn with_sites(mut self, sites: SiteList) -> Self {
        self.sites = sites;
        self
    }

    fn in_range(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }

    /// Adds one record. Records outside the date range (and course sessions
    /// outside it) are ignored, so the caller may pass a coarser selection.
    pub fn add(&mut self, record: &Record) {
        match &record.body {
            Body::Visit(v) => self.add_visit(record, v),
            Body::Course(c) => self.add_course(record, c),
        }
    }

    fn add_visit(&mut self, record: &Record, visit: &Visit) {
        if !self.in_range(visit.date) {
            return;
        }
        // Resolve each service once; a visit naming a service twice (or by
        // two aliases) counts once per group.
        let mut services: Vec<String> = Vec::with_capacity(visit.services.len());
        let mut agencies: Vec<String> = Vec::new();
        let (mut other, mut own, mut unknown) = (false, false, false);
        for s in &visit.services {
            let info = self.catalogue.resolve(s);
            match info.scope {
                AgencyScope::Other => other = true,
                AgencyScope::Own => own = true,
                AgencyScope::Unknown => unknown = true,
            }
            if !agencies.contains(&info.agency) {
                agencies.push(info.agency);
            }
            if !services.contains(&info.name) {
                services.push(info.name);
            }
        }
        let barriers = visit
            .barriers
            .iter()
            .map(|b| (self.catalogue.resolve(&b.service).name, b.kind))
            .collect();
        let referral = self.referral(visit);
        let facts = VisitFacts {
            visit,
            other,
            own,
            unknown,
            services,
            agencies,
            referral,
            barriers,
        };
        self.total.add_visit(&facts);
        if self.by.is_empty() {
            return;
        }
        let values: Vec<Vec<String>> = self
            .by
            .iter()
            .map(|&dim| self.visit_values(dim, record, &facts))
            .collect();
        for key in combinations(&values) {
            self.group(key).add_visit(&facts);
        }
    }

    /// Where a visit was referred: the agency of a service or agency the
    /// catalogue knows, else the text as typed. `None` if not referred.
    fn referral(&self, visit: &Visit) -> Option<String> {
        let to = visit
            .referred_to
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match to {
            None if visit.outcome == Outcome::Referred => Some(REFERRAL_NOT_GIVEN.to_string()),
            None => None,
            Some(text) => Some(match self.catalogue.lookup(text) {
                Some(info) => info.agency.clone(),
                None => self
                    .agencies
                    .get(&fold(text))
                    .cloned()
                    .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" ")),
            }),
        }
    }

    fn visit_values(&self, dim: Grouping, record: &Record, f: &VisitFacts<'_>) -> Vec<String> {
        let v = f.visit;
        let one = |s: &str| vec![s.to_string()];
        let or = |list: &[String], empty: &str| {
            if list.is_empty() {
                one(empty)
            } else {
                list.to_vec()
            }
        };
        match dim {
            Grouping::Service => or(&f.services, NO_SERVICE_GROUP),
            Grouping::Agency => or(&f.agencies, NO_SERVICE_GROUP),
            Grouping::Channel => one(v.channel.as_str()),
            Grouping::Category => one(v.category.as_str()),
            Grouping::Outcome => one(v.outcome.as_str()),
            Grouping::AgeBand => one(v.age_band.as_str()),
            Grouping::Language => one(&v.language),
            Grouping::Assistive => {
                let mut needs: Vec<String> = Vec::new();
                for a in &v.assistive {
                    if !needs.iter().any(|n| n == a.as_str()) {
                        needs.push(a.as_str().to_string());
                    }
                }
                or(&needs, NONE_GROUP)
            }
            Grouping::Partner => one(VISIT_GROUP),
            _ => self.common_value(dim, record, v.date),
        }
    }

    /// Values every record has: site, staff and the periods of `date`.
    fn common_value(&self, dim: Grouping, record: &Record, date: NaiveDate) -> Vec<String> {
        vec![match dim {
            Grouping::Site => self.sites.canonical(&record.site),
            Grouping::Staff => record.staff.trim().to_string(),
            Grouping::Year => date.year().to_string(),
            Grouping::Quarter => format!("{}-Q{}", date.year(), date.month0() / 3 + 1),
            Grouping::Month => date.format("%Y-%m").to_string(),
            Grouping::Week => {
                let w = date.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            _ => COURSE_GROUP.to_string(),
        }]
    }

    fn add_course(&mut self, record: &Record, course: &Course) {
        let mut total = CourseFacts::default();
        // Per group, this course's sessions in it: the estimate of people
        // is the largest session *of this course* in the group.
        let mut per_group: Vec<(Vec<String>, CourseFacts)> = Vec::new();
        for s in &course.sessions {
            if !self.in_range(s.date) {
                continue;
            }
            total.add(s);
            if self.by.is_empty() {
                continue;
            }
            let values: Vec<Vec<String>> = self
                .by
                .iter()
                .map(|&dim| match dim {
                    Grouping::Partner => vec![
                        course
                            .partner
                            .as_deref()
                            .map(str::trim)
                            .filter(|p| !p.is_empty())
                            .unwrap_or(NO_PARTNER_GROUP)
                            .to_string(),
                    ],
                    _ => self.common_value(dim, record, s.date),
                })
                .collect();
            for key in combinations(&values) {
                match per_group.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, facts)) => facts.add(s),
                    None => {
                        let mut facts = CourseFacts::default();
                        facts.add(s);
                        per_group.push((key, facts));
                    }
                }
            }
        }
        if total.sessions == 0 {
            return;
        }
        self.total.add_course(&total);
        for (key, facts) in per_group {
            self.group(key).add_course(&facts);
        }
    }

    fn group(&mut self, key: Vec<String>) -> &mut Acc {
        self.groups.entry(key).or_default()
    }

    /// The statistics, with groups in report order (see [`Stats::groups`]).
    pub fn finish(self) -> Stats {
        let by = self.by;
        let mut groups: Vec<(Vec<String>, Totals)> = self
            .groups
            .into_iter()
            .map(|(key, acc)| (key, acc.finish()))
            .collect();
        // Rank each value of each non-period dimension by the people reached
        // in all its groups, so `--by site,month` lists the busiest site
        // first and its months in order.
        let mut weight: HashMap<(usize, String), (u64, u64)> = HashMap::new();
        for (key, t) in &groups {
            for (i, value) in key.iter().enumerate() {
                let w = weight.entry((i, value.clone())).or_default();
                w.0 += t.visits;
                w.1 += t.people_reached;
            }
        }
        groups.sort_by(|(a, _), (b, _)| {
            for (i, dim) in by.iter().enumerate() {
                let (x, y) = (&a[i], &b[i]);
                let placeholder = |v: &String| PLACEHOLDERS.contains(&v.as_str());
                let mut o = placeholder(x).cmp(&placeholder(y));
                if !dim.is_period() {
                    let wx = weight.get(&(i, x.clone())).copied().unwrap_or_default();
                    let wy = weight.get(&(i, y.clone())).copied().unwrap_or_default();
                    o = o.then_with(|| wy.cmp(&wx));
                }
                o = o.then_with(|| x.cmp(y));
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        let groups = groups
            .into_iter()
            .map(|(key, totals)| Group {
                key: (by.len() == 1).then(|| key[0].clone()),
                keys: Keys(by.iter().copied().zip(key).collect()),
                totals,
            })
            .collect();
        let multi: Vec<&str> = by
            .iter()
            .filter(|g| g.is_multi_valued())
            .map(|g| g.as_str())
            .collect();
        let note = (!multi.is_empty()).then(|| {
            format!(
                "a visit with several values of {} is counted in each of their groups and once in the total, so the groups add up to more than the total",
                multi.join(" or ")
            )
        });
        Stats {
            from: self.from,
            to: self.to,
            by,
            total: self.total.finish(),
            groups,
            note,
        }
    }
}

/// Every combination of one value per dimension, in dimension order.
fn combinations(values: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::with_capacity(values.len())];
    for dim in values {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                dim.iter().map(move |v| {
                    let mut k = prefix.clone();
                    k.push(v.clone());
                    k
                })
            })
            .collect();
    }
    out
}

/// `58.3%`, or `-` when there is nothing to divide by.
fn percent(share: f64, visits: u64) -> String {
    if visits == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// `1 course`, `2 courses`.
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How many services the text report lists under top barriers; `--json` has
/// them all.
const TEXT_BARRIER_SERVICES: usize = 10;

impl Stats {
    /// A plain-text report for the terminal: the totals, then a table with
    /// one row per group.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let period = match (self.from, self.to) {
            (None, None) => "all dates".to_string(),
            (Some(f), None) => format!("from {f}"),
            (None, Some(t)) => format!("until {t}"),
            (Some(f), Some(t)) => format!("{f} to {t}"),
        };
        let _ = writeln!(out, "Statistics, {period}");
        let _ = writeln!(out);
        totals_text(&mut out, &self.total);
        if !self.by.is_empty() {
            let names: Vec<&str> = self.by.iter().map(|g| g.as_str()).collect();
            let _ = writeln!(out);
            let _ = writeln!(out, "By {}:", names.join(", "));
            if self.groups.is_empty() {
                let _ = writeln!(out, "  (nothing in this period)");
            } else {
                groups_table(&mut out, &self.by, &self.groups);
            }
            if let Some(note) = &self.note {
                let _ = writeln!(out, "Note: {note}.");
            }
        }
        out
    }
}

fn totals_text(out: &mut String, t: &Totals) {
    let rows: [(&str, String); 10] = [
        ("Visits", t.visits.to_string()),
        (
            "People reached",
            format!(
                "{} ({} + {} course participants, estimated)",
                t.people_reached,
                plural(t.visits, "visit", "visits"),
                t.course_participants
            ),
        ),
        (
            "Courses",
            format!(
                "{}, {}, {} (participants summed over sessions); \
                 course participants estimated as each course's largest session: {}",
                plural(t.courses, "course", "courses"),
                plural(t.course_sessions, "session", "sessions"),
                plural(t.participations, "participation", "participations"),
                t.course_participants
            ),
        ),
        (
            "Minutes of help",
            format!("{} ({:.1} hours)", t.minutes, t.minutes as f64 / 60.0),
        ),
        (
            "Other agency",
            format!(
                "{} of {} ({})",
                t.visits_other_agency,
                plural(t.visits, "visit", "visits"),
                percent(t.share_other_agency, t.visits)
            ),
        ),
        (
            "Own agency",
            format!(
                "{} of {}",
                t.visits_own_agency,
                plural(t.visits, "visit", "visits")
            ),
        ),
        (
            "Unknown service",
            format!(
                "{} of {}",
                t.visits_unknown_agency,
                plural(t.visits, "visit", "visits")
            ),
        ),
        (
            "Banking/purchases",
            format!(
                "{} of {}",
                t.sensitive_visits,
                plural(t.visits, "visit", "visits")
            ),
        ),
        (
            "Outcomes",
            // In the contract's order (solved first), not alphabetical.
            Outcome::ALL
                .iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o.as_str(),
                        t.outcomes.get(o.as_str()).unwrap_or(&0)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Referrals",
            if t.referrals.is_empty() {
                "none".to_string()
            } else {
                t.referrals
                    .iter()
                    .map(|r| format!("{} {}", r.agency, r.visits))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "{:<19}{value}", format!("{label}:"));
    }
    if !t.top_barriers.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Top barriers per e-service:");
        let width = t
            .top_barriers
            .iter()
            .take(TEXT_BARRIER_SERVICES)
            .map(|b| b.service.chars().count())
            .max()
            .unwrap_or(0);
        for b in t.top_barriers.iter().take(TEXT_BARRIER_SERVICES) {
            let kinds: Vec<String> = b
                .kinds
                .iter()
                .map(|k| format!("{} {}", k.kind, k.count))
                .collect();
            let pad = width - b.service.chars().count();
            let _ = writeln!(
                out,
                "  {}{}  {:>5}  {}",
                b.service,
                " ".repeat(pad),
                b.total,
                kinds.join(", ")
            );
        }
        let more = t.top_barriers.len().saturating_sub(TEXT_BARRIER_SERVICES);
        if more > 0 {
            let _ = writeln!(out, "  … and {more} more services (--json lists all)");
        }
    }
}

fn groups_table(out: &mut String, by: &[Grouping], groups: &[Group]) {
    let mut header: Vec<&str> = by.iter().map(|g| g.as_str()).collect();
    header.extend([
        "visits",
        "people",
        "sessions",
        "minutes",
        "other agency",
        "solved",
    ]);
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let t = &g.totals;
            let mut row: Vec<String> = g.keys.0.iter().map(|(_, v)| v.clone()).collect();
            row.extend([
                t.visits.to_string(),
                t.people_reached.to_string(),
                t.course_sessions.to_string(),
                t.minutes.to_string(),
                percent(t.share_other_agency, t.visits),
                t.outcomes
                    .get(Outcome::Solved.as_str())
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ]);
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let keys = by.len();
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            // Key columns read left to right; numbers line up on the right.
            if i < keys {
                let _ = write!(text, " {cell}{pad}");
            } else {
                let _ = write!(text, "  {pad}{cell}");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        AgeBand, Assistive, Barrier, BarrierKind, Category, Channel, Course, Outcome, Session,
        Visit,
    };
    use chrono::DateTime;
    use uuid::Uuid;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn record(site: &str, body: Body) -> Record {
        let now = DateTime::parse_from_rfc3339("2025-03-04T10:15:00+01:00").unwrap();
        Record {
            id: Uuid::new_v4(),
            org: "mjolby".into(),
            site: site.into(),
            staff: "AB".into(),
            device: "d1e5c0de-0000-4000-8000-000000000001".into(),
            created_at: now,
            updated_at: now,
            body,
        }
    }

    fn visit(site: &str, date: &str, minutes: u16, services: &[&str], outcome: Outcome) -> Record {
        record(
            site,
            Body::Visit(Visit {
                date: d(date),
                time: None,
                minutes,
                channel: Channel::DropIn,
                services: services.iter().map(|s| s.to_string()).collect(),
                category: Category::EService,
                outcome,
                referred_to: None,
                age_band: AgeBand::From65To79,
                language: "sv".into(),
                assistive: vec![],
                barriers: vec![],
                sensitive: false,
                note: None,
            }),
        )
    }

    fn with_barriers(mut r: Record, barriers: &[(&str, BarrierKind)]) -> Record {
        if let Body::Visit(v) = &mut r.body {
            v.barriers = barriers
                .iter()
                .map(|(s, k)| Barrier {
                    service: s.to_string(),
                    kind: *k,
                    note: None,
                })
                .collect();
        }
        r
    }

    fn sensitive(mut r: Record) -> Record {
        if let Body::Visit(v) = &mut r.body {
            v.sensitive = true;
        }
        r
    }

    fn session(id: &str, date: &str, minutes: u16, participants: u16) -> Session {
        Session {
            id: id.into(),
            date: d(date),
            time: None,
            minutes,
            participants,
            instructor: None,
            note: None,
        }
    }

    fn course(site: &str, sessions: Vec<Session>) -> Record {
        record(
            site,
            Body::Course(Course {
                title: "Nybörjarkurs internet".into(),
                partner: None,
                target_group: None,
                sessions,
                note: None,
            }),
        )
    }

    /// Three visits (BankID = other, Skola = own, an unknown service) and a
    /// course of three sessions, one of them in April.
    fn sample() -> Vec<Record> {
        vec![
            sensitive(with_barriers(
                visit(
                    "Bibliotek",
                    "2025-03-03",
                    30,
                    &["BankID", "Skola"],
                    Outcome::Solved,
                ),
                &[
                    ("BankID", BarrierKind::Login),
                    ("Bank-ID", BarrierKind::Bankid),
                    ("bankid", BarrierKind::Login),
                    ("Skola", BarrierKind::Form),
                ],
            )),
            with_barriers(
                visit("Bibliotek", "2025-03-20", 15, &["Skola"], Outcome::Partly),
                &[("Skola", BarrierKind::Navigation)],
            ),
            visit(
                "Träffpunkt",
                "2025-04-02",
                45,
                &["Okänd tjänst"],
                Outcome::NotSolved,
            ),
            course(
                "Träffpunkt",
                vec![
                    session("a", "2025-03-10", 90, 8),
                    session("b", "2025-03-17", 90, 6),
                    session("c", "2025-04-07", 60, 5),
                ],
            ),
        ]
    }

    fn run(records: &[Record], from: Option<&str>, to: Option<&str>, by: &[Grouping]) -> Stats {
        let catalogue = Catalogue::builtin();
        let mut b = StatsBuilder::new(&catalogue, from.map(d), to.map(d), by.to_vec());
        for r in records {
            b.add(r);
        }
        b.finish()
    }

    fn group<'s>(stats: &'s Stats, key: &str) -> &'s Totals {
        &stats
            .groups
            .iter()
            .find(|g| g.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no group {key} in {:?}", stats.groups))
            .totals
    }

    #[test]
    fn totals_count_every_figure() {
        let s = run(&sample(), None, None, &[]);
        let t = &s.total;
        assert_eq!(t.visits, 3);
        assert_eq!(t.course_sessions, 3);
        assert_eq!(t.courses, 1);
        assert_eq!(t.participations, 8 + 6 + 5);
        // Estimated as the course's largest session.
        assert_eq!(t.course_participants, 8);
        assert_eq!(t.people_reached, 3 + 8);
        assert_eq!(t.minutes, 30 + 15 + 45 + 90 + 90 + 60);
        assert_eq!(t.visits_other_agency, 1);
        assert!((t.share_other_agency - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.visits_own_agency, 2);
        assert_eq!(t.visits_unknown_agency, 1);
        assert_eq!(t.sensitive_visits, 1);
        let outcomes: Vec<(&str, u64)> = t.outcomes.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            outcomes,
            [
                ("not_solved", 1),
                ("partly", 1),
                ("referred", 0),
                ("solved", 1)
            ]
        );
        assert!(s.groups.is_empty());
    }

    #[test]
    fn share_other_agency_counts_a_visit_once_and_is_zero_without_visits() {
        let records = vec![
            visit(
                "A",
                "2025-03-01",
                10,
                &["BankID", "Försäkringskassan"],
                Outcome::Solved,
            ),
            visit("A", "2025-03-01", 10, &["Skola"], Outcome::Solved),
            visit("A", "2025-03-01", 10, &["Skola", "Okänd"], Outcome::Solved),
            visit("A", "2025-03-01", 10, &[], Outcome::Solved),
        ];
        let t = run(&records, None, None, &[]).total;
        assert_eq!(t.visits_other_agency, 1);
        assert_eq!(t.share_other_agency, 0.25);
        assert_eq!(t.visits_own_agency, 2);
        assert_eq!(t.visits_unknown_agency, 1);

        let only_course = run(
            &[course("A", vec![session("a", "2025-03-01", 60, 4)])],
            None,
            None,
            &[],
        );
        assert_eq!(only_course.total.share_other_agency, 0.0);
        assert_eq!(only_course.total.people_reached, 4);
    }

    #[test]
    fn barriers_are_ranked_per_canonical_service() {
        let t = run(&sample(), None, None, &[]).total;
        // (service, total, [(kind, count)])
        type Ranked<'a> = (&'a str, u64, Vec<(&'a str, u64)>);
        let got: Vec<Ranked> = t
            .top_barriers
            .iter()
            .map(|b| {
                (
                    b.service.as_str(),
                    b.total,
                    b.kinds.iter().map(|k| (k.kind.as_str(), k.count)).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // Bank-ID and bankid are aliases of BankID.
                ("BankID", 3, vec![("login", 2), ("bankid", 1)]),
                // Ties on count are broken by kind name.
                ("Skola", 2, vec![("form", 1), ("navigation", 1)]),
            ]
        );
    }

    #[test]
    fn barrier_services_tie_on_total_sort_by_name() {
        let records = vec![with_barriers(
            visit("A", "2025-03-01", 10, &["Skola"], Outcome::Solved),
            &[("Swish", BarrierKind::Device), ("CSN", BarrierKind::Form)],
        )];
        let t = run(&records, None, None, &[]).total;
        let names: Vec<&str> = t.top_barriers.iter().map(|b| b.service.as_str()).collect();
        assert_eq!(names, ["CSN", "Swish"]);
    }

    #[test]
    fn sessions_outside_the_range_are_not_counted() {
        let s = run(&sample(), Some("2025-03-15"), Some("2025-04-05"), &[]);
        let t = &s.total;
        // Visits on 03-20 and 04-02; session b (03-17) only.
        assert_eq!(t.visits, 2);
        assert_eq!(t.course_sessions, 1);
        assert_eq!(t.course_participants, 6);
        assert_eq!(t.people_reached, 8);
        assert_eq!(t.minutes, 15 + 45 + 90);
        assert_eq!(s.from, Some(d("2025-03-15")));

        let open_start = run(&sample(), None, Some("2025-03-10"), &[]).total;
        assert_eq!((open_start.visits, open_start.course_sessions), (1, 1));
        let open_end = run(&sample(), Some("2025-04-07"), None, &[]).total;
        assert_eq!((open_end.visits, open_end.course_sessions), (0, 1));
    }

    #[test]
    fn grouping_by_site() {
        let s = run(&sample(), None, None, &[Grouping::Site]);
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_deref().unwrap()).collect();
        assert_eq!(keys, ["Bibliotek", "Träffpunkt"]);
        let bib = group(&s, "Bibliotek");
        assert_eq!((bib.visits, bib.course_sessions, bib.minutes), (2, 0, 45));
        let tp = group(&s, "Träffpunkt");
        assert_eq!(
            (tp.visits, tp.course_sessions, tp.people_reached),
            (1, 3, 1 + 8)
        );
    }

    #[test]
    fn grouping_by_month_puts_each_session_in_its_month() {
        let s = run(&sample(), None, None, &[Grouping::Month]);
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_deref().unwrap()).collect();
        assert_eq!(keys, ["2025-03", "2025-04"]);
        let march = group(&s, "2025-03");
        assert_eq!(
            (
                march.visits,
                march.course_sessions,
                march.course_participants
            ),
            (2, 2, 8)
        );
        assert_eq!(march.minutes, 30 + 15 + 90 + 90);
        let april = group(&s, "2025-04");
        assert_eq!(
            (april.visits, april.course_sessions, april.people_reached),
            (1, 1, 6)
        );
    }

    #[test]
    fn grouping_by_service_counts_a_visit_in_each_of_its_services() {
        let mut records = sample();
        // Two spellings of one service count once.
        records.push(visit(
            "A",
            "2025-03-05",
            5,
            &["BankID", "bank-id"],
            Outcome::Referred,
        ));
        let s = run(&records, None, None, &[Grouping::Service]);
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_deref().unwrap()).collect();
        assert_eq!(keys, ["BankID", "Skola", "Okänd tjänst", COURSE_GROUP]);
        assert_eq!(group(&s, "BankID").visits, 2);
        assert_eq!(group(&s, "BankID").share_other_agency, 1.0);
        let skola = group(&s, "Skola");
        assert_eq!(
            (skola.visits, skola.minutes, skola.visits_other_agency),
            (2, 45, 1)
        );
        let c = group(&s, COURSE_GROUP);
        assert_eq!(
            (c.visits, c.course_sessions, c.course_participants),
            (0, 3, 8)
        );
    }

    #[test]
    fn grouping_by_agency_dedups_per_visit() {
        let records = vec![
            // Both BankID services are run by the banks: one agency, once.
            visit(
                "A",
                "2025-03-01",
                10,
                &["BankID", "Mobilt BankID", "Skola"],
                Outcome::Solved,
            ),
            visit(
                "A",
                "2025-03-02",
                20,
                &["Försäkringskassan"],
                Outcome::Solved,
            ),
            visit("A", "2025-03-03", 30, &["Nåt nytt"], Outcome::Solved),
            visit("A", "2025-03-04", 40, &[], Outcome::Solved),
            course("A", vec![session("a", "2025-03-05", 60, 3)]),
        ];
        let s = run(&records, None, None, &[Grouping::Agency]);
        let got: Vec<(&str, u64, u64)> = s
            .groups
            .iter()
            .map(|g| (g.key.as_deref().unwrap(), g.totals.visits, g.totals.minutes))
            .collect();
        assert_eq!(
            got,
            [
                ("BankID (bankerna)", 1, 10),
                ("Försäkringskassan", 1, 20),
                ("Kommunen", 1, 10),
                ("unknown", 1, 30),
                (NO_SERVICE_GROUP, 1, 40),
                (COURSE_GROUP, 0, 60),
            ]
        );
    }

    #[test]
    fn grouping_parses_and_explains_values() {
        assert_eq!(" Month ".parse::<Grouping>(), Ok(Grouping::Month));
        assert_eq!("agency".parse::<Grouping>(), Ok(Grouping::Agency));
        assert_eq!("Age-Band".parse::<Grouping>(), Ok(Grouping::AgeBand));
        let err = "weekday".parse::<Grouping>().unwrap_err();
        assert!(
            err.contains("'weekday'") && err.contains("site, year, quarter, month, week, service"),
            "{err}"
        );
        assert_eq!(serde_json::to_value(Grouping::Service).unwrap(), "service");
    }

    #[test]
    fn json_has_the_figures_by_name() {
        let s = run(&sample(), Some("2025-03-01"), None, &[Grouping::Site]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["from"], "2025-03-01");
        assert_eq!(v["to"], serde_json::Value::Null);
        assert_eq!(v["by"], serde_json::json!(["site"]));
        assert_eq!(v["total"]["people_reached"], 3 + 8);
        assert_eq!(v["total"]["top_barriers"][0]["kinds"][0]["kind"], "login");
        assert_eq!(v["groups"][0]["key"], "Bibliotek");
        assert_eq!(
            v["groups"][0]["keys"],
            serde_json::json!({"site": "Bibliotek"})
        );
        assert!(v.get("note").is_none(), "one value per visit needs no note");
    }

    #[test]
    fn text_report_shows_totals_share_and_groups() {
        let s = run(&sample(), None, None, &[Grouping::Site]);
        let text = s.to_text();
        assert!(text.contains("all dates"), "{text}");
        assert!(
            text.contains("People reached:    11 (3 visits + 8 course participants, estimated)"),
            "{text}"
        );
        assert!(text.contains("1 of 3 visits (33.3%)"), "{text}");
        assert!(text.contains("Own agency:        2 of 3 visits"), "{text}");
        assert!(
            text.contains("solved 1, partly 1, referred 0, not_solved 1"),
            "{text}"
        );
        assert!(text.contains("BankID      3  login 2, bankid 1"), "{text}");
        assert!(text.contains("By site:"), "{text}");
        let row = text.lines().find(|l| l.contains("Träffpunkt")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, ["Träffpunkt", "1", "9", "3", "285", "0.0%", "0"]);
        // A group without visits shows no percentage rather than 0.0%.
        let by_service = run(&sample(), None, None, &[Grouping::Service]).to_text();
        let course_row = by_service
            .lines()
            .find(|l| l.contains(COURSE_GROUP))
            .unwrap();
        assert!(course_row.contains(" - "), "{course_row}");
    }

    #[test]
    fn empty_stats_are_well_formed() {
        let s = run(
            &[],
            Some("2025-01-01"),
            Some("2025-01-31"),
            &[Grouping::Month],
        );
        assert_eq!(
            s.total,
            Totals {
                outcomes: s.total.outcomes.clone(),
                ..Totals::default()
            }
        );
        assert_eq!(s.total.outcomes.len(), 4);
        let text = s.to_text();
        assert!(text.contains("2025-01-01 to 2025-01-31"), "{text}");
        assert!(text.contains("nothing in this period"), "{text}");
    }

    fn with(mut r: Record, f: impl FnOnce(&mut Visit)) -> Record {
        if let Body::Visit(v) = &mut r.body {
            f(v);
        }
        r
    }

    fn course_with_partner(site: &str, partner: Option<&str>, sessions: Vec<Session>) -> Record {
        let mut r = course(site, sessions);
        if let Body::Course(c) = &mut r.body {
            c.partner = partner.map(str::to_string);
        }
        r
    }

    #[test]
    fn a_course_of_three_sessions_reaches_its_largest_session() {
        // The example: 8, 7 and 9 came; perhaps 9 people, not 24.
        let c = course(
            "A",
            vec![
                session("a", "2025-03-03", 60, 8),
                session("b", "2025-03-10", 60, 7),
                session("c", "2025-04-14", 60, 9),
            ],
        );
        let t = run(std::slice::from_ref(&c), None, None, &[]).total;
        assert_eq!((t.courses, t.course_sessions, t.participations), (1, 3, 24));
        assert_eq!((t.course_participants, t.people_reached), (9, 9));
        // Per month, the largest session of the course in that month.
        let s = run(&[c], None, None, &[Grouping::Month]);
        assert_eq!(group(&s, "2025-03").course_participants, 8);
        assert_eq!(group(&s, "2025-03").participations, 15);
        assert_eq!(group(&s, "2025-04").course_participants, 9);
        assert_eq!(group(&s, "2025-03").courses, 1);
    }

    #[test]
    fn periods_year_quarter_and_iso_week() {
        let records = vec![
            visit("A", "2024-12-30", 10, &["Skola"], Outcome::Solved),
            visit("A", "2025-01-05", 10, &["Skola"], Outcome::Solved),
            visit("A", "2025-04-01", 10, &["Skola"], Outcome::Solved),
        ];
        let keys = |by: Grouping| -> Vec<String> {
            run(&records, None, None, &[by])
                .groups
                .into_iter()
                .map(|g| g.key.unwrap())
                .collect()
        };
        assert_eq!(keys(Grouping::Year), ["2024", "2025"]);
        assert_eq!(keys(Grouping::Quarter), ["2024-Q4", "2025-Q1", "2025-Q2"]);
        // 2024-12-30 is in ISO week 1 of 2025, as is 2025-01-05.
        assert_eq!(keys(Grouping::Week), ["2025-W01", "2025-W14"]);
    }

    #[test]
    fn two_dimensions_combine_and_keep_period_order_within_the_busiest_site() {
        let records = vec![
            visit("Small", "2025-02-01", 10, &["Skola"], Outcome::Solved),
            visit("Big", "2025-03-01", 10, &["Skola"], Outcome::Solved),
            visit("Big", "2025-01-01", 10, &["Skola"], Outcome::Solved),
            visit("Big", "2025-01-02", 10, &["Skola"], Outcome::Solved),
        ];
        let s = run(&records, None, None, &[Grouping::Site, Grouping::Month]);
        let got: Vec<(&str, &str, u64)> = s
            .groups
            .iter()
            .map(|g| {
                (
                    g.keys.get(Grouping::Site).unwrap(),
                    g.keys.get(Grouping::Month).unwrap(),
                    g.totals.visits,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Big", "2025-01", 2),
                ("Big", "2025-03", 1),
                ("Small", "2025-02", 1)
            ]
        );
        assert!(s.groups.iter().all(|g| g.key.is_none()));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["groups"][0]["keys"],
            serde_json::json!({"site": "Big", "month": "2025-01"})
        );
        assert!(v["groups"][0].get("key").is_none());
    }

    #[test]
    fn every_dimension_has_a_group_for_every_record() {
        let records = vec![
            with(
                visit("A", "2025-03-01", 10, &["BankID", "Skola"], Outcome::Solved),
                |v| {
                    v.assistive = vec![Assistive::Interpreter, Assistive::LargeText];
                    v.language = "ar".into();
                },
            ),
            visit("A", "2025-03-02", 10, &["Skola"], Outcome::Referred),
            course_with_partner(
                "A",
                Some("Medborgarskolan"),
                vec![session("a", "2025-03-03", 60, 5)],
            ),
            course_with_partner("A", None, vec![session("a", "2025-03-03", 60, 4)]),
        ];
        for &dim in Grouping::ALL {
            let s = run(&records, None, None, &[dim]);
            let visits: u64 = s.groups.iter().map(|g| g.totals.visits).sum();
            let courses: u64 = s.groups.iter().map(|g| g.totals.courses).sum();
            // The first visit has two services (two agencies) and two
            // assistive needs, so it is in two groups of those dimensions.
            let want_visits = if dim.is_multi_valued() { 3 } else { 2 };
            assert_eq!(visits, want_visits, "{dim}: {:?}", s.groups);
            assert_eq!(courses, 2, "{dim}: every course in one group");
            assert_eq!(s.note.is_some(), dim.is_multi_valued(), "{dim}");
        }
        let partner = run(&records, None, None, &[Grouping::Partner]);
        let keys: Vec<&str> = partner
            .groups
            .iter()
            .map(|g| g.key.as_deref().unwrap())
            .collect();
        assert_eq!(keys, ["Medborgarskolan", VISIT_GROUP, NO_PARTNER_GROUP]);
        let lang = run(&records, None, None, &[Grouping::Language]);
        assert_eq!(group(&lang, "ar").visits, 1);
        assert_eq!(group(&lang, COURSE_GROUP).course_participants, 9);
        let needs = run(&records, None, None, &[Grouping::Assistive]);
        assert_eq!(group(&needs, "interpreter").visits, 1);
        assert_eq!(group(&needs, NONE_GROUP).visits, 1);
        assert_eq!(needs.total.visits, 2, "once in the total");
        assert!(
            needs
                .to_text()
                .contains("Note: a visit with several values of assistive")
        );
    }

    #[test]
    fn referrals_are_counted_per_agency() {
        let records = vec![
            with(
                visit("A", "2025-03-01", 10, &["Skola"], Outcome::Referred),
                |v| v.referred_to = Some("Försäkringskassan".into()),
            ),
            with(
                visit("A", "2025-03-01", 10, &["Skola"], Outcome::Referred),
                |v| v.referred_to = Some(" försäkringskassan ".into()),
            ),
            // A service name refers to its agency.
            with(
                visit("A", "2025-03-01", 10, &["Skola"], Outcome::Referred),
                |v| v.referred_to = Some("Bank-ID".into()),
            ),
            with(
                visit("A", "2025-03-01", 10, &["Skola"], Outcome::Referred),
                |v| v.referred_to = Some("Tandläkaren  Gul".into()),
            ),
            visit("A", "2025-03-01", 10, &["Skola"], Outcome::Referred),
            visit("A", "2025-03-01", 10, &["Skola"], Outcome::Solved),
        ];
        let t = run(&records, None, None, &[]).total;
        let got: Vec<(&str, u64)> = t
            .referrals
            .iter()
            .map(|r| (r.agency.as_str(), r.visits))
            .collect();
        assert_eq!(
            got,
            [
                ("Försäkringskassan", 2),
                (REFERRAL_NOT_GIVEN, 1),
                ("BankID (bankerna)", 1),
                ("Tandläkaren Gul", 1),
            ]
        );
        assert!(
            run(&records, None, None, &[])
                .to_text()
                .contains("Referrals:         Försäkringskassan 2"),
        );
    }

    #[test]
    fn sites_are_counted_under_the_listed_spelling() {
        let records = vec![
            visit(
                "Mjölby bibliotek",
                "2025-03-01",
                10,
                &["Skola"],
                Outcome::Solved,
            ),
            visit(
                "Mjölby Bibliotek",
                "2025-03-01",
                10,
                &["Skola"],
                Outcome::Solved,
            ),
            visit(
                "Mjolby bibliotek",
                "2025-03-01",
                10,
                &["Skola"],
                Outcome::Solved,
            ),
            visit("Väderstad", "2025-03-01", 10, &["Skola"], Outcome::Solved),
        ];
        let catalogue = Catalogue::builtin();
        let mut b = StatsBuilder::new(&catalogue, None, None, vec![Grouping::Site])
            .with_sites(SiteList::new(["Mjölby bibliotek", "Skänninge bibliotek"]));
        for r in &records {
            b.add(r);
        }
        let s = b.finish();
        let got: Vec<(&str, u64)> = s
            .groups
            .iter()
            .map(|g| (g.key.as_deref().unwrap(), g.totals.visits))
            .collect();
        assert_eq!(got, [("Mjölby bibliotek", 3), ("Väderstad", 1)]);
        // Without the list, as typed: three spellings, three groups.
        assert_eq!(run(&records, None, None, &[Grouping::Site]).groups.len(), 4);
    }

    #[test]
    fn text_speaks_in_singular_and_plural() {
        let one = run(
            &[course("A", vec![session("a", "2025-03-01", 60, 4)])],
            None,
            None,
            &[],
        )
        .to_text();
        assert!(
            one.contains("1 course, 1 session, 4 participations"),
            "{one}"
        );
        assert!(!one.contains("1 courses"), "{one}");
    }

    #[test]
    fn parse_list_takes_several_dimensions_once_each() {
        assert_eq!(
            Grouping::parse_list("site, month"),
            Ok(vec![Grouping::Site, Grouping::Month])
        );
        assert!(
            Grouping::parse_list("site,site")
                .unwrap_err()
                .contains("twice")
        );
        assert!(Grouping::parse_list("site,").is_err());
    }
}
