//! What can go wrong with the store, typed, each with its cause: callers tell a store that did
//! not answer from one that refused, and the log shows the whole chain (`error::chain`).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: the database folder {} does not exist", .path.display(), .folder.display())]
    NoFolder { path: PathBuf, folder: PathBuf },
    #[error("{}: cannot open the database", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: diesel::r2d2::PoolError,
    },
    #[error("cannot connect to the database ({store})")]
    Connect {
        store: String,
        #[source]
        source: ConnectError,
    },
    #[error("no database connection")]
    NoConnection(#[source] diesel::r2d2::PoolError),
    #[error(transparent)]
    Unusable(#[from] ConnectError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("cannot take the migration lock")]
    MigrationLock(#[source] diesel::result::Error),
    #[error("migrations failed")]
    Migrations(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot read the schema version")]
    SchemaVersion(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "the PostgreSQL schema at {store} is behind this version of Tessera ({} migration(s) \
         not applied: {}); run `tessera migrate` with this version first",
        .pending.len(),
        .pending.join(", ")
    )]
    SchemaBehind { store: String, pending: Vec<String> },
    #[error("cannot rewrite the database file")]
    Rewrite(#[source] diesel::result::Error),
    #[error("the database did not answer within {} s", .0.as_secs())]
    Deadline(Duration),
    #[error("database task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("every audit query connection is busy; retry in a moment")]
    AuditBusy,
    /// The work's own failure, as it described it.
    #[error("{0}")]
    Work(String),
}

impl From<String> for Error {
    fn from(description: String) -> Self {
        Self::Work(description)
    }
}

/// The command line's edge: the whole chain, as one line.
impl From<Error> for String {
    fn from(e: Error) -> Self {
        crate::error::chain(&e)
    }
}

/// Why a connection could not be made, or may not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{}: the database file is missing", .0.display())]
    Missing(PathBuf),
    #[error("{}: the database file was deleted or replaced while open", .0.display())]
    Replaced(PathBuf),
    #[error("{}: the path holds a NUL byte", .0.display())]
    NulInPath(PathBuf),
    #[error("{}: the database file is not writable", .path.display())]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Setup(#[from] diesel::result::Error),
}
