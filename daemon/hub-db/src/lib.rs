//! The hub's storage interface above the sync primitives: accounts
//! (organisations, admin tokens, enrolment codes, devices), the admin
//! projection of records, and the error every backend reports.
//!
//! Layout: this crate is the contract; `outpost-hub-sqlite` and
//! `outpost-hub-postgres` implement it together with
//! `outpost_proto::hub::HubStorage`; `outpost-hub` serves it over HTTP.
//! `conformance` (feature `test-support`) is the suite both backends run
//! (`hub_store_conformance!`), as `outpost_proto::hub_storage_conformance!`
//! is for the sync primitives.
//! Secrets are random 256-bit values stored only as SHA-256 hashes
//! ([`hash_secret`]); enrolment codes are typed by people ([`new_code`]).
//! [`accounts`] holds the named admin and coordinator accounts and the
//! hash-chained audit log: the chain's hash and its verification live
//! there, once, so the backends only store rows.

pub mod accounts;
#[cfg(feature = "test-support")]
pub mod conformance;

pub use accounts::{
    Account, Actor, AuditDraft, AuditEntry, AuditHead, AuditVerdict, Role, audit, verify_audit,
};

use chrono::{DateTime, Utc};
use outpost_proto::device::DeviceReport;
use outpost_proto::filter::Filter;
use outpost_proto::hub::{HubStorage, RateTake, RateTaken};
use outpost_proto::record::Record;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long an enrolment code stays valid.
pub const CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// How long a dashboard sign-in code (`outpost admin signin`) stays valid.
pub const SIGNIN_CODE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// A dashboard session ends after this long without a request...
pub const SESSION_IDLE: chrono::TimeDelta = chrono::TimeDelta::minutes(30);
/// ...and this long after signing in, however busy.
pub const SESSION_MAX: chrono::TimeDelta = chrono::TimeDelta::hours(12);
/// A device whose clock differs from the hub's by more than this is flagged.
pub const CLOCK_SKEW_LIMIT_SECS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The database failed (disk, connection); retrying later may help.
    #[error("hub database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("unknown or revoked token")]
    Unauthorized,
    #[error("this admin token may not manage organisation {0}")]
    Forbidden(String),
    #[error("no organisation {0}; create it with `outpost admin org add {0} NAME`")]
    NoSuchOrg(String),
    #[error("organisation {0} already exists")]
    OrgExists(String),
    #[error(
        "the enrolment code is unknown, already used or expired; ask an admin for a new one (`outpost admin invite --org ORG`)"
    )]
    BadCode,
    /// The code is valid but for another organisation than the one the
    /// laptop was set up for (named here: the laptop sent it). Nothing was
    /// bound and the code stays usable by a laptop of its own org.
    #[error(
        "this enrolment code is for another organisation than this laptop's ({0}); nothing was enrolled. Ask an admin for a code for {0} (`outpost admin invite --org {0}`)"
    )]
    CodeForOtherOrg(String),
    #[error(
        "device {0} is already enrolled; run `outpost enroll` again (it enrols under a new device id)"
    )]
    DeviceExists(Uuid),
    #[error("no device {0}")]
    NoSuchDevice(String),
    #[error("no record {0}")]
    NoSuchRecord(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the hub has not been initialised; run `outpostd hub init --data-dir DIR`")]
    NotInitialized,
    /// A coordinator token asked to change something.
    #[error(
        "token {0} is a read-only coordinator token: it may read statistics, reports, exports, records, devices and the audit log of its organisations, but not change anything; ask a hub admin"
    )]
    ReadOnly(String),
    #[error("no token {0}; `outpost admin token list` shows the ids")]
    NoSuchAccount(String),
    /// Revoking this account would leave no active hub-wide admin.
    #[error(
        "token {0} is the last active hub-wide admin token, so revoking it would lock every admin out; create another with `outpost admin token create --name NAME` first (or rotate this one)"
    )]
    LastAdmin(String),
}

/// A device as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub id: String,
    pub org: String,
    pub enrolled_at: String,
    pub last_seen: Option<String>,
    /// Device clock minus hub clock at the last sync, seconds.
    pub clock_offset_secs: Option<i64>,
    /// The clock is off by more than 24 hours.
    pub clock_flag: bool,
    pub revoked: bool,
    /// The laptop's name, site and staff initials as it last reported them
    /// (at enrolment or sync; None: it never did, e.g. an older laptop).
    pub name: Option<String>,
    pub site: Option<String>,
    pub staff: Option<String>,
    /// Records waiting on the laptop at its last report (0 after a
    /// complete sync).
    pub waiting: Option<u64>,
}

/// Who a request comes from, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    pub device: String,
    pub org: String,
}

/// The account a request comes from, once its token is checked: who
/// (for the audit log), its role and the orgs it may see (None: all).
/// Access is decided by [`AdminAuth::check`] (read) and
/// [`AdminAuth::check_change`] (change) only, never by looking at the
/// role elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuth {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub orgs: Option<Vec<String>>,
}

impl AdminAuth {
    /// Read access to `org` (statistics, exports, records, devices,
    /// configuration, audit): any account scoped to it, or unscoped.
    pub fn check(&self, org: &str) -> Result<(), HubError> {
        match &self.orgs {
            Some(orgs) if !orgs.iter().any(|o| o == org) => {
                Err(HubError::Forbidden(org.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Change access: to `org`, or to the hub as a whole (None: adding
    /// organisations, managing tokens), which only an unscoped admin has.
    /// A coordinator may change nothing.
    pub fn check_change(&self, org: Option<&str>) -> Result<(), HubError> {
        self.check_writer()?;
        match (org, &self.orgs) {
            (Some(org), _) => self.check(org),
            (None, None) => Ok(()),
            (None, Some(_)) => Err(HubError::Forbidden(
                "the whole hub (only a hub-wide admin token may do this)".into(),
            )),
        }
    }

    /// Whether this account may change anything at all, before the org is
    /// known (the server refuses a coordinator before reading a body).
    pub fn check_writer(&self) -> Result<(), HubError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Coordinator => Err(HubError::ReadOnly(format!("{} ({})", self.id, self.name))),
        }
    }

    /// The one org this account is scoped to, if exactly one (what a
    /// request without `--org` means).
    pub fn single_org(&self) -> Option<&str> {
        match self.orgs.as_deref() {
            Some([one]) => Some(one.as_str()),
            _ => None,
        }
    }

    /// Who this is in the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            id: Some(self.id.clone()),
            name: self.name.clone(),
        }
    }
}

/// Everything the HTTP layer needs from storage.
/// Everything the HTTP layer needs from storage besides the sync
/// primitives ([`HubStorage`]): organisations, tokens, enrolment codes,
/// devices and the admin projection of records. Methods are blocking (see
/// `outpost_proto::hub::storage` for why); the server calls them from
/// `spawn_blocking`. Authorisation is decided by the caller: a method that
/// takes an `org` trusts that the caller may act on it.
pub trait HubStore: HubStorage + Send + Sync + 'static {
    fn create_admin_token(&self, org: Option<&str>) -> Result<String, HubError>;
    /// Whether writes work now (what `/v1/health` reports): the write
    /// connection is usable and the database takes a write lock.
    fn health(&self) -> Result<(), HubError> {
        Ok(())
    }
    fn has_admin_token(&self) -> Result<bool, HubError>;
    fn admin(&self, token: &str) -> Result<AdminAuth, HubError>;
    fn add_org(&self, slug: &str, name: &str) -> Result<(), HubError>;
    fn orgs(&self) -> Result<Vec<(String, String)>, HubError>;
    fn invite(&self, org: &str, now: DateTime<Utc>) -> Result<String, HubError>;
    /// Binds `device` to the org of a valid, unused code and answers (org,
    /// device token). With `org` (the laptop's own), a code of another org
    /// is refused with [`HubError::CodeForOtherOrg`] and binds nothing.
    fn enroll(
        &self,
        code: &str,
        device: Uuid,
        org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), HubError>;
    /// The hub's secret for signing pull cursors
    /// (`outpost_proto::hub::cursor`), made on first use and kept in the
    /// database (so a restored backup verifies the cursors issued before).
    fn cursor_key(&self) -> Result<[u8; 32], HubError>;
    fn device(&self, token: &str) -> Result<DeviceAuth, HubError>;
    fn seen(
        &self,
        device: &str,
        now: DateTime<Utc>,
        device_time: Option<i64>,
    ) -> Result<(), HubError>;
    fn devices(&self, org: Option<&str>) -> Result<Vec<DeviceInfo>, HubError>;
    /// The organisation a device belongs to (None: no such device), so the
    /// caller can decide whether an admin may act on it.
    fn device_org(&self, device: &str) -> Result<Option<String>, HubError>;
    /// Revokes a device's token at once (again: no change).
    fn revoke(&self, device: &str, now: DateTime<Utc>) -> Result<(), HubError>;
    /// The organisations that hold a record with this id (ids are scoped
    /// by organisation, so more than one may).
    fn record_orgs(&self, id: &str) -> Result<Vec<String>, HubError>;
    /// Streams the projected records of `org` (None: every org) that
    /// `filter` wants, in org and date order, until `f` returns false.
    fn for_each_record(
        &self,
        org: Option<&str>,
        filter: &Filter,
        f: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), HubError>;

    // --- ops: rate limits kept in the database, shared by every hub node
    // (the decisions are `outpost_proto::hub::limits`'; these only count).

    /// Adds each take's amount to its counter `(key, period)` in one
    /// transaction, all or none: when any counter would pass its limit,
    /// nothing is added and the first such take is named with its count.
    /// Concurrent callers (threads, hub nodes) never together pass a
    /// limit. Counters whose window ended before `now` (Unix seconds) may
    /// be forgotten.
    fn rate_take(&self, takes: &[RateTake], now: i64) -> Result<RateTaken, HubError>;
    /// The counts of these `(key, period)` counters (0 for one never
    /// taken or forgotten), in order.
    fn rate_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>, HubError>;

    // --- Accounts and audit log (acct) ---
    // `create_admin_token` and `admin` above make and check accounts too:
    // a token made by `create_admin_token` is an admin account named
    // "admin"; `admin` answers the account and notes its last use.

    /// Makes an account and answers it with its token (shown once).
    fn create_account(
        &self,
        name: &str,
        role: Role,
        orgs: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Account, String), HubError>;
    /// Every account, revoked ones too, in order of creation. Accounts
    /// given the same creation time may list in either order.
    fn accounts(&self) -> Result<Vec<Account>, HubError>;
    /// Revokes account `id` (the full id) at once; refused with
    /// [`HubError::LastAdmin`] when it is the last active hub-wide admin.
    /// Again: no change.
    fn revoke_account(&self, id: &str, now: DateTime<Utc>) -> Result<(), HubError>;
    /// A new secret for account `id`; the old one stops at once. A revoked
    /// account is not brought back.
    fn rotate_account(&self, id: &str) -> Result<String, HubError>;
    /// Appends `draft` at the end of the chain (position and hash by
    /// [`AuditEntry::chained`]); appends are serialised so two hub nodes
    /// never fork the chain.
    fn append_audit(&self, draft: &AuditDraft) -> Result<AuditEntry, HubError>;
    /// Streams the audit entries in position order (only those of `orgs`
    /// when given), until `f` returns false.
    fn for_each_audit(
        &self,
        orgs: Option<&[String]>,
        f: &mut dyn FnMut(AuditEntry) -> bool,
    ) -> Result<(), HubError>;
    /// The head row: the last position and hash (None: nothing appended).
    fn audit_head(&self) -> Result<Option<AuditHead>, HubError>;

    // --- devices (dev): what a laptop reports about itself ---------------
    /// Keeps a device's latest report (name, site, staff, records waiting),
    /// shown by [`HubStore::devices`]. The caller checked it
    /// (`DeviceReport::check`); an unknown device changes nothing.
    fn report_device(&self, device: &str, report: &DeviceReport) -> Result<(), HubError>;

    // ---- dashboard: sign-in codes and sessions (dash) ----
    //
    // Codes and sessions are kept as hashes, each with the hash of the
    // admin token that asked for the code, and resolve to an `AdminAuth`
    // through the same lookup as [`HubStore::admin`]: a session sees what
    // its token sees, and ends when its token stops working.

    /// A one-time sign-in code for the dashboard, for whoever holds
    /// `token` (refused as [`HubStore::admin`] refuses it); valid for
    /// [`SIGNIN_CODE_TTL`] from `now`. Printed like an enrolment code.
    fn signin_code(&self, token: &str, now: DateTime<Utc>) -> Result<String, HubError>;
    /// Exchanges an unused, unexpired code (as typed: see
    /// [`normalize_code`]) for a new session: the session's secret and
    /// what it may see. The code is used up. A wrong, used or expired
    /// code, or one whose token no longer works: [`HubError::BadCode`].
    fn signin(&self, code: &str, now: DateTime<Utc>) -> Result<(String, AdminAuth), HubError>;
    /// What the live session `secret` may see, marking it used at `now`.
    /// A session idle for [`SESSION_IDLE`], older than [`SESSION_MAX`],
    /// signed out, or whose token no longer works:
    /// [`HubError::Unauthorized`].
    fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<AdminAuth, HubError>;
    /// Ends the session `secret` (an unknown one: nothing to do).
    fn signout(&self, secret: &str) -> Result<(), HubError>;
}

/// Whether a session that began at `created` and was last used at
/// `last_seen` is still alive at `now` (one rule for every backend).
pub fn session_alive(created: DateTime<Utc>, last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - last_seen < SESSION_IDLE && now - created < SESSION_MAX
}

impl HubError {
    /// Wraps a backend's own error (SQLite, PostgreSQL), keeping it as the
    /// source.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> HubError {
        HubError::Backend(Box::new(e))
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// A random 256-bit secret, hex-encoded, with a readable prefix so a
/// leaked string is recognisable (`opa_` admin, `opd_` device, `ops_`
/// dashboard session).
pub fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// Enrolment codes are typed by a person: 4 groups of 4 from an alphabet
/// without look-alikes (no 0/O, 1/I/L), ~78 bits.
pub fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut out = String::new();
    for group in 0..4 {
        if group > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            let i = rand::random_range(0..ALPHABET.len());
            out.push(char::from(ALPHABET[i]));
        }
    }
    out
}

/// An enrolment code as typed by a person, in the form it is hashed in:
/// letters and digits only, upper case, regrouped in fours with dashes
/// (the form [`new_code`] prints). So `abcd efgh jkmn pqrs`,
/// `ABCDEFGHJKMNPQRS` and `abcd-efgh-jkmn-pqrs` are one code, and codes
/// stored by earlier releases (hashed in the printed form) still match.
pub fn normalize_code(code: &str) -> String {
    let chars: Vec<char> = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_the_same_in_any_case_with_or_without_dashes_and_spaces() {
        let code = new_code();
        assert_eq!(normalize_code(&code), code);
        for typed in [
            code.to_lowercase(),
            code.replace('-', ""),
            code.replace('-', " "),
            format!("  {} ", code.to_lowercase().replace('-', " - ")),
        ] {
            assert_eq!(normalize_code(&typed), code, "{typed:?}");
        }
    }
}
