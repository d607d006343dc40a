//! Retention (SPEC §6): records older than `storage.retention` are pruned from the start of
//! each chain, in small batches so no write lock is held long, and each batch moves the
//! chain's anchor so `verify` still holds from the oldest kept record.

use std::time::Duration;

use tracing::Instrument;

use diesel::prelude::*;

use crate::clock;
use crate::store::schema::{audit_chains, exchange_kinds, exchanges};
use crate::store::{DbConnection, Store};

const BATCH: i64 = 1_000;

/// One batch from the start of every chain, as far as `cutoff_us`; returns how many records
/// went (0 once nothing is older than the cutoff).
pub fn prune_once(conn: &mut DbConnection, cutoff_us: i64) -> QueryResult<usize> {
    let chains: Vec<String> = audit_chains::table.select(audit_chains::chain).load(conn)?;
    let mut pruned = 0;
    for chain in chains {
        pruned += prune_batch(conn, &chain, cutoff_us)?;
    }
    Ok(pruned)
}

/// The oldest records of one chain, as long as each is older than the cutoff: a chain is
/// only ever cut at its start.
fn prune_batch(conn: &mut DbConnection, chain: &str, cutoff_us: i64) -> QueryResult<usize> {
    conn.transaction(|c| {
        // Lock the chain first: another instance pruning the same chain waits here, then
        // reads what is left after this batch, and never moves the anchor backwards.
        diesel::update(audit_chains::table.find(chain))
            .set(audit_chains::anchor_seq.eq(audit_chains::anchor_seq))
            .execute(c)?;
        let oldest: Vec<(i64, i64, String, String)> = exchanges::table
            .filter(exchanges::chain.eq(chain))
            .order(exchanges::seq)
            .limit(BATCH)
            .select((
                exchanges::seq,
                exchanges::time_us,
                exchanges::hash,
                exchanges::id,
            ))
            .load(c)?;
        let prefix: Vec<&(i64, i64, String, String)> = oldest
            .iter()
            .take_while(|(_, t, _, _)| *t < cutoff_us)
            .collect();
        let Some((last_seq, _, last_hash, _)) = prefix.last() else {
            return Ok(0);
        };
        diesel::delete(
            exchanges::table
                .filter(exchanges::chain.eq(chain))
                .filter(exchanges::seq.le(last_seq)),
        )
        .execute(c)?;
        let ids: Vec<&str> = prefix.iter().map(|(_, _, _, id)| id.as_str()).collect();
        diesel::delete(exchange_kinds::table.filter(exchange_kinds::id.eq_any(&ids))).execute(c)?;
        diesel::update(audit_chains::table.find(chain))
            .set((
                audit_chains::anchor_seq.eq(last_seq),
                audit_chains::anchor_hash.eq(last_hash),
            ))
            .execute(c)?;
        Ok(prefix.len())
    })
}

/// Between batches: each batch holds the write lock, and the audit writer must get it back
/// often, or requests wait behind a large backlog being pruned (a first start with a long
/// history, a retention made shorter).
const PAUSE: Duration = Duration::from_millis(50);

/// How often expired single-use identifiers and upstream revocations go: DPoP proofs' live two
/// minutes, and what a client sends without a rate limit should not pile up for long.
const EXPIRED_EVERY: Duration = Duration::from_secs(60);

/// Prunes now and then every quarter of the retention period (between 1 s and 10 min), and
/// expired single-use identifiers and upstream revocations every minute (or as often as records,
/// when that is more often).
pub fn spawn(
    store: Store,
    retention: Duration,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    runtime: &tokio::runtime::Handle,
) {
    let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let expired = store.clone();
    runtime.spawn(async move {
        loop {
            let size = expired.clone();
            match expired.blocking(move |c| size.size(c)).await {
                Ok((bytes, free)) => metrics.store_size(bytes, free),
                Err(e) => tracing::debug!(error = %e, "cannot measure the store"),
            }
            let now = clock::now().secs();
            let pruned = expired.blocking_write(move |c| {
                crate::store::replay::prune(c, now)
                    .and_then(|_| super::revocation::prune(c, now))
                    .and_then(|_| crate::store::replacements::prune(c, now))
                    .and_then(|_| super::tallies::prune(c, now.saturating_mul(1_000_000)))
            });
            if let Err(e) = pruned.await {
                crate::telemetry::repeated::error(
                    "pruning expired single-use identifiers failed; will retry",
                    &crate::error::chain(&e),
                );
            }
            tokio::time::sleep(every.min(EXPIRED_EVERY)).await;
        }
    });
    runtime.spawn(async move {
        loop {
            let pass = tracing::info_span!("retention", retention = %crate::config::duration::format(retention));
            prune_past(&store, retention).instrument(pass).await;
            tokio::time::sleep(every).await;
        }
    });
}

/// One pass of retention: records older than `retention`, then the subject token spans they
/// leave empty, then the free pages.
async fn prune_past(store: &Store, retention: Duration) {
    let cutoff = clock::now().before(retention).micros();
    let records = in_batches(store, "audit records", (), move |c, ()| {
        prune_once(c, cutoff).map(|n| (n, (n > 0).then_some(())))
    });
    // Spans only once their records are gone, or a record could be left unfindable.
    if records.await.is_some() {
        in_batches(store, "subject token spans", i64::MIN, move |c, from_us| {
            super::subject_tokens::prune_batch(c, cutoff, from_us)
        })
        .await;
    }
    in_batches(store, "free database pages", (), |c, ()| {
        give_back_pages(c).map(|n| (n, (n > 0).then_some(())))
    })
    .await;
}

/// Pages a step of incremental vacuum gives back to the file system (8 MiB of 4 KiB pages): each
/// step holds SQLite's write lock, so the audit writer gets it back between steps.
const VACUUM_STEP: i64 = 2_000;

/// SQLite: gives up to `VACUUM_STEP` free pages back to the file system (a file made or
/// converted with incremental vacuum; otherwise nothing happens); how many it gave back.
fn give_back_pages(conn: &mut DbConnection) -> QueryResult<usize> {
    use diesel::connection::SimpleConnection;
    let DbConnection::Sqlite(_) = conn else {
        return Ok(0);
    };
    let free = || {
        diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT freelist_count FROM pragma_freelist_count)",
        )
    };
    let before: i64 = diesel::select(free()).get_result(conn)?;
    if before == 0 {
        return Ok(0);
    }
    conn.batch_execute(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))?;
    let after: i64 = diesel::select(free()).get_result(conn)?;
    Ok(before.saturating_sub(after).max(0) as usize)
}

/// Runs `batch` from `start` until it names no next batch, pausing between batches, and logs
/// what went. Returns how many rows went, or `None` when a batch failed (logged; the next
/// round retries).
async fn in_batches<C: Copy + Send + 'static>(
    store: &Store,
    what: &'static str,
    start: C,
    batch: impl Fn(&mut DbConnection, C) -> QueryResult<(usize, Option<C>)> + Copy + Send + 'static,
) -> Option<usize> {
    let mut pruned = 0;
    let mut next = Some(start);
    while let Some(at) = next {
        match store
            .blocking_write(move |c| batch(c, at).map_err(|e| e.to_string()))
            .await
        {
            Ok((n, after)) => {
                pruned += n;
                next = after;
            }
            Err(e) => {
                tracing::warn!(error = %crate::telemetry::repeated::one_line(&crate::error::chain(&e)), "pruning {what} past retention failed; will retry");
                return None;
            }
        }
        if next.is_some() {
            tokio::time::sleep(PAUSE).await;
        }
    }
    if pruned > 0 {
        tracing::info!(pruned, "{what} past retention pruned");
    }
    Some(pruned)
}
