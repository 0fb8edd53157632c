//! Statistics over visits and course sessions (DESIGN.md section 6).
//!
//! What is counted, and why:
//! - **visits**: one person helped once.
//! - **course sessions** and their **participants**: a course reaches people
//!   at each meeting, so sessions, not courses, are the unit. A course that
//!   runs across a reporting boundary counts only the sessions held inside
//!   the `from`/`to` range, and with `--by month` each session lands in its
//!   own month.
//! - **people reached** = visits + course-session participants (the same
//!   person at two sessions is reached twice; records hold no identities,
//!   by design, so there is nothing to deduplicate on).
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
//! - **top barriers**: for each e-service named in a barrier, how often each
//!   kind of barrier was met, most frequent first.
//!
//! Service names are resolved to their canonical catalogue name before they
//! are counted, so `Bank-ID` and `BankID` are one service. Nothing resolved
//! is stored: a corrected catalogue also corrects old statistics.
//!
//! [`StatsBuilder`] is a streaming accumulator: records are added one at a
//! time and only the running counts are kept, so 100,000 records never need
//! to be in memory at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::NaiveDate;

use crate::catalogue::{AgencyScope, Catalogue};
use crate::record::{BarrierKind, Body, Outcome, Record, Session, Visit};

/// Group of course sessions when grouping by service or agency: a course is
/// not about one e-service, but its sessions must still appear somewhere so
/// the groups add up to the total.
pub const COURSE_GROUP: &str = "(course)";
/// Group of visits that name no e-service, when grouping by service or agency.
pub const NO_SERVICE_GROUP: &str = "(no service)";

/// How `--by` splits the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The record's site.
    Site,
    /// `YYYY-MM` of the visit day or the session day.
    Month,
    /// Each e-service of a visit (a visit with two services is in both).
    Service,
    /// The agency of each e-service, once per visit.
    Agency,
}

impl Grouping {
    pub const ALL: &'static [Grouping] = &[
        Grouping::Site,
        Grouping::Month,
        Grouping::Service,
        Grouping::Agency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Site => "site",
            Grouping::Month => "month",
            Grouping::Service => "service",
            Grouping::Agency => "agency",
        }
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Grouping {
    type Err = String;

    /// Case-insensitive, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_lowercase();
        Grouping::ALL
            .iter()
            .copied()
            .find(|g| g.as_str() == norm)
            .ok_or_else(|| {
                let values: Vec<&str> = Grouping::ALL.iter().map(|g| g.as_str()).collect();
                format!(
                    "cannot group by '{}'; use one of: {}",
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

/// The figures of DESIGN.md section 6, for everything or for one group.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub visits: u64,
    /// Visits plus course-session participants.
    pub people_reached: u64,
    pub course_sessions: u64,
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
    /// Per e-service, sorted by total descending, then service name.
    pub top_barriers: Vec<ServiceBarriers>,
}

/// One `--by` group.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    pub key: String,
    pub totals: Totals,
}

/// The finished statistics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stats {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub by: Option<Grouping>,
    pub total: Totals,
    /// Empty unless `by` is set. Months are in date order; other groupings
    /// list the busiest group first, with `(course)` and `(no service)` last.
    pub groups: Vec<Group>,
}

/// Running counts for one set of figures.
#[derive(Debug, Default)]
struct Acc {
    visits: u64,
    course_sessions: u64,
    course_participants: u64,
    minutes: u64,
    other: u64,
    own: u64,
    unknown: u64,
    sensitive: u64,
    /// Indexed like `Outcome::ALL`.
    outcomes: [u64; Outcome::ALL.len()],
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
    /// Canonical service of each barrier, with its kind.
    barriers: Vec<(String, BarrierKind)>,
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

    fn add_session(&mut self, s: &Session) {
        self.course_sessions += 1;
        self.course_participants += u64::from(s.participants);
        self.minutes += u64::from(s.minutes);
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
        Totals {
            visits: self.visits,
            people_reached: self.visits + self.course_participants,
            course_sessions: self.course_sessions,
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
            top_barriers,
        }
    }
}

/// Streaming accumulator: [`StatsBuilder::add`] each record, then
/// [`StatsBuilder::finish`]. Only counts are kept, never records.
pub struct StatsBuilder<'c> {
    catalogue: &'c Catalogue,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    by: Option<Grouping>,
    total: Acc,
    groups: HashMap<String, Acc>,
}

impl<'c> StatsBuilder<'c> {
    /// Counts visits and course sessions dated within `from..=to` (either end
    /// open when `None`), grouped by `by` if given.
    pub fn new(
        catalogue: &'c Catalogue,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        by: Option<Grouping>,
    ) -> Self {
        StatsBuilder {
            catalogue,
            from,
            to,
            by,
            total: Acc::default(),
            groups: HashMap::new(),
        }
    }

    fn in_range(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }

    /// Adds one record. Records outside the date range (and course sessions
    /// outside it) are ignored, so the caller may pass a coarser selection.
    pub fn add(&mut self, record: &Record) {
        match &record.body {
            Body::Visit(v) => self.add_visit(record, v),
            Body::Course(c) => {
                for s in &c.sessions {
                    self.add_session(record, s);
                }
            }
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
        let facts = VisitFacts {
            visit,
            other,
            own,
            unknown,
            barriers,
        };
        self.total.add_visit(&facts);
        let keys = match self.by {
            None => return,
            Some(Grouping::Site) => vec![record.site.clone()],
            Some(Grouping::Month) => vec![month(visit.date)],
            Some(Grouping::Service) => services,
            Some(Grouping::Agency) => agencies,
        };
        if keys.is_empty() {
            self.group(NO_SERVICE_GROUP).add_visit(&facts);
        }
        for key in keys {
            self.group(&key).add_visit(&facts);
        }
    }

    fn add_session(&mut self, record: &Record, session: &Session) {
        if !self.in_range(session.date) {
            return;
        }
        self.total.add_session(session);
        let key = match self.by {
            None => return,
            Some(Grouping::Site) => record.site.clone(),
            Some(Grouping::Month) => month(session.date),
            Some(Grouping::Service | Grouping::Agency) => COURSE_GROUP.to_string(),
        };
        self.group(&key).add_session(session);
    }

    fn group(&mut self, key: &str) -> &mut Acc {
        // Look up before inserting so the common case allocates no key.
        if !self.groups.contains_key(key) {
            self.groups.insert(key.to_string(), Acc::default());
        }
        self.groups.get_mut(key).expect("inserted above")
    }

    /// The statistics, with groups in report order (see [`Stats::groups`]).
    pub fn finish(self) -> Stats {
        let mut groups: Vec<Group> = self
            .groups
            .into_iter()
            .map(|(key, acc)| Group {
                key,
                totals: acc.finish(),
            })
            .collect();
        match self.by {
            Some(Grouping::Month) => groups.sort_by(|a, b| a.key.cmp(&b.key)),
            _ => groups.sort_by(|a, b| {
                let special = |g: &Group| g.key == COURSE_GROUP || g.key == NO_SERVICE_GROUP;
                special(a)
                    .cmp(&special(b))
                    .then_with(|| b.totals.visits.cmp(&a.totals.visits))
                    .then_with(|| b.totals.people_reached.cmp(&a.totals.people_reached))
                    .then_with(|| a.key.cmp(&b.key))
            }),
        }
        Stats {
            from: self.from,
            to: self.to,
            by: self.by,
            total: self.total.finish(),
            groups,
        }
    }
}

fn month(date: NaiveDate) -> String {
    date.format("%Y-%m").to_string()
}

/// `58.3%`, or `-` when there is nothing to divide by.
fn percent(share: f64, visits: u64) -> String {
    if visits == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", share * 100.0)
    }
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
        if let Some(by) = self.by {
            let _ = writeln!(out);
            let _ = writeln!(out, "By {by}:");
            if self.groups.is_empty() {
                let _ = writeln!(out, "  (nothing in this period)");
            } else {
                groups_table(&mut out, by, &self.groups);
            }
        }
        out
    }
}

fn totals_text(out: &mut String, t: &Totals) {
    let rows: [(&str, String); 9] = [
        ("Visits", t.visits.to_string()),
        (
            "People reached",
            format!(
                "{} ({} visits + {} course participants)",
                t.people_reached, t.visits, t.course_participants
            ),
        ),
        ("Course sessions", t.course_sessions.to_string()),
        (
            "Minutes of help",
            format!("{} ({:.1} hours)", t.minutes, t.minutes as f64 / 60.0),
        ),
        (
            "Other agency",
            format!(
                "{} of {} visits ({})",
                t.visits_other_agency,
                t.visits,
                percent(t.share_other_agency, t.visits)
            ),
        ),
        (
            "Own agency",
            format!("{} of {} visits", t.visits_own_agency, t.visits),
        ),
        (
            "Unknown service",
            format!("{} of {} visits", t.visits_unknown_agency, t.visits),
        ),
        (
            "Banking/purchases",
            format!("{} of {} visits", t.sensitive_visits, t.visits),
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

fn groups_table(out: &mut String, by: Grouping, groups: &[Group]) {
    let header = [
        by.as_str(),
        "visits",
        "people",
        "sessions",
        "minutes",
        "other agency",
        "solved",
    ];
    let rows: Vec<[String; 7]> = groups
        .iter()
        .map(|g| {
            let t = &g.totals;
            [
                g.key.clone(),
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
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut text = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            // The key column reads left to right; numbers line up on the right.
            if i == 0 {
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
        AgeBand, Barrier, BarrierKind, Category, Channel, Course, Outcome, Session, Visit,
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

    fn run(
        records: &[Record],
        from: Option<&str>,
        to: Option<&str>,
        by: Option<Grouping>,
    ) -> Stats {
        let catalogue = Catalogue::builtin();
        let mut b = StatsBuilder::new(&catalogue, from.map(d), to.map(d), by);
        for r in records {
            b.add(r);
        }
        b.finish()
    }

    fn group<'s>(stats: &'s Stats, key: &str) -> &'s Totals {
        &stats
            .groups
            .iter()
            .find(|g| g.key == key)
            .unwrap_or_else(|| panic!("no group {key} in {:?}", stats.groups))
            .totals
    }

    #[test]
    fn totals_count_every_figure() {
        let s = run(&sample(), None, None, None);
        let t = &s.total;
        assert_eq!(t.visits, 3);
        assert_eq!(t.course_sessions, 3);
        assert_eq!(t.course_participants, 19);
        assert_eq!(t.people_reached, 3 + 19);
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
        let t = run(&records, None, None, None).total;
        assert_eq!(t.visits_other_agency, 1);
        assert_eq!(t.share_other_agency, 0.25);
        assert_eq!(t.visits_own_agency, 2);
        assert_eq!(t.visits_unknown_agency, 1);

        let only_course = run(
            &[course("A", vec![session("a", "2025-03-01", 60, 4)])],
            None,
            None,
            None,
        );
        assert_eq!(only_course.total.share_other_agency, 0.0);
        assert_eq!(only_course.total.people_reached, 4);
    }

    #[test]
    fn barriers_are_ranked_per_canonical_service() {
        let t = run(&sample(), None, None, None).total;
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
        let t = run(&records, None, None, None).total;
        let names: Vec<&str> = t.top_barriers.iter().map(|b| b.service.as_str()).collect();
        assert_eq!(names, ["CSN", "Swish"]);
    }

    #[test]
    fn sessions_outside_the_range_are_not_counted() {
        let s = run(&sample(), Some("2025-03-15"), Some("2025-04-05"), None);
        let t = &s.total;
        // Visits on 03-20 and 04-02; session b (03-17) only.
        assert_eq!(t.visits, 2);
        assert_eq!(t.course_sessions, 1);
        assert_eq!(t.course_participants, 6);
        assert_eq!(t.people_reached, 8);
        assert_eq!(t.minutes, 15 + 45 + 90);
        assert_eq!(s.from, Some(d("2025-03-15")));

        let open_start = run(&sample(), None, Some("2025-03-10"), None).total;
        assert_eq!((open_start.visits, open_start.course_sessions), (1, 1));
        let open_end = run(&sample(), Some("2025-04-07"), None, None).total;
        assert_eq!((open_end.visits, open_end.course_sessions), (0, 1));
    }

    #[test]
    fn grouping_by_site() {
        let s = run(&sample(), None, None, Some(Grouping::Site));
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["Bibliotek", "Träffpunkt"]);
        let bib = group(&s, "Bibliotek");
        assert_eq!((bib.visits, bib.course_sessions, bib.minutes), (2, 0, 45));
        let tp = group(&s, "Träffpunkt");
        assert_eq!(
            (tp.visits, tp.course_sessions, tp.people_reached),
            (1, 3, 20)
        );
    }

    #[test]
    fn grouping_by_month_puts_each_session_in_its_month() {
        let s = run(&sample(), None, None, Some(Grouping::Month));
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["2025-03", "2025-04"]);
        let march = group(&s, "2025-03");
        assert_eq!(
            (
                march.visits,
                march.course_sessions,
                march.course_participants
            ),
            (2, 2, 14)
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
        let s = run(&records, None, None, Some(Grouping::Service));
        let keys: Vec<&str> = s.groups.iter().map(|g| g.key.as_str()).collect();
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
            (0, 3, 19)
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
        let s = run(&records, None, None, Some(Grouping::Agency));
        let got: Vec<(&str, u64, u64)> = s
            .groups
            .iter()
            .map(|g| (g.key.as_str(), g.totals.visits, g.totals.minutes))
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
        let err = "week".parse::<Grouping>().unwrap_err();
        assert!(
            err.contains("'week'") && err.contains("site, month, service, agency"),
            "{err}"
        );
        assert_eq!(serde_json::to_value(Grouping::Service).unwrap(), "service");
    }

    #[test]
    fn json_has_the_figures_by_name() {
        let s = run(&sample(), Some("2025-03-01"), None, Some(Grouping::Site));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["from"], "2025-03-01");
        assert_eq!(v["to"], serde_json::Value::Null);
        assert_eq!(v["by"], "site");
        assert_eq!(v["total"]["people_reached"], 22);
        assert_eq!(v["total"]["top_barriers"][0]["kinds"][0]["kind"], "login");
        assert_eq!(v["groups"][0]["key"], "Bibliotek");
    }

    #[test]
    fn text_report_shows_totals_share_and_groups() {
        let s = run(&sample(), None, None, Some(Grouping::Site));
        let text = s.to_text();
        assert!(text.contains("all dates"), "{text}");
        assert!(
            text.contains("People reached:    22 (3 visits + 19 course participants)"),
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
        assert_eq!(cells, ["Träffpunkt", "1", "20", "3", "285", "0.0%", "0"]);
        // A group without visits shows no percentage rather than 0.0%.
        let by_service = run(&sample(), None, None, Some(Grouping::Service)).to_text();
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
            Some(Grouping::Month),
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
}
