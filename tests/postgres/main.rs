//! The storage-bound tests of `tests/api` again, each server on a fresh PostgreSQL database of
//! the server `TESSERA_TEST_POSTGRES_URL` names, plus what only several instances can show.
//! Without the variable these tests run on SQLite, like `tests/api`; with it they fail, never
//! skip, when the server cannot be reached.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it does not expect"
)]

#[path = "../api/helpers/mod.rs"]
mod helpers;
#[path = "../api/storage.rs"]
mod storage;

#[path = "../api/abuse.rs"]
mod abuse;
#[path = "../api/admin.rs"]
mod admin;
#[path = "../api/audit.rs"]
mod audit;
#[path = "../api/audit_chain.rs"]
mod audit_chain;
#[path = "../api/crash.rs"]
mod crash;
#[path = "../api/delegation.rs"]
mod delegation;
#[path = "../api/dpop.rs"]
mod dpop;
#[path = "../api/hygiene.rs"]
mod hygiene;
#[path = "../api/opaque.rs"]
mod opaque;
#[path = "../api/private_key_jwt.rs"]
mod private_key_jwt;
#[path = "../api/reload.rs"]
mod reload;
#[path = "../api/revocation.rs"]
mod revocation;
#[path = "../api/rotation.rs"]
mod rotation;
#[path = "../api/shutdown.rs"]
mod shutdown;
#[path = "../api/subject_tokens.rs"]
mod subject_tokens;
#[path = "../api/token.rs"]
mod token;

mod faults;
mod instances;
mod schema;

fn on_postgres() -> bool {
    std::env::var_os(storage::POSTGRES_URL_VAR).is_some()
}
