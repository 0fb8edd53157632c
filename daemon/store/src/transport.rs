//! How a laptop's sync requests reach a hub: the [`Transport`] trait and
//! its typed errors.
//!
//! [`crate::sync::run`] drives a [`outpost_proto::sync::Session`] and needs
//! exactly two exchanges from whatever carries its messages: a push batch
//! in, the hub's answer out; a pull request in, a feed page out. Enrolment
//! stays on [`crate::client::HubClient`]: it happens once, by hand, and
//! only over the network.
//!
//! Implementations:
//! - [`crate::client::HubClient`]: HTTPS (or loopback HTTP) to a running
//!   hub, the normal case;
//! - [`InMemoryTransport`]: closures that answer in-process (tests drive
//!   a real laptop [`crate::store::Store`] against a hub store with no
//!   sockets, and inject failures such as a revoked token).
//!
//! # Errors: retry later, or a person must act
//! A [`TransportError`] says what went wrong and, through
//! [`TransportError::kind`], which of two things follows:
//! [`FailureKind::Transient`] (network down, hub busy or restarting: the
//! daemon retries with backoff) or [`FailureKind::NeedsPerson`] (token
//! revoked or unknown, wrong organisation, protocol too old or too new,
//! TLS or CA misconfigured: retrying cannot help, so the daemon stops
//! probing and `outpost status` tells the person what to do). The kind
//! travels with the failure into the session's [`outpost_proto::sync::Outcome`]
//! and the stored sync status.
//!
//! # A one-way file bundle transport (not built yet)
//! Some sites never get a network: staff carry a USB stick to the office
//! instead. That fits this trait without changing the session, because
//! every exchange is idempotent and resumable (`proto::sync` module docs):
//! - `push` writes the request into a bundle on the stick (`push-<seq>.cbor`,
//!   the same gzip CBOR body as over HTTP) and, if the stick already holds
//!   the hub's answer to an earlier bundle from this laptop, returns that
//!   answer; otherwise it returns a [`FailureKind::Transient`] error
//!   ("written to the stick, answered at a later sync"). The session then
//!   ends early with the documents still pending, exactly as after a lost
//!   HTTP answer; nothing is lost and nothing is marked sent.
//! - At the office, a hub-side tool feeds each bundle to the hub's
//!   push/pull handlers and writes the answers (and a feed page after the
//!   laptop's cursor) back onto the stick.
//! - At the next sync the laptop's `push` finds the answer for the same
//!   documents and returns it; since Automerge merges are idempotent, an
//!   answer to bytes that were re-sent meanwhile is still correct, and a
//!   document edited since stays pending (the answered heads differ from
//!   its own). `pull` likewise returns the feed page on the stick, or a
//!   transient "not answered yet" error.
//!
//! What such a transport would add: matching answers to requests (a
//! sequence number in the bundle name), a device token check on the hub
//! side as for HTTP (so a revoked laptop's bundle is answered with
//! [`TransportError::TokenRejected`], a person-must-act error), and size
//! limits per bundle.

use std::error::Error as StdError;

use outpost_proto::sync::{
    FailureKind, PROTOCOL_VERSION, PullRequest, PullResponse, PushRequest, PushResponse,
};

/// A boxed error source, so the chain (hyper → rustls → certificate
/// problem) survives for logs and `caused by:` lines.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Carries a laptop's sync exchanges to a hub.
pub trait Transport {
    /// Sends one push batch; the answer has one result per document.
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError>;
    /// Asks for the next page of the org's feed.
    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError>;
}

/// What went wrong carrying a sync exchange. Each message ends with what
/// to do about it; [`TransportError::kind`] says whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No answer at all: connection refused or reset, DNS, timeout.
    #[error("could not reach the hub at {url}; the laptop will try again when it is back")]
    Unreachable {
        url: String,
        #[source]
        source: BoxError,
    },
    /// The hub answered that it cannot serve now (5xx, 408, 429).
    #[error("the hub is busy or failing ({status}): {message}; the laptop will try again later")]
    HubUnavailable { status: u16, message: String },
    /// 401: the device token is unknown or revoked.
    #[error(
        "this laptop's token was not accepted by the hub ({message}): ask an admin for a new enrolment code and run `outpost enroll HUB_URL CODE`"
    )]
    TokenRejected { message: String },
    /// 403: the token is valid but not for what was asked (another
    /// organisation's records, an org the hub does not serve).
    #[error(
        "the hub refused this laptop's organisation ({message}): check with an admin that the laptop was set up (`outpost init --org`) and enrolled for the right organisation"
    )]
    WrongOrg { message: String },
    /// 426, or an answer in another protocol version.
    #[error(
        "this laptop and the hub speak different sync protocol versions ({message}; this laptop speaks {PROTOCOL_VERSION}): upgrade whichever side is older"
    )]
    Protocol { message: String },
    /// The TLS handshake failed: the hub's certificate is not trusted (wrong
    /// or missing `ca_file`, expired or self-signed certificate, name
    /// mismatch).
    #[error(
        "could not set up a trusted HTTPS connection to {url}: check the hub's certificate and the `ca_file` in this laptop's config.toml (or OUTPOST_CA_FILE)"
    )]
    Tls {
        url: String,
        #[source]
        source: BoxError,
    },
    /// The laptop's own transport settings are unusable (hub URL, CA file).
    #[error("this laptop's hub settings are unusable: fix them in the config or enrol again")]
    Config {
        #[source]
        source: BoxError,
    },
    /// Any other refusal (4xx): a request the hub will never accept as sent.
    #[error("the hub refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// An answer that could not be read (garbled in transit, a captive
    /// portal's page, a hub bug).
    #[error("bad answer from the hub: {0}; the laptop will try again later")]
    BadAnswer(String),
    /// The medium has no answer yet (a bundle not yet answered, a
    /// transport that is offline by design).
    #[error("{0}")]
    NotYet(String),
}

impl TransportError {
    /// Whether retrying later may help, or a person must act first.
    pub fn kind(&self) -> FailureKind {
        match self {
            TransportError::Unreachable { .. }
            | TransportError::HubUnavailable { .. }
            | TransportError::BadAnswer(_)
            | TransportError::NotYet(_) => FailureKind::Transient,
            TransportError::TokenRejected { .. }
            | TransportError::WrongOrg { .. }
            | TransportError::Protocol { .. }
            | TransportError::Tls { .. }
            | TransportError::Config { .. }
            | TransportError::Refused { .. } => FailureKind::NeedsPerson,
        }
    }

    /// The error for an HTTP error status and the message the hub sent.
    pub fn from_status(status: u16, message: String) -> TransportError {
        match status {
            401 => TransportError::TokenRejected { message },
            403 => TransportError::WrongOrg { message },
            426 => TransportError::Protocol { message },
            // Hubs from before 426 answered a version mismatch with 400.
            400 if message.contains("sync protocol") => TransportError::Protocol { message },
            408 | 429 | 500..=599 => TransportError::HubUnavailable { status, message },
            _ => TransportError::Refused { status, message },
        }
    }

    /// The error for a request that got no HTTP answer: a TLS failure when
    /// the chain shows one (a person must fix trust), else unreachable.
    pub fn from_send_error(url: &str, source: BoxError) -> TransportError {
        if is_tls_failure(source.as_ref()) {
            TransportError::Tls {
                url: url.into(),
                source,
            }
        } else {
            TransportError::Unreachable {
                url: url.into(),
                source,
            }
        }
    }
}

/// Whether an error chain holds a rustls failure (certificate not trusted,
/// handshake refused). `io::Error` hides its inner error from `source()`,
/// so each one is opened with `get_ref` as well.
fn is_tls_failure(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && is_tls_failure(inner)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// A transport answered by closures in the same process: tests plug a hub
/// store's push and pull handlers in (or a scripted failure).
pub struct InMemoryTransport<P, Q> {
    push: P,
    pull: Q,
}

impl<P, Q> std::fmt::Debug for InMemoryTransport<P, Q> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemoryTransport")
    }
}

impl<P, Q> InMemoryTransport<P, Q>
where
    P: Fn(&PushRequest) -> Result<PushResponse, TransportError>,
    Q: Fn(&PullRequest) -> Result<PullResponse, TransportError>,
{
    pub fn new(push: P, pull: Q) -> Self {
        InMemoryTransport { push, pull }
    }
}

impl<P, Q> Transport for InMemoryTransport<P, Q>
where
    P: Fn(&PushRequest) -> Result<PushResponse, TransportError>,
    Q: Fn(&PullRequest) -> Result<PullResponse, TransportError>,
{
    fn push(&self, req: &PushRequest) -> Result<PushResponse, TransportError> {
        (self.push)(req)
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, TransportError> {
        (self.pull)(req)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use chrono::Utc;
    use outpost_base::logging::Chain;
    use outpost_proto::Kind;
    use serde_json::json;

    use super::*;
    use outpost_proto::hub::mem::MemStorage;
    use outpost_proto::hub::{self, Peer};

    use crate::client::{ClientError, HubClient};
    use crate::store::Store;
    use crate::sync::SyncOptions;

    fn now() -> chrono::DateTime<chrono::FixedOffset> {
        chrono::Local::now().fixed_offset()
    }

    #[test]
    fn http_statuses_are_sorted_into_retry_later_and_person_must_act() {
        let kind = |status: u16, msg: &str| TransportError::from_status(status, msg.into()).kind();
        use FailureKind::{NeedsPerson, Transient};
        for (status, msg, want) in [
            (
                401,
                "this laptop's token is unknown or revoked",
                NeedsPerson,
            ),
            (403, "not your organisation", NeedsPerson),
            (426, "upgrade", NeedsPerson),
            (400, "the other side speaks sync protocol 99", NeedsPerson),
            (400, "malformed request body", NeedsPerson),
            (404, "no such route", NeedsPerson),
            (500, "hub storage error", Transient),
            (502, "bad gateway", Transient),
            (503, "restarting", Transient),
            (408, "request timeout", Transient),
            (429, "slow down", Transient),
        ] {
            assert_eq!(kind(status, msg), want, "{status} {msg}");
        }
        assert!(matches!(
            TransportError::from_status(401, "revoked".into()),
            TransportError::TokenRejected { .. }
        ));
        assert!(matches!(
            TransportError::from_status(426, "x".into()),
            TransportError::Protocol { .. }
        ));
        assert!(matches!(
            TransportError::from_status(400, "the other side speaks sync protocol 2".into()),
            TransportError::Protocol { .. }
        ));
        // What a person reads says what to do.
        let revoked = TransportError::from_status(401, "revoked".into()).to_string();
        assert!(revoked.contains("outpost enroll HUB_URL CODE"), "{revoked}");
    }

    #[test]
    fn a_refused_connection_is_transient_and_keeps_its_cause() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client =
            HubClient::new(&format!("http://127.0.0.1:{port}"), None, Some("t".into())).unwrap();
        let err = Transport::pull(
            &client,
            &PullRequest {
                device_time: None,
                report: None,
                v: PROTOCOL_VERSION,
                since: 0,
                limit: 10,
                epoch: 0,
                sig: Vec::new(),
                config_version: 0,
            },
        )
        .unwrap_err();
        assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
        assert_eq!(err.kind(), FailureKind::Transient);
        assert!(err.source().is_some(), "the reqwest cause is kept");
        let text = Chain(&err).to_string();
        assert!(text.contains("could not reach the hub"), "{text}");
    }

    #[test]
    fn tls_and_settings_problems_need_a_person() {
        // A certificate the laptop does not trust, as rustls reports it
        // under hyper's io::Error.
        let rustls_err = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_err);
        let err = TransportError::from_send_error("https://hub.example.se", Box::new(io));
        assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
        assert_eq!(err.kind(), FailureKind::NeedsPerson);
        let text = Chain(&err).to_string();
        assert!(
            text.contains("UnknownIssuer") || text.contains("issuer"),
            "{text}"
        );
        // Plain connection trouble stays transient.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err = TransportError::from_send_error("https://hub.example.se", Box::new(reset));
        assert_eq!(err.kind(), FailureKind::Transient);
        // A CA file that is not a certificate.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let e = HubClient::new("https://hub.example.se", Some(&ca), None).unwrap_err();
        assert!(matches!(e, ClientError::CaPem(_)));
        let err = TransportError::from(e);
        assert_eq!(err.kind(), FailureKind::NeedsPerson);
        let text = Chain(&err).to_string();
        assert!(text.contains("PEM"), "{text}");
        // A 401 through the client's own error type.
        let err = TransportError::from(ClientError::Unauthorized("revoked".into()));
        assert_eq!(err.kind(), FailureKind::NeedsPerson);
    }

    /// The hub's protocol over its in-memory storage with one org, and a
    /// laptop of that org; `revoked` stands in for the hub's token check.
    struct Setup {
        hub: Arc<MemStorage>,
        revoked: Arc<AtomicBool>,
        _laptop_dir: tempfile::TempDir,
        laptop: Store,
    }

    fn setup() -> Setup {
        let laptop_dir = tempfile::tempdir().unwrap();
        let laptop = Store::init(laptop_dir.path(), "mjolby", "Mjölby bibliotek", "AB").unwrap();
        Setup {
            hub: Arc::new(MemStorage::with_orgs(&["mjolby"])),
            revoked: Arc::new(AtomicBool::new(false)),
            _laptop_dir: laptop_dir,
            laptop,
        }
    }

    fn add_visit(store: &mut Store, note: &str) -> String {
        let mut f = store.new_fields(Kind::Visit, now());
        f.extend(outpost_proto::fixtures::visit_body());
        f.insert("note".into(), json!(note));
        store.add(&f).unwrap().id.to_string()
    }

    /// What the hub's HTTP layer does for a device, minus HTTP: check the
    /// token on every request (so a revocation takes effect at once), then
    /// run the hub's own protocol code (`outpost_proto::hub`) over storage.
    fn hub_transport(s: &Setup) -> impl Transport + use<> {
        let who = Peer {
            device: s.laptop.identity().device.clone(),
            org: "mjolby".into(),
        };
        let auth = {
            let revoked = s.revoked.clone();
            move || {
                if revoked.load(Ordering::SeqCst) {
                    return Err(TransportError::from_status(
                        401,
                        "this laptop's token is unknown or revoked".into(),
                    ));
                }
                Ok(())
            }
        };
        let (auth2, who2) = (auth.clone(), who.clone());
        let (hub, hub2) = (s.hub.clone(), s.hub.clone());
        InMemoryTransport::new(
            move |req: &PushRequest| {
                auth()?;
                hub::push(&*hub, &who, req, Utc::now())
                    .map_err(|e| TransportError::from_status(400, e.to_string()))
            },
            move |req: &PullRequest| {
                auth2()?;
                hub::pull(&*hub2, &who2, req, &hub::CursorKey::new([7; 32]), || 7)
                    .map(|p| p.response)
                    .map_err(|e| TransportError::from_status(400, e.to_string()))
            },
        )
    }

    fn hub_ids(hub: &MemStorage) -> Vec<String> {
        let mut ids: Vec<String> = hub.docs("mjolby").keys().map(|id| id.to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_laptop_store_syncs_with_a_hub_store_through_the_in_memory_transport() {
        let mut s = setup();
        let mut ids: Vec<String> = (0..5)
            .map(|i| add_visit(&mut s.laptop, &format!("visit {i}")))
            .collect();
        ids.sort();
        let transport = hub_transport(&s);
        let options = SyncOptions {
            push_batch: 2,
            pull_page: 2,
        };
        let outcome = crate::sync::run(&mut s.laptop, &transport, options, now(), |_| {}).unwrap();
        assert!(outcome.complete(), "{outcome:?}");
        assert_eq!(outcome.pushed_docs, 5);
        assert_eq!(outcome.error_kind, None);
        assert_eq!(hub_ids(&s.hub), ids);
        assert_eq!(s.laptop.counts().unwrap().pending, 0);
        let status = s.laptop.sync_status().unwrap();
        assert!(status.last_success.is_some());
        assert_eq!(status.last_error_kind, None);
    }

    #[test]
    fn a_revoked_token_ends_the_sync_as_needs_person_and_keeps_the_records_pending() {
        let mut s = setup();
        add_visit(&mut s.laptop, "before");
        let transport = hub_transport(&s);
        let first = crate::sync::run(
            &mut s.laptop,
            &transport,
            SyncOptions::default(),
            now(),
            |_| {},
        )
        .unwrap();
        assert!(first.complete(), "{first:?}");
        // An admin revokes the laptop; it keeps working offline.
        s.revoked.store(true, Ordering::SeqCst);
        add_visit(&mut s.laptop, "after the revocation");
        let outcome = crate::sync::run(
            &mut s.laptop,
            &transport,
            SyncOptions::default(),
            now(),
            |_| {},
        )
        .unwrap();
        assert!(!outcome.complete());
        assert_eq!(outcome.error_kind, Some(FailureKind::NeedsPerson));
        let error = outcome.error.clone().unwrap();
        assert!(error.contains("outpost enroll HUB_URL CODE"), "{error}");
        assert_eq!(outcome.pushed_docs, 0);
        assert_eq!(s.laptop.counts().unwrap().pending, 1, "nothing is lost");
        assert_eq!(hub_ids(&s.hub).len(), 1, "the hub took nothing more");
        // `outpost status` reads this back.
        let status = s.laptop.sync_status().unwrap();
        assert_eq!(status.last_error_kind, Some(FailureKind::NeedsPerson));
        assert_eq!(status.last_error.as_deref(), Some(error.as_str()));
    }

    #[test]
    fn a_scripted_outage_is_transient_and_the_next_sync_finishes_the_job() {
        let mut s = setup();
        for i in 0..4 {
            add_visit(&mut s.laptop, &format!("offline {i}"));
        }
        let down = Arc::new(AtomicBool::new(true));
        let real = hub_transport(&s);
        let flaky = {
            let (d1, d2) = (down.clone(), down.clone());
            let real = &real;
            InMemoryTransport::new(
                move |req: &PushRequest| {
                    if d1.load(Ordering::SeqCst) {
                        return Err(TransportError::NotYet(
                            "written to the stick; answered at a later sync".into(),
                        ));
                    }
                    real.push(req)
                },
                move |req: &PullRequest| {
                    if d2.load(Ordering::SeqCst) {
                        return Err(TransportError::from_status(503, "restarting".into()));
                    }
                    real.pull(req)
                },
            )
        };
        let outcome =
            crate::sync::run(&mut s.laptop, &flaky, SyncOptions::default(), now(), |_| {}).unwrap();
        assert_eq!(outcome.error_kind, Some(FailureKind::Transient));
        assert_eq!(s.laptop.counts().unwrap().pending, 4);
        assert_eq!(
            s.laptop.sync_status().unwrap().last_error_kind,
            Some(FailureKind::Transient)
        );
        down.store(false, Ordering::SeqCst);
        let outcome =
            crate::sync::run(&mut s.laptop, &flaky, SyncOptions::default(), now(), |_| {}).unwrap();
        assert!(outcome.complete(), "{outcome:?}");
        assert_eq!(hub_ids(&s.hub).len(), 4);
        let status = s.laptop.sync_status().unwrap();
        assert_eq!((status.last_error, status.last_error_kind), (None, None));
    }

    #[test]
    fn an_answer_in_another_protocol_version_needs_a_person() {
        let mut s = setup();
        let transport = InMemoryTransport::new(
            |_: &PushRequest| -> Result<PushResponse, TransportError> {
                unreachable!("nothing to push")
            },
            |_: &PullRequest| {
                Ok(PullResponse {
                    v: PROTOCOL_VERSION + 1,
                    items: vec![],
                    next: 0,
                    more: false,
                    epoch: 0,
                    sig: Vec::new(),
                    config: None,
                })
            },
        );
        let outcome = crate::sync::run(
            &mut s.laptop,
            &transport,
            SyncOptions::default(),
            now(),
            |_| {},
        )
        .unwrap();
        assert_eq!(outcome.error_kind, Some(FailureKind::NeedsPerson));
        assert!(outcome.error.unwrap().contains("upgrade"));
    }

    /// Plants `data` in the hub's storage as if another laptop had pushed
    /// it past an older hub: the laptop's pull is the last line of defence.
    fn plant_at_hub(s: &Setup, id: uuid::Uuid, data: &[u8], heads: &[automerge::ChangeHash]) {
        use outpost_proto::hub::{Expect, HubStorage, Put};
        let record = outpost_proto::fixtures::visit("mjolby");
        let heads = outpost_proto::sync::Heads::from_hashes(heads);
        s.hub
            .put(
                "mjolby",
                &[Put {
                    id,
                    expect: Expect::Absent,
                    data,
                    heads: &heads,
                    origin: "another-laptop",
                    record: &record,
                    received_at: Utc::now(),
                }],
            )
            .unwrap();
    }

    #[test]
    fn a_pulled_record_with_a_personnummer_in_its_history_is_quarantined_and_the_rest_applies() {
        use automerge::transaction::Transactable;
        let mut s = setup();
        let good = outpost_proto::fixtures::visit("mjolby");
        let mut good_doc = outpost_proto::doc::create(&good, automerge::ActorId::random()).unwrap();
        plant_at_hub(&s, good.id, &good_doc.save(), &good_doc.get_heads());
        let bad = outpost_proto::fixtures::visit("mjolby");
        let mut am = outpost_proto::doc::create(&bad, automerge::ActorId::random()).unwrap();
        am.put(automerge::ROOT, "note", "19121212-1212").unwrap();
        am.commit();
        am.put(automerge::ROOT, "note", "kort").unwrap();
        am.commit();
        plant_at_hub(&s, bad.id, &am.save(), &am.get_heads());

        let transport = hub_transport(&s);
        let outcome = crate::sync::run(
            &mut s.laptop,
            &transport,
            SyncOptions::default(),
            now(),
            |_| {},
        )
        .unwrap();
        assert!(outcome.complete(), "{outcome:?}");
        assert!(s.laptop.get(&good.id.to_string()).unwrap().is_some());
        assert!(s.laptop.get(&bad.id.to_string()).unwrap().is_none());
        let q = s.laptop.quarantined().unwrap();
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0].id, bad.id.to_string());
        assert!(q[0].reason.contains("history"), "{q:?}");
        // Refused bytes are written nowhere: not even kept for a retry.
        let kept: Option<Vec<u8>> = s
            .laptop
            .connection()
            .query_row("SELECT doc FROM quarantine", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, None);
    }

    #[test]
    fn a_damaged_record_is_quarantined_while_the_rest_syncs_then_retry_after_a_fix() {
        let mut s = setup();
        let ids: Vec<String> = (0..3)
            .map(|i| add_visit(&mut s.laptop, &format!("visit {i}")))
            .collect();
        let transport = hub_transport(&s);
        let sync = |s: &mut Setup| {
            crate::sync::run(
                &mut s.laptop,
                &transport,
                SyncOptions::default(),
                now(),
                |_| {},
            )
            .unwrap()
        };
        assert!(sync(&mut s).complete());
        // Both edited; then the first one's stored bytes get damaged.
        for id in &ids[..2] {
            let mut patch = outpost_proto::Fields::new();
            patch.insert("minutes".into(), json!(45));
            s.laptop.edit(id, &patch, now()).unwrap();
        }
        let original: Vec<u8> = s
            .laptop
            .connection()
            .query_row("SELECT doc FROM docs WHERE id = ?1", [&ids[0]], |r| {
                r.get(0)
            })
            .unwrap();
        s.laptop
            .connection()
            .execute(
                "UPDATE docs SET doc = x'856f4a83deadbeef' WHERE id = ?1",
                [&ids[0]],
            )
            .unwrap();

        let outcome = sync(&mut s);
        assert!(outcome.error.is_none(), "{outcome:?}");
        let q = s.laptop.quarantined().unwrap();
        assert_eq!(
            q.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            [ids[0].as_str()]
        );
        assert_eq!(q[0].source, "store");
        // The other edit reached the hub; the damaged record is not erased
        // there.
        let hub = s.hub.clone();
        let hub_minutes = |id: &str| {
            let docs = hub.docs("mjolby");
            let d = &docs[&id.parse::<uuid::Uuid>().unwrap()];
            let am = automerge::AutoCommit::load(&d.data).unwrap();
            outpost_proto::doc::read(&am).unwrap().fields["minutes"].clone()
        };
        assert_eq!(hub_minutes(&ids[1]), json!(45));
        assert_eq!(hub_minutes(&ids[0]), json!(30));

        // Still damaged: retry says so and keeps it aside.
        assert!(matches!(
            s.laptop.quarantine_retry(&ids[0]),
            Err(crate::store::StoreError::StillQuarantined { .. })
        ));
        // The fix (a restored copy), then retry: back in use, and it syncs.
        s.laptop
            .connection()
            .execute(
                "UPDATE docs SET doc = ?2 WHERE id = ?1",
                rusqlite::params![ids[0], original],
            )
            .unwrap();
        s.laptop.quarantine_retry(&ids[0]).unwrap();
        assert!(s.laptop.quarantined().unwrap().is_empty());
        assert!(sync(&mut s).complete());
        assert_eq!(hub_minutes(&ids[0]), json!(45));
    }

    /// Issue 9: bytes that panic Automerge's loader (see
    /// `fuzz/regressions/automerge_doc`), in a pull and in the store: each
    /// time that record is quarantined and everything else syncs.
    #[test]
    fn a_document_that_panics_automerge_is_quarantined_in_a_pull_and_in_the_store() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/automerge_doc");
        let crafted = std::fs::read(dir.join("deps-index-out-of-range")).unwrap();
        let mut s = setup();
        // In a pull, beside a good record.
        let bad = uuid::Uuid::new_v4();
        plant_at_hub(&s, bad, &crafted, &[]);
        let good = add_visit(&mut s.laptop, "fine");
        let transport = hub_transport(&s);
        let sync = |s: &mut Setup| {
            crate::sync::run(
                &mut s.laptop,
                &transport,
                SyncOptions::default(),
                now(),
                |_| {},
            )
            .unwrap()
        };
        let outcome = sync(&mut s);
        assert!(outcome.error.is_none(), "{outcome:?}");
        assert!(hub_ids(&s.hub).contains(&good));
        let q = s.laptop.quarantined().unwrap();
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0].id, bad.to_string());
        assert!(q[0].reason.contains("crashed"), "{q:?}");

        // In the store: the same bytes as a synced record's document.
        let mine = add_visit(&mut s.laptop, "also fine");
        assert!(sync(&mut s).error.is_none());
        let mut patch = outpost_proto::Fields::new();
        patch.insert("minutes".into(), json!(45));
        s.laptop.edit(&mine, &patch, now()).unwrap();
        let other = add_visit(&mut s.laptop, "and this one");
        s.laptop
            .connection()
            .execute(
                "UPDATE docs SET doc = ?2 WHERE id = ?1",
                rusqlite::params![mine, crafted],
            )
            .unwrap();
        let outcome = sync(&mut s);
        assert!(outcome.error.is_none(), "{outcome:?}");
        assert!(hub_ids(&s.hub).contains(&other));
        let q = s.laptop.quarantined().unwrap();
        assert!(
            q.iter().any(|q| q.id == mine && q.source == "store"),
            "{q:?}"
        );
        // Reading the store stays up too.
        assert!(s.laptop.get(&other).unwrap().is_some());
    }

    /// Issue 9: a DEFLATE bomb (a few KB that Automerge would inflate to
    /// more than `MAX_INFLATED_BYTES`) in a pull and in the store: refused
    /// before Automerge inflates it, quarantined, and everything else syncs.
    #[test]
    fn a_deflate_bomb_is_quarantined_in_a_pull_and_in_the_store() {
        let (bad, bomb) = outpost_proto::fixtures::deflate_bomb("mjolby");
        let mut s = setup();
        plant_at_hub(&s, bad, &bomb, &[]);
        let good = add_visit(&mut s.laptop, "fine");
        let transport = hub_transport(&s);
        let sync = |s: &mut Setup| {
            crate::sync::run(
                &mut s.laptop,
                &transport,
                SyncOptions::default(),
                now(),
                |_| {},
            )
            .unwrap()
        };
        let outcome = sync(&mut s);
        assert!(outcome.error.is_none(), "{outcome:?}");
        assert!(hub_ids(&s.hub).contains(&good));
        let q = s.laptop.quarantined().unwrap();
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0].id, bad.to_string());
        assert!(q[0].reason.contains("inflate"), "{q:?}");

        // In the store: the bomb as a synced record's document.
        let mine = add_visit(&mut s.laptop, "also fine");
        assert!(sync(&mut s).error.is_none());
        let mut patch = outpost_proto::Fields::new();
        patch.insert("minutes".into(), json!(45));
        s.laptop.edit(&mine, &patch, now()).unwrap();
        let other = add_visit(&mut s.laptop, "and this one");
        s.laptop
            .connection()
            .execute(
                "UPDATE docs SET doc = ?2 WHERE id = ?1",
                rusqlite::params![mine, bomb],
            )
            .unwrap();
        let outcome = sync(&mut s);
        assert!(outcome.error.is_none(), "{outcome:?}");
        assert!(hub_ids(&s.hub).contains(&other));
        let q = s.laptop.quarantined().unwrap();
        assert!(
            q.iter()
                .any(|q| q.id == mine && q.source == "store" && q.reason.contains("inflate")),
            "{q:?}"
        );
    }

    /// A record refused in a pull comes in with `retry` once the hub holds
    /// a good copy (here: the hub's copy replaced, as an admin's restore
    /// would); until then a retry quarantines it again at the next sync.
    #[test]
    fn a_record_refused_in_a_pull_comes_in_after_retry_once_the_hub_copy_is_fixed() {
        use outpost_proto::hub::{Expect, HubStorage, Put};
        let mut s = setup();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/automerge_doc");
        let crafted = std::fs::read(dir.join("deps-index-out-of-range")).unwrap();
        let rec = outpost_proto::fixtures::visit("mjolby");
        plant_at_hub(&s, rec.id, &crafted, &[]);
        let transport = hub_transport(&s);
        let sync = |s: &mut Setup| {
            crate::sync::run(
                &mut s.laptop,
                &transport,
                SyncOptions::default(),
                now(),
                |_| {},
            )
            .unwrap()
        };
        sync(&mut s);
        let id = rec.id.to_string();
        assert_eq!(s.laptop.quarantined().unwrap().len(), 1);
        // Retried while the hub still holds the bad copy: back aside.
        s.laptop.quarantine_retry(&id).unwrap();
        sync(&mut s);
        assert_eq!(s.laptop.quarantined().unwrap().len(), 1);
        // The hub's copy is replaced by a good one.
        let mut am = outpost_proto::doc::create(&rec, automerge::ActorId::random()).unwrap();
        let heads = outpost_proto::sync::Heads::from_hashes(&am.get_heads());
        let held = s.hub.get("mjolby", &[rec.id]).unwrap().remove(0);
        s.hub
            .put(
                "mjolby",
                &[Put {
                    id: rec.id,
                    expect: held.expect(),
                    data: &am.save(),
                    heads: &heads,
                    origin: "another-laptop",
                    record: &rec,
                    received_at: Utc::now(),
                }],
            )
            .unwrap();
        assert!(!matches!(held.expect(), Expect::Absent));
        s.laptop.quarantine_retry(&id).unwrap();
        assert!(sync(&mut s).complete());
        assert!(s.laptop.quarantined().unwrap().is_empty());
        assert!(s.laptop.get(&id).unwrap().is_some());
    }
}
