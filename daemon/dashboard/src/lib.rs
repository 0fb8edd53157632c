//! The hub's dashboard for coordinators (DESIGN.md §9; pages follow §8):
//! server-rendered pages under `/dashboard` that work without JavaScript,
//! load nothing from outside, speak Swedish first (English by a switch
//! kept in a cookie) and show an account only its organisations.
//!
//! Layout and flow:
//! - [`router`]: the routes, behind [`guard`] (Host check, session,
//!   CSRF on every POST, security headers). The hub merges it into its
//!   own router (`outpost_hub::server`), which hands in a [`Gate`]: the
//!   hub's limiter of wrong codes and its one `signed_in` function.
//! - Signing in: `outpost admin signin` asks the hub for a one-time code
//!   (`HubStore::signin_code`); `/dashboard/signin` takes it typed or from
//!   the link. A link only fills in the form — a mail scanner that fetches
//!   it signs nobody in; the button POSTs it. The code becomes a session
//!   (`HubStore::signin`) kept in the database (several hub nodes share
//!   it), named by a random secret in an HttpOnly, SameSite=Strict cookie
//!   (Secure over TLS). A session sees what the admin token that asked
//!   for the code sees (`AdminAuth`), and ends after 30 idle minutes, 12
//!   hours, signing out, or when its token stops working.
//! - `pages`: the pages (maud). The charts and key figures are the annual
//!   report's own (`outpost_files::report`), not drawn again here.
//! - Downloads (CSV, XLSX, the report as HTML and XLSX) are written by
//!   `outpost_files` on a blocking thread into a streamed body
//!   (`outpost_web_kit::ChannelWriter`), a record at a time.
//!
//! Another organisation's pages answer 404 exactly as a missing one does,
//! so nothing about it can be observed.

mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{Datelike, NaiveDate, Utc};
use outpost_files::export::{self, ExportOptions, Format};
use outpost_files::report::ReportBuilder;
use outpost_hub_db::{AdminAuth, HubError, HubStore, hash_secret};
use outpost_proto::Record;
use outpost_proto::central::OrgConfig;
use outpost_proto::filter::Filter;
use outpost_proto::hub::StorageError;
use outpost_proto::record::Kind;
use outpost_web_kit::{ChannelWriter, Lang, cookie_value};
use serde::Deserialize;

/// Where the dashboard lives on the hub.
pub const PREFIX: &str = "/dashboard";
/// The sign-in page (`outpost admin signin` prints a link to it).
pub const SIGNIN_PATH: &str = "/dashboard/signin";
/// Records shown on one page of the records table.
pub const PAGE_SIZE: usize = 50;
/// Largest POST body read (a sign-in code, a language, a CSRF token).
const MAX_POST: usize = 16 * 1024;

const SESSION_COOKIE: &str = "outpost_dash";
const LANG_COOKIE: &str = "outpost_dash_lang";
/// Before signing in there is no session: the sign-in form carries this
/// cookie's value back (double submit), so another site cannot sign a
/// browser in to an account of its choosing.
const PRE_COOKIE: &str = "outpost_dash_pre";

/// What the hub decides about signing in, handed to the dashboard. The
/// methods may reach the database (counters every hub node shares, the
/// audit log), so the dashboard calls them on the blocking pool.
pub trait Gate: Send + Sync + 'static {
    /// Whether `addr` may try a code now (false after too many wrong
    /// codes in the last minute).
    fn may_try(&self, addr: IpAddr) -> bool;
    /// A wrong, used or expired code came from `addr`.
    fn wrong_code(&self, addr: IpAddr);
    /// Someone signed in: every successful sign-in passes here. An error
    /// (the sign-in could not be recorded) refuses the sign-in.
    fn signed_in(&self, auth: &AdminAuth, addr: IpAddr) -> Result<(), HubError>;
}

/// How the hub is reached.
#[derive(Debug, Clone, Default)]
pub struct DashConfig {
    /// `Host` values the dashboard answers to (`hub.example.se`,
    /// `127.0.0.1:7878`); any other is refused.
    pub hosts: Vec<String>,
    /// The hub speaks TLS (cookies are then Secure).
    pub tls: bool,
}

struct Dash {
    store: Arc<dyn HubStore>,
    gate: Arc<dyn Gate>,
    hosts: Vec<String>,
    origins: Vec<String>,
    tls: bool,
}

/// Who a page is for, once the guard has checked the session.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub auth: AdminAuth,
    pub csrf: String,
    pub lang: Lang,
}

/// The client's address (for the limiter and the log).
#[derive(Debug, Clone, Copy)]
struct Peer(IpAddr);

/// The dashboard's routes, for any state of the router it is merged into.
pub fn router<S: Clone + Send + Sync + 'static>(
    store: Arc<dyn HubStore>,
    gate: Arc<dyn Gate>,
    config: DashConfig,
) -> Router<S> {
    let scheme = if config.tls { "https" } else { "http" };
    let origins = config
        .hosts
        .iter()
        .map(|h| format!("{scheme}://{h}"))
        .collect();
    let dash = Arc::new(Dash {
        store,
        gate,
        hosts: config.hosts,
        origins,
        tls: config.tls,
    });
    Router::new()
        .route(PREFIX, get(home))
        .route("/dashboard/", get(|| async { Redirect::to(PREFIX) }))
        .route(SIGNIN_PATH, get(signin_page).post(signin))
        .route("/dashboard/signout", post(signout))
        .route("/dashboard/lang", post(switch_lang))
        .route("/dashboard/assets/app.css", get(css))
        .route("/dashboard/orgs/{org}", get(overview))
        .route("/dashboard/orgs/{org}/records", get(records))
        .route("/dashboard/orgs/{org}/devices", get(devices))
        .route("/dashboard/orgs/{org}/download/{file}", get(download))
        .route("/dashboard/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn_with_state(dash.clone(), guard))
        .with_state(dash)
}

fn lang_of(headers: &axum::http::HeaderMap) -> Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .unwrap_or_default()
}

/// The CSRF token of a session: derived from its secret, so nothing more
/// is stored, and no page gives away the secret itself.
fn csrf_of(secret: &str) -> String {
    hash_secret(&format!("dashboard csrf {secret}"))
}

/// Every request passes here; every answer gets the security headers.
async fn guard(State(dash): State<Arc<Dash>>, req: Request, next: Next) -> Response {
    let mut resp = check(&dash, req, next).await;
    outpost_web_kit::harden(&mut resp);
    resp
}

async fn check(dash: &Arc<Dash>, mut req: Request, next: Next) -> Response {
    let lang = lang_of(req.headers());
    if !outpost_web_kit::host_ok(req.headers(), &dash.hosts) {
        return pages::refused(
            lang,
            StatusCode::MISDIRECTED_REQUEST,
            lang.t("Fel adress", "Wrong address"),
            lang.t(
                "Navet svarar bara på sitt eget namn. Använd länken som `outpost admin signin` skriver ut.",
                "The hub answers only at its own name. Use the link `outpost admin signin` prints.",
            ),
        );
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    req.extensions_mut().insert(Peer(peer));
    let path = req.uri().path().to_string();
    let post = req.method() == Method::POST;
    if post && !outpost_web_kit::origin_ok(req.headers(), &dash.origins) {
        return out_of_date(lang);
    }
    if path.starts_with("/dashboard/assets/") || path == SIGNIN_PATH || path == "/dashboard/lang" {
        return next.run(req).await;
    }
    let secret = cookie_value(req.headers(), SESSION_COOKIE).filter(|s| !s.is_empty());
    let auth = match secret.clone() {
        None => Err(HubError::Unauthorized),
        Some(secret) => {
            let store = dash.store.clone();
            blocking(move || store.session(&secret, Utc::now())).await
        }
    };
    let auth = match auth {
        Ok(auth) => auth,
        Err(HubError::Unauthorized) if !post => {
            return Redirect::to(SIGNIN_PATH).into_response();
        }
        Err(HubError::Unauthorized) => {
            return pages::refused(
                lang,
                StatusCode::UNAUTHORIZED,
                lang.t("Inte inloggad", "Not signed in"),
                lang.t(
                    "Inget ändrades. Logga in igen med en ny kod från `outpost admin signin`.",
                    "Nothing was changed. Sign in again with a new code from `outpost admin signin`.",
                ),
            );
        }
        Err(e) => return failed(lang, e),
    };
    let csrf = csrf_of(secret.as_deref().unwrap_or_default());
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(Ctx {
        auth,
        csrf: csrf.clone(),
        lang,
    });
    if post {
        let Ok(bytes) = axum::body::to_bytes(body, MAX_POST).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
        };
        if !outpost_web_kit::csrf_ok(&parts.headers, &bytes, &csrf) {
            return out_of_date(lang);
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    next.run(Request::from_parts(parts, body)).await
}

fn out_of_date(lang: Lang) -> Response {
    pages::refused(
        lang,
        StatusCode::FORBIDDEN,
        lang.t("Sidan var för gammal", "The page was out of date"),
        lang.t(
            "Inget ändrades. Gå tillbaka, ladda om sidan och försök igen.",
            "Nothing was changed. Go back, reload the page and try again.",
        ),
    )
}

/// A storage failure: logged, and a page that tells what to do.
fn failed(lang: Lang, e: HubError) -> Response {
    tracing::error!(error = %outpost_base::logging::Chain(&e), "a dashboard request failed");
    pages::refused(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        lang.t("Det gick inte", "That did not work"),
        lang.t(
            "Navet kunde inte läsa sin databas. Försök igen om en stund; säg till navets administratör om det fortsätter.",
            "The hub could not read its database. Try again in a while; tell the hub's admin if it persists.",
        ),
    )
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, HubError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HubError::Invalid(format!("a dashboard task failed: {e}")))?
}

async fn css() -> Response {
    let body = format!(
        "{}\n{}",
        outpost_web_kit::APP_CSS,
        include_str!("../assets/dashboard.css")
    );
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

async fn not_found(Extension(ctx): Extension<Ctx>) -> Response {
    pages::not_found(ctx.lang)
}

// ---- signing in and out ----

#[derive(Debug, Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

async fn signin_page(
    State(dash): State<Arc<Dash>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<CodeQuery>,
) -> Response {
    let lang = lang_of(&headers);
    let pre = outpost_web_kit::random_secret();
    let mut resp = pages::signin(lang, &pre, q.code.as_deref().unwrap_or(""), None);
    resp.headers_mut().append(
        header::SET_COOKIE,
        outpost_web_kit::session_cookie(PRE_COOKIE, &pre, PREFIX, dash.tls),
    );
    resp
}

async fn signin(
    State(dash): State<Arc<Dash>>,
    Extension(Peer(addr)): Extension<Peer>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let lang = lang_of(&headers);
    let Ok(bytes) = axum::body::to_bytes(body, MAX_POST).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
    };
    let form = outpost_web_kit::pairs(&bytes);
    let pre = cookie_value(&headers, PRE_COOKIE).unwrap_or_default();
    if pre.is_empty() || !outpost_web_kit::csrf_ok(&headers, &bytes, &pre) {
        return out_of_date(lang);
    }
    let code = outpost_web_kit::first(&form, "code")
        .unwrap_or("")
        .to_string();
    let again = |status: StatusCode, sv: &str, en: &str| {
        let mut resp = pages::signin(lang, &pre, &code, Some(lang.t(sv, en)));
        *resp.status_mut() = status;
        resp
    };
    let gate = dash.gate.clone();
    let may_try = tokio::task::spawn_blocking(move || gate.may_try(addr))
        .await
        .unwrap_or(false);
    if !may_try {
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "För många felaktiga koder den senaste minuten. Vänta en minut och skriv koden igen.",
            "Too many wrong codes in the last minute. Wait a minute and type the code again.",
        );
    }
    let store = dash.store.clone();
    let typed = code.clone();
    let gate = dash.gate.clone();
    let signed_in = blocking(move || {
        let (secret, auth) = store.signin(&typed, Utc::now())?;
        gate.signed_in(&auth, addr)?;
        Ok(secret)
    });
    match signed_in.await {
        Ok(secret) => {
            let mut resp = Redirect::to(PREFIX).into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                outpost_web_kit::session_cookie(SESSION_COOKIE, &secret, PREFIX, dash.tls),
            );
            h.append(
                header::SET_COOKIE,
                outpost_web_kit::cleared_cookie(PRE_COOKIE, PREFIX, dash.tls),
            );
            resp
        }
        Err(HubError::BadCode) => {
            let gate = dash.gate.clone();
            let _ = tokio::task::spawn_blocking(move || gate.wrong_code(addr)).await;
            again(
                StatusCode::FORBIDDEN,
                "Koden är okänd, redan använd eller för gammal (en kod gäller i 15 minuter och bara en gång). Be om en ny med `outpost admin signin`.",
                "The code is unknown, already used or too old (a code works once, for 15 minutes). Get a new one with `outpost admin signin`.",
            )
        }
        Err(e) => failed(lang, e),
    }
}

async fn signout(State(dash): State<Arc<Dash>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(secret) = cookie_value(&headers, SESSION_COOKIE) {
        let store = dash.store.clone();
        if let Err(e) = blocking(move || store.signout(&secret)).await {
            return failed(lang_of(&headers), e);
        }
    }
    let mut resp = Redirect::to(SIGNIN_PATH).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        outpost_web_kit::cleared_cookie(SESSION_COOKIE, PREFIX, dash.tls),
    );
    resp
}

/// The language switch: a cookie, so it holds before signing in too.
/// It changes nothing but the page's language, so it needs no session
/// (the Origin check still applies).
async fn switch_lang(State(dash): State<Arc<Dash>>, body: axum::body::Bytes) -> Response {
    let form = outpost_web_kit::pairs(&body);
    let lang = outpost_web_kit::first(&form, "lang")
        .and_then(Lang::parse)
        .unwrap_or_default();
    // Back to the page the switch was on: only a path of the dashboard.
    let back = outpost_web_kit::first(&form, "back")
        .filter(|b| b.starts_with("/dashboard") && !b.contains("//") && !b.contains('\\'))
        .unwrap_or(PREFIX)
        .to_string();
    let mut resp = Redirect::to(&back).into_response();
    let secure = if dash.tls { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path={PREFIX}; Max-Age=31536000; SameSite=Strict{secure}",
        lang.code()
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

// ---- the pages ----

async fn home(State(dash): State<Arc<Dash>>, Extension(ctx): Extension<Ctx>) -> Response {
    let store = dash.store.clone();
    match blocking(move || store.orgs()).await {
        Ok(orgs) => {
            let visible: Vec<(String, String)> = orgs
                .into_iter()
                .filter(|(slug, _)| ctx.auth.check(slug).is_ok())
                .collect();
            pages::home(&ctx, &visible)
        }
        Err(e) => failed(ctx.lang, e),
    }
}

/// The org `slug` with its name, if this account may see it; otherwise
/// (another org's, or none) `None`, which every page answers with 404.
async fn visible_org(dash: &Dash, auth: &AdminAuth, slug: &str) -> Result<Option<Org>, HubError> {
    if auth.check(slug).is_err() {
        return Ok(None);
    }
    let store = dash.store.clone();
    let slug = slug.to_string();
    blocking(move || {
        let Some((slug, name)) = store.orgs()?.into_iter().find(|(s, _)| *s == slug) else {
            return Ok(None);
        };
        let config = store.config(&slug).map_err(storage_error)?;
        Ok(Some(Org {
            slug,
            name,
            config: OrgConfig::from_entries(&config),
        }))
    })
    .await
}

fn storage_error(e: StorageError) -> HubError {
    match e {
        StorageError::NoOrg(org) => HubError::NoSuchOrg(org),
        StorageError::Backend(e) => HubError::Backend(e),
    }
}

pub(crate) struct Org {
    pub slug: String,
    pub name: String,
    pub config: OrgConfig,
}

impl Org {
    /// Which catalogue counts (as the report file names it).
    fn catalogue_label(&self, lang: Lang) -> String {
        let builtin = format!(
            "{} (Outpost {})",
            lang.t("inbyggd", "built-in"),
            env!("CARGO_PKG_VERSION")
        );
        match self.config.catalogue_version {
            0 => builtin,
            v => format!(
                "{builtin} + {} {}, version {v}",
                lang.t("navets katalog för", "the hub's catalogue for"),
                self.slug
            ),
        }
    }
}

macro_rules! org_or_404 {
    ($dash:expr, $ctx:expr, $slug:expr) => {
        match visible_org(&$dash, &$ctx.auth, &$slug).await {
            Ok(Some(org)) => org,
            Ok(None) => return pages::not_found($ctx.lang),
            Err(e) => return failed($ctx.lang, e),
        }
    };
}

#[derive(Debug, Deserialize)]
struct YearQuery {
    year: Option<String>,
}

/// The year asked for (this year by default), within the report's range.
fn year_of(q: &YearQuery) -> Option<i32> {
    match q.year.as_deref().map(str::trim).filter(|y| !y.is_empty()) {
        None => Some(chrono::Local::now().year()),
        Some(y) => y.parse().ok().filter(|y| (2000..=2099).contains(y)),
    }
}

fn year_filter(year: i32) -> Filter {
    Filter {
        kind: None,
        from: NaiveDate::from_ymd_opt(year, 1, 1),
        to: NaiveDate::from_ymd_opt(year, 12, 31),
        site: None,
    }
}

async fn overview(
    State(dash): State<Arc<Dash>>,
    Extension(ctx): Extension<Ctx>,
    Path(slug): Path<String>,
    Query(q): Query<YearQuery>,
) -> Response {
    let org = org_or_404!(dash, ctx, slug);
    let Some(year) = year_of(&q) else {
        return pages::bad_request(
            ctx.lang,
            ctx.lang.t(
                "Året ska skrivas ÅÅÅÅ, 2000–2099.",
                "Write the year as YYYY, 2000–2099.",
            ),
        );
    };
    let catalogue = match org.config.catalogue() {
        Ok(c) => c,
        Err(e) => return failed(ctx.lang, HubError::Invalid(e.to_string())),
    };
    let store = dash.store.clone();
    let sites = org.config.site_list();
    let slug = org.slug.clone();
    let label = org.catalogue_label(ctx.lang);
    let lang = ctx.lang;
    // Only counts are kept while the year's records stream by.
    let report = blocking(move || {
        let mut builder = ReportBuilder::new(&catalogue, &sites, year);
        store.for_each_record(Some(&slug), &year_filter(year), &mut |r| {
            builder.add(&r);
            true
        })?;
        let report = builder.finish(&slug, &label);
        Ok((report.key_figures(lang), report.body_html(lang)))
    })
    .await;
    match report {
        Ok((figures, body)) => pages::overview(&ctx, &org, year, &figures, &body),
        Err(e) => failed(ctx.lang, e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RecordsQuery {
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub site: Option<String>,
    pub page: Option<usize>,
}

fn nonblank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl RecordsQuery {
    /// The filter the form asks for, or what is wrong with it.
    fn filter(&self, lang: Lang) -> Result<Filter, String> {
        let kind = nonblank(&self.kind)
            .map(|k| {
                k.parse::<Kind>().map_err(|_| {
                    lang.t("Välj besök eller kurs.", "Choose visit or course.")
                        .to_string()
                })
            })
            .transpose()?;
        let date = |v: &Option<String>, what: &str| {
            nonblank(v)
                .map(|s| {
                    outpost_proto::record::parse_date(s).map_err(|_| {
                        format!(
                            "{what}: {}",
                            lang.t("skriv datumet ÅÅÅÅ-MM-DD", "write the date as YYYY-MM-DD")
                        )
                    })
                })
                .transpose()
        };
        Ok(Filter {
            kind,
            from: date(&self.from, lang.t("Från", "From"))?,
            to: date(&self.to, lang.t("Till", "To"))?,
            site: nonblank(&self.site).map(str::to_string),
        })
    }
}

async fn records(
    State(dash): State<Arc<Dash>>,
    Extension(ctx): Extension<Ctx>,
    Path(slug): Path<String>,
    Query(q): Query<RecordsQuery>,
) -> Response {
    let org = org_or_404!(dash, ctx, slug);
    let filter = match q.filter(ctx.lang) {
        Ok(f) => f,
        Err(message) => return pages::records(&ctx, &org, &q, &[], false, Some(&message)),
    };
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let skip = (page - 1).saturating_mul(PAGE_SIZE);
    let store = dash.store.clone();
    let slug = org.slug.clone();
    // The records stream by; only one page (and one more, to know whether
    // there is a next page) is kept.
    let rows = blocking(move || {
        let mut seen = 0usize;
        let mut rows: Vec<Record> = Vec::with_capacity(PAGE_SIZE + 1);
        store.for_each_record(Some(&slug), &filter, &mut |r| {
            seen += 1;
            if seen > skip {
                rows.push(r);
            }
            rows.len() <= PAGE_SIZE
        })?;
        Ok(rows)
    })
    .await;
    match rows {
        Ok(mut rows) => {
            let more = rows.len() > PAGE_SIZE;
            rows.truncate(PAGE_SIZE);
            pages::records(&ctx, &org, &q, &rows, more, None)
        }
        Err(e) => failed(ctx.lang, e),
    }
}

async fn devices(
    State(dash): State<Arc<Dash>>,
    Extension(ctx): Extension<Ctx>,
    Path(slug): Path<String>,
) -> Response {
    let org = org_or_404!(dash, ctx, slug);
    let store = dash.store.clone();
    let slug = org.slug.clone();
    match blocking(move || store.devices(Some(&slug))).await {
        Ok(list) => pages::devices(&ctx, &org, &list),
        Err(e) => failed(ctx.lang, e),
    }
}

/// The files offered for download: (path segment, content type).
pub(crate) const FILES: &[(&str, &str)] = &[
    ("visits.csv", "text/csv; charset=utf-8"),
    ("courses.csv", "text/csv; charset=utf-8"),
    (
        "records.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("report.html", "text/html; charset=utf-8"),
    (
        "report.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
];

async fn download(
    State(dash): State<Arc<Dash>>,
    Extension(ctx): Extension<Ctx>,
    Path((slug, file)): Path<(String, String)>,
    Query(q): Query<YearQuery>,
) -> Response {
    let org = org_or_404!(dash, ctx, slug);
    let Some(&(name, content_type)) = FILES.iter().find(|(n, _)| *n == file) else {
        return pages::not_found(ctx.lang);
    };
    let Some(year) = year_of(&q) else {
        return pages::bad_request(
            ctx.lang,
            ctx.lang.t(
                "Året ska skrivas ÅÅÅÅ, 2000–2099.",
                "Write the year as YYYY, 2000–2099.",
            ),
        );
    };
    let catalogue = match org.config.catalogue() {
        Ok(c) => c,
        Err(e) => return failed(ctx.lang, HubError::Invalid(e.to_string())),
    };
    let sites = org.config.site_list();
    let label = org.catalogue_label(ctx.lang);
    let lang = ctx.lang;
    // A download is an export: recorded in the audit log before a byte is
    // sent (one that cannot be recorded is not sent).
    let store = dash.store.clone();
    let actor = ctx.auth.actor();
    let (audited_org, detail) = (org.slug.clone(), format!("downloaded {name} for {year}"));
    if let Err(e) = blocking(move || {
        outpost_hub_db::audit(
            &*store,
            &actor,
            "dashboard.download",
            Some(&audited_org),
            &detail,
        )
        .map(|_| ())
    })
    .await
    {
        return failed(ctx.lang, e);
    }
    let store = dash.store.clone();
    let slug = org.slug.clone();
    let (mut out, body) = ChannelWriter::new();
    tokio::task::spawn_blocking(move || {
        let filter = year_filter(year);
        // As `outpost export` does: a course with only the year's sessions.
        let in_year = |r: &mut Record| {
            if let outpost_proto::Body::Course(c) = &mut r.body {
                c.sessions.retain(|s| {
                    filter.from.is_none_or(|f| s.date >= f) && filter.to.is_none_or(|t| s.date <= t)
                });
            }
        };
        let result: Result<(), String> = (|| {
            let mut failure: Option<String> = None;
            let mut each = |f: &mut dyn FnMut(Record) -> Result<(), export::ExportError>| {
                store
                    .for_each_record(Some(&slug), &filter, &mut |r| match f(r) {
                        Ok(()) => true,
                        Err(e) => {
                            failure = Some(e.to_string());
                            false
                        }
                    })
                    .map_err(|e| e.to_string())
            };
            match name {
                "visits.csv" | "courses.csv" | "records.xlsx" => {
                    let format = if name.ends_with(".csv") {
                        Format::Csv
                    } else {
                        Format::Xlsx
                    };
                    let options = ExportOptions {
                        format,
                        excel: false,
                    };
                    let mut exporter = export::Exporter::new(&catalogue, &options, &mut out)
                        .map_err(|e| e.to_string())?;
                    match name {
                        "visits.csv" => exporter = exporter.only(Kind::Visit),
                        "courses.csv" => exporter = exporter.only(Kind::Course),
                        _ => {}
                    }
                    each(&mut |mut r| {
                        in_year(&mut r);
                        exporter.write(&r)
                    })?;
                    exporter.finish().map_err(|e| e.to_string())?;
                }
                "report.xlsx" => {
                    let mut builder = ReportBuilder::new(&catalogue, &sites, year);
                    let options = ExportOptions {
                        format: Format::Xlsx,
                        excel: false,
                    };
                    let mut exporter = export::Exporter::new(&catalogue, &options, &mut out)
                        .map_err(|e| e.to_string())?;
                    each(&mut |mut r| {
                        builder.add(&r);
                        in_year(&mut r);
                        exporter.write(&r)
                    })?;
                    let report = builder.finish(&slug, &label);
                    let sheets = report.xlsx_sheets(lang).map_err(|e| e.to_string())?;
                    exporter
                        .finish_with_sheets_first(sheets)
                        .map_err(|e| e.to_string())?;
                }
                _ => {
                    let mut builder = ReportBuilder::new(&catalogue, &sites, year);
                    each(&mut |r| {
                        builder.add(&r);
                        Ok(())
                    })?;
                    let html = builder.finish(&slug, &label).to_html(lang);
                    std::io::Write::write_all(&mut out, html.as_bytes())
                        .map_err(|e| e.to_string())?;
                }
            }
            match failure {
                Some(f) => Err(f),
                None => Ok(()),
            }
        })();
        if let Err(e) = &result {
            tracing::error!(error = %e, org = %slug, file = name, "a dashboard download stopped");
        }
        out.finish(result);
    });
    let (stem, ext) = name.split_once('.').unwrap_or((name, ""));
    let filename = format!("{}-{stem}-{year}.{ext}", org.slug);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}
