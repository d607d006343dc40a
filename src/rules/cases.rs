//! `tessera test CASES.toml`: a platform team's test cases for its rules, run against the
//! configured rules with no signatures and no server. Each case gives the client, the subject
//! (and actor) claims, the request, and the expected outcome. Token validity (signatures,
//! lifetimes, audiences) is not what these cases test; the rules are.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Exchange, RuleSet, Targets, plan};
use crate::config::Config;
use crate::error::OAuthError;
use crate::oauth::{Resource, Scopes};
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
    /// The issuer's id in the configuration.
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
}

pub fn parse(text: &str) -> Result<CaseFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// What a case came to: the deciding rule and minted scopes, or the rule chosen (if any) and
/// the denial.
type Outcome = Result<(String, Vec<String>), (Option<String>, OAuthError)>;

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
    let ex = Exchange {
        client_id: &case.client,
        subject: &subject,
        actor: actor.as_ref(),
        targets: Targets {
            audiences: &case.request.audiences,
            resources: &case.request.resources,
        },
        requested_scopes: requested.as_ref(),
        now,
        proof_jkt: None,
    };
    let outcome: Outcome = match plan(rules, &config.signing, &ex) {
        Ok((rule, grant)) => Ok((rule.name.clone(), grant.scopes.names())),
        Err(e) => Err((super::choose(rules, &ex).ok().map(|r| r.name.clone()), e)),
    };
    compare(&case.expect, &outcome)
}

fn compare(expect: &Expect, outcome: &Outcome) -> Result<(), String> {
    match (expect.outcome.as_str(), outcome) {
        ("granted", Ok((rule, scopes))) => {
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
            Ok(())
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

/// A token as if verified: the claims given, an hour of life unless `exp` says otherwise.
fn token(config: &Config, t: &TokenClaims, now: i64) -> Result<VerifiedToken, String> {
    let issuer = config
        .issuers
        .iter()
        .find(|i| i.id == t.issuer)
        .ok_or_else(|| format!("issuer \"{}\" is not configured", t.issuer))?;
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
        issuer_id: issuer.id.clone(),
        iss: issuer.issuer.clone(),
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
