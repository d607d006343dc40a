//! Opaque subject tokens (RFC 7662): a token that is not a JWT is asked about at the issuers
//! that set an `introspection_endpoint`, in id order. `active`, `exp`, `iss`, `aud`, `sub`,
//! `scope` and `client_id` are honoured; active answers are cached, keyed by the token's
//! SHA-256, no longer than its `exp` and the issuer's `introspection_cache`. An endpoint that
//! fails or cannot be reached denies: never fails open.

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Map, Value};

use super::TokenType;
use super::VerifiedToken;
use super::verify::scopes_of;
use crate::config::{IssuerConfig, TokenKind};
use crate::error::OAuthError;
use crate::issuers::Issuers;

pub async fn verify(
    token: &str,
    declared: TokenType,
    issuers: &Issuers,
    now: i64,
    role: &str,
    not_jwt: &str,
) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: String| OAuthError::invalid_request(format!("the {role} {why}"));
    if token.len() > super::unverified::MAX_TOKEN_BYTES {
        return Err(invalid(not_jwt.to_string()));
    }
    let mut candidates: Vec<_> = issuers
        .iter()
        .filter(|i| i.config.introspection.is_some())
        .collect();
    if candidates.is_empty() {
        return Err(invalid(not_jwt.to_string()));
    }
    if declared != TokenType::AccessToken {
        return Err(invalid(
            "is opaque, so it must be sent as an access_token".into(),
        ));
    }
    candidates.sort_by(|a, b| a.config.id.cmp(&b.config.id));
    let hash: [u8; 32] = digest(&SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .unwrap_or([0; 32]);
    let mut failed = false;
    for issuer in candidates {
        let Some(introspection) = &issuer.config.introspection else {
            continue;
        };
        let answer = match issuer.cached_introspection(&hash, now) {
            Some(answer) => answer,
            None => match issuers.fetcher().introspect(introspection, token).await {
                Ok(Value::Object(answer)) if answer.get("active") == Some(&Value::Bool(true)) => {
                    answer
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(issuer = %issuer.config.id, error = %e, "introspection failed");
                    failed = true;
                    continue;
                }
            },
        };
        let verified = from_answer(&issuer.config, answer.clone(), now).map_err(&invalid)?;
        let until = verified.exp.min(now + introspection.cache.as_secs() as i64);
        issuer.remember_introspection(hash, answer, until, now);
        return Ok(verified);
    }
    Err(if failed {
        invalid(
            "could not be checked: an introspection endpoint did not answer; retry later".into(),
        )
    } else {
        invalid("is not active".into())
    })
}

/// An active answer as a verified token, checked as a JWT's claims would be.
pub fn from_answer(
    issuer: &IssuerConfig,
    answer: Map<String, Value>,
    now: i64,
) -> Result<VerifiedToken, String> {
    let cache = issuer
        .introspection
        .as_ref()
        .map_or(60, |i| i.cache.as_secs() as i64);
    let exp = match answer.get("exp") {
        None => now + cache,
        Some(v) => v.as_i64().ok_or("has an exp that is not a number")?,
    };
    if exp <= now {
        return Err("has expired".into());
    }
    if answer
        .get("iss")
        .is_some_and(|iss| iss.as_str() != Some(issuer.issuer.as_str()))
    {
        return Err(format!(
            "was issued by someone else than issuer \"{}\"",
            issuer.id
        ));
    }
    // An answer without aud is taken as meant for whoever introspects it (RFC 7662 §2.2).
    let aud_ok = answer.get("aud").is_none()
        || super::verify::audience_matches(answer.get("aud"), &issuer.audiences);
    if !aud_ok {
        return Err(format!(
            "is not intended for this server (its aud names none of issuer \"{}\"'s audiences)",
            issuer.id
        ));
    }
    if !issuer.accept.contains(&TokenKind::AccessToken) {
        return Err(format!(
            "is an access token, which issuer \"{}\" does not accept",
            issuer.id
        ));
    }
    let sub = answer
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("has no sub")?
        .to_string();
    let mut claims = answer;
    claims.remove("active");
    Ok(VerifiedToken {
        issuer_id: issuer.id.clone(),
        iss: issuer.issuer.clone(),
        sub,
        jti: claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
        exp,
        accepted_until: exp,
        scopes: scopes_of(&claims),
        claims,
    })
}
