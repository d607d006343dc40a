//! Tessera seen from outside: the real server on loopback, a real SQLite file, a test identity
//! provider serving JWKS over HTTP, and the real `tessera` binary for the CLI.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it does not expect"
)]

mod helpers;
mod storage;

/// This suite runs on SQLite; `tests/postgres` runs the storage-bound tests on PostgreSQL.
fn on_postgres() -> bool {
    false
}

mod abuse;
mod admin;
mod attacks;
mod audit;
mod audit_chain;
mod checkpoints;
mod cli;
mod conditions;
mod crash;
mod delegation;
mod deploy;
mod dpop;
mod hostile_clients;
mod hostile_idp;
mod hygiene;
mod issuer_keys;
mod opaque;
mod private_key_jwt;
mod public_documents;
mod reload;
mod revocation;
mod rotation;
mod rules_cli;
mod shutdown;
mod spans;
mod store_faults;
mod subject_tokens;
mod token;
