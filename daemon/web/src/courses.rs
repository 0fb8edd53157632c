//! Courses and their sessions (issue 11 point 3): the course list, a
//! course's page with its sessions, and adding, editing and removing a
//! session. A session is named in every URL by its stable id, never by its
//! position (positions shift when another laptop adds a session). The
//! forms are built from `proto::schema`'s course and session fields, like
//! the CLI's flags, and saving goes through the store functions the CLI
//! uses (`add_session`, `edit_session`, `delete_session`), so validation
//! and the privacy screen are `proto`'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Local;
use maud::{Markup, html};
use outpost_proto::Body;
use outpost_proto::fields::Fields;
use outpost_proto::record::{Course, Kind, Session};
use outpost_proto::schema::{self, FieldDef, Presence, Scope, Shape};
use outpost_proto::screen::find_sensitive;
use outpost_store::store::{Identity, StoreError, StoredRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::i18n::{self, Lang};
use crate::pages::{self, layout};
use crate::security::Sess;
use crate::{App, failed, form, now, see_other};

/// How many courses the list shows (most recently changed first): the
/// page answers in the same time with 10 or 10,000 courses.
const COURSE_LIST_LIMIT: usize = 200;

/// The fields a person types for `scope` (those with a CLI flag), in the
/// table's order.
fn typed_fields(scope: Scope) -> impl Iterator<Item = &'static FieldDef> {
    schema::fields_of(scope).filter(|d| d.flag.is_some())
}

/// The values as typed, by field name, for re-showing a refused form.
type Typed = Vec<(String, String)>;

fn typed_value<'a>(typed: &'a Typed, name: &str) -> &'a str {
    typed
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The form's pairs as fields of `scope`. Adding drops empty values (an
/// absent optional field); editing turns an empty optional value into
/// Null (clears it) and keeps an empty required one (so it is refused).
fn fields_from(scope: Scope, pairs: &[(String, String)], edit: bool) -> (Fields, Typed) {
    let mut fields = Fields::new();
    let mut typed = Vec::new();
    for def in typed_fields(scope) {
        let v = form::first(pairs, def.name)
            .unwrap_or("")
            .trim()
            .to_string();
        typed.push((def.name.to_string(), v.clone()));
        if v.is_empty() {
            if edit && def.presence == Presence::Optional {
                fields.insert(def.name.to_string(), Value::Null);
            } else if edit {
                fields.insert(def.name.to_string(), Value::String(v));
            }
        } else {
            fields.insert(def.name.to_string(), Value::String(v));
        }
    }
    (fields, typed)
}

fn session_typed(s: &Session) -> Typed {
    let f = s.to_fields();
    typed_fields(Scope::Session)
        .map(|d| {
            let v = match f.get(d.name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (d.name.to_string(), v)
        })
        .collect()
}

/// A refusal as `(field, message)`: session fields come back named
/// `session FIELD`; a privacy refusal names the kind of data, never the
/// text (the kind is found again in what was typed).
fn errors_of(lang: Lang, scope: Scope, typed: &Typed, e: &StoreError) -> Vec<(String, String)> {
    let StoreError::Invalid(errs) = e else {
        return vec![];
    };
    errs.0
        .iter()
        .map(|fe| {
            let field = fe
                .field
                .strip_prefix("session ")
                .unwrap_or(&fe.field)
                .to_string();
            let label = schema::field(scope, &field)
                .map(|d| lang.t2(d.label).to_string())
                .unwrap_or_else(|| field.clone());
            let kind = find_sensitive(typed_value(typed, &field));
            let msg = match kind {
                Some(kind) if fe.message.contains("anonymous") => i18n::refusal(lang, &label, kind),
                _ => format!("{label}: {}", i18n::explain(lang, &fe.message)),
            };
            (field, msg)
        })
        .collect()
}

/// The inputs of `scope`'s typed fields, from the field table.
fn inputs(lang: Lang, scope: Scope, typed: &Typed, errors: &[(String, String)]) -> Markup {
    html! {
        @for def in typed_fields(scope) {
            @let id = format!("f-{}", def.name);
            @let help_id = format!("help-{}", def.name);
            @let err_id = format!("err-{}", def.name);
            @let errs: Vec<&str> = errors.iter().filter(|(f, _)| f == def.name).map(|(_, m)| m.as_str()).collect();
            @let described = if errs.is_empty() { help_id.clone() } else { format!("{help_id} {err_id}") };
            @let value = typed_value(typed, def.name);
            @let required = def.presence == Presence::Required;
            div.field {
                label for=(id) {
                    (lang.t2(def.label))
                    @if required { span.req { " (" (lang.t("obligatorisk", "required")) ")" } }
                }
                @match def.shape {
                    Shape::Date => {
                        input id=(id) type="date" name=(def.name) value=(value) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")];
                    }
                    Shape::Time => {
                        input id=(id) type="time" name=(def.name) value=(value) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")];
                    }
                    Shape::Int { min, max } => {
                        input id=(id) .short type="number" inputmode="numeric" name=(def.name) min=(min) max=(max) value=(value) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")];
                    }
                    Shape::Text { max, screened: true } => {
                        textarea id=(id) name=(def.name) rows="2" maxlength=(max) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")] { (value) }
                    }
                    Shape::Text { max, .. } => {
                        input id=(id) type="text" name=(def.name) maxlength=(max) value=(value) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")];
                    }
                    _ => {
                        input id=(id) type="text" name=(def.name) value=(value) required[required] aria-describedby=(described) aria-invalid=[(!errs.is_empty()).then_some("true")];
                    }
                }
                p.help id=(help_id) { (lang.t2(def.help)) }
                @for e in &errs { p.error id=(err_id) { (e) } }
            }
        }
    }
}

fn error_summary(
    lang: Lang,
    title_sv: &str,
    title_en: &str,
    errors: &[(String, String)],
) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.errors #errors role="alert" tabindex="-1" autofocus {
                h2 { (lang.t(title_sv, title_en)) }
                ul {
                    @for (field, msg) in errors {
                        li { a href=(format!("#f-{field}")) { (msg) } }
                    }
                }
            }
        }
    }
}

fn session_line(lang: Lang, s: &Session) -> String {
    let today = Local::now().date_naive();
    let mut parts = vec![match s.time {
        Some(t) => format!("{} {}", i18n::day(lang, s.date, today), t.format("%H:%M")),
        None => i18n::day(lang, s.date, today),
    }];
    parts.push(format!("{} min", s.minutes));
    parts.push(format!(
        "{} {}",
        s.participants,
        lang.t(
            "deltagare",
            if s.participants == 1 {
                "participant"
            } else {
                "participants"
            }
        )
    ));
    if let Some(i) = &s.instructor {
        parts.push(i.clone());
    }
    parts.join(" · ")
}

/// The first 8 characters of a session id: what the page shows and what
/// `outpost course session edit COURSE SESSION` accepts as a prefix.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn course_of(r: &StoredRecord) -> Option<&Course> {
    match &r.record.body {
        Body::Course(c) => Some(c),
        Body::Visit(_) => None,
    }
}

// ---- pages ----

fn list_page(
    sess: &Sess,
    identity: &Identity,
    courses: &[StoredRecord],
    typed: &Typed,
    errors: &[(String, String)],
) -> Markup {
    let lang = sess.lang;
    let body = html! {
        h1 { (lang.t("Kurser", "Courses")) }
        @if courses.is_empty() {
            p.empty { (lang.t("Inga kurser ännu.", "No courses yet.")) }
        } @else {
            ul.records #courses {
                @for r in courses {
                    li data-id=(r.record.id) {
                        a href=(format!("/courses/{}", r.record.id)) { (pages::summary(lang, r)) }
                        @if let Some(c) = course_of(r) {
                            @if let Some(last) = c.sessions.last() {
                                span.by { " · " (lang.t("senast ", "last ")) (session_line(lang, last)) }
                            }
                        }
                    }
                }
            }
            @if courses.len() >= COURSE_LIST_LIMIT {
                p.help { (lang.t("Visar de senast ändrade kurserna. `outpost list --kind course` visar alla.", "Showing the most recently changed courses. `outpost list --kind course` shows them all.")) }
            }
        }
        h2 #new-course-h { (lang.t("Ny kurs", "New course")) }
        (error_summary(lang, "Kursen sparades inte", "The course was not saved", errors))
        form #new-course method="post" action="/courses" aria-labelledby="new-course-h" {
            input type="hidden" name="csrf" value=(sess.csrf);
            (inputs(lang, Scope::Course, typed, errors))
            div.buttons { button type="submit" { (lang.t("Spara kursen", "Save the course")) } }
        }
    };
    layout(sess, identity, lang.t("Kurser", "Courses"), "courses", body)
}

struct DetailPage<'a> {
    sess: &'a Sess,
    identity: &'a Identity,
    course: &'a StoredRecord,
    typed: &'a Typed,
    errors: &'a [(String, String)],
    notice: Option<String>,
}

fn detail_page(p: &DetailPage<'_>) -> Markup {
    let lang = p.sess.lang;
    let r = p.course;
    let id = r.record.id.to_string();
    let empty = Course {
        title: String::new(),
        partner: None,
        target_group: None,
        sessions: vec![],
        note: None,
    };
    let c = course_of(r).unwrap_or(&empty);
    let body = html! {
        h1 { (c.title) }
        @if let Some(n) = &p.notice { p.saved #saved role="status" { (n) } }
        table.fields {
            caption { (lang.t("Om kursen", "About the course")) }
            tbody {
                @if let Some(v) = &c.partner { tr { th scope="row" { (lang.t("Samarbetspartner", "Partner")) } td { (v) } } }
                @if let Some(v) = &c.target_group { tr { th scope="row" { (lang.t("Målgrupp", "Target group")) } td { (v) } } }
                @if let Some(v) = &c.note { tr { th scope="row" { (pages::label(lang, "note")) } td { (v) } } }
                tr { th scope="row" { "Id" } td { code { (id) } } }
            }
        }
        h2 #sessions-h { (lang.t("Tillfällen", "Sessions")) }
        @if c.sessions.is_empty() {
            p.empty { (lang.t("Inga tillfällen ännu.", "No sessions yet.")) }
        } @else {
            table.fields #sessions aria-labelledby="sessions-h" {
                thead {
                    tr {
                        th scope="col" { (lang.t("Tillfälle", "Session")) }
                        th scope="col" { (lang.t("Id (början)", "Id (start)")) }
                        th scope="col" { (lang.t("Åtgärder", "Actions")) }
                    }
                }
                tbody {
                    @for s in &c.sessions {
                        tr data-session=(s.id) {
                            td { (session_line(lang, s)) }
                            td { code { (short(&s.id)) } }
                            td {
                                a href=(format!("/courses/{id}/sessions/{}/edit", s.id)) {
                                    (lang.t("Ändra", "Edit")) span.sr { " " (session_line(lang, s)) }
                                }
                                " "
                                a href=(format!("/courses/{id}/sessions/{}/delete", s.id)) {
                                    (lang.t("Ta bort", "Remove")) span.sr { " " (session_line(lang, s)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 #add-session-h { (lang.t("Lägg till ett tillfälle", "Add a session")) }
        (error_summary(lang, "Tillfället sparades inte", "The session was not saved", p.errors))
        form #add-session method="post" action=(format!("/courses/{id}/sessions")) aria-labelledby="add-session-h" {
            input type="hidden" name="csrf" value=(p.sess.csrf);
            (inputs(lang, Scope::Session, p.typed, p.errors))
            div.buttons { button type="submit" { (lang.t("Spara tillfället", "Save the session")) } }
        }
        p { a href="/courses" { (lang.t("Alla kurser", "All courses")) } }
    };
    layout(
        p.sess,
        p.identity,
        &c.title,
        &format!("/courses/{id}"),
        body,
    )
}

fn session_edit_page(
    sess: &Sess,
    identity: &Identity,
    course: &StoredRecord,
    sid: &str,
    typed: &Typed,
    errors: &[(String, String)],
) -> Markup {
    let lang = sess.lang;
    let id = course.record.id.to_string();
    let title = course_of(course).map(|c| c.title.as_str()).unwrap_or("");
    let body = html! {
        h1 { (lang.t("Ändra tillfälle", "Edit session")) }
        p.lead { (title) " · " (lang.t("tillfälle ", "session ")) code { (short(sid)) } }
        (error_summary(lang, "Tillfället sparades inte", "The session was not saved", errors))
        form #edit-session method="post" action=(format!("/courses/{id}/sessions/{sid}")) {
            input type="hidden" name="csrf" value=(sess.csrf);
            (inputs(lang, Scope::Session, typed, errors))
            div.buttons {
                button type="submit" #save-session { (lang.t("Spara ändringar", "Save changes")) }
                a href=(format!("/courses/{id}/sessions/{sid}/delete")) { (lang.t("Ta bort tillfället", "Remove the session")) }
                a href=(format!("/courses/{id}")) { (lang.t("Avbryt", "Cancel")) }
            }
        }
    };
    layout(
        sess,
        identity,
        lang.t("Ändra tillfälle", "Edit session"),
        &format!("/courses/{id}/sessions/{sid}/edit"),
        body,
    )
}

fn session_delete_page(
    sess: &Sess,
    identity: &Identity,
    course: &StoredRecord,
    s: &Session,
) -> Markup {
    let lang = sess.lang;
    let id = course.record.id.to_string();
    let title = course_of(course).map(|c| c.title.as_str()).unwrap_or("");
    let rows: Vec<(String, String)> = typed_fields(Scope::Session)
        .filter_map(|d| {
            let v = typed_value(&session_typed(s), d.name).to_string();
            (!v.is_empty()).then(|| (lang.t2(d.label).to_string(), v))
        })
        .collect();
    let body = html! {
        h1 { (lang.t("Ta bort tillfället?", "Remove the session?")) }
        p.lead { (title) " · " (session_line(lang, s)) }
        div.danger {
            p {
                strong { (lang.t("Det här tas bort överallt: ", "This is removed everywhere: ")) }
                (match lang {
                    Lang::Sv => format!("ur kursen på den här datorn nu, på hubben vid nästa synkning och sedan på alla andra datorer i {}. Kursen och dess andra tillfällen finns kvar.", identity.org),
                    Lang::En => format!("from the course on this laptop now, on the hub at the next sync and then on every other laptop of {}. The course and its other sessions stay.", identity.org),
                })
            }
        }
        table.fields {
            caption { (lang.t("Allt som tas bort", "Everything that is removed")) }
            tbody {
                tr { th scope="row" { "Id" } td { code { (s.id) } } }
                @for (k, v) in &rows { tr { th scope="row" { (k) } td { (v) } } }
            }
        }
        form method="post" action=(format!("/courses/{id}/sessions/{}/delete", s.id)) {
            input type="hidden" name="csrf" value=(sess.csrf);
            div.buttons {
                button.danger type="submit" #confirm-delete { (lang.t("Ja, ta bort överallt", "Yes, remove everywhere")) }
                a href=(format!("/courses/{id}")) { (lang.t("Avbryt", "Cancel")) }
            }
        }
    };
    layout(
        sess,
        identity,
        lang.t("Ta bort tillfälle", "Remove session"),
        &format!("/courses/{id}/sessions/{}/delete", s.id),
        body,
    )
}

// ---- handlers ----

fn default_session(now_date: chrono::NaiveDate) -> Typed {
    vec![("date".into(), now_date.to_string())]
}

pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
) -> Response {
    list_again(&app, &sess, &Vec::new(), &[], StatusCode::OK).await
}

async fn list_again(
    app: &Arc<App>,
    sess: &Sess,
    typed: &Typed,
    errors: &[(String, String)],
    status: StatusCode,
) -> Response {
    let data = app
        .with_store(|s| -> Result<_, StoreError> {
            Ok((
                s.recently_changed(Kind::Course, COURSE_LIST_LIMIT)?,
                s.identity().clone(),
            ))
        })
        .await;
    match data {
        Ok((courses, identity)) => (
            status,
            pages::html(list_page(sess, &identity, &courses, typed, errors)),
        )
            .into_response(),
        Err(e) => failed(sess.lang, &e),
    }
}

pub(crate) async fn create(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let (fields, typed) = fields_from(Scope::Course, &pairs, false);
    let result = app
        .with_store(move |s| {
            let mut all = s.new_fields(Kind::Course, now());
            all.extend(fields);
            all.insert("sessions".into(), Value::Array(Vec::new()));
            s.add(&all)
        })
        .await;
    match result {
        Ok(r) => see_other(&format!("/courses/{}?saved=1", r.id)),
        Err(e @ StoreError::Invalid(_)) => {
            let errors = errors_of(sess.lang, Scope::Course, &typed, &e);
            list_again(
                &app,
                &sess,
                &typed,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => failed(sess.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    saved: Option<String>,
    session: Option<String>,
    removed: Option<String>,
}

async fn detail_again(
    app: &Arc<App>,
    sess: &Sess,
    id: String,
    typed: Option<Typed>,
    errors: &[(String, String)],
    notice: Option<String>,
) -> Response {
    let found = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            let r = s.get(&id)?.ok_or(StoreError::NotFound(id))?;
            Ok((r, s.identity().clone()))
        })
        .await;
    let (course, identity) = match found {
        Ok(f) => f,
        Err(e) => return failed(sess.lang, &e),
    };
    if course_of(&course).is_none() {
        return failed(
            sess.lang,
            &StoreError::NotFound(course.record.id.to_string()),
        );
    }
    let typed = typed.unwrap_or_else(|| default_session(Local::now().date_naive()));
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = detail_page(&DetailPage {
        sess,
        identity: &identity,
        course: &course,
        typed: &typed,
        errors,
        notice,
    });
    (status, pages::html(page)).into_response()
}

pub(crate) async fn detail(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let lang = sess.lang;
    let notice = if q.saved.is_some() {
        Some(
            lang.t("Kursen är sparad.", "The course was saved.")
                .to_string(),
        )
    } else if let Some(sid) = q.session {
        Some(format!(
            "{} {}",
            lang.t("Tillfället är sparat:", "The session was saved:"),
            short(&sid)
        ))
    } else if q.removed.is_some() {
        Some(
            lang.t("Tillfället är borttaget.", "The session was removed.")
                .to_string(),
        )
    } else {
        None
    };
    detail_again(&app, &sess, id, None, &[], notice).await
}

pub(crate) async fn add_session(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let (fields, typed) = fields_from(Scope::Session, &pairs, false);
    let id2 = id.clone();
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id2)?;
            let session = s.add_session(&id, &fields, now())?;
            Ok((id, session))
        })
        .await;
    match result {
        Ok((id, session)) => see_other(&format!("/courses/{id}?session={}", session.id)),
        Err(e @ StoreError::Invalid(_)) => {
            let errors = errors_of(sess.lang, Scope::Session, &typed, &e);
            detail_again(&app, &sess, id, Some(typed), &errors, None).await
        }
        Err(e) => failed(sess.lang, &e),
    }
}

/// The course and one of its sessions, or why not.
async fn course_and_session(
    app: &Arc<App>,
    id: String,
    sid: String,
) -> Result<(StoredRecord, Session, Identity), StoreError> {
    app.with_store(move |s| {
        let id = s.resolve_id(&id)?;
        let session = s.session(&id, &sid)?;
        let r = s.get(&id)?.ok_or(StoreError::NotFound(id))?;
        Ok((r, session, s.identity().clone()))
    })
    .await
}

pub(crate) async fn edit_session(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath((id, sid)): UrlPath<(String, String)>,
) -> Response {
    match course_and_session(&app, id, sid).await {
        Ok((course, session, identity)) => pages::html(session_edit_page(
            &sess,
            &identity,
            &course,
            &session.id,
            &session_typed(&session),
            &[],
        )),
        Err(e) => failed(sess.lang, &e),
    }
}

pub(crate) async fn update_session(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath((id, sid)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let (fields, typed) = fields_from(Scope::Session, &pairs, true);
    let (id2, sid2) = (id.clone(), sid.clone());
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id2)?;
            let session = s.edit_session(&id, &sid2, &fields, now())?;
            Ok((id, session))
        })
        .await;
    match result {
        Ok((id, session)) => see_other(&format!("/courses/{id}?session={}", session.id)),
        Err(e @ StoreError::Invalid(_)) => {
            let errors = errors_of(sess.lang, Scope::Session, &typed, &e);
            match course_and_session(&app, id, sid).await {
                Ok((course, session, identity)) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    pages::html(session_edit_page(
                        &sess,
                        &identity,
                        &course,
                        &session.id,
                        &typed,
                        &errors,
                    )),
                )
                    .into_response(),
                Err(e) => failed(sess.lang, &e),
            }
        }
        Err(e) => failed(sess.lang, &e),
    }
}

pub(crate) async fn delete_session_confirm(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath((id, sid)): UrlPath<(String, String)>,
) -> Response {
    match course_and_session(&app, id, sid).await {
        Ok((course, session, identity)) => {
            pages::html(session_delete_page(&sess, &identity, &course, &session))
        }
        Err(e) => failed(sess.lang, &e),
    }
}

pub(crate) async fn delete_session(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath((id, sid)): UrlPath<(String, String)>,
) -> Response {
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            s.delete_session(&id, &sid, now())?;
            Ok(id)
        })
        .await;
    match result {
        Ok(id) => see_other(&format!("/courses/{id}?removed=1")),
        Err(e) => failed(sess.lang, &e),
    }
}
