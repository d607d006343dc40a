//! The `act` claim of a minted token (SPEC §4, RFC 8693 §4.1): the subject's own chain kept,
//! the new actor outermost, at most eight actors in all.

use serde_json::{Map, Value, json};

use crate::config::{ActorMode, RuleConfig};
use crate::error::OAuthError;
use crate::tokens::VerifiedToken;

pub const MAX_ACTORS: usize = 8;

/// Who acts for the subject in the minted token.
#[derive(Debug, Clone, Copy)]
pub enum NewActor<'a> {
    /// Impersonation: no new actor.
    None,
    /// The calling service.
    Client(&'a str),
    /// The actor token's subject, with its issuer.
    Token { sub: &'a str, iss: &'a str },
}

/// The minted `act`: the new actor outermost, the subject's own chain nested inside it.
pub fn act_claim(
    new_actor: NewActor<'_>,
    subject_act: Option<&Value>,
) -> Result<Option<Value>, OAuthError> {
    let mut outer = Map::new();
    match new_actor {
        NewActor::None => return checked(subject_act.cloned()),
        NewActor::Client(client_id) => {
            outer.insert("sub".into(), json!(client_id));
        }
        NewActor::Token { sub, iss } => {
            outer.insert("sub".into(), json!(sub));
            outer.insert("iss".into(), json!(iss));
        }
    }
    if let Some(inner) = subject_act {
        outer.insert("act".into(), inner.clone());
    }
    checked(Some(Value::Object(outer)))
}

fn checked(act: Option<Value>) -> Result<Option<Value>, OAuthError> {
    if act.as_ref().is_some_and(|a| depth(a) > MAX_ACTORS) {
        return Err(OAuthError::invalid_request(format!(
            "the delegation chain would hold more than {MAX_ACTORS} actors"
        )));
    }
    Ok(act)
}

/// With `actor = "token"`: the actor may act when the subject token's `may_act` names it
/// (`sub`, and `iss` when `may_act` has one), or when the rule's `actors` list does.
pub fn check_allowed(
    rule: &RuleConfig,
    subject: &VerifiedToken,
    actor: &VerifiedToken,
) -> Result<(), OAuthError> {
    let by_may_act = subject.claims.get("may_act").is_some_and(|may_act| {
        may_act.get("sub").and_then(Value::as_str) == Some(actor.sub.as_str())
            && may_act
                .get("iss")
                .is_none_or(|iss| iss.as_str() == Some(actor.iss.as_str()))
    });
    let by_rule = rule
        .actors
        .iter()
        .any(|a| a.issuer == actor.issuer_id && a.subject == actor.sub);
    if by_may_act || by_rule {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(format!(
            "the actor is not permitted to act for this subject (neither the subject token's may_act nor rule \"{}\" names it)",
            rule.name
        )))
    }
}

/// How many actors a chain holds.
pub fn depth(act: &Value) -> usize {
    let mut n = 0;
    let mut cur = Some(act);
    while let Some(a) = cur {
        n += 1;
        cur = a.get("act");
    }
    n
}

/// The actor chain a minted `act` keeps from the subject: itself without a new actor,
/// otherwise what it nests.
pub fn kept_chain(mode: ActorMode, act: Option<&Value>) -> Option<&Value> {
    match mode {
        ActorMode::None => act,
        ActorMode::Client | ActorMode::Token => act.and_then(|a| a.get("act")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_keeps_the_subjects_act_as_it_is() {
        assert_eq!(act_claim(NewActor::None, None).ok(), Some(None));
        let existing = json!({"sub": "gw"});
        assert_eq!(
            act_claim(NewActor::None, Some(&existing)).ok(),
            Some(Some(existing))
        );
    }

    #[test]
    fn the_client_acts_outermost_with_the_old_chain_nested() {
        assert_eq!(
            act_claim(NewActor::Client("svc"), None).ok(),
            Some(Some(json!({"sub": "svc"})))
        );
        let existing = json!({"sub": "gw", "act": {"sub": "edge"}});
        let act = act_claim(NewActor::Client("svc"), Some(&existing))
            .ok()
            .flatten();
        assert_eq!(
            act,
            Some(json!({"sub": "svc", "act": {"sub": "gw", "act": {"sub": "edge"}}}))
        );
        assert_eq!(kept_chain(ActorMode::Client, act.as_ref()), Some(&existing));
    }

    #[test]
    fn more_than_eight_actors_are_refused() {
        let mut chain = json!({"sub": "a0"});
        for i in 1..7 {
            chain = json!({"sub": format!("a{i}"), "act": chain});
        }
        assert_eq!(depth(&chain), 7);
        assert!(
            act_claim(NewActor::Client("svc"), Some(&chain)).is_ok(),
            "8 in all"
        );
        let chain = json!({"sub": "a7", "act": chain});
        assert!(
            act_claim(NewActor::Client("svc"), Some(&chain)).is_err(),
            "9 in all"
        );
    }

    #[test]
    fn a_token_actor_carries_its_issuer() {
        let act = act_claim(
            NewActor::Token {
                sub: "gw",
                iss: "https://idp",
            },
            Some(&json!({"sub": "edge"})),
        );
        assert_eq!(
            act.ok().flatten(),
            Some(json!({"sub": "gw", "iss": "https://idp", "act": {"sub": "edge"}}))
        );
    }

    #[test]
    fn an_actor_is_allowed_by_may_act_or_by_the_rule() {
        use crate::config::ActorRef;
        use crate::rules::tests::{rule, subject};
        let mut r = rule("r", &["read"], &[]);
        let mut actor = subject("corp", &[]);
        actor.sub = "gw".into();
        let mut s = subject("corp", &[]);
        assert!(check_allowed(&r, &s, &actor).is_err(), "nobody names it");
        s.claims.insert("may_act".into(), json!({"sub": "gw"}));
        assert!(check_allowed(&r, &s, &actor).is_ok());
        s.claims.insert(
            "may_act".into(),
            json!({"sub": "gw", "iss": "https://other"}),
        );
        assert!(
            check_allowed(&r, &s, &actor).is_err(),
            "may_act names another issuer"
        );
        s.claims
            .insert("may_act".into(), json!({"sub": "gw", "iss": "https://idp"}));
        assert!(check_allowed(&r, &s, &actor).is_ok());
        s.claims.remove("may_act");
        r.actors = vec![ActorRef {
            issuer: "corp".into(),
            subject: "gw".into(),
        }];
        assert!(check_allowed(&r, &s, &actor).is_ok());
        actor.issuer_id = "partner".into();
        assert!(
            check_allowed(&r, &s, &actor).is_err(),
            "the rule names another issuer"
        );
    }
}
