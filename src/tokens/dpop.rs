//! DPoP proofs at the token endpoint (RFC 9449 §4.3): a JWT of `typ: dpop+jwt`, signed with an
//! asymmetric algorithm by the public key in its own header, for this method and URL, recent,
//! and (checked by the caller against the store) used once.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use reqwest::Url;
use serde_json::Value;

use super::unverified;
use crate::error::{ErrorCode, OAuthError};
use crate::issuers::jwks::VerifyKey;

/// Algorithms a proof may use: asymmetric only.
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// The longest `jti` a proof may carry (RFC 9449 asks for 96 random bits: 16 to 32 characters).
pub const MAX_JTI_BYTES: usize = 64;

/// How far a proof's `iat` may be from now, either way.
pub const IAT_WINDOW_SECS: i64 = 60;

/// Members of a JWK that only a private key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key: what `cnf.jkt` binds.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

fn invalid(why: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, why)
}

pub fn check(proof: &str, method: &str, endpoint: &str, now: i64) -> Result<Proof, OAuthError> {
    let parsed =
        unverified::parse(proof).map_err(|why| invalid(format!("the DPoP proof {why}")))?;
    if !parsed
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg = crate::oauth::algorithm::named(&parsed.header.alg)
        .filter(|a| ALGORITHMS.contains(a))
        .ok_or_else(|| {
            invalid(format!(
                "the DPoP proof's algorithm \"{}\" is not an accepted asymmetric algorithm",
                parsed.header.alg
            ))
        })?;
    let jwk = signed_by(&parsed, alg)?;
    let claims = &parsed.claims;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("the DPoP proof has no jti"))?;
    // Each is kept for two minutes: their size is what a client without a rate limit can make
    // the store hold.
    if jti.len() > MAX_JTI_BYTES {
        return Err(invalid(format!(
            "the DPoP proof's jti is longer than {MAX_JTI_BYTES} bytes"
        )));
    }
    if claims.get("htm").and_then(Value::as_str) != Some(method) {
        return Err(invalid(format!("the DPoP proof's htm must be {method}")));
    }
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the DPoP proof has no htu"))?;
    if !same_url(htu, endpoint) {
        return Err(invalid(format!("the DPoP proof's htu must be {endpoint}")));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the DPoP proof has no iat"))?;
    if (iat - now).abs() > IAT_WINDOW_SECS {
        return Err(invalid(format!(
            "the DPoP proof's iat is more than {IAT_WINDOW_SECS} s from now"
        )));
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| invalid("the DPoP proof's key has no thumbprint"))?;
    Ok(Proof {
        jkt,
        jti: jti.to_string(),
        iat,
    })
}

/// The key in the proof's `jwk` header, public and fitting `alg`, once the proof's signature
/// verifies with it.
fn signed_by(parsed: &unverified::Unverified<'_>, alg: Algorithm) -> Result<Jwk, OAuthError> {
    let jwk_value = parsed
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| invalid("the DPoP proof has no jwk header"))?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk_value.get(m).is_some()) {
        return Err(invalid("the DPoP proof's jwk header holds a private key"));
    }
    let jwk: Jwk = serde_json::from_value(jwk_value.clone())
        .map_err(|_| invalid("the DPoP proof's jwk header is not a JWK"))?;
    let key = VerifyKey::from_jwk(&jwk)
        .map_err(|why| invalid(format!("the DPoP proof's key is {why}")))?;
    if !key.fits(alg) {
        return Err(invalid("the DPoP proof's key does not match its algorithm"));
    }
    let signed = jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        &key.key,
        alg,
    )
    .unwrap_or(false);
    if !signed {
        return Err(invalid("the DPoP proof's signature does not verify"));
    }
    Ok(jwk)
}

/// RFC 9449 §4.3: compared without query and fragment, after URL normalisation.
fn same_url(a: &str, b: &str) -> bool {
    let strip = |u: &str| {
        Url::parse(u).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    matches!((strip(a), strip(b)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_after_normalisation_without_query() {
        assert!(same_url(
            "https://STS.example/token?x=1",
            "https://sts.example/token"
        ));
        assert!(same_url(
            "https://sts.example:443/token",
            "https://sts.example/token"
        ));
        assert!(!same_url(
            "https://sts.example/token2",
            "https://sts.example/token"
        ));
        assert!(!same_url(
            "http://sts.example/token",
            "https://sts.example/token"
        ));
    }
}
