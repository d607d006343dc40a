//! What the console changed, and who: one row per action (SPEC §11), kept in the store beside
//! the audit records and shown on the console's activity page.

use diesel::prelude::*;

use crate::store::DbConnection;
use crate::store::schema::console_actions;

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = console_actions)]
pub struct Action {
    pub id: String,
    pub time_us: i64,
    pub who: String,
    pub role: String,
    /// What was done: `revoke`.
    pub action: String,
    /// What it named, e.g. `jti 0194…`.
    pub target: String,
    /// What it came to, e.g. `3 tokens revoked`.
    pub result: String,
}

impl Action {
    /// `action` done now by the signed-in `session` on `target`, coming to `result`.
    pub fn by(
        session: &super::session::Session,
        now: crate::clock::UnixTime,
        action: &str,
        target: String,
        result: String,
    ) -> Self {
        Self {
            id: crate::ids::record_id(now),
            time_us: now.micros(),
            who: session.who.clone(),
            role: session.role.as_str().into(),
            action: action.into(),
            target,
            result,
        }
    }
}

pub fn record(conn: &mut DbConnection, action: &Action) -> QueryResult<()> {
    diesel::insert_into(console_actions::table)
        .values(action)
        .execute(conn)
        .map(|_| ())
}

/// The latest actions, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<Action>> {
    console_actions::table
        .order((console_actions::time_us.desc(), console_actions::id.desc()))
        .limit(limit)
        .select(Action::as_select())
        .load(conn)
}
