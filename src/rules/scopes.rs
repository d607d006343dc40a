//! Scope math (SPEC §4): what a minted token may carry.

use crate::config::{RuleConfig, ScopeMode};
use crate::error::OAuthError;
use crate::oauth::{Scope, Scopes};

/// The scopes to mint. In `intersect` mode a scope must be in the rule's `scopes` and carried
/// by the subject token; in `grant` mode the rule alone decides. Requested scopes come back in
/// the order asked; with none requested, the rule's `default_scopes` that pass.
pub fn grant(
    rule: &RuleConfig,
    mode: ScopeMode,
    requested: Option<&Scopes>,
    subject_scopes: &Scopes,
) -> Result<Scopes, OAuthError> {
    let allowed = |s: &Scope| {
        rule.scopes.contains(s.as_str())
            && (mode == ScopeMode::Grant || subject_scopes.contains(s.as_str()))
    };
    let Some(requested) = requested else {
        let granted: Scopes = rule
            .default_scopes
            .iter()
            .filter(|s| allowed(s))
            .cloned()
            .collect();
        if granted.is_empty() {
            return Err(OAuthError::invalid_scope(
                if rule.default_scopes.is_empty() {
                    format!(
                        "rule \"{}\" has no default scopes: request a scope",
                        rule.name
                    )
                } else {
                    format!(
                        "no scope was requested and the subject token carries none of the \
                         default scopes{}",
                        no_scope_hint(subject_scopes)
                    )
                },
            ));
        }
        return Ok(granted);
    };
    each_allowed(
        rule,
        requested,
        (mode == ScopeMode::Intersect).then_some(subject_scopes),
    )?;
    Ok(requested.clone())
}

/// The scope-tokens of `carried` (a presented grant's scope) that the rule allows, in the
/// grant's order; none is `invalid_scope`.
pub fn within_rule(rule: &RuleConfig, carried: &Scopes) -> Result<Scopes, OAuthError> {
    let granted: Scopes = carried
        .iter()
        .filter(|s| rule.scopes.contains(s.as_str()))
        .cloned()
        .collect();
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "rule \"{}\" allows none of the scopes the grant carries",
            rule.name
        )));
    }
    Ok(granted)
}

/// Each requested scope-token is in the rule's scopes and, when `subject` is given, carried by
/// the subject token; the first that is not is `invalid_scope`, naming it.
pub fn each_allowed(
    rule: &RuleConfig,
    requested: &Scopes,
    subject: Option<&Scopes>,
) -> Result<(), OAuthError> {
    for scope in requested {
        if !rule.scopes.contains(scope.as_str()) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {} is not allowed by rule \"{}\"",
                super::quoted(&[scope.as_str()]),
                rule.name
            )));
        }
        if let Some(carried) = subject
            && !carried.contains(scope.as_str())
        {
            return Err(OAuthError::invalid_scope(format!(
                "scope {} is not carried by the subject token{}",
                super::quoted(&[scope.as_str()]),
                no_scope_hint(carried)
            )));
        }
    }
    Ok(())
}

/// What a newcomer exchanging a workload token in `intersect` mode needs to hear: the token
/// carries no scope at all, and `grant` mode is the one for such tokens.
fn no_scope_hint(subject_scopes: &Scopes) -> &'static str {
    if subject_scopes.is_empty() {
        " (it carries no scope at all, as workload tokens do; a rule with scope_mode = \"grant\" \
         decides their scopes alone)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::rules::tests::rule;

    fn s(list: &[&str]) -> Scopes {
        Scopes::from_words(list.iter().copied()).expect("scopes")
    }

    #[test]
    fn intersect_grants_what_rule_and_subject_both_allow() {
        let r = rule("r", &["read", "write"], &["read"]);
        assert_eq!(
            grant(
                &r,
                r.scope_mode,
                Some(&s(&["read"])),
                &s(&["read", "write"])
            )
            .expect("ok"),
            s(&["read"])
        );
        let err = grant(&r, r.scope_mode, Some(&s(&["write"])), &s(&["read"]))
            .expect_err("subject lacks write");
        assert_eq!(err.code, ErrorCode::InvalidScope);
        assert!(err.description.contains("\"write\""));
        let err = grant(&r, r.scope_mode, Some(&s(&["admin"])), &s(&["admin"]))
            .expect_err("rule lacks admin");
        assert!(err.description.contains("\"admin\""));
    }

    #[test]
    fn grant_mode_ignores_the_subjects_scopes() {
        let mut r = rule("r", &["read", "write"], &["read"]);
        r.scope_mode = ScopeMode::Grant;
        assert_eq!(
            grant(&r, r.scope_mode, Some(&s(&["write"])), Scopes::none()).expect("ok"),
            s(&["write"])
        );
        assert_eq!(
            grant(&r, r.scope_mode, None, Scopes::none()).expect("ok"),
            s(&["read"])
        );
        assert!(grant(&r, r.scope_mode, Some(&s(&["admin"])), Scopes::none()).is_err());
    }

    #[test]
    fn defaults_apply_when_nothing_is_requested() {
        let r = rule("r", &["read", "write"], &["read", "write"]);
        assert_eq!(
            grant(&r, r.scope_mode, None, &s(&["write"])).expect("ok"),
            s(&["write"])
        );
        assert!(
            grant(&r, r.scope_mode, None, &s(&["other"])).is_err(),
            "subject carries no default scope"
        );
        let no_defaults = rule("r", &["read"], &[]);
        assert!(
            grant(&no_defaults, no_defaults.scope_mode, None, &s(&["read"])).is_err(),
            "a scope must be requested"
        );
    }

    #[test]
    fn repeated_scopes_are_granted_once_in_request_order() {
        let r = rule("r", &["a", "b"], &[]);
        assert_eq!(
            grant(
                &r,
                r.scope_mode,
                Some(&s(&["b", "a", "b"])),
                &s(&["a", "b"])
            )
            .expect("ok"),
            s(&["b", "a"])
        );
    }

    #[test]
    fn a_token_without_scopes_meets_intersect_with_a_hint() {
        let r = rule("r", &["read"], &["read"]);
        for requested in [Some(s(&["read"])), None] {
            let err =
                grant(&r, r.scope_mode, requested.as_ref(), Scopes::none()).expect_err("no scopes");
            assert!(
                err.description.contains("scope_mode = \"grant\""),
                "{}",
                err.description
            );
        }
        let err =
            grant(&r, r.scope_mode, Some(&s(&["read"])), &s(&["write"])).expect_err("other scopes");
        assert!(
            !err.description.contains("scope_mode"),
            "{}",
            err.description
        );
    }
}
