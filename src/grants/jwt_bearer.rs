//! The JWT bearer grant (RFC 7523 §2.1), taking a grant issued for this server by another trust
//! domain (SPEC §9): a JWT authorization grant (draft-ietf-oauth-identity-chaining) or an ID-JAG
//! (draft-ietf-oauth-identity-assertion-authz-grant). The grant is verified like a subject token
//! against its trusted issuer, then the rules decide as for a token exchange, with the grant as
//! the subject: its `resource` and `scope` are the most that can be granted.

use serde_json::{Map, Value};

use super::{Context, Decision, Learned, SingleUse};
use crate::config::{IssuerConfig, TokenKind, Wants};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::scope::Scopes;
use crate::oauth::{Params, Resource, TokenType};
use crate::rules::{Exchange, Targets};
use crate::tokens::grant::is_id_jag_typ;
use crate::tokens::{VerifiedToken, unverified, verify};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The longest `jti` a grant may carry: each is kept until the grant expires.
const MAX_JTI_BYTES: usize = 128;

/// How far ahead a grant's `exp` may lie: a grant is presented minutes after it is issued, and
/// its `jti` is remembered until then.
const MAX_GRANT_LIFETIME_SECS: i64 = 3600;

/// Claims that only an ID token carries: such a token is no grant.
const ID_TOKEN_CLAIMS: &[&str] = &["nonce", "at_hash", "c_hash"];

/// What the replay memory calls a presented grant's `jti`.
const REPLAY_KIND: &str = "jwt_bearer";

/// Parameters of the token exchange that a `jwt-bearer` request never takes: sent here they
/// are a client's mistake, refused rather than ignored.
const NOT_TAKEN: &[&str] = &[
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
];

/// A `jwt-bearer` request, parsed.
#[derive(Debug)]
pub struct Request {
    pub assertion: String,
    pub resources: Vec<Resource>,
    /// `None` when no scope was requested.
    pub scopes: Option<Scopes>,
}

impl Request {
    pub fn parse(p: &Params) -> Result<Self, OAuthError> {
        let assertion = p.required("assertion")?.to_string();
        if let Some(name) = NOT_TAKEN.iter().find(|n| p.one(n).is_some()) {
            return Err(OAuthError::invalid_request(format!(
                "{name} belongs to token exchange; a jwt-bearer request takes assertion, and \
                 optionally scope and resource"
            )));
        }
        let resources = p.all("resource");
        if resources.len() > super::token_exchange::MAX_TARGETS {
            return Err(OAuthError::invalid_request(format!(
                "a request names at most {} resources",
                super::token_exchange::MAX_TARGETS
            )));
        }
        let resources = super::token_exchange::parse_resources(&resources)?;
        let scopes = p
            .one("scope")
            .map(super::token_exchange::scopes)
            .transpose()?
            .flatten();
        Ok(Self {
            assertion,
            resources,
            scopes,
        })
    }
}

/// The decision on `request` from the authenticated `client_id`, whose DPoP proof (when it
/// sent one, checked) showed the key `proof_jkt`. The grant verified goes to `learned` as the
/// subject; its `jti` is spent by the caller once the token is about to be minted.
pub async fn decide(
    ctx: &Context<'_>,
    client_id: &str,
    request: &Request,
    proof_jkt: Option<&str>,
    learned: &mut Learned,
) -> Result<Decision, OAuthError> {
    let grant = verify_grant(ctx, &request.assertion, client_id, proof_jkt, learned)
        .await
        .inspect_err(|_| {
            learned.subject_issuer = unverified::parse(&request.assertion)
                .ok()
                .and_then(|t| super::token_exchange::presented_issuer(ctx, t.iss(), t.sub()));
        })?;
    learned.subject_issuer = Some(grant.issuer_id.clone());
    let single_use = SingleUse {
        kind: REPLAY_KIND,
        key: format!(
            "{}\n{}",
            grant.iss,
            grant.jti.as_deref().unwrap_or_default()
        ),
        until: grant.accepted_until,
    };
    let subject = &*learned.subject.insert(grant);
    let resources = targets(&request.resources, &subject.claims)?;
    let ex = Exchange {
        client_id,
        subject,
        actor: None,
        targets: Targets {
            audiences: &[],
            resources: &resources,
        },
        requested_scopes: request.scopes.as_ref(),
        now: ctx.now,
        proof_jkt,
        wants: Wants::AccessToken,
        presented_grant: true,
        txn: None,
    };
    let grant = super::plan(ctx.policy, &ctx.conditions, &ex, &mut learned.rule).await?;
    Ok(Decision {
        grant,
        issued_token_type: TokenType::AccessToken,
        single_use: Some(single_use),
    })
}

/// The grant, verified (SPEC §9): a trusted issuer's, other than this server, that accepts its
/// kind; its signature, `exp`, `nbf`, `iat` checked as for subject tokens; `aud` exactly this
/// server's issuer; a `sub` and a `jti`; for an ID-JAG, `client_id` the authenticated client;
/// bound to a key (`cnf.jkt`) only with a proof of that key. Every fault is `invalid_grant`.
async fn verify_grant(
    ctx: &Context<'_>,
    assertion: &str,
    client_id: &str,
    proof_jkt: Option<&str>,
    learned: &mut Learned,
) -> Result<VerifiedToken, OAuthError> {
    let policy = ctx.policy;
    let invalid = |why: &str| OAuthError::invalid_grant(format!("the grant {why}"));
    let parsed = unverified::parse(assertion).map_err(invalid)?;
    let kind = if is_id_jag_typ(parsed.header.typ.as_deref()) {
        TokenKind::IdJag
    } else {
        TokenKind::AuthorizationGrant
    };
    learned.grant_kind = Some(kind);
    let typ = parsed.header.typ.as_deref();
    if typ.is_some_and(|t| verify::same_typ(t, "at+jwt")) || crate::tokens::txn::is_txn_typ(typ) {
        return Err(invalid(
            "is an access token or a Txn-Token (by its typ), not an authorization grant",
        ));
    }
    let issuer = verify::signed_by_issuer(&parsed, &policy.issuers, "grant")
        .await
        .map_err(|e| match e.code {
            ErrorCode::InvalidRequest => OAuthError::invalid_grant(e.description),
            _ => e,
        })?;
    let config = &issuer.config;
    // An issuer whose access tokens are typed says which of its tokens are not grants.
    if let (Some(typ), Some(access)) = (typ, &config.access_token_typ)
        && verify::same_typ(typ, access)
    {
        return Err(invalid(&format!(
            "is typed {access}, as issuer \"{}\"'s access tokens are: it is no grant",
            config.id
        )));
    }
    let local = policy.local_issuers.contains(&config.id);
    admissible(kind, config, local, &parsed.claims, client_id)?;
    let claims = parsed.claims;
    let exp = verify::check_times(config, &claims, ctx.now).map_err(|why| invalid(&why))?;
    if exp - ctx.now > MAX_GRANT_LIFETIME_SECS {
        return Err(invalid(
            "expires more than an hour from now; a grant is presented right after it is issued",
        ));
    }
    if !names_only(claims.get("aud"), &policy.server_issuer) {
        return Err(invalid(&format!(
            "is not for this server: its aud must be \"{}\", as a string or as the one element \
             of an array",
            policy.server_issuer
        )));
    }
    let grant = verify::verified(config, claims, exp).map_err(|why| invalid(&why))?;
    match grant.jti.as_deref() {
        None | Some("") => return Err(invalid("has no jti, so its single use cannot be kept")),
        Some(jti) if jti.len() > MAX_JTI_BYTES => {
            return Err(invalid(&format!(
                "has a jti longer than {MAX_JTI_BYTES} bytes"
            )));
        }
        Some(_) => {}
    }
    if let Some(cnf) = grant.claims.get("cnf") {
        let jkt = cnf
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.get("jkt"))
            .and_then(Value::as_str);
        match (jkt, proof_jkt) {
            (None, _) => {
                return Err(invalid(
                    "is bound by a confirmation method other than DPoP (cnf.jkt), which this \
                     server cannot check",
                ));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "is bound to a key (cnf.jkt): proof of possession is required, send a DPoP \
                     proof of that key",
                ));
            }
            (Some(bound), Some(proved)) if bound != proved => {
                return Err(invalid(
                    "is bound to another key than the one the DPoP proof shows",
                ));
            }
            _ => {}
        }
    }
    Ok(grant)
}

/// What makes a grant admissible besides its signature, lifetime and audience, whoever checks
/// it (`/token`, `explain`, `tessera test`): an issuer other than this server, that accepts its
/// kind; no claim of an ID token; no `authorization_details`, which this server does not
/// process; for an ID-JAG, `client_id` the authenticated client.
pub fn admissible(
    kind: TokenKind,
    issuer: &IssuerConfig,
    local: bool,
    claims: &Map<String, Value>,
    client_id: &str,
) -> Result<(), OAuthError> {
    let invalid = |why: String| OAuthError::invalid_grant(format!("the grant {why}"));
    if local {
        // An authorization server never issues access tokens for a grant it issued itself
        // (draft-ietf-oauth-identity-assertion-authz-grant, "Cross-Domain Use").
        return Err(invalid(
            "was issued by this server; grants are taken from other trust domains only".into(),
        ));
    }
    if !issuer.accept.contains(&kind) {
        return Err(invalid(format!(
            "is of kind {}, which issuer \"{}\" does not accept (its accept lists {})",
            kind.as_str(),
            issuer.id,
            issuer
                .accept
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(claim) = ID_TOKEN_CLAIMS.iter().find(|c| claims.contains_key(**c)) {
        return Err(invalid(format!(
            "carries {claim}, a claim of ID tokens: an ID token is no grant"
        )));
    }
    if claims.contains_key("authorization_details") {
        return Err(invalid(
            "carries authorization_details (RFC 9396), which this server does not process: \
             ask its issuer for scopes instead"
                .into(),
        ));
    }
    if kind == TokenKind::IdJag
        && claims.get("client_id").and_then(Value::as_str) != Some(client_id)
    {
        return Err(invalid(format!(
            "is an ID-JAG for another client: its client_id must be \"{client_id}\", the client \
             that authenticated"
        )));
    }
    Ok(())
}

/// Whether `aud` is exactly `issuer`: the string, or an array of that one element (the
/// audience-injection defence: a grant for several servers is refused by each).
fn names_only(aud: Option<&Value>, issuer: &str) -> bool {
    match aud {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(list)) => matches!(list.as_slice(), [Value::String(a)] if a == issuer),
        _ => false,
    }
}

/// The resources asked for: the request's, each within the grant's `resource` when it has
/// one; or, when the request names none, the grant's. Empty (neither names any): the applying
/// rule's own targets.
pub fn targets(
    requested: &[Resource],
    claims: &Map<String, Value>,
) -> Result<Vec<Resource>, OAuthError> {
    let Some(granted) = granted_resources(claims)? else {
        return Ok(requested.to_vec());
    };
    if requested.is_empty() {
        return Ok(granted);
    }
    if let Some(outside) = requested.iter().find(|r| !granted.contains(r)) {
        return Err(OAuthError::invalid_target(format!(
            "resource {} is not among the resources the grant was issued for",
            crate::rules::quoted(&[outside.as_str()])
        )));
    }
    Ok(requested.to_vec())
}

/// The grant's `resource` claim, when it has one: a resource indicator or a list of them, at
/// least one and at most `MAX_TARGETS` distinct ones. A claim that names nothing, or anything
/// else, is the grant's fault: it never stands for "no bound".
fn granted_resources(claims: &Map<String, Value>) -> Result<Option<Vec<Resource>>, OAuthError> {
    let invalid =
        |why: &str| OAuthError::invalid_grant(format!("the grant's resource claim {why}"));
    let values: Vec<&Value> = match claims.get("resource") {
        None => return Ok(None),
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
    };
    let mut granted: Vec<Resource> = Vec::new();
    for value in values {
        let resource = value.as_str().and_then(Resource::parse).ok_or_else(|| {
            invalid("holds a value that is not an absolute URI without a fragment")
        })?;
        if !granted.contains(&resource) {
            granted.push(resource);
        }
    }
    if granted.is_empty() {
        return Err(invalid("names no resource"));
    }
    if granted.len() > super::token_exchange::MAX_TARGETS {
        return Err(invalid(&format!(
            "names more than {} resources",
            super::token_exchange::MAX_TARGETS
        )));
    }
    Ok(Some(granted))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_audience_is_this_server_alone() {
        let me = "https://b.example";
        assert!(names_only(Some(&json!(me)), me));
        assert!(names_only(Some(&json!([me])), me));
        assert!(!names_only(Some(&json!([me, "https://c.example"])), me));
        assert!(!names_only(Some(&json!(["https://c.example", me])), me));
        assert!(!names_only(Some(&json!("https://b.example/")), me));
        assert!(!names_only(Some(&json!([])), me));
        assert!(!names_only(None, me));
        assert!(!names_only(Some(&json!(1)), me));
    }

    fn r(s: &str) -> Resource {
        Resource::parse(s).expect("resource")
    }

    #[test]
    fn resources_stay_within_the_grants() {
        let claims = |v: Value| json!({ "resource": v }).as_object().cloned().expect("map");
        let one = claims(json!("https://api.b/"));
        assert_eq!(
            targets(&[], &one).expect("grant's"),
            vec![r("https://api.b/")]
        );
        assert_eq!(
            targets(&[r("https://api.b/")], &one).expect("within"),
            vec![r("https://api.b/")]
        );
        assert_eq!(
            targets(&[r("https://other.b/")], &one)
                .expect_err("outside")
                .code,
            ErrorCode::InvalidTarget
        );
        let two = claims(json!(["https://api.b/", "https://files.b/"]));
        assert_eq!(targets(&[], &two).expect("both").len(), 2);
        let none = serde_json::Map::new();
        assert_eq!(
            targets(&[r("https://x.b/")], &none).expect("the rules decide"),
            vec![r("https://x.b/")]
        );
        assert!(targets(&[], &none).expect("none").is_empty());
        assert_eq!(
            targets(&[], &claims(json!(5))).expect_err("bad").code,
            ErrorCode::InvalidGrant
        );
        for bad in [
            json!("relative"),
            json!([]),
            json!([7]),
            json!(["https://api.b/", 7]),
        ] {
            assert_eq!(
                targets(&[], &claims(bad.clone())).expect_err("bad").code,
                ErrorCode::InvalidGrant,
                "{bad}"
            );
        }
        let repeated = claims(json!(vec!["https://api.b/"; 200]));
        assert_eq!(targets(&[], &repeated).expect("deduplicated").len(), 1);
        let many: Vec<String> = (0..17).map(|i| format!("https://api{i}.b/")).collect();
        assert_eq!(
            targets(&[], &claims(json!(many)))
                .expect_err("too many")
                .code,
            ErrorCode::InvalidGrant
        );
    }
}
