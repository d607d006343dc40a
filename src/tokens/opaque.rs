//! Opaque subject tokens (RFC 7662): a token that is not a JWT is asked about at the one issuer
//! that can have issued it. It is never disclosed to another party (SPEC §5): only issuers with
//! an `introspection_endpoint` that a rule naming the authenticated client names, and whose
//! `opaque_token_prefix` (when set) the token starts with, are candidates; with more than one,
//! the request is refused and nothing is sent; a token shaped like a JWS or JWE is never sent.
//! `active`, `exp`, `iss`, `aud`, `sub`, `scope` and `client_id` are honoured; active answers
//! are cached, keyed by the token's SHA-256, no longer than its `exp` and the issuer's
//! `introspection_cache`. An endpoint that fails or cannot be reached denies: never fails open.

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::{Map, Value};

use super::VerifiedToken;
use super::verified::scopes_of;
use crate::config::{IssuerConfig, TokenKind};
use crate::error::OAuthError;
use crate::issuers::Issuers;
use crate::oauth::TokenType;

/// Which issuers (by id) an opaque token may be sent to: those that a rule naming the
/// authenticated client names.
pub type MayIntrospect<'a> = &'a (dyn Fn(&str) -> bool + Sync);

pub async fn verify(
    token: &str,
    declared: TokenType,
    issuers: &Issuers,
    now: i64,
    role: &str,
    not_jwt: &str,
    may_introspect: MayIntrospect<'_>,
) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: String| OAuthError::invalid_request(format!("the {role} {why}"));
    if token.len() > super::unverified::MAX_TOKEN_BYTES || looks_like_jose(token) {
        return Err(invalid(not_jwt.to_string()));
    }
    let configured = issuers.iter().any(|i| i.config.introspection.is_some());
    if !configured {
        return Err(invalid(not_jwt.to_string()));
    }
    if declared != TokenType::AccessToken {
        return Err(invalid(
            "is opaque, so it must be sent as an access_token".into(),
        ));
    }
    // A token that starts with an issuer's prefix is that issuer's (the longest prefix when
    // several match), whichever issuers the client's rules name: never another's, not even one
    // that sets no prefix of its own. A token no prefix matches belongs to those without one.
    let prefix_of =
        |i: &crate::issuers::Issuer| i.config.introspection.as_ref().map(|x| x.prefix.clone());
    let owner = issuers
        .iter()
        .filter_map(|i| prefix_of(i).flatten())
        .filter(|p| token.starts_with(p.as_str()))
        .max_by_key(String::len);
    let candidates: Vec<_> = issuers
        .iter()
        .filter(|i| prefix_of(i).is_some_and(|p| p == owner) && may_introspect(&i.config.id))
        .collect();
    let issuer = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(format!(
                "{not_jwt}, and no issuer of opaque tokens that this client's rules name takes it"
            )));
        }
        _ => {
            return Err(invalid(
                "is opaque, and the server cannot tell which issuer issued this opaque token \
                 (give each issuer of opaque tokens an opaque_token_prefix)"
                    .into(),
            ));
        }
    };
    let Some(introspection) = &issuer.config.introspection else {
        return Err(invalid(not_jwt.to_string()));
    };
    let hash: [u8; 32] = digest(&SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .unwrap_or([0; 32]);
    let answer = match issuer.cached_introspection(&hash, now) {
        Some(answer) => answer,
        None => match issuers.fetcher().introspect(introspection, token).await {
            Ok(Value::Object(answer)) if answer.get("active") == Some(&Value::Bool(true)) => answer,
            Ok(_) => return Err(invalid("is not active".into())),
            Err(e) => {
                tracing::warn!(issuer = %issuer.config.id, error = %crate::telemetry::repeated::one_line(&e.to_string()), "introspection failed");
                return Err(invalid(
                    "could not be checked: the introspection endpoint did not answer; retry later"
                        .into(),
                ));
            }
        },
    };
    let verified = from_answer(&issuer.config, answer.clone(), now).map_err(&invalid)?;
    let until = verified.exp.min(now + introspection.cache.as_secs() as i64);
    issuer.remember_introspection(hash, answer, until, now);
    Ok(verified)
}

/// Shaped like a JWS (three parts) or a JWE (five) in compact form: parts separated by dots,
/// whatever they hold. Such a token that did not parse as a JWT is malformed, not opaque, and
/// is never sent anywhere.
fn looks_like_jose(token: &str) -> bool {
    let dots = token.bytes().filter(|b| *b == b'.').count();
    dots == 2 || dots == 4
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
    // Its age, as for a JWT: a revocation of its subject is kept for max_age, and must outlast
    // every token it refuses, so an answer that does not say when the token was issued is not
    // taken either.
    if let Some(max_age) = issuer.max_age {
        let iat = answer
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or("has no iat in its introspection answer, so its age cannot be checked")?;
        if now.saturating_sub(iat) > (max_age + issuer.leeway).as_secs() as i64 {
            return Err("is too old (iat is beyond the issuer's max_age)".into());
        }
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
        || super::verified::audience_matches(answer.get("aud"), &issuer.audiences);
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

#[cfg(test)]
mod tests {
    use super::looks_like_jose;

    #[test]
    fn jose_shaped_tokens_are_told_from_opaque_ones() {
        assert!(looks_like_jose("aaa.bbb.ccc"));
        assert!(looks_like_jose("a.b.c.d.e"));
        assert!(looks_like_jose("eyJ..sig"));
        assert!(!looks_like_jose("corp_at_0123456789"));
        assert!(!looks_like_jose("a.b"));
        assert!(!looks_like_jose("a.b.c.d"));
        assert!(
            looks_like_jose("eyJh.eyJi.c2ln\n"),
            "whatever the parts hold"
        );
        assert!(looks_like_jose("a+b=.c/d.e"));
    }
}
