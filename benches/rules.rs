//! Rule choice against the size of the rule set: choosing a rule must cost the same with
//! 10,000 rules as with 10, whether they differ by client and issuer or all name one client and
//! issuer and differ by subject pattern. `cargo bench --bench rules`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Map;
use tessera::config::{ActorMode, Mints, RuleConfig, ScopeMode, Wants};
use tessera::oauth::Scopes;
use tessera::rules::{Exchange, RuleSet, Targets, choose};
use tessera::subjects::SubjectPattern;
use tessera::tokens::VerifiedToken;

/// `n` rules over `n / 10` clients and 10 issuers; the measured client's rule comes last.
fn rules(n: usize) -> RuleSet {
    let rule = |i: usize, client: String, issuer: String| RuleConfig {
        name: format!("rule-{i}"),
        clients: vec![client],
        issuers: vec![issuer],
        subjects: vec![],
        audiences: vec![format!("api-{}", i % 50)],
        resources: vec![],
        scopes: Scopes::parse("read").expect("scope"),
        default_scopes: Scopes::parse("read").expect("scope"),
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
    };
    let mut list: Vec<RuleConfig> = (0..n - 1)
        .map(|i| {
            rule(
                i,
                format!("svc-{}", i % (n / 10).max(1)),
                format!("idp-{}", i % 10),
            )
        })
        .collect();
    list.push(rule(n, "measured-svc".into(), "idp-3".into()));
    RuleSet::new(list)
}

/// `n` rules for one client and issuer, each naming its own subjects the way platforms shape
/// them (Kubernetes service accounts by namespace, GitHub repositories by ref, SPIFFE paths);
/// the one that matches comes last.
fn pattern_rules(n: usize) -> RuleSet {
    let list = (0..n)
        .map(|i| {
            let pattern = match (i + 1 == n, i % 3) {
                (true, _) => "system:serviceaccount:measured:*".to_string(),
                (false, 0) => format!("system:serviceaccount:ns-{i}:*"),
                (false, 1) => format!("repo:acme/repo-{i}:ref:refs/heads/main"),
                (false, _) => format!("/ns/ns-{i}/sa/*"),
            };
            let mut rule = rules(10).all()[0].clone();
            rule.name = format!("pattern-{i}");
            rule.clients = vec!["workload-svc".into()];
            rule.issuers = vec!["k8s".into()];
            rule.audiences = vec!["api".into()];
            rule.subjects = vec![SubjectPattern::parse(&pattern).expect("pattern")];
            rule
        })
        .collect();
    RuleSet::new(list)
}

/// `client` asking, for `subject`, for `audiences` with no scope named.
fn exchange<'a>(
    client: &'a str,
    subject: &'a VerifiedToken,
    audiences: &'a [String],
) -> Exchange<'a> {
    Exchange {
        client_id: client,
        subject,
        actor: None,
        targets: Targets {
            audiences,
            resources: &[],
        },
        requested_scopes: None,
        now: 0,
        proof_jkt: None,
        wants: Wants::AccessToken,
        presented_grant: false,
        txn: None,
    }
}

fn bench(c: &mut Criterion) {
    let subject = VerifiedToken {
        issuer_id: "idp-3".into(),
        iss: "https://idp-3".into(),
        sub: "alice".into(),
        jti: None,
        exp: i64::MAX,
        accepted_until: i64::MAX,
        scopes: Scopes::parse("read").expect("scope"),
        claims: Map::new(),
    };
    let mut group = c.benchmark_group("choose a rule");
    group.measurement_time(Duration::from_secs(3));
    for n in [10, 10_000] {
        let set = rules(n);
        let audiences = vec![format!("api-{}", n % 50)];
        let ex = exchange("measured-svc", &subject, &audiences);
        group.bench_function(format!("{n} rules"), |b| {
            b.iter(|| black_box(choose(black_box(&set), black_box(&ex)).is_ok()))
        });
    }
    group.finish();

    let workload = VerifiedToken {
        issuer_id: "k8s".into(),
        sub: "system:serviceaccount:measured:api".into(),
        ..subject.clone()
    };
    let audiences = vec!["api".to_string()];
    let mut group = c.benchmark_group("choose a rule by subject pattern");
    group.measurement_time(Duration::from_secs(3));
    for n in [10, 10_000] {
        let set = pattern_rules(n);
        let ex = exchange("workload-svc", &workload, &audiences);
        assert_eq!(
            choose(&set, &ex).map(|r| r.name.clone()).ok(),
            Some(format!("pattern-{}", n - 1))
        );
        group.bench_function(format!("{n} rules"), |b| {
            b.iter(|| black_box(choose(black_box(&set), black_box(&ex)).is_ok()))
        });
    }
    group.finish();

    // A subject no rule names: the denial weighs rules to name the closest.
    let stranger = VerifiedToken {
        sub: "system:serviceaccount:stranger:api".into(),
        ..workload.clone()
    };
    let mut group = c.benchmark_group("deny, naming the closest rule");
    group.measurement_time(Duration::from_secs(3));
    for n in [10, 10_000] {
        let set = pattern_rules(n);
        let ex = exchange("workload-svc", &stranger, &audiences);
        assert!(choose(&set, &ex).is_err());
        group.bench_function(format!("{n} rules"), |b| {
            b.iter(|| black_box(choose(black_box(&set), black_box(&ex)).is_err()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
