//! Opaque subject tokens, checked at the issuer's introspection endpoint (RFC 7662).

use serde_json::{Value, json};

use crate::helpers::*;

/// The configuration with an issuer of opaque tokens, introspected at the test identity provider.
fn with_opaque_issuer(c: &mut RawConfig) {
    let idp = c.issuer_mut("corp").issuer.clone();
    c.append(&format!(
        r#"
[[issuers]]
id = "opaque"
issuer = "{idp}/opaque"
introspection_endpoint = "{idp}/introspect"
introspection_client_id = "tessera"
introspection_client_secret = "introspect-secret"
introspection_cache = "5m"
audiences = ["{STS}"]
"#
    ));
    c.rule_mut("orders-to-inventory")
        .issuers
        .push("opaque".into());
}

async fn exchange(app: &TestApp, token: &str) -> reqwest::Response {
    app.exchange_subject(token).await
}

#[tokio::test]
async fn an_active_opaque_token_is_exchanged_and_its_answer_cached() {
    let app = TestApp::spawn_with(with_opaque_issuer).await;
    let idp = &app.idp;
    let url = idp.url.clone();
    let token = "opaque-0123456789abcdef";
    idp.issue_opaque(token, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque"), "client_id": "portal", "email": "olivia@example.com"}));
    let resp = exchange(&app, token).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let c = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["scope"].as_str()),
        (Some("olivia"), Some("inventory:read"))
    );
    assert_eq!(
        c["email"], "olivia@example.com",
        "copy_claims take from the introspection answer"
    );
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["subject_issuer"], "opaque");
    let asked = idp.introspections();
    assert_eq!(exchange(&app, token).await.status(), 200);
    assert_eq!(
        idp.introspections(),
        asked,
        "the second exchange used the cache"
    );
    assert!(
        !app.database_contents().contains(token),
        "the opaque token is not stored"
    );
}

#[tokio::test]
async fn inactive_expired_foreign_or_unverifiable_opaque_tokens_are_refused() {
    let app = TestApp::spawn_with(with_opaque_issuer).await;
    let idp = &app.idp;
    idp.issue_opaque(
        "expired-token",
        json!({"active": true, "iat": now(), "sub": "o", "exp": now() - 10}),
    );
    idp.issue_opaque(
        "foreign-token",
        json!({"active": true, "iat": now(), "sub": "o", "aud": "https://someone-else"}),
    );
    idp.issue_opaque(
        "wrong-iss-token",
        json!({"active": true, "iat": now(), "sub": "o", "iss": "https://elsewhere"}),
    );
    idp.issue_opaque("no-sub-token", json!({"active": true, "iat": now()}));
    idp.issue_opaque(
        "ageless-token",
        json!({"active": true, "sub": "o", "scope": "inventory:read"}),
    );
    idp.issue_opaque(
        "old-token",
        json!({"active": true, "iat": now() - 90_000, "sub": "o", "scope": "inventory:read"}),
    );
    for (token, why) in [
        ("ageless-token", "no iat"),
        ("old-token", "too old"),
        ("unknown-token", "not active"),
        ("expired-token", "expired"),
        ("foreign-token", "aud"),
        ("wrong-iss-token", "issued by"),
        ("no-sub-token", "sub"),
    ] {
        let desc = assert_error(exchange(&app, token).await, 400, "invalid_request").await;
        assert!(desc.contains(why), "{token}: {desc}");
    }
    // An endpoint that fails denies, and never lets the token through.
    idp.issue_opaque(
        "good-token",
        json!({"active": true, "iat": now(), "sub": "o", "scope": "inventory:read"}),
    );
    idp.set_down(true);
    let desc = assert_error(exchange(&app, "good-token").await, 400, "invalid_request").await;
    assert!(desc.contains("could not be checked"), "{desc}");
    idp.set_down(false);
    assert_eq!(
        exchange(&app, "good-token").await.status(),
        200,
        "service resumes with the endpoint"
    );
}

#[tokio::test]
async fn a_jwt_naming_an_issuer_of_opaque_tokens_is_refused_clearly() {
    let app = TestApp::spawn_with(with_opaque_issuer).await;
    let iss = format!("{}/opaque", app.idp.url);
    let jwt = app.subject_token(json!({ "iss": iss }));
    let desc = assert_error(exchange(&app, &jwt).await, 400, "invalid_request").await;
    assert!(desc.contains("opaque"), "{desc}");
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// A second issuer of opaque tokens at the same introspection endpoint, both named by
/// orders-svc's rule; `billing-svc` has a rule that names only `corp`.
fn with_two_opaque_issuers(c: &mut RawConfig, prefixes: Option<(&str, &str)>) {
    with_opaque_issuer(c);
    let idp = c.issuer_mut("corp").issuer.clone();
    c.append(&format!(
        r#"
[[issuers]]
id = "opaque2"
issuer = "{idp}/opaque2"
introspection_endpoint = "{idp}/introspect"
introspection_client_id = "tessera"
introspection_client_secret = "introspect-secret"
audiences = ["{STS}"]

[[rules]]
name = "billing"
clients = ["billing-svc"]
issuers = ["corp"]
audiences = ["billing-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
scope_mode = "grant"
"#
    ));
    if let Some((one, two)) = prefixes {
        let prefix = |p: &str| (!p.is_empty()).then(|| p.to_string());
        c.issuer_mut("opaque").opaque_token_prefix = prefix(one);
        c.issuer_mut("opaque2").opaque_token_prefix = prefix(two);
    }
    c.rule_mut("orders-to-inventory")
        .issuers
        .push("opaque2".into());
}

#[tokio::test]
async fn an_opaque_token_is_never_sent_where_its_issuer_is_ambiguous() {
    let app = TestApp::spawn_with(|c| with_two_opaque_issuers(c, None)).await;
    let url = app.idp.url.clone();
    let token = "opaque-ambiguous-0123456789";
    app.idp.issue_opaque(token, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque")}));
    let desc = assert_error(exchange(&app, token).await, 400, "invalid_request").await;
    assert!(desc.contains("cannot tell which issuer"), "{desc}");
    assert_eq!(app.idp.introspections(), 0, "nothing was sent");
}

#[tokio::test]
async fn an_opaque_token_goes_only_to_the_issuer_its_prefix_names() {
    let app = TestApp::spawn_with(|c| with_two_opaque_issuers(c, Some(("one_", "two_")))).await;
    let url = app.idp.url.clone();
    let token = "two_0123456789abcdef";
    app.idp.issue_opaque(token, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque2")}));
    let resp = exchange(&app, token).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.idp.introspections(), 1);
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["subject_issuer"], "opaque2");
    // A token that no prefix names goes nowhere.
    let desc = assert_error(
        exchange(&app, "three_0123456789").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("no issuer"), "{desc}");
    assert_eq!(app.idp.introspections(), 1);
}

#[tokio::test]
async fn an_opaque_token_is_not_sent_to_issuers_the_clients_rules_do_not_name() {
    let app = TestApp::spawn_with(|c| with_two_opaque_issuers(c, Some(("one_", "two_")))).await;
    let url = app.idp.url.clone();
    let token = "one_0123456789abcdef";
    app.idp.issue_opaque(token, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque")}));
    let billing = app
        .post_token(
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", token),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "billing-api"),
            ],
            Some(("billing-svc", "billing-secret")),
        )
        .await;
    assert_error(billing, 400, "invalid_request").await;
    // JWT-shaped garbage is never introspected either.
    assert_error(
        exchange(&app, "aaaa.bbbb.cccc").await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(app.idp.introspections(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_prefixed_token_never_goes_to_an_issuer_without_a_prefix() {
    let app = TestApp::spawn_with(|c| with_two_opaque_issuers(c, Some(("one_", "")))).await;
    let url = app.idp.url.clone();
    let token = "one_0123456789abcdef";
    app.idp.issue_opaque(token, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque")}));
    assert_eq!(exchange(&app, token).await.status(), 200);
    assert_eq!(
        app.records(&["--limit", "1"])[0]["subject_issuer"],
        "opaque"
    );
    let other = "plain_0123456789abcdef";
    app.idp.issue_opaque(other, json!({"active": true, "iat": now(), "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque2")}));
    assert_eq!(exchange(&app, other).await.status(), 200);
    assert_eq!(
        app.records(&["--limit", "1"])[0]["subject_issuer"],
        "opaque2"
    );
    assert_eq!(
        app.idp.introspections(),
        2,
        "each token asked about once, at its issuer"
    );
}
