//! Replacements of Txn-Tokens, counted per transaction (SPEC §8): one row per `txn`, its count
//! raised in one statement, so that concurrent replacements, on any instance, each see a count
//! of their own.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::txn_replacements as r;

/// Counts one more replacement of `txn` and returns how many there are now, this one included.
/// The row is kept at least `until` (seconds).
pub fn count(conn: &mut DbConnection, txn: &str, until: i64) -> QueryResult<i64> {
    conn.transaction(|c| {
        let upsert = diesel::insert_into(r::table)
            .values((r::txn.eq(txn), r::count.eq(1), r::until_s.eq(until)))
            .on_conflict(r::txn)
            .do_update()
            .set(r::count.eq(r::count + 1));
        // Each backend builds its own ON CONFLICT; the enum of both builds none.
        match c {
            DbConnection::Sqlite(c) => upsert.execute(c)?,
            DbConnection::Postgres(c) => upsert.execute(c)?,
        };
        r::table.find(txn).select(r::count).first(c)
    })
}

/// Forgets transactions none of whose Txn-Tokens can be presented any more.
pub fn prune(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(r::table.filter(r::until_s.lt(now))).execute(conn)
}
