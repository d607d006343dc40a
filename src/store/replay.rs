//! Single use of proof and assertion `jti`s: each is inserted under a unique key until it
//! expires, so a second use fails whichever instance it reaches.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};

use super::DbConnection;
use super::schema::used_jtis;

/// `Ok(true)` the first time `(kind, jti)` is seen, `Ok(false)` on a replay.
pub fn first_use(
    conn: &mut DbConnection,
    kind: &str,
    jti: &str,
    expires_at: i64,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(used_jtis::table)
        .values((
            used_jtis::kind.eq(kind),
            used_jtis::jti.eq(jti),
            used_jtis::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(true),
        Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Forgets identifiers that expired before `now` (seconds).
pub fn prune(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(used_jtis::table.filter(used_jtis::expires_at.lt(now))).execute(conn)
}
