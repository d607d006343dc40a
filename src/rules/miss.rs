//! Why a rule does not apply, in words (SPEC §10): each miss puts the exchange's own value beside
//! what the rule expects, bounded and printable, and never quotes a condition's text.

use std::fmt;

use super::quoted;
use crate::oauth::{Resource, Scope, Scopes};
use crate::subjects::SubjectPattern;

/// One criterion of §4 a rule does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss<'a> {
    /// The subject token's issuer (by id) is not one the rule names.
    Issuer {
        presented: &'a str,
        accepted: &'a [String],
    },
    /// The subject matches none of the rule's subject patterns.
    Subject {
        sub: &'a str,
        patterns: &'a [SubjectPattern],
    },
    /// Requested audiences the rule does not grant.
    Audiences {
        asked: Vec<&'a str>,
        granted: &'a [String],
    },
    /// Requested resources the rule does not grant.
    Resources {
        asked: Vec<&'a str>,
        granted: &'a [Resource],
    },
    /// Scopes the rule requires that the subject token does not carry.
    RequiredScopes {
        missing: Vec<&'a str>,
        carried: &'a Scopes,
    },
    /// The rule's condition came out false (its text is the platform team's, not the caller's).
    Condition,
}

impl fmt::Display for Miss<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Issuer {
                presented,
                accepted,
            } => write!(
                f,
                "it does not accept subject tokens from issuer {} (it accepts {})",
                quoted(&[presented]),
                listed(accepted.iter().map(String::as_str), "no issuer")
            ),
            Miss::Subject { sub, patterns } => write!(
                f,
                "sub {} matches none of its subjects ({})",
                quoted(&[sub]),
                listed(patterns.iter().map(SubjectPattern::as_str), "none")
            ),
            Miss::Audiences { asked, granted } => write!(
                f,
                "it does not grant audience {} (it grants {})",
                quoted(asked),
                listed(granted.iter().map(String::as_str), "no audience")
            ),
            Miss::Resources { asked, granted } => write!(
                f,
                "it does not grant resource {} (it grants {})",
                quoted(asked),
                listed(granted.iter().map(Resource::as_str), "no resource")
            ),
            Miss::RequiredScopes { missing, carried } => write!(
                f,
                "it requires the subject token to carry scope {} (the token carries {})",
                quoted(missing),
                listed(carried.iter().map(Scope::as_str), "no scope")
            ),
            Miss::Condition => f.write_str("it has a condition this exchange does not meet"),
        }
    }
}

/// `items` quoted, or `none` when there are none.
fn listed<'a>(items: impl Iterator<Item = &'a str>, none: &str) -> String {
    let items: Vec<&str> = items.collect();
    if items.is_empty() {
        none.to_string()
    } else {
        quoted(&items)
    }
}

/// The misses of a rule, in one line.
pub fn joined(misses: &[Miss<'_>]) -> String {
    misses
        .iter()
        .map(Miss::to_string)
        .collect::<Vec<_>>()
        .join("; and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_shows_the_value_beside_the_expectation() {
        let patterns = vec![
            SubjectPattern::parse("repo:acme/api:ref:refs/heads/main").expect("pattern"),
            SubjectPattern::parse("repo:acme/api:environment:*").expect("pattern"),
        ];
        let miss = Miss::Subject {
            sub: "repo:acme/api:pull_request",
            patterns: &patterns,
        };
        assert_eq!(
            miss.to_string(),
            "sub \"repo:acme/api:pull_request\" matches none of its subjects \
             (\"repo:acme/api:ref:refs/heads/main\", \"repo:acme/api:environment:*\")"
        );
        let carried = Scopes::parse("read").expect("scopes");
        let miss = Miss::RequiredScopes {
            missing: vec!["exchange"],
            carried: &carried,
        };
        assert_eq!(
            miss.to_string(),
            "it requires the subject token to carry scope \"exchange\" (the token carries \"read\")"
        );
        let none = Scopes::default();
        let miss = Miss::RequiredScopes {
            missing: vec!["exchange"],
            carried: &none,
        };
        assert!(miss.to_string().ends_with("(the token carries no scope)"));
    }

    #[test]
    fn values_from_the_token_are_bounded_and_printable() {
        let long = format!("repo:{}\u{1b}[31m", "x".repeat(300));
        let patterns = vec![SubjectPattern::parse("repo:acme/*").expect("pattern")];
        let shown = Miss::Subject {
            sub: &long,
            patterns: &patterns,
        }
        .to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.chars().count() < 140, "{shown}");
    }
}
