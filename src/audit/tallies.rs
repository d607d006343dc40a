//! Exchanges counted as they are recorded (the console's overview, SPEC §11), by the audit
//! writer in the transaction that writes the records, so the counts are exactly the records
//! committed, on every instance of a shared database. Granted and denied per minute, for the
//! charts; per ten minutes by outcome, error, client and audience, for the largest of each. The
//! overview then reads a day of counts, whatever the number of records.
//!
//! What is counted by name is bounded by the configuration, not by what callers send: a client
//! id only once the client authenticated (granted, or denied by the rules), an audience only
//! as granted; anything else counts under "".

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::record::{ExchangeRecord, Outcome};
use crate::store::DbConnection;
use crate::store::schema::{exchange_minutes as m, exchange_tallies as t};

/// Minutes kept: the overview's longest view is a day.
pub const KEPT_MINUTES: i64 = 2 * 24 * 60;
/// Minutes in a bucket of the largest errors, clients and audiences.
pub const BUCKET_MINUTES: i64 = 10;

/// Errors only an authenticated client's request can come to: their records name a client the
/// configuration knows.
const AFTER_AUTHENTICATION: &[&str] = &[
    "invalid_target",
    "invalid_scope",
    "unauthorized_client",
    "invalid_grant",
    "access_denied",
];

/// What one count is kept by, borrowed from the record: the writer adds a batch's records up
/// without copying a string of theirs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    bucket: i64,
    /// The writer's chain: each writer raises rows of its own.
    chain: &'a str,
    outcome: &'static str,
    error: &'a str,
    client_id: &'a str,
    audience: &'a str,
}

fn minute_of(r: &ExchangeRecord) -> i64 {
    r.time_us.div_euclid(60_000_000)
}

fn key(r: &ExchangeRecord) -> Key<'_> {
    let error = r.error.as_deref().unwrap_or_default();
    let authenticated = r.outcome == Outcome::Granted || AFTER_AUTHENTICATION.contains(&error);
    let audience = match r.outcome {
        Outcome::Granted => r
            .granted_audiences
            .first()
            .or(r.requested_resources.first())
            .map_or("", String::as_str),
        Outcome::Denied => "",
    };
    Key {
        bucket: minute_of(r).div_euclid(BUCKET_MINUTES),
        chain: &r.chain,
        outcome: r.outcome.as_str(),
        error,
        client_id: r
            .client_id
            .as_deref()
            .filter(|_| authenticated)
            .unwrap_or_default(),
        audience,
    }
}

/// Adds the records to the counts, in key order. The rows are the writer's own (its chain is
/// in every key), so instances never wait on each other here. PostgreSQL takes each table's
/// rows in one statement (one round trip); SQLite one prepared statement a row, from its cache,
/// as the records themselves (see `chain::insert_rows`).
pub fn count(conn: &mut DbConnection, records: &[&ExchangeRecord]) -> QueryResult<()> {
    let mut minutes: BTreeMap<(i64, &str), (i64, i64)> = BTreeMap::new();
    let mut keys: BTreeMap<Key, i64> = BTreeMap::new();
    for r in records {
        let n = r.count.max(1);
        let at = minutes.entry((minute_of(r), r.chain.as_str())).or_default();
        match r.outcome {
            Outcome::Granted => at.0 += n,
            Outcome::Denied => at.1 += n,
        }
        *keys.entry(key(r)).or_default() += n;
    }
    let minute_rows: Vec<_> = minutes
        .into_iter()
        .map(|((minute, chain), (granted, denied))| {
            (
                m::minute.eq(minute),
                m::chain.eq(chain),
                m::granted.eq(granted),
                m::denied.eq(denied),
            )
        })
        .collect();
    let tally_rows: Vec<_> = keys
        .into_iter()
        .map(|(k, n)| {
            (
                t::bucket.eq(k.bucket),
                t::chain.eq(k.chain),
                t::outcome.eq(k.outcome),
                t::error.eq(k.error),
                t::client_id.eq(k.client_id),
                t::audience.eq(k.audience),
                t::count.eq(n),
            )
        })
        .collect();
    // Each backend builds its own ON CONFLICT; the enum of both builds none.
    macro_rules! add_minutes {
        ($values:expr) => {
            diesel::insert_into(m::table)
                .values($values)
                .on_conflict((m::minute, m::chain))
                .do_update()
                .set((
                    m::granted.eq(m::granted + excluded(m::granted)),
                    m::denied.eq(m::denied + excluded(m::denied)),
                ))
        };
    }
    macro_rules! add_tallies {
        ($values:expr) => {
            diesel::insert_into(t::table)
                .values($values)
                .on_conflict((
                    t::bucket,
                    t::chain,
                    t::outcome,
                    t::error,
                    t::client_id,
                    t::audience,
                ))
                .do_update()
                .set(t::count.eq(t::count + excluded(t::count)))
        };
    }
    match conn {
        DbConnection::Sqlite(c) => {
            for row in minute_rows {
                add_minutes!(row).execute(c)?;
            }
            for row in tally_rows {
                add_tallies!(row).execute(c)?;
            }
        }
        DbConnection::Postgres(c) => {
            if !minute_rows.is_empty() {
                add_minutes!(minute_rows).execute(c)?;
                add_tallies!(tally_rows).execute(c)?;
            }
        }
    }
    Ok(())
}

/// Forgets the counts older than `KEPT_MINUTES` before `now_us`.
pub fn prune(conn: &mut DbConnection, now_us: i64) -> QueryResult<usize> {
    let oldest = now_us.div_euclid(60_000_000) - KEPT_MINUTES;
    let minutes = diesel::delete(m::table.filter(m::minute.lt(oldest))).execute(conn)?;
    let buckets = diesel::delete(t::table.filter(t::bucket.lt(oldest.div_euclid(BUCKET_MINUTES))))
        .execute(conn)?;
    Ok(minutes + buckets)
}

/// What a span of time came to: granted and denied per minute, and the largest errors,
/// clients and audiences.
#[derive(Debug, Default)]
pub struct Overview {
    /// (minute, granted, denied), oldest first, minutes without exchanges left out.
    pub per_minute: Vec<(i64, i64, i64)>,
    pub top_errors: Vec<(String, i64)>,
    pub top_clients: Vec<(String, i64)>,
    pub top_audiences: Vec<(String, i64)>,
    /// Whether `MAX_ROWS` cut the oldest buckets off the largest.
    pub cut: bool,
}

/// Rows of the largest read for one overview at most.
const MAX_ROWS: i64 = 200_000;

/// The last hour and the last day before `now_minute` (included), read once: the largest over
/// the hour are those of its ten-minute buckets (the current one and the five before).
pub fn overview(
    conn: &mut DbConnection,
    now_minute: i64,
    top: usize,
) -> QueryResult<(Overview, Overview)> {
    let day_from = now_minute - 24 * 60 + 1;
    let hour_from = now_minute - 59;
    let minutes: Vec<(i64, i64, i64)> = m::table
        .filter(m::minute.ge(day_from))
        .select((m::minute, m::granted, m::denied))
        .load(conn)?;
    let mut per_minute: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (minute, granted, denied) in minutes {
        let at = per_minute.entry(minute).or_default();
        at.0 += granted;
        at.1 += denied;
    }
    let per_minute: Vec<(i64, i64, i64)> = per_minute
        .into_iter()
        .map(|(m, (g, d))| (m, g, d))
        .collect();
    type Row = (i64, String, String, String, String, i64);
    let rows: Vec<Row> = t::table
        .filter(t::bucket.ge(day_from.div_euclid(BUCKET_MINUTES)))
        .order(t::bucket.desc())
        .select((
            t::bucket,
            t::outcome,
            t::error,
            t::client_id,
            t::audience,
            t::count,
        ))
        .limit(MAX_ROWS)
        .load(conn)?;
    let cut = rows.len() as i64 == MAX_ROWS;
    let hour_bucket = hour_from.div_euclid(BUCKET_MINUTES) + 1;
    let mut hour = Tops::default();
    let mut day = Tops::default();
    for (bucket, outcome, error, client, audience, n) in &rows {
        let granted = outcome == Outcome::Granted.as_str();
        day.add(granted, error, client, audience, *n);
        if *bucket >= hour_bucket {
            hour.add(granted, error, client, audience, *n);
        }
    }
    Ok((
        hour.into_overview(
            per_minute
                .iter()
                .filter(|p| p.0 >= hour_from)
                .copied()
                .collect(),
            top,
            cut,
        ),
        day.into_overview(per_minute, top, cut),
    ))
}

#[derive(Default)]
struct Tops {
    errors: HashMap<String, i64>,
    clients: HashMap<String, i64>,
    audiences: HashMap<String, i64>,
}

impl Tops {
    fn add(&mut self, granted: bool, error: &str, client: &str, audience: &str, n: i64) {
        if granted {
            *self.audiences.entry(audience.to_string()).or_default() += n;
        } else {
            *self.errors.entry(error.to_string()).or_default() += n;
        }
        *self.clients.entry(client.to_string()).or_default() += n;
    }

    fn into_overview(self, per_minute: Vec<(i64, i64, i64)>, top: usize, cut: bool) -> Overview {
        let largest = |map: HashMap<String, i64>| {
            let mut list: Vec<(String, i64)> = map.into_iter().collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list.truncate(top);
            list
        };
        Overview {
            per_minute,
            top_errors: largest(self.errors),
            top_clients: largest(self.clients),
            top_audiences: largest(self.audiences),
            cut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(outcome: Outcome, error: Option<&str>, client: &str) -> ExchangeRecord {
        let mut r = ExchangeRecord::begin(0, "id".into(), None, None);
        r.outcome = outcome;
        r.error = error.map(str::to_string);
        r.client_id = Some(client.to_string());
        // Minute 25: the third ten-minute step.
        r.time_us = 1_500_000_000;
        r.requested_audiences = vec!["chosen-by-caller".into()];
        r.granted_audiences = match outcome {
            Outcome::Granted => vec!["inventory-api".into()],
            Outcome::Denied => vec![],
        };
        r
    }

    #[test]
    fn only_what_the_configuration_bounds_is_counted_by_name() {
        let granted = record(Outcome::Granted, None, "orders-svc");
        let granted = key(&granted);
        assert_eq!(
            (granted.bucket, granted.client_id, granted.audience),
            (2, "orders-svc", "inventory-api")
        );
        let refused_by_rules = record(Outcome::Denied, Some("invalid_target"), "orders-svc");
        let refused_by_rules = key(&refused_by_rules);
        assert_eq!(
            (refused_by_rules.client_id, refused_by_rules.audience),
            ("orders-svc", ""),
            "a caller's audience is not a key"
        );
        for unauthenticated in ["invalid_client", "invalid_request"] {
            let r = record(Outcome::Denied, Some(unauthenticated), "any-text-at-all");
            let k = key(&r);
            assert_eq!(k.client_id, "", "{unauthenticated}");
        }
    }
}
