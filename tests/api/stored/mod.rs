//! The storage-bound tests: they run on whichever backend `TESSERA_TEST_POSTGRES_URL` chooses,
//! each server on a SQLite file of its own when the variable is unset, or on a fresh database of
//! the PostgreSQL server it names (created, migrated as `tessera migrate` does, dropped when the
//! test ends); then they fail, never skip, when that server cannot be reached. What only a
//! database server can show (in `postgres_faults` and `postgres_schema`) returns early on SQLite.

mod abuse;
mod admin;
mod audit;
mod audit_chain;
mod console;
mod console_sign_in;
mod crash;
mod delegation;
mod dpop;
mod grants;
mod hygiene;
mod instances;
mod opaque;
mod postgres_faults;
mod postgres_schema;
mod private_key_jwt;
mod reload;
mod revocation;
mod rotation;
mod shutdown;
mod subject_tokens;
mod token;
mod txn_tokens;
