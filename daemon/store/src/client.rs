//! The laptop's HTTP client to the hub (blocking reqwest: a sync is a
//! strict request → answer → apply sequence, and the store is blocking
//! SQLite, so one thread does it all; the daemon runs it on a blocking
//! thread).
//!
//! Transport rules (DESIGN.md section 5): HTTPS with rustls; plain HTTP
//! only to a loopback address; a private CA file, when configured, is the
//! only trusted root (pinned).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use outpost_proto::sync::{
    self, CONTENT_TYPE, ENROLL_PATH, EnrollRequest, EnrollResponse, ErrorBody, PULL_PATH,
    PUSH_PATH, PullRequest, PullResponse, PushRequest, PushResponse,
};
use reqwest::blocking::Client;
use reqwest::header;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::transport::{Transport, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("hub URL {0:?} is not valid: {1}")]
    BadUrl(String, String),
    #[error("refusing plain http:// to {0}: only loopback addresses may skip TLS; use https://")]
    InsecureUrl(String),
    #[error("could not read the CA file {path}: {source}")]
    CaFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file {0} holds no usable PEM certificate")]
    CaPem(String),
    #[error("could not reach the hub at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the hub refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error(
        "the hub's token was not accepted ({0}); ask an admin for a new enrolment code and run `outpost enroll HUB_URL CODE`"
    )]
    Unauthorized(String),
    #[error("bad answer from the hub: {0}")]
    BadAnswer(String),
    #[error("could not set up HTTPS: {0}")]
    Tls(String),
}

/// Sync failures are classified once, here: everything the HTTP client
/// can hit maps to a [`TransportError`] whose kind says whether retrying
/// can help (see [`crate::transport`]).
impl From<ClientError> for TransportError {
    fn from(e: ClientError) -> TransportError {
        match e {
            ClientError::Unreachable { url, source } => {
                TransportError::from_send_error(&url, Box::new(source))
            }
            ClientError::Refused { status, message } => {
                TransportError::from_status(status, message)
            }
            ClientError::Unauthorized(message) => TransportError::TokenRejected { message },
            ClientError::BadAnswer(message) => TransportError::BadAnswer(message),
            e @ (ClientError::BadUrl(..)
            | ClientError::InsecureUrl(_)
            | ClientError::CaFile { .. }
            | ClientError::CaPem(_)
            | ClientError::Tls(_)) => TransportError::Config {
                source: Box::new(e),
            },
        }
    }
}

/// Byte counters for `outpost sync` reports and the benchmark.
#[derive(Debug, Default)]
pub struct Traffic {
    pub up: AtomicU64,
    pub down: AtomicU64,
    pub requests: AtomicU64,
    /// The slowest sync request so far, as the laptop saw it (microseconds,
    /// from sending the request to having the whole answer).
    pub max_request_micros: AtomicU64,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks the transport rule and normalises the base URL (no trailing /).
pub fn check_hub_url(url: &str) -> Result<String, ClientError> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| ClientError::BadUrl(url.into(), e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| ClientError::BadUrl(url.into(), "no host".into()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => return Err(ClientError::InsecureUrl(host.into())),
        other => {
            return Err(ClientError::BadUrl(
                url.into(),
                format!("unsupported scheme {other}"),
            ));
        }
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

#[derive(Debug, Clone)]
pub struct HubClient {
    http: Client,
    base: String,
    token: Option<String>,
    pub traffic: Arc<Traffic>,
}

impl HubClient {
    pub fn new(
        base_url: &str,
        ca_file: Option<&Path>,
        token: Option<String>,
    ) -> Result<HubClient, ClientError> {
        outpost_base::install_crypto_provider();
        let base = check_hub_url(base_url)?;
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            // The hub closes a connection idle for 10 s (its header
            // timeout); reusing one it may be closing would fail a push.
            .pool_idle_timeout(Duration::from_secs(5))
            .user_agent(concat!("outpost/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| ClientError::CaPem(path.display().to_string()))?;
            if certs.is_empty() {
                return Err(ClientError::CaPem(path.display().to_string()));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(HubClient {
            http,
            base,
            token,
            traffic: Arc::new(Traffic::default()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn send_cbor<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let body = sync::encode_body(req).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        let url = format!("{}{path}", self.base);
        let mut rb = self
            .http
            .post(&url)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(header::CONTENT_ENCODING, "gzip");
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        self.traffic
            .up
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let resp = rb
            .body(body)
            .send()
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        let bytes = resp.bytes().map_err(|source| ClientError::Unreachable {
            url: url.clone(),
            source,
        })?;
        self.traffic
            .down
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.traffic
            .max_request_micros
            .fetch_max(took, Ordering::Relaxed);
        if !status.is_success() {
            return Err(error_from(status.as_u16(), &bytes));
        }
        sync::decode_body(&bytes).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        self.send_cbor(ENROLL_PATH, req)
    }

    /// Sends one push batch (also the [`Transport`] implementation, kept
    /// inherent so callers need not import the trait).
    pub fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        Ok(self.send_cbor(PUSH_PATH, req)?)
    }

    /// Asks for the next feed page (see [`HubClient::push`]).
    pub fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        Ok(self.send_cbor(PULL_PATH, req)?)
    }

    /// Admin API: JSON in, raw body out (JSON or JSONL).
    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.admin_send(method, &url, query, body, None)?;
        let bytes = resp
            .bytes()
            .map_err(|source| ClientError::Unreachable { url, source })?;
        Ok(bytes.to_vec())
    }

    /// Admin API for large answers (`/v1/admin/records`): the body is
    /// returned unread, as a [`std::io::Read`], so the caller handles it as
    /// it arrives instead of holding the whole hub's records in memory. An
    /// error status is still read whole (it is a short JSON message).
    pub fn admin_stream(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        // A longer bound than a sync request's: a 100,000-record export
        // may take a while, and it is moving all along.
        self.admin_send(method, &url, query, None, Some(Duration::from_secs(3600)))
    }

    /// Sends an admin request; a non-2xx answer becomes its error (read
    /// whole: it is a short JSON message), a 2xx one is returned unread.
    fn admin_send(
        &self,
        method: reqwest::Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let mut rb = self.http.request(method, url).query(query);
        if let Some(t) = timeout {
            rb = rb.timeout(t);
        }
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header(header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let unreachable = |source| ClientError::Unreachable {
            url: url.to_string(),
            source,
        };
        let resp = rb.send().map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().map_err(unreachable)?;
            return Err(error_from(status.as_u16(), &bytes));
        }
        Ok(resp)
    }
}

impl Transport for HubClient {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        HubClient::push(self, req)
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        HubClient::pull(self, req)
    }
}

fn error_from(status: u16, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(300).collect());
    if status == 401 {
        ClientError::Unauthorized(message)
    } else {
        ClientError::Refused { status, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_hub_url("http://127.0.0.1:8080").is_ok());
        assert!(check_hub_url("http://localhost:8080/").is_ok());
        assert!(check_hub_url("http://[::1]:8080").is_ok());
        assert!(matches!(
            check_hub_url("http://hub.example.se"),
            Err(ClientError::InsecureUrl(_))
        ));
        assert!(matches!(
            check_hub_url("http://10.0.0.5"),
            Err(ClientError::InsecureUrl(_))
        ));
        assert_eq!(
            check_hub_url("https://hub.example.se/").unwrap(),
            "https://hub.example.se"
        );
        assert!(check_hub_url("ftp://x").is_err());
    }
}
