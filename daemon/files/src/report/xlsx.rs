//! The annual report as XLSX sheets: a summary sheet with the year's key
//! figures and native Excel charts, and one sheet per table behind them.
//! The charts refer to those tables (a reader can follow a bar to its
//! number, and a changed cell redraws the chart). The records sheets come
//! from the export's workbook (`crate::export::Exporter`), which writes
//! them as the records stream by, in constant memory; these sheets are put
//! in front of them once the figures are known.
//!
//! Everything shown comes from the same [`Report`] methods the HTML
//! rendering uses; this module only places figures in cells. Numbers are
//! real numbers with cell formats (`#,##0`, `0.0 %`), so Excel and
//! LibreOffice show them with the reader's separators (`81,2 %` in Swedish).

use rust_xlsxwriter::{Chart, ChartType, Format, Worksheet, XlsxError};

use super::{Lang, Report, month_name};

/// Charts are this many rows tall on the summary sheet, plus a gap.
const CHART_ROWS: u32 = 16;
/// Most sites drawn as series in the site × month chart (the table has all).
const MAX_SITE_SERIES: usize = 8;
/// Bars in a chart of a long list (the table has all rows).
const MAX_BARS: usize = 15;

/// The report's sheet names in `lang` (at most 31 characters, as Excel
/// wants; none equals the records sheets' `Visits` / `Courses`).
pub struct SheetNames {
    pub summary: &'static str,
    pub sites: &'static str,
    pub agencies: &'static str,
    pub barriers: &'static str,
    pub outcomes: &'static str,
    pub who: &'static str,
    pub courses: &'static str,
}

impl SheetNames {
    pub fn new(lang: Lang) -> SheetNames {
        SheetNames {
            summary: lang.t("Sammanfattning", "Summary"),
            sites: lang.t("Platser och månader", "Sites and months"),
            agencies: lang.t("Myndigheter", "Agencies"),
            barriers: lang.t("Hinder", "Barriers"),
            outcomes: lang.t("Resultat och hänvisningar", "Outcomes and referrals"),
            who: lang.t("Vilka som fick hjälp", "Who was helped"),
            courses: lang.t("Kurser per partner", "Courses by partner"),
        }
    }
}

/// Cell formats shared by the sheets.
struct Formats {
    bold: Format,
    title: Format,
    count: Format,
    percent: Format,
}

impl Formats {
    fn new(lang: Lang) -> Formats {
        Formats {
            bold: Format::new().set_bold(),
            title: Format::new().set_bold().set_font_size(16),
            count: Format::new().set_num_format("#,##0"),
            // The format code is written in Excel's neutral notation; the
            // reader's locale picks the separators. Swedish typography puts
            // a space before the percent sign.
            percent: Format::new().set_num_format(match lang {
                Lang::Sv => "0.0 %",
                Lang::En => "0.0%",
            }),
        }
    }
}

/// A sheet being filled top to bottom.
struct Sheet {
    ws: Worksheet,
    row: u32,
}

impl Sheet {
    fn new(name: &'static str) -> Result<Sheet, XlsxError> {
        let mut ws = Worksheet::new();
        ws.set_name(name)?;
        ws.set_column_width(0, 34)?;
        Ok(Sheet { ws, row: 0 })
    }

    fn header(&mut self, f: &Formats, cells: &[&str]) -> Result<u32, XlsxError> {
        let row = self.row;
        for (col, c) in (0u16..).zip(cells) {
            self.ws.write_string_with_format(row, col, *c, &f.bold)?;
        }
        self.row += 1;
        Ok(row)
    }

    /// A labelled row of counts; returns its row number.
    fn counts(&mut self, f: &Formats, label: &str, values: &[u64]) -> Result<u32, XlsxError> {
        let row = self.row;
        self.ws.write_string(row, 0, label)?;
        for (col, v) in (1u16..).zip(values) {
            self.ws
                .write_number_with_format(row, col, *v as f64, &f.count)?;
        }
        self.row += 1;
        Ok(row)
    }

    /// A header and one labelled count per item; returns the rows of the
    /// items (first, last), or None when there are none.
    fn list(
        &mut self,
        f: &Formats,
        header: &[&str],
        items: &[(String, u64)],
    ) -> Result<Option<(u32, u32)>, XlsxError> {
        self.header(f, header)?;
        let first = self.row;
        for (label, n) in items {
            self.counts(f, label, &[*n])?;
        }
        let rows = (!items.is_empty()).then(|| (first, self.row - 1));
        self.row += 1;
        Ok(rows)
    }
}

/// A chart of one series: `(label column, value column)` over `rows` of
/// `sheet`, at most `MAX_BARS` of them.
fn one_series(
    kind: ChartType,
    title: &str,
    sheet: &str,
    (first, last): (u32, u32),
    value_col: u16,
) -> Chart {
    let last = last.min(first + MAX_BARS as u32 - 1);
    let mut chart = Chart::new(kind);
    chart
        .add_series()
        .set_categories((sheet, first, 0, last, 0))
        .set_values((sheet, first, value_col, last, value_col))
        .set_name((sheet, first - 1, value_col));
    chart.title().set_name(title);
    if !matches!(kind, ChartType::Pie) {
        chart.legend().set_hidden();
    }
    chart
}

impl Report {
    /// The report's sheets (summary first), to be put before the records
    /// sheets.
    pub fn xlsx_sheets(&self, lang: Lang) -> Result<Vec<Worksheet>, XlsxError> {
        let f = Formats::new(lang);
        let names = SheetNames::new(lang);
        let mut charts: Vec<Chart> = Vec::new();

        // People reached per site and month.
        let mut sites = Sheet::new(names.sites)?;
        let mut header = vec![lang.t("Plats", "Site").to_string()];
        header.extend((1..=12).map(|m| month_name(m, lang)));
        header.push(lang.t("Året", "Year").into());
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let header_row = sites.header(&f, &header)?;
        let site_rows = self.site_months();
        let first_site = sites.row;
        for (site, months, total) in &site_rows {
            let mut values = months.to_vec();
            values.push(*total);
            sites.counts(&f, site, &values)?;
        }
        if !site_rows.is_empty() {
            let mut chart = Chart::new(ChartType::Column);
            for i in 0..site_rows.len().min(MAX_SITE_SERIES) as u32 {
                let row = first_site + i;
                chart
                    .add_series()
                    .set_categories((names.sites, header_row, 1, header_row, 12))
                    .set_values((names.sites, row, 1, row, 12))
                    .set_name((names.sites, row, 0));
            }
            chart.title().set_name(lang.t(
                "Personer nådda per plats och månad",
                "People reached per site and month",
            ));
            charts.push(chart);
            charts.push(one_series(
                ChartType::Bar,
                lang.t("Personer nådda per plats", "People reached per site"),
                names.sites,
                (first_site, first_site + site_rows.len() as u32 - 1),
                13,
            ));
        }

        // Own / other / unknown, and the agencies behind them.
        let mut agencies = Sheet::new(names.agencies)?;
        let scopes: Vec<(String, u64)> = self
            .scopes(lang)
            .iter()
            .map(|(l, n)| ((*l).to_string(), *n))
            .collect();
        agencies.header(
            &f,
            &[
                lang.t("Vems e-tjänst", "Whose e-service"),
                lang.t("Besök", "Visits"),
                lang.t("Andel", "Share"),
            ],
        )?;
        let first_scope = agencies.row;
        let visits = self.overall.total.visits;
        for (label, n) in &scopes {
            let row = agencies.counts(&f, label, &[*n])?;
            if visits > 0 {
                agencies.ws.write_number_with_format(
                    row,
                    2,
                    *n as f64 / visits as f64,
                    &f.percent,
                )?;
            }
        }
        agencies.row += 1;
        if visits > 0 {
            charts.push(one_series(
                ChartType::Pie,
                lang.t("Andel besök per slags ägare", "Share of visits by owner"),
                names.agencies,
                (first_scope, first_scope + 2),
                1,
            ));
        }
        if let Some(rows) = agencies.list(
            &f,
            &[
                lang.t("Myndighet", "Agency"),
                lang.t(
                    "Besök (ett besök kan gälla flera)",
                    "Visits (one may concern several)",
                ),
            ],
            &self.agency_visits(),
        )? {
            charts.push(one_series(
                ChartType::Bar,
                lang.t("Besök per myndighet", "Visits per agency"),
                names.agencies,
                rows,
                1,
            ));
        }

        // Barriers per e-service.
        let mut barriers = Sheet::new(names.barriers)?;
        barriers.header(
            &f,
            &[
                lang.t("E-tjänst", "E-service"),
                lang.t("Hinder", "Barriers"),
                lang.t("Slag", "Kinds"),
            ],
        )?;
        let first_barrier = barriers.row;
        let barrier_rows = self.barrier_rows(lang);
        for (service, total, kinds) in &barrier_rows {
            let row = barriers.counts(&f, service, &[*total])?;
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            barriers.ws.write_string(row, 2, kinds.join(", "))?;
        }
        if !barrier_rows.is_empty() {
            charts.push(one_series(
                ChartType::Bar,
                lang.t(
                    "E-tjänster med flest hinder",
                    "E-services with the most barriers",
                ),
                names.barriers,
                (first_barrier, first_barrier + barrier_rows.len() as u32 - 1),
                1,
            ));
        }

        // Outcomes and referrals.
        let mut outcomes = Sheet::new(names.outcomes)?;
        if let Some(rows) = outcomes.list(
            &f,
            &[lang.t("Resultat", "Outcome"), lang.t("Besök", "Visits")],
            &self.outcome_counts(lang),
        )? {
            charts.push(one_series(
                ChartType::Column,
                lang.t("Resultat av besöken", "Outcome of the visits"),
                names.outcomes,
                rows,
                1,
            ));
        }
        if let Some(rows) = outcomes.list(
            &f,
            &[
                lang.t("Hänvisad till", "Referred to"),
                lang.t("Besök", "Visits"),
            ],
            &self.referral_counts(),
        )? {
            charts.push(one_series(
                ChartType::Bar,
                lang.t("Hänvisningar per myndighet", "Referrals per agency"),
                names.outcomes,
                rows,
                1,
            ));
        }

        // Who was helped.
        let mut who = Sheet::new(names.who)?;
        for (header, items, title, kind) in [
            (
                lang.t("Åldersgrupp", "Age band"),
                self.age_counts(lang),
                lang.t("Besök per åldersgrupp", "Visits per age band"),
                ChartType::Column,
            ),
            (
                lang.t("Språk", "Language"),
                self.language_counts(),
                lang.t("Besök per språk", "Visits per language"),
                ChartType::Bar,
            ),
            (
                lang.t("Hjälpmedel", "Assistive need"),
                self.assistive_counts(),
                lang.t("Besök per hjälpmedel", "Visits per assistive need"),
                ChartType::Bar,
            ),
        ] {
            if let Some(rows) = who.list(&f, &[header, lang.t("Besök", "Visits")], &items)? {
                charts.push(one_series(kind, title, names.who, rows, 1));
            }
        }

        // Courses by partner.
        let mut courses = Sheet::new(names.courses)?;
        courses.header(
            &f,
            &[
                lang.t("Partner", "Partner"),
                lang.t("Kurser", "Courses"),
                lang.t("Tillfällen", "Sessions"),
                lang.t("Deltagartillfällen", "Participations"),
                lang.t("Deltagare (uppskattat)", "Participants (estimated)"),
            ],
        )?;
        let first_partner = courses.row;
        let partners = self.partner_rows();
        for (partner, figures) in &partners {
            courses.counts(&f, partner, figures)?;
        }
        if !partners.is_empty() {
            let rows = (first_partner, first_partner + partners.len() as u32 - 1);
            let mut chart = Chart::new(ChartType::Column);
            // Participations and participants side by side: how far the
            // estimate is below the sum over sessions.
            for col in [3u16, 4] {
                chart
                    .add_series()
                    .set_categories((names.courses, rows.0, 0, rows.1, 0))
                    .set_values((names.courses, rows.0, col, rows.1, col))
                    .set_name((names.courses, rows.0 - 1, col));
            }
            chart
                .title()
                .set_name(lang.t("Kurser per samarbetspartner", "Courses by partner"));
            charts.push(chart);
        }

        let mut summary = self.summary_sheet(lang, &f, names.summary)?;
        for (i, chart) in charts.iter().enumerate() {
            let i = i as u32;
            let (row, col) = (
                2 + (i / 2) * CHART_ROWS,
                if i.is_multiple_of(2) { 3 } else { 11 },
            );
            summary.insert_chart(row, col, chart)?;
        }
        Ok(vec![
            summary,
            sites.ws,
            agencies.ws,
            barriers.ws,
            outcomes.ws,
            who.ws,
            courses.ws,
        ])
    }

    /// The summary: title, catalogue, the year's key figures (as the HTML
    /// report's summary table); the charts go beside them.
    fn summary_sheet(
        &self,
        lang: Lang,
        f: &Formats,
        name: &'static str,
    ) -> Result<Worksheet, XlsxError> {
        let mut s = Sheet::new(name)?;
        s.ws.set_column_width(1, 14)?;
        let title = format!(
            "{} {} – {}",
            lang.t("Årsrapport", "Annual report"),
            self.year,
            self.org
        );
        s.ws.write_string_with_format(0, 0, title, &f.title)?;
        s.ws.write_string(
            1,
            0,
            format!(
                "{} {}",
                lang.t("Tjänstekatalog:", "Service catalogue:"),
                self.catalogue
            ),
        )?;
        s.row = 3;
        s.header(f, &[lang.t("Mått", "Figure"), lang.t("Värde", "Value")])?;
        for (label, value) in self.key_figures(lang) {
            s.counts(f, label, &[value])?;
        }
        let o = &self.overall.total;
        let row = s.row;
        s.ws.write_string(
            row,
            0,
            lang.t(
                "Andel frågor om andra myndigheters e-tjänster",
                "Share of questions about other agencies' e-services",
            ),
        )?;
        if o.visits > 0 {
            s.ws.write_number_with_format(
                row,
                1,
                o.visits_other_agency as f64 / o.visits as f64,
                &f.percent,
            )?;
        }
        s.ws.write_string(
            row + 2,
            0,
            lang.t("Personer nådda = besök + kursdeltagare, uppskattade som varje kurs största tillfälle.",
                "People reached = visits + course participants, estimated as each course's largest session.",
            ),
        )?;
        Ok(s.ws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportBuilder;
    use outpost_proto::catalogue::Catalogue;
    use outpost_proto::sites::SiteList;

    #[test]
    fn the_sheets_have_their_names_and_the_summary_its_charts() {
        let catalogue = Catalogue::builtin();
        let mut b = ReportBuilder::new(&catalogue, &SiteList::default(), 2025);
        let visit = outpost_proto::fixtures::visit("mjolby");
        b.add(&visit);
        let report = b.finish("mjolby", "inbyggd");
        for lang in [Lang::Sv, Lang::En] {
            let mut sheets = report.xlsx_sheets(lang).unwrap();
            let names: Vec<String> = sheets.iter_mut().map(|s| s.name()).collect();
            assert_eq!(names.len(), 7, "{names:?}");
            assert!(names.iter().all(|n| n.chars().count() <= 31), "{names:?}");
            assert!(!names.iter().any(|n| n == "Visits" || n == "Courses"));
        }
    }
}
