//! The audit writer: one thread with its own connection takes the records of concurrent
//! requests and commits them together in one transaction (group commit); each request waits
//! for its own record's commit before it may answer. Records form a chain per writer
//! (`chain`, `seq`), so several instances never contend for one sequence. On SQLite a
//! checkpointer copies the log into the database file beside it (`store::checkpoint`).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::chain::{Tip, probe_batch_size, touch_head, write_linked};
use super::record::ExchangeRecord;
use super::revocation;
use crate::clock::{self, UnixTime};
use crate::metrics::Metrics;
use crate::store::checkpoint::Checkpointer;
use crate::store::{FileId, Store, StoreConnection};

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 256;
/// Records committed between two nudges of the checkpointer (SQLite): a few commits' worth,
/// so that it copies each hot page once for several commits yet keeps the log short.
const CHECKPOINT_EVERY: usize = 16;
/// How long a request waits for its commit before it gives up and answers 503.
/// Longer than SQLite's busy timeout would make a locked store's 503 wait on this instead.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/readyz` waits for its probe commit, and how long its answer is reused.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const PROBE_REUSE: Duration = Duration::from_secs(1);

type Done = oneshot::Sender<Result<(), Error>>;
type Recorded = oneshot::Sender<Result<Committed, Error>>;

/// Why the writer did not commit, or did not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit writer stopped before committing")]
    StoppedBeforeCommit,
    #[error("the audit commit timed out")]
    TimedOut,
    #[error("the audit writer is busy or stopped")]
    Busy,
    #[error("the database did not take a commit in time")]
    ProbeTimedOut,
    #[error("the store did not take a commit within {} ms", .0.as_millis())]
    NotWithin(Duration),
    #[error("cannot start the audit chain")]
    ChainStart(#[source] diesel::result::Error),
    #[error("cannot start the audit writer")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// One failure, told to every record of its batch and every probe waiting on it.
    #[error(transparent)]
    Shared(Arc<Error>),
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        crate::error::chain(&e)
    }
}

/// A failure to hand to several waiters.
fn shared<T: Clone>(result: &Result<T, Arc<Error>>) -> Result<T, Error> {
    result.clone().map_err(Error::Shared)
}
type Pending = (Box<ExchangeRecord>, Recorded);

/// How a record was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// As it was sent.
    AsSent,
    /// As a denial, for this reason: the grant came from a token revoked before the commit
    /// (`revocation::settle`); the token must not be handed out.
    Refused(String),
}

enum Job {
    Record(Box<ExchangeRecord>, Recorded),
    /// Answers whether a commit can succeed now, by making one.
    Probe(Done),
    Close,
}

pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    last_probe: tokio::sync::Mutex<Option<Probe>>,
    /// Failed commits so far: a probe answer older than the last failure is not reused.
    failures: Arc<AtomicU64>,
}

struct Probe {
    at: Instant,
    failures: u64,
    result: Result<(), Arc<Error>>,
}

impl AuditWriter {
    pub fn start(store: Store, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let (jobs, queue) = mpsc::channel(8 * MAX_BATCH);
        let mut first = store.connect()?;
        let tip = new_chain(&mut first)?;
        let state = State {
            file: first.file(),
            conn: Some(first),
            tip,
            failing: false,
        };
        let failures = Arc::new(AtomicU64::new(0));
        let counted = failures.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run(store, state, queue, metrics, &counted))
            .map_err(Error::Thread)?;
        Ok(Self {
            jobs,
            thread: std::sync::Mutex::new(Some(thread)),
            last_probe: tokio::sync::Mutex::new(None),
            failures,
        })
    }

    /// Returns once the record is durably committed, saying how, or with why it could not be.
    pub async fn commit(&self, record: ExchangeRecord) -> Result<Committed, Error> {
        let (done, committed) = oneshot::channel();
        let queued_and_committed = async {
            self.jobs
                .send(Job::Record(Box::new(record), done))
                .await
                .map_err(|_| Error::Stopped)?;
            match committed.await {
                Ok(result) => result,
                Err(_) => Err(Error::StoppedBeforeCommit),
            }
        };
        // Waiting for room in the queue counts too: a stuck store fills it.
        tokio::time::timeout(COMMIT_TIMEOUT, queued_and_committed)
            .await
            .unwrap_or_else(|_| Err(Error::TimedOut))
    }

    /// Whether records can be committed now (for `/readyz`): the writer makes a small real
    /// commit, so a full disk, a read-only or locked file, a missing file or a lost server all
    /// show. Callers within `PROBE_REUSE` of the last probe share its answer, and they wait in
    /// turn, so probing never adds more than one write at a time.
    pub async fn probe(&self) -> Result<(), Error> {
        let mut last = self.last_probe.lock().await;
        let failures = self.failures.load(Ordering::SeqCst);
        if let Some(p) = last.as_ref()
            && p.at.elapsed() < PROBE_REUSE
            && p.failures == failures
        {
            return shared(&p.result);
        }
        let (done, committed) = oneshot::channel();
        let result = match self.jobs.try_send(Job::Probe(done)) {
            Err(_) => Err(Error::Busy),
            Ok(()) => match tokio::time::timeout(PROBE_TIMEOUT, committed).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(Error::Stopped),
                Err(_) => Err(Error::ProbeTimedOut),
            },
        }
        .map_err(Arc::new);
        *last = Some(Probe {
            at: Instant::now(),
            failures: self.failures.load(Ordering::SeqCst),
            result: result.clone(),
        });
        shared(&result)
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

/// The writer's connection and where its chain stands. `file` is the SQLite file the chain
/// lives in: a chain never continues into another file.
struct State {
    conn: Option<StoreConnection>,
    tip: Tip,
    file: Option<FileId>,
    /// The last batch of records failed: probes then write a batch's size.
    failing: bool,
}

fn new_chain(conn: &mut StoreConnection) -> Result<Tip, Error> {
    let now = clock::now().micros();
    Tip::start(
        conn,
        &crate::ids::record_id(UnixTime::from_micros(now)),
        now,
    )
    .map_err(Error::ChainStart)
}

fn run(
    store: Store,
    mut state: State,
    mut queue: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
    failures: &AtomicU64,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let checkpointer = Checkpointer::start(&store);
    let mut since_nudge = 0;
    let mut probes: Vec<Done> = Vec::new();
    loop {
        let mut closing = false;
        let mut next = queue.blocking_recv();
        loop {
            match next {
                None if batch.is_empty() && probes.is_empty() => return,
                None => closing = true,
                Some(Job::Close) => closing = true,
                Some(Job::Record(r, done)) => batch.push((r, done)),
                Some(Job::Probe(done)) => probes.push(done),
            }
            if closing || batch.len() >= MAX_BATCH {
                break;
            }
            match queue.try_recv() {
                Ok(job) => next = Some(job),
                Err(_) => break,
            }
        }
        if batch.is_empty() && !probes.is_empty() {
            let result = touch(&store, &mut state).map_err(Arc::new);
            metrics.store_ready(result.is_ok());
            for done in probes.drain(..) {
                let _ = done.send(shared(&result));
            }
        }
        if !batch.is_empty() {
            let started = std::time::Instant::now();
            let _span = tracing::info_span!("audit_batch", records = batch.len()).entered();
            let result = write(&store, &mut state, &mut batch).map_err(Arc::new);
            state.failing = result.is_err();
            since_nudge += batch.len();
            if result.is_ok()
                && since_nudge >= CHECKPOINT_EVERY
                && let Some(c) = &checkpointer
            {
                since_nudge = 0;
                c.nudge();
            }
            metrics.audit_commit(batch.len(), started.elapsed());
            metrics.store_ready(result.is_ok());
            if let Err(e) = &result {
                failures.fetch_add(1, Ordering::SeqCst);
                crate::telemetry::repeated::error(
                    "audit commit failed",
                    &crate::error::chain(e.as_ref()),
                );
            }
            let refused = result.as_ref().ok();
            for (i, (_, done)) in batch.drain(..).enumerate() {
                let answer = match (&result, refused.and_then(|r| r.get(i).cloned().flatten())) {
                    (Err(e), _) => Err(Error::Shared(e.clone())),
                    (Ok(_), Some(why)) => Ok(Committed::Refused(why)),
                    (Ok(_), None) => Ok(Committed::AsSent),
                };
                let _ = done.send(answer);
            }
            let result = result.map(|_| ());
            for done in probes.drain(..) {
                let _ = done.send(shared(&result));
            }
        }
        if closing {
            return;
        }
    }
}

/// Settles the batch's grants against revocations, links the records onto the chain and
/// commits them, in one transaction. Returns, for each record, why it was refused if it was.
/// The chain advances only with a commit.
/// Any failure drops the connection, since the fault may have been the connection itself.
fn write(
    store: &Store,
    state: &mut State,
    batch: &mut [Pending],
) -> Result<Vec<Option<String>>, Error> {
    let _turn = store.write_turn();
    let mut conn = connection(store, state)?;
    let tip = &state.tip;
    let (after, refused) = conn
        .transaction(|c| {
            revocation::lock_for_commit(c, &tip.chain)?;
            let refused = {
                let mut records: Vec<&mut ExchangeRecord> =
                    batch.iter_mut().map(|(r, _)| r.as_mut()).collect();
                revocation::settle(c, &mut records)?
            };
            let after = tip.link(batch.iter_mut().map(|(r, _)| r.as_mut()));
            let records: Vec<&ExchangeRecord> = batch.iter().map(|(r, _)| r.as_ref()).collect();
            write_linked(c, &records)?;
            Ok::<_, diesel::result::Error>((after, refused))
        })
        .map_err(crate::store::Error::from)?;
    state.tip = after;
    state.conn = Some(conn);
    Ok(refused)
}

/// A commit with no record in it: rewrites the chain's head as it is or, while batches fail,
/// writes a batch's size.
fn touch(store: &Store, state: &mut State) -> Result<(), Error> {
    let _turn = store.write_turn();
    let mut conn = connection(store, state)?;
    let chain = &state.tip.chain;
    if state.failing {
        probe_batch_size(&mut conn, chain, clock::now().micros())
    } else {
        touch_head(&mut conn, chain)
    }
    .map_err(crate::store::Error::from)?;
    state.conn = Some(conn);
    Ok(())
}

/// The writer's connection, taken out of its state: it is put back only after a success.
fn connection(store: &Store, state: &mut State) -> Result<StoreConnection, Error> {
    if let Some(conn) = &state.conn
        && store.may_write(conn).is_err()
    {
        state.conn = None;
    }
    let conn = match state.conn.take() {
        Some(conn) => conn,
        None => {
            let mut conn = store.connect()?;
            store.may_write(&conn).map_err(crate::store::Error::from)?;
            if conn.file() != state.file {
                // Another file is at the path now (restored from a backup, say): a new chain
                // starts in it rather than continuing one it does not hold.
                state.tip = new_chain(&mut conn)?;
                state.file = conn.file();
                tracing::warn!(chain = %state.tip.chain, "a new audit chain started in the new database file");
            }
            conn
        }
    };
    Ok(conn)
}
