//! Accounts (named admin and coordinator tokens) and the hash-chained
//! audit log on PostgreSQL, with the meaning of the SQLite hub's. What
//! differs is how concurrent hub nodes are kept apart: an append locks the
//! audit head row (`FOR UPDATE`) for its transaction, so two nodes never
//! give two entries one position; revoking locks the active hub-wide admin
//! rows, so two admins revoking each other at once cannot leave none.

use chrono::{DateTime, Utc};
use outpost_hub_db::accounts::{self, orgs_from_column, orgs_to_column};
use outpost_hub_db::{
    Account, AdminAuth, AuditDraft, AuditEntry, AuditHead, HubError, Role, hash_secret, new_secret,
};

use crate::{PgError, PgHubStore};

/// Times as the SQLite hub shows them (RFC 3339, seconds, `Z`).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn entry(r: &postgres::Row) -> AuditEntry {
    AuditEntry {
        position: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
        at: r.get(1),
        actor_id: r.get(2),
        actor_name: r.get(3),
        action: r.get(4),
        org: r.get(5),
        detail: r.get(6),
        hash: r.get(7),
    }
}

/// Audit entries fetched per round trip while streaming.
const AUDIT_BATCH: i32 = 500;

/// Who an admin token (given as its hash) is: the one lookup behind
/// `admin` and dashboard sessions (`crate::signin`), so a session sees
/// what its token sees and ends when the token is revoked or rotated.
pub(crate) fn admin_by_hash(
    client: &mut impl postgres::GenericClient,
    token_hash: &str,
) -> Result<AdminAuth, PgError> {
    let row = client.query_opt(
        "SELECT id, name, role, org FROM admin_tokens WHERE hash = $1 AND revoked_at IS NULL",
        &[&token_hash],
    )?;
    let Some(r) = row else {
        return Err(HubError::Unauthorized.into());
    };
    let role: String = r.get(2);
    Ok(AdminAuth {
        id: r.get(0),
        name: r.get(1),
        role: Role::parse(&role)?,
        orgs: orgs_from_column(r.get(3)),
    })
}

impl PgHubStore {
    pub(crate) fn admin_pg(&self, token: &str) -> Result<AdminAuth, PgError> {
        let hash = hash_secret(token);
        let mut conn = self.conn()?;
        let auth = admin_by_hash(&mut conn.client, &hash)?;
        // Last use is noted at most once a minute.
        conn.client.execute(
            "UPDATE admin_tokens SET last_used = now()
             WHERE hash = $1 AND (last_used IS NULL OR last_used < now() - interval '1 minute')",
            &[&hash],
        )?;
        Ok(auth)
    }

    pub(crate) fn create_account_pg(
        &self,
        name: &str,
        role: Role,
        orgs: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Account, String), PgError> {
        let name = accounts::check_new_account(name, role, orgs)?;
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        for org in orgs.unwrap_or_default() {
            if tx
                .query_opt("SELECT 1 FROM orgs WHERE slug = $1", &[org])?
                .is_none()
            {
                return Err(HubError::NoSuchOrg(org.clone()).into());
            }
        }
        let token = new_secret("opa_");
        // 32 random bits: a clash with an existing id is rare and answered
        // with another id (ON CONFLICT on the unique id index).
        let id = loop {
            let id = accounts::new_account_id();
            let n = tx.execute(
                "INSERT INTO admin_tokens(hash, org, created_at, id, name, role)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &[
                    &hash_secret(&token),
                    &orgs_to_column(orgs),
                    &now,
                    &id,
                    &name,
                    &role.as_str(),
                ],
            )?;
            if n == 1 {
                break id;
            }
        };
        tx.commit()?;
        let account = Account {
            id,
            name,
            role,
            orgs: orgs.map(<[String]>::to_vec),
            created_at: ts(now),
            last_used: None,
            revoked_at: None,
        };
        Ok((account, token))
    }

    pub(crate) fn accounts_pg(&self) -> Result<Vec<Account>, PgError> {
        let rows = self.conn()?.client.query(
            "SELECT id, name, role, org, created_at, last_used, revoked_at FROM admin_tokens
             ORDER BY created_at, id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                let role: String = r.get(2);
                Ok(Account {
                    id: r.get(0),
                    name: r.get(1),
                    role: Role::parse(&role)?,
                    orgs: orgs_from_column(r.get(3)),
                    created_at: ts(r.get(4)),
                    last_used: r.get::<_, Option<DateTime<Utc>>>(5).map(ts),
                    revoked_at: r.get::<_, Option<DateTime<Utc>>>(6).map(ts),
                })
            })
            .collect()
    }

    pub(crate) fn revoke_account_pg(&self, id: &str, now: DateTime<Utc>) -> Result<(), PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        // Every active hub-wide admin row is locked first (in id order, so
        // two revokes never deadlock): the count below stays true until
        // this transaction ends.
        tx.execute(
            "SELECT 1 FROM admin_tokens
             WHERE role = 'admin' AND org IS NULL AND revoked_at IS NULL
             ORDER BY id FOR UPDATE",
            &[],
        )?;
        let row = tx.query_opt(
            "SELECT role, org, revoked_at FROM admin_tokens WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        let Some(row) = row else {
            return Err(HubError::NoSuchAccount(id.into()).into());
        };
        let role: String = row.get(0);
        let orgs: Option<String> = row.get(1);
        if row.get::<_, Option<DateTime<Utc>>>(2).is_some() {
            return Ok(());
        }
        if role == Role::Admin.as_str() && orgs.is_none() {
            let others: i64 = tx
                .query_one(
                    "SELECT count(*) FROM admin_tokens
                     WHERE role = 'admin' AND org IS NULL AND revoked_at IS NULL AND id != $1",
                    &[&id],
                )?
                .get(0);
            if others == 0 {
                return Err(HubError::LastAdmin(id.into()).into());
            }
        }
        tx.execute(
            "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2",
            &[&now, &id],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn rotate_account_pg(&self, id: &str) -> Result<String, PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        let row = tx.query_opt(
            "SELECT revoked_at FROM admin_tokens WHERE id = $1 FOR UPDATE",
            &[&id],
        )?;
        let Some(row) = row else {
            return Err(HubError::NoSuchAccount(id.into()).into());
        };
        if row.get::<_, Option<DateTime<Utc>>>(0).is_some() {
            return Err(HubError::Invalid(format!(
                "token {id} is revoked; create a new one with `outpost admin token create`"
            ))
            .into());
        }
        let token = new_secret("opa_");
        tx.execute(
            "UPDATE admin_tokens SET hash = $1 WHERE id = $2",
            &[&hash_secret(&token), &id],
        )?;
        tx.commit()?;
        Ok(token)
    }

    pub(crate) fn append_audit_pg(&self, draft: &AuditDraft) -> Result<AuditEntry, PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        // The head row is locked until commit: a second node's append
        // waits here, then chains onto this one.
        let head = tx.query_one(
            "SELECT position, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )?;
        let last: i64 = head.get(0);
        let prev: String = head.get(1);
        let position = u64::try_from(last).unwrap_or(0) + 1;
        let e = AuditEntry::chained(draft, position, &prev);
        let pos = i64::try_from(position).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO audit_log(position, at, actor_id, actor_name, action, org, detail, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &pos,
                &e.at,
                &e.actor_id,
                &e.actor_name,
                &e.action,
                &e.org,
                &e.detail,
                &e.hash,
            ],
        )?;
        tx.execute(
            "UPDATE audit_head SET position = $1, hash = $2 WHERE id = 1",
            &[&pos, &e.hash],
        )?;
        tx.commit()?;
        Ok(e)
    }

    pub(crate) fn for_each_audit_pg(
        &self,
        orgs: Option<&[String]>,
        f: &mut dyn FnMut(AuditEntry) -> bool,
    ) -> Result<(), PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let orgs: Option<Vec<String>> = orgs.map(<[String]>::to_vec);
        // Streamed through a portal: a long log is never held whole.
        let portal = tx.bind(
            "SELECT position, at, actor_id, actor_name, action, org, detail, hash
             FROM audit_log WHERE $1::text[] IS NULL OR org = ANY($1)
             ORDER BY position",
            &[&orgs],
        )?;
        'rows: loop {
            let batch = tx.query_portal(&portal, AUDIT_BATCH)?;
            let last = batch.len() < usize::try_from(AUDIT_BATCH).unwrap_or(0);
            for r in &batch {
                if !f(entry(r)) {
                    break 'rows;
                }
            }
            if last {
                break;
            }
        }
        drop(portal);
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn audit_head_pg(&self) -> Result<Option<AuditHead>, PgError> {
        Ok(self
            .conn()?
            .client
            .query_opt("SELECT position, hash FROM audit_head WHERE id = 1", &[])?
            .map(|r| AuditHead {
                position: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                hash: r.get(1),
            }))
    }
}
