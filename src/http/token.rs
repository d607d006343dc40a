//! `POST /token`. The handler orchestrates: read the form → authenticate the client → the
//! grant decides (`grants`) → mint → record → respond. What a request came to is an `Attempt`;
//! the record is built from it, and the log line and metrics from the `Report` it leaves for
//! the `report` middleware.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use super::report::{Report, RequestId};
use crate::audit::ExchangeRecord;
use crate::audit::provenance::{Presented, Provenance};
use crate::audit::record::MAX_VALUE_CHARS;
use crate::audit::writer::Committed;
use crate::error::{ErrorCode, OAuthError, Status};
use crate::grants::{Conditions, Context, Decision, GrantType, Learned};
use crate::oauth::TokenType;
use crate::pre_auth::Verdict;
use crate::rules::Granted;
use crate::state::{AppState, Policy};
use crate::tokens::VerifiedToken;
use crate::tokens::dpop::Proof;

#[derive(Serialize)]
struct Issued {
    access_token: String,
    /// A token exchange's (RFC 8693 §2.2.1); a `jwt-bearer` answer is RFC 6749 §5.1's.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_token_type: Option<&'static str>,
    token_type: &'static str,
    expires_in: i64,
    /// Left out for a grant issued without a scope (both drafts make its scope optional).
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
}

/// What one request came to, granted or not.
#[derive(Default)]
struct Attempt {
    requested_audiences: Vec<String>,
    requested_resources: Vec<String>,
    requested_scopes: Vec<String>,
    /// The kind of token asked for (an access token when the request names none it knows).
    token_type: Option<TokenType>,
    grant_type: Option<GrantType>,
    /// The client id presented, cut to its bound, even when authentication failed.
    client: Option<String>,
    authenticated: bool,
    learned: Learned,
    grant: Option<Granted>,
    minted_jti: Option<String>,
}

pub async fn token(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = Instant::now();
    let policy = state.policy.load_full();
    let arrived = state.clock.now();
    let mut attempt = Attempt::default();
    let result = exchange(&req, body, &state, &policy, &mut attempt).await;
    let remote = super::remote_addr::of(&req, &state.server.trusted_proxies);
    if let Some(summarised) = summarised(&state, &attempt, &result, remote, arrived) {
        return summarised;
    }
    // Labels and log fields from the configuration only: a client id nobody configured is
    // whatever a stranger sent.
    let client = attempt
        .client
        .clone()
        .filter(|c| policy.clients.contains(c));
    // Rate-limited requests are counted, not recorded one by one (SPEC §3, §6).
    if let Err(denial) = &result
        && matches!(denial.status, Status::TooManyRequests { .. })
    {
        return answer(
            denial.error_response(),
            Report::RateLimited {
                error: denial.code.as_str(),
                client,
            },
        );
    }
    let rule = attempt.learned.rule.clone();
    let token_type = attempt.token_type.unwrap_or(TokenType::AccessToken).name();
    let mut record = ExchangeRecord::begin(
        arrived.micros(),
        request_id(&req),
        remote.map(|a| a.to_string()),
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_VALUE_CHARS).collect()),
    );
    // A grant refused inside its commit is refused as its grant type's fault.
    let refused_as = crate::audit::revocation::refusal_code(
        attempt
            .grant_type
            .unwrap_or(GrantType::TokenExchange)
            .name(),
    );
    attempt.fill(&mut record, &policy, &result);
    record.duration_us = started.elapsed().as_micros() as i64;
    record.bound();
    let committed = state.audit.commit(record).await;
    let (response, error) = respond(result, committed, refused_as);
    answer(
        response,
        Report::Exchange {
            error: error.map(ErrorCode::as_str),
            client,
            rule,
            token_type,
        },
    )
}

/// Refused before its client was authenticated, and past its address's limit: answered 429
/// and counted in a summary record, not recorded or logged one by one (SPEC §6).
fn summarised(
    state: &AppState,
    attempt: &Attempt,
    result: &Result<Issued, OAuthError>,
    remote: Option<std::net::IpAddr>,
    now: crate::clock::UnixTime,
) -> Option<HttpResponse> {
    let error = result.as_ref().err()?.code.as_str();
    if attempt.authenticated {
        return None;
    }
    let Verdict::Summarise { retry_after } = state.pre_auth.refused(remote, error, now.micros())
    else {
        return None;
    };
    let refused = OAuthError {
        status: Status::TooManyRequests {
            retry_after_secs: retry_after,
        },
        ..OAuthError::temporarily_unavailable(
            "too many refused requests from this address; retry later",
        )
    };
    Some(answer(
        refused.error_response(),
        Report::Summarised { error },
    ))
}

/// The answer once the record is committed (or not), and the error it carries: a token only
/// when its grant is on record; a grant refused inside its commit is the denial it was
/// recorded as.
fn respond(
    result: Result<Issued, OAuthError>,
    committed: Result<Committed, crate::audit::writer::Error>,
    refused_as: ErrorCode,
) -> (HttpResponse, Option<ErrorCode>) {
    let (result, committed) = match (result, committed) {
        (Ok(_), Ok(Committed::Refused(why))) => {
            (Err(OAuthError::new(refused_as, why)), Ok(Committed::AsSent))
        }
        other => other,
    };
    match (result, committed) {
        (Ok(issued), Ok(_)) => (
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::PRAGMA, "no-cache"))
                .json(issued),
            None,
        ),
        (Ok(_), Err(e)) => {
            crate::telemetry::repeated::error(
                "exchange not recorded; token withheld",
                &crate::error::chain(&e),
            );
            let withheld = OAuthError::temporarily_unavailable(
                "the exchange could not be recorded; retry later",
            );
            (withheld.error_response(), Some(withheld.code))
        }
        (Err(denial), committed) => {
            if let Err(e) = committed {
                crate::telemetry::repeated::error(
                    "denied exchange not recorded",
                    &crate::error::chain(&e),
                );
            }
            (denial.error_response(), Some(denial.code))
        }
    }
}

/// The response, with what it came to for the `report` middleware.
fn answer(mut response: HttpResponse, report: Report) -> HttpResponse {
    response.extensions_mut().insert(report);
    response
}

fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map_or_else(|| super::request_id::of(req), |id| id.0.clone())
}

async fn exchange(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    policy: &Arc<Policy>,
    attempt: &mut Attempt,
) -> Result<Issued, OAuthError> {
    let body = super::body::read_body(
        req,
        body,
        state.server.max_body_bytes,
        state.server.body_timeout,
    )
    .await?;
    let params = crate::oauth::Params::parse(&body)?;
    // What was asked for is worth recording even when the request goes no further.
    attempt.requested_audiences = params.all("audience");
    attempt.requested_resources = params.all("resource");
    attempt.requested_scopes = params
        .one("scope")
        .map(crate::oauth::scope::as_asked)
        .unwrap_or_default();
    attempt.token_type = params
        .one("requested_token_type")
        .and_then(|t| t.parse::<TokenType>().ok());
    let grant_type = GrantType::of(&params)?;
    attempt.grant_type = Some(grant_type);
    let (presented, authenticated) =
        super::client_auth::authenticate(req, &params, policy, state).await;
    attempt.client = presented;
    let client_id = authenticated?;
    attempt.authenticated = true;
    tracing::Span::current().record("client_id", client_id.as_str());
    policy.clients.take_rate(&client_id)?;
    if !policy.rules.names_client(&client_id) {
        return Err(OAuthError::unauthorized_client(format!(
            "client \"{client_id}\" is not allowed to exchange tokens"
        )));
    }
    let request = crate::grants::Request::parse(grant_type, &params)?;
    // Lifetimes are judged once the request is read and its client known.
    let now = state.clock.now().secs();
    let ctx = Context {
        policy,
        now,
        conditions: Conditions::Pooled(&state.condition_slots),
    };
    let proof = dpop_proof(req, state, now).await?;
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let decision = request
        .decide(&ctx, &client_id, jkt, &mut attempt.learned)
        .await?;
    let Decision {
        grant,
        issued_token_type,
        single_use,
    } = decision;
    if let Some(once) = single_use {
        spend(state, once).await?;
    }
    if let Granted::TxnToken(txn) = &grant
        && txn.replaces
    {
        count_replacement(state, policy, txn).await?;
    }
    let (key, issuer) = (state.keys.current(), &state.server.issuer);
    let minted = match &grant {
        Granted::AccessToken(g) => crate::tokens::mint::mint(key, issuer, g),
        Granted::TxnToken(g) => crate::tokens::txn::mint(key, issuer, g),
        Granted::Grant(g) => crate::tokens::grant::mint(key, issuer, g),
    }
    .map_err(|e| {
        tracing::error!(error = %e, "minting failed");
        OAuthError::server_error()
    })?;
    attempt.minted_jti = Some(minted.jti);
    let issued = Issued {
        access_token: minted.token,
        issued_token_type: (grant_type == GrantType::TokenExchange)
            .then(|| issued_token_type.uri()),
        token_type: match &grant {
            Granted::AccessToken(g) if g.cnf_jkt.is_some() => "DPoP",
            Granted::AccessToken(_) => "Bearer",
            // Not an access token (RFC 8693 §2.2.1).
            Granted::TxnToken(_) | Granted::Grant(_) => "N_A",
        },
        expires_in: grant.expires_at() - now,
        scope: grant.scopes().to_string(),
    };
    attempt.grant = Some(grant);
    Ok(issued)
}

/// Spends what a request may use once (a presented grant's `jti`), in the store, so that it is
/// used once across instances and concurrent requests.
async fn spend(state: &AppState, once: crate::grants::SingleUse) -> Result<(), OAuthError> {
    let crate::grants::SingleUse { kind, key, until } = once;
    let first = state
        .store
        .blocking_write(move |c| crate::store::replay::first_use(c, kind, &key, until))
        .await
        .map_err(super::store_unavailable)?;
    if first {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "the grant was used before: a grant is taken once; request a new one from its issuer",
        ))
    }
}

/// Counts a replacement against its transaction's bound (`transaction_tokens.max_replacements`),
/// in the store, so that the bound holds across instances and concurrent requests.
async fn count_replacement(
    state: &AppState,
    policy: &Policy,
    grant: &crate::tokens::txn::TxnGrant,
) -> Result<(), OAuthError> {
    let Some(service) = &policy.txn else {
        return Err(OAuthError::server_error());
    };
    let max = service.config.max_replacements;
    let txn = grant.txn.clone();
    // Kept as long as a Txn-Token of the transaction can be presented: none outlives the
    // transaction's first, issued at most `max_ttl` ago.
    let until = grant.expires_at + service.config.max_ttl.as_secs() as i64;
    let count = state
        .store
        .blocking_write(move |c| crate::store::replacements::count(c, &txn, until))
        .await
        .map_err(super::store_unavailable)?;
    if count > i64::from(max) {
        return Err(OAuthError::invalid_request(format!(
            "the Txn-Tokens of this transaction were replaced {max} times already, the most \
             transaction_tokens.max_replacements allows; request a new Txn-Token with the \
             transaction's original subject token"
        )));
    }
    Ok(())
}

impl Attempt {
    /// The record's fields from what the request came to.
    fn fill(
        self,
        record: &mut ExchangeRecord,
        policy: &Policy,
        result: &Result<Issued, OAuthError>,
    ) {
        match result {
            Ok(_) => {
                record.outcome = crate::audit::Outcome::Granted;
                record.reason = "granted".into();
            }
            Err(e) => {
                record.error = Some(e.code.as_str().into());
                record.reason = e.reason().to_string();
            }
        }
        record.requested_audiences = self.requested_audiences;
        record.requested_resources = self.requested_resources;
        record.requested_scopes = self.requested_scopes;
        record.client_id = self.client;
        record.authenticated = self.authenticated;
        let Learned {
            subject_issuer,
            subject,
            actor,
            rule,
            txn,
            grant_kind,
        } = self.learned;
        record.grant_type = self
            .grant_type
            .unwrap_or(GrantType::TokenExchange)
            .name()
            .into();
        // An ID-JAG is asked for by name; a JWT authorization grant is what the applying
        // rule made of a `jwt` request.
        let issued_kind = match (&self.grant, self.token_type) {
            (Some(Granted::Grant(g)), _) if result.is_ok() => Some(g.kind),
            (_, Some(TokenType::IdJag)) => Some(crate::config::TokenKind::IdJag),
            _ => None,
        };
        record.grant_kind = grant_kind.or(issued_kind).map(|k| k.as_str().into());
        record.subject_issuer = subject_issuer;
        record.rule = rule;
        record.token_type = self
            .token_type
            .unwrap_or(TokenType::AccessToken)
            .name()
            .into();
        record.txn = txn;
        if let Some(subject) = &subject {
            record.subject = Some(subject.sub.clone());
            record.subject_jti.clone_from(&subject.jti);
            record.subject_until_us =
                Some(crate::clock::UnixTime::from_secs(subject.accepted_until).micros());
        }
        if let Some(actor) = &actor {
            record.actor_issuer = Some(actor.issuer_id.clone());
            record.actor = Some(actor.sub.clone());
            record.actor_jti.clone_from(&actor.jti);
        }
        let (Some(grant), Some(subject), Ok(_)) = (self.grant, subject, result) else {
            return;
        };
        record.token_jti = self.minted_jti;
        record.expires_at = Some(grant.expires_at());
        // How the minted token may be presented here again, for a revocation of its subject
        // that meets this exchange: as this server's access token; a Txn-Token is presented
        // only for replacement, where its record and lineage settle it.
        let minted_as: &[String] = match &grant {
            Granted::AccessToken(_) => &policy.local_issuers,
            Granted::TxnToken(_) | Granted::Grant(_) => &[],
        };
        // Whether a token it comes from is revoked is settled inside the record's commit.
        record.provenance = Some(Box::new(Provenance {
            subject: as_presented(policy, &subject),
            actor: actor.as_ref().map(|a| as_presented(policy, a)),
            minted: minted_as
                .iter()
                .map(|id| Presented {
                    issuer_id: id.clone(),
                    sub: grant.subject().to_string(),
                    jti: record.token_jti.clone(),
                    iat: Some(grant.issued_at()),
                    local: false,
                })
                .collect(),
        }));
        record.granted_audiences = grant.audiences();
        record.granted_scopes = grant.scopes().names();
    }
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
        // A Txn-Token presented for replacement is one this server minted.
        local: policy.local_issuers.contains(&token.issuer_id)
            || crate::rules::txn::replaces(token),
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
    let invalid = |why: &str| OAuthError::new(ErrorCode::InvalidDpopProof, why);
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
        .blocking_write(move |c| crate::store::replay::first_use(c, "dpop", &jti, expires_at))
        .await
        .map_err(super::store_unavailable)?;
    if !first {
        return Err(invalid(
            "the DPoP proof was used before: make a new proof for each request",
        ));
    }
    Ok(Some(proof))
}
