//! A token Tessera has verified, whichever way (a JWT's signature, or its issuer's answer for
//! an opaque one), and the claim readings both ways share.

use serde_json::{Map, Value};

use crate::oauth::Scopes;
use crate::oauth::scope::words;

/// A token whose signature and claims have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub issuer_id: String,
    pub iss: String,
    pub sub: String,
    pub jti: Option<String>,
    pub exp: i64,
    /// The first second at which this token is no longer accepted (exp, plus leeway for JWTs).
    pub accepted_until: i64,
    pub scopes: Scopes,
    pub claims: Map<String, Value>,
}

impl VerifiedToken {
    /// The SPIFFE ID in `sub` as its trust domain's name and its path, when the token was
    /// verified by that trust domain (a SPIFFE-shaped `sub` from another issuer is just a `sub`).
    pub fn spiffe_id(&self) -> Option<(&str, &str)> {
        let domain = crate::spiffe::trust_domain_id(&self.sub)?;
        (domain == self.iss).then(|| (&domain["spiffe://".len()..], &self.sub[domain.len()..]))
    }
}

/// Whether `aud` (a string or a list) names one of `accepted`.
pub fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => accepted.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| accepted.iter().any(|x| x == a)),
        _ => false,
    }
}

/// Scopes from `scope` (RFC 9068, space-separated) or `scp` (a list, or a string).
/// A token's scopes (SPEC §5): `scope`, or else `scp` as a string or an array of strings. A
/// string is split on the space character only (RFC 6749 §3.3), and a scope-token outside that
/// grammar (a tab, a newline, non-ASCII, `"`, a backslash) is discarded: it matches nothing.
pub fn scopes_of(claims: &Map<String, Value>) -> Scopes {
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => Scopes::valid_of(words(s)),
        (_, Some(Value::Array(list))) => Scopes::valid_of(list.iter().filter_map(Value::as_str)),
        (_, Some(Value::String(s))) => Scopes::valid_of(words(s)),
        _ => Scopes::default(),
    }
}
