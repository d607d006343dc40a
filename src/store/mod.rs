//! The database: one connection type and pool for the whole service, migrations embedded in
//! the binary. Diesel is blocking, so callers on async workers go through `blocking`.

pub mod replay;
pub mod schema;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::StorageUrl;

pub type DbConnection = SqliteConnection;
pub type DbPool = Pool<ConnectionManager<DbConnection>>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Per connection, in this order: `busy_timeout` must precede the switch to WAL, which can
/// itself meet a lock. `synchronous = FULL` makes every commit durable before it returns.
/// `case_sensitive_like` makes LIKE match as PostgreSQL does (audit filters use it).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;";

#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Clone)]
pub struct Store {
    url: StorageUrl,
    pool: DbPool,
}

impl Store {
    pub fn open(url: &StorageUrl) -> Result<Self, String> {
        let StorageUrl::Sqlite(path) = url;
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            return Err(format!(
                "{}: the database folder {} does not exist",
                path.display(),
                dir.display()
            ));
        }
        let manager = ConnectionManager::<DbConnection>::new(path.to_string_lossy());
        let pool = Pool::builder()
            .max_size(4)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(Pragmas))
            .build(manager)
            .map_err(|e| format!("{}: cannot open the database: {e}", path.display()))?;
        Ok(Self {
            url: url.clone(),
            pool,
        })
    }

    /// A connection of its own, outside the pool (the audit writer keeps one).
    pub fn connect(&self) -> Result<DbConnection, String> {
        let StorageUrl::Sqlite(path) = &self.url;
        let mut conn =
            SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| e.to_string())?;
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    pub fn pooled(&self) -> Result<PooledConnection<ConnectionManager<DbConnection>>, String> {
        self.pool
            .get()
            .map_err(|e| format!("no database connection: {e}"))
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, String> {
        let mut conn = self.pooled()?;
        conn.run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|applied| applied.len())
            .map_err(|e| format!("migrations failed: {e}"))
    }

    /// Whether the database answers a query now.
    pub async fn ping(&self) -> bool {
        self.blocking(|conn| {
            diesel::sql_query("SELECT 1")
                .execute(conn)
                .map_err(|e| e.to_string())
        })
        .await
        .is_ok()
    }

    /// Runs diesel work on the blocking pool, off the async workers.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, String> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store.pooled()?;
            work(&mut conn)
        })
        .await
        .map_err(|e| format!("database task failed: {e}"))?
    }
}
