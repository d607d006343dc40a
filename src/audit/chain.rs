//! The hash chain (SPEC §6). Each record stores the SHA-256 of the previous record's hash and
//! its own content; each writer's chain has a head (last record written) and an anchor (last
//! record pruned), so `verify` finds a record altered, inserted, or removed anywhere, ends
//! included. `revoked_at`, the one field ever updated, is outside the hash.

use aws_lc_rs::digest::{SHA256, digest};
use diesel::prelude::*;
use serde_json::json;

use super::record::ExchangeRecord;
use super::row::{ExchangeRow, InsertExchange, InsertKind, KindRow};
use crate::store::DbConnection;
use crate::store::schema::{audit_chains, exchange_kinds, exchanges, store_probes};

/// The `prev_hash` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn record_hash(prev_hash: &str, r: &ExchangeRecord) -> String {
    let mut content = json!([
        r.id,
        r.time_us,
        r.outcome.as_str(),
        r.error,
        r.reason,
        r.client_id,
        r.subject_issuer,
        r.subject,
        r.subject_jti,
        r.actor_issuer,
        r.actor,
        r.requested_audiences,
        r.requested_resources,
        r.requested_scopes,
        r.granted_audiences,
        r.granted_scopes,
        r.rule,
        r.token_jti,
        r.expires_at,
        r.remote_addr,
        r.user_agent,
        r.request_id,
        r.duration_us,
        r.chain,
        r.seq,
    ]);
    // Fields added since the first chains are hashed only when present, so that records
    // written before them keep their hashes.
    if let Some(fields) = content.as_array_mut() {
        if let Some(jti) = &r.actor_jti {
            fields.push(json!({ "actor_jti": jti }));
        }
        if r.count != 1 {
            fields.push(json!({ "count": r.count }));
        }
        if r.truncated {
            fields.push(json!({ "truncated": true }));
        }
        if r.token_type != ExchangeRecord::ACCESS_TOKEN {
            fields.push(json!({ "token_type": r.token_type }));
        }
        if let Some(txn) = &r.txn {
            fields.push(json!({ "txn": txn }));
        }
        if r.grant_type != ExchangeRecord::TOKEN_EXCHANGE {
            fields.push(json!({ "grant_type": r.grant_type }));
        }
        if let Some(kind) = &r.grant_kind {
            fields.push(json!({ "grant_kind": kind }));
        }
    }
    let mut input = Vec::with_capacity(512);
    input.extend_from_slice(prev_hash.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(content.to_string().as_bytes());
    crate::hex(digest(&SHA256, &input).as_ref())
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_chains)]
pub struct ChainRow {
    pub chain: String,
    pub created_us: i64,
    pub head_seq: i64,
    pub head_hash: String,
    pub anchor_seq: i64,
    pub anchor_hash: String,
}

/// Where a writer stands in its chain: the next record's `seq` and `prev_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub chain: String,
    pub next_seq: i64,
    pub prev_hash: String,
}

impl Tip {
    /// Starts a new, empty chain.
    pub fn start(conn: &mut DbConnection, chain: &str, now_us: i64) -> QueryResult<Self> {
        let row = ChainRow {
            chain: chain.into(),
            created_us: now_us,
            head_seq: -1,
            head_hash: GENESIS.into(),
            anchor_seq: -1,
            anchor_hash: GENESIS.into(),
        };
        diesel::insert_into(audit_chains::table)
            .values(&row)
            .execute(conn)?;
        Ok(Self {
            chain: chain.into(),
            next_seq: 0,
            prev_hash: GENESIS.into(),
        })
    }

    /// Links records, in order, onto the chain after this tip and returns the tip after them.
    /// Nothing is written: the caller keeps the old tip if the commit fails.
    pub fn link<'a>(&self, records: impl Iterator<Item = &'a mut ExchangeRecord>) -> Self {
        let mut tip = self.clone();
        for record in records {
            record.chain.clone_from(&tip.chain);
            record.seq = tip.next_seq;
            record.prev_hash = std::mem::take(&mut tip.prev_hash);
            record.hash = record_hash(&record.prev_hash, record);
            tip.prev_hash.clone_from(&record.hash);
            tip.next_seq += 1;
        }
        tip
    }
}

/// Writes linked records and moves their chain's head, in one transaction.
pub fn append(conn: &mut DbConnection, records: &[&ExchangeRecord]) -> QueryResult<()> {
    conn.transaction(|c| write_linked(c, records))
}

/// Writes linked records and moves their chain's head, inside the caller's transaction.
pub fn write_linked(conn: &mut DbConnection, records: &[&ExchangeRecord]) -> QueryResult<()> {
    let Some(last) = records.last() else {
        return Ok(());
    };
    let rows: Vec<ExchangeRow> = records.iter().map(|r| ExchangeRow::from(*r)).collect();
    insert_rows(conn, &rows)?;
    let kinds: Vec<KindRow> = records.iter().filter_map(|r| KindRow::of(r)).collect();
    insert_kinds(conn, &kinds)?;
    super::tallies::count(conn, records)?;
    diesel::update(audit_chains::table.find(&last.chain))
        .set((
            audit_chains::head_seq.eq(last.seq),
            audit_chains::head_hash.eq(&last.hash),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Rewrites a chain's head as it is: a real, durable commit that changes nothing.
pub fn touch_head(conn: &mut DbConnection, chain: &str) -> QueryResult<()> {
    diesel::update(audit_chains::table.find(chain))
        .set(audit_chains::head_seq.eq(audit_chains::head_seq))
        .execute(conn)
        .map(|_| ())
}

/// A commit about the size of a batch of records, in the writer's own probe row (deleted
/// again at once): small commits can still fit where a batch no longer does (a nearly full disk).
pub fn probe_batch_size(conn: &mut DbConnection, chain: &str, now_us: i64) -> QueryResult<()> {
    let mut random = vec![0u8; PROBE_BYTES / 2];
    let _ = aws_lc_rs::rand::fill(&mut random);
    // Random hex: no page or TOAST compression makes it smaller than it is.
    let padding = crate::hex(&random);
    diesel::delete(store_probes::table.find(chain)).execute(conn)?;
    diesel::insert_into(store_probes::table)
        .values((
            store_probes::chain.eq(chain),
            store_probes::probed_us.eq(now_us),
            store_probes::padding.eq(&padding),
        ))
        .execute(conn)?;
    // Proven: the row need not stay.
    diesel::delete(store_probes::table.find(chain)).execute(conn)?;
    Ok(())
}

const PROBE_BYTES: usize = 64 * 1024;

/// PostgreSQL: one multi-row INSERT (one round trip), which diesel builds per backend only.
/// SQLite: one prepared single-row INSERT per record, found in the statement cache by its type
/// (`InsertExchange`); a multi-row INSERT would be parsed anew for each batch size and needs a
/// statement journal.
fn insert_rows(conn: &mut DbConnection, rows: &[ExchangeRow]) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(c) => rows
            .iter()
            .try_fold(0, |n, row| Ok(n + InsertExchange(row).execute(c)?)),
        DbConnection::Postgres(c) => diesel::insert_into(exchanges::table)
            .values(rows)
            .execute(c),
    }
}

/// As `insert_rows`, for the rows of `exchange_kinds`.
fn insert_kinds(conn: &mut DbConnection, kinds: &[KindRow]) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(c) => kinds
            .iter()
            .try_fold(0, |n, kind| Ok(n + InsertKind(kind).execute(c)?)),
        DbConnection::Postgres(_) if kinds.is_empty() => Ok(0),
        DbConnection::Postgres(c) => diesel::insert_into(exchange_kinds::table)
            .values(kinds)
            .execute(c),
    }
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub chain: String,
    /// The record at fault, or the last good record when records are missing after it.
    pub record_id: Option<String>,
    pub what: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.record_id {
            Some(id) => write!(f, "record {id} (chain {}): {}", self.chain, self.what),
            None => write!(f, "chain {}: {}", self.chain, self.what),
        }
    }
}

/// Records read at once, at most: each page is its own short read, so no read holds the
/// database's log back for the whole walk; and fewer when records are large (about
/// `PAGE_BYTES` a page), so memory stays flat whatever they hold.
const PAGE: i64 = 200;
const PAGE_BYTES: usize = 1024 * 1024;

/// Checks every chain; `progress` is told how many records have been checked so far.
/// Returns the number of records checked, or the first break.
///
/// Each page is read in a snapshot of its own, with its chain's row: records appended meanwhile
/// are checked up to the head the last page's snapshot shows, and when retention prunes past the
/// page being checked, the walk goes on from the new anchor, whose hash the chain row keeps (the
/// records it skips no longer exist).
pub fn verify(
    conn: &mut DbConnection,
    mut progress: impl FnMut(u64),
) -> QueryResult<Result<u64, Break>> {
    let chains: Vec<ChainRow> = audit_chains::table
        .order(audit_chains::created_us)
        .select(ChainRow::as_select())
        .load(conn)?;
    let names: Vec<&str> = chains.iter().map(|c| c.chain.as_str()).collect();
    let stray: Option<(String, String)> = exchanges::table
        .filter(exchanges::chain.ne_all(&names))
        .select((exchanges::id, exchanges::chain))
        .first(conn)
        .optional()?;
    if let Some((id, chain)) = stray {
        return Ok(Err(Break {
            chain,
            record_id: Some(id),
            what: "inserted: its chain is not a known writer's".into(),
        }));
    }
    let mut checked = 0u64;
    for chain in &chains {
        if let Err(b) = verify_chain(conn, &chain.chain, &mut checked, &mut progress)? {
            return Ok(Err(b));
        }
    }
    Ok(Ok(checked))
}

/// A record as stored: its row, and its kind's row when it has one.
type StoredRecord = (ExchangeRow, Option<KindRow>);

/// One page of a chain from `from_seq`, with the chain's row, in one snapshot.
fn snapshot_page(
    conn: &mut DbConnection,
    chain: &str,
    from_seq: i64,
    limit: i64,
) -> QueryResult<(Option<ChainRow>, Vec<StoredRecord>)> {
    conn.transaction(|c| {
        // PostgreSQL reads each statement from a new snapshot unless told otherwise; SQLite's
        // read transaction holds one from its first read.
        if let DbConnection::Postgres(pg) = c {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(pg)?;
        }
        let row = audit_chains::table
            .find(chain)
            .select(ChainRow::as_select())
            .first(c)
            .optional()?;
        let rows = exchanges::table
            .left_join(exchange_kinds::table)
            .filter(exchanges::chain.eq(chain))
            .filter(exchanges::seq.ge(from_seq))
            .order(exchanges::seq)
            .limit(limit)
            .select((ExchangeRow::as_select(), Option::<KindRow>::as_select()))
            .load(c)?;
        Ok((row, rows))
    })
}

/// What is wrong with `record` as the chain's record number `seq` after the hash `prev`, if
/// anything.
fn link_break(record: &ExchangeRecord, seq: i64, prev: &str) -> Option<String> {
    if record.seq != seq {
        return Some(format!("{} record(s) removed before it", record.seq - seq));
    }
    if record.prev_hash != prev {
        return Some(
            "its link to the previous record is broken (a record was removed or inserted before it)"
                .into(),
        );
    }
    if record_hash(prev, record) != record.hash {
        return Some("altered: its content does not match its hash".into());
    }
    None
}

fn verify_chain(
    conn: &mut DbConnection,
    chain: &str,
    checked: &mut u64,
    progress: &mut impl FnMut(u64),
) -> QueryResult<Result<(), Break>> {
    let broken = |id: Option<&str>, what: &str| {
        Ok(Err(Break {
            chain: chain.to_string(),
            record_id: id.map(str::to_string),
            what: what.into(),
        }))
    };
    let mut expected_seq: Option<i64> = None;
    let mut prev = String::new();
    let mut last_id: Option<String> = None;
    let mut page = PAGE / 4;
    loop {
        let (row, rows) = snapshot_page(conn, chain, expected_seq.unwrap_or(0), page)?;
        let Some(row) = row else {
            // Only a chain listed a moment ago can be gone: nothing of it is left to check.
            return Ok(Ok(()));
        };
        // The start, or retention pruned past where the walk was: go on from the anchor.
        if expected_seq.is_none_or(|seq| seq <= row.anchor_seq) {
            expected_seq = Some(row.anchor_seq + 1);
            prev.clone_from(&row.anchor_hash);
            if rows.first().is_some_and(|(r, _)| r.seq <= row.anchor_seq) {
                continue;
            }
        }
        let Some(mut seq) = expected_seq else {
            return Ok(Ok(()));
        };
        let count = rows.len() as i64;
        let mut bytes = 0;
        for r in rows {
            let record = ExchangeRecord::from(r);
            bytes += record.approx_bytes();
            if let Some(what) = link_break(&record, seq, &prev) {
                return broken(Some(&record.id), &what);
            }
            prev = record.hash;
            last_id = Some(record.id);
            seq += 1;
            *checked += 1;
            if checked.is_multiple_of(100_000) {
                progress(*checked);
            }
        }
        expected_seq = Some(seq);
        let asked = page;
        page = (PAGE_BYTES as i64 * count / bytes.max(1) as i64).clamp(1, PAGE);
        if count < asked {
            // The last page: its snapshot's head must be the last record read.
            if seq - 1 != row.head_seq || prev != row.head_hash {
                let what = if seq - 1 < row.head_seq {
                    format!(
                        "{} record(s) removed after it, at the end of the chain",
                        row.head_seq - (seq - 1)
                    )
                } else {
                    "the chain's head does not match its last record".to_string()
                };
                return broken(last_id.as_deref(), &what);
            }
            return Ok(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_content_and_link_but_not_revocation() {
        let mut r = ExchangeRecord::begin(1, "req".into(), None, None);
        let h = record_hash(GENESIS, &r);
        assert_eq!(h.len(), 64);
        assert_ne!(h, record_hash(&h, &r), "the link counts");
        r.revoked_at = Some(5);
        assert_eq!(h, record_hash(GENESIS, &r), "revocation does not");
        r.subject = Some("mallory".into());
        assert_ne!(h, record_hash(GENESIS, &r), "content does");
    }
}
