//! The token-exchange grant (RFC 8693): a subject token, and an actor token for delegation,
//! verified against the trusted issuers, then the rules' decision.

use std::str::FromStr;

use super::{Context, Decision, Learned};
use crate::config::Wants;
use crate::error::OAuthError;
use crate::oauth::form::printable;
use crate::oauth::scope::{self, NotAScope, Scopes};
use crate::oauth::{Params, Resource, TokenType, TxnParams};
use crate::rules::{Exchange, Targets};
use crate::tokens::{VerifiedToken, asserted, verify};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Targets (`audience` and `resource` together, duplicates removed) a request may name, and
/// scope-tokens its `scope` may hold (SPEC §6): what a token and its record can be made to carry.
pub const MAX_TARGETS: usize = 16;
pub const MAX_SCOPES: usize = 64;

/// A token-exchange request (RFC 8693 §2.1), parsed.
#[derive(Debug)]
pub struct Request {
    pub subject_token: String,
    pub subject_token_type: TokenType,
    pub actor_token: Option<(String, TokenType)>,
    pub audiences: Vec<String>,
    pub resources: Vec<Resource>,
    /// `None` when no scope was requested.
    pub scopes: Option<Scopes>,
    pub requested_token_type: TokenType,
    /// A Txn-Token request's context and details; `None` for other requests.
    pub txn: Option<TxnParams>,
}

impl Request {
    pub fn parse(p: &Params) -> Result<Self, OAuthError> {
        let subject_token = p.required("subject_token")?.to_string();
        let subject_token_type =
            token_type(p.required("subject_token_type")?, "subject_token_type")?;
        let actor_token = actor_token(p)?;
        let requested_token_type = requested_token_type(p)?;
        let (audiences, resources) = targets(p)?;
        let scopes = p.one("scope").map(scopes).transpose()?.flatten();
        let txn = match requested_token_type {
            TokenType::TxnToken => {
                txn_request(
                    &audiences,
                    &resources,
                    scopes.as_ref(),
                    actor_token.is_some(),
                )?;
                Some(TxnParams::parse(p)?)
            }
            TokenType::IdJag => {
                id_jag_request(&audiences, actor_token.is_some())?;
                None
            }
            _ if TxnParams::named_in(p) => {
                return Err(OAuthError::invalid_request(
                    "request_context and request_details belong to Txn-Token requests \
                     (requested_token_type=urn:ietf:params:oauth:token-type:txn_token)",
                ));
            }
            _ => None,
        };
        // Only once the request is well formed: its faults are named first.
        subject_token_type_for(subject_token_type, requested_token_type)?;
        Ok(Self {
            subject_token,
            subject_token_type,
            actor_token,
            audiences,
            resources,
            scopes,
            requested_token_type,
            txn,
        })
    }

    /// The kind of token the request asks for, as rules serve it.
    pub fn wants(&self) -> Wants {
        Wants::of(self.requested_token_type)
    }

    /// The exchange as the rules see it.
    pub fn exchange<'a>(
        &'a self,
        client_id: &'a str,
        subject: &'a VerifiedToken,
        actor: Option<&'a VerifiedToken>,
        now: i64,
        proof_jkt: Option<&'a str>,
    ) -> Exchange<'a> {
        Exchange {
            client_id,
            subject,
            actor,
            targets: Targets {
                audiences: &self.audiences,
                resources: &self.resources,
            },
            requested_scopes: self.scopes.as_ref(),
            now,
            proof_jkt,
            wants: self.wants(),
            presented_grant: false,
            txn: self.txn.as_ref(),
        }
    }
}

/// What a Txn-Token request must hold besides the token exchange's parameters (SPEC §8): the
/// trust domain as its one target, a scope (its purpose), no actor token.
fn txn_request(
    audiences: &[String],
    resources: &[Resource],
    scopes: Option<&Scopes>,
    actor: bool,
) -> Result<(), OAuthError> {
    if audiences.len() != 1 || !resources.is_empty() {
        return Err(OAuthError::invalid_request(
            "a Txn-Token request names exactly one audience, the trust domain, and no resource",
        ));
    }
    if scopes.is_none() {
        return Err(OAuthError::invalid_request(
            "a Txn-Token request names its purpose in the scope parameter",
        ));
    }
    if actor {
        return Err(OAuthError::invalid_request(
            "a Txn-Token request takes no actor_token: the requesting workloads are its req_wl",
        ));
    }
    Ok(())
}

/// What an ID-JAG request must hold (SPEC §9): the resource authorization server as its one
/// audience, no actor token.
fn id_jag_request(audiences: &[String], actor: bool) -> Result<(), OAuthError> {
    if audiences.len() != 1 {
        return Err(OAuthError::invalid_request(
            "an ID-JAG request names the resource authorization server (its issuer identifier) \
             as its one audience",
        ));
    }
    if actor {
        return Err(OAuthError::invalid_request(
            "an ID-JAG request takes no actor_token",
        ));
    }
    Ok(())
}

/// `actor_token` with its type, both or neither.
fn actor_token(p: &Params) -> Result<Option<(String, TokenType)>, OAuthError> {
    match (p.one("actor_token"), p.one("actor_token_type")) {
        (Some(t), Some(ty)) => Ok(Some((t.to_string(), token_type(ty, "actor_token_type")?))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(OAuthError::invalid_request(
            "actor_token requires actor_token_type",
        )),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "actor_token_type was given without actor_token",
        )),
    }
}

/// What may be asked for: an access token (the default), a JWT (an access token, or a grant for
/// another trust domain when the applying rule mints one), a Txn-Token or an ID-JAG.
fn requested_token_type(p: &Params) -> Result<TokenType, OAuthError> {
    let Some(uri) = p.one("requested_token_type") else {
        return Ok(TokenType::AccessToken);
    };
    match token_type(uri, "requested_token_type")? {
        t @ (TokenType::AccessToken | TokenType::Jwt | TokenType::TxnToken | TokenType::IdJag) => {
            Ok(t)
        }
        other => Err(OAuthError::invalid_request(format!(
            "requested_token_type {} is not supported; request an access_token, a jwt, a \
             txn_token or an id-jag",
            other.uri()
        ))),
    }
}

/// The audiences and resources named, at least one and at most `MAX_TARGETS` together.
fn targets(p: &Params) -> Result<(Vec<String>, Vec<Resource>), OAuthError> {
    let audiences = p.all("audience");
    let resources = p.all("resource");
    if audiences.is_empty() && resources.is_empty() {
        return Err(OAuthError::invalid_request(
            "name the target API with an audience or resource parameter",
        ));
    }
    let targets = audiences.len() + resources.len();
    if targets > MAX_TARGETS {
        return Err(OAuthError::invalid_request(format!(
            "a request names at most {MAX_TARGETS} targets (audience and resource together, \
             each once); this one names {targets}"
        )));
    }
    Ok((audiences, parse_resources(&resources)?))
}

/// `resource` values as RFC 8707 indicators: absolute URIs without a fragment.
pub(super) fn parse_resources(values: &[String]) -> Result<Vec<Resource>, OAuthError> {
    values
        .iter()
        .map(|r| {
            Resource::parse(r).ok_or_else(|| {
                OAuthError::invalid_target(format!(
                    "resource \"{}\" is not an absolute URI without a fragment",
                    printable(r)
                ))
            })
        })
        .collect()
}

/// The scope-tokens of `scope`, at most `MAX_SCOPES`; `None` when it holds none.
pub(super) fn scopes(text: &str) -> Result<Option<Scopes>, OAuthError> {
    let asked = scope::as_asked(text);
    if asked.len() > MAX_SCOPES {
        return Err(OAuthError::invalid_request(format!(
            "a scope holds at most {MAX_SCOPES} scope-tokens; this one holds {}",
            asked.len()
        )));
    }
    let scopes =
        Scopes::from_words(asked.iter().map(String::as_str)).map_err(|NotAScope(bad)| {
            OAuthError::invalid_scope(format!(
                "scope \"{}\" contains characters scopes may not have",
                printable(&bad)
            ))
        })?;
    Ok((!scopes.is_empty()).then_some(scopes))
}

/// The decision on `request` from the authenticated `client_id`, whose DPoP proof (when it sent
/// one, checked) showed the key `proof_jkt`. What it verifies on the way goes to `learned`.
pub async fn decide(
    ctx: &Context<'_>,
    client_id: &str,
    request: &Request,
    proof_jkt: Option<&str>,
    learned: &mut Learned,
) -> Result<Decision, OAuthError> {
    let policy = ctx.policy;
    // Opaque tokens go only to issuers this client's rules name.
    let may_introspect = |issuer: &str| policy.rules.names_client_and_issuer(client_id, issuer);
    let txn = match request.wants() {
        Wants::TxnToken => Some(txn_service(ctx, request)?),
        _ => None,
    };
    // An ID token names the client it was issued to as its audience: an ID-JAG is issued only
    // to that client (draft-ietf-oauth-identity-assertion-authz-grant §4.3).
    let id_token_audience;
    let audiences = if request.wants() == Wants::IdJag {
        id_token_audience = [client_id.to_string()];
        Some(&id_token_audience[..])
    } else {
        None
    };
    if let Some(source) = asserted_source(request.subject_token_type)
        && !policy.rules.names_client_and_issuer(client_id, source)
    {
        // Nothing the client asserts is read, or recorded, unless a rule takes it from it.
        return Err(OAuthError::invalid_request(format!(
            "no rule takes {source} subject tokens from client \"{client_id}\""
        )));
    }
    let subject = match (request.subject_token_type, txn) {
        (TokenType::TxnToken, Some(service)) => {
            crate::tokens::txn::verify(&request.subject_token, service, ctx.now)
        }
        (TokenType::SelfSigned, Some(service)) => {
            asserted::self_signed(
                &request.subject_token,
                client_id,
                &policy.client_keys,
                &service.issuer,
                ctx.now,
                service.max_assertion_lifetime,
            )
            .await
        }
        (TokenType::UnsignedJson, Some(service)) => asserted::unsigned_json(
            &request.subject_token,
            client_id,
            ctx.now,
            service.config.max_ttl,
        ),
        (declared, _) => {
            verify::verify_for(
                &request.subject_token,
                declared,
                &policy.issuers,
                ctx.now,
                "subject token",
                &may_introspect,
                audiences,
            )
            .await
        }
    }
    .inspect_err(|_| {
        // The record says who the token claims to come from, trusted or not.
        learned.subject_issuer = crate::tokens::unverified::parse(&request.subject_token)
            .ok()
            .and_then(|t| presented_issuer(ctx, t.iss(), t.sub()));
    })?;
    learned.subject_issuer = Some(subject.issuer_id.clone());
    if request.wants() == Wants::IdJag {
        issued_to(&subject, client_id)?;
    }
    if crate::rules::txn::replaces(&subject) {
        learned.txn = subject
            .claims
            .get("txn")
            .and_then(|t| t.as_str())
            .map(str::to_string);
    }
    let subject = learned.subject.insert(subject);
    let actor = match &request.actor_token {
        None => None,
        Some((token, token_type)) => {
            jwt_token_type(*token_type, "actor_token_type")?;
            let actor = verify::verify(
                token,
                *token_type,
                &policy.issuers,
                ctx.now,
                "actor token",
                &may_introspect,
            )
            .await?;
            Some(&*learned.actor.insert(actor))
        }
    };
    let ex = request.exchange(client_id, subject, actor, ctx.now, proof_jkt);
    let grant = super::plan(policy, &ctx.conditions, &ex, &mut learned.rule).await?;
    learned.txn = grant.txn().map(str::to_string);
    Ok(Decision {
        grant,
        issued_token_type: request.requested_token_type,
        single_use: None,
    })
}

/// The issuer a refused token names, as its record keeps it: the `iss` it presents (the id of
/// that issuer when trusted, the value itself, printable and bounded, when not); without `iss`,
/// the trust domain its SPIFFE ID names, when trusted.
pub(super) fn presented_issuer(
    ctx: &Context<'_>,
    iss: Option<&str>,
    sub: Option<&str>,
) -> Option<String> {
    let issuers = &ctx.policy.issuers;
    match iss {
        Some(iss) => Some(
            issuers
                .get(iss)
                .map_or_else(|| verify::shown(iss), |i| i.config.id.clone()),
        ),
        None => issuers.attributed(None, sub).map(|i| i.config.id.clone()),
    }
}

/// An ID token is the client's when its `aud` names the client alone, or names it among others
/// with `azp` the client (OpenID Connect Core §3.1.3.7): an ID token issued to another party is
/// never turned into an ID-JAG for this one.
fn issued_to(id_token: &VerifiedToken, client_id: &str) -> Result<(), OAuthError> {
    let claims = &id_token.claims;
    let azp = claims.get("azp").and_then(serde_json::Value::as_str);
    let several = claims
        .get("aud")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|list| list.len() > 1);
    if azp.is_some_and(|azp| azp != client_id) || (several && azp != Some(client_id)) {
        return Err(OAuthError::invalid_request(format!(
            "the subject token is an ID token issued to another party: its azp must be \
             \"{client_id}\" when present, and is required when its aud names several"
        )));
    }
    Ok(())
}

/// The subject source a client asserts itself, for the types that are one.
fn asserted_source(declared: TokenType) -> Option<&'static str> {
    matches!(declared, TokenType::SelfSigned | TokenType::UnsignedJson).then(|| declared.name())
}

/// The Transaction Token Service a Txn-Token request is for: this server's, when it is one, and
/// only for its own trust domain.
fn txn_service<'a>(
    ctx: &Context<'a>,
    request: &Request,
) -> Result<&'a crate::tokens::txn::TxnService, OAuthError> {
    let service = ctx.policy.txn.as_ref().ok_or_else(|| {
        OAuthError::invalid_request(
            "requested_token_type txn_token is not supported: this server is no Transaction \
             Token Service (it has no [transaction_tokens])",
        )
    })?;
    let trust_domain = &service.config.trust_domain;
    if request.audiences.iter().any(|a| a != trust_domain) {
        return Err(OAuthError::invalid_target(format!(
            "a Txn-Token's audience is the trust domain \"{trust_domain}\"; name it as the one \
             audience"
        )));
    }
    Ok(service)
}

/// The subject token types each kind of request takes: the JWTs Tessera verifies for either,
/// and for a Txn-Token also a Txn-Token to replace and the subjects a workload asserts itself;
/// never a refresh token, never a SAML assertion.
fn subject_token_type_for(declared: TokenType, requested: TokenType) -> Result<(), OAuthError> {
    let txn = requested == TokenType::TxnToken;
    if requested == TokenType::IdJag && declared != TokenType::IdToken {
        return Err(OAuthError::invalid_request(
            "an ID-JAG is issued from an ID token: send it with subject_token_type \
             urn:ietf:params:oauth:token-type:id_token",
        ));
    }
    match declared {
        TokenType::RefreshToken if txn => Err(OAuthError::invalid_request(
            "a refresh token never obtains a Txn-Token; send the token that authorized the \
             inbound request",
        )),
        TokenType::TxnToken | TokenType::SelfSigned | TokenType::UnsignedJson if !txn => {
            Err(OAuthError::invalid_request(format!(
                "subject_token_type {} is taken only by Txn-Token requests \
                 (requested_token_type=urn:ietf:params:oauth:token-type:txn_token)",
                declared.uri()
            )))
        }
        TokenType::TxnToken | TokenType::SelfSigned | TokenType::UnsignedJson => Ok(()),
        other => jwt_token_type(other, "subject_token_type"),
    }
}

/// Tokens Tessera verifies are JWTs: refresh tokens and SAML assertions are refused.
fn jwt_token_type(token_type: TokenType, param: &str) -> Result<(), OAuthError> {
    match token_type {
        TokenType::AccessToken | TokenType::IdToken | TokenType::Jwt => Ok(()),
        other => Err(OAuthError::invalid_request(format!(
            "{param} {} is not supported; send a JWT",
            other.uri()
        ))),
    }
}

fn token_type(uri: &str, param: &str) -> Result<TokenType, OAuthError> {
    TokenType::from_str(uri).map_err(|_| {
        OAuthError::invalid_request(format!("{param} is not a token type URI of RFC 8693 §3"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn request(body: &str) -> Result<Request, OAuthError> {
        Request::parse(&Params::parse(body.as_bytes())?)
    }

    const BASE: &str = "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=a";

    #[test]
    fn a_full_request_parses() {
        let r = request(&format!(
            "{BASE}&audience=b&resource=https%3A%2F%2Fr%2F&scope=x+y"
        ))
        .expect("valid");
        assert_eq!(r.audiences, vec!["a", "b"]);
        assert_eq!(
            r.resources,
            [Resource::parse("https://r/").expect("resource")]
        );
        assert_eq!(
            r.scopes.map(|s| s.names()),
            Some(vec!["x".to_string(), "y".to_string()])
        );
        assert_eq!(r.requested_token_type, TokenType::AccessToken);
    }

    #[test]
    fn bad_requests_get_the_right_code() {
        let at = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";
        let cases: Vec<(String, ErrorCode)> = vec![
            (format!("{BASE}&scope=a&scope=b"), ErrorCode::InvalidRequest),
            (format!("{BASE}&subject_token=u"), ErrorCode::InvalidRequest),
            (
                "subject_token_type=x&audience=a".into(),
                ErrorCode::InvalidRequest,
            ),
            (
                BASE.replace("access_token", "bogus"),
                ErrorCode::InvalidRequest,
            ),
            (format!("{BASE}&actor_token=x"), ErrorCode::InvalidRequest),
            (
                format!("{BASE}&actor_token_type={at}"),
                ErrorCode::InvalidRequest,
            ),
            (
                format!(
                    "{BASE}&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
                ),
                ErrorCode::InvalidRequest,
            ),
            (BASE.replace("&audience=a", ""), ErrorCode::InvalidRequest),
            (
                format!("{BASE}&resource=relative%2Fpath"),
                ErrorCode::InvalidTarget,
            ),
            (format!("{BASE}&scope=a%22b"), ErrorCode::InvalidScope),
            ("%zz=1".into(), ErrorCode::InvalidRequest),
            (format!("{BASE}&scope=%ff%fe"), ErrorCode::InvalidRequest),
            (format!("{BASE}&scope=a%2"), ErrorCode::InvalidRequest),
        ];
        for (body, code) in cases {
            let err = request(&body).expect_err(&body);
            assert_eq!(err.code, code, "{body}: {}", err.description);
        }
    }

    #[test]
    fn empty_values_count_as_absent() {
        let r = request(&format!("{BASE}&scope=&actor_token=&actor_token_type=")).expect("valid");
        assert_eq!(r.scopes, None);
        assert!(r.actor_token.is_none());
    }

    #[test]
    fn a_subject_token_that_is_no_jwt_is_refused_by_type() {
        let body = BASE.replace("access_token", "refresh_token");
        let err = request(&body).expect_err("refresh token");
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(
            err.description.contains("send a JWT"),
            "{}",
            err.description
        );
        let also_bad_target = format!("{body}&resource=relative%2Fpath");
        assert_eq!(
            request(&also_bad_target).expect_err("both").code,
            ErrorCode::InvalidTarget,
            "the request's own faults are named first"
        );
    }
}
