//! SQLite checkpoints off the audit writer's path. Every commit goes to the write-ahead log
//! first; a checkpoint copies the log into the database file and syncs it. Run by the writer
//! itself (SQLite's automatic checkpoint), that copy and sync stall every request waiting on
//! the next commit. This thread copies the log as it grows, on its own connection, while the
//! writer goes on committing. Once the whole log is copied, the writer's next commit starts it
//! again from its beginning (only a writer can); when this thread falls behind, the writer's
//! automatic checkpoint copies what is left, which is little.

use std::sync::mpsc;
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;

use super::Store;

pub struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `None` for PostgreSQL, which checkpoints on its own.
    pub fn start(store: &Store) -> Option<Self> {
        if store.is_postgres() {
            return None;
        }
        let store = store.clone();
        let (nudges, nudged) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&store, &nudged))
            .inspect_err(|e| {
                tracing::warn!(error = %e, "no checkpointer thread: the audit writer checkpoints");
            })
            .ok()?;
        Some(Self {
            nudges: Some(nudges),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon; nudges made while one runs count as one.
    pub fn nudge(&self) {
        if let Some(n) = &self.nudges {
            let _ = n.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudges = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(store: &Store, nudged: &mpsc::Receiver<()>) {
    let mut conn = None;
    while nudged.recv().is_ok() {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match store.connect() {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "no connection for a checkpoint");
                    continue;
                }
            },
        };
        // Store faults are the writer's to report; a connection to a file no longer at the
        // path, or no longer writable, is dropped here.
        if store.may_write(&c).is_err() {
            continue;
        }
        // PASSIVE: never waits for, nor blocks, the writer or readers.
        match c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
            Ok(()) => conn = Some(c),
            Err(e) => tracing::debug!(error = %e, "checkpoint failed"),
        }
    }
}
