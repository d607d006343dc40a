//! Opaque subject tokens, checked at the issuer's introspection endpoint (RFC 7662).

use serde_json::{Value, json};

use crate::helpers::*;

/// The configuration with an issuer of opaque tokens, introspected at the test identity provider.
fn with_opaque_issuer(c: String) -> String {
    let line = c
        .lines()
        .find(|l| l.starts_with("jwks_uri = "))
        .unwrap()
        .to_string();
    let idp = line
        .trim_start_matches("jwks_uri = \"")
        .trim_end_matches("/jwks\"")
        .to_string();
    format!(
        "{c}\n[[issuers]]\nid = \"opaque\"\nissuer = \"{idp}/opaque\"\nintrospection_endpoint = \"{idp}/introspect\"\nintrospection_client_id = \"tessera\"\nintrospection_client_secret = \"introspect-secret\"\nintrospection_cache = \"5m\"\naudiences = [\"{STS}\"]\n"
    )
    .replace("issuers = [\"corp\"]", "issuers = [\"corp\", \"opaque\"]")
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
    idp.issue_opaque(token, json!({"active": true, "sub": "olivia", "scope": "inventory:read", "exp": now() + 600, "iss": format!("{url}/opaque"), "client_id": "portal", "email": "olivia@example.com"}));
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
        json!({"active": true, "sub": "o", "exp": now() - 10}),
    );
    idp.issue_opaque(
        "foreign-token",
        json!({"active": true, "sub": "o", "aud": "https://someone-else"}),
    );
    idp.issue_opaque(
        "wrong-iss-token",
        json!({"active": true, "sub": "o", "iss": "https://elsewhere"}),
    );
    idp.issue_opaque("no-sub-token", json!({"active": true}));
    for (token, why) in [
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
        json!({"active": true, "sub": "o", "scope": "inventory:read"}),
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
