//! The never-widen invariants (SPEC §4, §8), checked here and only here, on every grant of
//! every kind of token, just before signing. Except for key binding, a failure means a bug
//! upstream: it is logged and the client gets `server_error`, never a wider token.

use serde_json::{Map, Value};

use crate::config::grant::GRANT_MAX_TTL;
use crate::config::{RuleConfig, ScopeMode, TxnConfig};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::Scopes;
use crate::rules::actor::kept_chain;
use crate::tokens::VerifiedToken;
use crate::tokens::grant::AuthzGrant;
use crate::tokens::mint::Grant;
use crate::tokens::txn::TxnGrant;

pub fn enforce(
    rule: &RuleConfig,
    mode: ScopeMode,
    grant: &Grant,
    subject: &VerifiedToken,
    actor: Option<&VerifiedToken>,
    proof_jkt: Option<&str>,
) -> Result<(), OAuthError> {
    proof_of_possession(subject, actor, proof_jkt)?;
    if grant.cnf_jkt.as_deref() != proof_jkt {
        tracing::error!(rule = %rule.name, "never-widen invariant violated: the token would be bound to another key; nothing minted");
        return Err(OAuthError::server_error());
    }
    violation(rule, mode, grant, subject, actor).map_or(Ok(()), |what| {
        tracing::error!(rule = %rule.name, violation = what, "never-widen invariant violated; nothing minted");
        Err(OAuthError::server_error())
    })
}

/// A Txn-Token's: its subject's key binding proved; the subject and the trust domain as `sub`
/// and `aud`; its scope within the rule's and the subject's; a lifetime within the Txn-Token
/// limits and the subject's; and for a replacement the replaced Txn-Token's transaction, chain
/// of requesting workloads and asserted context kept (`tctx` exactly).
pub fn enforce_txn(
    rule: &RuleConfig,
    txn: &TxnConfig,
    grant: &TxnGrant,
    subject: &VerifiedToken,
    proof_jkt: Option<&str>,
) -> Result<(), OAuthError> {
    proof_of_possession(subject, None, proof_jkt)?;
    txn_violation(rule, txn, grant, subject).map_or(Ok(()), |what| {
        tracing::error!(rule = %rule.name, violation = what, "never-widen invariant violated; nothing minted");
        Err(OAuthError::server_error())
    })
}

/// A grant for another trust domain's: its subject's key binding proved; exactly one
/// authorization server of the rule's as `aud`, and resources of the rule's; its scope within
/// the rule's (and the subject's in `intersect` mode); a lifetime of at most five minutes,
/// within the subject's; the subject's actor chain kept.
pub fn enforce_grant(
    rule: &RuleConfig,
    grant: &AuthzGrant,
    subject: &VerifiedToken,
    proof_jkt: Option<&str>,
) -> Result<(), OAuthError> {
    proof_of_possession(subject, None, proof_jkt)?;
    grant_violation(rule, grant, subject, proof_jkt).map_or(Ok(()), |what| {
        tracing::error!(rule = %rule.name, violation = what, "never-widen invariant violated; nothing minted");
        Err(OAuthError::server_error())
    })
}

fn grant_violation(
    rule: &RuleConfig,
    grant: &AuthzGrant,
    subject: &VerifiedToken,
    proof_jkt: Option<&str>,
) -> Option<&'static str> {
    if grant.cnf_jkt.as_deref() != proof_jkt {
        return Some("the grant would be bound to another key");
    }
    if rule.subject_claim.is_none() && grant.subject != subject.sub {
        return Some("the subject changed");
    }
    let granted = |t: &str| {
        rule.audiences.iter().any(|a| a == t) || rule.resources.iter().any(|r| r.as_str() == t)
    };
    if !granted(&grant.audience) || grant.resources.iter().any(|r| !granted(r)) {
        return Some("an authorization server or resource outside the rule's");
    }
    if !within(&grant.scopes, &rule.scopes) {
        return Some("scopes outside the rule's");
    }
    if rule.scope_mode == ScopeMode::Intersect && !within(&grant.scopes, &subject.scopes) {
        return Some("scopes outside the subject token's");
    }
    if grant.expires_at <= grant.issued_at
        || grant.expires_at > subject.exp
        || grant.expires_at - grant.issued_at > GRANT_MAX_TTL.as_secs() as i64
    {
        return Some("a lifetime beyond five minutes or the subject token's");
    }
    if kept_chain(rule.actor, grant.act.as_ref()) != subject.claims.get("act") {
        return Some("the subject's actor chain was not kept");
    }
    None
}

/// The first invariant the Txn-Token grant breaks, if any.
fn txn_violation(
    rule: &RuleConfig,
    txn: &TxnConfig,
    grant: &TxnGrant,
    subject: &VerifiedToken,
) -> Option<&'static str> {
    if grant.subject != subject.sub {
        return Some("the subject changed");
    }
    if grant.audience != txn.trust_domain {
        return Some("an audience other than the trust domain");
    }
    if grant.scopes.is_empty() || !within(&grant.scopes, &rule.scopes) {
        return Some("scopes outside the rule's");
    }
    if !within(&grant.scopes, &subject.scopes) {
        return Some("scopes outside the subject token's");
    }
    let replaces = super::txn::replaces(subject);
    if grant.expires_at <= grant.issued_at
        || grant.expires_at > subject.exp
        || grant.expires_at - grant.issued_at > txn.max_ttl.as_secs() as i64
    {
        return Some("a lifetime beyond the Txn-Token limits or the tokens it came from");
    }
    if grant.replaces != replaces {
        return Some("a replacement not counted as one");
    }
    if !replaces {
        return (grant.requesters.len() != 1).then_some("a chain of requesting workloads made up");
    }
    let text = |name: &str| {
        subject
            .claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if grant.txn != text("txn") {
        return Some("the transaction changed");
    }
    let kept = super::txn::requesters(text("req_wl"));
    if grant.requesters.len() != kept.len() + 1 || !grant.requesters.starts_with(&kept) {
        return Some("the chain of requesting workloads was not kept");
    }
    if !keeps(subject.claims.get("rctx"), &grant.rctx) {
        return Some("a context value of the replaced Txn-Token was changed or dropped");
    }
    let kept_tctx = subject.claims.get("tctx").and_then(Value::as_object);
    if kept_tctx.map_or(!grant.tctx.is_empty(), |kept| *kept != grant.tctx) {
        return Some("the replaced Txn-Token's tctx was not kept exactly");
    }
    None
}

/// Every scope-token of `scopes` is one of `limit`'s.
fn within(scopes: &Scopes, limit: &Scopes) -> bool {
    scopes.iter().all(|s| limit.contains(s.as_str()))
}

/// Every value the replaced Txn-Token asserted is still asserted, unchanged.
fn keeps(before: Option<&Value>, after: &Map<String, Value>) -> bool {
    match before {
        None => true,
        Some(Value::Object(before)) => before.iter().all(|(k, v)| after.get(k) == Some(v)),
        Some(_) => false,
    }
}

/// Every presented token bound to a key is exchanged only with a proof of that key (SPEC §5).
/// A request carries one proof, so a subject and an actor bound to different keys cannot both
/// be proved; a binding other than DPoP's (`cnf` without `jkt`) cannot be checked at all.
fn proof_of_possession(
    subject: &VerifiedToken,
    actor: Option<&VerifiedToken>,
    proof_jkt: Option<&str>,
) -> Result<(), OAuthError> {
    let dpop = |why: String| OAuthError::new(ErrorCode::InvalidDpopProof, why);
    let mut bound: Option<(&str, &str)> = None;
    for (token, role) in [(Some(subject), "subject"), (actor, "actor")] {
        let Some(cnf) = token.and_then(|t| t.claims.get("cnf")) else {
            continue;
        };
        let only_jkt = cnf.as_object().is_some_and(|m| m.len() == 1);
        let Some(jkt) = cnf
            .get("jkt")
            .and_then(serde_json::Value::as_str)
            .filter(|_| only_jkt)
        else {
            return Err(OAuthError::invalid_request(format!(
                "the {role} token is bound by a confirmation method other than DPoP (cnf.jkt), \
                 which this server cannot check"
            )));
        };
        match bound {
            Some((other, _)) if other != jkt => {
                return Err(dpop(
                    "the subject and actor tokens are bound to different keys, and a request \
                     carries one DPoP proof"
                        .into(),
                ));
            }
            _ => bound = Some((jkt, role)),
        }
    }
    match (bound, proof_jkt) {
        (None, _) => Ok(()),
        (Some((jkt, _)), Some(proved)) if jkt == proved => Ok(()),
        (Some((_, role)), Some(_)) => Err(dpop(format!(
            "the DPoP proof is not of the key the {role} token is bound to"
        ))),
        (Some((_, role)), None) => Err(dpop(format!(
            "the {role} token is bound to a key (cnf.jkt): send a DPoP proof of that key"
        ))),
    }
}

/// The first invariant the grant breaks, if any.
fn violation(
    rule: &RuleConfig,
    mode: ScopeMode,
    grant: &Grant,
    subject: &VerifiedToken,
    actor: Option<&VerifiedToken>,
) -> Option<&'static str> {
    if grant.subject != subject.sub {
        return Some("the subject changed");
    }
    if grant.scopes.is_empty() || !within(&grant.scopes, &rule.scopes) {
        return Some("scopes outside the rule's");
    }
    if mode == ScopeMode::Intersect && !within(&grant.scopes, &subject.scopes) {
        return Some("scopes outside the subject token's");
    }
    if grant.audiences.is_empty()
        || grant
            .audiences
            .iter()
            .any(|a| !rule.audiences.contains(a) && !rule.resources.iter().any(|r| r.as_str() == a))
    {
        return Some("audiences outside the rule's");
    }
    if grant.expires_at <= grant.issued_at
        || grant.expires_at > subject.exp
        || actor.is_some_and(|a| grant.expires_at > a.exp)
    {
        return Some("a lifetime beyond the tokens it came from");
    }
    if kept_chain(rule.actor, grant.act.as_ref()) != subject.claims.get("act") {
        return Some("the subject's actor chain was not kept");
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::ActorMode;
    use crate::oauth::Scopes;
    use crate::rules::tests::{rule, subject};

    fn good() -> (RuleConfig, Grant, VerifiedToken) {
        let r = rule("r", &["read", "write"], &[]);
        let s = subject("corp", &["read"]);
        let g = Grant {
            subject: s.sub.clone(),
            audiences: vec!["inventory-api".into()],
            client_id: "orders-svc".into(),
            scopes: Scopes::parse("read").expect("scope"),
            issued_at: s.exp - 100,
            expires_at: s.exp - 50,
            act: None,
            copied: Default::default(),
            cnf_jkt: None,
        };
        (r, g, s)
    }

    fn code(r: &RuleConfig, g: &Grant, s: &VerifiedToken) -> Option<ErrorCode> {
        enforce(r, r.scope_mode, g, s, None, None)
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn a_grant_within_every_bound_passes() {
        let (r, g, s) = good();
        assert_eq!(code(&r, &g, &s), None);
    }

    #[test]
    fn scopes_never_widen() {
        let (r, mut g, s) = good();
        g.scopes = Scopes::parse("admin").expect("scope");
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "beyond the rule"
        );
        g.scopes = Scopes::parse("write").expect("scope");
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "beyond the subject"
        );
        g.scopes = Scopes::default();
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "no scope at all"
        );
        let mut grant_mode = r.clone();
        grant_mode.scope_mode = ScopeMode::Grant;
        g.scopes = Scopes::parse("write").expect("scope");
        assert_eq!(
            code(&grant_mode, &g, &s),
            None,
            "grant mode consults the rule only"
        );
    }

    #[test]
    fn audiences_never_widen() {
        let (r, mut g, s) = good();
        g.audiences.push("billing-api".into());
        assert_eq!(code(&r, &g, &s), Some(ErrorCode::ServerError));
    }

    #[test]
    fn lifetime_never_outlives_the_sources() {
        let (r, mut g, s) = good();
        g.expires_at = s.exp + 1;
        assert_eq!(code(&r, &g, &s), Some(ErrorCode::ServerError));
        let (r, g, s) = good();
        let mut actor = s.clone();
        actor.exp = g.expires_at - 1;
        assert_eq!(
            enforce(&r, r.scope_mode, &g, &s, Some(&actor), None)
                .err()
                .map(|e| e.code),
            Some(ErrorCode::ServerError)
        );
    }

    #[test]
    fn the_subjects_actor_chain_is_kept() {
        let (mut r, mut g, mut s) = good();
        s.claims.insert("act".into(), json!({"sub": "gw"}));
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "impersonation dropped the chain"
        );
        g.act = Some(json!({"sub": "gw"}));
        assert_eq!(code(&r, &g, &s), None);
        r.actor = ActorMode::Client;
        g.act = Some(json!({"sub": "orders-svc"}));
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "the new actor dropped the chain"
        );
        g.act = Some(json!({"sub": "orders-svc", "act": {"sub": "gw"}}));
        assert_eq!(code(&r, &g, &s), None);
    }

    #[test]
    fn a_key_bound_subject_token_needs_a_proof_of_that_key() {
        let (r, mut g, mut s) = good();
        s.claims.insert("cnf".into(), json!({"jkt": "abc"}));
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::InvalidDpopProof),
            "no proof"
        );
        g.cnf_jkt = Some("other".into());
        let err = enforce(&r, r.scope_mode, &g, &s, None, Some("other"))
            .err()
            .map(|e| e.code);
        assert_eq!(
            err,
            Some(ErrorCode::InvalidDpopProof),
            "a proof of another key"
        );
        g.cnf_jkt = Some("abc".into());
        assert_eq!(
            enforce(&r, r.scope_mode, &g, &s, None, Some("abc")).err(),
            None
        );
        s.claims.insert("cnf".into(), json!({"x5t#S256": "abc"}));
        assert_eq!(
            enforce(&r, r.scope_mode, &g, &s, None, Some("abc"))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidRequest),
            "another confirmation method"
        );
    }

    #[test]
    fn a_key_bound_actor_token_needs_a_proof_of_that_key_too() {
        let (r, mut g, s) = good();
        let mut a = subject("corp", &[]);
        a.claims.insert("cnf".into(), json!({"jkt": "actor-key"}));
        let with = |g: &Grant, s: &VerifiedToken, a: &VerifiedToken, proof: Option<&str>| {
            enforce(&r, r.scope_mode, g, s, Some(a), proof)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(with(&g, &s, &a, None), Some(ErrorCode::InvalidDpopProof));
        g.cnf_jkt = Some("actor-key".into());
        assert_eq!(with(&g, &s, &a, Some("actor-key")), None);
        // Subject and actor bound to different keys: one proof cannot prove both.
        let mut bound_subject = s.clone();
        bound_subject
            .claims
            .insert("cnf".into(), json!({"jkt": "subject-key"}));
        assert_eq!(
            with(&g, &bound_subject, &a, Some("actor-key")),
            Some(ErrorCode::InvalidDpopProof)
        );
        g.cnf_jkt = Some("subject-key".into());
        assert_eq!(
            with(&g, &bound_subject, &a, Some("subject-key")),
            Some(ErrorCode::InvalidDpopProof)
        );
        // Bound to the same key: one proof proves both.
        a.claims.insert("cnf".into(), json!({"jkt": "subject-key"}));
        assert_eq!(with(&g, &bound_subject, &a, Some("subject-key")), None);
        // Another confirmation method cannot be checked.
        a.claims.insert("cnf".into(), json!({"x5t#S256": "abc"}));
        assert_eq!(
            with(&g, &s, &a, Some("subject-key")),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn a_token_is_bound_to_the_proved_key_or_to_none() {
        let (r, mut g, s) = good();
        g.cnf_jkt = Some("k".into());
        assert_eq!(
            code(&r, &g, &s),
            Some(ErrorCode::ServerError),
            "bound without a proof"
        );
        assert_eq!(
            enforce(&r, r.scope_mode, &g, &s, None, Some("j"))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::ServerError)
        );
        assert_eq!(
            enforce(&r, r.scope_mode, &g, &s, None, Some("k")).err(),
            None
        );
    }
}
