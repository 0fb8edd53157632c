//! The dashboard's pages (maud escapes every interpolated value; the
//! report's sections come from `outpost_files::report` already escaped).
//! Every page is complete without a script: filters are GET forms, the
//! language switch and signing out are POST forms with the CSRF token.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Local};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use outpost_hub_db::DeviceInfo;
use outpost_proto::{Body, Record};
use outpost_web_kit::{Lang, html_response, value_label};

use crate::{Ctx, FILES, Org, PAGE_SIZE, RecordsQuery, SIGNIN_PATH};

const CSS: &str = "/dashboard/assets/app.css";

fn head(title: &str) -> Markup {
    outpost_web_kit::head(title, CSS, &[])
}

/// A page for someone who may not come in, or a request that cannot be
/// answered: why, and what to do.
pub(crate) fn refused(lang: Lang, status: StatusCode, title: &str, text: &str) -> Response {
    outpost_web_kit::refused(
        lang,
        status,
        head(title),
        title,
        text,
        html! {
            p { a href=(SIGNIN_PATH) { (lang.t("Till inloggningen", "To signing in")) } }
        },
    )
}

pub(crate) fn not_found(lang: Lang) -> Response {
    let title = lang.t("Sidan finns inte", "No such page");
    outpost_web_kit::refused(
        lang,
        StatusCode::NOT_FOUND,
        head(title),
        title,
        lang.t(
            "Det finns ingen sådan sida, eller så får ditt konto inte se den.",
            "There is no such page, or your account may not see it.",
        ),
        html! { p { a href=(crate::PREFIX) { (lang.t("Till översikten", "To the overview")) } } },
    )
}

pub(crate) fn bad_request(lang: Lang, text: &str) -> Response {
    let title = lang.t("Det gick inte", "That did not work");
    outpost_web_kit::refused(
        lang,
        StatusCode::BAD_REQUEST,
        head(title),
        title,
        text,
        html! {},
    )
}

/// The language switch, usable signed in or not.
fn lang_switch(lang: Lang, back: &str, csrf: Option<&str>) -> Markup {
    html! {
        form.lang method="post" action="/dashboard/lang" {
            @if let Some(csrf) = csrf { input type="hidden" name="csrf" value=(csrf); }
            input type="hidden" name="lang" value=(lang.other().code());
            input type="hidden" name="back" value=(back);
            button type="submit" lang=(lang.other().code()) { (lang.switch_label()) }
        }
    }
}

/// The frame of a signed-in page. `back` is this page's address (where
/// the language switch returns to).
fn layout(ctx: &Ctx, title: &str, back: &str, body: Markup) -> Response {
    let lang = ctx.lang;
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body {
                a.skip href="#main" { (lang.t("Hoppa till innehållet", "Skip to content")) }
                header.top {
                    div.who {
                        strong { "Outpost" }
                        span { (lang.t("Navets översikt för samordnare", "The hub's dashboard for coordinators")) }
                    }
                    nav aria-label=(lang.t("Huvudmeny", "Main menu")) {
                        a href=(crate::PREFIX) aria-current=[(back == crate::PREFIX).then_some("page")] {
                            (lang.t("Organisationer", "Organisations"))
                        }
                    }
                    (lang_switch(lang, back, Some(&ctx.csrf)))
                    form method="post" action="/dashboard/signout" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        button.secondary type="submit" { (lang.t("Logga ut", "Sign out")) }
                    }
                }
                main #main { (body) }
            }
        }
    };
    html_response(page)
}

pub(crate) fn signin(lang: Lang, pre: &str, code: &str, error: Option<&str>) -> Response {
    let title = lang.t("Logga in", "Sign in");
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body {
                header.top {
                    div.who { strong { "Outpost" } span { (lang.t("Navets översikt", "The hub's dashboard")) } }
                    (lang_switch(lang, SIGNIN_PATH, None))
                }
                main #main .narrow {
                    h1 { (title) }
                    @if let Some(error) = error {
                        p.error role="alert" { (error) }
                    }
                    @if code.is_empty() {
                        p { (lang.t(
                            "Skriv koden som kommandot `outpost admin signin` gav dig. Den gäller i 15 minuter och bara en gång.",
                            "Type the code the command `outpost admin signin` gave you. It works once, for 15 minutes."
                        )) }
                    } @else {
                        p { (lang.t(
                            "Tryck på knappen för att logga in med koden från länken.",
                            "Press the button to sign in with the code from the link."
                        )) }
                    }
                    form method="post" action=(SIGNIN_PATH) {
                        input type="hidden" name="csrf" value=(pre);
                        div.field {
                            label for="code" { (lang.t("Inloggningskod", "Sign-in code")) }
                            input #code .code-input type="text" name="code" value=(code)
                                autocomplete="one-time-code" autocapitalize="characters"
                                spellcheck="false" required aria-describedby="code-help";
                            p.help #code-help { (lang.t(
                                "Till exempel ABCD-EFGH-JKMN-PQRS. Stora eller små bokstäver, med eller utan bindestreck.",
                                "For example ABCD-EFGH-JKMN-PQRS. Upper or lower case, with or without dashes."
                            )) }
                        }
                        div.buttons { button type="submit" { (lang.t("Logga in", "Sign in")) } }
                    }
                }
            }
        }
    };
    html_response(page)
}

pub(crate) fn home(ctx: &Ctx, orgs: &[(String, String)]) -> Response {
    let lang = ctx.lang;
    let body = html! {
        h1 { (lang.t("Organisationer", "Organisations")) }
        @if orgs.is_empty() {
            p.empty { (lang.t(
                "Ditt konto får inte se någon organisation ännu.",
                "Your account may not see any organisation yet."
            )) }
        } @else {
            ul {
                @for (slug, name) in orgs {
                    li { a href=(format!("/dashboard/orgs/{slug}")) { (name) } " (" (slug) ")" }
                }
            }
        }
    };
    layout(
        ctx,
        lang.t("Organisationer", "Organisations"),
        crate::PREFIX,
        body,
    )
}

/// The org's own menu: overview, records, devices.
fn org_nav(lang: Lang, org: &Org, here: &str) -> Markup {
    let base = format!("/dashboard/orgs/{}", org.slug);
    let items = [
        ("", lang.t("Översikt och filer", "Overview and files")),
        ("/records", lang.t("Poster", "Records")),
        ("/devices", lang.t("Enheter", "Devices")),
    ];
    html! {
        nav.dash-nav aria-label=(lang.t("Organisationens sidor", "The organisation's pages")) {
            @for (path, label) in items {
                a href=(format!("{base}{path}")) aria-current=[(here == path).then_some("page")] { (label) }
            }
        }
    }
}

fn number(lang: Lang, n: u64) -> String {
    outpost_files::report::number(n, lang)
}

pub(crate) fn overview(
    ctx: &Ctx,
    org: &Org,
    year: i32,
    figures: &[(&'static str, u64)],
    report_body: &str,
) -> Response {
    let lang = ctx.lang;
    let base = format!("/dashboard/orgs/{}", org.slug);
    let this_year = chrono::Datelike::year(&Local::now());
    let body = html! {
        h1 { (org.name) " – " (year) }
        (org_nav(lang, org, ""))
        form.filters method="get" action=(base) {
            label for="year" { (lang.t("År", "Year"))
                select #year name="year" {
                    @for y in (this_year - 5..=this_year).rev() {
                        option value=(y) selected[y == year] { (y) }
                    }
                }
            }
            button type="submit" { (lang.t("Visa", "Show")) }
        }
        h2 { (lang.t("Nyckeltal", "Key figures")) }
        ul.figures {
            @for (label, n) in figures {
                li { span.n { (number(lang, *n)) } (label) }
            }
        }
        h2 { (lang.t("Hämta filer", "Download files")) }
        ul.downloads {
            @for (name, _) in FILES {
                li { a href=(format!("{base}/download/{name}?year={year}")) { (file_label(lang, name)) " (" (year) ")" } }
            }
        }
        section.report aria-label=(lang.t("Årsrapportens diagram och tabeller", "The annual report's charts and tables")) {
            (PreEscaped(report_body))
        }
    };
    let back = if year == this_year {
        base.clone()
    } else {
        format!("{base}?year={year}")
    };
    layout(ctx, &org.name, &back, body)
}

fn file_label(lang: Lang, name: &str) -> &'static str {
    match name {
        "visits.csv" => lang.t("Besök som CSV", "Visits as CSV"),
        "courses.csv" => lang.t("Kurser som CSV", "Courses as CSV"),
        "records.xlsx" => lang.t(
            "Alla poster som Excel (XLSX)",
            "All records as Excel (XLSX)",
        ),
        "report.html" => lang.t(
            "Årsrapporten som webbsida (HTML)",
            "The annual report as a web page (HTML)",
        ),
        _ => lang.t(
            "Årsrapporten som Excel (XLSX)",
            "The annual report as Excel (XLSX)",
        ),
    }
}

/// One line about a record: what was helped with, and how it went.
fn what(lang: Lang, r: &Record) -> String {
    match &r.body {
        Body::Visit(v) => {
            let topic = if v.services.is_empty() {
                value_label(lang, "category", v.category.as_str())
            } else {
                v.services.join(", ")
            };
            format!(
                "{topic} · {}",
                value_label(lang, "outcome", v.outcome.as_str())
            )
        }
        Body::Course(c) => c.title.clone(),
    }
}

fn query_string(q: &RecordsQuery, page: usize) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("kind", &q.kind),
        ("from", &q.from),
        ("to", &q.to),
        ("site", &q.site),
    ] {
        if let Some(v) = crate::nonblank(v) {
            parts.push(format!("{k}={}", encode(v)));
        }
    }
    parts.push(format!("page={page}"));
    parts.join("&")
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(crate) fn records(
    ctx: &Ctx,
    org: &Org,
    q: &RecordsQuery,
    rows: &[Record],
    more: bool,
    error: Option<&str>,
) -> Response {
    let lang = ctx.lang;
    let base = format!("/dashboard/orgs/{}/records", org.slug);
    let page = q.page.unwrap_or(1).max(1);
    let kind = crate::nonblank(&q.kind).unwrap_or("");
    let first = (page - 1) * PAGE_SIZE + 1;
    let body = html! {
        h1 { (org.name) " – " (lang.t("Poster", "Records")) }
        (org_nav(lang, org, "/records"))
        form.filters method="get" action=(base) {
            label for="kind" { (lang.t("Typ", "Kind"))
                select #kind name="kind" {
                    option value="" selected[kind.is_empty()] { (lang.t("Alla", "All")) }
                    option value="visit" selected[kind == "visit"] { (lang.t("Besök", "Visits")) }
                    option value="course" selected[kind == "course"] { (lang.t("Kurser", "Courses")) }
                }
            }
            label for="from" { (lang.t("Från", "From"))
                input #from type="date" name="from" value=(crate::nonblank(&q.from).unwrap_or(""));
            }
            label for="to" { (lang.t("Till", "To"))
                input #to type="date" name="to" value=(crate::nonblank(&q.to).unwrap_or(""));
            }
            label for="site" { (lang.t("Plats", "Site"))
                input #site type="text" name="site" value=(crate::nonblank(&q.site).unwrap_or(""))
                    list="sites";
            }
            datalist #sites {
                @for s in &org.config.sites { option value=(s) {} }
            }
            button type="submit" { (lang.t("Filtrera", "Filter")) }
        }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        @if rows.is_empty() {
            p.empty { (lang.t("Inga poster passar filtret.", "No records match the filter.")) }
        } @else {
            table.rec {
                caption { (lang.t("Poster", "Records")) " " (first) "–" (first + rows.len() - 1) }
                thead { tr {
                    th scope="col" { (lang.t("Datum", "Date")) }
                    th scope="col" { (lang.t("Typ", "Kind")) }
                    th scope="col" { (lang.t("Plats", "Site")) }
                    th scope="col" { (lang.t("Vad", "What")) }
                    th scope="col" .num { (lang.t("Minuter / tillfällen", "Minutes / sessions")) }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.date_range().map(|(f, t)| if f == t { f.to_string() } else { format!("{f} – {t}") }).unwrap_or_default()) }
                            td { (match &r.body { Body::Visit(_) => lang.t("Besök", "Visit"), Body::Course(_) => lang.t("Kurs", "Course") }) }
                            td { (r.site) }
                            td { (what(lang, r)) }
                            td.num { (match &r.body { Body::Visit(v) => v.minutes.to_string(), Body::Course(c) => c.sessions.len().to_string() }) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label=(lang.t("Sidor", "Pages")) {
            @if page > 1 {
                a href=(format!("{base}?{}", query_string(q, page - 1))) rel="prev" { (lang.t("Föregående sida", "Previous page")) }
            }
            span { (lang.t("Sida", "Page")) " " (page) }
            @if more {
                a href=(format!("{base}?{}", query_string(q, page + 1))) rel="next" { (lang.t("Nästa sida", "Next page")) }
            }
        }
    };
    let back = format!("{base}?{}", query_string(q, page));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (
        status,
        layout(ctx, lang.t("Poster", "Records"), &back, body),
    )
        .into_response()
}

/// A time from storage (RFC 3339) in the hub's local time.
fn local(ts: &str) -> String {
    DateTime::parse_from_rfc3339(ts)
        .map(|t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| ts.to_string())
}

fn offset(lang: Lang, secs: i64) -> String {
    let abs = secs.unsigned_abs();
    let text = if abs < 120 {
        format!("{abs} s")
    } else if abs < 7200 {
        format!("{} min", abs / 60)
    } else {
        format!("{} h", abs / 3600)
    };
    match secs.signum() {
        1 => format!("{text} {}", lang.t("före", "ahead")),
        -1 => format!("{text} {}", lang.t("efter", "behind")),
        _ => lang.t("rätt", "on time").to_string(),
    }
}

pub(crate) fn devices(ctx: &Ctx, org: &Org, list: &[DeviceInfo]) -> Response {
    let lang = ctx.lang;
    let body = html! {
        h1 { (org.name) " – " (lang.t("Enheter", "Devices")) }
        (org_nav(lang, org, "/devices"))
        @if list.is_empty() {
            p.empty { (lang.t("Inga enheter är anslutna ännu.", "No devices are enrolled yet.")) }
        } @else {
            table.rec {
                caption { (lang.t("Anslutna enheter", "Enrolled devices")) }
                thead { tr {
                    th scope="col" { (lang.t("Namn", "Name")) }
                    th scope="col" { (lang.t("Plats", "Site")) }
                    th scope="col" { (lang.t("Personal", "Staff")) }
                    th scope="col" { (lang.t("Senast sedd", "Last seen")) }
                    th scope="col" { (lang.t("Väntar på att skickas", "Records waiting")) }
                    th scope="col" { (lang.t("Klocka", "Clock")) }
                    th scope="col" { (lang.t("Status", "State")) }
                } }
                tbody {
                    @for d in list {
                        tr {
                            // The name the laptop gave itself; the id (what
                            // `outpost admin revoke` takes a prefix of) below.
                            td {
                                (d.name.as_deref().unwrap_or("–"))
                                br;
                                span.tech { (d.id) }
                            }
                            td { (d.site.as_deref().unwrap_or("–")) }
                            td { (d.staff.as_deref().unwrap_or("–")) }
                            td { (d.last_seen.as_deref().map(local).unwrap_or_else(|| lang.t("aldrig", "never").to_string())) }
                            td.num {
                                @match d.waiting {
                                    Some(0) => "0",
                                    Some(n) => strong.warn { (n) },
                                    None => "–",
                                }
                            }
                            td { (d.clock_offset_secs.map(|s| offset(lang, s)).unwrap_or_default()) }
                            td {
                                @if d.revoked {
                                    strong { (lang.t("Spärrad", "Revoked")) }
                                } @else if d.clock_flag {
                                    strong.warn { (lang.t("Klockan går fel (mer än ett dygn)", "Clock wrong (more than a day)")) }
                                } @else {
                                    (lang.t("Aktiv", "Active"))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(
        ctx,
        lang.t("Enheter", "Devices"),
        &format!("/dashboard/orgs/{}/devices", org.slug),
        body,
    )
}
