use std::time::Duration;

use serde_json::{Map, json};

use super::*;
use crate::config::{ActorMode, ScopeMode, SigningConfig};
use crate::error::ErrorCode;
use crate::oauth::{Resource, Scopes};

pub fn rule(name: &str, scopes: &[&str], default_scopes: &[&str]) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        clients: vec!["orders-svc".into()],
        issuers: vec!["corp".into()],
        subjects: vec![],
        audiences: vec!["inventory-api".into()],
        resources: vec![resource("https://inventory.internal/")],
        scopes: Scopes::from_words(scopes.iter().copied()).expect("scopes"),
        default_scopes: Scopes::from_words(default_scopes.iter().copied()).expect("scopes"),
        scope_mode: ScopeMode::Intersect,
        require_scopes: Scopes::default(),
        condition: None,
        actor: ActorMode::None,
        actors: vec![],
        ttl: None,
        copy_claims: vec![],
        mints: Mints::AccessToken,
        tctx: vec![],
        rctx: vec![],
        subject_claim: None,
        audience_client_id: None,
    }
}

pub fn subject(issuer_id: &str, scopes: &[&str]) -> VerifiedToken {
    let mut claims = Map::new();
    claims.insert("email".into(), json!("alice@example.com"));
    VerifiedToken {
        issuer_id: issuer_id.into(),
        iss: "https://idp".into(),
        sub: "alice".into(),
        jti: Some("subject-jti".into()),
        exp: 10_000,
        accepted_until: 10_000,
        scopes: Scopes::from_words(scopes.iter().copied()).expect("scopes"),
        claims,
    }
}

fn pick(
    rules: &[RuleConfig],
    client_id: &str,
    subject: &VerifiedToken,
    targets: &Targets<'_>,
) -> Result<String, OAuthError> {
    let ex = Exchange {
        client_id,
        subject,
        actor: None,
        targets: targets.clone(),
        requested_scopes: None,
        now: 1_000,
        proof_jkt: None,
        wants: Wants::AccessToken,
        presented_grant: false,
        txn: None,
    };
    choose(&RuleSet::new(rules.to_vec()), &ex).map(|r| r.name.clone())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn resource(uri: &str) -> Resource {
    Resource::parse(uri).expect("resource")
}

fn scopes(list: &[&str]) -> Scopes {
    Scopes::from_words(list.iter().copied()).expect("scopes")
}

fn limits(signing: &SigningConfig) -> Limits<'_> {
    Limits { signing, txn: None }
}

fn signing() -> SigningConfig {
    SigningConfig {
        default_ttl: Duration::from_secs(300),
        max_ttl: Duration::from_secs(3600),
        keys: vec![],
    }
}

#[test]
fn the_first_applying_rule_wins() {
    let mut second = rule("second", &["read"], &[]);
    second.audiences.push("billing-api".into());
    let rules = vec![rule("first", &["read"], &[]), second];
    let s = subject("corp", &[]);
    let aud = strings(&["inventory-api"]);
    let t = Targets {
        audiences: &aud,
        resources: &[],
    };
    assert_eq!(
        pick(&rules, "orders-svc", &s, &t).ok(),
        Some("first".to_string())
    );
    let aud = strings(&["billing-api"]);
    let t = Targets {
        audiences: &aud,
        resources: &[],
    };
    assert_eq!(
        pick(&rules, "orders-svc", &s, &t).ok(),
        Some("second".to_string())
    );
}

#[test]
fn a_client_no_rule_names_is_unauthorized() {
    let rules = vec![rule("r", &["read"], &[])];
    let aud = strings(&["inventory-api"]);
    let err = pick(
        &rules,
        "stranger",
        &subject("corp", &[]),
        &Targets {
            audiences: &aud,
            resources: &[],
        },
    )
    .expect_err("denied");
    assert_eq!(err.code, ErrorCode::UnauthorizedClient);
    let set = RuleSet::new(rules.clone());
    assert!(!set.names_client("stranger"));
    assert!(set.names_client("orders-svc"));
}

#[test]
fn every_target_must_be_granted_and_the_closest_rule_explains() {
    let mut r = rule("r", &["read"], &[]);
    r.audiences.push("urn:inventory-api".into());
    let rules = vec![r];
    let s = subject("corp", &[]);
    let aud = strings(&["inventory-api", "billing-api"]);
    let err = pick(
        &rules,
        "orders-svc",
        &s,
        &Targets {
            audiences: &aud,
            resources: &[],
        },
    )
    .expect_err("denied");
    assert_eq!(err.code, ErrorCode::InvalidTarget);
    assert!(
        err.description.contains("\"r\"") && err.description.contains("\"billing-api\""),
        "{}",
        err.description
    );
    let res = vec![resource("https://inventory.internal/")];
    assert!(
        pick(
            &rules,
            "orders-svc",
            &s,
            &Targets {
                audiences: &[],
                resources: &res
            }
        )
        .is_ok()
    );
    let res = vec![resource("urn:inventory-api")];
    assert!(
        pick(
            &rules,
            "orders-svc",
            &s,
            &Targets {
                audiences: &[],
                resources: &res
            }
        )
        .is_err(),
        "an audience value is not a resource"
    );
}

#[test]
fn issuer_and_required_scopes_take_part_in_the_choice() {
    let mut strict = rule("strict", &["read"], &[]);
    strict.require_scopes = scopes(&["exchange"]);
    let rules = vec![strict];
    let aud = strings(&["inventory-api"]);
    let t = Targets {
        audiences: &aud,
        resources: &[],
    };
    let err =
        pick(&rules, "orders-svc", &subject("corp", &["read"]), &t).expect_err("missing scope");
    assert!(
        err.description.contains("\"exchange\""),
        "{}",
        err.description
    );
    assert!(pick(&rules, "orders-svc", &subject("corp", &["exchange"]), &t).is_ok());
    let err = pick(&rules, "orders-svc", &subject("partner", &["exchange"]), &t)
        .expect_err("other issuer");
    assert!(
        err.description.contains("\"partner\""),
        "{}",
        err.description
    );
}

#[test]
fn requested_scopes_do_not_choose_the_rule() {
    let rules = vec![
        rule("narrow", &["read"], &[]),
        rule("wide", &["read", "write"], &[]),
    ];
    let s = subject("corp", &["read", "write"]);
    let aud = strings(&["inventory-api"]);
    let write = scopes(&["write"]);
    let ex = Exchange {
        client_id: "orders-svc",
        subject: &s,
        actor: None,
        targets: Targets {
            audiences: &aud,
            resources: &[],
        },
        requested_scopes: Some(&write),
        now: 1_000,
        proof_jkt: None,
        wants: Wants::AccessToken,
        presented_grant: false,
        txn: None,
    };
    let err = plan(&RuleSet::new(rules), limits(&signing()), &ex)
        .expect_err("narrow applies and refuses write");
    assert_eq!(err.code, ErrorCode::InvalidScope);
}

#[test]
fn a_plan_carries_targets_scopes_lifetime_actor_and_copied_claims() {
    let mut r = rule("r", &["read"], &["read"]);
    r.actor = ActorMode::Client;
    r.copy_claims = strings(&["email", "absent"]);
    r.ttl = Some(Duration::from_secs(60));
    let s = subject("corp", &["read"]);
    let aud = strings(&["inventory-api"]);
    let res = vec![resource("https://inventory.internal/")];
    let ex = Exchange {
        client_id: "orders-svc",
        subject: &s,
        actor: None,
        targets: Targets {
            audiences: &aud,
            resources: &res,
        },
        requested_scopes: None,
        now: 1_000,
        proof_jkt: None,
        wants: Wants::AccessToken,
        presented_grant: false,
        txn: None,
    };
    let rules = RuleSet::new(vec![r]);
    let (chosen, grant) = plan(&rules, limits(&signing()), &ex).expect("granted");
    assert_eq!(chosen.name, "r");
    let Granted::AccessToken(grant) = grant else {
        panic!("an access-token rule grants an access token");
    };
    assert_eq!(
        grant.audiences,
        strings(&["inventory-api", "https://inventory.internal/"])
    );
    assert_eq!(grant.scopes, scopes(&["read"]));
    assert_eq!(grant.expires_at, 1_060);
    assert_eq!(grant.act, Some(json!({"sub": "orders-svc"})));
    assert_eq!(grant.copied.get("email"), Some(&json!("alice@example.com")));
    assert!(!grant.copied.contains_key("absent"));
}

#[test]
fn a_condition_takes_part_in_the_choice_and_an_error_denies() {
    let mut staff = rule("staff-only", &["read"], &[]);
    staff.condition = Some(
        crate::condition::Condition::compile(r#""staff" in subject.groups"#).expect("compiles"),
    );
    let rules = vec![staff, rule("fallback", &["read"], &[])];
    let aud = strings(&["inventory-api"]);
    let t = Targets {
        audiences: &aud,
        resources: &[],
    };
    let mut s = subject("corp", &[]);
    s.claims.insert("groups".into(), json!(["staff"]));
    assert_eq!(
        pick(&rules, "orders-svc", &s, &t).ok(),
        Some("staff-only".to_string())
    );
    s.claims.insert("groups".into(), json!(["guests"]));
    assert_eq!(
        pick(&rules, "orders-svc", &s, &t).ok(),
        Some("fallback".to_string())
    );
    s.claims.remove("groups");
    let err = pick(&rules, "orders-svc", &s, &t).expect_err("an evaluation error denies");
    assert_eq!(err.code, ErrorCode::InvalidTarget);
    assert!(
        !err.description.contains("in subject.groups"),
        "never the condition's text: {}",
        err.description
    );
}

#[test]
fn the_index_keeps_file_order_within_a_client_and_issuer() {
    let mut other_issuer = rule("partner-first", &["read"], &[]);
    other_issuer.issuers = strings(&["partner"]);
    let mut other_client = rule("billing", &["read"], &[]);
    other_client.clients = strings(&["billing-svc"]);
    let rules = vec![
        other_issuer,
        other_client,
        rule("second", &["read"], &[]),
        rule("third", &["read"], &[]),
    ];
    let set = RuleSet::new(rules.clone());
    let names: Vec<&str> = set
        .candidates("orders-svc", "corp", "alice")
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, vec!["second", "third"]);
    assert_eq!(set.naming_client("orders-svc").count(), 3);
    assert_eq!(set.candidates("billing-svc", "partner", "alice").count(), 0);
    let aud = strings(&["inventory-api"]);
    let t = Targets {
        audiences: &aud,
        resources: &[],
    };
    assert_eq!(
        pick(&rules, "orders-svc", &subject("corp", &[]), &t).ok(),
        Some("second".to_string())
    );
}

#[test]
fn the_closest_rule_is_the_first_with_fewest_misses_among_those_weighed() {
    let s = subject("corp", &[]);
    let aud = strings(&["billing-api"]);
    let targets = Targets {
        audiences: &aud,
        resources: &[],
    };
    // Two misses each (issuer and audience), then one (audience only) at `at`.
    let far = |i: usize| {
        let mut r = rule(&format!("far-{i}"), &["read"], &[]);
        r.issuers = strings(&["partner"]);
        r
    };
    let set = |at: usize| -> Vec<RuleConfig> {
        (0..300)
            .map(|i| {
                if i == at {
                    rule(&format!("near-{i}"), &["read"], &[])
                } else {
                    far(i)
                }
            })
            .collect()
    };
    let err = pick(&set(200), "orders-svc", &s, &targets).expect_err("denied");
    assert!(
        err.description.contains("the closest, rule \"near-200\""),
        "{}",
        err.description
    );
    let err = pick(&set(280), "orders-svc", &s, &targets).expect_err("denied");
    assert!(
        err.description.contains("the closest, rule \"far-0\""),
        "past the rules weighed, the first of the fewest misses seen: {}",
        err.description
    );
}
