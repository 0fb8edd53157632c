//! The accounts side of the hub on PostgreSQL (`outpost_hub_db::HubStore`):
//! organisations, admin tokens, enrolment codes, devices, the cursor key
//! and the admin projection of records. Same meaning as the SQLite hub;
//! what differs is how concurrent hub nodes are kept apart (row locks and
//! `ON CONFLICT`, noted where they matter).

use chrono::{DateTime, Utc};
use outpost_hub_db::{
    Account, AdminAuth, AuditDraft, AuditEntry, AuditHead, CLOCK_SKEW_LIMIT_SECS, CODE_TTL,
    DeviceAuth, DeviceInfo, HubError, HubStore, Role, hash_secret, new_code, new_secret,
    normalize_code,
};
use outpost_proto::device::DeviceReport;
use outpost_proto::filter::Filter;
use outpost_proto::hub::{RateTake, RateTaken};
use outpost_proto::record::{Kind, Record};
use postgres::IsolationLevel;
use postgres::types::ToSql;
use uuid::Uuid;

use crate::feed::site_key;
use crate::{PgError, PgHubStore, new_epoch};

/// Times as the SQLite hub shows them (RFC 3339, seconds, `Z`).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Projected records fetched per round trip during an export.
const EXPORT_BATCH: i32 = 500;

impl PgHubStore {
    fn add_org_pg(&self, slug: &str, name: &str) -> Result<(), PgError> {
        if !outpost_proto::record::is_slug(slug) {
            return Err(HubError::Invalid(format!(
                "'{slug}' is not a valid slug: use lowercase letters a-z, digits and '-', e.g. mjolby"
            ))
            .into());
        }
        if name.trim().is_empty() {
            return Err(HubError::Invalid("the organisation needs a name".into()).into());
        }
        // The epoch is set in the same statement: no node ever sees the
        // org without one.
        let n = self.conn()?.client.execute(
            "INSERT INTO orgs(slug, name, created_at, epoch) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&slug, &name.trim(), &Utc::now(), &new_epoch()],
        )?;
        if n == 0 {
            return Err(HubError::OrgExists(slug.into()).into());
        }
        Ok(())
    }

    fn invite_pg(&self, org: &str, now: DateTime<Utc>) -> Result<String, PgError> {
        let code = new_code();
        // Only an existing org gets a code (one statement: no race with
        // anything, as orgs are never deleted).
        let n = self.conn()?.client.execute(
            "INSERT INTO enrol_codes(hash, org, created_at, expires_at)
             SELECT $1, slug, $3, $4 FROM orgs WHERE slug = $2",
            &[
                &hash_secret(&normalize_code(&code)),
                &org,
                &now,
                &(now + CODE_TTL),
            ],
        )?;
        if n == 0 {
            return Err(HubError::NoSuchOrg(org.into()).into());
        }
        Ok(code)
    }

    fn cursor_key_pg(&self) -> Result<[u8; 32], PgError> {
        let fresh: [u8; 32] = rand::random();
        let mut conn = self.conn()?;
        // Whichever node comes first makes the key; every node reads the
        // one stored.
        conn.client.execute(
            "INSERT INTO secrets(name, value) VALUES ('cursor_key', $1) ON CONFLICT DO NOTHING",
            &[&fresh.as_slice()],
        )?;
        let stored: Vec<u8> = conn
            .client
            .query_one("SELECT value FROM secrets WHERE name = 'cursor_key'", &[])?
            .get(0);
        <[u8; 32]>::try_from(stored.as_slice()).map_err(|_| {
            HubError::Invalid(
                "the hub's cursor key in the database is damaged; delete the row `cursor_key` of table `secrets` (laptops then re-read the feed once)".into(),
            )
            .into()
        })
    }

    fn enroll_pg(
        &self,
        code: &str,
        device: Uuid,
        laptop_org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        let hash = hash_secret(&normalize_code(code));
        // FOR UPDATE: two nodes given one code at once enrol one device;
        // the second waits, then sees the code used.
        let row = tx.query_opt(
            "SELECT org, expires_at, used_at FROM enrol_codes WHERE hash = $1 FOR UPDATE",
            &[&hash],
        )?;
        let Some(row) = row else {
            return Err(HubError::BadCode.into());
        };
        let org: String = row.get(0);
        let expires: DateTime<Utc> = row.get(1);
        let used: Option<DateTime<Utc>> = row.get(2);
        if used.is_some() || expires < now {
            return Err(HubError::BadCode.into());
        }
        if let Some(want) = laptop_org
            && want != org
        {
            // Nothing is written: the code stays usable by its own org.
            return Err(HubError::CodeForOtherOrg(want.to_string()).into());
        }
        let token = new_secret("opd_");
        let inserted = tx.execute(
            "INSERT INTO devices(id, org, token_hash, enrolled_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&device.to_string(), &org, &hash_secret(&token), &now],
        )?;
        if inserted == 0 {
            return Err(HubError::DeviceExists(device).into());
        }
        tx.execute(
            "UPDATE enrol_codes SET used_at = $1 WHERE hash = $2",
            &[&now, &hash],
        )?;
        tx.commit()?;
        Ok((org, token))
    }

    fn device_pg(&self, token: &str) -> Result<DeviceAuth, PgError> {
        let mut conn = self.conn()?;
        let stmt = conn
            .prepare("SELECT id, org FROM devices WHERE token_hash = $1 AND revoked_at IS NULL")?;
        let row = conn.client.query_opt(&stmt, &[&hash_secret(token)])?;
        row.map(|r| DeviceAuth {
            device: r.get(0),
            org: r.get(1),
        })
        .ok_or(PgError::from(HubError::Unauthorized))
    }

    fn seen_pg(
        &self,
        device: &str,
        now: DateTime<Utc>,
        device_time: Option<i64>,
    ) -> Result<(), PgError> {
        let offset = device_time.map(|t| t - now.timestamp());
        let mut conn = self.conn()?;
        let stmt = conn.prepare(
            "UPDATE devices SET last_seen = $1, clock_offset_secs = coalesce($2, clock_offset_secs)
             WHERE id = $3",
        )?;
        conn.client.execute(&stmt, &[&now, &offset, &device])?;
        Ok(())
    }

    fn devices_pg(&self, org: Option<&str>) -> Result<Vec<DeviceInfo>, PgError> {
        let rows = self.conn()?.client.query(
            "SELECT id, org, enrolled_at, last_seen, clock_offset_secs, revoked_at,
                    name, site, staff, waiting FROM devices
             WHERE $1::text IS NULL OR org = $1 ORDER BY org, enrolled_at",
            &[&org],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let offset: Option<i64> = r.get(4);
                DeviceInfo {
                    id: r.get(0),
                    org: r.get(1),
                    enrolled_at: ts(r.get(2)),
                    last_seen: r.get::<_, Option<DateTime<Utc>>>(3).map(ts),
                    clock_offset_secs: offset,
                    clock_flag: offset.is_some_and(|o| o.abs() > CLOCK_SKEW_LIMIT_SECS),
                    revoked: r.get::<_, Option<DateTime<Utc>>>(5).is_some(),
                    name: r.get(6),
                    site: r.get(7),
                    staff: r.get(8),
                    waiting: r.get::<_, Option<i64>>(9).map(|n| n.max(0) as u64),
                }
            })
            .collect())
    }

    fn report_device_pg(&self, device: &str, report: &DeviceReport) -> Result<(), PgError> {
        let waiting = i64::try_from(report.waiting).unwrap_or(i64::MAX);
        let mut conn = self.conn()?;
        let stmt = conn.prepare(
            "UPDATE devices SET name = $1, site = $2, staff = $3, waiting = $4 WHERE id = $5",
        )?;
        conn.client.execute(
            &stmt,
            &[&report.name, &report.site, &report.staff, &waiting, &device],
        )?;
        Ok(())
    }

    fn device_org_pg(&self, device: &str) -> Result<Option<String>, PgError> {
        Ok(self
            .conn()?
            .client
            .query_opt("SELECT org FROM devices WHERE id = $1", &[&device])?
            .map(|r| r.get(0)))
    }

    fn revoke_pg(&self, device: &str, now: DateTime<Utc>) -> Result<(), PgError> {
        let n = self.conn()?.client.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2",
            &[&now, &device],
        )?;
        if n == 0 {
            return Err(HubError::NoSuchDevice(device.into()).into());
        }
        Ok(())
    }

    fn record_orgs_pg(&self, id: &str) -> Result<Vec<String>, PgError> {
        // Ids are UUIDs; anything else is held by no org.
        let Ok(id) = Uuid::parse_str(id) else {
            return Ok(Vec::new());
        };
        Ok(self
            .conn()?
            .client
            .query(
                "SELECT org FROM docs WHERE org IN (SELECT slug FROM orgs) AND id = $1 ORDER BY org",
                &[&id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn for_each_record_pg(
        &self,
        org: Option<&str>,
        filter: &Filter,
        f: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let kind = filter.kind.map(Kind::as_str);
        let site = filter.site.as_deref().map(site_key);
        let params: [&(dyn ToSql + Sync); 5] = [&org, &kind, &filter.from, &filter.to, &site];
        // Streamed in batches through a portal: an export of every record
        // never holds more than one batch in memory.
        let portal = tx.bind(
            "SELECT body FROM records
             WHERE ($1::text IS NULL OR org = $1) AND ($2::text IS NULL OR kind = $2)
               AND ($3::date IS NULL OR date_to >= $3) AND ($4::date IS NULL OR date_from <= $4)
               AND ($5::text IS NULL OR site_key = $5)
             ORDER BY org, date_from, created_at, id",
            &params,
        )?;
        'rows: loop {
            let batch = tx.query_portal(&portal, EXPORT_BATCH)?;
            let last = batch.len() < usize::try_from(EXPORT_BATCH).unwrap_or(0);
            for row in &batch {
                let body: &str = row.get(0);
                match serde_json::from_str::<Record>(body) {
                    Ok(r) => {
                        if !f(r) {
                            break 'rows;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "damaged record projection on the hub"),
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
}

/// The accounts side, for the HTTP layer (errors converted to
/// [`HubError`]).
impl HubStore for PgHubStore {
    /// Writes work when this node gets a connection and the database is
    /// not a read-only standby (a failed-over replica would refuse every
    /// push).
    fn health(&self) -> Result<(), HubError> {
        let standby: bool = self
            .conn()?
            .client
            .query_one("SELECT pg_is_in_recovery()", &[])
            .map_err(HubError::backend)?
            .get(0);
        if standby {
            return Err(HubError::Invalid(
                "the hub's database is a read-only standby; point --database at the primary".into(),
            ));
        }
        Ok(())
    }

    fn create_admin_token(&self, org: Option<&str>) -> Result<String, HubError> {
        let orgs = org.map(|o| vec![o.to_string()]);
        Ok(self
            .create_account_pg("admin", Role::Admin, orgs.as_deref(), Utc::now())?
            .1)
    }
    fn has_admin_token(&self) -> Result<bool, HubError> {
        let n: i64 = self
            .conn()?
            .client
            .query_one("SELECT count(*) FROM admin_tokens", &[])
            .map_err(HubError::backend)?
            .get(0);
        Ok(n > 0)
    }
    fn admin(&self, token: &str) -> Result<AdminAuth, HubError> {
        Ok(self.admin_pg(token)?)
    }
    fn add_org(&self, slug: &str, name: &str) -> Result<(), HubError> {
        Ok(self.add_org_pg(slug, name)?)
    }
    fn orgs(&self) -> Result<Vec<(String, String)>, HubError> {
        Ok(self
            .conn()?
            .client
            .query("SELECT slug, name FROM orgs ORDER BY slug", &[])
            .map_err(HubError::backend)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
    fn invite(&self, org: &str, now: DateTime<Utc>) -> Result<String, HubError> {
        Ok(self.invite_pg(org, now)?)
    }
    fn cursor_key(&self) -> Result<[u8; 32], HubError> {
        Ok(self.cursor_key_pg()?)
    }
    fn enroll(
        &self,
        code: &str,
        device: Uuid,
        org: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), HubError> {
        Ok(self.enroll_pg(code, device, org, now)?)
    }
    fn device(&self, token: &str) -> Result<DeviceAuth, HubError> {
        Ok(self.device_pg(token)?)
    }
    fn seen(
        &self,
        device: &str,
        now: DateTime<Utc>,
        device_time: Option<i64>,
    ) -> Result<(), HubError> {
        Ok(self.seen_pg(device, now, device_time)?)
    }
    fn devices(&self, org: Option<&str>) -> Result<Vec<DeviceInfo>, HubError> {
        Ok(self.devices_pg(org)?)
    }
    fn device_org(&self, device: &str) -> Result<Option<String>, HubError> {
        Ok(self.device_org_pg(device)?)
    }
    fn revoke(&self, device: &str, now: DateTime<Utc>) -> Result<(), HubError> {
        Ok(self.revoke_pg(device, now)?)
    }
    fn record_orgs(&self, id: &str) -> Result<Vec<String>, HubError> {
        Ok(self.record_orgs_pg(id)?)
    }
    fn for_each_record(
        &self,
        org: Option<&str>,
        filter: &Filter,
        f: &mut dyn FnMut(Record) -> bool,
    ) -> Result<(), HubError> {
        Ok(self.for_each_record_pg(org, filter, f)?)
    }

    // ---- dashboard: sign-in codes and sessions (dash) ----
    fn signin_code(&self, token: &str, now: DateTime<Utc>) -> Result<String, HubError> {
        Ok(self.signin_code_pg(token, now)?)
    }
    fn signin(&self, code: &str, now: DateTime<Utc>) -> Result<(String, AdminAuth), HubError> {
        Ok(self.signin_pg(code, now)?)
    }
    fn session(&self, secret: &str, now: DateTime<Utc>) -> Result<AdminAuth, HubError> {
        Ok(self.session_pg(secret, now)?)
    }
    fn signout(&self, secret: &str) -> Result<(), HubError> {
        Ok(self.signout_pg(secret)?)
    }

    // devices (dev)
    fn report_device(&self, device: &str, report: &DeviceReport) -> Result<(), HubError> {
        Ok(self.report_device_pg(device, report)?)
    }

    // --- ops: rate limits (src/rate.rs)
    fn rate_take(&self, takes: &[RateTake], now: i64) -> Result<RateTaken, HubError> {
        Ok(self.rate_take_pg(takes, now)?)
    }
    fn rate_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>, HubError> {
        Ok(self.rate_counts_pg(keys)?)
    }

    // --- Accounts and audit log (acct) ---
    fn create_account(
        &self,
        name: &str,
        role: Role,
        orgs: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Account, String), HubError> {
        Ok(self.create_account_pg(name, role, orgs, now)?)
    }
    fn accounts(&self) -> Result<Vec<Account>, HubError> {
        Ok(self.accounts_pg()?)
    }
    fn revoke_account(&self, id: &str, now: DateTime<Utc>) -> Result<(), HubError> {
        Ok(self.revoke_account_pg(id, now)?)
    }
    fn rotate_account(&self, id: &str) -> Result<String, HubError> {
        Ok(self.rotate_account_pg(id)?)
    }
    fn append_audit(&self, draft: &AuditDraft) -> Result<AuditEntry, HubError> {
        Ok(self.append_audit_pg(draft)?)
    }
    fn for_each_audit(
        &self,
        orgs: Option<&[String]>,
        f: &mut dyn FnMut(AuditEntry) -> bool,
    ) -> Result<(), HubError> {
        Ok(self.for_each_audit_pg(orgs, f)?)
    }
    fn audit_head(&self) -> Result<Option<AuditHead>, HubError> {
        Ok(self.audit_head_pg()?)
    }
}
