//! `POST /token`: the exchange (RFC 8693). The handler orchestrates; each step lives with its
//! concern: parse → authenticate → validate → decide → mint → record → respond.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::audit::record::MAX_VALUE_CHARS;
use crate::audit::revocation::{Presented, Provenance};
use crate::audit::writer::Committed;
use crate::audit::{ExchangeRecord, Outcome};
use crate::config::RuleConfig;
use crate::error::OAuthError;
use crate::http::request_id;
use crate::pre_auth::Verdict;
use crate::rules::condition::CONDITION_BUDGET;
use crate::rules::{self, Exchange, Targets};
use crate::state::{AppState, Policy};
use crate::tokens::dpop::Proof;
use crate::tokens::mint::mint;
use crate::tokens::{TokenType, VerifiedToken, verify};

#[derive(Serialize)]
struct Issued {
    access_token: String,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

pub async fn token(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let policy = state.policy.load_full();
    let request_id = request_id::of(&req);
    let remote = super::remote_addr::of(&req, &state.server.trusted_proxies);
    let mut record = ExchangeRecord::begin(
        state.clock.now().micros(),
        request_id.clone(),
        remote.map(|a| a.to_string()),
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_VALUE_CHARS).collect()),
    );
    let result = exchange(&req, body, &state, &policy, &mut record).await;
    record.duration_us = started.elapsed().as_micros() as i64;
    match &result {
        Ok(_) => {
            record.outcome = Outcome::Granted;
            record.reason = "granted".into();
        }
        Err(e) => {
            record.outcome = Outcome::Denied;
            record.error = Some(e.code.as_str().into());
            record.reason = e.reason().to_string();
        }
    }
    // Refused before its client was authenticated, and past its address's limit: answered 429
    // and counted in a summary record, not recorded or logged one by one (SPEC §6).
    if let Err(denial) = &result
        && !record.authenticated
        && let Verdict::Summarise { retry_after } =
            state
                .pre_auth
                .refused(remote, denial.code.as_str(), record.time_us)
    {
        state.metrics.pre_auth_limited(denial.code.as_str());
        let mut response = OAuthError {
            status: crate::error::Status::TooManyRequests {
                retry_after_secs: retry_after,
            },
            ..OAuthError::temporarily_unavailable(
                "too many refused requests from this address; retry later",
            )
        }
        .error_response();
        request_id::attach(&mut response, &request_id);
        return response;
    }
    // A client id is logged only when it is a configured client's: anything else is whatever a
    // stranger sent.
    let record_client = record
        .client_id
        .clone()
        .filter(|c| policy.clients.contains(c));
    let record_rule = record.rule.clone();
    let logged = |outcome: &str, error: &str| {
        tracing::info!(
            request_id = %request_id,
            client_id = record_client.as_deref().unwrap_or("-"),
            rule = record_rule.as_deref().unwrap_or("-"),
            outcome,
            error = if error.is_empty() { "-" } else { error },
            "token exchange"
        );
    };
    // Rate-limited requests are counted, not recorded one by one (SPEC §3, §6).
    if let Err(denial) = &result
        && matches!(denial.status, crate::error::Status::TooManyRequests { .. })
    {
        logged("denied", denial.code.as_str());
        tracing::debug!(
            client_id = record.client_id.as_deref().unwrap_or("-"),
            "rate limited"
        );
        state
            .metrics
            .rate_limited(record.client_id.as_deref().unwrap_or("unknown"));
        let mut response = denial.error_response();
        request_id::attach(&mut response, &request_id);
        return response;
    }
    // Labels from the configuration only: a client id nobody configured counts as "unknown".
    let client = record
        .client_id
        .as_deref()
        .filter(|c| policy.clients.contains(c))
        .unwrap_or("unknown")
        .to_string();
    let rule = record.rule.clone().unwrap_or_default();
    record.bound();
    let committed = state.audit.commit(record).await;
    // A grant refused inside its commit is the denial it was recorded as.
    let (result, committed) = match (result, committed) {
        (Ok(_), Ok(Committed::Refused(why))) => {
            (Err(OAuthError::invalid_request(why)), Ok(Committed::AsSent))
        }
        other => other,
    };
    let (outcome, error) = match (&result, &committed) {
        (Ok(_), Ok(_)) => ("granted", ""),
        (Ok(_), Err(_)) => ("denied", "temporarily_unavailable"),
        (Err(e), _) => ("denied", e.code.as_str()),
    };
    logged(outcome, error);
    state
        .metrics
        .exchange(outcome, error, &client, &rule, started.elapsed());
    let mut response = match (result, committed) {
        (Ok(issued), Ok(_)) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(issued),
        (Ok(_), Err(e)) => {
            crate::telemetry::repeated::error("exchange not recorded; token withheld", &e);
            OAuthError::temporarily_unavailable("the exchange could not be recorded; retry later")
                .error_response()
        }
        (Err(denial), committed) => {
            if let Err(e) = committed {
                crate::telemetry::repeated::error("denied exchange not recorded", &e);
            }
            denial.error_response()
        }
    };
    request_id::attach(&mut response, &request_id);
    response
}

async fn exchange(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    policy: &Arc<Policy>,
    record: &mut ExchangeRecord,
) -> Result<Issued, OAuthError> {
    let body = super::form::read_body(
        req,
        body,
        state.server.max_body_bytes,
        state.server.body_timeout,
    )
    .await?;
    let params = super::form::Params::parse(&body)?;
    // What was asked for is worth recording even when the request goes no further.
    record.requested_audiences = params.all("audience");
    record.requested_resources = params.all("resource");
    record.requested_scopes = params
        .one("scope")
        .map(|s| {
            let mut seen = std::collections::HashSet::new();
            s.split(' ')
                .filter(|s| !s.is_empty() && seen.insert(*s))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    params.check_grant_type()?;
    let (presented, authenticated) =
        super::client_auth::authenticate(req, &params, policy, state).await;
    record.client_id = presented;
    let client_id = authenticated?;
    record.authenticated = true;
    policy.clients.take_rate(&client_id)?;
    if !policy.rules.names_client(&client_id) {
        return Err(OAuthError::unauthorized_client(format!(
            "client \"{client_id}\" is not allowed to exchange tokens"
        )));
    }
    let request = super::form::TokenRequest::from_params(&params)?;
    jwt_token_type(request.subject_token_type, "subject_token_type")?;
    let now = state.clock.now().secs();
    let proof = dpop_proof(req, state, now).await?;
    let may_introspect = |issuer: &str| policy.rules.names_client_and_issuer(&client_id, issuer);
    let subject = verify::verify(
        &request.subject_token,
        request.subject_token_type,
        &policy.issuers,
        now,
        "subject token",
        &may_introspect,
    )
    .await
    .inspect_err(|_| {
        // The record says who the token claims to come from, trusted or not.
        record.subject_issuer = crate::tokens::unverified::parse(&request.subject_token)
            .ok()
            .and_then(|t| t.iss().map(|iss| presented_issuer(policy, iss)));
    })?;
    record.subject_issuer = Some(subject.issuer_id.clone());
    record.subject = Some(subject.sub.clone());
    record.subject_jti.clone_from(&subject.jti);
    record.subject_until_us = Some(subject.accepted_until.saturating_mul(1_000_000));
    let actor = match &request.actor_token {
        None => None,
        Some((token, token_type)) => {
            jwt_token_type(*token_type, "actor_token_type")?;
            let actor = verify::verify(
                token,
                *token_type,
                &policy.issuers,
                now,
                "actor token",
                &may_introspect,
            )
            .await?;
            record.actor_issuer = Some(actor.issuer_id.clone());
            record.actor = Some(actor.sub.clone());
            record.actor_jti.clone_from(&actor.jti);
            Some(actor)
        }
    };
    let ex = Exchange {
        client_id: &client_id,
        subject: &subject,
        actor: actor.as_ref(),
        targets: Targets {
            audiences: &request.audiences,
            resources: &request.resources,
        },
        requested_scopes: request.scopes.as_deref(),
        now,
        proof_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
    };
    let rule = choose_rule(policy, &state.condition_slots, &ex).await?;
    record.rule = Some(rule.name.clone());
    let grant = rules::grant_for(rule, &policy.signing, &ex)?;
    let minted = mint(state.keys.current(), &state.server.issuer, &grant).map_err(|e| {
        tracing::error!(error = %e, "minting failed");
        OAuthError::server_error()
    })?;
    record.token_jti = Some(minted.jti);
    record.expires_at = Some(grant.expires_at);
    record.granted_audiences.clone_from(&grant.audiences);
    record.granted_scopes.clone_from(&grant.scopes);
    // Whether a token it comes from is revoked is settled inside the record's commit.
    record.provenance = Some(Box::new(Provenance {
        subject: as_presented(policy, &subject),
        actor: actor.as_ref().map(|a| as_presented(policy, a)),
        minted: policy
            .local_issuers
            .iter()
            .map(|id| Presented {
                issuer_id: id.clone(),
                sub: grant.subject.clone(),
                jti: record.token_jti.clone(),
                iat: Some(grant.issued_at),
                local: false,
            })
            .collect(),
    }));
    Ok(Issued {
        access_token: minted.token,
        issued_token_type: request.requested_token_type.uri(),
        token_type: if grant.cnf_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in: grant.expires_at - now,
        scope: grant.scopes.join(" "),
    })
}

/// The applying rule. When a rule naming the client has a condition, the choice runs on the
/// blocking pool under the conditions' time budget: a condition never holds an HTTP worker, and
/// one that runs long denies its own request only.
async fn choose_rule<'p>(
    policy: &'p Arc<Policy>,
    slots: &Arc<tokio::sync::Semaphore>,
    ex: &Exchange<'_>,
) -> Result<&'p RuleConfig, OAuthError> {
    if !policy.rules.has_conditions(ex.client_id) {
        return rules::choose(&policy.rules, ex);
    }
    let deadline = tokio::time::Instant::now() + CONDITION_BUDGET;
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, slots.clone().acquire_owned()).await
    else {
        return Err(OAuthError::temporarily_unavailable(
            "the rules' conditions are busy; retry later",
        ));
    };
    let owned = (
        policy.clone(),
        ex.client_id.to_string(),
        ex.subject.clone(),
        ex.actor.cloned(),
        ex.targets.audiences.to_vec(),
        ex.targets.resources.to_vec(),
        ex.requested_scopes.map(<[String]>::to_vec),
        ex.proof_jkt.map(str::to_string),
    );
    let now = ex.now;
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let (policy, client_id, subject, actor, audiences, resources, scopes, jkt) = owned;
        let ex = Exchange {
            client_id: &client_id,
            subject: &subject,
            actor: actor.as_ref(),
            targets: Targets {
                audiences: &audiences,
                resources: &resources,
            },
            requested_scopes: scopes.as_deref(),
            now,
            proof_jkt: jkt.as_deref(),
        };
        rules::choose(&policy.rules, &ex).map(|rule| rule.name.clone())
    });
    let name = match tokio::time::timeout_at(deadline, job).await {
        Ok(Ok(chosen)) => chosen?,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "rule evaluation failed");
            return Err(OAuthError::server_error());
        }
        Err(_) => return Err(rules::over_budget("")),
    };
    policy
        .rules
        .candidates(ex.client_id, &ex.subject.issuer_id)
        .find(|r| r.name == name)
        .ok_or_else(OAuthError::server_error)
}

/// A presented `iss` as a record keeps it: the issuer's id when it is trusted, the `iss` itself
/// (printable, bounded) when it is not.
fn presented_issuer(policy: &Policy, iss: &str) -> String {
    policy
        .issuers
        .get(iss)
        .map_or_else(|| verify::shown(iss), |i| i.config.id.clone())
}

fn as_presented(policy: &Policy, token: &VerifiedToken) -> Presented {
    Presented {
        issuer_id: token.issuer_id.clone(),
        sub: token.sub.clone(),
        jti: token.jti.clone(),
        iat: token
            .claims
            .get("iat")
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))),
        local: policy.local_issuers.contains(&token.issuer_id),
    }
}

/// Tokens Tessera verifies are JWTs: refresh tokens and SAML assertions are refused.
fn jwt_token_type(token_type: TokenType, param: &str) -> Result<(), OAuthError> {
    match token_type {
        TokenType::AccessToken | TokenType::IdToken | TokenType::Jwt => Ok(()),
        other => Err(OAuthError::invalid_request(format!(
            "{param} {} is not supported; send a JWT",
            other.uri()
        ))),
    }
}

/// The request's DPoP proof, checked and spent, when it carries one (RFC 9449 §4.3).
async fn dpop_proof(
    req: &HttpRequest,
    state: &AppState,
    now: i64,
) -> Result<Option<Proof>, OAuthError> {
    let mut headers = req.headers().get_all("dpop");
    let Some(header) = headers.next() else {
        return Ok(None);
    };
    let invalid = |why: &str| OAuthError::new(crate::error::ErrorCode::InvalidDpopProof, why);
    if headers.next().is_some() {
        return Err(invalid("send one DPoP header, not several"));
    }
    let text = header
        .to_str()
        .map_err(|_| invalid("the DPoP header is not a JWT"))?;
    let proof = crate::tokens::dpop::check(text, "POST", &state.server.token_endpoint, now)?;
    let (jti, expires_at) = (
        proof.jti.clone(),
        proof.iat + 2 * crate::tokens::dpop::IAT_WINDOW_SECS,
    );
    let first = state
        .store
        .blocking_write(move |c| {
            crate::store::replay::first_use(c, "dpop", &jti, expires_at).map_err(|e| e.to_string())
        })
        .await
        .map_err(super::store_unavailable)?;
    if !first {
        return Err(invalid(
            "the DPoP proof was used before: make a new proof for each request",
        ));
    }
    Ok(Some(proof))
}
