//! Subject token verification (SPEC §5), in two explicit steps: `unverified` picks the issuer
//! and key; then the signature is checked with that issuer's pinned algorithms and the claims
//! with its rules. `jku`, `x5u` and an embedded `jwk` are never consulted.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::unverified::{self, Unverified};
use super::verified::{VerifiedToken, audience_matches, scopes_of};
use crate::config::{IssuerConfig, TokenKind};
use crate::error::OAuthError;
use crate::issuers::{Issuer, Issuers};
use crate::oauth::TokenType;

/// `role` is "subject token" or "actor token", for the error descriptions. An opaque token is
/// sent for introspection only to an issuer `may_introspect` allows (see `opaque`).
pub async fn verify(
    token: &str,
    declared: TokenType,
    issuers: &Issuers,
    now: i64,
    role: &str,
    may_introspect: super::opaque::MayIntrospect<'_>,
) -> Result<VerifiedToken, OAuthError> {
    verify_for(token, declared, issuers, now, role, may_introspect, None).await
}

/// As `verify`, with the `aud` the token must name: `audiences` when given (an ID token's is
/// the client it was issued to), else the issuer's `audiences`.
pub async fn verify_for(
    token: &str,
    declared: TokenType,
    issuers: &Issuers,
    now: i64,
    role: &str,
    may_introspect: super::opaque::MayIntrospect<'_>,
    audiences: Option<&[String]>,
) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: &str| OAuthError::invalid_request(format!("the {role} {why}"));
    let parsed = match unverified::parse(token) {
        Ok(parsed) => parsed,
        Err(not_jwt) => {
            return super::opaque::verify(
                token,
                declared,
                issuers,
                now,
                role,
                not_jwt,
                may_introspect,
            )
            .await;
        }
    };
    let issuer = signed_by_issuer(&parsed, issuers, role).await?;
    let audiences = audiences.unwrap_or(&issuer.config.audiences);
    check_claims(
        &issuer.config,
        declared,
        parsed.header.typ.as_deref(),
        parsed.claims,
        now,
        audiences,
    )
    .map_err(|why| invalid(&why))
}

/// The trusted issuer a JWT is attributed to, once its signature verifies with that issuer's
/// keys and allowed algorithms; the claims are the caller's to check.
pub async fn signed_by_issuer(
    parsed: &Unverified<'_>,
    issuers: &Issuers,
    role: &str,
) -> Result<std::sync::Arc<Issuer>, OAuthError> {
    let invalid = |why: &str| OAuthError::invalid_request(format!("the {role} {why}"));
    if parsed.header.crit.is_some() {
        // RFC 7515 §4.1.11: critical extensions must be understood, and none are here.
        return Err(invalid(
            "names critical header extensions (crit) this server does not understand",
        ));
    }
    let issuer = issuers
        .attributed(parsed.iss(), parsed.sub())
        .ok_or_else(|| invalid(&unattributed(parsed, issuers)))?;
    // A trust domain's keys vouch for its own SPIFFE IDs only, however it was reached.
    if issuer.is_trust_domain()
        && parsed.sub().and_then(crate::spiffe::trust_domain_id) != Some(&issuer.config.issuer)
    {
        return Err(invalid(&format!(
            "is attributed to trust domain \"{}\", but its sub is no SPIFFE ID of it",
            issuer.config.issuer
        )));
    }
    if issuer.config.keys == crate::config::KeySource::None {
        return Err(invalid(&format!(
            "is a JWT, but issuer \"{}\" has no keys to verify one: its tokens are opaque and \
             introspected",
            issuer.config.id
        )));
    }
    let alg = allowed_algorithm(&parsed.header.alg, &issuer.config).map_err(|why| invalid(&why))?;
    check_signature(parsed, alg, issuer, issuers, role).await?;
    Ok(issuer.clone())
}

/// A value from a token, as a description or a record may show it: printable, 128 characters
/// at most.
pub fn shown(value: &str) -> String {
    crate::text::shown(value, 128)
}

/// Why a token is attributed to no trusted issuer, naming what it presents and, for a typo,
/// the trusted issuer it resembles.
fn unattributed(parsed: &Unverified<'_>, issuers: &Issuers) -> String {
    if let Some(domain) = parsed.sub().and_then(crate::spiffe::trust_domain_id) {
        return format!(
            "is a JWT-SVID of trust domain \"{}\", which this server does not trust",
            shown(domain)
        );
    }
    let Some(iss) = parsed.iss() else {
        return "has no iss claim".into();
    };
    if issuers.get(iss).is_some() {
        return format!(
            "names trust domain \"{}\" as its iss, but its sub is no SPIFFE ID of that trust \
             domain",
            shown(iss)
        );
    }
    let near = issuers
        .iter()
        .find(|i| same_but_spelling(&i.config.issuer, iss))
        .map(|i| format!(" (did you mean \"{}\"?)", i.config.issuer))
        .unwrap_or_default();
    format!(
        "is from an issuer this server does not trust: iss \"{}\"{near}",
        shown(iss)
    )
}

/// Two issuer URLs that differ only by a trailing slash, the scheme or case: the likely fix of
/// a newcomer's typo, suggested, never accepted.
fn same_but_spelling(trusted: &str, presented: &str) -> bool {
    let plain = |s: &str| {
        let lower = s.to_ascii_lowercase();
        lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .unwrap_or(&lower)
            .trim_end_matches('/')
            .to_string()
    };
    trusted != presented && plain(trusted) == plain(presented)
}

fn allowed_algorithm(name: &str, issuer: &IssuerConfig) -> Result<Algorithm, String> {
    crate::oauth::algorithm::named(name)
        .filter(|alg| issuer.algorithms.contains(alg))
        .ok_or_else(|| {
            format!(
                "is signed with algorithm \"{name}\", which issuer \"{}\" is not allowed to use",
                issuer.id
            )
        })
}

async fn check_signature(
    token: &Unverified<'_>,
    alg: Algorithm,
    issuer: &std::sync::Arc<Issuer>,
    issuers: &Issuers,
    role: &str,
) -> Result<(), OAuthError> {
    let unavailable = || {
        OAuthError::temporarily_unavailable(format!(
            "the keys of issuer \"{}\" are not available yet; retry later",
            issuer.config.id
        ))
    };
    let mut keys = issuer.keys().ok_or_else(unavailable)?;
    let kid = token.header.kid.as_deref();
    if let Some(kid) = kid.filter(|k| !keys.has_kid(k)) {
        issuers.refetch_for_unknown_kid(issuer).await;
        keys = issuer.keys().ok_or_else(unavailable)?;
        if !keys.has_kid(kid) {
            return Err(OAuthError::invalid_request(format!(
                "the {role} names a key (kid) that issuer \"{}\" does not publish",
                issuer.config.id
            )));
        }
    }
    let verified = keys
        .candidates(kid, alg)
        .any(|key| key.verifies(token.signature, token.signing_input.as_bytes(), alg));
    if verified {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(format!(
            "the {role} signature does not verify"
        )))
    }
}

/// The claim checks, after the signature: lifetime with leeway, age, audience, subject, and
/// the kind of token.
pub fn check_claims(
    issuer: &IssuerConfig,
    declared: TokenType,
    typ: Option<&str>,
    claims: Map<String, Value>,
    now: i64,
    audiences: &[String],
) -> Result<VerifiedToken, String> {
    let exp = check_times(issuer, &claims, now)?;
    if super::txn::is_txn_typ(typ) {
        return Err(
            "is a Txn-Token, which is not an access token: a Txn-Token is presented only to be \
             replaced, as subject_token_type urn:ietf:params:oauth:token-type:txn_token"
                .into(),
        );
    }
    if super::grant::is_id_jag_typ(typ) {
        return Err(
            "is an ID-JAG, which is not an access token: an ID-JAG is presented as the assertion \
             of grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer"
                .into(),
        );
    }
    if !audience_matches(claims.get("aud"), audiences) {
        return Err(format!(
            "is not intended for this server (its aud names none of issuer \"{}\"'s audiences)",
            issuer.id
        ));
    }
    let kind = token_kind(issuer, declared, typ, &claims);
    if !issuer.accept.contains(&kind) {
        return Err(match kind {
            TokenKind::IdToken => {
                "is an ID token, which is not accepted where an access token is expected".into()
            }
            TokenKind::AccessToken if issuer.accept.contains(&TokenKind::Jwt) => format!(
                "is of kind access_token, which issuer \"{}\" does not accept: its tokens are \
                 plain JWTs (workload tokens are), sent as subject_token_type \
                 urn:ietf:params:oauth:token-type:jwt",
                issuer.id
            ),
            other => format!(
                "is of kind {}, which issuer \"{}\" does not accept",
                other.as_str(),
                issuer.id
            ),
        });
    }
    verified(issuer, claims, exp)
}

/// A token whose checks passed, as the rules see it; it must name its subject.
pub fn verified(
    issuer: &IssuerConfig,
    claims: Map<String, Value>,
    exp: i64,
) -> Result<VerifiedToken, String> {
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("has no sub claim".into()),
    };
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(VerifiedToken {
        issuer_id: issuer.id.clone(),
        iss: issuer.issuer.clone(),
        sub,
        jti,
        exp,
        accepted_until: exp.saturating_add(issuer.leeway.as_secs() as i64),
        scopes: scopes_of(&claims),
        claims,
    })
}

/// The time checks of every JWT an issuer signs, with its `leeway`: `exp` (required) not
/// passed, `nbf` and `iat` not in the future, `iat` within `max_age`. Returns `exp`.
pub fn check_times(
    issuer: &IssuerConfig,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<i64, String> {
    let leeway = issuer.leeway.as_secs() as i64;
    let exp = numeric(claims, "exp")?.ok_or("has no exp claim")?;
    if now >= exp.saturating_add(leeway) {
        return Err("has expired".into());
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err("is not valid yet (nbf is in the future)".into());
    }
    let iat = numeric(claims, "iat")?;
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err("was issued in the future (iat)".into());
    }
    if let Some(max_age) = issuer.max_age {
        let iat = iat.ok_or("has no iat claim, so its age cannot be checked")?;
        if now.saturating_sub(iat) > max_age.as_secs() as i64 + leeway {
            return Err("is too old (iat is beyond the issuer's max_age)".into());
        }
    }
    Ok(exp)
}

/// An ID token is one declared as such, one carrying ID-token-only claims, or one whose `typ`
/// differs from the issuer's `access_token_typ`.
fn token_kind(
    issuer: &IssuerConfig,
    declared: TokenType,
    typ: Option<&str>,
    claims: &Map<String, Value>,
) -> TokenKind {
    let id_claims = ["nonce", "at_hash", "c_hash"]
        .iter()
        .any(|c| claims.contains_key(*c));
    let wrong_typ = issuer
        .access_token_typ
        .as_deref()
        .is_some_and(|expected| typ.is_none_or(|t| !same_typ(t, expected)));
    match declared {
        TokenType::IdToken => TokenKind::IdToken,
        _ if id_claims || wrong_typ => TokenKind::IdToken,
        TokenType::Jwt => TokenKind::Jwt,
        _ => TokenKind::AccessToken,
    }
}

/// Whether two JOSE `typ` values name one media type: compared case-insensitively, an
/// `application/` prefix optional (RFC 7515 §4.1.9). Allocates nothing: every subject token's
/// `typ` is compared on the way.
pub fn same_typ(a: &str, b: &str) -> bool {
    bare_typ(a).eq_ignore_ascii_case(bare_typ(b))
}

fn bare_typ(typ: &str) -> &str {
    match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("has a {name} claim that is not a number")),
    }
}

#[cfg(test)]
mod tests;

/// The claims of an access token this server minted, when its signature verifies with one of
/// the signing keys and its `iss` is ours; expiry is the caller's to judge. For introspection
/// and revocation, where any failure simply means "not a token of ours". Only access tokens
/// (`typ: at+jwt`) are: a Txn-Token (draft-ietf-oauth-transaction-tokens), a JWT authorization
/// grant or an ID-JAG is never active at `/introspect`.
pub fn verify_local(
    token: &str,
    keys: &crate::keys::SigningKeys,
    issuer: &str,
) -> Option<Map<String, Value>> {
    let parsed = unverified::parse(token).ok()?;
    let access_token = parsed
        .header
        .typ
        .as_deref()
        .is_some_and(|t| same_typ(t, "at+jwt"));
    if !access_token || !signed_here(&parsed, keys, issuer) {
        return None;
    }
    Some(parsed.claims)
}

/// Whether this server signed the token: its `kid` names a signing key, its `alg` is that key's,
/// the signature verifies with it, and its `iss` is `issuer`.
pub fn signed_here(parsed: &Unverified<'_>, keys: &crate::keys::SigningKeys, issuer: &str) -> bool {
    let Some(key) = parsed
        .header
        .kid
        .as_deref()
        .and_then(|kid| keys.iter().find(|k| k.kid == kid))
    else {
        return false;
    };
    crate::oauth::algorithm::named(&parsed.header.alg) == Some(key.alg)
        && parsed.iss() == Some(issuer)
        && jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.signing_input.as_bytes(),
            &key.decoding,
            key.alg,
        )
        .unwrap_or(false)
}
