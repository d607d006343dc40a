//! Warnings `tessera check` gives about rules that are valid but surely not what was meant.

use super::RuleSet;
use crate::config::{Config, RuleConfig};

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
    condition_no_narrower
        && within(&b.clients, &a.clients)
        && within(&b.issuers, &a.issuers)
        && within(&b.audiences, &a.audiences)
        && b.resources.iter().all(|r| a.resources.contains(r))
        && a.require_scopes.is_subset(&b.require_scopes)
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
}
