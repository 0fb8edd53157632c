//! Each organisation's central configuration blobs (catalogue, site list)
//! with their versions: the `config`/`set_config` storage primitives.

use outpost_proto::hub::ConfigEntry;

use crate::{PgError, PgHubStore};

impl PgHubStore {
    /// `None` when there is no such org (an org without configuration has
    /// an empty list).
    pub(crate) fn read_config(&self, org: &str) -> Result<Option<Vec<ConfigEntry>>, PgError> {
        let mut conn = self.conn()?;
        if conn
            .client
            .query_opt("SELECT 1 FROM orgs WHERE slug = $1", &[&org])?
            .is_none()
        {
            return Ok(None);
        }
        let rows = conn.client.query(
            "SELECT kind, version, data FROM org_config WHERE org = $1",
            &[&org],
        )?;
        Ok(Some(
            rows.iter()
                .map(|r| ConfigEntry {
                    kind: r.get(0),
                    version: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    data: r.get(2),
                })
                .collect(),
        ))
    }

    /// `None` when there is no such org; `Some(None)` when `expect` no
    /// longer holds. The org's row is locked for the transaction, so two
    /// nodes changing one org's configuration at once take versions one
    /// after the other and a compare-and-set reads a version no other
    /// writer can change before it commits (entries are replaced, never
    /// deleted, so one above the largest is above every version ever had).
    pub(crate) fn write_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<Option<u64>>, PgError> {
        let mut conn = self.conn()?;
        let mut tx = conn.client.transaction()?;
        if tx
            .query_opt("SELECT 1 FROM orgs WHERE slug = $1 FOR UPDATE", &[&org])?
            .is_none()
        {
            return Ok(None);
        }
        if let Some(expect) = expect {
            let current = tx
                .query_opt(
                    "SELECT version FROM org_config WHERE org = $1 AND kind = $2",
                    &[&org, &kind],
                )?
                .map_or(0, |r| r.get::<_, i64>(0));
            if u64::try_from(current).ok() != Some(expect) {
                return Ok(Some(None));
            }
        }
        let version: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) + 1 FROM org_config WHERE org = $1",
                &[&org],
            )?
            .get(0);
        tx.execute(
            "INSERT INTO org_config(org, kind, version, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org, kind) DO UPDATE SET version = excluded.version, data = excluded.data",
            &[&org, &kind, &version, &data],
        )?;
        tx.commit()?;
        Ok(Some(Some(u64::try_from(version).unwrap_or(0))))
    }
}
