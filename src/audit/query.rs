//! Querying the records (SPEC §6): the same filters on the CLI and the admin API, newest first,
//! paged by an opaque keyset cursor so pages never skip or repeat while records arrive.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::record::ExchangeRecord;
use super::row::{ExchangeRow, KindRow};
use super::subject_tokens::{self, Within};
use crate::clock;
use crate::store::DbConnection;
use crate::store::budget::tessera_budget;
use crate::store::schema::exchange_kinds::dsl as k;
use crate::store::schema::exchanges::dsl as x;

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub subject: Option<String>,
    /// The acting party of a delegation (the actor token's `sub`).
    pub actor: Option<String>,
    pub client: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub rule: Option<String>,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub jti: Option<String>,
    pub subject_jti: Option<String>,
    /// The records of tokens minted with this actor token (lineage; no CLI or API filter).
    pub actor_jti: Option<String>,
    /// The kind of token asked for (`access_token`, `txn_token`, …).
    pub token_type: Option<String>,
    /// The transaction of a Txn-Token.
    pub txn: Option<String>,
    /// `token-exchange` or `jwt-bearer`.
    pub grant_type: Option<String>,
    /// The kind of grant for another trust domain issued or presented.
    pub grant_kind: Option<String>,
    /// Microseconds since the epoch.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time_us: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(record: &ExchangeRecord) -> Self {
        Self {
            time_us: record.time_us,
            id: record.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.time_us, self.id))
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let bad = || "the cursor is not one this server returned".to_string();
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (time, id) = raw.split_once(':').ok_or_else(bad)?;
        Ok(Self {
            time_us: time.parse().map_err(|_| bad())?,
            id: id.to_string(),
        })
    }
}

/// `since`/`until` values: an RFC 3339 time, or a duration back from now such as `1h`.
pub fn parse_time_bound(text: &str) -> Result<i64, String> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1000) as i64);
    }
    let back = crate::config::parse_duration(text).map_err(|_| {
        format!("\"{text}\" is neither an RFC 3339 time nor a duration such as \"1h\"")
    })?;
    Ok(clock::now().before(back).micros())
}

impl Filters {
    pub fn validate(&self) -> Result<(), String> {
        match self.outcome.as_deref() {
            None | Some("granted") | Some("denied") => Ok(()),
            Some(other) => Err(format!("outcome \"{other}\" is neither granted nor denied")),
        }
    }
}

/// One page, newest first, starting after `cursor`.
pub fn page(
    conn: &mut DbConnection,
    filters: &Filters,
    limit: i64,
    cursor: Option<&Cursor>,
) -> QueryResult<Vec<ExchangeRecord>> {
    let mut q = x::exchanges.into_boxed();
    if let Some(v) = &filters.subject {
        q = q.filter(x::subject.eq(v));
    }
    if let Some(v) = &filters.actor {
        q = q.filter(x::actor.eq(v));
    }
    if let Some(v) = &filters.client {
        q = q.filter(x::client_id.eq(v));
    }
    if let Some(v) = &filters.issuer {
        q = q.filter(x::subject_issuer.eq(v));
    }
    if let Some(v) = &filters.audience {
        let pattern = list_element_pattern(v);
        q = q.filter(
            x::requested_audiences
                .like(pattern.clone())
                .escape('\\')
                .or(x::granted_audiences.like(pattern.clone()).escape('\\'))
                .or(x::requested_resources.like(pattern).escape('\\')),
        );
    }
    if let Some(v) = &filters.rule {
        q = q.filter(x::rule.eq(v));
    }
    if let Some(v) = &filters.outcome {
        q = q.filter(x::outcome.eq(v));
    }
    if let Some(v) = &filters.error {
        q = q.filter(x::error.eq(v));
    }
    if let Some(v) = &filters.jti {
        q = q.filter(x::token_jti.eq(v));
    }
    if let Some(v) = &filters.actor_jti {
        q = q.filter(x::actor_jti.eq(v));
    }
    match filters.token_type.as_deref() {
        None => {}
        // Records of access-token requests have no row of their own kind.
        Some(ExchangeRecord::ACCESS_TOKEN) => {
            let others = k::exchange_kinds
                .filter(k::token_type.ne(ExchangeRecord::ACCESS_TOKEN))
                .select(k::id);
            q = q.filter(x::id.ne_all(others));
        }
        Some(v) => {
            let of_type = k::exchange_kinds
                .filter(k::token_type.eq(v.to_string()))
                .select(k::id);
            q = q.filter(x::id.eq_any(of_type));
        }
    }
    if let Some(v) = &filters.txn {
        q = q.filter(x::id.eq_any(k::exchange_kinds.filter(k::txn.eq(v.clone())).select(k::id)));
    }
    match filters.grant_type.as_deref() {
        None => {}
        // Records of token exchanges have no grant type of their own.
        Some(ExchangeRecord::TOKEN_EXCHANGE) => {
            let others = k::exchange_kinds
                .filter(k::grant_type.is_not_null())
                .select(k::id);
            q = q.filter(x::id.ne_all(others));
        }
        Some(v) => {
            let of_type = k::exchange_kinds
                .filter(k::grant_type.eq(v.to_string()))
                .select(k::id);
            q = q.filter(x::id.eq_any(of_type));
        }
    }
    if let Some(v) = &filters.grant_kind {
        let of_kind = k::exchange_kinds
            .filter(k::grant_kind.eq(v.clone()))
            .select(k::id);
        q = q.filter(x::id.eq_any(of_kind));
    }
    if let Some(v) = &filters.subject_jti {
        let spans = subject_tokens::spans(conn, std::slice::from_ref(v), None)?;
        let Some(within) = Within::spans(&spans) else {
            return Ok(Vec::new());
        };
        q = within.apply(q);
    }
    if let Some(v) = filters.since {
        q = q.filter(x::time_us.ge(v));
    }
    if let Some(v) = filters.until {
        q = q.filter(x::time_us.le(v));
    }
    if let Some(c) = cursor {
        // The bound on `time_us` alone comes first, so the planner always walks the time index
        // from the cursor down. Written only as `time_us < t OR (time_us = t AND id < i)`,
        // SQLite may serve a small LIMIT by collecting every older record of the OR's two
        // branches and sorting them: seconds at millions of records.
        q = q.filter(
            x::time_us
                .le(c.time_us)
                .and(x::time_us.lt(c.time_us).or(x::id.lt(c.id.clone()))),
        );
    }
    // Checked on every row the query looks at: a query that looks at too many stops at its
    // budget (PostgreSQL's audit connections have a statement timeout instead).
    if let DbConnection::Sqlite(_) = conn {
        q = q.filter(tessera_budget());
    }
    q.order((x::time_us.desc(), x::id.desc()))
        .limit(limit)
        .select(ExchangeRow::as_select())
        .load::<ExchangeRow>(conn)
        .and_then(|rows| with_kinds(conn, rows))
}

/// The record `id`, if there is one.
pub fn one(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ExchangeRecord>> {
    let rows = x::exchanges
        .filter(x::id.eq(id))
        .select(ExchangeRow::as_select())
        .load::<ExchangeRow>(conn)?;
    Ok(with_kinds(conn, rows)?.pop())
}

/// The records of `rows`, each with what its row in `exchange_kinds` says, if it has one.
fn with_kinds(conn: &mut DbConnection, rows: Vec<ExchangeRow>) -> QueryResult<Vec<ExchangeRecord>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut kinds: std::collections::HashMap<String, KindRow> = k::exchange_kinds
        .filter(k::id.eq_any(&ids))
        .select(KindRow::as_select())
        .load::<KindRow>(conn)?
        .into_iter()
        .map(|kind| (kind.id.clone(), kind))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let kind = kinds.remove(&row.id);
            ExchangeRecord::from((row, kind))
        })
        .collect())
}

/// A page of at most `limit` records, read a few at a time and ended early once they take
/// `max_bytes` of JSON, so that an answer (and the memory it takes) stays bounded whatever the
/// records hold. Says whether more records may follow.
pub fn bounded_page(
    conn: &mut DbConnection,
    filters: &Filters,
    limit: i64,
    mut cursor: Option<Cursor>,
    max_bytes: usize,
) -> QueryResult<(Vec<ExchangeRecord>, bool)> {
    const READ_AT_ONCE: i64 = 50;
    let mut items: Vec<ExchangeRecord> = Vec::new();
    let mut bytes = 0;
    loop {
        let want = READ_AT_ONCE.min(limit + 1 - items.len() as i64);
        let chunk = page(conn, filters, want, cursor.as_ref())?;
        let read = chunk.len() as i64;
        for record in chunk {
            bytes += serde_json::to_vec(&record).map_or(0, |j| j.len());
            items.push(record);
            if items.len() as i64 > limit {
                return Ok((items, true));
            }
            if bytes >= max_bytes {
                return Ok((items, true));
            }
        }
        if read < want {
            return Ok((items, false));
        }
        cursor = items.last().map(Cursor::after);
    }
}

/// A LIKE pattern matching one element of a stored JSON list exactly: the element's JSON text,
/// quotes included, with LIKE's own wildcards escaped.
fn list_element_pattern(value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let escaped = json
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor {
            time_us: 42,
            id: "01ABC".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        assert!(Cursor::decode("!!").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x:y")).is_err());
    }

    #[test]
    fn time_bounds_take_rfc3339_or_a_duration_back() {
        assert_eq!(parse_time_bound("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(parse_time_bound("1970-01-01T01:00:01+01:00"), Ok(1_000_000));
        let an_hour_ago = parse_time_bound("1h").expect("duration");
        assert!((clock::now().micros() - an_hour_ago - 3_600_000_000).abs() < 5_000_000);
        assert!(parse_time_bound("yesterday").is_err());
    }

    #[test]
    fn audience_patterns_escape_like_wildcards() {
        assert_eq!(list_element_pattern("a_b%"), "%\"a\\_b\\%\"%");
    }
}
