//! The database: one connection type over both backends (SPEC §7), one pool, and the
//! migrations of each backend embedded in the binary. Diesel is blocking, so callers on async
//! workers go through `blocking`.
//!
//! The backend is chosen from the URL scheme, never by trying each in turn: SQLite accepts
//! any string as a file name, so a trial would hide PostgreSQL's real connection error.

pub mod budget;
pub mod checkpoint;
mod error;
pub mod replacements;
pub mod replay;
pub mod schema;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::StorageUrl;
pub use error::{ConnectError, Error};

/// A connection to whichever backend the configuration names.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

pub type DbPool = Pool<Manager>;

/// Which file a SQLite connection has open: (device, inode).
pub type FileId = (u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// A connection and, for SQLite, the file it opened. A SQLite file deleted or replaced while
/// open would go on taking writes into the old inode, records no one can read again, so a
/// connection whose file is no longer at the path is not used (see `Store::is_current`).
pub struct StoreConnection {
    conn: DbConnection,
    file: Option<FileId>,
}

impl StoreConnection {
    /// The file this connection writes to; `None` on PostgreSQL.
    pub fn file(&self) -> Option<FileId> {
        self.file
    }
}

impl std::ops::Deref for StoreConnection {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for StoreConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Per connection, in this order: `busy_timeout` must precede the switch to WAL, which can
/// itself meet a lock. `synchronous = FULL` makes every commit durable before it returns.
/// `case_sensitive_like` makes LIKE match as PostgreSQL does (audit filters use it).
/// `temp_store = MEMORY` keeps statement journals in memory instead of temporary files.
/// `journal_size_limit`: the log is cut back to 64 MiB whenever it restarts, so a burst (or a
/// long read that held it back) does not leave a large file behind. `auto_vacuum` takes effect
/// in a new file only (before its first table): pages retention frees can then be given back
/// to the file system (`tessera migrate` converts an older file).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA auto_vacuum = INCREMENTAL; \
     PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; \
     PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 67108864;";

/// Any single statement running longer than this is a fault, not a slow answer: the request
/// gets 503 rather than waiting on a stuck server or lock. Read committed whatever the server's
/// default: the order of revocations and audit commits (`audit::revocation`) rests on each
/// statement seeing what committed before it, after its lock was granted.
const POSTGRES_SESSION: &str = "SET statement_timeout = '10s'; SET lock_timeout = '5s'; \
     SET application_name = 'tessera'; \
     SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED;";

/// How long a request waits for the store before it answers 503.
const DEADLINE: Duration = Duration::from_secs(5);

/// Audit connections; queries take turns on them (see `Store::audit_read`).
const AUDIT_READERS: u32 = 2;
/// After an audit query, the next waits this many times as long as it took: audit queries get
/// at most a fifth of one core, however an auditor loops.
const AUDIT_PAUSE_FACTOR: u32 = 4;
/// How long an audit query waits for its turn before it is refused as busy.
const AUDIT_WAIT: Duration = Duration::from_secs(2);

fn audit_pool(url: &StorageUrl, budget: Duration) -> DbPool {
    Pool::builder()
        .max_size(AUDIT_READERS)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(1))
        .build_unchecked(Manager {
            url: url.clone(),
            audit_reads: Some(budget),
        })
}

/// libpq settings that make a server gone silent (a partition, a dead host) an error within
/// seconds instead of a connection blocked until the kernel gives up, unless the URL sets them.
const POSTGRES_DEFAULTS: &[(&str, &str)] = &[
    ("connect_timeout", "3"),
    ("keepalives", "1"),
    ("keepalives_idle", "5"),
    ("keepalives_interval", "2"),
    ("keepalives_count", "2"),
    ("tcp_user_timeout", "5000"),
];

/// The URL with `POSTGRES_DEFAULTS` added where it sets none of its own.
fn with_postgres_defaults(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // A form the URL parser does not take (several hosts, say): added as text.
        let mut text = url.to_string();
        for (key, value) in POSTGRES_DEFAULTS {
            if !text.contains(&format!("{key}=")) {
                text.push(if text.contains('?') { '&' } else { '?' });
                text.push_str(&format!("{key}={value}"));
            }
        }
        return text;
    };
    let set: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    {
        let mut query = parsed.query_pairs_mut();
        for (key, value) in POSTGRES_DEFAULTS {
            if !set.iter().any(|k| k == key) {
                query.append_pair(key, value);
            }
        }
    }
    parsed.to_string()
}

/// Serialises `tessera migrate` runs started at once by several deploy jobs.
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261; // "tessera"

/// Opens connections of the configured backend for the pool (and for the audit writer).
#[derive(Debug, Clone)]
pub struct Manager {
    url: StorageUrl,
    /// Connections for audit queries only: read-only, and on PostgreSQL under this query
    /// budget as a statement timeout.
    audit_reads: Option<Duration>,
}

impl Manager {
    /// `create`: whether a missing SQLite file may be created. Only the first connection, at
    /// start, may: later, a missing file is a fault to report, not an empty database to fill.
    fn establish(&self, create: bool) -> Result<StoreConnection, ConnectError> {
        match &self.url {
            StorageUrl::Sqlite(path) => {
                let target = if create {
                    path.to_string_lossy().into_owned()
                } else {
                    format!("file:{}?mode=rw", uri_path(path))
                };
                let mut conn = SqliteConnection::establish(&target).map_err(|e| {
                    if file_id(path).is_none() {
                        ConnectError::Missing(path.clone())
                    } else {
                        e.into()
                    }
                })?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                budget::register(&mut conn)?;
                if self.audit_reads.is_some() {
                    conn.batch_execute("PRAGMA query_only = ON")?;
                }
                Ok(StoreConnection {
                    conn: DbConnection::Sqlite(conn),
                    file: file_id(path),
                })
            }
            StorageUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(&with_postgres_defaults(url))?;
                conn.batch_execute(POSTGRES_SESSION)?;
                if let Some(budget) = self.audit_reads {
                    conn.batch_execute(&format!(
                        "SET statement_timeout = '{}ms'; SET default_transaction_read_only = on;",
                        budget.as_millis().max(1)
                    ))?;
                }
                Ok(StoreConnection {
                    conn: DbConnection::Postgres(conn),
                    file: None,
                })
            }
        }
    }

    /// Whether the connection's file is still the one at the configured path.
    fn is_current(&self, conn: &StoreConnection) -> Result<(), ConnectError> {
        match (&self.url, conn.file) {
            (StorageUrl::Sqlite(path), opened) if file_id(path) != opened => {
                Err(ConnectError::Replaced(path.clone()))
            }
            _ => Ok(()),
        }
    }

    /// An open SQLite file keeps taking writes after its permissions or its file system turn
    /// read-only; a deliberate change like that is honoured rather than written past.
    /// `access(2)`, not opening the file: closing any descriptor of a SQLite file releases
    /// every POSIX lock the process holds on it, SQLite's included.
    fn is_writable(&self) -> Result<(), ConnectError> {
        let StorageUrl::Sqlite(path) = &self.url else {
            return Ok(());
        };
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| ConnectError::NulInPath(path.clone()))?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
            return Ok(());
        }
        Err(ConnectError::NotWritable {
            path: path.clone(),
            source: std::io::Error::last_os_error(),
        })
    }
}

/// Bytes available to an unprivileged user on the file system holding `path`.
fn free_space(path: &Path) -> Option<u64> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let c_path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string; `stat` is written by the call before
    // it is read, and only when the call succeeds.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded and filled it.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// A path as a SQLite URI path: the characters URIs give a meaning to are percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl ManageConnection for Manager {
    type Connection = StoreConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<StoreConnection, Self::Error> {
        self.establish(false).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(ConnectionError::BadConnection(
                crate::error::chain(&e),
            ))
        })
    }

    fn is_valid(&self, conn: &mut StoreConnection) -> Result<(), Self::Error> {
        self.is_current(conn).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(ConnectionError::BadConnection(e.to_string()))
        })?;
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut StoreConnection) -> bool {
        match &mut conn.conn {
            DbConnection::Sqlite(c) => R2D2Connection::is_broken(c),
            DbConnection::Postgres(c) => R2D2Connection::is_broken(c),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    manager: Manager,
    pool: DbPool,
    /// Audit queries' own connections: an auditor never takes those `/token`, `/introspect`
    /// and revocation need, and at most `AUDIT_READERS` audit queries run at once.
    audit_pool: DbPool,
    /// How long one audit query may run.
    audit_budget: Duration,
    /// When the next audit query may start (see `audit_read`).
    audit_pace: std::sync::Arc<tokio::sync::Mutex<tokio::time::Instant>>,
    /// SQLite: every write transaction of this process takes its turn here first, in arrival
    /// order. SQLite's own lock is not a queue (a waiting connection polls, and a busy audit
    /// writer retakes the lock between two polls), so without this a revocation or a replay
    /// insert could wait out the busy timeout behind a saturated writer. `None` on PostgreSQL,
    /// whose writers do not exclude each other.
    write_gate: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

/// A turn at writing (see `Store::write_gate`); the next writer waits until it is dropped.
pub type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

impl Store {
    /// Opens the pool. For PostgreSQL the server need not answer yet: requests get 503 and
    /// `/readyz` says so until it does.
    pub fn open(url: &StorageUrl) -> Result<Self, Error> {
        let size = match url {
            StorageUrl::Sqlite(path) => {
                if let Some(dir) = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
                {
                    return Err(Error::NoFolder {
                        path: path.clone(),
                        folder: dir.to_path_buf(),
                    });
                }
                // The first connection creates the file; the pool's never do.
                drop(
                    Manager {
                        url: url.clone(),
                        audit_reads: None,
                    }
                    .establish(true)?,
                );
                4
            }
            StorageUrl::Postgres(_) => {
                // libpq uses OpenSSL. Initialised here first, OpenSSL registers no exit
                // handler, which would free its state under pool threads still connecting
                // and crash the process as it exits.
                openssl_sys::init();
                // Network round trips: more requests wait on the server at once.
                8
            }
        };
        let manager = Manager {
            url: url.clone(),
            audit_reads: None,
        };
        let builder = Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(3));
        let pool = match url {
            StorageUrl::Sqlite(path) => {
                builder
                    .build(manager.clone())
                    .map_err(|source| Error::Open {
                        path: path.clone(),
                        source,
                    })?
            }
            // Connection errors are reported where the first connection is made, in full.
            StorageUrl::Postgres(_) => builder.build_unchecked(manager.clone()),
        };
        let write_gate = match url {
            StorageUrl::Sqlite(_) => Some(std::sync::Arc::new(tokio::sync::Mutex::new(()))),
            StorageUrl::Postgres(_) => None,
        };
        let audit_budget = budget::QUERY_BUDGET;
        let audit_pool = audit_pool(url, audit_budget);
        Ok(Self {
            manager,
            pool,
            audit_pool,
            audit_budget,
            audit_pace: std::sync::Arc::new(tokio::sync::Mutex::new(tokio::time::Instant::now())),
            write_gate,
        })
    }

    /// Waits for this process's turn to write (SQLite; at once on PostgreSQL). Only from a
    /// thread that may block: the audit writer's, or inside `blocking_write`.
    pub fn write_turn(&self) -> WriteTurn {
        self.write_gate
            .as_ref()
            .map(|gate| gate.clone().blocking_lock_owned())
    }

    pub fn describe(&self) -> String {
        self.manager.url.describe()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.manager.url, StorageUrl::Postgres(_))
    }

    /// A connection of its own, outside the pool (the audit writer keeps one).
    pub fn connect(&self) -> Result<StoreConnection, Error> {
        self.manager
            .establish(false)
            .map_err(|source| Error::Connect {
                store: self.describe(),
                source,
            })
    }

    /// Whether a connection may write now: its file is still the one at the configured path,
    /// and that file may be written.
    pub fn may_write(&self, conn: &StoreConnection) -> Result<(), ConnectError> {
        self.manager.is_current(conn)?;
        self.manager.is_writable()
    }

    pub fn pooled(&self) -> Result<PooledConnection<Manager>, Error> {
        self.pool.get().map_err(Error::NoConnection)
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, Error> {
        let failed = Error::Migrations;
        match self.connect()?.conn {
            DbConnection::Sqlite(mut c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|applied| applied.len())
                .map_err(failed),
            DbConnection::Postgres(mut c) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .execute(&mut c)
                    .map_err(Error::MigrationLock)?;
                let applied = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|applied| applied.len())
                    .map_err(failed);
                let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .execute(&mut c);
                applied
            }
        }
    }

    /// SQLite: whether space freed by retention can be given back to the file system (the file
    /// was made, or converted, with `auto_vacuum = INCREMENTAL`). Always true on PostgreSQL.
    pub fn returns_free_space(&self) -> Result<bool, Error> {
        match self.connect()?.conn {
            DbConnection::Sqlite(mut c) => {
                let mode: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
                    "(SELECT auto_vacuum FROM pragma_auto_vacuum)",
                ))
                .get_result(&mut c)?;
                Ok(mode == 2)
            }
            DbConnection::Postgres(_) => Ok(true),
        }
    }

    /// SQLite: rewrites the file once so that space freed by retention can be given back to
    /// the file system (`VACUUM`, which takes about as long as copying the file and needs as much
    /// free space). Returns whether it did anything.
    pub fn convert_to_incremental_vacuum(&self) -> Result<bool, Error> {
        if self.returns_free_space()? {
            return Ok(false);
        }
        let mut conn = self.connect()?;
        conn.batch_execute("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
            .map_err(Error::Rewrite)?;
        Ok(true)
    }

    /// How many bytes the store takes: the SQLite file and its log, or the PostgreSQL
    /// database; and, for SQLite, the space left on its file system.
    pub fn size(&self, conn: &mut DbConnection) -> Result<(u64, Option<u64>), Error> {
        match (&self.manager.url, conn) {
            (StorageUrl::Sqlite(path), _) => {
                let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                Ok((len(path) + len(&wal), free_space(path)))
            }
            (StorageUrl::Postgres(_), conn) => {
                let bytes: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "pg_database_size(current_database())",
                ))
                .get_result(conn)?;
                Ok((bytes.max(0) as u64, None))
            }
        }
    }

    /// The migrations this binary has that the database has not run yet, by name.
    pub fn pending_migrations(&self) -> Result<Vec<String>, Error> {
        let pending = match self.connect()?.conn {
            DbConnection::Sqlite(mut c) => c
                .pending_migrations(SQLITE_MIGRATIONS)
                .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
            DbConnection::Postgres(mut c) => c
                .pending_migrations(POSTGRES_MIGRATIONS)
                .map(|m| m.iter().map(|m| m.name().to_string()).collect()),
        };
        pending.map_err(Error::SchemaVersion)
    }

    /// What `serve` does with the schema (SPEC §7): SQLite is migrated in place; PostgreSQL,
    /// shared with other instances, must already be current (`tessera migrate` is the deploy
    /// step), and a schema behind this binary's is refused.
    pub fn prepare_for_serving(&self) -> Result<usize, Error> {
        if !self.is_postgres() {
            return self.migrate();
        }
        let pending = self.pending_migrations()?;
        if pending.is_empty() {
            return Ok(0);
        }
        Err(Error::SchemaBehind {
            store: self.describe(),
            pending,
        })
    }

    /// Runs diesel work that only reads on the blocking pool, off the async workers, within
    /// `DEADLINE`: a store that stops answering (a network partition holds the connection
    /// open) gets the caller an error in bounded time, not a request that hangs.
    pub async fn blocking<T, E, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        E: Into<Error>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.run(false, work).await
    }

    /// The same store, its audit queries under `budget` (`storage.audit_query_budget`).
    pub fn with_audit_budget(mut self, budget: Duration) -> Self {
        self.audit_pool = audit_pool(&self.manager.url, budget);
        self.audit_budget = budget;
        self
    }

    /// How long one audit query may run.
    pub fn audit_budget(&self) -> Duration {
        self.audit_budget
    }

    /// Runs an audit query (admin API) on the audit connections, within its time budget, and
    /// paced: audit queries run one at a time, and each waits until the one before has been
    /// followed by `AUDIT_PAUSE_FACTOR` times its own duration, so that an auditor looping on
    /// heavy queries takes a fifth of a core at most, not one of the service's two.
    pub async fn audit_read<T, E, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        E: Into<Error>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let busy = || Error::AuditBusy;
        let waited_since = tokio::time::Instant::now();
        let mut next = tokio::time::timeout(AUDIT_WAIT, self.audit_pace.lock())
            .await
            .map_err(|_| busy())?;
        if next.saturating_duration_since(tokio::time::Instant::now())
            > AUDIT_WAIT.saturating_sub(waited_since.elapsed())
        {
            return Err(busy());
        }
        tokio::time::sleep_until(*next).await;
        let (pool, budget) = (self.audit_pool.clone(), self.audit_budget);
        let started = tokio::time::Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|_| busy())?;
            budget::within(budget, || work(&mut conn)).map_err(Into::into)
        });
        let done = job.await;
        *next = tokio::time::Instant::now() + started.elapsed() * AUDIT_PAUSE_FACTOR;
        match done {
            Ok(done) => done,
            Err(e) => Err(e.into()),
        }
    }

    /// A connection for audit queries outside the server (the CLI): read-only, its statements
    /// under the query budget when run `budget::within` it.
    pub fn connect_for_audit(&self) -> Result<StoreConnection, Error> {
        Manager {
            url: self.manager.url.clone(),
            audit_reads: Some(self.audit_budget),
        }
        .establish(false)
        .map_err(|source| Error::Connect {
            store: self.describe(),
            source,
        })
    }

    /// As `blocking`, for work that writes: it takes its turn at writing first.
    pub async fn blocking_write<T, E, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        E: Into<Error>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        self.run(true, work).await
    }

    async fn run<T, E, F>(&self, writes: bool, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        E: Into<Error>,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            // The turn first: a connection is then held only by whoever is about to write, and
            // writers waiting their turn leave the pool's connections to readers.
            let _turn = writes.then(|| store.write_turn());
            let mut conn = store.pooled()?;
            work(&mut conn).map_err(Into::into)
        });
        match tokio::time::timeout(DEADLINE, job).await {
            Ok(done) => done?,
            Err(_) => Err(Error::Deadline(DEADLINE)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_timeouts_unless_they_set_their_own() {
        let url = with_postgres_defaults("postgres://u@db:5432/tessera");
        assert!(url.contains("connect_timeout=3"), "{url}");
        assert!(url.contains("tcp_user_timeout=5000"), "{url}");
        let own = with_postgres_defaults("postgres://u@db/t?connect_timeout=10&sslmode=require");
        assert!(own.contains("connect_timeout=10"), "{own}");
        assert!(!own.contains("connect_timeout=3"), "{own}");
        assert!(
            own.contains("sslmode=require") && own.contains("keepalives=1"),
            "{own}"
        );
        let hosts = with_postgres_defaults("postgres://u@h1:5432,h2:5432/t");
        assert!(hosts.contains("connect_timeout=3"), "{hosts}");
        assert!(
            hosts.starts_with("postgres://u@h1:5432,h2:5432/t?"),
            "{hosts}"
        );
    }
}
