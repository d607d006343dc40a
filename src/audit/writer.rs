//! The audit writer: one thread with its own connection takes the records of concurrent
//! requests and commits them together in one transaction (group commit); each request waits
//! for its own record's commit before it may answer. Records form a chain per writer
//! (`chain`, `seq`), so several instances never contend for one sequence.

use std::thread::JoinHandle;
use std::time::Duration;

use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::chain::{ChainRow, GENESIS, record_hash};
use super::record::{ExchangeRecord, now_micros};
use super::row::ExchangeRow;
use crate::store::schema::{audit_chains, exchanges};
use crate::store::{DbConnection, Store};

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 256;
/// How long a request waits for its commit before it gives up and answers 503.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

type Done = oneshot::Sender<Result<(), String>>;
type Pending = (Box<ExchangeRecord>, Done);

enum Job {
    Record(Box<ExchangeRecord>, Done),
    Close,
}

pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    chain: String,
}

impl AuditWriter {
    pub fn start(store: Store) -> Result<Self, String> {
        let chain = super::record::new_record_id(now_micros());
        let (jobs, queue) = mpsc::channel(8 * MAX_BATCH);
        let mut first = store.connect()?;
        let row = ChainRow {
            chain: chain.clone(),
            created_us: now_micros(),
            head_seq: -1,
            head_hash: GENESIS.into(),
            anchor_seq: -1,
            anchor_hash: GENESIS.into(),
        };
        diesel::insert_into(audit_chains::table)
            .values(&row)
            .execute(&mut first)
            .map_err(|e| format!("cannot start the audit chain: {e}"))?;
        let thread_chain = chain.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(store, first, queue, thread_chain))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        Ok(Self {
            jobs,
            thread: std::sync::Mutex::new(Some(thread)),
            chain,
        })
    }

    /// This writer's chain id.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Returns once the record is durably committed, or with why it could not be.
    pub async fn commit(&self, record: ExchangeRecord) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job::Record(Box::new(record), done))
            .await
            .map_err(|_| "the audit writer has stopped".to_string())?;
        match tokio::time::timeout(COMMIT_TIMEOUT, committed).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the audit writer stopped before committing".into()),
            Err(_) => Err("the audit commit timed out".into()),
        }
    }

    /// Commits everything queued so far, then stops the writer thread.
    pub async fn close(&self) {
        let _ = self.jobs.send(Job::Close).await;
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(store: Store, first: DbConnection, mut queue: mpsc::Receiver<Job>, chain: String) {
    let mut conn = Some(first);
    let mut next_seq: i64 = 0;
    let mut prev_hash = GENESIS.to_string();
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut closing = false;
        match queue.blocking_recv() {
            None => return,
            Some(Job::Close) => closing = true,
            Some(Job::Record(r, done)) => batch.push((r, done)),
        }
        while !closing && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Job::Record(r, done)) => batch.push((r, done)),
                Ok(Job::Close) => closing = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let mut link = prev_hash.clone();
            for (i, (record, _)) in batch.iter_mut().enumerate() {
                record.chain.clone_from(&chain);
                record.seq = next_seq + i as i64;
                record.prev_hash = std::mem::take(&mut link);
                record.hash = record_hash(&record.prev_hash, record);
                link.clone_from(&record.hash);
            }
            let result = write(&store, &mut conn, &chain, &batch);
            // The chain advances only with a commit; a failed batch is linked anew next time.
            if result.is_ok() {
                next_seq += batch.len() as i64;
                prev_hash = link;
            } else {
                // Reconnect next time: the fault may have been the connection itself.
                conn = None;
            }
            if let Err(e) = &result {
                tracing::error!(error = %e, records = batch.len(), "audit commit failed");
            }
            for (_, done) in batch.drain(..) {
                let _ = done.send(result.clone());
            }
        }
        if closing {
            return;
        }
    }
}

fn write(
    store: &Store,
    conn: &mut Option<DbConnection>,
    chain: &str,
    batch: &[Pending],
) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(store.connect()?);
    }
    let Some(conn) = conn.as_mut() else {
        return Err("no database connection".into());
    };
    let rows: Vec<ExchangeRow> = batch
        .iter()
        .map(|(r, _)| ExchangeRow::from(r.as_ref()))
        .collect();
    let (head_seq, head_hash) = batch
        .last()
        .map(|(r, _)| (r.seq, r.hash.clone()))
        .ok_or_else(|| "an empty batch".to_string())?;
    conn.transaction(|c| {
        diesel::insert_into(exchanges::table)
            .values(&rows)
            .execute(c)?;
        diesel::update(audit_chains::table.find(chain))
            .set((
                audit_chains::head_seq.eq(head_seq),
                audit_chains::head_hash.eq(head_hash),
            ))
            .execute(c)
    })
    .map(|_| ())
    .map_err(|e| e.to_string())
}
