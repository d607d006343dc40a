//! Subjects a requesting workload asserts itself in a Txn-Token request, when it holds no
//! inbound token (draft-ietf-oauth-transaction-tokens "Subject Token Types"): a JWT it signed
//! with its own keys (`self_signed`), or a JSON object on its word alone (`unsigned_json`).
//! Each is attributed to its subject source, the name Txn-Token rules accept it by.

use std::time::Duration;

use serde_json::{Map, Value};

use super::verified::{VerifiedToken, audience_matches, scopes_of};
use super::{unverified, verify};
use crate::error::OAuthError;
use crate::issuers::Issuers;
use crate::oauth::TokenType;

/// The longest `sub` and `jti` a client may assert (in characters): they go into the record,
/// whose request-derived values are bounded (SPEC §6).
const MAX_ASSERTED_CHARS: usize = 256;

/// `sub` and `jti` within `MAX_ASSERTED_CHARS`.
fn bounded(token: &VerifiedToken) -> Result<(), OAuthError> {
    let long = |v: &str| v.chars().count() > MAX_ASSERTED_CHARS;
    if long(&token.sub) || token.jti.as_deref().is_some_and(long) {
        return Err(OAuthError::invalid_request(format!(
            "the subject token's sub and jti are each at most {MAX_ASSERTED_CHARS} characters"
        )));
    }
    Ok(())
}

/// A self-signed JWT: signed by the requesting client's own keys (those of its
/// `private_key_jwt` authentication), `iss` the client id, `aud` this server's issuer, `iat`
/// and `exp` checked like a client assertion's (`exp` at most `max_lifetime` ahead).
pub async fn self_signed(
    token: &str,
    client_id: &str,
    client_keys: &Issuers,
    server_issuer: &str,
    now: i64,
    max_lifetime: Duration,
) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: String| OAuthError::invalid_request(format!("the subject token {why}"));
    if client_keys.get(client_id).is_none() {
        return Err(OAuthError::invalid_request(format!(
            "client \"{client_id}\" has no keys of its own (jwks_file or jwks_uri) to sign a \
             self-signed subject token with"
        )));
    }
    let parsed = unverified::parse(token).map_err(|why| invalid(why.into()))?;
    if parsed.iss() != Some(client_id) {
        return Err(invalid(
            "is self-signed, so its iss must be the requesting client's id".into(),
        ));
    }
    let mut verified = verify::verify(
        token,
        TokenType::Jwt,
        client_keys,
        now,
        "subject token",
        &|_| false,
    )
    .await?;
    if !audience_matches(verified.claims.get("aud"), &[server_issuer.to_string()]) {
        return Err(invalid(format!(
            "is self-signed, so its aud must be this server's issuer \"{server_issuer}\""
        )));
    }
    if !verified.claims.contains_key("iat") {
        return Err(invalid("has no iat claim".into()));
    }
    if verified.exp - now > max_lifetime.as_secs() as i64 {
        return Err(invalid(format!(
            "expires more than {} from now, the most server.max_assertion_lifetime allows a \
             self-signed token",
            crate::config::duration::format(max_lifetime)
        )));
    }
    verified.issuer_id = TokenType::SelfSigned.name().into();
    bounded(&verified)?;
    Ok(verified)
}

/// An unsigned JSON object naming the subject (`sub`), on the requesting client's word: taken
/// only where a rule accepts `unsigned_json` subjects from that client. An `exp` it holds must
/// be ahead; without one, it lasts as long as a Txn-Token may (`max_ttl`).
pub fn unsigned_json(
    token: &str,
    client_id: &str,
    now: i64,
    max_ttl: Duration,
) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: &str| OAuthError::invalid_request(format!("the subject token {why}"));
    if token.len() > unverified::MAX_TOKEN_BYTES {
        return Err(invalid("is larger than 32 KiB"));
    }
    let claims: Map<String, Value> = match serde_json::from_str(token) {
        Ok(Value::Object(claims)) => claims,
        _ => {
            return Err(invalid(
                "is not a JSON object, as subject_token_type unsigned_json says it is",
            ));
        }
    };
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("has no sub (the subject of the transaction)")),
    };
    let exp = match claims.get("exp") {
        None => now.saturating_add(max_ttl.as_secs() as i64),
        Some(v) => match v.as_i64() {
            Some(exp) if exp > now => exp,
            Some(_) => return Err(invalid("has expired")),
            None => return Err(invalid("has an exp that is not a number")),
        },
    };
    let token = VerifiedToken {
        issuer_id: TokenType::UnsignedJson.name().into(),
        iss: client_id.to_string(),
        sub,
        // Nobody issued it: an identifier in it is the client's word too.
        jti: None,
        exp,
        accepted_until: exp,
        scopes: scopes_of(&claims),
        claims,
    };
    bounded(&token)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_unsigned_subject_needs_a_sub_and_an_unexpired_exp() {
        let v =
            unsigned_json(r#"{"sub":"alice","scope":"a b"}"#, "batch", 100, HOUR).expect("valid");
        assert_eq!(
            (v.sub.as_str(), v.issuer_id.as_str()),
            ("alice", "unsigned_json")
        );
        assert_eq!(v.exp, 3700);
        assert_eq!(v.scopes.len(), 2);
        for (text, why) in [
            ("[]", "not a JSON object"),
            ("eyJ.a.b", "not a JSON object"),
            (r#"{"sub":""}"#, "has no sub"),
            (r#"{"sub":"a","exp":100}"#, "has expired"),
            (r#"{"sub":"a","exp":"soon"}"#, "not a number"),
            (
                &format!(r#"{{"sub":"{}"}}"#, "x".repeat(257)),
                "at most 256 characters",
            ),
        ] {
            let err = unsigned_json(text, "batch", 100, HOUR).expect_err(text);
            assert!(err.description.contains(why), "{text}: {}", err.description);
        }
        assert_eq!(
            unsigned_json(r#"{"sub":"a","exp":150}"#, "batch", 100, HOUR)
                .expect("valid")
                .exp,
            150
        );
    }
}
