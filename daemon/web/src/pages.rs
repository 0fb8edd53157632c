//! The pages, rendered on the server with maud (every interpolated value
//! is HTML-escaped). Field labels and help come from `proto::schema`, the
//! table the CLI's flags come from; the allowed values of an enum field
//! are its one-tap choices.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Local};
use maud::{DOCTYPE, Markup, html};
use outpost_proto::Body;
use outpost_proto::catalogue::Catalogue;
use outpost_proto::record::{AgeBand, Assistive, BarrierKind, Category, Channel, Outcome};
use outpost_proto::schema::{self, Scope};
use outpost_proto::sites::SiteList;
use outpost_proto::sync::FailureKind;
use outpost_store::store::{Identity, Store, StoreError, StoredRecord};

use crate::form::VisitForm;
use crate::i18n::{self, Lang, value_label};
use crate::security::Sess;

pub fn html(page: Markup) -> Response {
    Html(page.into_string()).into_response()
}

/// A field's label from the schema (visit fields first, then common).
pub fn label(lang: Lang, field: &str) -> String {
    schema::field(Scope::Visit, field)
        .or_else(|| schema::field(Scope::Common, field))
        .map(|d| lang.t2(d.label).to_string())
        .unwrap_or_else(|| field.to_string())
}

fn help(lang: Lang, field: &str) -> &'static str {
    schema::field(Scope::Visit, field)
        .map(|d| lang.t2(d.help))
        .unwrap_or("")
}

fn head(title: &str) -> Markup {
    outpost_web_kit::head(title, "/assets/app.css", &["/assets/app.js"])
}

/// A page for someone who may not come in (no session, wrong address,
/// used link): says why and what to do, nothing more.
pub fn refused(
    lang: Lang,
    status: StatusCode,
    sv_title: &str,
    en_title: &str,
    sv_text: &str,
    en_text: &str,
) -> Response {
    let title = lang.t(sv_title, en_title);
    outpost_web_kit::refused(
        lang,
        status,
        head(title),
        title,
        lang.t(sv_text, en_text),
        html! {},
    )
}

/// The page frame. `here` is the menu entry of the page (`new`, `home`,
/// `courses`, `conflicts`, `settings`) or, for a page below one, its own
/// path (where the language switch returns to).
pub(crate) fn layout(
    sess: &Sess,
    identity: &Identity,
    title: &str,
    here: &str,
    body: Markup,
) -> Markup {
    let lang = sess.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(title))
            body {
                a.skip href="#main" { (lang.t("Hoppa till innehållet", "Skip to content")) }
                header.top {
                    div.who {
                        strong { "Outpost" }
                        span { (identity.site) " · " (identity.staff) }
                    }
                    nav aria-label=(lang.t("Huvudmeny", "Main menu")) {
                        a href="/visits/new" aria-current=[(here == "new").then_some("page")] {
                            (lang.t("Nytt besök", "New visit"))
                        }
                        a href="/" aria-current=[(here == "home").then_some("page")] {
                            (lang.t("Idag och senaste", "Today and recent"))
                        }
                        a href="/courses" aria-current=[(here == "courses").then_some("page")] {
                            (lang.t("Kurser", "Courses"))
                        }
                        a href="/conflicts" aria-current=[(here == "conflicts").then_some("page")] {
                            (lang.t("Konflikter", "Conflicts"))
                        }
                        a href="/settings" aria-current=[(here == "settings").then_some("page")] {
                            (lang.t("Inställningar", "Settings"))
                        }
                    }
                    form.lang method="post" action="/lang" {
                        input type="hidden" name="csrf" value=(sess.csrf);
                        input type="hidden" name="lang" value=(lang.other().code());
                        input type="hidden" name="back" value=(here_path(here));
                        button type="submit" lang=(lang.other().code()) {
                            (lang.t("In English", "På svenska"))
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

fn here_path(here: &str) -> &str {
    match here {
        "new" => "/visits/new",
        "courses" => "/courses",
        "conflicts" => "/conflicts",
        "settings" => "/settings",
        path if path.starts_with('/') => path,
        _ => "/",
    }
}

/// The one-line summary of a visit or course.
pub fn summary(lang: Lang, r: &StoredRecord) -> String {
    let today = Local::now().date_naive();
    match &r.record.body {
        Body::Visit(v) => {
            let mut parts = vec![match v.time {
                Some(t) => format!("{} {}", i18n::day(lang, v.date, today), t.format("%H:%M")),
                None => i18n::day(lang, v.date, today),
            }];
            parts.push(format!("{} min", v.minutes));
            if v.services.is_empty() {
                parts.push(value_label(lang, "category", v.category.as_str()));
            } else {
                parts.push(v.services.join(", "));
            }
            parts.push(value_label(lang, "outcome", v.outcome.as_str()));
            parts.push(format!(
                "{} {}",
                value_label(lang, "age_band", v.age_band.as_str()),
                lang.t("år", "years")
            ));
            parts.push(i18n::language_name(lang, &v.language));
            parts.join(" · ")
        }
        Body::Course(c) => {
            let n = c.sessions.len();
            format!(
                "{} · {} {}",
                c.title,
                n,
                if n == 1 {
                    lang.t("tillfälle", "session")
                } else {
                    lang.t("tillfällen", "sessions")
                }
            )
        }
    }
}

fn saved_notice(lang: Lang, r: &StoredRecord, catalogue: Option<&Catalogue>) -> Markup {
    let unknown: Vec<&str> = match (&r.record.body, catalogue) {
        (Body::Visit(v), Some(c)) => v
            .services
            .iter()
            .filter(|s| c.lookup(s).is_none())
            .map(String::as_str)
            .collect(),
        _ => vec![],
    };
    html! {
        div.saved #saved role="status" {
            p {
                strong { (lang.t("Sparat: ", "Saved: ")) }
                (summary(lang, r)) " "
                a href=(format!("/visits/{}/edit", r.record.id)) {
                    (lang.t("Ändra", "Edit"))
                    span.sr { " " (lang.t("det sparade besöket", "the saved visit")) }
                }
            }
            @if !unknown.is_empty() {
                p.warn {
                    (lang.t("Finns inte i tjänstekatalogen: ", "Not in the service catalogue: "))
                    (unknown.join(", "))
                    (lang.t(" (räknas som okänd myndighet; ändra om det är felstavat).", " (counted as agency unknown; edit it if misspelled)."))
                }
            }
        }
    }
}

// ---- "Is my data safe?" ----

/// What the banner says, read from the store and the settings.
#[derive(Debug, Clone)]
pub struct Safety {
    pub identity: Identity,
    pub records: u64,
    pub pending: u64,
    pub enrolled: bool,
    pub last_success: Option<DateTime<FixedOffset>>,
    pub last_error: Option<String>,
    pub last_error_kind: Option<FailureKind>,
    /// Records with unresolved concurrent values (the conflicts page).
    pub conflicts: u64,
}

pub fn safety(store: &Store, hub_configured: bool) -> Result<Safety, StoreError> {
    let counts = store.counts()?;
    let sync = store.sync_status()?;
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    Ok(Safety {
        identity: store.identity().clone(),
        records: counts.records,
        pending: counts.pending,
        enrolled: hub_configured && store.hub_token()?.is_some(),
        last_success: parse(&sync.last_success),
        last_error: sync.last_error,
        last_error_kind: sync.last_error_kind,
        conflicts: store.conflicted_count()?,
    })
}

fn banner(lang: Lang, s: &Safety) -> Markup {
    let now = Local::now();
    let n = i18n::number(lang, s.pending);
    let all = i18n::number(lang, s.records);
    let ok = s.enrolled && s.pending == 0 && s.last_error.is_none();
    html! {
        section #sync-banner .banner .ok[ok] .warn[!ok] aria-labelledby="safe-h" {
            h2 #safe-h { (lang.t("Är mina uppgifter säkra?", "Is my data safe?")) }
            @if !s.enrolled {
                p #sync-only-here {
                    (match lang {
                        Lang::Sv if s.records == 0 => "Inga poster ännu. Den här datorn är inte ansluten till någon hubb, så det du sparar finns bara här.".to_string(),
                        Lang::En if s.records == 0 => "No records yet. This laptop is not connected to a hub, so what you save stays only here.".to_string(),
                        Lang::Sv if s.records == 1 => "Den enda posten finns bara på den här datorn: den är inte ansluten till någon hubb.".to_string(),
                        Lang::En if s.records == 1 => "The one record is only on this laptop: it is not connected to a hub.".to_string(),
                        Lang::Sv => format!("Alla {all} poster finns bara på den här datorn: den är inte ansluten till någon hubb."),
                        Lang::En => format!("All {all} records are only on this laptop: it is not connected to a hub."),
                    })
                }
                p { (lang.t("Be din samordnare om en inbjudningskod för att ansluta datorn.", "Ask your coordinator for an enrolment code to connect this laptop.")) }
            } @else {
                p #sync-only-here {
                    @if s.pending == 0 {
                        (lang.t("Alla poster finns också på hubben.", "Every record is also on the hub."))
                    } @else {
                        (match lang {
                            Lang::Sv if s.pending == 1 => "1 post finns bara på den här datorn (den skickas vid nästa synkning).".to_string(),
                            Lang::En if s.pending == 1 => "1 record is only on this laptop (it goes at the next sync).".to_string(),
                            Lang::Sv => format!("{n} poster finns bara på den här datorn (de skickas vid nästa synkning)."),
                            Lang::En => format!("{n} records are only on this laptop (they go at the next sync)."),
                        })
                    }
                }
                p #sync-last {
                    (lang.t("Senaste kontakt med hubben: ", "Last reached the hub: "))
                    @match s.last_success {
                        Some(t) => { (i18n::relative(lang, t, now)) }
                        None => { (lang.t("aldrig", "never")) }
                    }
                }
                @if let Some(err) = &s.last_error {
                    div #sync-error {
                        @match s.last_error_kind {
                            Some(FailureKind::NeedsPerson) => {
                                p { strong { (lang.t("Synkningen har stoppats och behöver hjälp.", "Syncing has stopped and needs help.")) } }
                                p { (lang.t("Posterna ligger kvar säkert på datorn. Kontakta din samordnare och visa meddelandet nedan.", "The records stay safe on this laptop. Contact your coordinator and show them the message below.")) }
                            }
                            _ => {
                                p { strong { (lang.t("Hubben gick inte att nå senast.", "The hub could not be reached last time.")) } }
                                p { (lang.t("Ingen fara: posterna ligger kvar säkert på datorn och skickas av sig själva när nätet fungerar igen. Du behöver inte göra något.", "No harm done: the records stay safe on this laptop and go by themselves once the network works again. Nothing to do.")) }
                            }
                        }
                        details {
                            summary { (lang.t("Tekniska detaljer", "Technical details")) }
                            p.tech { (err) }
                        }
                    }
                }
            }
            @if s.conflicts > 0 {
                p #sync-conflicts {
                    strong {
                        (match lang {
                            Lang::Sv if s.conflicts == 1 => "1 post har ändrats på två datorer samtidigt. ".to_string(),
                            Lang::En if s.conflicts == 1 => "1 record was changed on two laptops at once. ".to_string(),
                            Lang::Sv => format!("{} poster har ändrats på två datorer samtidigt. ", i18n::number(lang, s.conflicts)),
                            Lang::En => format!("{} records were changed on two laptops at once. ", i18n::number(lang, s.conflicts)),
                        })
                    }
                    a href="/conflicts" { (lang.t("Granska och välj värde", "Review and choose a value")) }
                }
            }
        }
    }
}

// ---- today and recent ----

pub fn home(
    sess: &Sess,
    safety: &Safety,
    recent: &[StoredRecord],
    saved: Option<&StoredRecord>,
    deleted: bool,
) -> Markup {
    let lang = sess.lang;
    let today = Local::now().date_naive();
    let (todays, earlier): (Vec<&StoredRecord>, Vec<&StoredRecord>) =
        recent.iter().partition(|r| match &r.record.body {
            Body::Visit(v) => v.date == today,
            Body::Course(c) => c.sessions.iter().any(|s| s.date == today),
        });
    let list = |items: &[&StoredRecord], id: &str| {
        html! {
            @if items.is_empty() {
                p.empty { (lang.t("Inga ännu.", "None yet.")) }
            } @else {
                ul.records #(id) {
                    @for r in items {
                        li data-id=(r.record.id) {
                            span.what { (summary(lang, r)) }
                            span.by { " · " (r.record.staff) }
                            @if matches!(r.record.body, Body::Visit(_)) {
                                " "
                                a href=(format!("/visits/{}/edit", r.record.id)) {
                                    (lang.t("Ändra", "Edit"))
                                    span.sr { " " (summary(lang, r)) }
                                }
                            } @else {
                                " "
                                a href=(format!("/courses/{}", r.record.id)) {
                                    (lang.t("Tillfällen", "Sessions"))
                                    span.sr { " " (summary(lang, r)) }
                                }
                            }
                            " "
                            a href=(format!("/records/{}/delete", r.record.id)) {
                                (lang.t("Radera", "Delete"))
                                span.sr { " " (summary(lang, r)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { (lang.t("Idag och senaste", "Today and recent")) }
        @if let Some(r) = saved { (saved_notice(lang, r, None)) }
        @if deleted {
            p.saved role="status" { (lang.t("Posten är raderad.", "The record was erased.")) }
        }
        (banner(lang, safety))
        p { a.button href="/visits/new" { (lang.t("Registrera ett nytt besök", "Record a new visit")) } }
        h2 { (lang.t("Idag", "Today")) }
        (list(&todays, "today"))
        h2 { (lang.t("De senaste två veckorna", "The last two weeks")) }
        (list(&earlier, "recent"))
    };
    layout(
        sess,
        &safety.identity,
        lang.t("Idag och senaste", "Today and recent"),
        "home",
        body,
    )
}

// ---- the visit form ----

pub struct FormPage<'a> {
    pub sess: &'a Sess,
    pub identity: &'a Identity,
    pub values: &'a VisitForm,
    /// (field, message) in the page's language.
    pub errors: &'a [(String, String)],
    /// Editing this record (its id); None for a new visit.
    pub edit: Option<&'a str>,
    /// The visit just saved, shown as one line above the new form.
    pub saved: Option<&'a StoredRecord>,
    pub has_last: bool,
    pub catalogue: &'a Catalogue,
    /// The organisation's site list from the hub (empty when none), offered
    /// in the site field.
    pub sites: &'a SiteList,
    /// The site shown when the form has none: the laptop's for a new
    /// visit, the record's when editing.
    pub site_default: &'a str,
}

fn error_for<'a>(errors: &'a [(String, String)], field: &str) -> Vec<&'a str> {
    errors
        .iter()
        .filter(|(f, _)| f == field)
        .map(|(_, m)| m.as_str())
        .collect()
}

fn field_errors(errors: &[(String, String)], field: &str) -> Markup {
    let errs = error_for(errors, field);
    html! {
        @for e in &errs {
            p.error id=(format!("err-{field}")) { (e) }
        }
    }
}

fn describedby(errors: &[(String, String)], field: &str, extra: &str) -> String {
    let mut ids = vec![format!("help-{field}")];
    if !error_for(errors, field).is_empty() {
        ids.push(format!("err-{field}"));
    }
    if !extra.is_empty() {
        ids.push(extra.to_string());
    }
    ids.join(" ")
}

fn required_mark(lang: Lang) -> Markup {
    html! { span.req { " (" (lang.t("obligatorisk", "required")) ")" } }
}

/// One-tap choices for an enum field: a radio group.
fn choices(
    lang: Lang,
    field: &str,
    values: &[&str],
    current: &str,
    errors: &[(String, String)],
) -> Markup {
    let invalid = !error_for(errors, field).is_empty();
    html! {
        fieldset.choices #(format!("f-{field}")) aria-describedby=(describedby(errors, field, "")) aria-invalid=[invalid.then_some("true")] {
            legend { (label(lang, field)) (required_mark(lang)) }
            p.help id=(format!("help-{field}")) { (help(lang, field)) }
            (field_errors(errors, field))
            div.opts {
                @for v in values {
                    label.opt {
                        input type="radio" name=(field) value=(v) checked[*v == current] required;
                        span { (value_label(lang, field, v)) }
                    }
                }
            }
        }
    }
}

pub fn visit_form(p: &FormPage<'_>) -> Markup {
    let lang = p.sess.lang;
    let v = p.values;
    let errs = p.errors;
    let title = match p.edit {
        Some(_) => lang.t("Ändra besök", "Edit visit"),
        None => lang.t("Nytt besök", "New visit"),
    };
    let action = match p.edit {
        Some(id) => format!("/visits/{id}"),
        None => "/visits".to_string(),
    };
    let more_open = v.services.iter().skip(1).any(|s| !s.trim().is_empty())
        || v.row_barriers
            .iter()
            .any(|(k, n)| !k.is_empty() || !n.is_empty())
        || !v.barriers.is_empty()
        || !v.referred_to.is_empty()
        || !v.assistive.is_empty()
        || ["services", "barriers", "referred_to", "assistive"]
            .iter()
            .any(|f| !error_for(errs, f).is_empty());
    let first_focus = errs.is_empty();
    let body = html! {
        h1 { (title) }
        @if let Some(r) = p.saved { (saved_notice(lang, r, Some(p.catalogue))) }
        @if !errs.is_empty() {
            div.errors #errors role="alert" tabindex="-1" autofocus {
                h2 { (lang.t("Besöket sparades inte", "The visit was not saved")) }
                ul {
                    @for (field, msg) in errs {
                        li { a href=(format!("#f-{field}")) { (msg) } }
                    }
                }
            }
        }
        @if p.edit.is_none() && p.has_last {
            p.same { a href="/visits/new?same=1" #same-as-last { (lang.t("Samma som förra besöket", "Same as last visit")) } }
        }
        form #visit method="post" action=(action) {
            input type="hidden" name="csrf" value=(p.sess.csrf);
            fieldset.when {
                legend { (lang.t("När", "When")) }
                div.row {
                    div.field {
                        label for="f-date" { (label(lang, "date")) (required_mark(lang)) }
                        input #f-date type="date" name="date" value=(v.date) required aria-describedby=(describedby(errs, "date", ""));
                        p.help #help-date { (help(lang, "date")) }
                        (field_errors(errs, "date"))
                    }
                    div.field {
                        label for="f-time" { (label(lang, "time")) }
                        input #f-time type="time" name="time" value=(v.time) aria-describedby=(describedby(errs, "time", ""));
                        p.help #help-time { (help(lang, "time")) }
                        (field_errors(errs, "time"))
                    }
                    div.field {
                        label for="f-minutes" { (label(lang, "minutes")) (required_mark(lang)) }
                        input #f-minutes .short type="number" name="minutes" inputmode="numeric" min="1" max="480" value=(v.minutes) required autofocus[first_focus] aria-describedby=(describedby(errs, "minutes", "")) aria-invalid=[(!error_for(errs, "minutes").is_empty()).then_some("true")];
                        p.help #help-minutes { (help(lang, "minutes")) }
                        (field_errors(errs, "minutes"))
                    }
                }
            }
            div.field #f-services {
                label for="f-service-0" { (label(lang, "services")) }
                input #f-service-0 .service type="text" name="services" list="services-list" autocomplete="off" value=(v.service(0)) data-row="0" aria-describedby=(describedby(errs, "services", "svc-hint-0"));
                p.help #help-services { (help(lang, "services")) }
                p.hint #svc-hint-0 aria-live="polite" {}
                (field_errors(errs, "services"))
            }
            (choices(lang, "category", Category::NAMES, &v.category, errs))
            (choices(lang, "outcome", Outcome::NAMES, &v.outcome, errs))
            (choices(lang, "age_band", AgeBand::NAMES, &v.age_band, errs))
            (choices(lang, "channel", Channel::NAMES, &v.channel, errs))
            div.field #f-language {
                label for="f-lang" { (label(lang, "language")) (required_mark(lang)) }
                input #f-lang .short type="text" name="language" list="language-list" value=(v.language) required maxlength="2" autocomplete="off" aria-describedby=(describedby(errs, "language", ""));
                p.help #help-language { (help(lang, "language")) }
                (field_errors(errs, "language"))
            }
            details #more open[more_open] {
                summary { (lang.t("Fler tjänster, hinder, hänvisning, hjälpmedel", "More services, barriers, referral, assistive aids")) }
                fieldset {
                    legend { (lang.t("Fler tjänster", "More services")) }
                    @for i in 1..v.service_rows() {
                        div.field {
                            label for=(format!("f-service-{i}")) { (lang.t("Tjänst", "Service")) " " (i + 1) }
                            input id=(format!("f-service-{i}")) .service type="text" name="services" list="services-list" autocomplete="off" value=(v.service(i)) data-row=(i) aria-describedby=(format!("svc-hint-{i}"));
                            p.hint id=(format!("svc-hint-{i}")) aria-live="polite" {}
                        }
                    }
                }
                fieldset #f-barriers {
                    legend { (label(lang, "barriers")) }
                    p.help #help-barriers { (lang.t("Vad stod i vägen i respektive tjänst? Välj för den tjänst det gällde.", "What got in the way in each service? Pick it for the service concerned.")) }
                    (field_errors(errs, "barriers"))
                    @for i in 0..v.service_rows() {
                        @let (kind, note) = v.row_barrier(i);
                        div.row.barrier {
                            div.field {
                                label for=(format!("f-bk-{i}")) .bk-label data-row=(i) {
                                    (lang.t("Hinder i tjänst", "Barrier in service")) " " (i + 1)
                                }
                                select id=(format!("f-bk-{i}")) name="barrier_kind" {
                                    option value="" selected[kind.is_empty()] { (lang.t("Inget hinder", "No barrier")) }
                                    @for k in BarrierKind::NAMES {
                                        option value=(k) selected[*k == kind] { (value_label(lang, "barrier", k)) }
                                    }
                                }
                            }
                            div.field {
                                label for=(format!("f-bn-{i}")) { (lang.t("Om hindret (valfritt)", "About the barrier (optional)")) }
                                input id=(format!("f-bn-{i}")) type="text" name="barrier_note" value=(note);
                            }
                        }
                    }
                    @for b in &v.barriers {
                        input type="hidden" name="barriers" value=(b);
                    }
                }
                div.field #f-referred_to {
                    label for="f-referred" { (label(lang, "referred_to")) }
                    input #f-referred type="text" name="referred_to" value=(v.referred_to) aria-describedby=(describedby(errs, "referred_to", ""));
                    p.help #help-referred_to { (help(lang, "referred_to")) }
                    (field_errors(errs, "referred_to"))
                }
                fieldset.choices #f-assistive {
                    legend { (label(lang, "assistive")) }
                    div.opts {
                        @for a in Assistive::NAMES {
                            label.opt {
                                input type="checkbox" name="assistive" value=(a) checked[v.assistive.iter().any(|x| x == a)];
                                span { (value_label(lang, "assistive", a)) }
                            }
                        }
                    }
                }
            }
            div.field.check #f-sensitive {
                label.opt {
                    input #f-sens type="checkbox" name="sensitive" value="on" checked[v.sensitive] aria-describedby="help-sensitive";
                    span { (lang.t("Besöket gällde bankärenden eller köp", "The visit was about banking or purchases")) }
                }
                p.help #help-sensitive { (lang.t("Frågan som alltid ska besvaras: rörde hjälpen pengar, bank eller köp?", "The question always asked: did the help touch money, banking or purchases?")) }
            }
            div.field #f-note {
                label for="f-note-text" { (label(lang, "note")) }
                textarea #f-note-text name="note" rows="3" maxlength="2000" aria-describedby=(describedby(errs, "note", "note-check")) aria-invalid=[(!error_for(errs, "note").is_empty()).then_some("true")] { (v.note) }
                p.help #help-note { (help(lang, "note")) }
                p.hint #note-check aria-live="polite" {}
                (field_errors(errs, "note"))
            }
            div.field #f-site {
                label for="f-site-input" { (label(lang, "site")) }
                input #f-site-input type="text" name="site" list="f-site-list" autocomplete="off"
                    value=(if v.site.is_empty() { p.site_default } else { v.site.as_str() })
                    aria-describedby="help-site" aria-invalid=[(!error_for(errs, "site").is_empty()).then_some("true")];
                datalist #f-site-list {
                    @for name in p.sites.names() { option value=(name) {} }
                }
                p.help #help-site { (help(lang, "site")) }
                (field_errors(errs, "site"))
            }
            div.buttons {
                @if p.edit.is_some() {
                    button type="submit" name="next" value="list" { (lang.t("Spara ändringar", "Save changes")) }
                    a href=(format!("/records/{}/delete", p.edit.unwrap_or_default())) { (lang.t("Radera besöket", "Delete the visit")) }
                } @else {
                    button type="submit" name="next" value="new" #save-new { (lang.t("Spara och ny", "Save and new")) }
                    button type="submit" name="next" value="list" .secondary { (lang.t("Spara och visa listan", "Save and show the list")) }
                }
            }
        }
        datalist #services-list {
            @for e in p.catalogue.entries() {
                option value=(e.name) { (e.agency) }
            }
        }
        datalist #language-list {
            @for (code, sv, en) in i18n::LANGUAGES {
                option value=(code) { (lang.t(sv, en)) }
            }
        }
    };
    layout(p.sess, p.identity, title, "new", body)
}

// ---- delete ----

pub fn delete_page(sess: &Sess, identity: &Identity, r: &StoredRecord) -> Markup {
    let lang = sess.lang;
    let rows: Vec<(String, String)> = r
        .record
        .to_fields()
        .into_iter()
        .filter(|(k, v)| {
            !v.is_null()
                && v != &serde_json::json!([])
                && !matches!(k.as_str(), "kind" | "device" | "created_at" | "updated_at")
        })
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (label(lang, &k), text)
        })
        .collect();
    let body = html! {
        h1 { (lang.t("Radera posten?", "Erase the record?")) }
        p.lead { (summary(lang, r)) }
        div.danger {
            p {
                strong { (lang.t("Det här raderas överallt: ", "This is erased everywhere: ")) }
                (match lang {
                    Lang::Sv => format!("på den här datorn nu, på hubben vid nästa synkning och sedan på alla andra datorer i {}. Historiken raderas också. Det går inte att ångra.", identity.org),
                    Lang::En => format!("on this laptop now, on the hub at the next sync and then on every other laptop of {}. Its history goes too. It cannot be undone.", identity.org),
                })
            }
        }
        table.fields {
            caption { (lang.t("Allt som raderas", "Everything that is erased")) }
            tbody {
                @for (k, v) in &rows {
                    tr { th scope="row" { (k) } td { (v) } }
                }
            }
        }
        form method="post" action=(format!("/records/{}/delete", r.record.id)) {
            input type="hidden" name="csrf" value=(sess.csrf);
            div.buttons {
                button.danger type="submit" #confirm-delete { (lang.t("Ja, radera överallt", "Yes, erase everywhere")) }
                a href="/" { (lang.t("Avbryt", "Cancel")) }
            }
        }
    };
    layout(sess, identity, lang.t("Radera", "Erase"), "home", body)
}
