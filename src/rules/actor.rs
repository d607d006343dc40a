//! The `act` claim of a minted token (SPEC §4, RFC 8693 §4.1): the subject's own chain kept,
//! the new actor outermost, at most eight actors in all.

use serde_json::{Map, Value, json};

use crate::config::ActorMode;
use crate::error::OAuthError;

pub const MAX_ACTORS: usize = 8;

pub fn act_claim(
    mode: ActorMode,
    client_id: &str,
    subject_act: Option<&Value>,
) -> Result<Option<Value>, OAuthError> {
    let act = match mode {
        ActorMode::None => subject_act.cloned(),
        ActorMode::Client => {
            let mut outer = Map::new();
            outer.insert("sub".into(), json!(client_id));
            if let Some(inner) = subject_act {
                outer.insert("act".into(), inner.clone());
            }
            Some(Value::Object(outer))
        }
    };
    if act.as_ref().is_some_and(|a| depth(a) > MAX_ACTORS) {
        return Err(OAuthError::invalid_request(format!(
            "the delegation chain would hold more than {MAX_ACTORS} actors"
        )));
    }
    Ok(act)
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
        ActorMode::Client => act.and_then(|a| a.get("act")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonation_keeps_the_subjects_act_as_it_is() {
        assert_eq!(act_claim(ActorMode::None, "svc", None).ok(), Some(None));
        let existing = json!({"sub": "gw"});
        assert_eq!(
            act_claim(ActorMode::None, "svc", Some(&existing)).ok(),
            Some(Some(existing))
        );
    }

    #[test]
    fn the_client_acts_outermost_with_the_old_chain_nested() {
        assert_eq!(
            act_claim(ActorMode::Client, "svc", None).ok(),
            Some(Some(json!({"sub": "svc"})))
        );
        let existing = json!({"sub": "gw", "act": {"sub": "edge"}});
        let act = act_claim(ActorMode::Client, "svc", Some(&existing))
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
            act_claim(ActorMode::Client, "svc", Some(&chain)).is_ok(),
            "8 in all"
        );
        let chain = json!({"sub": "a7", "act": chain});
        assert!(
            act_claim(ActorMode::Client, "svc", Some(&chain)).is_err(),
            "9 in all"
        );
    }
}
