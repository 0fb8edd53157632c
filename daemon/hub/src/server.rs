//! The hub's HTTP API (axum), over plain HTTP on loopback or TLS (rustls).
//!
//! Routes (sync bodies are gzip-compressed CBOR, see `proto::sync`; admin
//! bodies are JSON):
//! - `POST /v1/enroll` — one-time code → device token;
//! - `POST /v1/sync/push`, `POST /v1/sync/pull` — device token;
//! - `/v1/admin/...` — an account's token: orgs, invites, devices,
//!   revoke, records (JSONL), erase, configuration, tokens, audit log. Every
//!   admin route is declared once in [`ADMIN_ROUTES`] with its [`Access`]:
//!   a read route serves any account within its orgs, a change route is
//!   refused to a read-only coordinator before its body is read. Every
//!   change, export and report is appended to the audit log
//!   ([`outpost_hub_db::audit`]);
//! - `GET /v1/health`;
//! - `POST /v1/admin/signin` — admin token: a one-time dashboard code;
//! - `/dashboard/...` — the coordinators' dashboard (`outpost_dashboard`,
//!   HTML pages with their own errors, session cookie and Host check);
//! - `GET /v1/admin/metrics` — admin token: request count, slow requests
//!   and the slowest request since start, so an admin can see whether the
//!   hub keeps up when every laptop comes back at once.
//!
//! Sync requests are answered by the protocol in `outpost_proto::hub`
//! over the store's storage primitives; this layer checks tokens, decodes
//! and encodes bodies, and maps errors to statuses.
//!
//! # Untrusted peers
//! Anyone can open a socket, and an enrolled laptop (or a stolen token) can
//! send anything, so:
//! - the token is checked from the headers (middleware on the sync and
//!   admin routes) before a byte of the body is read; a body is then read
//!   with a size cap and a time limit ([`Limits::body_timeout`]);
//! - connections are capped ([`Limits::max_connections`]; one over the cap
//!   is closed at once, before TLS) and a connection that sends no complete
//!   request head within [`Limits::header_timeout`] (idle keep-alive
//!   included: for hyper that is the same wait) is closed;
//! - pushes are bounded per request and per device per day
//!   (`outpost_proto::hub::limits`); pull cursors are signed, so no device
//!   can make its org's laptops resend everything (`hub::cursor`);
//! - wrong enrolment codes are counted per client address and refused for
//!   a while once there are too many, each one logged;
//! - every error answer is `{"error": "..."}` JSON ([`json_errors`]), and
//!   a 5xx answer never carries internals or panic text (they go to the
//!   log).
//!
//! Every storage call runs in `spawn_blocking`. The caller binds the
//! listener (tests bind `127.0.0.1:0` first and need no sleeps) and passes
//! a shutdown future; on shutdown in-flight requests finish (bounded by
//! [`DRAIN_TIMEOUT`]) before [`serve`] returns.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use chrono::Utc;
use outpost_base::logging::Chain;
use outpost_proto::catalogue::Catalogue;
use outpost_proto::central::{self, KIND_CATALOGUE, KIND_SITES, OrgConfig};
use outpost_proto::hub::{self, CursorCheck, CursorKey, EnrolFailures, FeedLimits, RateTaken};
use outpost_proto::record::Kind;
use outpost_proto::sync::{
    self, CONTENT_TYPE, DeviceReport, ENROLL_PATH, EnrollRequest, EnrollResponse, ErrorBody,
    MAX_BODY_BYTES, PROTOCOL_VERSION, PULL_PATH, PUSH_PATH, PullRequest, PushOutcome, PushRequest,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use outpost_hub_db::accounts::resolve_account;
use outpost_hub_db::{AdminAuth, DeviceAuth, HubError, HubStore, Role};
use outpost_proto::filter::Filter;

/// How long a request may take before the hub gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A request taking longer than this is logged as a warning and counted
/// as slow in `/v1/admin/metrics`.
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);
/// Largest enrolment request body (a code, a device id, an org slug).
pub const MAX_ENROLL_BODY: usize = 64 * 1024;
/// Largest admin request body (JSON: an org, an invite).
pub const MAX_ADMIN_BODY: usize = 1024 * 1024;
/// File descriptors kept free of connections: the database (main file,
/// WAL, shared memory, per connection), logs, TLS files, the listener.
pub const RESERVED_FDS: usize = 64;
/// Connections that 200 laptops syncing at once need (DESIGN §7), each
/// with one connection and one being replaced, with room for admins: the
/// hub warns at start when its open-file limit leaves fewer.
pub const CONNECTIONS_FOR_200_LAPTOPS: usize = 2 * 200 + 32;

/// The bounds the hub holds every peer to (settings in `hub.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time for a complete request head, counted from the connection's
    /// start or the end of the previous answer (idle keep-alive).
    pub header_timeout: Duration,
    /// Time for a whole request body to arrive once its head is read.
    pub body_timeout: Duration,
    /// Open connections at most; one over is closed at once.
    pub max_connections: usize,
    /// Wrong enrolment codes one client address may send a minute (ten
    /// times that from all addresses together).
    pub enroll_failures_per_minute: u32,
    pub feed: FeedLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            // Under REQUEST_TIMEOUT, so a body that is too slow gets this
            // timeout's own message; 16 MiB at about 3 Mbit/s.
            body_timeout: Duration::from_secs(50),
            max_connections: 4096,
            enroll_failures_per_minute: 10,
            feed: FeedLimits::default(),
        }
    }
}

/// What the sync and enrolment handlers share besides the store. The
/// rate-limit counts are not here but in the store (`HubStore::rate_take`),
/// so that every hub node on one database counts the same device and
/// address.
struct Guards {
    limits: Limits,
    key: CursorKey,
}

/// The dashboard's sign-in, as the hub decides it: wrong codes are counted
/// per address in the store (so every hub node counts them), with the
/// enrolment limit but counters of their own, and every successful
/// sign-in goes through [`signed_in`]. The dashboard calls these on the
/// blocking pool.
struct SigninGate {
    store: Shared,
    failures: EnrolFailures,
}

impl outpost_dashboard::Gate for SigninGate {
    fn may_try(&self, addr: IpAddr) -> bool {
        let keys = self.failures.keys(&addr.to_string(), Utc::now());
        match self.store.rate_counts(&keys) {
            Ok(counts) if self.failures.blocked(&counts) => {
                tracing::warn!(%addr, "dashboard sign-in refused: too many wrong codes in the last minute");
                false
            }
            Ok(_) => true,
            // The sign-in itself needs the same database and will answer
            // the failure; a count that cannot be read blocks nobody.
            Err(e) => {
                tracing::error!(%addr, error = %Chain(&e), "sign-in failures could not be counted");
                true
            }
        }
    }

    fn wrong_code(&self, addr: IpAddr) {
        let now = Utc::now();
        let takes = self.failures.failure(&addr.to_string(), now);
        match self.store.rate_take(&takes, now.timestamp()) {
            Ok(RateTaken::Taken(totals)) => {
                let n = totals.first().copied().unwrap_or(0);
                tracing::warn!(%addr, failures_this_minute = n, "dashboard sign-in refused: wrong, used or expired code");
            }
            Ok(RateTaken::Refused { used, .. }) => {
                tracing::warn!(%addr, failures_this_minute = used, "dashboard sign-in refused: wrong, used or expired code");
            }
            Err(e) => {
                tracing::error!(%addr, error = %Chain(&e), "a wrong sign-in code could not be counted")
            }
        }
    }

    fn signed_in(&self, auth: &AdminAuth, addr: IpAddr) -> Result<(), HubError> {
        signed_in(&*self.store, auth, addr)
    }
}

/// Every successful sign-in to the dashboard passes here: logged, and
/// appended to the audit log (a sign-in that cannot be recorded fails).
fn signed_in(store: &dyn HubStore, auth: &AdminAuth, addr: IpAddr) -> Result<(), HubError> {
    tracing::info!(%addr, account = %auth.id, "signed in to the dashboard");
    audit(
        store,
        auth,
        "dashboard.signin",
        None,
        "signed in to the dashboard",
    )
}

/// How the hub is reached, for the dashboard's Host check and cookies.
#[derive(Debug, Clone, Default)]
pub struct Public {
    /// The names (`host` or `host:port`) the hub answers to besides its
    /// listen address.
    pub names: Vec<String>,
    /// The address the hub listens on (its `host:port` is accepted too).
    pub listen: Option<SocketAddr>,
    pub tls: bool,
}

impl Public {
    fn dashboard(&self) -> outpost_dashboard::DashConfig {
        let mut hosts = self.names.clone();
        if let Some(addr) = self.listen {
            hosts.push(addr.to_string());
            if addr.ip().is_loopback() {
                hosts.push(format!("localhost:{}", addr.port()));
            }
        }
        outpost_dashboard::DashConfig {
            hosts,
            tls: self.tls,
        }
    }
}

/// Request timings since the hub started.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    requests: AtomicU64,
    slow: AtomicU64,
    max_micros: AtomicU64,
}

/// What `GET /v1/admin/metrics` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsReport {
    pub requests: u64,
    /// Requests that took at least [`SLOW_REQUEST`].
    pub slow_requests: u64,
    pub max_request_ms: f64,
}

impl RequestMetrics {
    fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        if took >= SLOW_REQUEST {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    pub fn report(&self) -> MetricsReport {
        MetricsReport {
            requests: self.requests.load(Ordering::Relaxed),
            slow_requests: self.slow.load(Ordering::Relaxed),
            max_request_ms: self.max_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// Times every request (from parsed head to built response).
async fn track(State(metrics): State<Arc<RequestMetrics>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let took = started.elapsed();
    metrics.record(took);
    if took >= SLOW_REQUEST {
        tracing::warn!(
            path,
            status = resp.status().as_u16(),
            ms = took.as_millis() as u64,
            "slow request"
        );
    }
    resp
}

type Shared = Arc<dyn HubStore>;

/// An API error: a status and a message for the person at the other end.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// What a 5xx answer says: the details (a database error, a panic's
/// text) are in the hub's log, never in the answer.
pub const INTERNAL_ERROR: &str = "the hub failed on this request and logged why; try again later, and tell the hub's admin if it persists";

/// A 500 whose cause is logged, not sent.
fn internal(cause: &(dyn std::error::Error + 'static)) -> ApiError {
    tracing::error!(error = %Chain(cause), "request failed inside the hub");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR.into())
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match &e {
            HubError::Unauthorized => StatusCode::UNAUTHORIZED,
            HubError::Forbidden(_) | HubError::ReadOnly(_) => StatusCode::FORBIDDEN,
            HubError::NoSuchOrg(_)
            | HubError::NoSuchDevice(_)
            | HubError::NoSuchRecord(_)
            | HubError::NoSuchAccount(_) => StatusCode::NOT_FOUND,
            HubError::LastAdmin(_) => StatusCode::CONFLICT,
            HubError::OrgExists(_) | HubError::DeviceExists(_) => StatusCode::CONFLICT,
            HubError::BadCode | HubError::CodeForOtherOrg(_) => StatusCode::FORBIDDEN,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
            HubError::Backend(_) | HubError::NotInitialized => {
                return internal(&e);
            }
        };
        ApiError(status, e.to_string())
    }
}

impl From<hub::HubError> for ApiError {
    fn from(e: hub::HubError) -> Self {
        let status = match &e {
            hub::HubError::Wire(_) => StatusCode::BAD_REQUEST,
            hub::HubError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            hub::HubError::Storage(_) => return internal(&e),
        };
        ApiError(status, e.to_string())
    }
}

/// The protocol's view of an authenticated device.
fn peer(who: &DeviceAuth) -> hub::Peer {
    hub::Peer {
        device: who.device.clone(),
        org: who.org.clone(),
    }
}

/// A new random feed epoch: positive as an i64, as backends store it.
fn new_epoch() -> u64 {
    (rand::random::<u64>() >> 1).max(1)
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// Runs blocking work (storage, body decoding and encoding) off the async
/// workers, so one large body never stalls other connections.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    // A panic in the task is logged with its text; the answer is generic.
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| internal(&e))?
}

/// Runs a blocking storage call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, ApiError> {
    off_runtime(move || f().map_err(ApiError::from)).await
}

fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "missing bearer token".into()))
}

async fn device_auth(store: &Shared, headers: &HeaderMap) -> Result<DeviceAuth, ApiError> {
    let token = bearer(headers)?;
    let store = store.clone();
    blocking(move || store.device(&token)).await.map_err(|e| {
        if e.0 == StatusCode::UNAUTHORIZED {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "this laptop's token is unknown or revoked; ask an admin for a new enrolment code and run `outpost enroll`".into(),
            )
        } else {
            e
        }
    })
}

/// Sync routes: the device token is checked from the headers before the
/// handler (and so any body extraction) runs; the handler gets the device
/// as an extension.
async fn require_device(
    State(store): State<Shared>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let who = device_auth(&store, req.headers()).await?;
    req.extensions_mut().insert(who);
    Ok(next.run(req).await)
}

/// Admin routes: as [`require_device`], for accounts' tokens; a change
/// route refuses a read-only coordinator here, before its body is read.
async fn require_admin(
    State((store, access)): State<(Shared, Access)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers())?;
    let admin = blocking(move || store.admin(&token)).await?;
    if access == Access::Change {
        admin.check_writer()?;
    }
    req.extensions_mut().insert(admin);
    Ok(next.run(req).await)
}

/// Appends to the audit log as `admin` (see [`outpost_hub_db::audit`]):
/// called from blocking code, after the action succeeded (or before a
/// read is streamed). A failed append fails the request: an action that
/// cannot be recorded is not reported as done.
fn audit(
    store: &dyn HubStore,
    admin: &AdminAuth,
    action: &str,
    org: Option<&str>,
    detail: &str,
) -> Result<(), HubError> {
    outpost_hub_db::audit(store, &admin.actor(), action, org, detail).map(|_| ())
}

/// Reads a request body of at most `limit` bytes within `timeout`: a
/// declared length over the limit is refused before reading, a body that
/// grows past it is cut off, and a peer that sends too slowly (or stops
/// half-way) is answered 408 instead of holding a connection and a buffer.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than the hub accepts ({} KiB at most)",
                limit / 1024
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let collect = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit));
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(ApiError(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s; try again (on a better connection)",
                timeout.as_secs()
            ),
        )),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(bad_request("the request body was cut off; try again")),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    sync::encode_body(value).map_err(|e| internal(&e))
}

/// A sync answer body already encoded with [`encode`].
fn cbor_body(body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        body,
    )
        .into_response()
}

fn cbor_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    Ok(cbor_body(encode(value)?))
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    sync::decode_body(body).map_err(|e| bad_request(format!("malformed request body: {e}")))
}

fn version(v: u16) -> Result<(), ApiError> {
    sync::check_version(v).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

/// `ok` while writes work; 503 with the reason when they do not, so a
/// supervisor or an admin sees a hub that answers but cannot store.
/// A laptop's report as it may be kept: checked by the rule the laptop
/// applies too (the hub trusts nothing). A refused one refuses the request
/// with the reason; nothing of it is written anywhere, logs included.
fn checked_report(report: Option<&DeviceReport>) -> Result<Option<DeviceReport>, ApiError> {
    report
        .map(DeviceReport::check)
        .transpose()
        .map_err(|e| {
            bad_request(format!(
                "{e} (this laptop's name is changed with `outpost rename NAME`, its site and staff in its settings)"
            ))
        })
}

async fn health(State(store): State<Shared>) -> Result<&'static str, ApiError> {
    blocking(move || store.health()).await.map_err(|e| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the hub cannot write: {}; check the disk and the hub's log",
                e.1
            ),
        )
    })?;
    Ok("ok")
}

async fn enroll(
    State(store): State<Shared>,
    Extension(guards): Extension<Arc<Guards>>,
    ConnectInfo(peer_addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let addr = peer_addr.ip();
    let failures = EnrolFailures::enrolment(guards.limits.enroll_failures_per_minute);
    let counted = Arc::clone(&store);
    let keys = failures.keys(&addr.to_string(), Utc::now());
    let counts = blocking(move || counted.rate_counts(&keys)).await?;
    if failures.blocked(&counts) {
        tracing::warn!(%addr, "enrolment refused: too many wrong codes in the last minute");
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            "too many wrong enrolment codes were tried in the last minute; wait a minute and type the code again carefully".into(),
        ));
    }
    let body = read_body(&headers, body, MAX_ENROLL_BODY, guards.limits.body_timeout).await?;
    let req: EnrollRequest = decode(&body)?;
    version(req.v)?;
    // Checked before the code is looked at: a refused name binds nothing
    // and is not a wrong code.
    let report = checked_report(req.report.as_ref())?;
    let now = Utc::now();
    let device = req.device;
    let enrolling = Arc::clone(&store);
    let result = blocking(move || {
        let r = enrolling.enroll(&req.code, req.device, req.org.as_deref(), now)?;
        let id = req.device.to_string();
        enrolling.seen(&id, now, Some(req.device_time))?;
        if let Some(report) = &report {
            enrolling.report_device(&id, report)?;
        }
        Ok(r)
    })
    .await;
    let (org, token) = match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e.0, StatusCode::FORBIDDEN) {
                let takes = failures.failure(&addr.to_string(), now);
                let counted = blocking(move || store.rate_take(&takes, now.timestamp())).await?;
                let n = match counted {
                    RateTaken::Taken(totals) => totals.first().copied().unwrap_or(0),
                    RateTaken::Refused { used, .. } => used,
                };
                tracing::warn!(%addr, %device, failures_this_minute = n, reason = %e.1, "enrolment refused");
            }
            return Err(e);
        }
    };
    tracing::info!(%org, %device, %addr, "device enrolled");
    cbor_response(&EnrollResponse {
        v: PROTOCOL_VERSION,
        org,
        token,
    })
}

async fn push(
    State(store): State<Shared>,
    Extension(guards): Extension<Arc<Guards>>,
    Extension(who): Extension<DeviceAuth>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&headers, body, MAX_BODY_BYTES, guards.limits.body_timeout).await?;
    let (answer, docs, erased) = off_runtime(move || {
        let req: PushRequest = decode(&body)?;
        version(req.v)?;
        let now = Utc::now();
        // Seen, and its report kept, even when the push is then refused
        // over a limit: an admin sees a laptop that is alive but behind.
        let report = checked_report(req.report.as_ref())?;
        store.seen(&who.device, now, Some(req.device_time))?;
        if let Some(report) = &report {
            store.report_device(&who.device, report)?;
        }
        if let Err(e) = guards.limits.feed.check_push(&req) {
            tracing::warn!(device = %who.device, org = %who.org, docs = req.docs.len(), erasures = req.erased.len(), "push refused: {e}");
            return Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()));
        }
        let quota = guards.limits.feed.push_quota(
            &who.device,
            req.docs.len() as u64,
            req.erased.len() as u64,
            now,
        );
        if let RateTaken::Refused { index, used } = store.rate_take(&quota, now.timestamp())? {
            let e = guards.limits.feed.push_refused(index, used);
            tracing::warn!(device = %who.device, org = %who.org, docs = req.docs.len(), erasures = req.erased.len(), "push refused: {e}");
            return Err(ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()));
        }
        let resp = hub::push(&*store, &peer(&who), &req, now)?;
        for r in &resp.results {
            if let PushOutcome::Refused { reason } = &r.outcome {
                tracing::warn!(device = %who.device, record = %r.id, %reason, "refused a pushed record");
            }
        }
        Ok((encode(&resp)?, req.docs.len(), resp.erased.len()))
    })
    .await?;
    tracing::debug!(docs, erased, "push handled");
    Ok(cbor_body(answer))
}

async fn pull(
    State(store): State<Shared>,
    Extension(guards): Extension<Arc<Guards>>,
    Extension(who): Extension<DeviceAuth>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&headers, body, MAX_ENROLL_BODY, guards.limits.body_timeout).await?;
    let answer = off_runtime(move || {
        let req: PullRequest = decode(&body)?;
        version(req.v)?;
        // Every sync ends with a pull, so this is where a laptop with
        // nothing to push is seen and says what is left waiting.
        let report = checked_report(req.report.as_ref())?;
        store.seen(&who.device, Utc::now(), req.device_time)?;
        if let Some(report) = &report {
            store.report_device(&who.device, report)?;
        }
        let pulled = hub::pull(&*store, &peer(&who), &req, &guards.key, new_epoch)?;
        match pulled.cursor {
            CursorCheck::InFeed => {}
            CursorCheck::Restored => tracing::warn!(
                device = %who.device, org = %who.org, since = req.since,
                "a laptop had read further than the feed goes, at a position this hub signed: the hub was restored from a backup; the org's feed has a new epoch and every laptop of it sends everything again"
            ),
            CursorCheck::Unproven => tracing::warn!(
                device = %who.device, org = %who.org, since = req.since,
                "a pull cursor beyond the feed that this hub did not sign in this epoch: only this laptop is sent back to the feed's end"
            ),
        }
        encode(&pulled.response)
    })
    .await?;
    Ok(cbor_body(answer))
}

#[derive(Debug, Deserialize)]
struct OrgAdd {
    slug: String,
    name: String,
}

async fn org_add(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<OrgAdd>,
) -> Result<StatusCode, ApiError> {
    if admin.check_change(None).is_err() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "only a hub-wide admin token may add organisations".into(),
        ));
    }
    blocking(move || {
        store.add_org(&body.slug, &body.name)?;
        let detail = format!("added organisation {} ({})", body.slug, body.name.trim());
        audit(&*store, &admin, "org.add", Some(&body.slug), &detail)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

async fn org_list(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
) -> Result<Response, ApiError> {
    let orgs = blocking(move || store.orgs()).await?;
    let visible: Vec<_> = orgs
        .into_iter()
        .filter(|(slug, _)| admin.check(slug).is_ok())
        .map(|(slug, name)| serde_json::json!({"slug": slug, "name": name}))
        .collect();
    Ok(axum::Json(visible).into_response())
}

#[derive(Debug, Deserialize)]
struct InviteBody {
    org: String,
}

async fn invite(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<InviteBody>,
) -> Result<Response, ApiError> {
    admin.check_change(Some(&body.org))?;
    let code = blocking(move || {
        let code = store.invite(&body.org, Utc::now())?;
        audit(
            &*store,
            &admin,
            "invite",
            Some(&body.org),
            "made an enrolment code",
        )?;
        Ok(code)
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "code": code })).into_response())
}

#[derive(Debug, Deserialize)]
struct OrgQuery {
    org: Option<String>,
}

async fn devices(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, ApiError> {
    let orgs = visible_orgs(&admin, q.org)?;
    let list = blocking(move || match orgs {
        None => store.devices(None),
        Some(orgs) => {
            let mut all = Vec::new();
            for org in &orgs {
                all.extend(store.devices(Some(org))?);
            }
            Ok(all)
        }
    })
    .await?;
    Ok(axum::Json(list).into_response())
}

async fn revoke(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Path(device): Path<String>,
) -> Result<Response, ApiError> {
    revoke_named(store, admin, device).await
}

#[derive(Debug, Deserialize)]
struct RevokeBody {
    device: String,
}

/// `POST /v1/admin/devices/revoke` `{"device": …}`: the device named by its
/// id, a unique prefix of it or its exact name (a name may hold any
/// character, so it travels in the body rather than the path).
async fn revoke_by_body(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<RevokeBody>,
) -> Result<Response, ApiError> {
    revoke_named(store, admin, body.device).await
}

/// Revokes the one device `wanted` names among those this admin may see
/// (`outpost_proto::device::pick`, the rule local commands use for record
/// ids); answers it as `admin devices` lists it. A device of an org this
/// admin may not see is never a candidate, so neither a prefix nor an
/// ambiguity reveals it.
async fn revoke_named(
    store: Shared,
    admin: AdminAuth,
    wanted: String,
) -> Result<Response, ApiError> {
    let revoked = blocking(move || {
        // Candidates are the devices this account may see; revoking one
        // is a change, which a read-only (coordinator) account may not make.
        let visible = store
            .devices(None)?
            .into_iter()
            .filter(|d| admin.check(&d.org).is_ok());
        let device = outpost_proto::device::pick(
            &wanted,
            visible,
            |d| &d.id,
            |d| d.name.as_deref(),
            |d| format!("{} ({})", d.id, d.name.as_deref().unwrap_or("-")),
        )
        .map_err(|e| match e {
            outpost_proto::device::PickError::Ambiguous { .. } => {
                HubError::Invalid(format!("{e}; `outpost admin devices` lists them"))
            }
            _ => HubError::NoSuchDevice(e.to_string()),
        })?;
        admin.check_change(Some(&device.org))?;
        store.revoke(&device.id, Utc::now())?;
        let detail = format!("revoked device {}", device.id);
        audit(&*store, &admin, "device.revoke", Some(&device.org), &detail)?;
        Ok(outpost_hub_db::DeviceInfo {
            revoked: true,
            ..device
        })
    })
    .await?;
    tracing::info!(device = %revoked.id, org = %revoked.org, "device revoked");
    Ok(axum::Json(revoked).into_response())
}

async fn erase(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Path(id): Path<String>,
    Query(q): Query<OrgQuery>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(id.trim())
        .map_err(|_| bad_request(format!("{id:?} is not a record id (a UUID)")))?;
    let org = q.org;
    off_runtime(move || {
        // Ids are scoped by organisation: the admin names the org, or the
        // id must be held by exactly one org the admin may see. An org the
        // admin may not see answers as if it held nothing.
        let holders: Vec<String> = store
            .record_orgs(&id.to_string())?
            .into_iter()
            .filter(|o| admin.check_change(Some(o)).is_ok())
            .filter(|o| org.as_ref().is_none_or(|want| want == o))
            .collect();
        let org = match (holders.as_slice(), org) {
            ([one], _) => one.clone(),
            ([], _) => return Err(HubError::NoSuchRecord(id.to_string()).into()),
            (_, _) => {
                return Err(bad_request(format!(
                    "record {id} is held by several organisations ({}); name one with --org",
                    holders.join(", ")
                )));
            }
        };
        hub::erase(&*store, &org, id, Utc::now())?;
        audit(
            &*store,
            &admin,
            "record.erase",
            Some(&org),
            &format!("erased record {id}"),
        )?;
        tracing::info!(%org, record = %id, "an admin erased a record");
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The org an admin names, or the one its token is scoped to (read
/// access checked).
fn admin_org(admin: &AdminAuth, org: Option<String>) -> Result<String, ApiError> {
    let org = org
        .or_else(|| admin.single_org().map(str::to_string))
        .ok_or_else(|| {
            bad_request("name the organisation with --org (this token may see several)")
        })?;
    admin.check(&org)?;
    Ok(org)
}

/// [`admin_org`] for a change.
fn admin_org_change(admin: &AdminAuth, org: Option<String>) -> Result<String, ApiError> {
    let org = admin_org(admin, org)?;
    admin.check_change(Some(&org))?;
    Ok(org)
}

/// The orgs a read covers: the one asked for (read access checked), else
/// every org the account may see (None: all).
fn visible_orgs(admin: &AdminAuth, org: Option<String>) -> Result<Option<Vec<String>>, ApiError> {
    match org {
        Some(o) => {
            admin.check(&o)?;
            Ok(Some(vec![o]))
        }
        None => Ok(admin.orgs.clone()),
    }
}

/// An org's central configuration (`outpost_proto::central`), as laptops
/// receive it: `outpost admin catalogue show`, `sites list`, and the
/// catalogue and site list `admin stats` and `admin report` count with.
async fn config_show(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, ApiError> {
    let org = admin_org(&admin, q.org)?;
    let config = blocking(move || org_config(&*store, &org)).await?;
    Ok(axum::Json(config).into_response())
}

fn org_config(store: &dyn HubStore, org: &str) -> Result<OrgConfig, HubError> {
    let entries = store.config(org).map_err(storage_error)?;
    Ok(OrgConfig::from_entries(&entries))
}

/// The storage's "no such org" is the admin's 404; anything else is a 500.
fn storage_error(e: hub::StorageError) -> HubError {
    match e {
        hub::StorageError::NoOrg(org) => HubError::NoSuchOrg(org),
        hub::StorageError::Backend(e) => HubError::Backend(e),
    }
}

#[derive(Debug, Deserialize)]
struct CatalogueSet {
    org: Option<String>,
    /// The override file's text (the `catalogue.toml` format).
    toml: String,
}

/// `outpost admin catalogue set FILE --org ORG`: checked as a laptop would
/// read it, so a file that laptops could not use is refused here.
async fn catalogue_set(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<CatalogueSet>,
) -> Result<Response, ApiError> {
    let org = admin_org_change(&admin, body.org)?;
    Catalogue::builtin()
        .with_overrides(&body.toml, "the catalogue file")
        .map_err(|e| bad_request(e.to_string()))?;
    let config = blocking(move || {
        store
            .set_config(&org, KIND_CATALOGUE, body.toml.as_bytes())
            .map_err(storage_error)?;
        tracing::info!(%org, "an admin set the service catalogue");
        let config = org_config(&*store, &org)?;
        let detail = format!(
            "set the service catalogue (version {})",
            config.catalogue_version
        );
        audit(&*store, &admin, "catalogue.set", Some(&org), &detail)?;
        Ok(config)
    })
    .await?;
    Ok(axum::Json(config).into_response())
}

#[derive(Debug, Deserialize)]
struct SitesEdit {
    org: Option<String>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// How often a site-list edit reads again after another edit of the same
/// list came between its read and its write. Each retry means another
/// admin's edit landed, so a handful is plenty.
const SITES_EDIT_TRIES: usize = 8;

/// `outpost admin sites add|remove`: the list is read, edited
/// (`central::edit_sites`) and written back whole, conditionally on the
/// version read: when two admins (on two hub nodes, say) edit at once, the
/// later write is refused by the storage and this edit is made again over
/// the list the other one left, so neither change is lost.
async fn sites_edit(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<SitesEdit>,
) -> Result<Response, ApiError> {
    let org = admin_org_change(&admin, body.org)?;
    let config = off_runtime(move || {
        for _ in 0..SITES_EDIT_TRIES {
            let entries = store.config(&org).map_err(storage_error)?;
            let read = entries
                .iter()
                .find(|e| e.kind == KIND_SITES)
                .map_or(0, |e| e.version);
            let current = OrgConfig::from_entries(&entries);
            let sites = central::edit_sites(&current.sites, &body.add, &body.remove)
                .map_err(bad_request)?;
            let written = store
                .put_config(&org, KIND_SITES, &OrgConfig::sites_blob(&sites), Some(read))
                .map_err(storage_error)?;
            if written.is_some() {
                tracing::info!(%org, "an admin changed the site list");
                let detail = format!(
                    "site list: added [{}], removed [{}]",
                    body.add.join(", "),
                    body.remove.join(", ")
                );
                audit(&*store, &admin, "sites.edit", Some(&org), &detail)?;
                return Ok(org_config(&*store, &org)?);
            }
        }
        Err(ApiError::from(HubError::Invalid(
            "the site list kept changing while this edit was made; try again".into(),
        )))
    })
    .await?;
    Ok(axum::Json(config).into_response())
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    org: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    site: Option<String>,
    /// What the records are read for (`export`, `stats`, `report`), as the
    /// audit log records it.
    purpose: Option<String>,
}

/// All records the admin may see, as JSONL (one record object per line).
async fn records(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, ApiError> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<Kind>()
                .map_err(|m| bad_request(format!("kind: {m}")))
        })
        .transpose()?;
    let date = |v: &Option<String>, name: &str| {
        v.as_deref()
            .map(|s| {
                outpost_proto::record::parse_date(s)
                    .map_err(|m| bad_request(format!("{name}: {m}")))
            })
            .transpose()
    };
    let filter = Filter {
        kind,
        from: date(&q.from, "from")?,
        to: date(&q.to, "to")?,
        site: q.site,
    };
    let purpose = match q.purpose.as_deref() {
        None | Some("export") => "export",
        Some("stats") => "stats",
        Some("report") => "report",
        Some(other) => {
            return Err(bad_request(format!(
                "purpose {other:?}: export, stats or report"
            )));
        }
    };
    // Which orgs to read is decided here, not in storage: the one asked
    // for (refused before the stream starts if the token may not see it,
    // so the client gets a proper status instead of a cut-off body), else
    // the token's own orgs, else every org.
    let orgs = visible_orgs(&admin, q.org)?;
    let detail = format!(
        "read records ({purpose}): kind {}, from {}, to {}, site {}",
        filter.kind.map_or("any", Kind::as_str),
        filter.from.map_or("any".into(), |d| d.to_string()),
        filter.to.map_or("any".into(), |d| d.to_string()),
        filter.site.as_deref().unwrap_or("any"),
    );
    let (audit_store, audit_orgs) = (store.clone(), orgs.clone());
    blocking(move || match &audit_orgs {
        None => audit(&*audit_store, &admin, purpose, None, &detail),
        Some(orgs) => orgs
            .iter()
            .try_for_each(|o| audit(&*audit_store, &admin, purpose, Some(o), &detail)),
    })
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        stream_records(store, orgs, filter),
    )
        .into_response())
}

/// Bytes gathered per chunk of a streamed export.
const EXPORT_CHUNK: usize = 64 * 1024;

/// Streams the records' JSONL as the store reads them: a blocking task
/// fills chunks into a small channel, and the body sends each one as it
/// comes, so the hub holds a few chunks, never the whole export (100,000
/// records used to be one ~100 MB `Vec`). A slow reader slows the task
/// down (the channel is bounded); a reader that goes away ends it. A
/// storage error mid-stream aborts the body, so the client sees a broken
/// transfer rather than a silently short export.
fn stream_records(store: Shared, orgs: Option<Vec<String>>, filter: Filter) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
        let mut gone = false;
        // None: every org in one pass; else each org of the account's in
        // turn.
        let orgs: Vec<Option<String>> = match orgs {
            None => vec![None],
            Some(list) => list.into_iter().map(Some).collect(),
        };
        let mut result = Ok(());
        for org in &orgs {
            if gone || result.is_err() {
                break;
            }
            result = store.for_each_record(org.as_deref(), &filter, &mut |r| {
                if serde_json::to_writer(&mut chunk, &r).is_ok() {
                    chunk.push(b'\n');
                }
                if chunk.len() >= EXPORT_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
                    gone = tx.blocking_send(Ok(Bytes::from(full))).is_err();
                }
                // The client went away: stop reading rows.
                !gone
            });
        }
        let last = match result {
            Ok(()) => Ok(Bytes::from(chunk)),
            Err(e) => {
                tracing::error!(error = %Chain(&e), "record export stopped");
                Err(std::io::Error::other(e.to_string()))
            }
        };
        if !gone {
            let _ = tx.blocking_send(last);
        }
    });
    axum::body::Body::new(outpost_web_kit::ChannelBody(rx))
}

/// `outpost admin signin`: a one-time code for the dashboard, for the
/// holder of this request's token (a session then sees what the token
/// sees), and the sign-in page's path with the code in it.
async fn signin_code(
    State(store): State<Shared>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    let code = blocking(move || store.signin_code(&token, Utc::now())).await?;
    let path = format!("{}?code={code}", outpost_dashboard::SIGNIN_PATH);
    Ok(axum::Json(serde_json::json!({
        "code": code,
        "path": path,
        "expires_in_minutes": outpost_hub_db::SIGNIN_CODE_TTL.num_minutes(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct TokenCreate {
    name: String,
    #[serde(default)]
    coordinator: bool,
    /// The orgs the token is scoped to (none: every org; a coordinator
    /// needs at least one).
    #[serde(default)]
    orgs: Vec<String>,
}

/// `outpost admin token create`: a new named account; its token is in
/// this answer only.
async fn token_create(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    axum::Json(body): axum::Json<TokenCreate>,
) -> Result<Response, ApiError> {
    admin.check_change(None)?;
    let role = if body.coordinator {
        Role::Coordinator
    } else {
        Role::Admin
    };
    let (account, token) = blocking(move || {
        let orgs = (!body.orgs.is_empty()).then_some(body.orgs.as_slice());
        let (account, token) = store.create_account(&body.name, role, orgs, Utc::now())?;
        let scope = account
            .orgs
            .as_ref()
            .map_or("every organisation".to_string(), |o| o.join(", "));
        let detail = format!(
            "created {} token {} ({}) for {scope}",
            role.as_str(),
            account.id,
            account.name
        );
        audit(&*store, &admin, "token.create", None, &detail)?;
        Ok((account, token))
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "admin_token": token, "id": account.id })).into_response())
}

/// `outpost admin token list`: every account, never a secret.
async fn token_list(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
) -> Result<Response, ApiError> {
    admin.check_change(None)?;
    let list = blocking(move || store.accounts()).await?;
    Ok(axum::Json(list).into_response())
}

/// `outpost admin token revoke ID` (an id or a prefix of one).
async fn token_revoke(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin.check_change(None)?;
    let account = blocking(move || {
        let account = resolve_account(&*store, &id)?;
        store.revoke_account(&account.id, Utc::now())?;
        let detail = format!("revoked token {} ({})", account.id, account.name);
        audit(&*store, &admin, "token.revoke", None, &detail)?;
        Ok(account)
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "id": account.id, "name": account.name })).into_response())
}

/// `outpost admin token rotate ID`: a new secret for the same account;
/// the old one stops at once.
async fn token_rotate(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    admin.check_change(None)?;
    let (account, token) = blocking(move || {
        let account = resolve_account(&*store, &id)?;
        let token = store.rotate_account(&account.id)?;
        let detail = format!("rotated token {} ({})", account.id, account.name);
        audit(&*store, &admin, "token.rotate", None, &detail)?;
        Ok((account, token))
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "admin_token": token, "id": account.id })).into_response())
}

/// What `GET /v1/admin/audit` answers: the entries the account may see,
/// and the verdict on the whole chain (verified here, where every entry
/// is, even when the account sees only its orgs' entries).
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditAnswer {
    pub entries: Vec<outpost_hub_db::AuditEntry>,
    pub verdict: outpost_hub_db::AuditVerdict,
}

async fn audit_log(
    State(store): State<Shared>,
    Extension(admin): Extension<AdminAuth>,
    Query(q): Query<OrgQuery>,
) -> Result<Response, ApiError> {
    let orgs = visible_orgs(&admin, q.org)?;
    let answer = blocking(move || {
        let mut entries = Vec::new();
        store.for_each_audit(orgs.as_deref(), &mut |e| {
            entries.push(e);
            true
        })?;
        let verdict = outpost_hub_db::verify_audit(&*store)?;
        Ok(AuditAnswer { entries, verdict })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}

async fn metrics(
    Extension(metrics): Extension<Arc<RequestMetrics>>,
) -> Result<axum::Json<MetricsReport>, ApiError> {
    Ok(axum::Json(metrics.report()))
}

/// Makes every error answer `{"error": "..."}` JSON, whatever produced
/// it: a handler (already JSON), an extractor's rejection (plain text,
/// kept as the message when short), the router (404, 405), the timeout
/// layer (408, empty) or the panic handler. A 5xx never keeps its text.
async fn json_errors(req: Request, next: Next) -> Response {
    // The dashboard's pages answer errors as pages of their own.
    let dashboard = req.uri().path().starts_with(outpost_dashboard::PREFIX);
    let resp = next.run(req).await;
    if dashboard {
        return resp;
    }
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = if status.is_server_error() {
        None
    } else {
        axum::body::to_bytes(body, 1024)
            .await
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let message = text.unwrap_or_else(|| default_message(status));
    let mut answer = ApiError(status, message).into_response();
    // Keep what the status needs (e.g. `Allow` on a 405).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// The message of an error answer that came without one.
fn default_message(status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => {
            "no such hub endpoint; check the hub URL, and that outpost and the hub are of the same release".into()
        }
        StatusCode::METHOD_NOT_ALLOWED => "this hub endpoint does not take that method".into(),
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request took longer than the hub allows ({} s); try again",
            REQUEST_TIMEOUT.as_secs()
        ),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the hub accepts".into(),
        StatusCode::TOO_MANY_REQUESTS => "too many requests; wait a minute and try again".into(),
        s if s.is_server_error() => INTERNAL_ERROR.into(),
        s => s
            .canonical_reason()
            .unwrap_or("the hub refused the request")
            .to_lowercase(),
    }
}

/// A handler that panicked: the panic's text goes to the log only.
fn panic_answer(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = text, "a request handler panicked");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR.into()).into_response()
}

/// Whether an admin route reads or changes: a read serves any account
/// within its orgs; a change is refused to a coordinator (read-only)
/// before the body is read, and the handler checks the org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Change,
}

/// An admin route: method, path (axum syntax) and access.
#[derive(Debug, Clone, Copy)]
pub struct AdminRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> AdminRoute {
    AdminRoute {
        method,
        path,
        access,
    }
}

/// Every admin route, declared once: the router is built from this list
/// (so no route exists without its access), and the accounts test walks
/// it with a coordinator's token.
pub const ADMIN_ROUTES: &[AdminRoute] = &[
    route("POST", "/v1/admin/orgs", Access::Change),
    route("GET", "/v1/admin/orgs", Access::Read),
    route("POST", "/v1/admin/invites", Access::Change),
    route("GET", "/v1/admin/devices", Access::Read),
    route("POST", "/v1/admin/devices/{id}/revoke", Access::Change),
    route("POST", "/v1/admin/devices/revoke", Access::Change),
    route("GET", "/v1/admin/records", Access::Read),
    route("DELETE", "/v1/admin/records/{id}", Access::Change),
    route("GET", "/v1/admin/metrics", Access::Change),
    route("GET", "/v1/admin/config", Access::Read),
    route("PUT", "/v1/admin/config/catalogue", Access::Change),
    route("POST", "/v1/admin/config/sites", Access::Change),
    route("GET", "/v1/admin/tokens", Access::Change),
    route("POST", "/v1/admin/tokens", Access::Change),
    route("POST", "/v1/admin/tokens/{id}/revoke", Access::Change),
    route("POST", "/v1/admin/tokens/{id}/rotate", Access::Change),
    route("GET", "/v1/admin/audit", Access::Read),
    route("POST", "/v1/admin/signin", Access::Read),
];

/// The handler of a declared admin route.
fn admin_handler(method: &str, path: &str) -> Option<MethodRouter<Shared>> {
    Some(match (method, path) {
        ("POST", "/v1/admin/orgs") => post(org_add),
        ("GET", "/v1/admin/orgs") => get(org_list),
        ("POST", "/v1/admin/invites") => post(invite),
        ("GET", "/v1/admin/devices") => get(devices),
        ("POST", "/v1/admin/devices/{id}/revoke") => post(revoke),
        ("POST", "/v1/admin/devices/revoke") => post(revoke_by_body),
        ("GET", "/v1/admin/records") => get(records),
        ("DELETE", "/v1/admin/records/{id}") => axum::routing::delete(erase),
        ("GET", "/v1/admin/metrics") => get(metrics),
        ("GET", "/v1/admin/config") => get(config_show),
        ("PUT", "/v1/admin/config/catalogue") => axum::routing::put(catalogue_set),
        ("POST", "/v1/admin/config/sites") => post(sites_edit),
        ("GET", "/v1/admin/tokens") => get(token_list),
        ("POST", "/v1/admin/tokens") => post(token_create),
        ("POST", "/v1/admin/tokens/{id}/revoke") => post(token_revoke),
        ("POST", "/v1/admin/tokens/{id}/rotate") => post(token_rotate),
        ("GET", "/v1/admin/audit") => get(audit_log),
        ("POST", "/v1/admin/signin") => post(signin_code),
        _ => return None,
    })
}

/// The hub's routes over `store`, with default limits and `key` for
/// signing pull cursors.
pub fn router(store: Shared, key: CursorKey) -> Router {
    router_with(store, key, Limits::default())
}

/// The hub's routes over `store` (the dashboard answers to no Host: see
/// [`router_public`]).
pub fn router_with(store: Shared, key: CursorKey, limits: Limits) -> Router {
    router_public(store, key, limits, &Public::default())
}

/// The hub's routes over `store`, the dashboard answering at `public`.
pub fn router_public(store: Shared, key: CursorKey, limits: Limits, public: &Public) -> Router {
    let request_metrics = Arc::new(RequestMetrics::default());
    let guards = Arc::new(Guards { limits, key });
    // Each group's token is checked by a route layer, which runs before
    // the handler's extractors: no body is read for a request without a
    // valid token.
    let sync_routes = Router::new()
        .route(PUSH_PATH, post(push))
        .route(PULL_PATH, post(pull))
        .route_layer(middleware::from_fn_with_state(
            store.clone(),
            require_device,
        ));
    // Each admin route gets the account check with its declared access.
    let mut admin_routes = Router::new();
    for route in ADMIN_ROUTES {
        let Some(handler) = admin_handler(route.method, route.path) else {
            // A declared route without a handler (a unit test keeps this
            // from shipping): it answers 404 rather than stopping the hub.
            tracing::error!(route.method, route.path, "admin route has no handler");
            continue;
        };
        admin_routes = admin_routes.route(
            route.path,
            handler.route_layer(middleware::from_fn_with_state(
                (store.clone(), route.access),
                require_admin,
            )),
        );
    }
    let gate = Arc::new(SigninGate {
        store: store.clone(),
        failures: EnrolFailures::signin(limits.enroll_failures_per_minute),
    });
    let routes = Router::new()
        .merge(outpost_dashboard::router(
            store.clone(),
            gate,
            public.dashboard(),
        ))
        .route("/v1/health", get(health))
        .route(ENROLL_PATH, post(enroll))
        .merge(sync_routes)
        .merge(admin_routes)
        // Sync and enrolment bodies are read by `read_body` with their own
        // caps; this bounds the admin JSON extractors.
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .layer(Extension(guards))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(Extension(request_metrics.clone()))
        .layer(middleware::from_fn_with_state(request_metrics, track));
    error_layers(routes).with_state(store)
}

/// The outermost layers: a panic becomes a logged, generic 500, and every
/// error answer becomes `{"error": ...}` JSON.
fn error_layers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_answer,
        ))
        .layer(middleware::from_fn(json_errors))
}

/// TLS material for the hub.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Caps open connections: a connection over the cap is closed as soon as
/// it is accepted (before any TLS work), so file descriptors and memory
/// stay bounded however many sockets a peer opens. Each admitted
/// connection holds a permit until it closes.
#[derive(Clone)]
struct ConnectionCap {
    permits: Arc<tokio::sync::Semaphore>,
    refused: Arc<AtomicU64>,
}

impl<I, S> axum_server::accept::Accept<I, S> for ConnectionCap {
    type Stream = Capped<I>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Capped<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((
                Capped {
                    inner: stream,
                    _permit: permit,
                },
                service,
            )),
            Err(_) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at the 1st, 2nd, 4th, 8th... refusal: a flood
                // shows in the log without filling it.
                if n.is_power_of_two() {
                    tracing::warn!(
                        refused = n,
                        "connection cap reached: closed a new connection (max_connections in hub.toml)"
                    );
                }
                Err(std::io::Error::other("connection cap reached"))
            }
        })
    }
}

/// A connection admitted by [`ConnectionCap`].
struct Capped<I> {
    inner: I,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves the hub on an already-bound listener until `shutdown` resolves,
/// then lets in-flight requests finish. Default limits.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Shared,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, store, tls, Limits::default(), shutdown).await
}

/// [`serve`] with the given limits.
pub async fn serve_with(
    listener: std::net::TcpListener,
    store: Shared,
    tls: Option<TlsFiles>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_public(listener, store, tls, limits, Vec::new(), shutdown).await
}

/// [`serve_with`], the dashboard also answering at `names` (the hub's
/// public name, `public_name` in hub.toml) besides the listen address.
pub async fn serve_public(
    listener: std::net::TcpListener,
    store: Shared,
    tls: Option<TlsFiles>,
    limits: Limits,
    names: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let public = Public {
        names,
        listen: listener.local_addr().ok(),
        tls: tls.is_some(),
    };
    let key_store = store.clone();
    let key = tokio::task::spawn_blocking(move || key_store.cursor_key())
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(format!("could not read the hub's cursor key: {e}")))?;
    let app = router_public(store, CursorKey::new(key), limits, &public)
        .into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("hub shutting down; finishing in-flight requests");
        h.graceful_shutdown(Some(DRAIN_TIMEOUT));
    });
    let cap = ConnectionCap {
        permits: Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1))),
        refused: Arc::new(AtomicU64::new(0)),
    };
    // hyper's header-read timer runs from the moment it waits for a
    // request head: on a new connection and between keep-alive requests,
    // so it is both the header timeout and the idle timeout.
    let configure =
        |builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>| {
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
        };
    match tls {
        Some(files) => {
            let config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
                    .await
                    .map_err(|e| {
                        std::io::Error::other(format!(
                            "could not load TLS certificate {} / key {}: {e}",
                            files.cert.display(),
                            files.key.display()
                        ))
                    })?;
            let mut server = axum_server::from_tcp_rustls(listener, config)?
                .map(|tls| tls.handshake_timeout(limits.header_timeout).acceptor(cap))
                .http1_only()
                .first_request_timeout(limits.header_timeout)
                .handle(handle);
            configure(server.http_builder());
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?
                .acceptor(cap)
                .http1_only()
                .first_request_timeout(limits.header_timeout)
                .handle(handle);
            configure(server.http_builder());
            server.serve(app).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[test]
    fn every_declared_admin_route_has_its_handler_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ADMIN_ROUTES {
            assert!(admin_handler(r.method, r.path).is_some(), "{r:?}");
            assert!(seen.insert((r.method, r.path)), "declared twice: {r:?}");
        }
    }

    /// A handler that panics answers the one error shape, without the
    /// panic's text.
    #[tokio::test]
    async fn a_panic_answers_a_generic_json_500() {
        let app = error_layers(Router::new().route(
            "/boom",
            get(|| async {
                panic!("secret internals: /var/lib/outpost-hub/hub.db");
                #[allow(unreachable_code)]
                ""
            }),
        ));
        let resp = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({ "error": INTERNAL_ERROR }));
    }
}
