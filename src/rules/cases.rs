//! `tessera test CASES.toml`: a platform team's test cases for its rules, run against the
//! configured rules with no signatures and no server. Each case gives the client, the subject
//! (and actor) claims, the request, and the expected outcome. Token validity (signatures,
//! lifetimes, audiences) is not what these cases test; the rules are.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Exchange, Granted, RuleSet, Targets, plan};
use crate::config::{Config, Limits, TokenKind, Wants};
use crate::error::OAuthError;
use crate::oauth::{Resource, Scopes, TokenType, TxnParams};
use crate::tokens::VerifiedToken;
use crate::tokens::verified::scopes_of;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(rename = "cases")]
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub client: String,
    pub subject: TokenClaims,
    pub actor: Option<TokenClaims>,
    #[serde(default)]
    pub request: CaseRequest,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// The issuer's id in the configuration, or for a Txn-Token request a subject source
    /// (`self_signed`, `unsigned_json`, `txn_token`).
    pub issuer: String,
    pub claims: Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Space-separated, as the `scope` parameter; absent = none requested.
    pub scope: Option<String>,
    /// What is asked for, as `requested_token_type`'s last part: `access_token` (the default),
    /// `jwt`, `txn_token` or `id-jag`.
    pub token_type: Option<String>,
    /// `token_exchange` (the default), or `jwt_bearer`: the subject is then the grant
    /// presented as `assertion`, and `resources` the request's `resource`s.
    pub grant_type: Option<String>,
    /// A `jwt_bearer` case's grant: `authorization_grant` (the default) or `id_jag`.
    pub grant_kind: Option<String>,
    /// A Txn-Token request's `request_context` and `request_details`.
    pub context: Option<Map<String, Value>>,
    pub details: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `granted` or `denied`.
    pub outcome: String,
    /// The OAuth error code, for a denial.
    pub error: Option<String>,
    /// The minted scopes, for a grant (in any order).
    pub scopes: Option<Vec<String>>,
    /// The rule that decides.
    pub rule: Option<String>,
    /// A Txn-Token's `tctx` and `rctx`, for a grant (exactly).
    pub tctx: Option<Map<String, Value>>,
    pub rctx: Option<Map<String, Value>>,
}

pub fn parse(text: &str) -> Result<CaseFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// What a case came to: the deciding rule and its grant, or the rule chosen (if any) and the
/// denial.
type Outcome = Result<(String, Granted), (Option<String>, OAuthError)>;

/// Runs one case: `Ok(())` when it passes, otherwise what differed.
pub fn run(config: &Config, rules: &RuleSet, case: &Case, now: i64) -> Result<(), String> {
    let subject = token(config, &case.subject, now).map_err(|e| format!("subject: {e}"))?;
    let actor = case
        .actor
        .as_ref()
        .map(|a| token(config, a, now))
        .transpose()
        .map_err(|e| format!("actor: {e}"))?;
    let requested = case
        .request
        .scope
        .as_deref()
        .map(Scopes::parse)
        .transpose()
        .map_err(|e| format!("request: scope \"{}\" is not a scope-token", e.0))?
        .filter(|s| !s.is_empty());
    let requested_type = case
        .request
        .token_type
        .as_deref()
        .map(TokenType::from_arg)
        .transpose()
        .map_err(|e| format!("request: token_type: {e}"))?
        .unwrap_or(TokenType::AccessToken);
    let txn = (requested_type == TokenType::TxnToken).then(|| TxnParams {
        context: case.request.context.clone().map(Value::Object),
        details: case.request.details.clone().map(Value::Object),
    });
    let jwt_bearer = match case.request.grant_type.as_deref() {
        None | Some("token_exchange") => false,
        Some("jwt_bearer") => true,
        Some(other) => {
            return Err(format!(
                "request: grant_type \"{other}\" is not token_exchange or jwt_bearer"
            ));
        }
    };
    let resources = if jwt_bearer {
        // What /token refuses before any rule is weighed, the case is refused alike.
        match presented_grant(config, case, &subject) {
            Ok(resources) => resources,
            Err(e) => return compare(&case.expect, &Err((None, e))),
        }
    } else {
        case.request.resources.clone()
    };
    let ex = Exchange {
        client_id: &case.client,
        subject: &subject,
        actor: actor.as_ref(),
        targets: Targets {
            audiences: &case.request.audiences,
            resources: &resources,
        },
        requested_scopes: requested.as_ref(),
        now,
        proof_jkt: None,
        wants: if jwt_bearer {
            Wants::AccessToken
        } else {
            Wants::of(requested_type)
        },
        presented_grant: jwt_bearer,
        txn: txn.as_ref(),
    };
    let limits = Limits {
        signing: &config.signing,
        txn: config.transaction_tokens.as_ref(),
    };
    let outcome: Outcome = match plan(rules, limits, &ex) {
        Ok((rule, grant)) => Ok((rule.name.clone(), grant)),
        Err(e) => Err((super::choose(rules, &ex).ok().map(|r| r.name.clone()), e)),
    };
    compare(&case.expect, &outcome)
}

/// A `jwt_bearer` case's resources, once its grant and request pass what `/token` checks before
/// the rules: no audience or actor (the grant type takes none), a grant admissible from its
/// issuer, resources within the grant's.
fn presented_grant(
    config: &Config,
    case: &Case,
    grant: &VerifiedToken,
) -> Result<Vec<Resource>, OAuthError> {
    if !case.request.audiences.is_empty() || case.actor.is_some() {
        return Err(OAuthError::invalid_request(
            "a jwt-bearer request takes no audience and no actor_token",
        ));
    }
    let kind = match case.request.grant_kind.as_deref() {
        None | Some("authorization_grant") => TokenKind::AuthorizationGrant,
        Some("id_jag") => TokenKind::IdJag,
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "grant_kind \"{other}\" is not authorization_grant or id_jag"
            )));
        }
    };
    let issuer = config
        .issuers
        .iter()
        .find(|i| i.id == grant.issuer_id)
        .ok_or_else(|| OAuthError::invalid_grant("the grant's issuer is not configured"))?;
    let local = issuer.keys == crate::config::KeySource::Local;
    crate::grants::jwt_bearer::admissible(kind, issuer, local, &grant.claims, &case.client)?;
    crate::grants::jwt_bearer::targets(&case.request.resources, &grant.claims)
}

fn compare(expect: &Expect, outcome: &Outcome) -> Result<(), String> {
    match (expect.outcome.as_str(), outcome) {
        ("granted", Ok((rule, grant))) => {
            let scopes = &grant.scopes().names();
            if let Some(want) = &expect.rule
                && want != rule
            {
                return Err(format!(
                    "granted by rule \"{rule}\", expected rule \"{want}\""
                ));
            }
            if let Some(want) = &expect.scopes {
                let (mut a, mut b) = (want.clone(), scopes.clone());
                a.sort();
                b.sort();
                if a != b {
                    return Err(format!(
                        "granted scopes [{}], expected [{}]",
                        scopes.join(" "),
                        want.join(" ")
                    ));
                }
            }
            compare_context(expect, grant)
        }
        ("granted", Err((_, e))) => Err(format!(
            "denied with {}: {}; expected a grant",
            e.code, e.description
        )),
        ("denied", Ok((rule, _))) => Err(format!("granted by rule \"{rule}\"; expected a denial")),
        ("denied", Err((rule, e))) => {
            if let Some(want) = &expect.error
                && want != e.code.as_str()
            {
                return Err(format!(
                    "denied with {} ({}), expected {want}",
                    e.code, e.description
                ));
            }
            if let Some(want) = &expect.rule
                && rule.as_ref() != Some(want)
            {
                return Err(format!("decided by rule {rule:?}, expected \"{want}\""));
            }
            Ok(())
        }
        (other, _) => Err(format!(
            "expect.outcome is \"{other}\"; use granted or denied"
        )),
    }
}

/// A Txn-Token's `tctx` and `rctx` against the expected ones, when the case names them.
fn compare_context(expect: &Expect, grant: &Granted) -> Result<(), String> {
    let empty = Map::new();
    let (tctx, rctx) = match grant {
        Granted::TxnToken(g) => (&g.tctx, &g.rctx),
        Granted::AccessToken(_) | Granted::Grant(_) => (&empty, &empty),
    };
    for (name, want, got) in [("tctx", &expect.tctx, tctx), ("rctx", &expect.rctx, rctx)] {
        if let Some(want) = want
            && want != got
        {
            return Err(format!(
                "granted {name} {}, expected {}",
                Value::Object(got.clone()),
                Value::Object(want.clone())
            ));
        }
    }
    Ok(())
}

/// The token a case's claims stand for, as if verified: the claims given, an hour of life
/// unless `exp` says otherwise.
pub fn token(config: &Config, t: &TokenClaims, now: i64) -> Result<VerifiedToken, String> {
    let (issuer_id, iss) = match config.issuers.iter().find(|i| i.id == t.issuer) {
        Some(issuer) => (issuer.id.clone(), issuer.issuer.clone()),
        // A Txn-Token replaced is this server's; an asserted subject is the client's word.
        None if t.issuer == TokenType::TxnToken.name() => {
            (t.issuer.clone(), config.server.issuer.clone())
        }
        None if crate::config::is_subject_source(&t.issuer) => (t.issuer.clone(), String::new()),
        None => return Err(format!("issuer \"{}\" is not configured", t.issuer)),
    };
    let sub = t
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or("claims need a sub")?
        .to_string();
    let exp = t
        .claims
        .get("exp")
        .and_then(Value::as_i64)
        .unwrap_or(now + 3600);
    Ok(VerifiedToken {
        issuer_id,
        iss,
        sub,
        jti: t
            .claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
        exp,
        accepted_until: exp,
        scopes: scopes_of(&t.claims),
        claims: t.claims.clone(),
    })
}
