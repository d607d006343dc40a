//! Delegation (`actor = "token"`, RFC 8693 §4.1, §4.4).

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;

fn with_delegation(c: &mut RawConfig) {
    c.append(
        r#"
[[rules]]
name = "delegated"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["delegated-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
actor = "token"
actors = [{ issuer = "corp", subject = "svc-batch" }]
"#,
    );
}

async fn delegate(app: &TestApp, subject: &str, actor: &str, audience: &str) -> reqwest::Response {
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", actor),
        ("actor_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ])
    .await
}

fn actor_token(app: &TestApp, sub: &str, extra: Value) -> String {
    let mut claims = app.claims(json!({"sub": sub, "scope": null, "email": null}));
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        c.extend(e);
    }
    app.key.sign(&claims)
}

#[tokio::test]
async fn delegation_is_allowed_by_may_act_and_recorded() {
    let app = TestApp::spawn_with(with_delegation).await;
    let subject = app.subject_token(json!({"may_act": {"sub": "svc-gateway"}}));
    let actor = actor_token(&app, "svc-gateway", json!({}));
    let resp = delegate(&app, &subject, &actor, "delegated-api").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let c = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["act"], json!({"sub": "svc-gateway", "iss": app.idp.url}));
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["actor"], "svc-gateway");
    assert_eq!(record["actor_issuer"], "corp");
    assert_eq!(record["rule"], "delegated");
    // Who acted is a filter too, on the CLI and the admin API.
    assert_eq!(
        app.exchange_subject(&app.subject_token(json!({})))
            .await
            .status(),
        200
    );
    assert_eq!(app.records(&[]).len(), 2);
    let acted = app.records(&["--actor", "svc-gateway"]);
    assert_eq!(acted.len(), 1);
    assert_eq!(acted[0]["id"], record["id"]);
    let page: Value = app
        .admin_get("/admin/exchanges?actor=svc-gateway")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn delegation_checks_may_act_iss_and_the_rules_actors() {
    let app = TestApp::spawn_with(with_delegation).await;
    // may_act names the actor but another issuer.
    let subject =
        app.subject_token(json!({"may_act": {"sub": "svc-gateway", "iss": "https://elsewhere"}}));
    let desc = assert_error(
        delegate(
            &app,
            &subject,
            &actor_token(&app, "svc-gateway", json!({})),
            "delegated-api",
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("not permitted"), "{desc}");
    // may_act with the right iss.
    let subject = app.subject_token(json!({"may_act": {"sub": "svc-gateway", "iss": app.idp.url}}));
    assert_eq!(
        delegate(
            &app,
            &subject,
            &actor_token(&app, "svc-gateway", json!({})),
            "delegated-api"
        )
        .await
        .status(),
        200
    );
    // No may_act, but the rule's actors list names svc-batch.
    let plain = app.subject_token(json!({}));
    assert_eq!(
        delegate(
            &app,
            &plain,
            &actor_token(&app, "svc-batch", json!({})),
            "delegated-api"
        )
        .await
        .status(),
        200
    );
    // Nobody names svc-rogue.
    assert_error(
        delegate(
            &app,
            &plain,
            &actor_token(&app, "svc-rogue", json!({})),
            "delegated-api",
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn delegation_refuses_bad_actor_tokens() {
    let app = TestApp::spawn_with(with_delegation).await;
    let subject = app.subject_token(json!({}));
    let outsider = TestKey::generate(Algorithm::ES256, "outsider");
    let untrusted = outsider.sign(&json!({"iss": "https://evil.example", "sub": "svc-batch", "aud": STS, "iat": now(), "exp": now() + 600}));
    let cases = [
        (
            "expired",
            actor_token(&app, "svc-batch", json!({"exp": now() - 120})),
        ),
        ("untrusted issuer", untrusted),
        ("garbage", "garbage".to_string()),
    ];
    for (what, actor) in cases {
        let desc = assert_error(
            delegate(&app, &subject, &actor, "delegated-api").await,
            400,
            "invalid_request",
        )
        .await;
        assert!(desc.contains("actor token"), "{what}: {desc}");
    }
}

#[tokio::test]
async fn delegation_keeps_nested_actors_and_the_shortest_lifetime() {
    let app = TestApp::spawn_with(with_delegation).await;
    let subject = app.subject_token(json!({"act": {"sub": "edge"}}));
    let actor = actor_token(&app, "svc-batch", json!({"exp": now() + 40}));
    let body: Value = delegate(&app, &subject, &actor, "delegated-api")
        .await
        .json()
        .await
        .unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        (38..=40).contains(&expires_in),
        "capped by the actor token: {expires_in}"
    );
    let c = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        c["act"],
        json!({"sub": "svc-batch", "iss": app.idp.url, "act": {"sub": "edge"}})
    );

    let mut chain = json!({"sub": "a0"});
    for i in 1..8 {
        chain = json!({"sub": format!("a{i}"), "act": chain});
    }
    let deep = app.subject_token(json!({"act": chain}));
    let desc = assert_error(
        delegate(
            &app,
            &deep,
            &actor_token(&app, "svc-batch", json!({})),
            "delegated-api",
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("8 actors"), "{desc}");
}

#[tokio::test]
async fn actor_tokens_go_only_to_rules_that_delegate() {
    let app = TestApp::spawn_with(with_delegation).await;
    let subject = app.subject_token(json!({}));
    let actor = actor_token(&app, "svc-batch", json!({}));
    let desc = assert_error(
        delegate(&app, &subject, &actor, "inventory-api").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("does not take an actor_token"), "{desc}");
    let desc = assert_error(
        app.exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "delegated-api"),
        ])
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("actor_token"), "{desc}");
}
