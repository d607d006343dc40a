//! RFC 7662 introspection and RFC 7009 revocation of tokens this server minted, for
//! authenticated clients. The client a token was issued to may introspect and revoke it; a
//! client whose id is among the token's audiences may introspect it. Anything else, like an
//! unknown, expired or revoked token, is simply `active: false` (or, for revocation, a 200
//! that changes nothing), so neither endpoint tells a client about tokens that are not its own.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};

use super::body::read_body;
use crate::audit::revocation::{self, Target, When};
use crate::error::OAuthError;
use crate::oauth::Params;
use crate::state::AppState;
use crate::tokens::verify::verify_local;

pub async fn introspect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    match introspection(&req, body, &state).await {
        Ok(answer) => no_store(HttpResponse::Ok()).json(answer),
        Err(e) => e.error_response(),
    }
}

pub async fn revoke(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    match revocation(&req, body, &state).await {
        Ok(()) => no_store(HttpResponse::Ok()).finish(),
        Err(e) => e.error_response(),
    }
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}

/// The authenticated client and the claims of the `token` parameter, when it is ours.
async fn token_of_client(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<(String, Option<Map<String, Value>>), OAuthError> {
    let body = read_body(
        req,
        body,
        state.server.max_body_bytes,
        state.server.body_timeout,
    )
    .await?;
    let params = Params::parse(&body)?;
    let policy = state.policy.load();
    let client = super::client_auth::authenticate(req, &params, &policy, state)
        .await
        .1?;
    let token = params
        .one("token")
        .ok_or_else(|| OAuthError::invalid_request("parameter \"token\" is required"))?;
    Ok((
        client,
        verify_local(token, &state.keys, &state.server.issuer),
    ))
}

async fn introspection(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    let (client, claims) = token_of_client(req, body, state).await?;
    let Some(claims) = claims else {
        return Ok(inactive);
    };
    let now = state.clock.now().secs();
    let expired = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_none_or(|exp| exp <= now);
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let issued_to = claims.get("client_id").and_then(Value::as_str) == Some(client.as_str());
    if expired || !(issued_to || audiences.contains(&client.as_str())) {
        return Ok(inactive);
    }
    let Some(jti) = claims
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(inactive);
    };
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let iat = claims.get("iat").and_then(Value::as_i64);
    let local = state.policy.load().local_issuers.clone();
    let live = state
        .store
        .blocking(move |c| {
            revocation::minted_is_live(c, &jti, &sub, iat, &local).map_err(|e| e.to_string())
        })
        .await
        .map_err(super::store_unavailable)?;
    if !live {
        return Ok(inactive);
    }
    let mut answer = Map::new();
    answer.insert("active".into(), true.into());
    let token_type = if claims.contains_key("cnf") {
        "DPoP"
    } else {
        "Bearer"
    };
    answer.insert("token_type".into(), token_type.into());
    for name in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
        "act",
        "cnf",
    ] {
        if let Some(v) = claims.get(name) {
            answer.insert(name.into(), v.clone());
        }
    }
    Ok(Value::Object(answer))
}

async fn revocation(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<(), OAuthError> {
    let (client, claims) = token_of_client(req, body, state).await?;
    let Some(claims) = claims else { return Ok(()) };
    if claims.get("client_id").and_then(Value::as_str) != Some(client.as_str()) {
        tracing::warn!(client_id = %client, "revocation of a token issued to another client ignored");
        return Ok(());
    }
    let Some(jti) = claims
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(());
    };
    let policy = state.policy.load();
    let local = policy.local_issuers.clone();
    let now = state.clock.now().secs();
    // A client revoking its token again costs a lookup, not another walk of its lineage.
    let when = When {
        walk_revoked: false,
        ..policy.revocation_bounds(None, now)
    };
    let revoked = state
        .store
        .blocking_write(move |c| {
            revocation::revoke(c, &Target::Jti(jti), &local, when).map_err(|e| e.to_string())
        })
        .await
        .map_err(super::store_unavailable)?;
    tracing::info!(client_id = %client, revoked, "token revoked with its lineage");
    Ok(())
}
