//! The annual report (DESIGN.md §9): one pass over the records feeds several
//! [`StatsBuilder`]s, one per question the report answers, and the result is
//! written as one self-contained HTML file (inline SVG charts and tables,
//! printable, no script and nothing loaded from outside).
//!
//! The figures come only from `outpost_proto::stats`, the same code `outpost
//! stats` runs, so a report and the terminal never disagree. This module only
//! chooses the groupings and lays them out; it computes nothing itself
//! except sums of figures already computed.
//!
//! The same [`Report`] is rendered as HTML ([`Report::to_html`]) and as
//! XLSX sheets with native charts ([`Report::xlsx_sheets`], in `xlsx`,
//! put in front of the records sheets the export writes as the records
//! stream by); both take every figure from the methods below, so the two
//! files cannot disagree.
//!
//! Swedish first: labels and number formats (`1 234`, `81,2 %`) are Swedish
//! unless [`Lang::En`] is asked for.

mod xlsx;

use std::fmt::Write as _;

use outpost_proto::catalogue::Catalogue;
use outpost_proto::record::Record;
use outpost_proto::sites::SiteList;
use outpost_proto::stats::{Grouping, Stats, StatsBuilder, Totals};

/// The report's language (the product's one [`Lang`]).
pub use outpost_proto::lang::Lang;

/// The groupings the report needs, built in one pass.
pub struct ReportBuilder<'c> {
    year: i32,
    overall: StatsBuilder<'c>,
    site_month: StatsBuilder<'c>,
    agency: StatsBuilder<'c>,
    age: StatsBuilder<'c>,
    language: StatsBuilder<'c>,
    assistive: StatsBuilder<'c>,
    partner: StatsBuilder<'c>,
}

/// Everything the report shows.
pub struct Report {
    pub year: i32,
    /// Who the report is for (an org slug or name), shown in the title.
    pub org: String,
    /// Which service catalogue resolved services to agencies.
    pub catalogue: String,
    pub overall: Stats,
    pub site_month: Stats,
    pub agency: Stats,
    pub age: Stats,
    pub language: Stats,
    pub assistive: Stats,
    pub partner: Stats,
}

impl<'c> ReportBuilder<'c> {
    pub fn new(catalogue: &'c Catalogue, sites: &SiteList, year: i32) -> ReportBuilder<'c> {
        let from = chrono::NaiveDate::from_ymd_opt(year, 1, 1);
        let to = chrono::NaiveDate::from_ymd_opt(year, 12, 31);
        let make = |by: Vec<Grouping>| {
            StatsBuilder::new(catalogue, from, to, by).with_sites(sites.clone())
        };
        ReportBuilder {
            year,
            overall: make(vec![]),
            site_month: make(vec![Grouping::Site, Grouping::Month]),
            agency: make(vec![Grouping::Agency]),
            age: make(vec![Grouping::AgeBand]),
            language: make(vec![Grouping::Language]),
            assistive: make(vec![Grouping::Assistive]),
            partner: make(vec![Grouping::Partner]),
        }
    }

    pub fn add(&mut self, r: &Record) {
        for b in [
            &mut self.overall,
            &mut self.site_month,
            &mut self.agency,
            &mut self.age,
            &mut self.language,
            &mut self.assistive,
            &mut self.partner,
        ] {
            b.add(r);
        }
    }

    pub fn finish(self, org: &str, catalogue: &str) -> Report {
        Report {
            year: self.year,
            org: org.to_string(),
            catalogue: catalogue.to_string(),
            overall: self.overall.finish(),
            site_month: self.site_month.finish(),
            agency: self.agency.finish(),
            age: self.age.finish(),
            language: self.language.finish(),
            assistive: self.assistive.finish(),
            partner: self.partner.finish(),
        }
    }
}

/// What each chart and table shows, taken from the figures once, so the
/// HTML and the XLSX renderings cannot differ (they format, never count).
impl Report {
    /// The year's key figures, labelled, in the summary's order (the share
    /// of other agencies' e-services follows them, as a percentage).
    pub fn key_figures(&self, lang: Lang) -> Vec<(&'static str, u64)> {
        let o = &self.overall.total;
        vec![
            (lang.t("Besök", "Visits"), o.visits),
            (
                lang.t("Personer nådda (uppskattat)", "People reached (estimated)"),
                o.people_reached,
            ),
            (lang.t("Kurser", "Courses"), o.courses),
            (
                lang.t("Kurstillfällen", "Course sessions"),
                o.course_sessions,
            ),
            (
                lang.t("Deltagartillfällen", "Participations"),
                o.participations,
            ),
            (
                lang.t(
                    "Kursdeltagare (uppskattat)",
                    "Course participants (estimated)",
                ),
                o.course_participants,
            ),
            (
                lang.t("Timmar hjälp", "Hours of help"),
                (o.minutes + 30) / 60,
            ),
        ]
    }

    /// People reached per site for the year, busiest first (the order
    /// stats gives), summed over the site's months.
    pub fn site_totals(&self) -> Vec<(String, u64)> {
        let mut sites: Vec<(String, u64)> = Vec::new();
        for g in &self.site_month.groups {
            let site = g.keys.get(Grouping::Site).unwrap_or_default().to_string();
            match sites.iter_mut().find(|(s, _)| *s == site) {
                Some((_, n)) => *n += g.totals.people_reached,
                None => sites.push((site, g.totals.people_reached)),
            }
        }
        sites
    }

    /// People reached per site (rows, as [`Report::site_totals`]) and month
    /// (January to December).
    pub fn site_months(&self) -> Vec<(String, [u64; 12], u64)> {
        self.site_totals()
            .into_iter()
            .map(|(site, total)| {
                let mut months = [0u64; 12];
                for (m, n) in months.iter_mut().enumerate() {
                    let month = format!("{}-{:02}", self.year, m + 1);
                    *n = self
                        .site_month
                        .groups
                        .iter()
                        .filter(|g| {
                            g.keys.get(Grouping::Site) == Some(site.as_str())
                                && g.keys.get(Grouping::Month) == Some(month.as_str())
                        })
                        .map(|g| g.totals.people_reached)
                        .sum();
                }
                (site, months, total)
            })
            .collect()
    }

    /// Visits about other agencies', the municipality's own and unknown
    /// e-services, labelled.
    pub fn scopes(&self, lang: Lang) -> [(&'static str, u64); 3] {
        let o = &self.overall.total;
        [
            (
                lang.t("Andra myndigheter och aktörer", "Other agencies and bodies"),
                o.visits_other_agency,
            ),
            (
                lang.t("Kommunens egna", "The municipality's own"),
                o.visits_own_agency,
            ),
            (
                lang.t("Okända tjänster", "Unknown services"),
                o.visits_unknown_agency,
            ),
        ]
    }

    /// Visits per agency (a visit about two agencies counts with each).
    pub fn agency_visits(&self) -> Vec<(String, u64)> {
        self.agency
            .groups
            .iter()
            .map(|g| (g.key.clone().unwrap_or_default(), g.totals.visits))
            .collect()
    }

    /// Barriers per e-service, most first, each with its kinds (labelled).
    pub fn barrier_rows(&self, lang: Lang) -> Vec<BarrierRow> {
        self.overall
            .total
            .top_barriers
            .iter()
            .map(|b| {
                (
                    b.service.clone(),
                    b.total,
                    b.kinds
                        .iter()
                        .map(|k| (barrier_name(&k.kind, lang), k.count))
                        .collect(),
                )
            })
            .collect()
    }

    /// Visits per outcome, in the form's order, labelled.
    pub fn outcome_counts(&self, lang: Lang) -> Vec<(String, u64)> {
        ["solved", "partly", "referred", "not_solved"]
            .iter()
            .map(|k| {
                (
                    outcome_name(k, lang).to_string(),
                    self.overall.total.outcomes.get(*k).copied().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Referrals per agency referred to.
    pub fn referral_counts(&self) -> Vec<(String, u64)> {
        self.overall
            .total
            .referrals
            .iter()
            .map(|r| (r.agency.clone(), r.visits))
            .collect()
    }

    /// Visits per age band, youngest first, labelled.
    pub fn age_counts(&self, lang: Lang) -> Vec<(String, u64)> {
        let mut ages = visits_per_group(&self.age);
        let order = ["under_25", "25_44", "45_64", "65_79", "80_plus", "unknown"];
        ages.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
        ages.into_iter()
            .map(|(k, n)| (age_name(&k, lang), n))
            .collect()
    }

    /// Visits per language the help was given in.
    pub fn language_counts(&self) -> Vec<(String, u64)> {
        visits_per_group(&self.language)
    }

    /// Visits per assistive need (a visit with two counts with each).
    pub fn assistive_counts(&self) -> Vec<(String, u64)> {
        visits_per_group(&self.assistive)
    }

    /// Per partner with courses: courses, sessions, participations and
    /// participants (estimated).
    pub fn partner_rows(&self) -> Vec<(String, [u64; 4])> {
        self.partner
            .groups
            .iter()
            .filter(|g| g.totals.courses > 0)
            .map(|g| {
                let tt: &Totals = &g.totals;
                (
                    g.key.clone().unwrap_or_default(),
                    [
                        tt.courses,
                        tt.course_sessions,
                        tt.participations,
                        tt.course_participants,
                    ],
                )
            })
            .collect()
    }
}

/// An e-service, its barriers and their kinds (labelled) with counts.
pub type BarrierRow = (String, u64, Vec<(String, u64)>);

fn visits_per_group(s: &Stats) -> Vec<(String, u64)> {
    s.groups
        .iter()
        .filter(|g| g.totals.visits > 0)
        .map(|g| (g.key.clone().unwrap_or_default(), g.totals.visits))
        .collect()
}

/// `1 234` (Swedish, no-break space) or `1,234`.
pub fn number(n: u64, lang: Lang) -> String {
    let digits = n.to_string();
    let sep = match lang {
        Lang::Sv => '\u{a0}',
        Lang::En => ',',
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `81,2 %` (Swedish) or `81.2%`; `–` when there is nothing to divide by.
pub fn percent(part: u64, whole: u64, lang: Lang) -> String {
    if whole == 0 {
        return "–".to_string();
    }
    let p = format!("{:.1}", part as f64 * 100.0 / whole as f64);
    match lang {
        Lang::Sv => format!("{}\u{a0}%", p.replace('.', ",")),
        Lang::En => format!("{p}%"),
    }
}

/// Escapes text for HTML element content and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours with at least 4.5:1 contrast on white (WCAG AA for the text
/// drawn beside them), distinguishable without colour by their labels.
const COLOURS: [&str; 3] = ["#1f5f99", "#a3410f", "#4d5b23"];

/// A horizontal bar chart as inline SVG: one labelled bar per item, the
/// value written at the end of the bar so it reads without the axis.
fn bar_chart(title: &str, items: &[(String, u64)], lang: Lang) -> String {
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let row = 26;
    let label_w = 220;
    let bar_w = 360;
    let height = row * items.len().max(1) + 10;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<figure><figcaption>{}</figcaption><svg role="img" aria-label="{}" viewBox="0 0 {} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">"#,
        esc(title),
        esc(title),
        label_w + bar_w + 90
    );
    for (i, (label, value)) in items.iter().enumerate() {
        let y = i * row + 5;
        let w = (*value as f64 / max as f64 * bar_w as f64).round() as u64;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="13">{}</text><rect x="{}" y="{y}" width="{w}" height="18" fill="{}"/><text x="{}" y="{}" font-size="13">{}</text>"#,
            label_w - 6,
            y + 14,
            esc(label),
            label_w,
            COLOURS[0],
            label_w as u64 + w + 6,
            y + 14,
            number(*value, lang)
        );
    }
    if items.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="10" y="20" font-size="13">{}</text>"#,
            lang.t("Inget att visa", "Nothing to show")
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// A table with a header row; the first column is a row heading.
fn table(caption: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut h = String::new();
    let _ = write!(h, "<table><caption>{}</caption><thead><tr>", esc(caption));
    for (i, c) in header.iter().enumerate() {
        let class = if i == 0 { "" } else { r#" class="num""# };
        let _ = write!(h, r#"<th scope="col"{class}>{}</th>"#, esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for row in rows {
        h.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            if i == 0 {
                let _ = write!(h, r#"<th scope="row">{}</th>"#, esc(c));
            } else if is_figure(c) {
                let _ = write!(h, r#"<td class="num">{}</td>"#, esc(c));
            } else {
                let _ = write!(h, "<td>{}</td>", esc(c));
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

/// A cell that holds one formatted figure (aligned right, like numbers).
fn is_figure(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_digit() || matches!(ch, '\u{a0}' | ',' | '.' | '%' | '–'))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#1a1a1a;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #767676}\
table{border-collapse:collapse;margin:1rem 0;width:100%}caption{text-align:left;font-weight:600;padding:.25rem 0}\
th,td{border:1px solid #767676;padding:.25rem .5rem;text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1rem 0}figcaption{font-weight:600}.key{display:flex;gap:1.5rem;flex-wrap:wrap}\
.swatch{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,figure{break-inside:avoid}}";

impl Report {
    /// The whole report as one HTML document.
    pub fn to_html(&self, lang: Lang) -> String {
        let mut h = String::new();
        let title = format!(
            "{} {} – {}",
            lang.t("Årsrapport", "Annual report"),
            self.year,
            self.org
        );
        let _ = write!(
            h,
            r#"<!doctype html><html lang="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>"#,
            lang.t("sv", "en"),
            esc(&title),
            esc(&title)
        );
        h.push_str(&self.body_html(lang));
        h.push_str("</main></body></html>\n");
        h
    }

    /// The report's sections without the page around them (no title, no
    /// style sheet): what the hub's dashboard shows inside its own page,
    /// so the dashboard and the report file cannot differ.
    pub fn body_html(&self, lang: Lang) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<p>{} {}. {}</p>",
            lang.t("Tjänstekatalog:", "Service catalogue:"),
            esc(&self.catalogue),
            lang.t("Personer nådda = besök + kursdeltagare, uppskattade som varje kurs största tillfälle.",
                "People reached = visits + course participants, estimated as each course's largest session."
            )
        );
        self.summary(&mut h, lang);
        self.reach(&mut h, lang);
        self.agencies(&mut h, lang);
        self.barriers(&mut h, lang);
        self.outcomes(&mut h, lang);
        self.who(&mut h, lang);
        self.courses(&mut h, lang);
        h
    }

    fn summary(&self, h: &mut String, lang: Lang) {
        let o = &self.overall.total;
        let mut rows: Vec<Vec<String>> = self
            .key_figures(lang)
            .into_iter()
            .map(|(label, n)| vec![label.to_string(), number(n, lang)])
            .collect();
        rows.push(vec![
            lang.t(
                "Andel frågor om andra myndigheters e-tjänster",
                "Share of questions about other agencies' e-services",
            )
            .into(),
            percent(o.visits_other_agency, o.visits, lang),
        ]);
        h.push_str(&format!("<h2>{}</h2>", lang.t("Sammanfattning", "Summary")));
        h.push_str(&table(
            lang.t("Året i siffror", "The year in figures"),
            &[lang.t("Mått", "Figure"), lang.t("Värde", "Value")],
            &rows,
        ));
    }

    fn reach(&self, h: &mut String, lang: Lang) {
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t(
                "Personer nådda per plats och månad",
                "People reached per site and month"
            )
        );
        // Sites in the order stats gives them (busiest first); months Jan–Dec.
        let sites = self.site_totals();
        h.push_str(&bar_chart(
            lang.t("Personer nådda per plats", "People reached per site"),
            &sites,
            lang,
        ));
        let mut header: Vec<&str> = vec![lang.t("Plats", "Site")];
        let month_names: Vec<String> = (1..=12).map(|m| month_name(m, lang)).collect();
        header.extend(month_names.iter().map(String::as_str));
        header.push(lang.t("Året", "Year"));
        let rows: Vec<Vec<String>> = self
            .site_months()
            .into_iter()
            .map(|(site, months, total)| {
                let mut row = vec![site];
                row.extend(months.iter().map(|n| number(*n, lang)));
                row.push(number(total, lang));
                row
            })
            .collect();
        h.push_str(&table(
            lang.t("Personer nådda per plats och månad (en kurs räknas med sitt största tillfälle i månaden)",
                "People reached per site and month (a course counts with its largest session in the month)",
            ),
            &header,
            &rows,
        ));
    }

    fn agencies(&self, h: &mut String, lang: Lang) {
        let o = &self.overall.total;
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t(
                "Vems e-tjänster frågorna gällde",
                "Whose e-services the questions were about"
            )
        );
        let scopes = self.scopes(lang);
        // One stacked bar of the three shares, then the key with figures.
        let total: u64 = scopes.iter().map(|(_, n)| n).sum::<u64>().max(1);
        let mut svg = format!(
            r#"<figure><figcaption>{}</figcaption><svg role="img" aria-label="{}" viewBox="0 0 600 40" width="100%" xmlns="http://www.w3.org/2000/svg">"#,
            lang.t("Andel besök per slags ägare", "Share of visits by owner"),
            lang.t("Andel besök per slags ägare", "Share of visits by owner"),
        );
        let mut x = 0.0;
        for (i, (_, n)) in scopes.iter().enumerate() {
            let w = *n as f64 / total as f64 * 600.0;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="5" width="{w:.1}" height="30" fill="{}"/>"#,
                COLOURS[i]
            );
            x += w;
        }
        svg.push_str("</svg><div class=\"key\">");
        for (i, (label, n)) in scopes.iter().enumerate() {
            let _ = write!(
                svg,
                // An SVG swatch, not a `style` attribute: the dashboard shows
                // this under a CSP that allows no inline style.
                r#"<span><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" fill="{}"/></svg>{}: {} ({})</span>"#,
                COLOURS[i],
                esc(label),
                number(*n, lang),
                percent(*n, o.visits, lang)
            );
        }
        svg.push_str("</div></figure>");
        h.push_str(&svg);
        let items = self.agency_visits();
        h.push_str(&bar_chart(
            lang.t(
                "Besök per myndighet (ett besök kan gälla flera)",
                "Visits per agency (one visit may concern several)",
            ),
            &items,
            lang,
        ));
    }

    fn barriers(&self, h: &mut String, lang: Lang) {
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t("Hinder per e-tjänst", "Barriers per e-service")
        );
        let barriers = self.barrier_rows(lang);
        let items: Vec<(String, u64)> = barriers
            .iter()
            .take(10)
            .map(|(service, total, _)| (service.clone(), *total))
            .collect();
        h.push_str(&bar_chart(
            lang.t(
                "E-tjänster med flest hinder",
                "E-services with the most barriers",
            ),
            &items,
            lang,
        ));
        let rows: Vec<Vec<String>> = barriers
            .into_iter()
            .map(|(service, total, kinds)| {
                vec![
                    service,
                    number(total, lang),
                    kinds
                        .iter()
                        .map(|(kind, n)| format!("{kind} {}", number(*n, lang)))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        h.push_str(&table(
            lang.t(
                "Hinder per e-tjänst och slag",
                "Barriers per e-service and kind",
            ),
            &[
                lang.t("E-tjänst", "E-service"),
                lang.t("Hinder", "Barriers"),
                lang.t("Slag", "Kinds"),
            ],
            &rows,
        ));
    }

    fn outcomes(&self, h: &mut String, lang: Lang) {
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t("Resultat och hänvisningar", "Outcomes and referrals")
        );
        let items = self.outcome_counts(lang);
        h.push_str(&bar_chart(
            lang.t("Resultat av besöken", "Outcome of the visits"),
            &items,
            lang,
        ));
        let refs = self.referral_counts();
        h.push_str(&bar_chart(
            lang.t("Hänvisningar per myndighet", "Referrals per agency"),
            &refs,
            lang,
        ));
    }

    fn who(&self, h: &mut String, lang: Lang) {
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t("Vilka som fick hjälp", "Who was helped")
        );
        let ages = self.age_counts(lang);
        h.push_str(&bar_chart(
            lang.t("Besök per åldersgrupp", "Visits per age band"),
            &ages,
            lang,
        ));
        h.push_str(&bar_chart(
            lang.t(
                "Besök per språk hjälpen gavs på",
                "Visits per language the help was given in",
            ),
            &self.language_counts(),
            lang,
        ));
        h.push_str(&bar_chart(
            lang.t(
                "Besök per hjälpmedel (ett besök kan ha flera)",
                "Visits per assistive need (one visit may have several)",
            ),
            &self.assistive_counts(),
            lang,
        ));
    }

    fn courses(&self, h: &mut String, lang: Lang) {
        let _ = write!(
            h,
            "<h2>{}</h2>",
            lang.t("Kurser per samarbetspartner", "Courses by partner")
        );
        let rows: Vec<Vec<String>> = self
            .partner_rows()
            .into_iter()
            .map(|(partner, figures)| {
                let mut row = vec![partner];
                row.extend(figures.iter().map(|n| number(*n, lang)));
                row
            })
            .collect();
        h.push_str(&table(
            lang.t("Kurser per samarbetspartner", "Courses by partner"),
            &[
                lang.t("Partner", "Partner"),
                lang.t("Kurser", "Courses"),
                lang.t("Tillfällen", "Sessions"),
                lang.t("Deltagartillfällen", "Participations"),
                lang.t("Deltagare (uppskattat)", "Participants (estimated)"),
            ],
            &rows,
        ));
    }
}

fn month_name(m: u32, lang: Lang) -> String {
    const SV: [&str; 12] = [
        "jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    const EN: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i = (m.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Sv => SV[i],
        Lang::En => EN[i],
    }
    .to_string()
}

fn outcome_name(k: &str, lang: Lang) -> &'static str {
    match k {
        "solved" => lang.t("Löst", "Solved"),
        "partly" => lang.t("Delvis löst", "Partly solved"),
        "referred" => lang.t("Hänvisad", "Referred"),
        _ => lang.t("Inte löst", "Not solved"),
    }
}

fn age_name(k: &str, lang: Lang) -> String {
    match k {
        "under_25" => lang.t("under 25", "under 25").into(),
        "25_44" => "25–44".into(),
        "45_64" => "45–64".into(),
        "65_79" => "65–79".into(),
        "80_plus" => lang.t("80 och äldre", "80 and over").into(),
        "unknown" => lang.t("okänd", "unknown").into(),
        other => other.into(),
    }
}

fn barrier_name(k: &str, lang: Lang) -> String {
    match k {
        "login" => lang.t("inloggning", "login").into(),
        "bankid" => "BankID".into(),
        "language" => lang.t("språk", "language").into(),
        "navigation" => lang.t("navigering", "navigation").into(),
        "form" => lang.t("formulär", "form").into(),
        "accessibility" => lang.t("tillgänglighet", "accessibility").into(),
        "device" => lang.t("enhet", "device").into(),
        _ => lang.t("annat", "other").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_numbers_and_percentages() {
        assert_eq!(number(1234567, Lang::Sv), "1\u{a0}234\u{a0}567");
        assert_eq!(number(999, Lang::Sv), "999");
        assert_eq!(number(1234, Lang::En), "1,234");
        assert_eq!(percent(812, 1000, Lang::Sv), "81,2\u{a0}%");
        assert_eq!(percent(812, 1000, Lang::En), "81.2%");
        assert_eq!(percent(1, 0, Lang::Sv), "–");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<b>\"&'"), "&lt;b&gt;&quot;&amp;&#39;");
    }
}
