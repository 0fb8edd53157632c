//! Hub accounts (named admin and coordinator tokens) and the hash-chained
//! audit log: the types every backend stores, and the logic that must be
//! the same whichever backend stores them (the chain's hash, its
//! verification, id prefixes), so backends stay dumb storage.
//!
//! Chain: entry `n` stores `hash_n = sha256(hash_{n-1} ‖ canonical(entry
//! n))` with `hash_0` = 64 zeros, where the canonical encoding is
//! length-prefixed fields including the position. A head row (last
//! position and hash) is updated in the same transaction as each append,
//! so an edited, removed, reordered or cut-off entry shows when the chain
//! is walked ([`verify_audit`]). Appends are serialised by the backend
//! (SQLite's single writer; PostgreSQL locks the head row), so two hub
//! nodes on one database never fork the chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{HubError, HubStore};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The name given to admin tokens made before tokens had names.
pub const LEGACY_NAME: &str = "admin (made before account names)";

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in its orgs (or in every org when not scoped).
    Admin,
    /// Read only: statistics, reports, exports, records, devices and the
    /// audit of its orgs.
    Coordinator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coordinator => "coordinator",
        }
    }

    pub fn parse(s: &str) -> Result<Role, HubError> {
        match s {
            "admin" => Ok(Role::Admin),
            "coordinator" => Ok(Role::Coordinator),
            other => Err(HubError::Invalid(format!(
                "unknown role {other:?}: admin or coordinator"
            ))),
        }
    }
}

/// An account as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `tok_` and 8 hex digits.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The orgs it is scoped to; None: every org.
    pub orgs: Option<Vec<String>>,
    pub created_at: String,
    pub last_used: Option<String>,
    pub revoked_at: Option<String>,
}

/// A new account's short id: `tok_` and 8 hex digits of a random value.
pub fn new_account_id() -> String {
    format!("tok_{}", hex::encode(rand::random::<[u8; 4]>()))
}

/// Checks a new account's name, role and orgs (a coordinator needs at
/// least one org); returns the name trimmed.
pub fn check_new_account(
    name: &str,
    role: Role,
    orgs: Option<&[String]>,
) -> Result<String, HubError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(HubError::Invalid(
            "give the token a name of 1 to 100 characters (who holds it, e.g. \"Anna, Mjölby\")"
                .into(),
        ));
    }
    if role == Role::Coordinator && orgs.is_none_or(<[String]>::is_empty) {
        return Err(HubError::Invalid(
            "a coordinator token is read-only for one or more organisations: name them with --org ORG".into(),
        ));
    }
    if let Some(orgs) = orgs {
        if orgs.is_empty() {
            return Err(HubError::Invalid("name at least one organisation".into()));
        }
        if let Some(bad) = orgs.iter().find(|o| !outpost_proto::record::is_slug(o)) {
            return Err(HubError::NoSuchOrg(bad.clone()));
        }
    }
    Ok(name.to_string())
}

/// Orgs as stored in one text column (slugs never hold a comma).
pub fn orgs_to_column(orgs: Option<&[String]>) -> Option<String> {
    orgs.map(|o| o.join(","))
}

pub fn orgs_from_column(column: Option<String>) -> Option<Vec<String>> {
    column.map(|c| {
        c.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// The account whose id is `wanted` or starts with it (with or without
/// `tok_`, at least 4 hex digits), as local commands take record ids. An
/// ambiguous prefix is refused naming the candidates.
pub fn resolve_account<H: HubStore + ?Sized>(store: &H, wanted: &str) -> Result<Account, HubError> {
    pick_account(store.accounts()?, wanted)
}

/// [`resolve_account`] over a list of accounts.
pub fn pick_account(all: Vec<Account>, wanted: &str) -> Result<Account, HubError> {
    let needle = wanted.trim().to_lowercase();
    let hexpart = needle.strip_prefix("tok_").unwrap_or(&needle);
    if hexpart.len() < 4 {
        return Err(HubError::NoSuchAccount(format!(
            "{wanted} (give at least 4 characters of the id after tok_; `outpost admin token list` shows them)"
        )));
    }
    let full = format!("tok_{hexpart}");
    if let Some(exact) = all.iter().find(|a| a.id == full) {
        return Ok(exact.clone());
    }
    let hits: Vec<Account> = all
        .into_iter()
        .filter(|a| a.id.starts_with(&full))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(HubError::NoSuchAccount(wanted.to_string())),
        many => Err(HubError::Invalid(format!(
            "more than one token id starts with {wanted}: {}; give more of the id",
            many.iter()
                .map(|a| a.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Who did an audited thing: an account, or someone on the hub machine
/// itself (`outpostd hub init`, `outpostd hub token new`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The account id; None on the hub machine.
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    pub fn hub_machine() -> Actor {
        Actor {
            id: None,
            name: "hub machine".into(),
        }
    }
}

/// An audit entry to append (the backend gives it its position and hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    /// RFC 3339, seconds, `Z` (kept as text so the hash reproduces).
    pub at: String,
    pub actor: Actor,
    pub action: String,
    pub org: Option<String>,
    /// What was done, in words; never record content, never a secret.
    pub detail: String,
}

/// An appended audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub position: u64,
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub org: Option<String>,
    pub detail: String,
    pub hash: String,
}

impl AuditEntry {
    /// The entry `draft` becomes at `position` after an entry hashed
    /// `prev` (what a backend stores).
    pub fn chained(draft: &AuditDraft, position: u64, prev: &str) -> AuditEntry {
        let mut entry = AuditEntry {
            position,
            at: draft.at.clone(),
            actor_id: draft.actor.id.clone(),
            actor_name: draft.actor.name.clone(),
            action: draft.action.clone(),
            org: draft.org.clone(),
            detail: draft.detail.clone(),
            hash: String::new(),
        };
        entry.hash = entry.expected_hash(prev);
        entry
    }

    /// `sha256(prev ‖ canonical encoding)`, hex.
    pub fn expected_hash(&self, prev: &str) -> String {
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(self.position.to_be_bytes());
        for field in [
            Some(self.at.as_str()),
            self.actor_id.as_deref(),
            Some(self.actor_name.as_str()),
            Some(self.action.as_str()),
            self.org.as_deref(),
            Some(self.detail.as_str()),
        ] {
            // Length-prefixed, with absence distinct from "": no two
            // different entries encode alike.
            match field {
                None => h.update([0u8]),
                Some(s) => {
                    h.update([1u8]);
                    h.update((s.len() as u64).to_be_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        hex::encode(h.finalize())
    }
}

/// The last position and hash of the chain, as the head row holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub position: u64,
    pub hash: String,
}

/// The verdict of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerdict {
    pub intact: bool,
    /// Entries walked.
    pub entries: u64,
    /// The first position where the chain breaks.
    pub broken_at: Option<u64>,
    /// What is wrong there, and what to do.
    pub problem: Option<String>,
}

/// Appends an audit entry now: the one function every audited action
/// calls (the server's handlers, `outpostd hub token new`, sign-ins).
pub fn audit<H: HubStore + ?Sized>(
    store: &H,
    who: &Actor,
    action: &str,
    org: Option<&str>,
    detail: &str,
) -> Result<AuditEntry, HubError> {
    audit_at(store, who, action, org, detail, Utc::now())
}

pub fn audit_at<H: HubStore + ?Sized>(
    store: &H,
    who: &Actor,
    action: &str,
    org: Option<&str>,
    detail: &str,
    at: DateTime<Utc>,
) -> Result<AuditEntry, HubError> {
    store.append_audit(&AuditDraft {
        at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        actor: who.clone(),
        action: action.to_string(),
        org: org.map(str::to_string),
        detail: detail.to_string(),
    })
}

/// Walks the whole chain from the first entry and compares its end with
/// the head row: the first edited, removed, inserted or reordered entry
/// (or entries cut off the end) is named.
pub fn verify_audit<H: HubStore + ?Sized>(store: &H) -> Result<AuditVerdict, HubError> {
    let head = store.audit_head()?;
    let mut prev = GENESIS.to_string();
    let mut expected = 1u64;
    let mut broken: Option<(u64, String)> = None;
    store.for_each_audit(None, &mut |e| {
        if e.position != expected {
            broken = Some(if e.position > expected {
                (
                    expected,
                    format!(
                        "entry {expected} is missing (the log goes from {} to {}): entries were removed",
                        expected - 1,
                        e.position
                    ),
                )
            } else {
                (
                    e.position,
                    format!("entry {} appears twice or out of order", e.position),
                )
            });
            return false;
        }
        if e.expected_hash(&prev) != e.hash {
            broken = Some((
                e.position,
                format!(
                    "entry {} does not match the chain: it was changed, replaced or moved after it was written",
                    e.position
                ),
            ));
            return false;
        }
        prev = e.hash;
        expected += 1;
        true
    })?;
    let walked = expected - 1;
    if broken.is_none() {
        let (head_pos, head_hash) = head
            .map(|h| (h.position, h.hash))
            .unwrap_or((0, GENESIS.to_string()));
        if head_pos > walked {
            broken = Some((
                walked + 1,
                format!(
                    "entries {} to {head_pos} are missing: the log was cut off after entry {walked}",
                    walked + 1
                ),
            ));
        } else if head_pos < walked || head_hash != prev {
            broken = Some((
                head_pos.min(walked).max(1),
                "the log's head does not match its last entry: entries were added or changed outside the hub".into(),
            ));
        }
    }
    Ok(match broken {
        None => AuditVerdict {
            intact: true,
            entries: walked,
            broken_at: None,
            problem: None,
        },
        Some((at, why)) => AuditVerdict {
            intact: false,
            entries: walked,
            broken_at: Some(at),
            problem: Some(why),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str) -> Account {
        Account {
            id: id.into(),
            name: "x".into(),
            role: Role::Admin,
            orgs: None,
            created_at: "2025-01-01T00:00:00Z".into(),
            last_used: None,
            revoked_at: None,
        }
    }

    #[test]
    fn an_account_is_named_by_its_id_or_a_prefix_and_an_ambiguous_prefix_names_the_candidates() {
        let all = || {
            vec![
                account("tok_abcd1234"),
                account("tok_abcd9999"),
                account("tok_ffff0000"),
            ]
        };
        assert_eq!(pick_account(all(), "tok_ffff").unwrap().id, "tok_ffff0000");
        assert_eq!(pick_account(all(), "FFFF00").unwrap().id, "tok_ffff0000");
        assert_eq!(
            pick_account(all(), " tok_abcd1234 ").unwrap().id,
            "tok_abcd1234"
        );
        match pick_account(all(), "abcd") {
            Err(HubError::Invalid(m)) => {
                assert!(
                    m.contains("tok_abcd1234") && m.contains("tok_abcd9999"),
                    "{m}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pick_account(all(), "abc"),
            Err(HubError::NoSuchAccount(_))
        ));
        assert!(matches!(
            pick_account(all(), "1234"),
            Err(HubError::NoSuchAccount(_))
        ));
    }

    #[test]
    fn the_hash_covers_every_field_and_the_position() {
        let draft = AuditDraft {
            at: "2025-03-04T09:00:00Z".into(),
            actor: Actor::hub_machine(),
            action: "token.create".into(),
            org: None,
            detail: "a".into(),
        };
        let e = AuditEntry::chained(&draft, 1, GENESIS);
        assert_eq!(e.expected_hash(GENESIS), e.hash);
        let mut changed = vec![e.clone(); 6];
        changed[0].position = 2;
        changed[1].detail = "b".into();
        changed[2].org = Some(String::new());
        changed[3].actor_id = Some("hub machine".into());
        changed[4].at = "2025-03-04T09:00:01Z".into();
        changed[5].action = "token.revoke".into();
        for c in changed {
            assert_ne!(c.expected_hash(GENESIS), e.hash, "{c:?}");
        }
        assert_ne!(e.expected_hash(&e.hash), e.hash, "the previous hash counts");
    }
}
