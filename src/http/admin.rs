//! The admin API (SPEC §3, §6), served only on the admin listener: the audit query and
//! revocation, behind `Authorization: Bearer <admin token>` checked against its SHA-256 in
//! constant time.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::ExchangeRecord;
use crate::audit::query::{self, Cursor, Filters, parse_time_bound};
use crate::audit::revocation::{self, Target};
use crate::error::{ErrorCode, OAuthError};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// A page stops early, with a cursor for the rest, once its records take this much JSON.
pub(crate) const MAX_PAGE_BYTES: usize = 1024 * 1024;

/// An audit query that failed: over its time budget (the auditor's to narrow), or the store's.
pub(crate) fn audit_query_failed(
    e: crate::store::Error,
    budget: std::time::Duration,
) -> OAuthError {
    if let crate::store::Error::Query(query) = &e
        && crate::store::budget::exceeded(&query.to_string())
    {
        OAuthError::invalid_request(format!(
            "the query ran past its time budget of {}: narrow it with since and until, or with \
             a subject, client, jti, subject_jti or txn filter",
            crate::config::duration::format(budget)
        ))
    } else if let crate::store::Error::AuditBusy = e {
        OAuthError::temporarily_unavailable(e.to_string())
    } else {
        super::store_unavailable(e)
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/admin/exchanges", web::get().to(exchanges))
        .route("/admin/revoke", web::post().to(revoke))
        .route("/admin/issuers", web::get().to(issuers));
}

/// Each issuer's key status with the last fetch error in full: what `/readyz`, public, does not
/// show (it could carry what a remote party sent).
async fn issuers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = authorize(&req, &state) {
        return e.error_response();
    }
    let policy = state.policy.load();
    let mut list: Vec<_> = policy
        .issuers
        .iter()
        .map(|i| {
            json!({
                "id": i.config.id,
                "issuer": i.config.issuer,
                "ready": i.config.keys == crate::config::KeySource::None || i.is_ready(),
                "keys": i.keys().map_or(0, |k| k.keys.len()),
                "last_error": i.last_error(),
            })
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    HttpResponse::Ok().json(json!({ "issuers": list }))
}

/// Prometheus text; no token: the admin listener is private (SPEC §3).
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let policy = state.policy.load();
    let key_ages: Vec<(String, Option<std::time::SystemTime>)> = policy
        .issuers
        .iter()
        .chain(policy.client_keys.iter())
        .map(|i| (i.config.id.clone(), i.keys().map(|k| k.fetched_at)))
        .collect();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&key_ages))
}

fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), OAuthError> {
    let denied = |why: &str| OAuthError::new(ErrorCode::InvalidToken, why);
    let expected = state
        .admin_token_sha256
        .ok_or_else(|| denied("the admin API is not configured"))?;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| denied("an admin bearer token is required"))?;
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or_else(|| denied("use Authorization: Bearer <admin token>"))?;
    let presented = digest(&SHA256, token.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_ref(), &expected)
        .map_err(|_| denied("the admin token is not valid"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangesQuery {
    subject: Option<String>,
    client: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    rule: Option<String>,
    outcome: Option<String>,
    error: Option<String>,
    jti: Option<String>,
    subject_jti: Option<String>,
    actor: Option<String>,
    token_type: Option<String>,
    txn: Option<String>,
    grant_type: Option<String>,
    grant_kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The audit query of a query string (filters, `limit`, `cursor`), as the admin API takes it.
pub(crate) fn parse_exchanges_query(
    query: &str,
) -> Result<(Filters, i64, Option<Cursor>), OAuthError> {
    ExchangesQuery::parse(query)
}

impl ExchangesQuery {
    fn parse(query: &str) -> Result<(Filters, i64, Option<Cursor>), OAuthError> {
        let q: ExchangesQuery = serde_urlencoded::from_str(query)
            .map_err(|e| OAuthError::invalid_request(format!("bad query: {e}")))?;
        let bound = |v: Option<String>, name: &str| {
            v.map(|t| parse_time_bound(&t))
                .transpose()
                .map_err(|e| OAuthError::invalid_request(format!("{name}: {e}")))
        };
        let limit = match q.limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "limit must be a number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let cursor = q
            .cursor
            .map(|c| Cursor::decode(&c))
            .transpose()
            .map_err(OAuthError::invalid_request)?;
        let filters = Filters {
            since: bound(q.since, "since")?,
            until: bound(q.until, "until")?,
            subject: q.subject,
            client: q.client,
            issuer: q.issuer,
            audience: q.audience,
            rule: q.rule,
            outcome: q.outcome,
            error: q.error,
            jti: q.jti,
            subject_jti: q.subject_jti,
            actor_jti: None,
            actor: q.actor,
            token_type: q.token_type,
            txn: q.txn,
            grant_type: q.grant_type,
            grant_kind: q.grant_kind,
        };
        filters.validate().map_err(OAuthError::invalid_request)?;
        Ok((filters, limit, cursor))
    }
}

async fn exchanges(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let answer = async {
        authorize(&req, &state)?;
        let (filters, limit, cursor) = ExchangesQuery::parse(req.query_string())?;
        let (mut items, more) = state
            .store
            .audit_read(move |c| query::bounded_page(c, &filters, limit, cursor, MAX_PAGE_BYTES))
            .await
            .map_err(|e| audit_query_failed(e, state.store.audit_budget()))?;
        let next_cursor = if more {
            items.truncate(limit as usize);
            items.last().map(|last| Cursor::after(last).encode())
        } else {
            None
        };
        Ok::<_, OAuthError>(Page { items, next_cursor })
    };
    match answer.await {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(e) => e.error_response(),
    }
}

/// Records keep the field order of SPEC §6.
#[derive(Serialize)]
struct Page {
    items: Vec<ExchangeRecord>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    jti: Option<String>,
    subject_jti: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
}

async fn revoke(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let answer = async {
        authorize(&req, &state)?;
        let body: RevokeBody = serde_json::from_slice(&body).map_err(|e| {
            OAuthError::invalid_request(format!("the body is not a revocation request: {e}"))
        })?;
        let policy = state.policy.load();
        let target = match body {
            RevokeBody {
                jti: Some(j),
                subject_jti: None,
                issuer: None,
                subject: None,
            } => Target::Jti(j),
            RevokeBody {
                jti: None,
                subject_jti: Some(s),
                issuer: None,
                subject: None,
            } => Target::SubjectJti(s),
            RevokeBody {
                jti: None,
                subject_jti: None,
                issuer: Some(i),
                subject: Some(subject),
            } => {
                // The issuer may be named by id or by its `iss` URL.
                let issuer = policy.issuer_id(&i).ok_or_else(|| {
                    OAuthError::invalid_request(format!(
                        "\"{}\" is neither the id nor the issuer URL of a configured issuer",
                        i.chars().take(256).collect::<String>()
                    ))
                })?;
                Target::Subject { issuer, subject }
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "send exactly one of {\"jti\"}, {\"subject_jti\"} or {\"issuer\", \"subject\"}",
                ));
            }
        };
        let local = policy.local_issuers.clone();
        let now = state.clock.now().secs();
        let when = match &target {
            Target::Subject { issuer, .. } => policy.revocation_bounds(Some(issuer), now),
            _ => policy.revocation_bounds(None, now),
        };
        let revoked = state
            .store
            .blocking_write(move |c| {
                revocation::revoke(c, &target, &local, when).map_err(|e| e.to_string())
            })
            .await
            .map_err(super::store_unavailable)?;
        tracing::info!(revoked, "admin revocation");
        Ok::<_, OAuthError>(json!({ "revoked": revoked }))
    };
    match answer.await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => e.error_response(),
    }
}
