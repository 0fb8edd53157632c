//! ops: the rate-limit counters on PostgreSQL (`HubStore::rate_take`,
//! `rate_counts`; the limits themselves are `outpost_proto::hub::limits`).
//!
//! Every node adds to the same rows, so a device's daily quota and an
//! address's wrong codes are counted across nodes. An upsert locks its
//! row until commit, so concurrent takes of one counter queue there and
//! each sees the other's count; a take that would pass a limit rolls its
//! whole transaction back. Takes of several counters always come in the
//! same order (proto builds them), so two transactions never wait on each
//! other in a cycle.

use outpost_proto::hub::{RateTake, RateTaken};

use crate::{PgError, PgHubStore};

/// Ended windows deleted per take at most: the sweep never makes one
/// request slow, and ended rows are few (one per active device a day).
const SWEEP: i64 = 100;

impl PgHubStore {
    pub(crate) fn rate_take_pg(&self, takes: &[RateTake], now: i64) -> Result<RateTaken, PgError> {
        let mut conn = self.conn()?;
        let sweep = conn.prepare(
            "DELETE FROM rate_counts WHERE (key, period) IN (
                 SELECT key, period FROM rate_counts WHERE expires < $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )?;
        let upsert = conn.prepare(
            "INSERT INTO rate_counts(key, period, expires, used) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key, period) DO UPDATE SET used = rate_counts.used + excluded.used
             RETURNING used",
        )?;
        let mut tx = conn.client.transaction()?;
        // SKIP LOCKED: rows another node is deleting right now are left
        // to it, so sweeping never waits.
        tx.execute(&sweep, &[&now, &SWEEP])?;
        let mut totals = Vec::with_capacity(takes.len());
        for (index, take) in takes.iter().enumerate() {
            let add = i64::try_from(take.add).unwrap_or(i64::MAX);
            let used: i64 = tx
                .query_one(&upsert, &[&take.key, &take.period, &take.expires, &add])?
                .get(0);
            let used = u64::try_from(used).unwrap_or(0);
            if used > take.limit {
                // Dropping the transaction rolls every take back.
                return Ok(RateTaken::Refused {
                    index,
                    used: used.saturating_sub(take.add),
                });
            }
            totals.push(used);
        }
        tx.commit()?;
        Ok(RateTaken::Taken(totals))
    }

    pub(crate) fn rate_counts_pg(&self, keys: &[(String, i64)]) -> Result<Vec<u64>, PgError> {
        let mut conn = self.conn()?;
        let stmt = conn.prepare("SELECT used FROM rate_counts WHERE key = $1 AND period = $2")?;
        keys.iter()
            .map(|(key, period)| {
                let used: Option<i64> = conn
                    .client
                    .query_opt(&stmt, &[key, period])?
                    .map(|r| r.get(0));
                Ok(used.map_or(0, |u| u64::try_from(u).unwrap_or(0)))
            })
            .collect()
    }
}
