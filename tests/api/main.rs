//! Tessera seen from outside: the real server on loopback with a database of its own, a test
//! identity provider serving JWKS over HTTP, and the real `tessera` binary for the CLI.
//!
//! The database is a SQLite file unless `TESSERA_TEST_POSTGRES_URL` names a PostgreSQL server:
//! then each server gets a fresh database there, except in tests of SQLite itself, which pin
//! their file (`on_sqlite`). The storage-bound tests are the ones under `stored`;
//! `cargo test --test api -- stored::` runs them alone.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it does not expect"
)]

mod helpers;
mod storage;

/// Whether test servers get PostgreSQL databases: `TESSERA_TEST_POSTGRES_URL` is set.
fn on_postgres() -> bool {
    std::env::var_os(storage::POSTGRES_URL_VAR).is_some()
}

mod stored;

mod attacks;
mod checkpoints;
mod cli;
mod conditions;
mod console_browser;
mod deploy;
mod hostile_clients;
mod hostile_idp;
mod issuer_keys;
mod public_documents;
mod rules_cli;
mod spans;
mod store_faults;
mod workloads;
