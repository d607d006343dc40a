//! Exchanges counted per minute (the console's overview, SPEC §11): by outcome, error, client
//! and audience, raised by the audit writer in the transaction that writes the records, so the
//! counts are exactly the records committed, on every instance of a shared database. The
//! overview then reads at most a day of minutes, whatever the number of records.
//!
//! What is counted is bounded by the configuration, not by what callers send: a client id only
//! once the client authenticated (granted, or denied by the rules), an audience only as
//! granted; anything else counts under "".

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::record::{ExchangeRecord, Outcome};
use crate::store::DbConnection;
use crate::store::schema::exchange_minutes as m;

/// Minutes kept: the overview's longest view is a day.
pub const KEPT_MINUTES: i64 = 2 * 24 * 60;

/// Errors only an authenticated client's request can come to: their records name a client the
/// configuration knows.
const AFTER_AUTHENTICATION: &[&str] = &[
    "invalid_target",
    "invalid_scope",
    "unauthorized_client",
    "invalid_grant",
    "access_denied",
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    minute: i64,
    /// The writer's chain: each writer raises rows of its own.
    chain: String,
    outcome: &'static str,
    error: String,
    client_id: String,
    audience: String,
}

fn key(r: &ExchangeRecord) -> Key {
    let error = r.error.clone().unwrap_or_default();
    let authenticated =
        r.outcome == Outcome::Granted || AFTER_AUTHENTICATION.contains(&error.as_str());
    let audience = match r.outcome {
        Outcome::Granted => r
            .granted_audiences
            .first()
            .or(r.requested_resources.first())
            .cloned()
            .unwrap_or_default(),
        Outcome::Denied => String::new(),
    };
    Key {
        minute: r.time_us.div_euclid(60_000_000),
        chain: r.chain.clone(),
        outcome: r.outcome.as_str(),
        error,
        client_id: r
            .client_id
            .clone()
            .filter(|_| authenticated)
            .unwrap_or_default(),
        audience,
    }
}

/// Adds the records to their minutes' counts, one statement per distinct key of the batch. The
/// rows are the writer's own (its chain is in the key), so instances never wait on each other
/// here; and they are raised in key order all the same.
pub fn count(conn: &mut DbConnection, records: &[&ExchangeRecord]) -> QueryResult<()> {
    let mut counts: std::collections::BTreeMap<Key, i64> = Default::default();
    for r in records {
        *counts.entry(key(r)).or_default() += r.count.max(1);
    }
    for (k, n) in counts {
        let upsert = diesel::insert_into(m::table)
            .values((
                m::minute.eq(k.minute),
                m::chain.eq(&k.chain),
                m::outcome.eq(k.outcome),
                m::error.eq(&k.error),
                m::client_id.eq(&k.client_id),
                m::audience.eq(&k.audience),
                m::count.eq(n),
            ))
            .on_conflict((
                m::minute,
                m::chain,
                m::outcome,
                m::error,
                m::client_id,
                m::audience,
            ))
            .do_update()
            .set(m::count.eq(m::count + excluded(m::count)));
        // Each backend builds its own ON CONFLICT; the enum of both builds none.
        match conn {
            DbConnection::Sqlite(c) => upsert.execute(c)?,
            DbConnection::Postgres(c) => upsert.execute(c)?,
        };
    }
    Ok(())
}

/// Forgets the minutes older than `KEPT_MINUTES` before `now_us`.
pub fn prune(conn: &mut DbConnection, now_us: i64) -> QueryResult<usize> {
    let oldest = now_us.div_euclid(60_000_000) - KEPT_MINUTES;
    diesel::delete(m::table.filter(m::minute.lt(oldest))).execute(conn)
}

/// The overview of the minutes from `from_minute` on: granted and denied per minute, and the
/// largest errors, clients and audiences.
#[derive(Debug, Default)]
pub struct Overview {
    /// (minute, granted, denied), oldest first, minutes without exchanges left out.
    pub per_minute: Vec<(i64, i64, i64)>,
    /// Whether `MAX_ROWS` cut the oldest minutes off.
    pub cut: bool,
    pub top_errors: Vec<(String, i64)>,
    pub top_clients: Vec<(String, i64)>,
    pub top_audiences: Vec<(String, i64)>,
}

/// Rows read for one overview at most: a day of minutes with a few hundred keys each.
const MAX_ROWS: i64 = 500_000;

pub fn overview(conn: &mut DbConnection, from_minute: i64, top: usize) -> QueryResult<Overview> {
    type Row = (i64, String, String, String, String, i64);
    let rows: Vec<Row> = m::table
        .filter(m::minute.ge(from_minute))
        .order(m::minute.desc())
        .select((
            m::minute,
            m::outcome,
            m::error,
            m::client_id,
            m::audience,
            m::count,
        ))
        .limit(MAX_ROWS)
        .load(conn)?;
    let cut = rows.len() as i64 == MAX_ROWS;
    let mut minutes: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    let mut errors: HashMap<String, i64> = HashMap::new();
    let mut clients: HashMap<String, i64> = HashMap::new();
    let mut audiences: HashMap<String, i64> = HashMap::new();
    for (minute, outcome, error, client, audience, n) in rows {
        let at = minutes.entry(minute).or_default();
        if outcome == Outcome::Granted.as_str() {
            at.0 += n;
            *audiences.entry(audience).or_default() += n;
        } else {
            at.1 += n;
            *errors.entry(error).or_default() += n;
        }
        *clients.entry(client).or_default() += n;
    }
    let largest = |map: HashMap<String, i64>| {
        let mut list: Vec<(String, i64)> = map.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(top);
        list
    };
    Ok(Overview {
        cut,
        per_minute: minutes.into_iter().map(|(m, (g, d))| (m, g, d)).collect(),
        top_errors: largest(errors),
        top_clients: largest(clients),
        top_audiences: largest(audiences),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome, error: Option<&str>, client: &str) -> ExchangeRecord {
        let mut r = ExchangeRecord::begin(0, "id".into(), None, None);
        r.outcome = outcome;
        r.error = error.map(str::to_string);
        r.client_id = Some(client.to_string());
        r.time_us = 125_000_000;
        r.requested_audiences = vec!["chosen-by-caller".into()];
        r.granted_audiences = match outcome {
            Outcome::Granted => vec!["inventory-api".into()],
            Outcome::Denied => vec![],
        };
        r
    }

    #[test]
    fn only_what_the_configuration_bounds_is_counted_by_name() {
        let granted = key(&record(Outcome::Granted, None, "orders-svc"));
        assert_eq!(
            (
                granted.minute,
                granted.client_id.as_str(),
                granted.audience.as_str()
            ),
            (2, "orders-svc", "inventory-api")
        );
        let refused_by_rules = key(&record(
            Outcome::Denied,
            Some("invalid_target"),
            "orders-svc",
        ));
        assert_eq!(
            (
                refused_by_rules.client_id.as_str(),
                refused_by_rules.audience.as_str()
            ),
            ("orders-svc", ""),
            "a caller's audience is not a key"
        );
        for unauthenticated in ["invalid_client", "invalid_request"] {
            let k = key(&record(
                Outcome::Denied,
                Some(unauthenticated),
                "any-text-at-all",
            ));
            assert_eq!(k.client_id, "", "{unauthenticated}");
        }
    }
}
