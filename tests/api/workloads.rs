//! Workload identities (SPEC §10) through the recipes of `deploy/examples/workloads/`: tokens
//! shaped exactly as Kubernetes, GitHub Actions and SPIRE shape them, exchanged through each
//! recipe's own issuers, clients and rules, with only the issuer's address (and the clients'
//! secrets) pointed at the test identity provider.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::*;

const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const AUD: &str = "https://sts.example.internal";

/// The recipe `file`, its issuers served by the test identity provider (discovery, or the
/// bundle endpoint of a trust domain) and its clients' secret `ORDERS_SECRET`.
fn recipe(file: &str) -> impl FnOnce(&mut RawConfig) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/examples/workloads")
        .join(file);
    move |c: &mut RawConfig| {
        let idp = c.issuer_mut("corp").issuer.clone();
        let recipe = read_config(&path);
        c.issuers = recipe.issuers;
        c.clients = recipe.clients;
        c.rules = recipe.rules;
        for issuer in &mut c.issuers {
            if issuer.issuer.starts_with("spiffe://") {
                issuer.jwks_uri = Some(format!("{idp}/jwks"));
            } else {
                issuer.issuer = idp.clone();
            }
        }
        for client in &mut c.clients {
            client.secret_sha256 = Some(tessera::clients::sha256_hex(ORDERS_SECRET));
        }
    }
}

async fn exchange_as(
    app: &TestApp,
    client: &str,
    token: &str,
    token_type: &str,
    audience: &str,
) -> reqwest::Response {
    app.post_token(
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", token_type),
            ("audience", audience),
        ],
        Some((client, ORDERS_SECRET)),
    )
    .await
}

/// The description of a refused exchange (400 with `code`).
async fn refused(
    app: &TestApp,
    client: &str,
    token: &str,
    token_type: &str,
    audience: &str,
    code: &str,
) -> String {
    assert_error(
        exchange_as(app, client, token, token_type, audience).await,
        400,
        code,
    )
    .await
}

/// As `refused`, the description saying `says`.
async fn refused_saying(
    app: &TestApp,
    client: &str,
    token: &str,
    token_type: &str,
    audience: &str,
    code: &str,
    says: &str,
) {
    let desc = refused(app, client, token, token_type, audience, code).await;
    assert!(desc.contains(says), "{desc}");
}

async fn granted(resp: reqwest::Response) -> serde_json::Value {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    claims_of(body["access_token"].as_str().unwrap())
}

/// A projected service-account token as the kubelet mounts it: RS256 without `typ`, `sub`
/// `system:serviceaccount:<namespace>:<name>`, the pod, node and account under `kubernetes.io`.
fn kubernetes_token(app: &TestApp, namespace: &str, account: &str) -> String {
    let t = now();
    let claims = json!({
        "aud": [AUD],
        "exp": t + 3607,
        "iat": t,
        "iss": app.idp.url,
        "jti": uuid_like(),
        "kubernetes.io": {
            "namespace": namespace,
            "node": { "name": "ip-10-0-17-42.eu-west-1.compute.internal", "uid": "c1b7d7e4-7a55-4c3d-9d5e-0f2a9b8c1d11" },
            "pod": { "name": format!("{account}-7d9c6b5f4-x2x9q"), "uid": "8f1e4c2a-3b6d-4e9f-a7c5-2d1b0e9f8a76" },
            "serviceaccount": { "name": account, "uid": "0f5e9a3c-6d2b-4f1e-8c7a-9b3d2e1f0a45" }
        },
        "nbf": t,
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
    });
    app.key
        .sign_named("RS256", json!({ "kid": app.key.kid }), &claims)
}

#[tokio::test]
async fn a_kubernetes_service_account_token_is_exchanged_through_its_recipe() {
    let app = TestApp::spawn_with(recipe("kubernetes.toml")).await;
    let token = kubernetes_token(&app, "payments", "api");
    let minted = granted(exchange_as(&app, "payments-api", &token, JWT, "ledger-api").await).await;
    assert_eq!(minted["sub"], "system:serviceaccount:payments:api");
    assert_eq!(minted["aud"], "ledger-api");
    assert_eq!(
        minted["scope"], "ledger:write",
        "scope_mode grant: the rule decides"
    );

    let other_namespace = kubernetes_token(&app, "billing", "api");
    refused_saying(
        &app,
        "payments-api",
        &other_namespace,
        JWT,
        "ledger-api",
        "invalid_target",
        "the closest, rule \"payments-to-ledger\": sub \"system:serviceaccount:billing:api\" \
             matches none of its subjects (\"system:serviceaccount:payments:*\")",
    )
    .await;
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["subject_issuer"], "cluster");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:billing:api"),
        "{record}"
    );

    let other_account = kubernetes_token(&app, "payments", "batch");
    let desc = refused(
        &app,
        "payments-api",
        &other_account,
        JWT,
        "ledger-api",
        "invalid_target",
    )
    .await;
    assert!(
        desc.contains("it has a condition this exchange does not meet"),
        "{desc}"
    );
    assert!(
        !desc.contains("serviceaccount.name"),
        "never a condition's text: {desc}"
    );

    refused_saying(
        &app,
        "payments-api",
        &token,
        ACCESS_TOKEN,
        "ledger-api",
        "invalid_request",
        "subject_token_type urn:ietf:params:oauth:token-type:jwt",
    )
    .await;

    // `tessera explain` says the same of the same token.
    let file = app.dir.path().join("sa.jwt");
    std::fs::write(&file, &other_namespace).unwrap();
    let out = app.cli(&[
        "explain",
        "--client",
        "payments-api",
        "--subject-token",
        file.to_str().unwrap(),
        "--subject-token-type",
        "jwt",
        "--audience",
        "ledger-api",
    ]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(
            "rule 1 \"payments-to-ledger\": does not apply: sub \"system:serviceaccount:billing:api\" \
             matches none of its subjects (\"system:serviceaccount:payments:*\")"
        ),
        "{shown}"
    );
}

/// An Actions OIDC token as GitHub mints it (header `typ: JWT`, `x5t`; ids as strings), for a
/// job of `repository` in environment `production` on `refs/heads/main`, with `sub` given.
fn github_token(app: &TestApp, sub: &str, overrides: serde_json::Value) -> String {
    let t = now();
    let mut claims = json!({
        "jti": uuid_like(),
        "sub": sub,
        "environment": "production",
        "aud": AUD,
        "ref": "refs/heads/main",
        "sha": "d6e4b7c2a1f09e8d7c6b5a4f3e2d1c0b9a8f7e6d",
        "repository": "acme/api",
        "repository_owner": "acme",
        "actor_id": "1208337",
        "repository_visibility": "private",
        "repository_id": "456789",
        "repository_owner_id": "123456",
        "run_id": "9876543210",
        "run_number": "412",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "workflow": "deploy",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_protected": "true",
        "ref_type": "branch",
        "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "d6e4b7c2a1f09e8d7c6b5a4f3e2d1c0b9a8f7e6d",
        "job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_sha": "d6e4b7c2a1f09e8d7c6b5a4f3e2d1c0b9a8f7e6d",
        "iss": app.idp.url,
        "nbf": t - 5,
        "exp": t + 300,
        "iat": t,
    });
    for (k, v) in overrides.as_object().unwrap() {
        claims[k] = v.clone();
    }
    app.key.sign_named(
        "RS256",
        json!({ "typ": "JWT", "x5t": "cc413527-173f-5a05-976e-9c52b1d7b431", "kid": app.key.kid }),
        &claims,
    )
}

#[tokio::test]
async fn a_github_actions_token_is_exchanged_through_its_recipe_in_both_sub_forms() {
    let app = TestApp::spawn_with(recipe("github-actions.toml")).await;
    for sub in [
        "repo:acme/api:environment:production",
        "repo:acme@123456/api@456789:environment:production",
    ] {
        let token = github_token(&app, sub, json!({}));
        let minted =
            granted(exchange_as(&app, "acme-deployer", &token, JWT, "deploy-api").await).await;
        assert_eq!(minted["sub"], sub);
        assert_eq!(minted["scope"], "deploy:write");
    }

    // A repository deleted and re-created under the same name has another id: the name
    // matches, the pin does not.
    let impostor = github_token(
        &app,
        "repo:acme/api:environment:production",
        json!({ "repository_id": "999001" }),
    );
    refused_saying(
        &app,
        "acme-deployer",
        &impostor,
        JWT,
        "deploy-api",
        "invalid_target",
        "rule \"deploy-api-to-production\": it has a condition this exchange does not meet",
    )
    .await;

    // A pull request's token names no environment: its sub says so, and the denial shows it.
    let pull_request = github_token(
        &app,
        "repo:acme/api:pull_request",
        json!({ "environment": null, "event_name": "pull_request", "ref": "refs/pull/7/merge" }),
    );
    refused_saying(
        &app,
        "acme-deployer",
        &pull_request,
        JWT,
        "deploy-api",
        "invalid_target",
        "sub \"repo:acme/api:pull_request\" matches none of its subjects \
             (\"repo:acme/api:environment:production\", \
             \"repo:acme@123456/api@456789:environment:production\")",
    )
    .await;
    let minted =
        granted(exchange_as(&app, "acme-deployer", &pull_request, JWT, "artifacts-api").await)
            .await;
    assert_eq!(minted["scope"], "artifacts:read");

    // Another owner's pull request matches neither pattern nor pin.
    let stranger = github_token(
        &app,
        "repo:acme-evil/api:pull_request",
        json!({ "repository_owner_id": "777" }),
    );
    refused_saying(
        &app,
        "acme-deployer",
        &stranger,
        JWT,
        "artifacts-api",
        "invalid_target",
        "sub \"repo:acme-evil/api:pull_request\" matches none of its subjects",
    )
    .await;
}

/// A JWT-SVID as a SPIRE agent hands it out: `sub` the SPIFFE ID, `aud`, `exp`, `iat`, header
/// `typ: JWT`; `iss` only when `extra` gives one.
fn svid(app: &TestApp, id: &str, extra: serde_json::Value) -> String {
    let t = now();
    let mut claims = json!({ "sub": id, "aud": [AUD], "exp": t + 300, "iat": t });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    app.key.sign_named(
        "RS256",
        json!({ "kid": app.key.kid, "typ": "JWT" }),
        &claims,
    )
}

#[tokio::test]
async fn a_spiffe_jwt_svid_is_attributed_to_its_trust_domain_through_its_recipe() {
    let app = TestApp::spawn_with_idp(
        |idp| idp.serve_bundle(1),
        |c| {
            recipe("spiffe.toml")(c);
            c.issuer_mut("prod-mesh").jwks_min_refetch = Some("1s".into());
        },
    )
    .await;

    let payments = "spiffe://prod.example.org/ns/payments/sa/api";
    for extra in [
        json!({}),
        json!({ "iss": "https://oidc-discovery.prod.example.org" }),
    ] {
        let token = svid(&app, payments, extra);
        let minted =
            granted(exchange_as(&app, "payments-api", &token, JWT, "ledger-api").await).await;
        assert_eq!(minted["sub"], payments);
        assert_eq!(minted["scope"], "ledger:write");
    }
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["subject_issuer"], "prod-mesh");

    let billing = svid(
        &app,
        "spiffe://prod.example.org/ns/billing/sa/api",
        json!({}),
    );
    refused_saying(
        &app,
        "payments-api",
        &billing,
        JWT,
        "ledger-api",
        "invalid_target",
        "sub \"spiffe://prod.example.org/ns/billing/sa/api\" matches none of its subjects \
             (\"/ns/payments/sa/*\")",
    )
    .await;

    let stranger = svid(
        &app,
        "spiffe://other.example.org/ns/payments/sa/api",
        json!({}),
    );
    refused_saying(
        &app,
        "payments-api",
        &stranger,
        JWT,
        "ledger-api",
        "invalid_request",
        "trust domain \"spiffe://other.example.org\", which this server does not trust",
    )
    .await;

    let elsewhere = svid(
        &app,
        payments,
        json!({ "aud": ["https://other-sts.example"] }),
    );
    refused_saying(
        &app,
        "payments-api",
        &elsewhere,
        JWT,
        "ledger-api",
        "invalid_request",
        "not intended for this server",
    )
    .await;

    // The bundle's X.509 authority (same key material, its own kid) verifies no JWT-SVID.
    let t = now();
    let by_authority = app.key.sign_named(
        "RS256",
        json!({ "kid": "x509-authority", "typ": "JWT" }),
        &json!({ "sub": payments, "aud": [AUD], "exp": t + 300, "iat": t }),
    );
    refused_saying(
        &app,
        "payments-api",
        &by_authority,
        JWT,
        "ledger-api",
        "invalid_request",
        "names a key (kid) that issuer \"prod-mesh\" does not publish",
    )
    .await;

    // spiffe_refresh_hint (1 s) brings fetches forward from jwks_refresh (5 m), bounded below
    // by jwks_min_refetch (1 s here).
    let before = app.idp.fetches();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.idp.fetches() < before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bundle was not fetched again within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The README's recipe excerpts are lines of the recipes that the tests above run.
#[test]
fn the_readme_recipes_quote_the_tested_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (heading, file) in [
        ("### Recipe: Kubernetes service accounts", "kubernetes.toml"),
        ("### Recipe: GitHub Actions", "github-actions.toml"),
        ("### Recipe: SPIFFE JWT-SVIDs", "spiffe.toml"),
    ] {
        let recipe =
            std::fs::read_to_string(root.join("deploy/examples/workloads").join(file)).unwrap();
        let lines: Vec<&str> = recipe.lines().map(str::trim_end).collect();
        let section = readme.split(heading).nth(1).unwrap();
        let excerpt = section
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap();
        assert!(excerpt.lines().count() > 5, "{heading}: no TOML excerpt");
        for line in excerpt.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                lines.contains(&line),
                "{file}: README line not in the recipe: {line}"
            );
        }
    }
}

/// The mistake a newcomer makes first: a workload rule left in `intersect` mode. The refusal
/// says why and what fits.
#[tokio::test]
async fn a_workload_token_in_intersect_mode_is_refused_with_the_fix() {
    let app = TestApp::spawn_with(|c| {
        recipe("kubernetes.toml")(c);
        c.rule_mut("payments-to-ledger").scope_mode = None;
    })
    .await;
    let token = kubernetes_token(&app, "payments", "api");
    let desc = refused(
        &app,
        "payments-api",
        &token,
        JWT,
        "ledger-api",
        "invalid_scope",
    )
    .await;
    assert!(
        desc.contains("it carries no scope at all, as workload tokens do")
            && desc.contains("scope_mode = \"grant\""),
        "{desc}"
    );
}

/// Rule test cases take workload claims as they come (nested ones too), and a failing case
/// shows the miss with the token's value beside the rule's patterns.
#[tokio::test]
async fn rule_test_cases_run_the_recipes_rules_and_show_their_patterns() {
    let app = TestApp::spawn_with(recipe("kubernetes.toml")).await;
    let case = |namespace: &str| {
        format!(
            "[[cases]]\nname = \"{namespace}\"\nclient = \"payments-api\"\n\
             subject = {{ issuer = \"cluster\", claims = {{ sub = \"system:serviceaccount:{namespace}:api\", \
             \"kubernetes.io\" = {{ namespace = \"{namespace}\", serviceaccount = {{ name = \"api\" }} }} }} }}\n\
             request = {{ audiences = [\"ledger-api\"] }}\n\
             expect = {{ outcome = \"granted\", rule = \"payments-to-ledger\", scopes = [\"ledger:write\"] }}\n"
        )
    };
    let file = app.dir.path().join("cases.toml");
    std::fs::write(&file, format!("{}\n{}", case("payments"), case("billing"))).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("1 passed, 1 failed"), "{shown}");
    assert!(
        shown.contains(
            "sub \"system:serviceaccount:billing:api\" matches none of its subjects \
             (\"system:serviceaccount:payments:*\")"
        ),
        "{shown}"
    );
}

/// A trust domain vouches for its own SPIFFE IDs only: naming it in `iss` reaches nothing, a
/// token of ours whose `sub` is a SPIFFE ID stays ours for a further hop, and the record of a
/// refusal keeps the `iss` presented.
#[tokio::test]
async fn a_trust_domain_vouches_for_its_own_spiffe_ids_only() {
    let app = TestApp::spawn_with_idp(
        |idp| idp.serve_bundle(300),
        |c| {
            recipe("spiffe.toml")(c);
            c.issuers.push(entry(&format!(
                "id = \"tessera\"\nissuer = \"{STS}\"\nalgorithms = [\"ES256\"]\naudiences = [\"ledger-api\"]"
            )));
            c.rules.push(entry(
                r#"
name = "ledger-to-audit"
clients = ["payments-api"]
issuers = ["tessera"]
audiences = ["audit-api"]
scopes = ["ledger:write"]
default_scopes = ["ledger:write"]
"#,
            ));
        },
    )
    .await;
    let elsewhere = "spiffe://other.example.org/ns/payments/sa/api";
    let claiming = svid(
        &app,
        elsewhere,
        json!({ "iss": "spiffe://prod.example.org" }),
    );
    refused_saying(
        &app,
        "payments-api",
        &claiming,
        JWT,
        "ledger-api",
        "invalid_request",
        "trust domain \"spiffe://other.example.org\", which this server does not trust",
    )
    .await;
    let plain_sub = svid(&app, "alice", json!({ "iss": "spiffe://prod.example.org" }));
    refused_saying(
        &app,
        "payments-api",
        &plain_sub,
        JWT,
        "ledger-api",
        "invalid_request",
        "its sub is no SPIFFE ID of that trust domain",
    )
    .await;
    let walking = svid(
        &app,
        "spiffe://prod.example.org/ns/payments/sa/../../billing/sa/api",
        json!({}),
    );
    refused(
        &app,
        "payments-api",
        &walking,
        JWT,
        "ledger-api",
        "invalid_request",
    )
    .await;

    // A minted token keeps the SPIFFE ID as its sub, and is ours: exchanged again by our keys.
    let payments = "spiffe://prod.example.org/ns/payments/sa/api";
    let body: serde_json::Value = exchange_as(
        &app,
        "payments-api",
        &svid(&app, payments, json!({})),
        JWT,
        "ledger-api",
    )
    .await
    .json()
    .await
    .unwrap();
    let minted = body["access_token"].as_str().unwrap();
    let again =
        granted(exchange_as(&app, "payments-api", minted, ACCESS_TOKEN, "audit-api").await).await;
    assert_eq!(again["sub"], payments);
    assert_eq!(
        app.records(&["--limit", "1"])[0]["subject_issuer"],
        "tessera"
    );

    // Forged under another key with an `iss` of its own: refused, and recorded by that `iss`.
    let forger = TestKey::generate(Algorithm::ES256, "forger");
    let t = now();
    let forged = forger.sign_named(
        "ES256",
        json!({ "kid": "forger", "typ": "JWT" }),
        &json!({ "iss": "https://evil.example", "sub": payments, "aud": [AUD], "exp": t + 300, "iat": t }),
    );
    refused(
        &app,
        "payments-api",
        &forged,
        JWT,
        "ledger-api",
        "invalid_request",
    )
    .await;
    assert_eq!(
        app.records(&["--limit", "1"])[0]["subject_issuer"],
        "https://evil.example"
    );

    // What a denial quotes cannot reorder or hide text.
    let token = svid(&app, payments, json!({}));
    let desc = assert_error(
        exchange_as(
            &app,
            "payments-api",
            &token,
            JWT,
            "ledger-api\u{202E}txt.exe\"",
        )
        .await,
        400,
        "invalid_target",
    )
    .await;
    assert!(
        desc.contains("does not grant audience \"ledger-apitxt.exe\\\"\""),
        "{desc}"
    );
}

/// A bundle older than the one in use (a lower `spiffe_sequence`, as a replay would serve) is
/// refused, and the keys in use kept.
#[tokio::test]
async fn an_older_bundle_does_not_replace_the_one_in_use() {
    let app = TestApp::spawn_with_idp(
        |idp| {
            idp.serve_bundle(300);
            idp.set_bundle_sequence(100);
        },
        |c| {
            recipe("spiffe.toml")(c);
            c.issuer_mut("prod-mesh").jwks_min_refetch = Some("0s".into());
        },
    )
    .await;
    let payments = "spiffe://prod.example.org/ns/payments/sa/api";
    granted(
        exchange_as(
            &app,
            "payments-api",
            &svid(&app, payments, json!({})),
            JWT,
            "ledger-api",
        )
        .await,
    )
    .await;

    let other = TestKey::generate(Algorithm::ES256, "rotated-out");
    app.idp.publish(&[&other]);
    app.idp.set_bundle_sequence(5);
    let t = now();
    let by_other = other.sign_named(
        "ES256",
        json!({ "kid": "rotated-out", "typ": "JWT" }),
        &json!({ "sub": payments, "aud": [AUD], "exp": t + 300, "iat": t }),
    );
    refused_saying(
        &app,
        "payments-api",
        &by_other,
        JWT,
        "ledger-api",
        "invalid_request",
        "does not publish",
    )
    .await;
    granted(
        exchange_as(
            &app,
            "payments-api",
            &svid(&app, payments, json!({})),
            JWT,
            "ledger-api",
        )
        .await,
    )
    .await;
    let admin: serde_json::Value = app.admin_get("/admin/issuers").await.json().await.unwrap();
    let mesh = admin["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "prod-mesh")
        .unwrap()
        .clone();
    assert!(
        mesh["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("spiffe_sequence 5 is lower than the 100"),
        "{mesh}"
    );
}
