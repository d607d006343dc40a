//! The database each test server gets: a SQLite file in its folder, or, when
//! `TESSERA_TEST_POSTGRES_URL` names a PostgreSQL server, a fresh database of its own there,
//! migrated as a deploy would (`tessera migrate`) and dropped when the test ends.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tessera::config::StorageUrl;
use tessera::store::Store;

/// The PostgreSQL server of the storage-bound tests; unset, they run on SQLite. Set, they fail,
/// never skip, when it cannot be reached.
pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

/// A test server's SQLite database, beside its configuration.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://tessera.db";

/// A test's database; a PostgreSQL one is dropped with it.
pub struct Database {
    pub url: String,
    postgres_name: Option<String>,
}

impl Database {
    /// The SQLite file `name` (relative to the configuration's folder), or a fresh PostgreSQL
    /// database when the storage-bound tests run on PostgreSQL.
    pub fn fresh(name: &str) -> Self {
        if !crate::on_postgres() {
            return Self::sqlite(name);
        }
        Self::fresh_postgres(true)
    }

    /// The SQLite file `name`, relative to the configuration's folder.
    pub fn sqlite(name: &str) -> Self {
        Self::given(&format!("sqlite://{name}.db"))
    }

    /// The database at `url`, which a test chose; left as it is when the test ends.
    pub fn given(url: &str) -> Self {
        Self {
            url: url.to_string(),
            postgres_name: None,
        }
    }

    /// Another fresh database on this one's backend: the SQLite file `name` beside a SQLite
    /// one, or a fresh PostgreSQL database.
    pub fn another(&self, name: &str) -> Self {
        if self.url.starts_with("sqlite://") {
            Self::sqlite(name)
        } else {
            Self::fresh_postgres(true)
        }
    }

    /// A fresh PostgreSQL database, with the schema applied or left empty.
    pub fn fresh_postgres(migrated: bool) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tessera_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            crate::helpers::uuid_like().replace('-', "")[..8].to_lowercase()
        );
        let mut admin = server();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let url = with_database(&postgres_url(), &name);
        if migrated {
            let store = Store::open(&StorageUrl::Postgres(url.clone())).unwrap();
            store.migrate().unwrap();
        }
        Self {
            url,
            postgres_name: Some(name),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres_name {
            // FORCE: a server the test started may still hold connections.
            let _ = server().batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!("{POSTGRES_URL_VAR} must name the PostgreSQL server for this suite")
    })
}

fn server() -> PgConnection {
    let url = postgres_url();
    PgConnection::establish(&url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={url}: cannot connect: {e}"))
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

/// Runs SQL statements on a test server's database, whichever the backend.
pub fn execute(storage_url: &str, base: &std::path::Path, statements: &str) {
    // A test's own bulk statements run as long as they take: the store's connections carry a
    // statement timeout meant for the service's queries, which a loaded machine can pass.
    let untimed = if storage_url.starts_with("postgres") {
        format!("SET statement_timeout = 0;\n{statements}")
    } else {
        statements.to_string()
    };
    connect(storage_url, base).batch_execute(&untimed).unwrap();
}

/// A connection to a test server's database (a SQLite URL is relative to `base`).
fn connect(storage_url: &str, base: &std::path::Path) -> tessera::store::StoreConnection {
    let url = if let Some(file) = storage_url.strip_prefix("sqlite://") {
        StorageUrl::Sqlite(base.join(file))
    } else {
        StorageUrl::Postgres(storage_url.to_string())
    };
    Store::open(&url).unwrap().connect().unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many rows a table of a test server's database holds, whichever the backend.
pub fn count_rows(storage_url: &str, base: &std::path::Path, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<Count>(&mut *connect(storage_url, base))
        .unwrap()
        .n
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

/// Everything a test server's database holds, as text: the SQLite file and its WAL as bytes, or
/// every PostgreSQL row of Tessera's tables.
pub fn contents(storage_url: &str, base: &std::path::Path) -> String {
    if let Some(file) = storage_url.strip_prefix("sqlite://") {
        let path = base.join(file);
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            if let Ok(b) = std::fs::read(format!("{}{suffix}", path.display())) {
                bytes.extend(b);
            }
        }
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut conn = PgConnection::establish(storage_url).unwrap();
    ["exchanges", "audit_chains", "used_jtis"]
        .iter()
        .map(|table| {
            diesel::sql_query(format!(
                "SELECT COALESCE(string_agg(t::text, E'\\n'), '') AS text FROM {table} t"
            ))
            .get_result::<Text>(&mut conn)
            .unwrap()
            .text
        })
        .collect::<Vec<_>>()
        .join("\n")
}
