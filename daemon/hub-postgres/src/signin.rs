//! The dashboard's sign-in codes and sessions on PostgreSQL (migration
//! 0004), with the meaning `outpost_hub_db::HubStore` gives them. A code
//! is taken with a row lock, so two nodes given one code at once make one
//! session.

use chrono::{DateTime, Utc};
use outpost_hub_db::{
    AdminAuth, HubError, SESSION_IDLE, SESSION_MAX, SIGNIN_CODE_TTL, hash_secret, new_code,
    new_secret, normalize_code, session_alive,
};

use crate::{PgError, PgHubStore};

use crate::acct::admin_by_hash;

impl PgHubStore {
    pub(crate) fn signin_code_pg(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<String, PgError> {
        let token_hash = hash_secret(token);
        let mut conn = self.conn()?;
        admin_by_hash(&mut conn.client, &token_hash)?;
        // Codes past any use are dropped as new ones come, so the table
        // stays small without a timer.
        conn.client.execute(
            "DELETE FROM signin_codes WHERE expires_at < $1",
            &[&(now - SESSION_MAX)],
        )?;
        let code = new_code();
        conn.client.execute(
            "INSERT INTO signin_codes(hash, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[
                &hash_secret(&normalize_code(&code)),
                &token_hash,
                &now,
                &(now + SIGNIN_CODE_TTL),
            ],
        )?;
        Ok(code)
    }

    pub(crate) fn signin_pg(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, AdminAuth), PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        let hash = hash_secret(&normalize_code(code));
        let row = tx.query_opt(
            "SELECT token_hash, expires_at, used_at FROM signin_codes WHERE hash = $1 FOR UPDATE",
            &[&hash],
        )?;
        let Some(row) = row else {
            return Err(HubError::BadCode.into());
        };
        let token_hash: String = row.get(0);
        let expires: DateTime<Utc> = row.get(1);
        let used: Option<DateTime<Utc>> = row.get(2);
        if used.is_some() || expires < now {
            return Err(HubError::BadCode.into());
        }
        let auth = match admin_by_hash(&mut tx, &token_hash) {
            Err(PgError::Hub(HubError::Unauthorized)) => return Err(HubError::BadCode.into()),
            other => other?,
        };
        tx.execute(
            "UPDATE signin_codes SET used_at = $1 WHERE hash = $2",
            &[&now, &hash],
        )?;
        tx.execute(
            "DELETE FROM dash_sessions WHERE created_at < $1 OR last_seen < $2",
            &[&(now - SESSION_MAX), &(now - SESSION_IDLE)],
        )?;
        let secret = new_secret("ops_");
        tx.execute(
            "INSERT INTO dash_sessions(hash, token_hash, created_at, last_seen) VALUES ($1, $2, $3, $3)",
            &[&hash_secret(&secret), &token_hash, &now],
        )?;
        tx.commit()?;
        Ok((secret, auth))
    }

    pub(crate) fn session_pg(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<AdminAuth, PgError> {
        let hash = hash_secret(secret);
        let mut conn = self.conn()?;
        let row = conn.client.query_opt(
            "SELECT token_hash, created_at, last_seen FROM dash_sessions WHERE hash = $1",
            &[&hash],
        )?;
        let Some(row) = row else {
            return Err(HubError::Unauthorized.into());
        };
        let token_hash: String = row.get(0);
        if !session_alive(row.get(1), row.get(2), now) {
            conn.client
                .execute("DELETE FROM dash_sessions WHERE hash = $1", &[&hash])?;
            return Err(HubError::Unauthorized.into());
        }
        let auth = admin_by_hash(&mut conn.client, &token_hash)?;
        conn.client.execute(
            "UPDATE dash_sessions SET last_seen = $1 WHERE hash = $2",
            &[&now, &hash],
        )?;
        Ok(auth)
    }

    pub(crate) fn signout_pg(&self, secret: &str) -> Result<(), PgError> {
        self.conn()?.client.execute(
            "DELETE FROM dash_sessions WHERE hash = $1",
            &[&hash_secret(secret)],
        )?;
        Ok(())
    }
}
