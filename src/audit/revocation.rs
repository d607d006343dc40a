//! Revocation (SPEC §3, §6): a minted token is revoked by marking its record, the one update a
//! record ever receives. Revoking a token also revokes every token minted from it through this
//! server as issuer (its lineage), however many hops down.

use std::collections::HashSet;

use diesel::prelude::*;

use super::subject_tokens::{self, Within};
use crate::store::DbConnection;
use crate::store::schema::exchanges::dsl as x;

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One minted token, by its `jti`.
    Jti(String),
    /// Every token minted from this subject token.
    SubjectJti(String),
    /// Every token minted for this subject of this issuer (by id).
    Subject { issuer: String, subject: String },
}

/// SQLite allows a limited number of bound parameters per statement.
const CHUNK: usize = 500;

/// Marks the target tokens and their lineage revoked at `now` (seconds); returns how many
/// minted tokens are revoked by it (already revoked ones included).
/// `local_issuers` are the ids of the issuer entries that stand for this server.
pub fn revoke(
    conn: &mut DbConnection,
    target: &Target,
    local_issuers: &[String],
    now: i64,
) -> QueryResult<usize> {
    conn.transaction(|c| {
        let roots: Vec<String> = match target {
            Target::Jti(jti) => x::exchanges
                .filter(x::token_jti.eq(jti))
                .select(x::token_jti)
                .load::<Option<String>>(c)?,
            Target::SubjectJti(s) => minted_from(c, std::slice::from_ref(s), None)?,
            Target::Subject { issuer, subject } => x::exchanges
                .filter(x::subject_issuer.eq(issuer))
                .filter(x::subject.eq(subject))
                .select(x::token_jti)
                .load(c)?,
        }
        .into_iter()
        .flatten()
        .collect();
        let all = with_lineage(c, roots, local_issuers)?;
        let all: Vec<String> = all.into_iter().collect();
        for chunk in all.chunks(CHUNK) {
            diesel::update(
                x::exchanges
                    .filter(x::token_jti.eq_any(chunk))
                    .filter(x::revoked_at.is_null()),
            )
            .set(x::revoked_at.eq(now))
            .execute(c)?;
        }
        Ok(all.len())
    })
}

/// The tokens and, breadth first, every token minted with one of them as subject token.
fn with_lineage(
    conn: &mut DbConnection,
    roots: Vec<String>,
    local_issuers: &[String],
) -> QueryResult<HashSet<String>> {
    let mut all: HashSet<String> = roots.iter().cloned().collect();
    let mut frontier = roots;
    while !frontier.is_empty() && !local_issuers.is_empty() {
        let mut next = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            let children = minted_from(conn, chunk, Some(local_issuers))?;
            next.extend(
                children
                    .into_iter()
                    .flatten()
                    .filter(|j| all.insert(j.clone())),
            );
        }
        frontier = next;
    }
    Ok(all)
}

/// The `jti`s of the tokens minted from these subject tokens (of `issuers` only, when given).
fn minted_from(
    conn: &mut DbConnection,
    subject_jtis: &[String],
    issuers: Option<&[String]>,
) -> QueryResult<Vec<Option<String>>> {
    let spans = subject_tokens::spans(conn, subject_jtis, issuers)?;
    let Some(within) = Within::spans(&spans) else {
        return Ok(Vec::new());
    };
    within
        .apply(x::exchanges.into_boxed())
        .select(x::token_jti)
        .load(conn)
}

/// The revocation state of a minted token: `None` when no record of it exists.
pub fn revoked_at(conn: &mut DbConnection, jti: &str) -> QueryResult<Option<Option<i64>>> {
    x::exchanges
        .filter(x::token_jti.eq(jti))
        .select(x::revoked_at)
        .first(conn)
        .optional()
}
