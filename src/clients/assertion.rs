//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2): a client authenticates with a JWT it signed
//! with one of its keys. The client is the issuer of its assertion (`iss` = `sub` = client id),
//! so each such client's keys are held exactly like a trusted issuer's (fetched, refreshed,
//! refetched on an unknown `kid`), and the assertion verified by the same code as a subject
//! token; what is particular to assertions is checked here.

use std::time::Duration;

use crate::config::{ClientAuth, ClientConfig, IssuerConfig, ServerConfig, TokenKind};
use crate::error::{ErrorCode, OAuthError};
use crate::issuers::Issuers;
use crate::oauth::TokenType;
use crate::store::Store;
use crate::tokens::verify;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest `jti` an assertion may carry: each is kept until the assertion expires.
const MAX_JTI_BYTES: usize = 128;

/// One key entry per `private_key_jwt` client: its assertions' `aud` must name the token
/// endpoint or this server's issuer.
pub fn key_configs(clients: &[ClientConfig], server: &ServerConfig) -> Vec<IssuerConfig> {
    clients
        .iter()
        .filter_map(|c| match &c.auth {
            ClientAuth::PrivateKeyJwt { keys, algorithms } => Some(IssuerConfig {
                id: c.id.clone(),
                issuer: c.id.clone(),
                keys: keys.clone(),
                algorithms: algorithms.clone(),
                audiences: vec![server.token_endpoint.clone(), server.issuer.clone()],
                accept: vec![TokenKind::Jwt],
                leeway: Duration::from_secs(30),
                max_age: None,
                jwks_refresh: Duration::from_secs(600),
                jwks_min_refetch: Duration::from_secs(30),
                access_token_typ: None,
                introspection: None,
            }),
            ClientAuth::Secret(_) => None,
        })
        .collect()
}

fn invalid_client(why: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(why, false)
}

/// The authenticated client id, or why the assertion does not authenticate anyone.
/// `max_lifetime`: `server.max_assertion_lifetime`.
pub async fn verify(
    assertion: &str,
    form_client_id: Option<&str>,
    keys: &Issuers,
    store: &Store,
    now: i64,
    max_lifetime: Duration,
) -> Result<String, OAuthError> {
    // Assertions are JWTs: nothing is ever introspected for them.
    let token = verify::verify(
        assertion,
        TokenType::Jwt,
        keys,
        now,
        "client assertion",
        &|_| false,
    )
    .await
    .map_err(|e| match e.code {
        ErrorCode::TemporarilyUnavailable => e,
        _ => invalid_client(e.description),
    })?;
    let client = token.iss;
    if token.sub != client {
        return Err(invalid_client(
            "the client assertion's sub must be the client id, as its iss",
        ));
    }
    if form_client_id.is_some_and(|id| id != client) {
        return Err(invalid_client(
            "client_id differs from the client assertion's issuer",
        ));
    }
    if token.exp - now > max_lifetime.as_secs() as i64 {
        return Err(invalid_client(format!(
            "the client assertion expires more than {} from now, the most \
             server.max_assertion_lifetime allows; make shorter-lived assertions, or raise \
             server.max_assertion_lifetime",
            crate::config::duration::format(max_lifetime)
        )));
    }
    let jti = token
        .jti
        .ok_or_else(|| invalid_client("the client assertion has no jti"))?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(invalid_client(format!(
            "the client assertion's jti is longer than {MAX_JTI_BYTES} bytes"
        )));
    }
    let key = format!("{client}\n{jti}");
    // Remembered for as long as the assertion passes the time checks: exp plus leeway.
    let until = token.accepted_until;
    let first = store
        .blocking_write(move |c| {
            crate::store::replay::first_use(c, "client_assertion", &key, until)
        })
        .await
        .map_err(|e| {
            crate::telemetry::repeated::error("the store did not answer", &crate::error::chain(&e));
            OAuthError::temporarily_unavailable("the store is not available; retry later")
        })?;
    if !first {
        return Err(invalid_client(
            "the client assertion was used before: make a new one for each request",
        ));
    }
    Ok(client)
}
