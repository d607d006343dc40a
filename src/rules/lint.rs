//! Warnings `tessera check` gives about rules that are valid but surely not what was meant.

use super::RuleSet;
use crate::config::{Config, RuleConfig};
use crate::subjects::SubjectPattern;

pub fn lint(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let set = RuleSet::new(config.rules.clone());
    for (j, later) in config.rules.iter().enumerate() {
        let Some(first_client) = later.clients.first() else {
            continue;
        };
        let earlier = set
            .naming_client(first_client)
            .take_while(|r| !std::ptr::eq(*r, &set.all()[j]));
        if let Some(shadow) = earlier.into_iter().find(|e| shadows(e, later)) {
            warnings.push(format!(
                "rule \"{}\" can never apply: rule \"{}\" comes before it and applies whenever it does",
                later.name, shadow.name
            ));
        }
    }
    for client in &config.clients {
        if !set.names_client(&client.id) {
            warnings.push(format!(
                "client \"{}\" is named by no rule (it can still introspect and revoke)",
                client.id
            ));
        }
    }
    for issuer in &config.issuers {
        let used = config.rules.iter().any(|r| {
            r.issuers.contains(&issuer.id) || r.actors.iter().any(|a| a.issuer == issuer.id)
        });
        if !used {
            warnings.push(format!("issuer \"{}\" is used by no rule", issuer.id));
        }
    }
    warnings
}

/// `a` applies to every exchange `b` applies to: `b` comes too late to ever be chosen.
fn shadows(a: &RuleConfig, b: &RuleConfig) -> bool {
    let within = |small: &[String], large: &[String]| small.iter().all(|s| large.contains(s));
    let condition_no_narrower = match (&a.condition, &b.condition) {
        (None, _) => true,
        (Some(ca), Some(cb)) => ca.source == cb.source,
        (Some(_), None) => false,
    };
    // A rule applies only to requests for the kind of token it mints.
    a.mints == b.mints
        && condition_no_narrower
        && within(&b.clients, &a.clients)
        && within(&b.issuers, &a.issuers)
        && within(&b.audiences, &a.audiences)
        && b.resources.iter().all(|r| a.resources.contains(r))
        && a.require_scopes.is_subset(&b.require_scopes)
        && subjects_within(&b.subjects, &a.subjects)
}

/// Every subject the `narrow` patterns match, one of `broad` surely matches: `broad` names no
/// subject, or each narrow pattern is one of them or extends a broad `prefix*`. Anything else
/// is taken as not covered: a missed warning is better than a false one.
fn subjects_within(narrow: &[SubjectPattern], broad: &[SubjectPattern]) -> bool {
    if broad.is_empty() {
        return true;
    }
    !narrow.is_empty()
        && narrow.iter().all(|n| {
            broad.iter().any(|b| {
                b == n
                    || (b.target() == n.target()
                        && b.as_str().strip_suffix('*').is_some_and(|prefix| {
                            !prefix.contains('*') && n.as_str().starts_with(prefix)
                        }))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::rule;

    #[test]
    fn a_broader_earlier_rule_shadows_a_narrower_later_one() {
        let broad = rule("broad", &["read"], &[]);
        let mut narrow = rule("narrow", &["read", "write"], &[]);
        narrow.resources.clear();
        assert!(shadows(&broad, &narrow));
        assert!(
            !shadows(&narrow, &broad),
            "the narrow one lacks the resource"
        );
        narrow.require_scopes = crate::oauth::Scopes::parse("x").expect("scope");
        assert!(shadows(&broad, &narrow), "requiring more scopes narrows");
        let mut picky = broad.clone();
        picky.require_scopes = crate::oauth::Scopes::parse("y").expect("scope");
        assert!(
            !shadows(&picky, &narrow),
            "requiring other scopes does not shadow"
        );
        let mut conditional = broad.clone();
        conditional.condition =
            Some(crate::condition::Condition::compile("client == \"x\"").expect("cel"));
        assert!(!shadows(&conditional, &narrow), "a condition may not hold");
    }

    #[test]
    fn rules_for_other_subjects_do_not_shadow_each_other() {
        let p = |s: &str| SubjectPattern::parse(s).expect("pattern");
        let mut payments = rule("payments", &["read"], &[]);
        payments.subjects = vec![p("system:serviceaccount:payments:*")];
        let mut billing = payments.clone();
        billing.subjects = vec![p("system:serviceaccount:billing:*")];
        assert!(!shadows(&payments, &billing));
        let mut payments_api = payments.clone();
        payments_api.subjects = vec![p("system:serviceaccount:payments:api")];
        assert!(shadows(&payments, &payments_api), "a narrower pattern");
        assert!(!shadows(&payments_api, &payments));
        let any = rule("any", &["read"], &[]);
        assert!(shadows(&any, &payments), "no subjects: any subject");
        assert!(!shadows(&payments, &any));
        let mut path = payments.clone();
        path.subjects = vec![p("/ns/payments/*")];
        assert!(!shadows(&path, &payments) && !shadows(&payments, &path));
    }
}
