//! Records to and from database rows (lists are stored as JSON arrays).

use diesel::prelude::*;

use super::record::{ExchangeRecord, Outcome};
use crate::store::schema::{exchange_kinds, exchanges};

#[derive(Debug, Insertable, Queryable, Selectable)]
#[diesel(table_name = exchanges)]
pub struct ExchangeRow {
    pub id: String,
    pub time_us: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub reason: String,
    pub client_id: Option<String>,
    pub subject_issuer: Option<String>,
    pub subject: Option<String>,
    pub subject_jti: Option<String>,
    pub actor_issuer: Option<String>,
    pub actor: Option<String>,
    pub requested_audiences: String,
    pub requested_resources: String,
    pub requested_scopes: String,
    pub granted_audiences: String,
    pub granted_scopes: String,
    pub rule: Option<String>,
    pub token_jti: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub duration_us: i64,
    pub chain: String,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub subject_until_us: Option<i64>,
    pub actor_jti: Option<String>,
    pub count: i64,
    pub truncated: bool,
}

/// What a record says beyond an access-token exchange (the kind of token asked for, the
/// transaction), stored beside it only when it says something.
#[derive(Debug, Insertable, Queryable, Selectable)]
#[diesel(table_name = exchange_kinds)]
pub struct KindRow {
    pub id: String,
    pub token_type: String,
    pub txn: Option<String>,
    pub grant_type: Option<String>,
    pub grant_kind: Option<String>,
}

impl KindRow {
    /// The row a record needs, if any.
    pub fn of(r: &ExchangeRecord) -> Option<Self> {
        let grant_type =
            (r.grant_type != ExchangeRecord::TOKEN_EXCHANGE).then(|| r.grant_type.clone());
        (r.token_type != ExchangeRecord::ACCESS_TOKEN
            || r.txn.is_some()
            || grant_type.is_some()
            || r.grant_kind.is_some())
        .then(|| Self {
            id: r.id.clone(),
            token_type: r.token_type.clone(),
            txn: r.txn.clone(),
            grant_type,
            grant_kind: r.grant_kind.clone(),
        })
    }
}

/// `$insert(&row)`: a single-row INSERT of a `$row` into SQLite, which diesel prepares once
/// and finds again by its type. A derived `Insertable` has no static query id, so diesel
/// rebuilds its SQL, column by column, to look its statement up for every row: about a sixth of
/// the audit writer's time. Each field is bound with its column's type from the schema, and a
/// field left out of the list does not compile.
macro_rules! sqlite_insert {
    ($insert:ident, $row:ident, $table:ident, $first:ident $(, $field:ident)* $(,)?) => {
        pub struct $insert<'a>(pub &'a $row);

        impl diesel::query_builder::QueryId for $insert<'_> {
            type QueryId = $insert<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for $insert<'_> {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> QueryResult<()> {
                let $row { $first, $($field),* } = self.0;
                out.push_sql(concat!("INSERT INTO ", stringify!($table), " ("));
                out.push_identifier(<$table::$first as diesel::Column>::NAME)?;
                $(
                    out.push_sql(", ");
                    out.push_identifier(<$table::$field as diesel::Column>::NAME)?;
                )*
                out.push_sql(") VALUES (");
                out.push_bind_param::<<$table::$first as diesel::Expression>::SqlType, _>($first)?;
                $(
                    out.push_sql(", ");
                    out.push_bind_param::<<$table::$field as diesel::Expression>::SqlType, _>(
                        $field,
                    )?;
                )*
                out.push_sql(")");
                Ok(())
            }
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $insert<'_> {}
    };
}

sqlite_insert!(
    InsertExchange,
    ExchangeRow,
    exchanges,
    id,
    time_us,
    outcome,
    error,
    reason,
    client_id,
    subject_issuer,
    subject,
    subject_jti,
    actor_issuer,
    actor,
    requested_audiences,
    requested_resources,
    requested_scopes,
    granted_audiences,
    granted_scopes,
    rule,
    token_jti,
    expires_at,
    revoked_at,
    remote_addr,
    user_agent,
    request_id,
    duration_us,
    chain,
    seq,
    prev_hash,
    hash,
    subject_until_us,
    actor_jti,
    count,
    truncated,
);

sqlite_insert!(
    InsertKind,
    KindRow,
    exchange_kinds,
    id,
    token_type,
    txn,
    grant_type,
    grant_kind
);

fn list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn unlist(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl From<&ExchangeRecord> for ExchangeRow {
    fn from(r: &ExchangeRecord) -> Self {
        Self {
            id: r.id.clone(),
            time_us: r.time_us,
            outcome: r.outcome.as_str().into(),
            error: r.error.clone(),
            reason: r.reason.clone(),
            client_id: r.client_id.clone(),
            subject_issuer: r.subject_issuer.clone(),
            subject: r.subject.clone(),
            subject_jti: r.subject_jti.clone(),
            actor_issuer: r.actor_issuer.clone(),
            actor: r.actor.clone(),
            requested_audiences: list(&r.requested_audiences),
            requested_resources: list(&r.requested_resources),
            requested_scopes: list(&r.requested_scopes),
            granted_audiences: list(&r.granted_audiences),
            granted_scopes: list(&r.granted_scopes),
            rule: r.rule.clone(),
            token_jti: r.token_jti.clone(),
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            remote_addr: r.remote_addr.clone(),
            user_agent: r.user_agent.clone(),
            request_id: r.request_id.clone(),
            duration_us: r.duration_us,
            chain: r.chain.clone(),
            seq: r.seq,
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
            subject_until_us: r.subject_until_us,
            actor_jti: r.actor_jti.clone(),
            count: r.count,
            truncated: r.truncated,
        }
    }
}

impl From<(ExchangeRow, Option<KindRow>)> for ExchangeRecord {
    fn from((r, kind): (ExchangeRow, Option<KindRow>)) -> Self {
        let (token_type, txn, grant_type, grant_kind) = kind.map_or_else(
            || (ExchangeRecord::ACCESS_TOKEN.to_string(), None, None, None),
            |k| (k.token_type, k.txn, k.grant_type, k.grant_kind),
        );
        Self {
            id: r.id,
            time_us: r.time_us,
            outcome: if r.outcome == "granted" {
                Outcome::Granted
            } else {
                Outcome::Denied
            },
            error: r.error,
            reason: r.reason,
            client_id: r.client_id,
            subject_issuer: r.subject_issuer,
            subject: r.subject,
            subject_jti: r.subject_jti,
            actor_issuer: r.actor_issuer,
            actor: r.actor,
            requested_audiences: unlist(&r.requested_audiences),
            requested_resources: unlist(&r.requested_resources),
            requested_scopes: unlist(&r.requested_scopes),
            granted_audiences: unlist(&r.granted_audiences),
            granted_scopes: unlist(&r.granted_scopes),
            rule: r.rule,
            token_jti: r.token_jti,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            remote_addr: r.remote_addr,
            user_agent: r.user_agent,
            request_id: r.request_id,
            duration_us: r.duration_us,
            chain: r.chain,
            seq: r.seq,
            prev_hash: r.prev_hash,
            hash: r.hash,
            subject_until_us: r.subject_until_us,
            actor_jti: r.actor_jti,
            count: r.count,
            truncated: r.truncated,
            token_type,
            txn,
            grant_type: grant_type.unwrap_or_else(|| ExchangeRecord::TOKEN_EXCHANGE.into()),
            grant_kind,
            provenance: None,
            authenticated: false,
        }
    }
}
