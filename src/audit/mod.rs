//! The audit trail (SPEC §6): one record per `/token` request, written by one writer that
//! commits concurrent records together, and queried newest first.

pub mod chain;
pub mod format;
pub mod lineage;
pub mod provenance;
pub mod query;
pub mod record;
pub mod retention;
pub mod revocation;
mod row;
pub mod subject_tokens;
pub mod tallies;
pub mod writer;

pub use query::{Cursor, Filters};
pub use record::{ExchangeRecord, Outcome};
pub use writer::AuditWriter;
