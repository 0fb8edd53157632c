//! The hub's HTTP API (axum), over plain HTTP on loopback or TLS (rustls).
//!
//! Routes (sync bodies are gzip-compressed CBOR, see `proto::sync`; admin
//! bodies are JSON):
//! - `POST /v1/enroll` — one-time code → device token;
//! - `POST /v1/sync/push`, `POST /v1/sync/pull` — device token;
//! - `/v1/admin/...` — admin token: orgs, invites, devices, revoke,
//!   records (JSONL), erase;
//! - `GET /v1/health`;
//! - `GET /v1/admin/metrics` — admin token: request count, slow requests
//!   and the slowest request since start, so an admin can see whether the
//!   hub keeps up when every laptop comes back at once.
//!
//! Sync requests are answered by the protocol in `outpost_proto::hub`
//! over the store's storage primitives; this layer checks tokens, decodes
//! and encodes bodies, and maps errors to statuses. Every storage call
//! runs in `spawn_blocking`. The caller binds the
//! listener (tests bind `127.0.0.1:0` first and need no sleeps) and passes
//! a shutdown future; on shutdown in-flight requests finish (bounded by
//! [`DRAIN_TIMEOUT`]) before [`serve`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use outpost_proto::hub;
use outpost_proto::record::Kind;
use outpost_proto::sync::{
    self, CONTENT_TYPE, ENROLL_PATH, EnrollRequest, EnrollResponse, ErrorBody, MAX_BODY_BYTES,
    PROTOCOL_VERSION, PULL_PATH, PUSH_PATH, PullRequest, PushOutcome, PushRequest,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use outpost_hub_db::{AdminAuth, DeviceAuth, HubError, HubStore};
use outpost_proto::filter::Filter;

/// How long a request may take before the hub gives up on it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A request taking longer than this is logged as a warning and counted
/// as slow in `/v1/admin/metrics`.
pub const SLOW_REQUEST: Duration = Duration::from_secs(1);

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

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match &e {
            HubError::Unauthorized => StatusCode::UNAUTHORIZED,
            HubError::Forbidden(_) => StatusCode::FORBIDDEN,
            HubError::NoSuchOrg(_) | HubError::NoSuchDevice(_) | HubError::NoSuchRecord(_) => {
                StatusCode::NOT_FOUND
            }
            HubError::OrgExists(_) | HubError::DeviceExists(_) => StatusCode::CONFLICT,
            HubError::BadCode => StatusCode::FORBIDDEN,
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
            HubError::Backend(_) | HubError::NotInitialized => {
                tracing::error!(error = %e, "hub storage error");
                StatusCode::INTERNAL_SERVER_ERROR
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
            hub::HubError::Storage(_) => {
                tracing::error!(error = %e, "hub storage error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
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
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("hub task failed: {e}"),
        )
    })?
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

async fn admin_auth(store: &Shared, headers: &HeaderMap) -> Result<AdminAuth, ApiError> {
    let token = bearer(headers)?;
    let store = store.clone();
    blocking(move || store.admin(&token)).await
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    sync::encode_body(value).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
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

async fn enroll(State(store): State<Shared>, body: Bytes) -> Result<Response, ApiError> {
    let req: EnrollRequest = decode(&body)?;
    version(req.v)?;
    let now = Utc::now();
    let (org, token) = blocking(move || {
        let r = store.enroll(&req.code, req.device, now)?;
        store.seen(&req.device.to_string(), now, Some(req.device_time))?;
        Ok(r)
    })
    .await?;
    tracing::info!(%org, "device enrolled");
    cbor_response(&EnrollResponse {
        v: PROTOCOL_VERSION,
        org,
        token,
    })
}

async fn push(
    State(store): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = device_auth(&store, &headers).await?;
    let (answer, docs, erased) = off_runtime(move || {
        let req: PushRequest = decode(&body)?;
        version(req.v)?;
        let now = Utc::now();
        store.seen(&who.device, now, Some(req.device_time))?;
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
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = device_auth(&store, &headers).await?;
    let answer = off_runtime(move || {
        let req: PullRequest = decode(&body)?;
        version(req.v)?;
        encode(&hub::pull(&*store, &peer(&who), &req, new_epoch)?)
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
    headers: HeaderMap,
    axum::Json(body): axum::Json<OrgAdd>,
) -> Result<StatusCode, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
    if admin.org.is_some() {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "only a hub-wide admin token may add organisations".into(),
        ));
    }
    blocking(move || store.add_org(&body.slug, &body.name)).await?;
    Ok(StatusCode::CREATED)
}

async fn org_list(State(store): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
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
    headers: HeaderMap,
    axum::Json(body): axum::Json<InviteBody>,
) -> Result<Response, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
    admin.check(&body.org)?;
    let code = blocking(move || store.invite(&body.org, Utc::now())).await?;
    Ok(axum::Json(serde_json::json!({ "code": code })).into_response())
}

#[derive(Debug, Deserialize)]
struct OrgQuery {
    org: Option<String>,
}

async fn devices(
    State(store): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<OrgQuery>,
) -> Result<Response, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
    if let Some(o) = &q.org {
        admin.check(o)?;
    }
    let org = q.org.or(admin.org.clone());
    let list = blocking(move || store.devices(org.as_deref())).await?;
    Ok(axum::Json(list).into_response())
}

async fn revoke(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path(device): Path<String>,
) -> Result<StatusCode, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
    blocking(move || {
        // A device of an org this admin may not see answers as unknown,
        // revealing nothing about it.
        match store.device_org(&device)? {
            Some(org) if admin.check(&org).is_ok() => store.revoke(&device, Utc::now()),
            _ => Err(HubError::NoSuchDevice(device)),
        }
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct EraseQuery {
    org: Option<String>,
}

async fn erase(
    State(store): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EraseQuery>,
) -> Result<StatusCode, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
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
            .filter(|o| admin.check(o).is_ok())
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
        tracing::info!(%org, record = %id, "an admin erased a record");
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    org: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    site: Option<String>,
}

/// All records the admin may see, as JSONL (one record object per line).
async fn records(
    State(store): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RecordsQuery>,
) -> Result<Response, ApiError> {
    let admin = admin_auth(&store, &headers).await?;
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
    // Which org to read is decided here, not in storage: the one asked for
    // (refused before the stream starts if the token may not see it, so the
    // client gets a proper status instead of a cut-off body), else the
    // token's own org, else every org.
    let org = match q.org {
        Some(o) => {
            admin.check(&o)?;
            Some(o)
        }
        None => admin.org.clone(),
    };
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        stream_records(store, org, filter),
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
fn stream_records(store: Shared, org: Option<String>, filter: Filter) -> axum::body::Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
        let mut gone = false;
        let result = store.for_each_record(org.as_deref(), &filter, &mut |r| {
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
        let last = match result {
            Ok(()) => Ok(Bytes::from(chunk)),
            Err(e) => {
                tracing::error!(error = %e, "record export stopped");
                Err(std::io::Error::other(e.to_string()))
            }
        };
        if !gone {
            let _ = tx.blocking_send(last);
        }
    });
    axum::body::Body::new(ChannelBody(rx))
}

/// An HTTP body fed by a channel of chunks (see [`stream_records`]).
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }
}

async fn metrics(
    State(store): State<Shared>,
    Extension(metrics): Extension<Arc<RequestMetrics>>,
    headers: HeaderMap,
) -> Result<axum::Json<MetricsReport>, ApiError> {
    admin_auth(&store, &headers).await?;
    Ok(axum::Json(metrics.report()))
}

/// The hub's routes over `store`.
pub fn router(store: Shared) -> Router {
    let request_metrics = Arc::new(RequestMetrics::default());
    Router::new()
        .route("/v1/health", get(health))
        .route(ENROLL_PATH, post(enroll))
        .route(PUSH_PATH, post(push))
        .route(PULL_PATH, post(pull))
        .route("/v1/admin/orgs", post(org_add).get(org_list))
        .route("/v1/admin/invites", post(invite))
        .route("/v1/admin/devices", get(devices))
        .route("/v1/admin/devices/{id}/revoke", post(revoke))
        .route("/v1/admin/records", get(records))
        .route("/v1/admin/records/{id}", axum::routing::delete(erase))
        .route("/v1/admin/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(Extension(request_metrics.clone()))
        .layer(middleware::from_fn_with_state(request_metrics, track))
        .with_state(store)
}

/// TLS material for the hub.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serves the hub on an already-bound listener until `shutdown` resolves,
/// then lets in-flight requests finish.
pub async fn serve(
    listener: std::net::TcpListener,
    store: Shared,
    tls: Option<TlsFiles>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("hub shutting down; finishing in-flight requests");
        h.graceful_shutdown(Some(DRAIN_TIMEOUT));
    });
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
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app)
                .await
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(app)
                .await
        }
    }
}
