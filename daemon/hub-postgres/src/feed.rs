//! The sync storage primitives on PostgreSQL: documents, tombstones and
//! each organisation's feed (the protocol itself is `outpost_proto::hub`).
//!
//! # Feed positions under concurrent writers
//! A pull reads the feed after its cursor and moves the cursor to the
//! highest position it saw. With several writers (threads of one hub, or
//! several hub nodes) a plain `SERIAL`/`SEQUENCE` would be wrong: a
//! sequence hands out numbers at `nextval()`, not at commit, so a
//! transaction can take 41, another take 42 and commit first, a pull see
//! 42 and move its cursor past 41, and 41 commit afterwards: that laptop
//! never receives it. Here the counter is the org's row in `orgs`: every
//! writing transaction first locks it (`SELECT ... FOR UPDATE`), takes the
//! next positions from it, writes its rows and the new counter, and
//! commits, all while holding the lock. Writes of one org are therefore
//! serialised (other orgs are not affected), and a snapshot that sees
//! counter N sees every row up to N: a scan reads the counter and the rows
//! in one REPEATABLE READ snapshot, so the head it reports never runs
//! ahead of rows still to be committed.

use chrono::{DateTime, Utc};
use outpost_proto::hub::storage::FeedVisitor;
use outpost_proto::hub::{
    ConfigEntry, Expect, FeedEntry, FeedMeta, FeedRow, Held, HubStorage, Put, PutResult,
    StorageError,
};
use outpost_proto::record::Record;
use outpost_proto::sync::Heads;
use postgres::IsolationLevel;
use postgres::types::ToSql;
use uuid::Uuid;

use crate::{PgError, PgHubStore};

/// Feed rows fetched per round trip while scanning: a pull page is 100 to
/// 500 documents, and the visitor may stop early.
const SCAN_BATCH: i32 = 128;

/// The Unicode-aware fold the SQLite hub registers as `fold()`
/// (`outpost_base::sqlite::register_fold`), kept in `records.site_key`.
pub fn site_key(site: &str) -> String {
    site.trim().to_lowercase()
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const LOCK_ORG: &str = "SELECT seq FROM orgs WHERE slug = $1 FOR UPDATE";
const INSERT_DOC: &str = "INSERT INTO docs(org, id, doc, heads, seq, origin, first_received_at)
     SELECT $1, $2, $3, $4, $5, $6, $7
     WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE org = $1 AND id = $2)
     ON CONFLICT (org, id) DO NOTHING";
const UPDATE_DOC: &str = "UPDATE docs SET doc = $3, heads = $4, seq = $5, origin = $6
     WHERE org = $1 AND id = $2 AND heads = $7";
const UPSERT_RECORD: &str =
    "INSERT INTO records(org, id, kind, site, site_key, date_from, date_to, created_at, body)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (org, id) DO UPDATE SET kind = excluded.kind, site = excluded.site,
       site_key = excluded.site_key, date_from = excluded.date_from,
       date_to = excluded.date_to, body = excluded.body";
const SET_SEQ: &str = "UPDATE orgs SET seq = $2 WHERE slug = $1";

impl PgHubStore {
    fn get_held(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, PgError> {
        let mut conn = self.conn()?;
        // One statement, so one snapshot: the org, its documents and its
        // tombstones for these ids.
        let stmt = conn.prepare(
            "SELECT 0, NULL::uuid, NULL::bytea, NULL::bytea FROM orgs WHERE slug = $1
             UNION ALL
             SELECT 1, id, doc, heads FROM docs WHERE org = $1 AND id = ANY($2)
             UNION ALL
             SELECT 2, id, NULL, NULL FROM tombstones WHERE org = $1 AND id = ANY($2)",
        )?;
        let rows = conn.client.query(&stmt, &[&org, &ids])?;
        let mut org_found = false;
        let mut found = std::collections::HashMap::new();
        for row in rows {
            match row.get::<_, i32>(0) {
                0 => org_found = true,
                1 => {
                    let id: Uuid = row.get(1);
                    found.insert(
                        id,
                        Held::Doc {
                            data: row.get(2),
                            heads: Heads(row.get(3)),
                        },
                    );
                }
                _ => {
                    // A row and a tombstone never coexist (see `put_docs`).
                    found.entry(row.get(1)).or_insert(Held::Erased);
                }
            }
        }
        if !org_found {
            return Err(PgError::NoOrg(org.into()));
        }
        Ok(ids
            .iter()
            .map(|id| found.get(id).cloned().unwrap_or(Held::Nothing))
            .collect())
    }

    fn put_docs(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, PgError> {
        let mut conn = self.conn()?;
        let (lock, insert, update, upsert, set_seq) = (
            conn.prepare(LOCK_ORG)?,
            conn.prepare(INSERT_DOC)?,
            conn.prepare(UPDATE_DOC)?,
            conn.prepare(UPSERT_RECORD)?,
            conn.prepare(SET_SEQ)?,
        );
        let mut tx = conn.client.transaction()?;
        // The org's row lock serialises this org's writers until commit
        // (see the module notes): the counter read here stays exact.
        let Some(head) = tx.query_opt(&lock, &[&org])? else {
            return Err(PgError::NoOrg(org.into()));
        };
        let mut seq: i64 = head.get(0);
        let start = seq;
        let mut results = Vec::with_capacity(puts.len());
        for put in puts {
            let next = seq + 1;
            // Each condition is checked by the write itself, as on SQLite.
            let written = match &put.expect {
                Expect::Absent => tx.execute(
                    &insert,
                    &[
                        &org,
                        &put.id,
                        &put.data,
                        &put.heads.0,
                        &next,
                        &put.origin,
                        &put.received_at,
                    ],
                )?,
                Expect::Heads(want) => tx.execute(
                    &update,
                    &[
                        &org,
                        &put.id,
                        &put.data,
                        &put.heads.0,
                        &next,
                        &put.origin,
                        &want.0,
                    ],
                )?,
            };
            if written == 0 {
                results.push(PutResult::Conflict);
                continue;
            }
            seq = next;
            write_projection(&mut tx, &upsert, org, put.record)?;
            results.push(PutResult::Stored { seq: u64_of(seq) });
        }
        if seq != start {
            tx.execute(&set_seq, &[&org, &seq])?;
        }
        tx.commit()?;
        Ok(results)
    }

    fn erase_ids(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), PgError> {
        let mut conn = self.conn()?;
        let lock = conn.prepare(LOCK_ORG)?;
        let set_seq = conn.prepare(SET_SEQ)?;
        let mut tx = conn.client.transaction()?;
        let Some(head) = tx.query_opt(&lock, &[&org])? else {
            return Err(PgError::NoOrg(org.into()));
        };
        let mut seq: i64 = head.get(0);
        let start = seq;
        for id in ids {
            let already = tx
                .query_opt(
                    "SELECT 1 FROM tombstones WHERE org = $1 AND id = $2",
                    &[&org, id],
                )?
                .is_some();
            if already {
                continue;
            }
            seq += 1;
            tx.execute("DELETE FROM docs WHERE org = $1 AND id = $2", &[&org, id])?;
            tx.execute(
                "DELETE FROM records WHERE org = $1 AND id = $2",
                &[&org, id],
            )?;
            tx.execute(
                "INSERT INTO tombstones(org, id, seq, deleted_at) VALUES ($1, $2, $3, $4)",
                &[&org, id, &seq, &at],
            )?;
        }
        if seq != start {
            tx.execute(&set_seq, &[&org, &seq])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn scan(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        let mut conn = self.conn()?;
        let head_stmt = conn.prepare("SELECT seq, epoch FROM orgs WHERE slug = $1")?;
        let rows_stmt = conn.prepare(
            "SELECT seq, id, origin, heads, doc FROM docs WHERE org = $1 AND seq > $2
             UNION ALL
             SELECT seq, id, NULL::text, NULL::bytea, NULL::bytea FROM tombstones
               WHERE org = $1 AND seq > $2
             ORDER BY 1",
        )?;
        // One snapshot for the head, the epoch and the rows.
        let mut tx = conn
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(PgError::from)?;
        let Some(meta) = tx.query_opt(&head_stmt, &[&org]).map_err(PgError::from)? else {
            return Err(StorageError::NoOrg(org.into()));
        };
        let meta = FeedMeta {
            head: u64_of(meta.get(0)),
            epoch: u64_of(meta.get(1)),
        };
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let params: [&(dyn ToSql + Sync); 2] = [&org, &since];
        // A portal fetched in batches: rows past where the visitor stops
        // are never sent by the server.
        let portal = tx.bind(&rows_stmt, &params).map_err(PgError::from)?;
        'scan: loop {
            let batch = tx
                .query_portal(&portal, SCAN_BATCH)
                .map_err(PgError::from)?;
            let last = batch.len() < usize::try_from(SCAN_BATCH).unwrap_or(0);
            for row in &batch {
                let seq: i64 = row.get(0);
                let id: Uuid = row.get(1);
                let origin: Option<&str> = row.get(2);
                let entry = match origin {
                    Some(o) => FeedEntry::Doc { origin: o },
                    None => FeedEntry::Erased,
                };
                let feed_row = FeedRow {
                    seq: u64_of(seq),
                    id,
                    entry,
                };
                let mut load = || {
                    let heads: Vec<u8> = row.get(3);
                    let doc: Vec<u8> = row.get(4);
                    Ok((Heads(heads), doc))
                };
                if !visit(feed_row, &mut load)? {
                    break 'scan;
                }
            }
            if last {
                break;
            }
        }
        drop(portal);
        tx.commit().map_err(PgError::from)?;
        Ok(meta)
    }
}

fn write_projection(
    tx: &mut postgres::Transaction<'_>,
    upsert: &postgres::Statement,
    org: &str,
    record: &Record,
) -> Result<(), PgError> {
    let body = serde_json::to_string(record)
        .map_err(|e| outpost_hub_db::HubError::Invalid(e.to_string()))?;
    let range = record.date_range();
    tx.execute(
        upsert,
        &[
            &org,
            &record.id,
            &record.kind().as_str(),
            &record.site,
            &site_key(&record.site),
            &range.map(|r| r.0),
            &range.map(|r| r.1),
            &record.created_at.to_rfc3339(),
            &body,
        ],
    )?;
    Ok(())
}

impl HubStorage for PgHubStore {
    fn get(&self, org: &str, ids: &[Uuid]) -> Result<Vec<Held>, StorageError> {
        Ok(self.get_held(org, ids)?)
    }

    fn put(&self, org: &str, puts: &[Put<'_>]) -> Result<Vec<PutResult>, StorageError> {
        Ok(self.put_docs(org, puts)?)
    }

    fn erase(&self, org: &str, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), StorageError> {
        Ok(self.erase_ids(org, ids, at)?)
    }

    fn scan_feed(
        &self,
        org: &str,
        since: u64,
        visit: &mut FeedVisitor<'_>,
    ) -> Result<FeedMeta, StorageError> {
        self.scan(org, since, visit)
    }

    fn set_epoch(&self, org: &str, epoch: u64) -> Result<(), StorageError> {
        let epoch = i64::try_from(epoch)
            .map_err(|e| PgError::Hub(outpost_hub_db::HubError::Invalid(e.to_string())))?;
        let n = self
            .conn()?
            .client
            .execute(
                "UPDATE orgs SET epoch = $1 WHERE slug = $2",
                &[&epoch, &org],
            )
            .map_err(PgError::from)?;
        if n == 0 {
            return Err(StorageError::NoOrg(org.into()));
        }
        Ok(())
    }

    fn config(&self, org: &str) -> Result<Vec<ConfigEntry>, StorageError> {
        self.read_config(org)?
            .ok_or_else(|| StorageError::NoOrg(org.into()))
    }

    fn put_config(
        &self,
        org: &str,
        kind: &str,
        data: &[u8],
        expect: Option<u64>,
    ) -> Result<Option<u64>, StorageError> {
        self.write_config(org, kind, data, expect)?
            .ok_or_else(|| StorageError::NoOrg(org.into()))
    }
}
