//! What a rule minting a grant for another trust domain grants (SPEC §9): the one authorization
//! server as `aud`, the subject as the rule maps it, the downscoped scope, a short lifetime.

use serde_json::{Map, Value};

use super::{Exchange, actor, lifetime, scopes};
use crate::config::grant::GRANT_MAX_TTL;
use crate::config::{Limits, Mints, RuleConfig, TokenKind};
use crate::error::OAuthError;
use crate::oauth::{Resource, Scopes};
use crate::tokens::grant::{AUTHENTICATION_CLAIMS, AuthzGrant};

/// The longest subject a grant carries when the rule maps it from a claim.
const MAX_SUBJECT_CHARS: usize = 256;

pub fn grant(
    rule: &RuleConfig,
    limits: Limits<'_>,
    ex: &Exchange<'_>,
) -> Result<AuthzGrant, OAuthError> {
    let id_jag = rule.mints == Mints::IdJag;
    if ex.actor.is_some() {
        // Refused rather than ignored: a grant names no actor token's party, and must not
        // outlive or drop the proof of a token it was asked with.
        return Err(OAuthError::invalid_request(format!(
            "rule \"{}\" issues grants for another trust domain: it takes no actor_token",
            rule.name
        )));
    }
    let (audience, resources) = targets(id_jag, ex)?;
    let scopes = scope(rule, ex)?;
    let expires_at = lifetime::expires_at(
        &lifetime::Limits {
            rule_ttl: rule.ttl,
            default_ttl: limits.signing.default_ttl.min(GRANT_MAX_TTL),
            max_ttl: GRANT_MAX_TTL,
        },
        ex.now,
        ex.subject.exp,
        None,
    )?;
    let new_actor = match rule.actor {
        crate::config::ActorMode::Client => actor::NewActor::Client(ex.client_id),
        _ => actor::NewActor::None,
    };
    let act = actor::act_claim(new_actor, ex.subject.claims.get("act"))?;
    let mut copied: Map<String, Value> = Map::new();
    let carried = rule.copy_claims.iter().map(String::as_str).chain(
        id_jag
            .then_some(AUTHENTICATION_CLAIMS)
            .into_iter()
            .flatten()
            .copied(),
    );
    for name in carried {
        if let Some(v) = ex.subject.claims.get(name) {
            copied.insert(name.to_string(), v.clone());
        }
    }
    Ok(AuthzGrant {
        kind: if id_jag {
            TokenKind::IdJag
        } else {
            TokenKind::AuthorizationGrant
        },
        subject: subject(rule, ex)?,
        audience,
        client_id: id_jag.then(|| {
            rule.audience_client_id
                .clone()
                .unwrap_or_else(|| ex.client_id.to_string())
        }),
        resources,
        scopes,
        issued_at: ex.now,
        expires_at,
        act,
        copied,
        cnf_jkt: ex.proof_jkt.map(str::to_string),
    })
}

/// The grant's `aud` and, for an ID-JAG, its `resource`s. A JWT authorization grant is for one
/// authorization server, named once as `audience` or `resource`; an ID-JAG's `audience` is the
/// resource authorization server and its `resource`s the protected resources there.
fn targets(id_jag: bool, ex: &Exchange<'_>) -> Result<(String, Vec<String>), OAuthError> {
    let t = &ex.targets;
    if id_jag {
        let [audience] = t.audiences else {
            return Err(OAuthError::invalid_request(
                "an ID-JAG request names the resource authorization server (its issuer \
                 identifier) as its one audience",
            ));
        };
        return Ok((
            audience.clone(),
            t.resources.iter().map(Resource::to_string).collect(),
        ));
    }
    match (t.audiences, t.resources) {
        ([one], []) => Ok((one.clone(), Vec::new())),
        ([], [one]) => Ok((one.to_string(), Vec::new())),
        _ => Err(OAuthError::invalid_request(
            "a JWT authorization grant is for one authorization server: name it once, as \
             audience or as resource",
        )),
    }
}

/// The grant's scope: none when none is requested and the rule has no default scopes (both
/// drafts make it optional); otherwise as for an access token.
fn scope(rule: &RuleConfig, ex: &Exchange<'_>) -> Result<Scopes, OAuthError> {
    if ex.requested_scopes.is_none() && rule.default_scopes.is_empty() {
        return Ok(Scopes::default());
    }
    scopes::grant(
        rule,
        rule.scope_mode,
        ex.requested_scopes,
        &ex.subject.scopes,
    )
}

/// The grant's `sub`: the subject's, or the value of the claim the rule maps it from.
fn subject(rule: &RuleConfig, ex: &Exchange<'_>) -> Result<String, OAuthError> {
    let Some(claim) = &rule.subject_claim else {
        return Ok(ex.subject.sub.clone());
    };
    match ex.subject.claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_SUBJECT_CHARS => {
            Ok(s.clone())
        }
        _ => Err(OAuthError::invalid_request(format!(
            "rule \"{}\" names the subject at the other trust domain by the subject token's \
             \"{claim}\" claim, which this token does not carry as a string of at most \
             {MAX_SUBJECT_CHARS} characters",
            rule.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::config::{SigningConfig, Wants};
    use crate::error::ErrorCode;
    use crate::rules::Targets;
    use crate::rules::tests::{rule, subject};

    fn grant_rule(mints: Mints) -> RuleConfig {
        let mut r = rule("to-partner", &["read", "write"], &[]);
        r.mints = mints;
        r.audiences = vec!["https://as.b".into()];
        r.resources = vec![Resource::parse("https://api.b/").expect("resource")];
        r
    }

    fn signing() -> SigningConfig {
        SigningConfig {
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(3600),
            keys: vec![],
        }
    }

    fn run(
        r: &RuleConfig,
        audiences: &[String],
        resources: &[Resource],
        scopes: Option<&Scopes>,
    ) -> Result<AuthzGrant, OAuthError> {
        let s = subject("corp", &["read"]);
        let signing = signing();
        let ex = Exchange {
            client_id: "orders-svc",
            subject: &s,
            actor: None,
            targets: Targets {
                audiences,
                resources,
            },
            requested_scopes: scopes,
            now: 1_000,
            proof_jkt: None,
            wants: Wants::Jwt,
            presented_grant: false,
            txn: None,
        };
        grant(
            r,
            Limits {
                signing: &signing,
                txn: None,
            },
            &ex,
        )
    }

    #[test]
    fn a_grant_is_for_one_server_lives_five_minutes_at_most_and_keeps_its_scope_optional() {
        let r = grant_rule(Mints::AuthorizationGrant);
        let g = run(&r, &["https://as.b".into()], &[], None).expect("grant");
        assert_eq!(g.audience, "https://as.b");
        assert_eq!(
            g.expires_at - g.issued_at,
            300,
            "the signing default, cut to 5m"
        );
        assert!(
            g.scopes.is_empty(),
            "none asked, no defaults: no scope claim"
        );
        assert_eq!(g.client_id, None);
        let by_resource = run(
            &r,
            &[],
            &[Resource::parse("https://api.b/").expect("r")],
            None,
        );
        assert_eq!(by_resource.expect("grant").audience, "https://api.b/");
        let two = run(
            &r,
            &["https://as.b".into()],
            &[Resource::parse("https://api.b/").expect("r")],
            None,
        );
        assert_eq!(
            two.expect_err("two servers").code,
            ErrorCode::InvalidRequest
        );
        let read = Scopes::parse("read").expect("scope");
        let g = run(&r, &["https://as.b".into()], &[], Some(&read)).expect("grant");
        assert_eq!(g.scopes, read);
        let write = Scopes::parse("write").expect("scope");
        let err = run(&r, &["https://as.b".into()], &[], Some(&write)).expect_err("wider");
        assert_eq!(err.code, ErrorCode::InvalidScope, "not the subject's");
    }

    #[test]
    fn the_subject_is_mapped_only_from_a_string_claim() {
        let mut r = grant_rule(Mints::AuthorizationGrant);
        r.subject_claim = Some("email".into());
        let g = run(&r, &["https://as.b".into()], &[], None).expect("grant");
        assert_eq!(g.subject, "alice@example.com");
        r.subject_claim = Some("tenant".into());
        let err = run(&r, &["https://as.b".into()], &[], None).expect_err("no such claim");
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(
            err.description.contains("\"tenant\""),
            "{}",
            err.description
        );
    }

    #[test]
    fn an_id_jag_names_its_server_its_resources_and_the_client_there() {
        let mut r = grant_rule(Mints::IdJag);
        r.audience_client_id = Some("f53f".into());
        let resources = [Resource::parse("https://api.b/").expect("r")];
        let g = run(&r, &["https://as.b".into()], &resources, None).expect("grant");
        assert_eq!(g.kind, TokenKind::IdJag);
        assert_eq!(g.resources, vec!["https://api.b/".to_string()]);
        assert_eq!(g.client_id.as_deref(), Some("f53f"));
        let claims = crate::tokens::grant::claims("https://sts", &g, "j");
        assert_eq!(claims["resource"], json!("https://api.b/"));
        assert_eq!(claims["client_id"], json!("f53f"));
        assert!(claims.get("scope").is_none());
        let err = run(&r, &[], &resources, None).expect_err("no audience");
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }
}
