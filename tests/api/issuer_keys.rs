//! Issuers' keys: rotation at the identity provider, refetch limits, last good keys, an
//! unreachable issuer, discovery and file-based JWKS.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn token_follows_key_rotation_at_the_identity_provider() {
    let app = TestApp::spawn().await;
    let next = TestKey::generate(Algorithm::ES256, "ec-2");
    let old_token = app.subject_token(json!({}));
    app.idp.publish(&[&app.key, &next]);
    // A token under the new kid makes Tessera fetch the keys again.
    let new_token = next.sign(&app.claims(json!({})));
    assert_eq!(app.exchange_subject(&new_token).await.status(), 200);
    // Once the old key is no longer published, tokens it signed are refused.
    app.idp.publish(&[&next]);
    let ghost = TestKey::generate(Algorithm::ES256, "unknown-kid");
    assert_eq!(
        app.exchange_subject(&ghost.sign(&app.claims(json!({}))))
            .await
            .status(),
        400,
        "forces a refetch"
    );
    assert_error(
        app.exchange_subject(&old_token).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        app.exchange_subject(&next.sign(&app.claims(json!({}))))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn token_refetches_unknown_kids_no_more_often_than_allowed() {
    let app =
        TestApp::spawn_with(|c| c.issuer_mut("corp").jwks_min_refetch = Some("1h".into())).await;
    let before = app.idp.fetches();
    let ghost = TestKey::generate(Algorithm::ES256, "ghost");
    for _ in 0..5 {
        let desc = assert_error(
            app.exchange_subject(&ghost.sign(&app.claims(json!({}))))
                .await,
            400,
            "invalid_request",
        )
        .await;
        assert!(desc.contains("kid"), "{desc}");
    }
    assert_eq!(
        app.idp.fetches(),
        before,
        "the start-up fetch is more recent than jwks_min_refetch"
    );
}

#[tokio::test]
async fn token_keeps_the_last_good_keys_when_the_identity_provider_fails() {
    let app = TestApp::spawn().await;
    app.idp.set_down(true);
    let ghost = TestKey::generate(Algorithm::ES256, "ghost");
    assert_error(
        app.exchange_subject(&ghost.sign(&app.claims(json!({}))))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        app.idp.fetches() >= 2,
        "the unknown kid caused a (failed) fetch"
    );
    let good = app.subject_token(json!({}));
    assert_eq!(app.exchange_subject(&good).await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn serve_starts_with_an_unreachable_issuer_and_answers_503_for_its_tokens() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let app = TestApp::start(|c| {
        c.append(&format!(
            r#"
[[issuers]]
id = "partner"
issuer = "{dead}"
jwks_uri = "{dead}/jwks"
audiences = ["{STS}"]
"#
        ));
        c.rule_mut("orders-to-inventory")
            .issuers
            .push("partner".into());
    })
    .await;
    // corp becomes ready; partner never does.
    let mut ready: Value = Value::Null;
    for _ in 0..100 {
        let resp = app.get("/readyz").await;
        assert_eq!(resp.status(), 503);
        ready = resp.json().await.unwrap();
        if ready["issuers_not_ready"].get("corp").is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready["status"], "not_ready");
    assert!(
        ready["issuers_not_ready"].get("partner").is_some(),
        "{ready}"
    );
    assert!(ready["issuers_not_ready"].get("corp").is_none(), "{ready}");
    // The public answer names the issuer, never what its fetch met; the admin listener does.
    let why = ready["issuers_not_ready"]["partner"].as_str().unwrap();
    assert!(!why.contains("127.0.0.1"), "{why}");
    let mut partner = Value::Null;
    for _ in 0..100 {
        let admin: Value = app.admin_get("/admin/issuers").await.json().await.unwrap();
        partner = admin["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "partner")
            .unwrap()
            .clone();
        if partner["last_error"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(partner["ready"], false);
    assert!(
        partner["last_error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{partner}"
    );
    let partner_token = app.key.sign(&app.claims(json!({"iss": dead})));
    assert_error(
        app.exchange_subject(&partner_token).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    app.minted(json!({})).await;
    let records = app.records(&["--error", "temporarily_unavailable"]);
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn token_finds_keys_through_discovery() {
    let app = TestApp::spawn_with(|c| {
        let corp = c.issuer_mut("corp");
        corp.jwks_uri = None;
        corp.discovery = Some(true);
    })
    .await;
    app.minted(json!({})).await;
}

#[tokio::test]
async fn token_verifies_with_a_jwks_file() {
    let files = tempfile::tempdir().unwrap();
    let jwks = files.path().join("idp.jwks.json");
    std::fs::write(&jwks, json!({"keys": [TestKey::rsa().jwk]}).to_string()).unwrap();
    let app = TestApp::spawn_with(|c| {
        let corp = c.issuer_mut("corp");
        corp.jwks_uri = None;
        corp.jwks_file = Some(jwks.display().to_string());
    })
    .await;
    assert_eq!(app.idp.fetches(), 0, "nothing is fetched over HTTP");
    app.minted(json!({})).await;
}
