//! Revocation (SPEC §3, §6): a minted token is revoked by marking its record, the one update a
//! record ever receives. Revoking a token also revokes every token minted from it through this
//! server as issuer, as subject or as actor token (its lineage), however many hops down. What a
//! revocation names upstream (a subject token, a subject) stays revoked: a row in
//! `revocations` refuses it for as long as it could otherwise be accepted.
//!
//! Revocations and audit commits are ordered by one lock, so that a grant is refused inside its
//! own commit when a token it comes from is revoked (`settle`), and a revocation sees every
//! grant committed before it: on SQLite the database's write lock, taken by each transaction's
//! first statement (a write, so SQLite waits for the lock instead of failing on a stale read);
//! on PostgreSQL a transaction-scoped advisory lock, shared by the audit writers of every
//! instance and exclusive for a revocation. A grant is therefore either committed before the
//! revocation, which then finds and marks it, or refused by it.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use super::provenance::{Presented, Provenance};
use super::record::{ExchangeRecord, Outcome};
use super::subject_tokens::{self, Within};
use crate::clock::{UnixTime, format_secs};
use crate::store::DbConnection;
use crate::store::schema::exchanges::dsl as x;
use crate::store::schema::{audit_chains, revocations as rv};

/// The advisory lock (PostgreSQL) that orders revocations against audit commits.
const REVOCATION_LOCK: i64 = 0x0072_6576_6f6b_6573; // "revokes"

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

/// A revocation's bounds in time, from the configuration (all in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub now: i64,
    /// What the target names upstream stays revoked until then: when no token it could refuse
    /// would be accepted any more.
    pub sticky_until: i64,
    /// A minted token that expired before this is accepted nowhere (not even with leeway):
    /// marking it changes nothing, so lineage is not followed through it.
    pub live_after: i64,
    /// Tokens minted before this have all expired before `live_after`: the records searched
    /// by subject start here.
    pub minted_since: i64,
    /// Walk the lineage of tokens revoked before as well.
    pub walk_revoked: bool,
}

/// Marks the target tokens and their lineage revoked at `when.now`, and keeps what the target
/// names upstream revoked (sticky). Returns how many minted tokens are revoked by it (already
/// revoked ones included). `local_issuers` are the ids of the issuer entries that stand for
/// this server.
pub fn revoke(
    conn: &mut DbConnection,
    target: &Target,
    local_issuers: &[String],
    when: When,
) -> QueryResult<usize> {
    conn.transaction(|c| {
        lock_for_revocation(c, when.now)?;
        let roots: Vec<String> = match target {
            // Its lineage is walked even when its own record was pruned already.
            Target::Jti(jti) => vec![Some(jti.clone())],
            Target::SubjectJti(s) => {
                let spans = subject_tokens::spans(c, std::slice::from_ref(s), None)?;
                // Kept at least as long as the token's own records say it is accepted.
                let until = spans
                    .iter()
                    .map(|span| UnixTime::from_micros(span.until_us).secs() + 1)
                    .fold(when.sticky_until, i64::max);
                remember(c, "subject_jti", "", s, when.now, until)?;
                // The token itself when this server minted it, what was minted from it as
                // subject token, and what was minted with it as actor token.
                let mut roots: Vec<Option<String>> = x::exchanges
                    .filter(x::token_jti.eq(s))
                    .select(x::token_jti)
                    .load(c)?;
                roots.extend(minted_from(c, std::slice::from_ref(s), when)?);
                roots.extend(minted_with_actor(c, std::slice::from_ref(s), when)?);
                roots
            }
            Target::Subject { issuer, subject } => {
                remember(c, "subject", issuer, subject, when.now, when.sticky_until)?;
                of_subject(c, issuer, subject, local_issuers.contains(issuer), when)?
            }
        }
        .into_iter()
        .flatten()
        .collect();
        // A root revoked before had its lineage revoked then, and everything minted from it
        // since was refused at its commit: unless told to walk again (an administrator may, after
        // an upgrade from a version without that refusal), only the others are walked, so a
        // client revoking its token again and again costs one lookup each time.
        let known = records_of(c, &roots)?;
        let fresh: Vec<String> = roots
            .iter()
            .filter(|j| when.walk_revoked || matches!(known.get(*j), Some(None) | None))
            .cloned()
            .collect();
        let mut all = with_lineage(c, fresh, when)?;
        all.extend(roots.iter().cloned());
        // Counted: the minted tokens that have a record (a root may have none).
        let root_set: HashSet<&String> = roots.iter().collect();
        let counted = all
            .iter()
            .filter(|j| !root_set.contains(j) || known.contains_key(*j))
            .count();
        let all: Vec<String> = all.into_iter().collect();
        for chunk in all.chunks(CHUNK) {
            diesel::update(
                x::exchanges
                    .filter(x::token_jti.eq_any(chunk))
                    .filter(x::revoked_at.is_null()),
            )
            .set(x::revoked_at.eq(when.now))
            .execute(c)?;
        }
        Ok(counted)
    })
}

/// The live tokens minted from a subject's tokens, as subject or as actor: of the issuer's
/// tokens, or, when the issuer is this server, every token it minted for that subject.
fn of_subject(
    conn: &mut DbConnection,
    issuer: &str,
    subject: &str,
    local: bool,
    when: When,
) -> QueryResult<Vec<Option<String>>> {
    let since_us = UnixTime::from_secs(when.minted_since).micros();
    let mut as_subject = x::exchanges
        .filter(x::subject.eq(subject))
        .filter(x::time_us.ge(since_us))
        .filter(x::expires_at.ge(when.live_after))
        .select(x::token_jti)
        .into_boxed();
    if !local {
        as_subject = as_subject.filter(x::subject_issuer.eq(issuer));
    }
    let mut roots = as_subject.load(conn)?;
    roots.extend(
        x::exchanges
            .filter(x::actor.eq(subject))
            .filter(x::actor_issuer.eq(issuer))
            .filter(x::time_us.ge(since_us))
            .filter(x::expires_at.ge(when.live_after))
            .select(x::token_jti)
            .load::<Option<String>>(conn)?,
    );
    Ok(roots)
}

/// The revocation's first statements: the lock that orders it against audit commits, then a
/// write (expired sticky revocations go), which on SQLite takes the database's write lock
/// before anything is read.
fn lock_for_revocation(conn: &mut DbConnection, now: i64) -> QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({REVOCATION_LOCK})"))
            .execute(pg)?;
    }
    diesel::delete(rv::table.filter(rv::until_s.lt(now))).execute(conn)?;
    Ok(())
}

/// The audit commit's first statements (see the module's doc): on PostgreSQL the shared side of
/// the revocation lock; on SQLite a write that changes nothing (the chain's head rewritten as it
/// is), taking the database's write lock before the batch's grants are settled.
pub fn lock_for_commit(conn: &mut DbConnection, chain: &str) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(format!(
            "SELECT pg_advisory_xact_lock_shared({REVOCATION_LOCK})"
        ))
        .execute(pg)
        .map(|_| ()),
        DbConnection::Sqlite(_) => diesel::update(audit_chains::table.find(chain))
            .set(audit_chains::head_seq.eq(audit_chains::head_seq))
            .execute(conn)
            .map(|_| ()),
    }
}

/// Keeps an upstream revocation; revoking the same thing again moves it to the later time.
fn remember(
    conn: &mut DbConnection,
    kind: &str,
    issuer: &str,
    value: &str,
    now: i64,
    until: i64,
) -> QueryResult<()> {
    let key = rv::kind
        .eq(kind)
        .and(rv::issuer.eq(issuer))
        .and(rv::value.eq(value));
    diesel::delete(rv::table.filter(key)).execute(conn)?;
    diesel::insert_into(rv::table)
        .values((
            rv::kind.eq(kind),
            rv::issuer.eq(issuer),
            rv::value.eq(value),
            rv::revoked_at.eq(now),
            rv::until_s.eq(until),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Inside the audit commit, after `lock_for_commit`: each grant of the batch that comes from a
/// revoked token is turned into the denial it must be (nothing minted is recorded, the client
/// gets the error). Two queries for the whole batch, whatever its size: the records of this
/// server's own tokens among those presented, and the sticky revocations naming any of them.
/// Returns, for each record, the reason when it was refused.
pub fn settle(
    conn: &mut DbConnection,
    records: &mut [&mut ExchangeRecord],
) -> QueryResult<Vec<Option<String>>> {
    let provenances: Vec<Option<Box<Provenance>>> = records
        .iter_mut()
        .map(|r| {
            let p = r.provenance.take();
            p.filter(|_| r.outcome == Outcome::Granted)
        })
        .collect();
    let presented = || {
        provenances.iter().flatten().flat_map(|p| {
            std::iter::once(&p.subject)
                .chain(p.actor.as_ref())
                .chain(p.minted.iter())
        })
    };
    let local: Vec<String> = presented()
        .filter(|t| t.local)
        .filter_map(|t| t.jti.clone())
        .collect();
    let values: Vec<String> = presented()
        .flat_map(|t| t.jti.iter().chain(std::iter::once(&t.sub)))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let known = Known {
        records: records_of(conn, &local)?,
        sticky: sticky_naming(conn, &values)?,
    };
    let mut refused = Vec::with_capacity(records.len());
    for (record, provenance) in records.iter_mut().zip(&provenances) {
        let why = provenance.as_ref().and_then(|p| {
            known
                .refusal(&p.subject, "subject")
                .or_else(|| p.actor.as_ref().and_then(|a| known.refusal(a, "actor")))
                .or_else(|| p.minted.iter().find_map(|m| known.refusal(m, "subject")))
        });
        if let Some(why) = &why {
            record.outcome = Outcome::Denied;
            // A revoked grant taken with jwt-bearer is a fault of the grant (RFC 7523 §3.1).
            record.error = Some(refusal_code(&record.grant_type).as_str().into());
            record.reason.clone_from(why);
            record.token_jti = None;
            record.expires_at = None;
            record.granted_audiences.clear();
            record.granted_scopes.clear();
            // A first Txn-Token refused here began no transaction; a replacement's is the
            // replaced token's, which stays.
            let replacement = provenance
                .as_ref()
                .is_some_and(|p| p.subject.issuer_id == crate::oauth::TokenType::TxnToken.name());
            if !replacement {
                record.txn = None;
            }
        }
        refused.push(why);
    }
    Ok(refused)
}

/// What the store says of the tokens a batch presents.
struct Known {
    /// This server's own tokens: `jti` → `revoked_at`; a missing one has no record.
    records: HashMap<String, Option<i64>>,
    /// Sticky revocations: (kind, issuer, value) → `revoked_at`.
    sticky: HashMap<(String, String, String), i64>,
}

impl Known {
    /// Why a grant from this token must be refused, if it must. `role`: "subject" or "actor".
    fn refusal(&self, t: &Presented, role: &str) -> Option<String> {
        if t.local {
            let Some(jti) = &t.jti else {
                return Some(format!("the {role} token has no jti"));
            };
            match self.records.get(jti) {
                Some(None) => {}
                Some(Some(_)) => return Some(format!("the {role} token has been revoked")),
                None => {
                    return Some(format!(
                        "the {role} token is not one this server has a record of"
                    ));
                }
            }
        }
        // Usually nothing is revoked upstream: no key is built then (the writer's serial path).
        if self.sticky.is_empty() {
            return None;
        }
        let key = |kind: &str, issuer: &str, value: &str| {
            (kind.to_string(), issuer.to_string(), value.to_string())
        };
        if let Some(jti) = &t.jti
            && self.sticky.contains_key(&key("subject_jti", "", jti))
        {
            return Some(format!("the {role} token has been revoked"));
        }
        let at = *self.sticky.get(&key("subject", &t.issuer_id, &t.sub))?;
        // A token without `iat` cannot show that it was issued after the revocation.
        t.iat.is_none_or(|iat| iat <= at).then(|| {
            format!(
                "the {role}'s tokens issued at or before {} have been revoked; \
                 present one issued since",
                format_secs(at)
            )
        })
    }
}

/// `revoked_at` of the records of these minted tokens.
fn records_of(
    conn: &mut DbConnection,
    jtis: &[String],
) -> QueryResult<HashMap<String, Option<i64>>> {
    let mut found = HashMap::new();
    for chunk in jtis.chunks(CHUNK) {
        let rows: Vec<(Option<String>, Option<i64>)> = x::exchanges
            .filter(x::token_jti.eq_any(chunk))
            .select((x::token_jti, x::revoked_at))
            .load(conn)?;
        found.extend(rows.into_iter().filter_map(|(j, at)| Some((j?, at))));
    }
    Ok(found)
}

/// The sticky revocations whose value is one of these.
fn sticky_naming(
    conn: &mut DbConnection,
    values: &[String],
) -> QueryResult<HashMap<(String, String, String), i64>> {
    let mut found = HashMap::new();
    for chunk in values.chunks(CHUNK) {
        let rows: Vec<(String, String, String, i64)> = rv::table
            .filter(rv::value.eq_any(chunk))
            .select((rv::kind, rv::issuer, rv::value, rv::revoked_at))
            .load(conn)?;
        found.extend(rows.into_iter().map(|(k, i, v, at)| ((k, i, v), at)));
    }
    Ok(found)
}

/// The tokens and, breadth first, every live token minted with one of them as subject or as
/// actor token. Followed whatever issuer entry the records name: the entries that stand for this
/// server may have been renamed since, and a foreign token sharing a minted token's jti (which
/// holds 80 random bits) could only make a revocation wider, never narrower.
fn with_lineage(
    conn: &mut DbConnection,
    roots: Vec<String>,
    when: When,
) -> QueryResult<HashSet<String>> {
    let mut all: HashSet<String> = roots.iter().cloned().collect();
    let mut frontier = roots;
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for chunk in frontier.chunks(CHUNK) {
            let mut children = minted_from(conn, chunk, when)?;
            children.extend(minted_with_actor(conn, chunk, when)?);
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

/// The `jti`s of the live tokens minted from these subject tokens.
fn minted_from(
    conn: &mut DbConnection,
    subject_jtis: &[String],
    when: When,
) -> QueryResult<Vec<Option<String>>> {
    let spans = subject_tokens::spans(conn, subject_jtis, None)?;
    let Some(within) = Within::spans(&spans) else {
        return Ok(Vec::new());
    };
    within
        .apply(x::exchanges.into_boxed())
        .filter(x::expires_at.ge(when.live_after))
        .select(x::token_jti)
        .load(conn)
}

/// The `jti`s of the live tokens minted with one of these as actor token.
fn minted_with_actor(
    conn: &mut DbConnection,
    actor_jtis: &[String],
    when: When,
) -> QueryResult<Vec<Option<String>>> {
    x::exchanges
        .filter(x::actor_jti.eq_any(actor_jtis))
        .filter(x::expires_at.ge(when.live_after))
        .select(x::token_jti)
        .load(conn)
}

/// Forgets upstream revocations that can no longer refuse anything (before `now`, seconds).
pub fn prune(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(rv::table.filter(rv::until_s.lt(now))).execute(conn)
}

/// Whether a token this server minted is still good as far as revocation goes: its record
/// exists and is not revoked, and no sticky revocation covers it (its subject revoked at this
/// server, as any of `local_issuers`, at or after its `iat`).
pub fn minted_is_live(
    conn: &mut DbConnection,
    jti: &str,
    sub: &str,
    iat: Option<i64>,
    local_issuers: &[String],
) -> QueryResult<bool> {
    let values = [jti.to_string(), sub.to_string()];
    let known = Known {
        records: records_of(conn, &values[..1])?,
        sticky: sticky_naming(conn, &values)?,
    };
    let presented = |issuer_id: &str, local: bool| Presented {
        issuer_id: issuer_id.to_string(),
        sub: sub.to_string(),
        jti: Some(jti.to_string()),
        iat,
        local,
    };
    if known.refusal(&presented("", true), "subject").is_some() {
        return Ok(false);
    }
    Ok(local_issuers
        .iter()
        .all(|id| known.refusal(&presented(id, false), "subject").is_none()))
}

/// The error a request refused for a revoked token it comes from gets: `invalid_grant` for a
/// grant presented with `jwt-bearer`, `invalid_request` for a token exchange's subject or actor.
pub fn refusal_code(grant_type: &str) -> crate::error::ErrorCode {
    if grant_type == crate::grants::GrantType::JwtBearer.name() {
        crate::error::ErrorCode::InvalidGrant
    } else {
        crate::error::ErrorCode::InvalidRequest
    }
}
