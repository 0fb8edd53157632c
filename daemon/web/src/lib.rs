//! The staff web app (DESIGN.md §8), served by the laptop daemon `outpostd`
//! on 127.0.0.1 only, with every asset inside the binary.
//!
//! Layout and flow:
//! - [`serve`]: binds nothing itself; takes the daemon's listener, opens
//!   the store, writes the app's address for `outpost ui`
//!   (`outpost_store::ui`), serves until shutdown, removes the address.
//! - [`security`]: the guard every request passes (Host header, session
//!   cookie from a one-time launch token, idle expiry, CSRF on POST) and
//!   the headers every answer carries.
//! - [`form`]: the visit form's values ⇄ `proto` fields (the field names
//!   of the plain HTML form are the contract's).
//! - [`pages`]: server-rendered HTML (maud escapes every value), driven
//!   by `proto::schema`'s labels and help like the CLI's flags.
//! - `courses`: the course list, a course's sessions, and adding, editing
//!   and removing a session (named by its stable id in every URL).
//! - `conflicts`: records with concurrent values, side by side; a choice
//!   is written as a new change (linked from the "Is my data safe?" panel).
//! - `settings`: this laptop's form defaults (a fixed channel and language,
//!   or "remember the last one") and the app's language, in `config.toml`.
//! - [`i18n`]: Swedish first, English second; Swedish dates and numbers.
//! - `assets/`: the small script (type-ahead flags for unknown services,
//!   the privacy screen's answer before saving); every form works without
//!   it. The CSS is `outpost_web_kit::APP_CSS`, shared with the hub's
//!   dashboard.
//!
//! A request: guard → handler → store work on a blocking thread (one
//! shared connection behind a mutex; the daemon's sync opens its own) →
//! page. Saving goes through the same `Store::add` / `edit` / `delete` as
//! the CLI, so validation and the privacy screen are `proto`'s; a refused
//! form is answered again with its values and the errors, nothing saved.

mod conflicts;
mod courses;
pub mod form;
pub mod i18n;
pub mod pages;
pub mod security;
mod settings;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, Local};
use outpost_proto::catalogue::Catalogue;
use outpost_proto::fields::Fields;
use outpost_proto::record::Kind;
use outpost_proto::screen::find_sensitive;
use outpost_proto::sites::SiteList;
use outpost_store::central;
use outpost_store::config::{Paths, Settings};
use outpost_store::store::{Store, StoreError, StoredRecord};
use serde::{Deserialize, Serialize};

use crate::form::VisitForm;
use crate::i18n::Lang;
use crate::security::{Sess, Sessions};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the web app could not listen: {0}")]
    Io(#[from] std::io::Error),
}

/// What the daemon passes in.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub paths: Paths,
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// The language of a new session (the page has a switch).
    pub lang: Lang,
}

impl WebConfig {
    pub fn from_settings(paths: Paths, settings: &Settings) -> WebConfig {
        WebConfig {
            paths,
            idle: Duration::from_secs(settings.ui_idle_minutes.max(1) * 60),
            lang: Lang::parse(&settings.ui_lang).unwrap_or_default(),
        }
    }
}

/// The app's shared state.
pub struct App {
    paths: Paths,
    port: u16,
    /// The only Host header accepted: `127.0.0.1:PORT`.
    host: String,
    /// The only Origin accepted on a POST: `http://127.0.0.1:PORT`.
    origin: String,
    lang: Lang,
    sessions: Sessions,
    store: Arc<Mutex<Store>>,
}

/// Binds the app's listener on 127.0.0.1 (never another interface);
/// port 0 lets the system choose.
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// Serves the app on `listener` until `shutdown` resolves. The address
/// file for `outpost ui` exists exactly while this runs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: WebConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let addr = listener.local_addr()?;
    let store = Store::open(&config.paths.data_dir)?;
    let app = Arc::new(App {
        port: addr.port(),
        host: format!("127.0.0.1:{}", addr.port()),
        origin: format!("http://127.0.0.1:{}", addr.port()),
        lang: config.lang,
        sessions: Sessions::new(config.idle),
        store: Arc::new(Mutex::new(store)),
        paths: config.paths.clone(),
    });
    let url = format!("http://127.0.0.1:{}/", addr.port());
    outpost_store::ui::write_addr(&config.paths.data_dir, &url)?;
    tracing::info!(%url, "web app listening");
    let result = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    outpost_store::ui::remove_addr(&config.paths.data_dir);
    Ok(result?)
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/launch", get(launch))
        .route("/", get(home))
        .route("/visits/new", get(new_visit))
        .route("/visits", post(create_visit))
        .route("/visits/{id}/edit", get(edit_visit))
        .route("/visits/{id}", post(update_visit))
        .route(
            "/records/{id}/delete",
            get(delete_confirm).post(delete_record),
        )
        .route("/courses", get(courses::list).post(courses::create))
        .route("/courses/{id}", get(courses::detail))
        .route("/courses/{id}/sessions", post(courses::add_session))
        .route(
            "/courses/{id}/sessions/{sid}/edit",
            get(courses::edit_session),
        )
        .route(
            "/courses/{id}/sessions/{sid}",
            post(courses::update_session),
        )
        .route(
            "/courses/{id}/sessions/{sid}/delete",
            get(courses::delete_session_confirm).post(courses::delete_session),
        )
        .route("/conflicts", get(conflicts::list))
        .route("/conflicts/{id}", post(conflicts::resolve))
        .route("/settings", get(settings::show).post(settings::save))
        .route("/check", post(check))
        .route("/lang", post(switch_lang))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            security::guard,
        ))
        .with_state(app)
}

// ---- remembered per laptop ----

/// The web app's memory on this laptop: the last channel and language
/// (the form's defaults), the last visit ("same as last"), the page
/// language. Kept beside the store, never synced.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
struct Remembered {
    channel: Option<String>,
    language: Option<String>,
    last_visit: Option<String>,
    lang: Option<String>,
}

const REMEMBERED_FILE: &str = "ui-state.json";

impl Remembered {
    fn load(dir: &Path) -> Remembered {
        std::fs::read_to_string(dir.join(REMEMBERED_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, dir: &Path) {
        let path = dir.join(REMEMBERED_FILE);
        let tmp = path.with_extension("json.tmp");
        let ok = serde_json::to_string(self)
            .ok()
            .and_then(|t| std::fs::write(&tmp, t).ok())
            .and_then(|()| std::fs::rename(&tmp, &path).ok());
        if ok.is_none() {
            // Losing a remembered default costs a click, not a record.
            tracing::warn!("could not write {}", path.display());
        }
    }
}

impl App {
    fn settings(&self) -> Settings {
        Settings::load(&self.paths).unwrap_or_default()
    }

    /// The catalogue and the organisation's site list in force, as
    /// `outpost` decides them (`outpost_store::central`: the hub's on an
    /// enrolled laptop, else the local file and no list), read once per
    /// request so an edited file or a sync counts at once. A broken file
    /// falls back to the built-in catalogue and no list, and is logged,
    /// since the form must still open.
    async fn in_force(&self, settings: &Settings) -> (Catalogue, SiteList) {
        let settings = settings.clone();
        let paths = self.paths.clone();
        self.with_store(move |s| match central::in_force(s, &settings, &paths) {
            Ok(in_force) => (in_force.catalogue, in_force.sites),
            Err(e) => {
                tracing::warn!(error = %e, "service catalogue and site list not used");
                (Catalogue::builtin(), SiteList::default())
            }
        })
        .await
    }

    /// The form's channel and language: the laptop's setting when one is
    /// fixed (the settings page), else the last ones used here ("remember
    /// the last one"), else drop-in, Swedish.
    fn defaults(&self, settings: &Settings) -> (String, String) {
        let r = Remembered::load(&self.paths.data_dir);
        (
            settings
                .default_channel
                .clone()
                .or(r.channel)
                .unwrap_or_else(|| "drop_in".into()),
            settings
                .default_language
                .clone()
                .or(r.language)
                .unwrap_or_else(|| "sv".into()),
        )
    }

    /// Runs `f` on the store on a blocking thread.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> T {
        let store = self.store.clone();
        let run = move || {
            let mut guard = store.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

fn now() -> DateTime<FixedOffset> {
    Local::now().fixed_offset()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn failed(lang: Lang, e: &StoreError) -> Response {
    tracing::error!(error = %e, "web app: store error");
    let (status, sv, en) = match e {
        StoreError::NotFound(_) | StoreError::Deleted(_) | StoreError::WrongKind { .. } => (
            StatusCode::NOT_FOUND,
            "Posten finns inte (kanske raderad).",
            "The record does not exist (perhaps erased).",
        ),
        StoreError::NoSession { .. } => (
            StatusCode::NOT_FOUND,
            "Tillfället finns inte (kanske borttaget på en annan dator).",
            "The session does not exist (perhaps removed on another laptop).",
        ),
        StoreError::NoConflict { .. } => (
            StatusCode::CONFLICT,
            "Konflikten är redan löst, eller värdet finns inte bland de sparade. Gå tillbaka till konfliktlistan och försök igen.",
            "The conflict is already resolved, or the value is not among those saved. Go back to the list of conflicts and try again.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Något gick fel i lagringen; inget sparades. Försök igen, och be din samordnare köra `outpost doctor` om det händer igen.",
            "Something went wrong in the store; nothing was saved. Try again, and ask your coordinator to run `outpost doctor` if it happens again.",
        ),
    };
    pages::refused(lang, status, "Det gick inte", "That did not work", sv, en)
}

// ---- handlers ----

#[derive(Debug, Deserialize)]
struct LaunchQuery {
    #[serde(default)]
    t: String,
}

async fn launch(State(app): State<Arc<App>>, Query(q): Query<LaunchQuery>) -> Response {
    let dir = app.paths.data_dir.clone();
    let token = q.t;
    let ok =
        tokio::task::spawn_blocking(move || outpost_store::ui::redeem_launch_token(&dir, &token))
            .await
            .unwrap_or(false);
    if !ok {
        return pages::refused(
            app.lang,
            StatusCode::FORBIDDEN,
            "Länken fungerar inte längre",
            "This link no longer works",
            "En länk till appen fungerar en gång och bara en kort stund. Öppna appen igen med `outpost ui`.",
            "A link to the app works once, and only for a short while. Open the app again with `outpost ui`.",
        );
    }
    let lang = Remembered::load(&app.paths.data_dir)
        .lang
        .and_then(|l| Lang::parse(&l))
        .unwrap_or(app.lang);
    let id = app.sessions.create(lang);
    let mut resp = see_other("/visits/new");
    resp.headers_mut()
        .insert(header::SET_COOKIE, security::session_cookie(app.port, &id));
    resp
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    saved: Option<String>,
    same: Option<String>,
    deleted: Option<String>,
}

async fn home(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    Query(q): Query<PageQuery>,
) -> Response {
    let settings = app.settings();
    let enrolled_url = settings.hub_url.clone();
    let saved = q.saved.clone();
    let data = app
        .with_store(move |store| -> Result<_, StoreError> {
            let today = Local::now().date_naive();
            let from = today - chrono::Days::new(13);
            // The latest 300 by day (an index read, however many records
            // there are), then newest first by the visit's day and time.
            let mut recent = store.recent(from, RECENT_LIMIT)?;
            recent.sort_by_key(|r| std::cmp::Reverse(sort_key(r)));
            let saved = match saved {
                Some(id) => store.get(&id)?,
                None => None,
            };
            Ok((pages::safety(store, enrolled_url.is_some())?, recent, saved))
        })
        .await;
    match data {
        Ok((safety, recent, saved)) => pages::html(pages::home(
            &sess,
            &safety,
            &recent,
            saved.as_ref(),
            q.deleted.is_some(),
        )),
        Err(e) => failed(sess.lang, &e),
    }
}

/// How many records "today and recent" shows at most.
const RECENT_LIMIT: usize = 300;

/// Day, then time (a visit without a time sorts first in its day), then
/// when it was made.
fn sort_key(r: &StoredRecord) -> (chrono::NaiveDate, Option<chrono::NaiveTime>, String) {
    match &r.record.body {
        outpost_proto::Body::Visit(v) => (v.date, v.time, r.record.created_at.to_rfc3339()),
        outpost_proto::Body::Course(c) => {
            let last = c.sessions.iter().max_by_key(|s| (s.date, s.time));
            (
                last.map(|s| s.date).unwrap_or_default(),
                last.and_then(|s| s.time),
                r.record.created_at.to_rfc3339(),
            )
        }
    }
}

async fn new_visit(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    Query(q): Query<PageQuery>,
) -> Response {
    let settings = app.settings();
    let (channel, language) = app.defaults(&settings);
    let last = Remembered::load(&app.paths.data_dir).last_visit;
    let saved = q.saved.clone();
    let same = q.same.is_some();
    let data = app
        .with_store(move |store| -> Result<_, StoreError> {
            let saved = match saved {
                Some(id) => store.get(&id)?,
                None => None,
            };
            let last = match last {
                Some(id) => store.get(&id)?,
                None => None,
            };
            Ok((saved, last, store.identity().clone()))
        })
        .await;
    let (saved, last, identity) = match data {
        Ok(d) => d,
        Err(e) => return failed(sess.lang, &e),
    };
    let last_visit = last.as_ref().and_then(|r| form::visit_of(&r.record));
    let values = match (same, last_visit) {
        (true, Some(v)) => VisitForm::same_as(v),
        _ => VisitForm::fresh(&channel, &language),
    };
    let (catalogue, sites) = app.in_force(&settings).await;
    pages::html(pages::visit_form(&pages::FormPage {
        sess: &sess,
        identity: &identity,
        values: &values,
        errors: &[],
        edit: None,
        saved: saved.as_ref(),
        has_last: last_visit.is_some(),
        catalogue: &catalogue,
        sites: &sites,
        site_default: &identity.site,
    }))
}

/// The form's problems as `(field, message in the page's language)`. A
/// privacy refusal is re-worded from the kind of data the screen finds
/// in the form's own text, so the message names the kind, never the text.
fn form_errors(
    lang: Lang,
    values: &VisitForm,
    errs: &outpost_proto::ValidationErrors,
) -> Vec<(String, String)> {
    errs.0
        .iter()
        .map(|e| {
            let label = pages::label(lang, &e.field);
            let texts: Vec<&str> = match e.field.as_str() {
                "note" => vec![&values.note],
                "referred_to" => vec![&values.referred_to],
                "services" => values.services.iter().map(String::as_str).collect(),
                "barriers" => values
                    .row_barriers
                    .iter()
                    .map(|(_, n)| n.as_str())
                    .chain(values.barriers.iter().map(String::as_str))
                    .collect(),
                _ => vec![],
            };
            let kind = texts.iter().find_map(|t| find_sensitive(t));
            let msg = match kind {
                Some(kind) if e.message.contains("anonymous") => i18n::refusal(lang, &label, kind),
                _ => format!("{label}: {}", i18n::explain(lang, &e.message)),
            };
            (e.field.clone(), msg)
        })
        .collect()
}

/// A typed site that matches one on the organisation's list (ignoring
/// case and accents) is saved in the listed spelling, as `outpost` does;
/// one not on the list is saved as typed (and counted as typed).
async fn listed_site(app: &Arc<App>, fields: &mut Fields) {
    let Some(typed) = fields
        .get("site")
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return;
    };
    let (_, sites) = app.in_force(&app.settings()).await;
    if let Some(listed) = sites.lookup(&typed) {
        fields.insert("site".into(), serde_json::Value::String(listed.to_string()));
    }
}

async fn create_visit(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let values = VisitForm::from_pairs(&pairs);
    let next = form::first(&pairs, "next").unwrap_or("new").to_string();
    let (mut fields, problems) = values.to_fields(false);
    listed_site(&app, &mut fields).await;
    let result = app
        .with_store(move |store| {
            let mut all: Fields = store.new_fields(Kind::Visit, now());
            all.extend(fields);
            if problems.is_empty() {
                store.add(&all).map_err(|e| (e, problems))
            } else {
                // A barrier without its service: nothing is saved (saving
                // the rest would drop what was typed); every other problem
                // is reported with it.
                let errs = match outpost_proto::Record::from_fields(&all) {
                    Ok(_) => outpost_proto::ValidationErrors::default(),
                    Err(errs) => errs,
                };
                Err((StoreError::Invalid(errs), problems))
            }
        })
        .await;
    match result {
        Ok(record) => {
            let mut r = Remembered::load(&app.paths.data_dir);
            r.channel = Some(values.channel.trim().to_string());
            r.language = Some(values.language.trim().to_lowercase());
            r.last_visit = Some(record.id.to_string());
            r.save(&app.paths.data_dir);
            let id = record.id;
            if next == "list" {
                see_other(&format!("/?saved={id}"))
            } else {
                see_other(&format!("/visits/new?saved={id}"))
            }
        }
        Err((StoreError::Invalid(errs), problems)) => {
            let mut shown = form_errors(sess.lang, &values, &errs);
            shown.extend(
                problems
                    .into_iter()
                    .map(|(f, m)| (f.clone(), format!("{}: {m}", pages::label(sess.lang, &f)))),
            );
            form_again(&app, &sess, values, shown, None).await
        }
        Err((e, _)) => failed(sess.lang, &e),
    }
}

/// The form again, with the values as sent and the errors; 422 so a
/// script (and the tests) can tell a refusal from a page.
async fn form_again(
    app: &Arc<App>,
    sess: &Sess,
    values: VisitForm,
    errors: Vec<(String, String)>,
    edit: Option<String>,
) -> Response {
    let settings = app.settings();
    let (catalogue, sites) = app.in_force(&settings).await;
    let has_last = Remembered::load(&app.paths.data_dir).last_visit.is_some();
    let identity = app.with_store(|s| s.identity().clone()).await;
    let page = pages::visit_form(&pages::FormPage {
        sess,
        identity: &identity,
        values: &values,
        errors: &errors,
        edit: edit.as_deref(),
        saved: None,
        has_last,
        catalogue: &catalogue,
        sites: &sites,
        site_default: &identity.site,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, pages::html(page)).into_response()
}

async fn edit_visit(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let found = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            let r = s.get(&id)?.ok_or(StoreError::NotFound(id))?;
            Ok((r, s.identity().clone()))
        })
        .await;
    let (stored, identity) = match found {
        Ok(f) => f,
        Err(e) => return failed(sess.lang, &e),
    };
    let Some(v) = form::visit_of(&stored.record) else {
        return failed(
            sess.lang,
            &StoreError::NotFound(stored.record.id.to_string()),
        );
    };
    let settings = app.settings();
    let (catalogue, sites) = app.in_force(&settings).await;
    let id = stored.record.id.to_string();
    pages::html(pages::visit_form(&pages::FormPage {
        sess: &sess,
        identity: &identity,
        values: &VisitForm::from_visit(v),
        errors: &[],
        edit: Some(&id),
        saved: None,
        has_last: false,
        catalogue: &catalogue,
        sites: &sites,
        site_default: &stored.record.site,
    }))
}

async fn update_visit(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let values = VisitForm::from_pairs(&pairs);
    let (mut fields, problems) = values.to_fields(true);
    listed_site(&app, &mut fields).await;
    if !problems.is_empty() {
        let shown = problems
            .into_iter()
            .map(|(f, m)| (f.clone(), format!("{}: {m}", pages::label(sess.lang, &f))))
            .collect();
        return form_again(&app, &sess, values, shown, Some(id)).await;
    }
    let id2 = id.clone();
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id2)?;
            s.edit(&id, &fields, now())
        })
        .await;
    match result {
        Ok(record) => see_other(&format!("/?saved={}", record.id)),
        Err(StoreError::Invalid(errs)) => {
            let shown = form_errors(sess.lang, &values, &errs);
            form_again(&app, &sess, values, shown, Some(id)).await
        }
        Err(e) => failed(sess.lang, &e),
    }
}

async fn delete_confirm(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let found = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            let r = s.get(&id)?.ok_or(StoreError::NotFound(id))?;
            Ok((r, s.identity().clone()))
        })
        .await;
    match found {
        Ok((r, identity)) => pages::html(pages::delete_page(&sess, &identity, &r)),
        Err(e) => failed(sess.lang, &e),
    }
}

async fn delete_record(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            s.delete(&id, now())
        })
        .await;
    match result {
        Ok(()) => see_other("/?deleted=1"),
        Err(e) => failed(sess.lang, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CheckRequest {
    note: String,
    services: Vec<String>,
}

/// The script's question before saving: does the note pass the privacy
/// screen, and which services are not in the catalogue? The answer names
/// the kind of data, never the data.
async fn check(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    body: Bytes,
) -> Response {
    let req: CheckRequest = serde_json::from_slice(&body).unwrap_or_default();
    let lang = sess.lang;
    let note = match find_sensitive(&req.note) {
        Some(kind) => serde_json::json!({
            "ok": false,
            "message": i18n::refusal(lang, &pages::label(lang, "note"), kind),
        }),
        None if req.note.trim().is_empty() => serde_json::json!({ "ok": true, "message": "" }),
        None => serde_json::json!({
            "ok": true,
            "message": lang.t(
                "Anteckningen är granskad: inga personuppgifter hittades.",
                "The note was screened: no personal data found.",
            ),
        }),
    };
    let (catalogue, _) = app.in_force(&app.settings()).await;
    let services: Vec<_> = req
        .services
        .iter()
        .map(|s| {
            let known = catalogue.lookup(s);
            serde_json::json!({
                "name": s,
                "known": known.is_some() || s.trim().is_empty(),
                "canonical": known.map(|i| i.name.clone()),
                "message": if known.is_none() && !s.trim().is_empty() {
                    lang.t(
                        "Finns inte i tjänstekatalogen – kontrollera stavningen. Sparas som okänd myndighet.",
                        "Not in the service catalogue – check the spelling. Saved with agency unknown.",
                    )
                } else { "" },
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "note": note, "services": services })).into_response()
}

async fn switch_lang(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let lang = form::first(&pairs, "lang")
        .and_then(Lang::parse)
        .unwrap_or(sess.lang.other());
    app.sessions.set_lang(&sess.id, lang);
    let mut r = Remembered::load(&app.paths.data_dir);
    r.lang = Some(lang.code().to_string());
    r.save(&app.paths.data_dir);
    // Back to the page the switch was on, on this app only.
    let back = form::first(&pairs, "back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//"))
        .unwrap_or("/");
    see_other(back)
}

async fn not_found(Extension(sess): Extension<Sess>) -> Response {
    pages::refused(
        sess.lang,
        StatusCode::NOT_FOUND,
        "Sidan finns inte",
        "No such page",
        "Gå till startsidan.",
        "Go to the start page.",
    )
}

fn asset(body: &'static str, mime: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    resp
}

async fn css() -> Response {
    asset(outpost_web_kit::APP_CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(
        include_str!("../assets/app.js"),
        "text/javascript; charset=utf-8",
    )
}
