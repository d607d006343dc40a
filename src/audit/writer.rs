//! The audit writer: one thread with its own connection takes the records of concurrent
//! requests and commits them together in one transaction (group commit); each request waits
//! for its own record's commit before it may answer. Records form a chain per writer
//! (`chain`, `seq`), so several instances never contend for one sequence.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::chain::{Tip, append};
use super::record::{ExchangeRecord, now_micros};
use crate::metrics::Metrics;
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
}

impl AuditWriter {
    pub fn start(store: Store, metrics: Arc<Metrics>) -> Result<Self, String> {
        let chain = super::record::new_record_id(now_micros());
        let (jobs, queue) = mpsc::channel(8 * MAX_BATCH);
        let mut first = store.connect()?;
        let tip = Tip::start(&mut first, &chain, now_micros())
            .map_err(|e| format!("cannot start the audit chain: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(store, first, queue, tip, metrics))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        Ok(Self {
            jobs,
            thread: std::sync::Mutex::new(Some(thread)),
        })
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

fn run(
    store: Store,
    first: DbConnection,
    mut queue: mpsc::Receiver<Job>,
    mut tip: Tip,
    metrics: Arc<Metrics>,
) {
    let mut conn = Some(first);
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
            let after = tip.link(batch.iter_mut().map(|(r, _)| r.as_mut()));
            let started = std::time::Instant::now();
            let result = write(&store, &mut conn, &batch);
            metrics.audit_commit(batch.len(), started.elapsed());
            match &result {
                // The chain advances only with a commit; a failed batch is linked anew next time.
                Ok(()) => tip = after,
                Err(e) => {
                    tracing::error!(error = %e, records = batch.len(), "audit commit failed");
                    // Reconnect next time: the fault may have been the connection itself.
                    conn = None;
                }
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

fn write(store: &Store, conn: &mut Option<DbConnection>, batch: &[Pending]) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(store.connect()?);
    }
    let Some(conn) = conn.as_mut() else {
        return Err("no database connection".into());
    };
    let records: Vec<&ExchangeRecord> = batch.iter().map(|(r, _)| r.as_ref()).collect();
    append(conn, &records).map_err(|e| e.to_string())
}
